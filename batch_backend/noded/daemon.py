"""``batchhub noded``: one node daemon (one virtual node).

The daemon registers its real resources, then long-polls the controller for
commands (launch, cancel, signal, suspend/resume, time limit) and reports job events back. A
lost controller is not a reason to touch running jobs: the daemon keeps them
running, keeps their end events queued, and re-registers (listing what runs
and what ended meanwhile) as soon as a controller answers again.

On the controller's host the daemon talks over the Unix socket (the kernel
vouches for it). From another host it talks TCP and presents its node
credential (a token with a ``node`` claim, ``batchhub node-token``); its jobs
then reach the controller over the same TCP address with a token of their own
that the controller puts in each launch (``BATCHHUB_TOKEN`` in the job).
"""

import asyncio
import logging
import os
import platform
import signal
import socket
import time

from .. import __version__
from ..client import APIError, Client, ClientError, ControllerUnreachable, is_tcp_address, local_address_for
from . import leftovers, proctree
from .resources import cpu_ids_for_node, detect_real_resources
from .runner import BatchJobRunner

log = logging.getLogger("batchhub.noded")

POLL_WAIT = 20.0  # seconds a long poll may be held by the controller (it may cap it lower)
IO_TIMEOUT = 10.0  # seconds to wait for any other answer before the controller counts as unreachable


class NodeDaemon:
    def __init__(self, name, *, controller_address, spool_dir, extra_env=None, token=None, token_path=None):
        self.name = name
        self.address = controller_address
        self.token = token or ""   # node credential (TCP); never the environment's BATCHHUB_TOKEN
        self.token_path = token_path  # re-read when the controller refuses the credential (rotation)
        self.poll_wait = POLL_WAIT
        self.io_timeout = IO_TIMEOUT
        self.spool_dir = os.path.join(spool_dir, name)
        os.makedirs(self.spool_dir, exist_ok=True)
        self.extra_env = dict(extra_env or {})
        self.runners = {}          # job_id -> BatchJobRunner
        self.finished = {}         # job_id -> ended event not yet acknowledged
        self.launched = {}         # job id -> run (restart count) started here: never launch a run twice
        self.events = asyncio.Queue()
        self.epoch = None
        self.after = 0
        self.node_conf = {}
        self.host_cpus = sorted(os.sched_getaffinity(0))
        self.cpu_ids = []
        self.busy_cpu_ids = {}     # job_id -> cpu ids
        self.kill_wait = 30.0
        self._stop = asyncio.Event()
        self._registered = asyncio.Event()

    # -- registration ----------------------------------------------------------
    def _register_info(self):
        real = detect_real_resources()
        return {
            "cpus": real["cpus"], "memory_mb": real["memory_mb"], "gpus": real["gpus"],
            "hostname": socket.gethostname().split(".")[0], "address": self._address(),
            "arch": platform.machine(), "os": f"{platform.system()} {platform.release()}",
            "version": __version__, "boot_time": self.boot_time, "pid": os.getpid(),
            "running": sorted(self.runners), "finished": sorted(self.finished),
            "steps": sorted(self.__dict__.get("step_tasks", {})),
        }

    def _address(self):
        """The address others reach this node at: configured, else the one facing the controller."""
        return os.environ.get("BATCHHUB_NODE_ADDR") or local_address_for(self.address) or "127.0.0.1"

    def _client(self):
        return Client(self.address, timeout=self.io_timeout, token=self.token)

    def _reload_token(self, client):
        """After a 401: take up a credential the admin replaced in the token file (a rotated
        cluster key, a renewed token) without restarting the daemon and its jobs."""
        if not self.token_path:
            return
        from .remote import NodeConfigError, read_node_token
        try:
            token = read_node_token(self.token_path, self.address)
        except NodeConfigError as e:
            log.error("node %s: cannot reload the node credential: %s", self.name, e)
            return
        if token != self.token:
            self.token = client.token = token
            log.info("node %s: node credential reloaded from %s", self.name, self.token_path)

    def _set_timeouts(self, slurmd_timeout):
        """Poll and give up on answers well within SlurmdTimeout: a node that lost the controller
        (a cut link) finds out, and re-registers once it returns, before its jobs are long gone."""
        third = max(1.0, float(slurmd_timeout) / 3.0)
        self.poll_wait = min(POLL_WAIT, third)
        self.io_timeout = min(IO_TIMEOUT, max(2.0, third))

    async def register(self, client):
        delay = 0.05
        while not self._stop.is_set():
            try:
                answer = await self._call(client.request, "POST", f"/noded/{self.name}/register",
                                          self._register_info(), timeout=self.io_timeout)
            except ControllerUnreachable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            except APIError as e:
                log.error("registration of %s refused: %s", self.name, e.message)
                if e.status == 401:
                    self._reload_token(client)
                await asyncio.sleep(5)
                continue
            self.epoch = answer["epoch"]
            self.after = 0
            self.node_conf = answer
            self.kill_wait = float(answer.get("kill_wait", 30))
            self._set_timeouts(answer.get("slurmd_timeout") or 300)
            self.cpu_ids = cpu_ids_for_node(answer["node_index"], answer["cpus"], self.host_cpus)
            if answer.get("resource_problem"):
                log.warning("node %s is DOWN: %s", self.name, answer["resource_problem"])
            log.info("node %s registered (epoch %s)", self.name, self.epoch)
            # end events of jobs that finished while the controller was away
            for ev in self.finished.values():
                self.events.put_nowait(ev)
            self._registered.set()
            return

    async def _call(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: fn(*args, **kwargs))

    # -- command loop -----------------------------------------------------------
    async def poll_loop(self):
        client = self._client()
        await self.register(client)
        while not self._stop.is_set():
            try:
                answer = await self._call(client.request, "GET", f"/noded/{self.name}/commands",
                                          query={"epoch": self.epoch, "after": self.after, "wait": self.poll_wait},
                                          timeout=self.poll_wait + self.io_timeout)
            except ControllerUnreachable:
                log.info("controller unreachable; jobs keep running, retrying")
                self._registered.clear()
                await asyncio.sleep(0.2)
                await self.register(client)
                continue
            except APIError as e:
                log.error("command poll failed: %s", e.message)
                if e.status == 401:
                    self._reload_token(client)
                await asyncio.sleep(1)
                continue
            except Exception:  # noqa: BLE001 -- a bug must not stop the node polling for good
                log.exception("command poll failed")
                client.close()
                await asyncio.sleep(1)
                continue
            if answer.get("reregister"):
                self._registered.clear()
                await self.register(client)
                continue
            for cmd in answer.get("commands", []):
                self.after = max(self.after, cmd["seq"])
                try:
                    await self.handle(cmd)
                except Exception:
                    log.exception("command %s failed", cmd.get("type"))

    async def handle(self, cmd):
        kind, job_id = cmd["type"], cmd.get("job_id")
        runner = self.runners.get(job_id)
        if kind == "launch":
            run = cmd["launch"].get("restarts", 0)
            if self.launched.get(job_id, -1) >= run:
                return  # a re-sent launch after a controller restart: already ours
            self.launched[job_id] = run
            launch = dict(cmd["launch"])
            launch["extra_env"] = dict(self.extra_env, **launch.get("extra_env", {}))
            job_token = launch.pop("job_token", None)
            if job_token:  # the job's own way to the controller from this host (srun, squeue in the job)
                launch["extra_env"]["BATCHHUB_TOKEN"] = job_token
            launch["cpu_ids"] = self._pick_cpus(job_id, launch.get("cpu_slots") or 1)
            runner = BatchJobRunner(launch, node_name=self.name, spool_dir=self.spool_dir,
                                    on_event=self._on_event, kill_wait=launch.get("kill_wait", self.kill_wait))
            self.runners[job_id] = runner
            leftovers.record(self.spool_dir, f"job{job_id}", {
                "job_id": job_id, "restarts": run, "tag": runner.tag, "tag_var": "BATCHHUB_JOB_TAG",
                "job_dir": runner.job_dir})
            await runner.start()
        elif kind == "cancel":
            if runner is not None and not runner.done:
                asyncio.ensure_future(runner.cancel())
            elif cmd.get("stale"):
                pass
            elif job_id not in self.finished:
                # nothing of that job runs here (never started, or long gone): confirm at once
                self._on_event({"event": "ended", "job_id": job_id, "state": "CANCELLED", "exit_code": 0,
                                "exit_signal": 0, "reason": "None", "time": time.time(), "max_rss_mb": 0})
        elif kind == "signal":
            if runner is not None and not runner.done:
                runner.signal(proctree.signal_number(str(cmd["signal"])),
                              batch_only=cmd.get("batch_only", False), full=cmd.get("full", False))
        elif kind in ("suspend", "resume"):
            # the batch shell (when it runs here) and every step task of the job on this node
            if runner is not None and not runner.done:
                runner.suspend() if kind == "suspend" else runner.resume(cmd.get("seconds_left"))
            for (jid, _), tasks in list(self.__dict__.get("step_tasks", {}).items()):
                if jid == job_id:
                    tasks.suspend() if kind == "suspend" else tasks.resume(cmd.get("seconds_left"))
        elif kind == "time_limit":
            if runner is not None and not runner.done and hasattr(runner, "set_time_left"):
                runner.set_time_left(cmd.get("seconds_left"))
        elif kind in ("launch_step", "kill_step"):
            self._step_command(cmd)

    def _step_command(self, cmd):
        """launch_step / kill_step: the tasks of srun steps (see :mod:`.steps`)."""
        from .steps import StepTasks, credential_ok
        steps = self.__dict__.setdefault("step_tasks", {})  # (job_id, step_id) -> StepTasks
        key = (cmd["job_id"], cmd["step_id"])
        tasks = steps.get(key)
        if cmd["type"] == "launch_step":
            if tasks is not None:
                return  # re-sent after a controller restart: already running here
            step = cmd["step"]
            if not credential_ok(self.node_conf.get("credential_key"), step, cmd["job_id"], cmd["step_id"]):
                log.error("JobId=%s StepId=%s.%s: invalid credential, not launched", key[0], *key)
                for rank in step.get("ranks") or []:
                    self._on_event({"event": "task_ended", "job_id": cmd["job_id"], "step_id": cmd["step_id"],
                                    "rank": rank, "exit_code": 1, "exit_signal": 0, "time": time.time()})
                return
            tasks = StepTasks(cmd["job_id"], cmd["step_id"], step, node_name=self.name, on_event=self._on_event,
                              kill_wait=self.kill_wait, extra_env=self.extra_env,
                              cpu_ids=self.busy_cpu_ids.get(cmd["job_id"]) or self.cpu_ids)
            steps[key] = tasks
            record_key = f"step{key[0]}.{key[1]}"
            leftovers.record(self.spool_dir, record_key, {
                "job_id": key[0], "step_id": key[1], "ranks": list(step.get("ranks") or []),
                "tag": tasks.tag, "tag_var": "BATCHHUB_STEP_TAG"})

            async def run():
                try:
                    await tasks.start()
                    await tasks.wait()
                finally:
                    steps.pop(key, None)
                    leftovers.forget(self.spool_dir, record_key)
            asyncio.ensure_future(run())
        elif tasks is not None:
            signame = cmd.get("signal")
            asyncio.ensure_future(tasks.kill(None if signame is None else proctree.signal_number(str(signame))))

    def _pick_cpus(self, job_id, count):
        """Bind the job to ``count`` of this virtual node's host CPUs, least used first."""
        if not self.cpu_ids:
            return []
        use = {}
        for ids in self.busy_cpu_ids.values():
            for c in ids:
                use[c] = use.get(c, 0) + 1
        ranked = sorted(dict.fromkeys(self.cpu_ids), key=lambda c: (use.get(c, 0), self.cpu_ids.index(c)))
        picked = ranked[:max(1, min(count, len(ranked)))]
        self.busy_cpu_ids[job_id] = picked
        return picked

    def _on_event(self, event):
        if event.get("event") == "started":
            return  # the controller marked the job RUNNING when it decided; only ends are news
        if event.get("event") == "ended":
            job_id = event["job_id"]
            current = self.runners.get(job_id)
            if current is not None and (current.launch.get("restarts") or 0) != event.get("restarts", 0):
                # a stale earlier run (killed on the controller's word) ended while the job's current
                # run goes on here: report it (the controller ignores it), keep tracking the current one
                self.events.put_nowait(event)
                return
            self.runners.pop(job_id, None)
            leftovers.forget(self.spool_dir, f"job{job_id}")
            self.busy_cpu_ids.pop(job_id, None)
            self.finished[job_id] = event
        self.events.put_nowait(event)

    # -- event sender -----------------------------------------------------------------
    async def event_loop(self):
        client = self._client()
        while True:
            batch = [await self.events.get()]
            while not self.events.empty() and len(batch) < 200:
                batch.append(self.events.get_nowait())
            while True:
                await self._registered.wait()
                client.token = self.token  # a credential reloaded since (see _reload_token)
                try:
                    await self._call(client.request, "POST", f"/noded/{self.name}/events", {"events": batch},
                                     timeout=self.io_timeout)
                    break
                except ClientError as e:
                    log.info("event delivery failed (%s); retrying", e)
                    await asyncio.sleep(0.3)
                except Exception:  # noqa: BLE001 -- keep delivering: a lost end event strands a job
                    log.exception("event delivery failed; retrying")
                    client.close()
                    await asyncio.sleep(1)
            for ev in batch:
                if ev.get("event") == "ended" and self.finished.get(ev["job_id"]) is ev:
                    del self.finished[ev["job_id"]]

    async def stats_loop(self):
        while True:
            await asyncio.sleep(30)
            try:
                load = os.getloadavg()[0]
                self.events.put_nowait({"event": "stats", "cpu_load": round(load, 2),
                                        "free_memory_mb": _free_memory_mb()})
            except OSError:
                pass

    # -- lifecycle ----------------------------------------------------------------------
    def reap_leftovers(self):
        """Kill what a previous daemon of this node left running; report those jobs and tasks lost."""
        now = time.time()
        for info in leftovers.reap(self.spool_dir):
            job_id = info.get("job_id")
            if "step_id" in info:
                for rank in info.get("ranks") or []:
                    self.events.put_nowait({"event": "task_ended", "job_id": job_id, "step_id": info["step_id"],
                                            "rank": rank, "exit_code": 0, "exit_signal": signal.SIGKILL,
                                            "time": now})
            elif isinstance(job_id, int):
                # listed as finished at registration: the controller ends (or requeues) it, never relaunches it
                self.launched[job_id] = info.get("restarts", 0)
                self.finished[job_id] = {"event": "ended", "job_id": job_id, "state": "NODE_FAIL", "exit_code": 0,
                                         "exit_signal": signal.SIGKILL, "reason": "NodeDown", "time": now,
                                         "max_rss_mb": 0, "restarts": info.get("restarts", 0)}

    async def run(self):
        self.boot_time = time.time()
        self.reap_leftovers()
        if not proctree.start_fork_server():  # jobs are forked from it (cheaper than forking this daemon)
            log.warning("node %s: no fork server, jobs are forked from the daemon itself", self.name)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        tasks = [asyncio.ensure_future(t) for t in (self.poll_loop(), self.event_loop(), self.stats_loop())]
        await self._stop.wait()
        # Shutting a node down ends its jobs (like a node reboot); report what we can.
        await asyncio.gather(*(runner.cancel() for runner in list(self.runners.values())),
                             *(tasks.kill(signal.SIGKILL) for tasks in list(self.__dict__.get("step_tasks", {}).values())))
        deadline = time.time() + 3
        while self.finished and time.time() < deadline:
            await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
        # Say goodbye, so the controller stops placing jobs here now rather than
        # after SlurmdTimeout; registering again brings the node back.
        try:
            await asyncio.wait_for(self._call(Client(self.address, timeout=2, token=self.token).request, "POST",
                                              f"/noded/{self.name}/events", {"events": [{"event": "shutdown"}]}), 3)
        except (ClientError, asyncio.TimeoutError):
            pass
        log.info("node daemon %s stopped", self.name)
        # The long-poll thread may sit in a 20 s request; nothing is left to do, so
        # exit now instead of letting asyncio.run join the executor threads.
        logging.shutdown()
        os._exit(0)


def _free_memory_mb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def run_noded(name, controller_address, spool_dir, extra_env=None, token=None, token_path=None):
    if is_tcp_address(controller_address) and not token:
        log.warning("node %s: no node credential for TCP controller %s; registration will be refused",
                    name, controller_address)
    daemon = NodeDaemon(name, controller_address=controller_address, spool_dir=spool_dir, extra_env=extra_env,
                        token=token, token_path=token_path)
    asyncio.run(daemon.run())
