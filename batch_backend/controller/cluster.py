"""The controller's authoritative state and every transition of it.

All mutations go through :class:`Cluster` methods, and each one journals what
it changed before returning, so the API layer can acknowledge as soon as a
method returns. Scheduling is event-driven: anything that might let a job start
(submit, job end, node change, release) calls :meth:`request_schedule`, which
coalesces into one pass on the next loop iteration.
"""

import asyncio
import json
import logging
import os
import time

from .. import hostlist
from ..errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from ..model import ACTIVE_STATES, FINAL_STATES
from ..patterns import expand_output_pattern
from ..sched import backfill, fifo
from .dependencies import dependency_state, validate_dependency
from .jobs import build_job, check_job_update, check_submission, format_array_pending
from .nodes import NodeRecord

log = logging.getLogger("batchhub.controller")

#: job states that hold resources on nodes
HOLDING_STATES = ("RUNNING", "COMPLETING", "SUSPENDED")


class Cluster:
    """Nodes, partitions and jobs in memory; the journal on disk."""

    def __init__(self, conf, journal, *, now=time.time):
        from ..conf import get_option
        self.conf = conf
        self.journal = journal
        self.now = now
        self.cluster_name = get_option(conf, "ClusterName") or "batchhub"  # empty = unset
        self.kill_wait = float(get_option(conf, "KillWait", 30))
        self.min_job_age = float(get_option(conf, "MinJobAge", 300))
        self.slurmd_timeout = float(get_option(conf, "SlurmdTimeout", 300))
        self.epoch = os.urandom(8).hex()
        self.nodes = {}
        for i, nconf in enumerate(conf["nodes"]):
            self.nodes[nconf["name"]] = NodeRecord(nconf, i)
        self.partitions = {}
        self.default_partition = None
        for p in conf["partitions"]:
            part = dict(p)
            part["nodes"] = [n for n in p["nodes"] if n in self.nodes]
            self.partitions[p["name"]] = part
            for n in part["nodes"]:
                self.nodes[n].partitions.append(p["name"])
            if p.get("default") and self.default_partition is None:
                self.default_partition = p["name"]
        if self.default_partition is None and self.partitions:
            self.default_partition = next(iter(self.partitions))
        # SchedulerType: sched/backfill (Slurm's default) or sched/builtin (priority FIFO)
        from ..conf import scheduler_parameters
        sched_type = str(get_option(conf, "SchedulerType", "sched/backfill")).lower()
        self.policy = fifo if sched_type == "sched/builtin" else backfill
        sched_params = scheduler_parameters(conf)
        self.backfill_params = backfill.params_from_scheduler_parameters(sched_params)
        try:
            self.bf_interval = float(sched_params.get("bf_interval", 1))
        except (TypeError, ValueError):
            self.bf_interval = 1.0
        self.last_backfill = 0.0
        self.jobs = {}        # job_id -> job dict (active + recently finished)
        self.pending = {}     # job_id -> job dict, submit order
        self.order_dirty = False
        self.payloads = {}    # job_id -> payload, for jobs not yet launched (cache)
        self.json_cache = {}  # job_id -> JSON text as last journaled
        self.running_array_tasks = {}
        self._schedule_handle = None
        self.blocked_partitions = set()
        self.on_change = None  # callback(job) for watchers
        from .steps import StepManager
        self.steps = StepManager(self, os.urandom(32))  # the daemon installs the persistent key
        self.stats = {"passes": 0, "last_pass_ms": 0.0, "submitted": 0}

    # -- recovery ------------------------------------------------------------
    def recover(self):
        """Load the journal after a (re)start; nodes get SlurmdTimeout to re-register."""
        now = self.now()
        for name, data in self.journal.load_nodes().items():
            node = self.nodes.get(name)
            if node is not None:
                node.admin_state = data.get("admin_state", "")
                node.reason = data.get("reason", "")
                node.reason_time = data.get("reason_time")
                node.reason_user = data.get("reason_user", "")
        self.next_job_id = self.journal.next_job_id(int(self._opt("FirstJobId", 1)))
        for job in self.journal.load_live_jobs(now - self.min_job_age):
            self.jobs[job["job_id"]] = job
            if job["state"] == "PENDING":
                self.pending[job["job_id"]] = job
            elif job["state"] in ("RUNNING", "COMPLETING", "SUSPENDED"):
                for name in job["nodes"]:
                    node = self.nodes.get(name)
                    if node is not None:
                        node.allocate(job["job_id"], job["cpus_per_node"].get(name, 0),
                                      job["mem_alloc_per_node"].get(name, 0),
                                      job["gpus_per_node"].get(name, []))
                if job.get("array_job_id") and job["array_job_id"] != job["job_id"]:
                    self._count_array_task(job["array_job_id"], +1)
        self.order_dirty = True
        self.recovered_at = now
        return len(self.jobs)

    def _opt(self, key, default):
        from ..conf import get_option
        return get_option(self.conf, key, default)

    # -- helpers ---------------------------------------------------------------
    def _save(self, *jobs):
        """Journal jobs; the JSON text written is also what the API serves for them."""
        texts = [json.dumps(job, separators=(",", ":")) for job in jobs]
        self.journal.save_jobs(jobs, texts)
        for job, text in zip(jobs, texts):
            self.json_cache[job["job_id"]] = text
        if self.on_change is not None:
            for job in jobs:
                self.on_change(job)

    def public(self, job):
        """The API view of a job (the record itself: every field is readable by users)."""
        return job

    def job_json(self, job):
        """The job as JSON text, from the cache kept in step with the journal."""
        text = self.json_cache.get(job["job_id"])
        if text is None:
            text = self.json_cache[job["job_id"]] = json.dumps(job, separators=(",", ":"))
        return text

    def find(self, id_text):
        """Jobs named by 'N', 'A' (an array: all its tasks), 'A_i' or 'A_[x-y]'.

        Returns a list (possibly empty) of job dicts held in memory.
        """
        id_text = str(id_text).strip()
        if "_" in id_text:
            base, _, idx = id_text.partition("_")
            if not base.isdigit():
                raise InvalidRequest(f"Invalid job id specified: {id_text}")
            array_id = int(base)
            wanted = None
            if idx.startswith("[") and idx.endswith("]"):
                try:
                    from .jobs import parse_array
                    wanted, _ = parse_array(idx[1:-1])
                except InvalidRequest:
                    raise InvalidRequest(f"Invalid job id specified: {id_text}") from None
                wanted = set(wanted)
            elif idx.isdigit():
                wanted = {int(idx)}
            else:
                raise InvalidRequest(f"Invalid job id specified: {id_text}")
            return [j for j in self._array_members(array_id)
                    if (j.get("array_task_id") in wanted)
                    or (j.get("array_pending") and wanted & set(j["array_pending"]))]
        if not id_text.isdigit():
            raise InvalidRequest(f"Invalid job id specified: {id_text}")
        job_id = int(id_text)
        job = self.jobs.get(job_id)
        if job is None:
            return []
        if job.get("array_job_id") == job_id:
            return self._array_members(job_id)
        return [job]

    def _array_members(self, array_id):
        return [j for j in self.jobs.values() if j.get("array_job_id") == array_id]

    def _check_owner(self, job, caller):
        if not caller.admin and job["uid"] != caller.uid:
            raise PermissionDenied("Access/permission denied")
        if not caller.admin and job["user"] != caller.user:
            raise PermissionDenied("Access/permission denied")

    def _count_array_task(self, array_id, delta):
        n = self.running_array_tasks.get(array_id, 0) + delta
        if n > 0:
            self.running_array_tasks[array_id] = n
        else:
            self.running_array_tasks.pop(array_id, None)

    # -- submit ------------------------------------------------------------------
    def submit(self, sub, caller):
        """Validate, journal and queue a submission; returns the job id."""
        check_submission(sub)
        token = sub.get("submit_token")
        if token:
            existing = self.journal.job_for_token(token)
            if existing is not None:
                return existing  # a retried submit: same job, never a second one
        now = self.now()
        job, payload = build_job(sub, job_id=self.next_job_id, caller=caller, partitions=self.partitions,
                                 default_partition=self.default_partition,
                                 nodes={n: r.template() for n, r in self.nodes.items()},
                                 now=now, cluster_name=self.cluster_name)
        if job["dependency"]:
            validate_dependency(job["dependency"], self._lookup_any)
        if sub.get("test_only"):
            return None
        job["priority"] = job["priority"] or max(1, 10**8 - job["job_id"])
        if job["held"]:
            job["reason"] = "JobHeldUser"
        elif (job["begin_time"] or 0) > now:
            job["reason"] = "BeginTime"
        elif job["dependency"]:
            job["reason"] = "Dependency"
        else:
            job["reason"] = "Priority" if job["partition"] in self.blocked_partitions else "None"
        with self.journal.transaction():
            self.journal.save_payload(job["job_id"], payload)
            self._save(job)
            if token:
                self.journal.save_submit_token(token, job["job_id"])
            self.journal.set_next_job_id(job["job_id"] + 1)
        self.next_job_id = job["job_id"] + 1
        self.jobs[job["job_id"]] = job
        self.pending[job["job_id"]] = job
        self.payloads[job["job_id"]] = payload
        self.stats["submitted"] += 1
        if job["priority"] != max(1, 10**8 - job["job_id"]):
            self.order_dirty = True
        self.request_schedule()
        return job["job_id"]

    def _jobs_of_user(self, user):
        return [j for j in self.jobs.values() if j["user"] == user]

    def _lookup_any(self, job_id):
        """A job by raw id from memory or, for old ones, the journal."""
        job = self.jobs.get(job_id)
        if job is not None:
            return job
        rows = self.journal.query_jobs(job_ids=[job_id])
        return rows[0] if rows else None

    # -- scheduling ---------------------------------------------------------------
    #: seconds a pass waits after the event that asked for it. A burst of submits
    #: (a shell loop, a workflow tool) then costs one pass, not one per job, and
    #: the submitting client gets the CPU to finish before its job is launched.
    SCHEDULE_DELAY = 0.003

    def request_schedule(self):
        """Coalesce scheduling requests into one pass a few milliseconds from now."""
        if self._schedule_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._schedule_handle = loop.call_later(self.SCHEDULE_DELAY, self.schedule_now)

    def schedule_now(self):
        self._schedule_handle = None
        if not self.pending:
            return
        t0 = time.perf_counter()
        now = self.now()
        if self.order_dirty:
            ordered = sorted(self.pending.values(), key=lambda j: (-j["priority"], j["submit_time"], j["job_id"]))
            self.pending = {j["job_id"]: j for j in ordered}
            self.order_dirty = False
        common = dict(
            nodes={n: r.view() for n, r in self.nodes.items()},
            partitions=self.partitions,
            pending=list(self.pending.values()),
            running_array_tasks=dict(self.running_array_tasks),
            dependency_state=lambda job: dependency_state(job, self._lookup_any, self._jobs_of_user),
            expand_hostlist=hostlist.expand,
        )
        # Like slurmctld: every event runs the cheap main scheduler (priority order, stop at
        # the first job that cannot start: it can never delay a higher-priority job); the
        # backfill planner, which costs milliseconds per pass on a long queue, runs every
        # bf_interval seconds and is what starts jobs out of order and estimates starts.
        use_backfill = self.policy is backfill and now - self.last_backfill >= self.bf_interval
        if use_backfill:
            self.last_backfill = now
            state = backfill.BackfillState(
                **common, running=[j for j in self.jobs.values() if j["state"] in HOLDING_STATES],
                **self.backfill_params)
        else:
            state = fifo.SchedState(**common)
        decisions = (backfill if use_backfill else fifo).schedule(state, now)
        self.blocked_partitions = state.blocked
        changed = []
        starts = []
        for d in decisions:
            job = self.jobs.get(d.job_id)
            if job is None or job["state"] != "PENDING":
                continue
            if isinstance(d, fifo.SetReason):
                job["reason"] = d.reason
                changed.append(job)
            elif isinstance(d, backfill.Estimate):
                # the planner's opinion, not a fact: served by the API, not journaled
                job["start_time"] = d.start_time
                job["start_estimated"] = d.start_time is not None
                job["sched_nodes"] = hostlist.compress(d.nodes) if d.nodes else ""
                self.json_cache.pop(job["job_id"], None)
            else:
                started = self._start(job, d.allocation, now)
                changed.extend(started)
                starts.append(started[-1])
        if changed:
            # dedupe, keep last
            unique = {j["job_id"]: j for j in changed}
            with self.journal.transaction():
                self._save(*unique.values())
        for job in starts:
            if not job.get("interactive"):
                self._send_launch(job)
        self.stats["passes"] += 1
        self.stats["last_pass_ms"] = (time.perf_counter() - t0) * 1000

    def _start(self, job, alloc, now):
        """Apply a Start decision; for an array master, split off its next task."""
        changed = []
        if job.get("array_pending"):
            index = job["array_pending"][0]
            if len(job["array_pending"]) == 1:
                task = job  # the last task takes over the master record (raw id = A)
                job["array_pending"] = None
                job["array_spec"] = None
                self.pending.pop(job["job_id"], None)
            else:
                task = {k: (v.copy() if isinstance(v, (dict, list)) and k != "array_pending" else v)
                        for k, v in job.items()}
                task["job_id"] = self.next_job_id
                self.next_job_id += 1
                self.journal.set_next_job_id(self.next_job_id)
                task["array_pending"] = None
                task["array_spec"] = None
                job["array_pending"] = job["array_pending"][1:]
                job["array_spec"] = format_array_pending(job["array_pending"], job.get("array_max_running"))
                job["display_id"] = f"{job['job_id']}_[{job['array_spec']}]"
                self.jobs[task["job_id"]] = task
                changed.append(job)
            task["array_task_id"] = index
            task["display_id"] = f"{job['array_job_id']}_{index}"
            self._count_array_task(job["array_job_id"], +1)
            job = task
        else:
            self.pending.pop(job["job_id"], None)
        job["state"] = "RUNNING"
        job["reason"] = "None"
        job["start_time"] = now
        job["start_estimated"] = False
        job["sched_nodes"] = ""
        job["end_time"] = None if job["time_limit"] is None else now + job["time_limit"] * 60
        job["nodes"] = list(alloc.nodes)
        job["nodelist"] = hostlist.compress(alloc.nodes)
        job["batch_host"] = alloc.nodes[0]
        job["cpus_per_node"] = dict(alloc.cpus_per_node)
        job["tasks_per_node"] = dict(alloc.tasks_per_node)
        job["gpus_per_node"] = {n: list(g) for n, g in alloc.gpus_per_node.items()}
        job["mem_alloc_per_node"] = dict(alloc.memory_per_node)
        job["num_nodes"] = len(alloc.nodes)
        job["num_cpus"] = sum(alloc.cpus_per_node.values())
        if job.get("eligible_time") is None:
            job["eligible_time"] = now
        self._expand_paths(job)
        for name in alloc.nodes:
            self.nodes[name].allocate(job["job_id"], alloc.cpus_per_node[name],
                                      alloc.memory_per_node[name], alloc.gpus_per_node.get(name, []))
        changed.append(job)
        return changed

    def _expand_paths(self, job):
        def expand(pattern):
            if not pattern:
                return ""
            path = expand_output_pattern(
                pattern, job_id=job["job_id"], array_job_id=job.get("array_job_id"),
                array_task_id=job.get("array_task_id"), name=job["name"], user=job["user"],
                node=job["batch_host"], node_index=0, step="batch")
            return path if os.path.isabs(path) else os.path.join(job["workdir"], path)
        job["stdout_path"] = expand(job["stdout"])
        job["stderr_path"] = expand(job["stderr"]) if job["stderr"] else job["stdout_path"]

    # -- talking to nodes -------------------------------------------------------------
    def launch_message(self, job):
        payload = self.payloads.get(job["job_id"])
        if payload is None and job.get("array_job_id"):
            payload = self.payloads.get(job["array_job_id"])
        if payload is None:
            payload = self.journal.load_payload(job["job_id"])
            if payload is None and job.get("array_job_id"):
                payload = self.journal.load_payload(job["array_job_id"])
        payload = payload or {"script": "#!/bin/sh\nexit 1\n", "script_args": [], "environment": {}}
        host = job["batch_host"]
        node = self.nodes[host]
        mem = job["mem_alloc_per_node"].get(host) or None
        return {
            "job_id": job["job_id"], "array_job_id": job.get("array_job_id"),
            "array_task_id": job.get("array_task_id"),
            "array_task_count": job.get("array_task_count"), "array_task_min": job.get("array_task_min"),
            "array_task_max": job.get("array_task_max"), "array_task_step": job.get("array_task_step"),
            "name": job["name"], "user": job["user"], "uid": job["uid"], "gid": job["gid"],
            "group": job["group"], "account": job["account"], "qos": job["qos"],
            "partition": job["partition"], "script": payload["script"],
            "script_args": payload.get("script_args", []), "environment": payload.get("environment", {}),
            "export": job.get("export", "ALL"), "get_user_env": job.get("get_user_env", False),
            "workdir": job["workdir"], "submit_dir": job.get("submit_dir") or job["workdir"],
            "submit_host": job["submit_host"], "stdout_path": job["stdout_path"],
            "stderr_path": job["stderr_path"] if job["stderr"] else "",
            "stdin": job["stdin"], "open_mode": job["open_mode"], "time_limit": job["time_limit"],
            "time_limit_seconds": None if job["time_limit"] is None else job["time_limit"] * 60
            - max(0.0, self.now() - job["start_time"]),
            "mem_limit_mb": mem, "cpus_on_node": job["cpus_per_node"].get(host, 1),
            "cpu_slots": job["cpus_per_node"].get(host, 1), "gpu_ids": job["gpus_per_node"].get(host, []),
            "nodes": job["nodes"], "nodelist": job["nodelist"], "num_nodes": job["num_nodes"],
            "num_tasks": job["num_tasks"], "cpus_per_task": job["cpus_per_task"],
            "tasks_per_node_str": _compact_counts([job["tasks_per_node"][n] for n in job["nodes"]]),
            "cpus_per_node_str": _compact_counts([job["cpus_per_node"][n] for n in job["nodes"]]),
            "mem_per_node": job.get("mem_per_node"), "mem_per_cpu": job.get("mem_per_cpu"),
            "cluster_name": self.cluster_name, "node_index": node.index, "restarts": job["restarts"],
            "signal": job.get("signal", ""), "kill_wait": self.kill_wait,
        }

    def _send_launch(self, job):
        node = self.nodes[job["batch_host"]]
        node.push({"type": "launch", "job_id": job["job_id"], "launch": self.launch_message(job)})
        self.payloads.pop(job["job_id"], None)

    # -- job end ----------------------------------------------------------------------
    def job_ended(self, job_id, state, exit_code=0, exit_signal=0, reason="", end_time=None, node=None,
                  max_rss_mb=None):
        """A node daemon reports the batch script's end."""
        job = self.jobs.get(job_id)
        if job is None or job["state"] in FINAL_STATES or job["state"] == "PENDING":
            return
        if node is not None and job.get("batch_host") and node != job["batch_host"]:
            return
        now = end_time or self.now()
        requeue = job.pop("_requeue", None)
        if state == "CANCELLED" and job.get("_cancelled_by") is not None:
            job["cancelled_by"] = job.pop("_cancelled_by")
        self._release_nodes(job)
        self.steps.kill_all(job)  # a step never outlives its job
        if requeue:
            self._requeue_now(job, now, hold=(requeue == "hold"))
            return
        exit_code, exit_signal = int(exit_code or 0), int(exit_signal or 0)
        # Slurm's accounting: the job row of a cancelled or timed-out job shows 0:0,
        # its .batch step the real end (0:15); a shell killed by a stray signal is
        # FAILED 0:SIG on the job row and CANCELLED 0:SIG on .batch.
        batch_state = state
        if state in ("CANCELLED", "TIMEOUT"):
            batch_state = "CANCELLED"
            job["exit_code"], job["exit_signal"] = 0, 0
        else:
            job["exit_code"], job["exit_signal"] = exit_code, exit_signal
            if state == "FAILED" and exit_signal and exit_signal != 53:
                batch_state = "CANCELLED"
        job["state"] = state
        job["end_time"] = now
        job["reason"] = reason or ("NonZeroExitCode" if state == "FAILED" else "None")
        if max_rss_mb is not None:
            job["max_rss_mb"] = max_rss_mb
        if job.get("interactive"):
            self._save(job)
            self.request_schedule()
            return
        job["steps"] = [s for s in job.get("steps", []) if s.get("step_id") != "batch"] + [{
            "step_id": "batch", "name": "batch", "state": batch_state,
            "exit_code": exit_code, "exit_signal": exit_signal,
            "start_time": job["start_time"], "end_time": now, "nodelist": job["batch_host"],
            "num_tasks": 1, "num_cpus": job["cpus_per_node"].get(job["batch_host"], 1),
            "max_rss_mb": max_rss_mb,
        }]
        self._save(job)
        self.request_schedule()

    def _release_nodes(self, job):
        for name in job.get("nodes", []):
            node = self.nodes.get(name)
            if node is not None:
                node.release(job["job_id"], job["cpus_per_node"].get(name, 0),
                             job["mem_alloc_per_node"].get(name, 0), job["gpus_per_node"].get(name, []))
        if job.get("array_job_id") is not None:
            self._count_array_task(job["array_job_id"], -1)

    def _requeue_now(self, job, now, hold=False):
        job["state"] = "PENDING"
        job["reason"] = "JobHeldAdmin" if hold else "BeginTime"
        job["held"] = "admin" if hold else ""
        job["restarts"] += 1
        job["start_time"] = None
        job["end_time"] = None
        job["nodes"], job["nodelist"], job["batch_host"] = [], "", ""
        job["cpus_per_node"], job["tasks_per_node"], job["gpus_per_node"], job["mem_alloc_per_node"] = {}, {}, {}, {}
        job["open_mode"] = "append"
        job["exit_code"] = job["exit_signal"] = 0
        job["num_cpus"] = job["num_tasks"] * job["cpus_per_task"]
        self.pending[job["job_id"]] = job
        self.order_dirty = True
        self._save(job)
        self.request_schedule()

    # -- user actions ----------------------------------------------------------------------
    def cancel(self, ids, caller, *, signal=None, batch_only=False, full=False, users=None, names=None,
               partitions=None, states=None):
        result = {"cancelled": [], "signalled": [], "not_found": [], "denied": []}
        targets = []
        for id_text in ids or []:
            if "." in str(id_text):
                base, _, step_id = str(id_text).partition(".")
                found = self.find(base)
                if not found:
                    result["not_found"].append(str(id_text))
                for job in found:
                    try:
                        self.steps.cancel(job["job_id"], step_id, caller, signal=signal)
                        result["signalled" if signal else "cancelled"].append(str(id_text))
                    except PermissionDenied:
                        result["denied"].append(str(id_text))
                    except NotFound:
                        result["not_found"].append(str(id_text))
                continue
            found = self.find(id_text)
            if not found:
                result["not_found"].append(str(id_text))
            targets.extend(found)
        if not ids and (users or names or partitions or states):
            targets = [j for j in self.jobs.values() if j["state"] in ACTIVE_STATES]
        if users or names or partitions or states:
            targets = [j for j in targets
                       if (not users or j["user"] in users) and (not names or j["name"] in names)
                       and (not partitions or j["partition"] in partitions)
                       and (not states or j["state"] in states)]
        changed = []
        for job in {j["job_id"]: j for j in targets}.values():
            if not caller.admin and job["uid"] != caller.uid or (not caller.admin and job["user"] != caller.user):
                result["denied"].append(job.get("display_id") or str(job["job_id"]))
                continue
            if job["state"] not in ACTIVE_STATES:
                continue
            if signal:
                if job["state"] == "RUNNING":
                    if not job.get("interactive"):
                        self.nodes[job["batch_host"]].push(
                            {"type": "signal", "job_id": job["job_id"], "signal": signal,
                             "batch_only": bool(batch_only), "full": bool(full)})
                    if not batch_only:  # steps' tasks hear it too (that is how IPP interrupts engines)
                        for step in job.get("steps", []):
                            if step.get("step_id") != "batch" and step["state"] == "RUNNING":
                                self.steps.kill(job, step, str(signal))
                    result["signalled"].append(job["display_id"])
                continue
            if job["state"] == "PENDING":
                self.pending.pop(job["job_id"], None)
                job["state"] = "CANCELLED"
                job["reason"] = "None"
                job["end_time"] = self.now()
                job["cancelled_by"] = caller.uid
                if job.get("array_pending"):
                    job["array_pending"] = job["array_pending"]
                changed.append(job)
            elif job["state"] in ("RUNNING", "SUSPENDED"):
                if job.get("interactive"):
                    job["_cancelled_by"] = caller.uid
                    self.job_ended(job["job_id"], "CANCELLED", reason="None")
                else:
                    job["state"] = "COMPLETING"
                    job["_cancelled_by"] = caller.uid
                    self.nodes[job["batch_host"]].push({"type": "cancel", "job_id": job["job_id"]})
                changed.append(job)
            result["cancelled"].append(job["display_id"])
        if changed:
            with self.journal.transaction():
                self._save(*changed)
            self.request_schedule()
        return result

    def job_action(self, id_text, action, caller):
        jobs = self.find(id_text)
        if not jobs:
            raise NotFound("Invalid job id specified")
        for job in jobs:  # every refusal before any change: an array is held whole or not at all
            self._check_action(job, action, caller)
        changed = []
        for job in jobs:
            self._check_owner(job, caller)
            if action in ("hold", "uhold"):
                if job["state"] != "PENDING":
                    raise Conflict("Job is no longer pending execution")
                job["held"] = "admin" if (action == "hold" and caller.admin) else "user"
                job["reason"] = "JobHeldAdmin" if job["held"] == "admin" else "JobHeldUser"
                job["eligible_time"] = None
                job["priority"] = job["priority"]
            elif action == "release":
                if job["state"] != "PENDING":
                    raise Conflict("Job is no longer pending execution")
                if job["held"] == "admin" and not caller.admin:
                    raise PermissionDenied("Access/permission denied: job held by an administrator")
                job["held"] = ""
                job["reason"] = "None"
                job["eligible_time"] = self.now()
            elif action in ("requeue", "requeuehold"):
                if job["state"] == "PENDING":
                    if action == "requeuehold":
                        job["held"] = "admin" if caller.admin else "user"
                        job["reason"] = "JobHeldAdmin" if caller.admin else "JobHeldUser"
                    else:
                        raise Conflict("Job is pending execution")
                elif job["state"] in ("RUNNING", "SUSPENDED"):
                    job["_requeue"] = "hold" if action == "requeuehold" else "requeue"
                    job["state"] = "COMPLETING"
                    self.nodes[job["batch_host"]].push({"type": "cancel", "job_id": job["job_id"], "requeue": True})
                elif job["state"] in FINAL_STATES:
                    if not job.get("nodes") and job["state"] == "CANCELLED" and job.get("start_time") is None:
                        raise Conflict("Job has not started, cannot requeue a cancelled pending job")
                    self._release_nodes_if_needed(job)
                    self._requeue_now(job, self.now(), hold=(action == "requeuehold"))
                    continue
                else:
                    raise Conflict("Job is completing, try again later")
            elif action in ("suspend", "resume"):
                if not caller.admin:
                    raise PermissionDenied("Access/permission denied")
                if job["state"] not in ("RUNNING", "SUSPENDED"):
                    raise Conflict("Job is not running")
                want = "SUSPENDED" if action == "suspend" else "RUNNING"
                if job["state"] != want:
                    self.nodes[job["batch_host"]].push(
                        {"type": "signal", "job_id": job["job_id"],
                         "signal": "STOP" if action == "suspend" else "CONT", "full": True})
                    job["state"] = want
            elif action == "top":
                if job["state"] != "PENDING":
                    raise Conflict("Job is no longer pending execution")
                mine = [j["priority"] for j in self.pending.values() if j["uid"] == job["uid"]]
                job["priority"] = max(mine) + 1
                self.order_dirty = True
            else:
                raise InvalidRequest(f"unknown action {action}")
            changed.append(job)
        if changed:
            with self.journal.transaction():
                self._save(*changed)
        self.request_schedule()
        return [j["display_id"] for j in jobs]

    def _check_action(self, job, action, caller):
        """Raise what :meth:`job_action` would raise for ``job``, before anything has changed."""
        self._check_owner(job, caller)
        state = job["state"]
        if action in ("hold", "uhold", "release", "top"):
            if state != "PENDING":
                raise Conflict("Job is no longer pending execution")
            if action == "release" and job["held"] == "admin" and not caller.admin:
                raise PermissionDenied("Access/permission denied: job held by an administrator")
        elif action in ("requeue", "requeuehold"):
            if state == "PENDING" and action == "requeue":
                raise Conflict("Job is pending execution")
            if state in FINAL_STATES:
                if not job.get("nodes") and state == "CANCELLED" and job.get("start_time") is None:
                    raise Conflict("Job has not started, cannot requeue a cancelled pending job")
            elif state not in ("PENDING", "RUNNING", "SUSPENDED"):
                raise Conflict("Job is completing, try again later")
        elif action in ("suspend", "resume"):
            if not caller.admin:
                raise PermissionDenied("Access/permission denied")
            if state not in ("RUNNING", "SUSPENDED"):
                raise Conflict("Job is not running")

    def _release_nodes_if_needed(self, job):
        return None

    def update_job(self, id_text, fields, caller):
        """scontrol update job: change limits and attributes of a job."""
        jobs = self.find(id_text)
        if not jobs:
            raise NotFound("Invalid job id specified")
        check_job_update(fields)
        # all or nothing: a refusal for a later field or array task undoes the earlier ones
        saved = [(job, dict(job)) for job in jobs]
        pushes = []
        try:
            changed = self._apply_job_update(jobs, fields, caller, pushes)
        except BaseException:
            for job, before in saved:
                job.clear()
                job.update(before)
            raise
        for node, command in pushes:
            node.push(command)
        with self.journal.transaction():
            self._save(*changed)
        self.request_schedule()
        return [j["display_id"] for j in changed]

    def _apply_job_update(self, jobs, fields, caller, pushes):
        changed = []
        for job in jobs:
            self._check_owner(job, caller)
            pending = job["state"] == "PENDING"
            for key, value in fields.items():
                if key == "time_limit":
                    if value is not None and (not isinstance(value, int) or value <= 0):
                        raise InvalidRequest("Invalid time limit specification")
                    if not caller.admin and (value is None or (job["time_limit"] is not None and value > job["time_limit"])):
                        raise PermissionDenied("Access/permission denied: only an administrator may increase the time limit")
                    if job["state"] not in ACTIVE_STATES:
                        raise Conflict("Job is no longer active")
                    job["time_limit"] = value
                    if job["state"] == "RUNNING":
                        job["end_time"] = None if value is None else job["start_time"] + value * 60
                        pushes.append((self.nodes[job["batch_host"]],
                                       {"type": "time_limit", "job_id": job["job_id"],
                                        "seconds_left": None if value is None
                                        else value * 60 - (self.now() - job["start_time"])}))
                elif key == "priority":
                    if not caller.admin:
                        raise PermissionDenied("Access/permission denied: only an administrator may set the priority")
                    job["priority"] = int(value)
                    self.order_dirty = True
                elif key == "nice":
                    if int(value) < 0 and not caller.admin:
                        raise PermissionDenied("Access/permission denied: only an administrator may set a negative nice value")
                    job["priority"] -= int(value) - job.get("nice", 0)
                    job["nice"] = int(value)
                    self.order_dirty = True
                elif key == "name":
                    job["name"] = str(value)
                elif key == "comment":
                    job["comment"] = str(value)
                elif key == "requeue":
                    job["requeue"] = bool(value)
                else:
                    if not pending:
                        raise Conflict("Job is no longer pending execution")
                    if key == "partition":
                        if value not in self.partitions:
                            raise InvalidRequest("Invalid partition name specified")
                        job["partition"] = value
                    elif key == "dependency":
                        if value:
                            validate_dependency(value, self._lookup_any)
                        job["dependency"] = value or ""
                    elif key == "begin_time":
                        job["begin_time"] = value
                    elif key == "num_nodes":
                        job["num_nodes"] = job["num_nodes_req"] = int(value)
                        job["num_tasks"] = max(job["num_tasks"], int(value))
                    elif key == "num_tasks":
                        job["num_tasks"] = int(value)
                        job["num_cpus"] = job["num_tasks"] * job["cpus_per_task"]
                    elif key == "mem_per_node":
                        job["mem_per_node"] = int(value)
                    elif key == "features":
                        job["features"] = value or ""
                    elif key == "exclude":
                        job["exclude"] = value or ""
            changed.append(job)
        return changed

    # -- nodes -------------------------------------------------------------------------------
    def update_nodes(self, names, state, reason, caller):
        if not caller.admin:
            raise PermissionDenied("Access/permission denied: only an administrator may change node state")
        nodes = []
        for expr in names:
            try:
                expanded = hostlist.expand(expr)
            except ValueError as e:
                raise InvalidRequest(f"Invalid node name specified: {e}") from None
            for name in expanded:
                if name not in self.nodes:
                    raise NotFound(f"Node {name} not found")
                nodes.append(self.nodes[name])
        state = (state or "").upper()
        if state in ("DRAIN", "DOWN") and not reason:
            raise InvalidRequest("You must specify a reason when DOWNING or DRAINING a node. Request denied")
        for node in nodes:
            if state in ("DRAIN", "DOWN"):
                node.admin_state = state
                node.reason, node.reason_time, node.reason_user = reason, self.now(), caller.user
                if state == "DOWN":
                    self._fail_node_jobs(node, "NODE_FAIL")
            elif state in ("RESUME", "IDLE", "UNDRAIN"):
                node.admin_state = ""
                node.reason, node.reason_time, node.reason_user = "", None, ""
                if node.not_responding and node.registered:
                    node.not_responding = False
            elif state:
                raise InvalidRequest(f"Invalid node state specified: {state}")
            elif reason is not None:
                node.reason = reason
            self.journal.save_node(node.name, {"admin_state": node.admin_state, "reason": node.reason,
                                               "reason_time": node.reason_time, "reason_user": node.reason_user})
        self.request_schedule()
        return [n.name for n in nodes]

    def _fail_node_jobs(self, node, state):
        for job_id in list(node.jobs):
            job = self.jobs.get(job_id)
            if job is None:
                continue
            node.push({"type": "cancel", "job_id": job_id})
            if job.get("requeue"):
                job["_requeue"] = "requeue"
            self.job_ended(job_id, state, reason="NodeDown")

    def node_register(self, name, info):
        """A node daemon (re)connects: check resources, reconcile its jobs."""
        node = self.nodes.get(name)
        if node is None:
            raise NotFound(f"Node {name} not found in the configuration")
        from ..noded.resources import check_node_resources
        now = self.now()
        node.daemon_info = info
        node.registered = True
        node.not_responding = False
        node.last_seen = now
        node.boot_time = info.get("boot_time") or now
        overrides = "config_overrides" in str(self._opt("SlurmdParameters", ""))
        real = {"cpus": info.get("cpus", 0), "memory_mb": info.get("memory_mb", 0), "gpus": info.get("gpus", [])}
        node.resource_problem = check_node_resources(
            {"cpus": node.cpus, "real_memory": node.real_memory, "gres": node.gres}, real,
            config_overrides=overrides) or ""
        running = set(info.get("running", []))
        finished = set(info.get("finished", []))
        node.commands = []  # a fresh session: re-derive what the node must do
        for job_id in list(node.jobs):
            job = self.jobs.get(job_id)
            if job is None or job.get("batch_host") != name or job.get("interactive"):
                continue
            if job_id in running or job_id in finished:
                continue
            if job["state"] == "RUNNING" and not job.get("interactive"):
                self._send_launch(job)  # decided but never delivered: launch now
            elif job["state"] == "COMPLETING":
                self.job_ended(job_id, "CANCELLED", exit_signal=15, reason="None")
        for job_id in running:
            job = self.jobs.get(job_id)
            if job is None or job["state"] in FINAL_STATES or job.get("batch_host") != name:
                node.push({"type": "cancel", "job_id": job_id, "stale": True})
            elif job["state"] == "COMPLETING":
                node.push({"type": "cancel", "job_id": job_id, "requeue": bool(job.get("_requeue"))})
        self.request_schedule()
        return {"epoch": self.epoch, "node_index": node.index, "cpus": node.cpus,
                "real_memory": node.real_memory, "gres": node.gres, "kill_wait": self.kill_wait,
                "cluster_name": self.cluster_name, "resource_problem": node.resource_problem,
                # node daemons check step credentials with it (sent only over the local,
                # peer-authenticated socket to a caller with node privileges)
                "credential_key": self.steps.key.hex()}

    def node_seen(self, name):
        node = self.nodes.get(name)
        if node is not None:
            node.last_seen = self.now()
            if node.not_responding and node.registered:
                node.not_responding = False
                self.request_schedule()
        return node

    def node_event(self, name, event):
        kind = event.get("event")
        if kind == "started":
            job = self.jobs.get(event.get("job_id"))
            if job is not None and job.get("batch_host") == name and not job.get("batch_pid"):
                job["batch_pid"] = event.get("pid")
        elif kind == "ended":
            self.job_ended(event["job_id"], event["state"], event.get("exit_code", 0),
                           event.get("exit_signal", 0), event.get("reason", ""), event.get("time"),
                           node=name, max_rss_mb=event.get("max_rss_mb"))
        elif kind == "task_ended":
            self.steps.task_ended(name, event)
        elif kind == "shutdown":
            node = self.nodes.get(name)
            if node is not None:
                log.info("node %s: daemon stopped", name)
                node.registered = False
                node.not_responding = True
                if node.jobs:
                    self._fail_node_jobs(node, "NODE_FAIL")
        elif kind == "stats":
            node = self.nodes.get(name)
            if node is not None:
                node.daemon_info.update({k: event[k] for k in ("cpu_load", "free_memory_mb") if k in event})

    def complete_job(self, id_text, exit_code, caller):
        """srun/salloc release an interactive allocation they created (the job ends with them)."""
        jobs = self.find(id_text)
        if not jobs:
            raise NotFound("Invalid job id specified")
        job = jobs[0]
        self._check_owner(job, caller)
        if not job.get("interactive"):
            raise Conflict("Only allocations made by srun or salloc can be completed this way")
        if job["state"] in ("RUNNING", "SUSPENDED", "COMPLETING"):
            code = int(exit_code or 0)
            self.job_ended(job["job_id"], "COMPLETED" if code == 0 else "FAILED", exit_code=code)
        elif job["state"] == "PENDING":
            self.cancel([str(job["job_id"])], caller)
        return job

    def extension_check(self, id_text, minutes, caller):
        """Would adding ``minutes`` to a running job's limit delay any pending job's planned start?

        Asks the backfill planner twice, on copies (nothing changes): once as things
        are, once with the longer limit; any pending job planned later the second
        time (or no longer starting now) is delayed by the extension.
        """
        jobs = self.find(id_text)
        if not jobs:
            raise NotFound("Invalid job id specified")
        job = jobs[0]
        self._check_owner(job, caller)
        if job["state"] != "RUNNING" or job.get("time_limit") is None:
            return {"ok": False, "reason": f"job {job['job_id']} is not running with a time limit", "delays": []}
        if not isinstance(minutes, int) or minutes <= 0:
            raise InvalidRequest("minutes must be a positive integer")
        wanted = job["time_limit"] + minutes
        limit = self.partitions[job["partition"]].get("max_time")
        if limit is not None and wanted > limit:
            return {"ok": False, "delays": [],
                    "reason": f"partition {job['partition']} allows at most {limit} minutes"}
        now = self.now()

        def plan(extended):
            running = []
            for j in self.jobs.values():
                if j["state"] in HOLDING_STATES:
                    if extended and j["job_id"] == job["job_id"]:
                        j = dict(j, time_limit=wanted, end_time=j["start_time"] + wanted * 60)
                    running.append(j)
            pending = [dict(j, start_estimated=False, start_time=None) for j in self.pending.values()]
            state = backfill.BackfillState(
                nodes={n: r.view() for n, r in self.nodes.items()}, partitions=self.partitions, pending=pending,
                running_array_tasks=dict(self.running_array_tasks),
                dependency_state=lambda j: dependency_state(j, self._lookup_any, self._jobs_of_user),
                expand_hostlist=hostlist.expand, running=running, **self.backfill_params)
            starts = {}
            for d in backfill.schedule(state, now):
                if isinstance(d, fifo.Start):
                    starts.setdefault(d.job_id, now)
                elif isinstance(d, backfill.Estimate) and d.start_time is not None:
                    starts[d.job_id] = d.start_time
            return starts

        before, after = plan(False), plan(True)
        delays = [{"job_id": jid, "before": t, "after": after.get(jid)}
                  for jid, t in sorted(before.items())
                  if after.get(jid) is None or after[jid] > t + 1]
        if delays:
            first = delays[0]
            return {"ok": False, "delays": delays,
                    "reason": f"it would delay the planned start of job {first['job_id']}"
                              + (f" and {len(delays) - 1} more" if len(delays) > 1 else "")}
        return {"ok": True, "delays": [], "reason": "", "new_time_limit": wanted}

    def backfill_due(self):
        """Pending work and a backfill pass older than bf_interval: time for one."""
        return bool(self.pending) and self.policy is backfill and self.now() - self.last_backfill >= self.bf_interval

    def enforce_interactive_limits(self):
        """No batch script watches an srun/salloc allocation: its time limit is the controller's job."""
        now = self.now()
        for job in list(self.jobs.values()):
            if job.get("interactive") and job["state"] == "RUNNING" and job.get("time_limit") is not None \
                    and now >= job["start_time"] + job["time_limit"] * 60:
                self.job_ended(job["job_id"], "TIMEOUT", reason="TimeLimit")

    def check_node_timeouts(self):
        """Mark nodes that stopped polling as NOT_RESPONDING; fail their jobs after SlurmdTimeout."""
        now = self.now()
        for node in self.nodes.values():
            if node.polling:
                node.last_seen = now
                continue
            last = node.last_seen or getattr(self, "recovered_at", now)
            if now - last > self.slurmd_timeout and not node.not_responding:
                node.not_responding = True
                if node.jobs:
                    log.warning("node %s not responding for %.0fs: failing its jobs", node.name, now - last)
                    self._fail_node_jobs(node, "NODE_FAIL")

    def purge_old_jobs(self):
        """Drop finished jobs older than MinJobAge from memory (they stay in the journal)."""
        cutoff = self.now() - self.min_job_age
        for job_id in [j for j, job in self.jobs.items()
                       if job["state"] in FINAL_STATES and (job.get("end_time") or 0) < cutoff]:
            del self.jobs[job_id]
            self.json_cache.pop(job_id, None)

    # -- queries --------------------------------------------------------------------------------
    def query(self, *, ids=None, users=None, partitions=None, states=None, names=None, include_finished=False):
        if ids:
            seen, jobs = set(), []
            for id_text in ids:
                for j in self.find(id_text):
                    if j["job_id"] not in seen:
                        seen.add(j["job_id"])
                        jobs.append(j)
        else:
            jobs = self.jobs.values()
        out = []
        want_states = set(states or [])
        for job in jobs:
            if want_states:
                if "ALL" not in want_states and job["state"] not in want_states:
                    continue
            elif not include_finished and job["state"] not in ACTIVE_STATES:
                continue
            if users and job["user"] not in users:
                continue
            if partitions and job["partition"] not in partitions:
                continue
            if names and job["name"] not in names:
                continue
            out.append(job)
        out.sort(key=lambda j: j["job_id"])
        return out


def _compact_counts(values):
    """[2, 2, 1] -> '2(x2),1' as in SLURM_TASKS_PER_NODE."""
    parts, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        n = j - i + 1
        parts.append(str(values[i]) if n == 1 else f"{values[i]}(x{n})")
        i = j + 1
    return ",".join(parts)
