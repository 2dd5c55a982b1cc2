"""Run one job step's tasks on this node: the node daemon's slurmstepd for ``srun`` steps.

The controller sends ``launch_step`` to every node of a step with the ranks this
node runs (see the step protocol in ``batch_backend/controller/steps.py``).
:class:`StepTasks` starts them, watches them and reports each end:

* Every task is forked and exec'd like a batch script (``proctree.fork_exec``):
  new session (so one process group per task), the job's uid/gid/groups when
  the daemon is root, the step's working directory, CPU binding.
* Environment: srun's step environment, the daemon's extra variables, then the
  per-task Slurm variables (``SLURM_PROCID``, ``SLURM_LOCALID``, ``SLURM_NODEID``,
  ``SLURM_STEP_*``...; SLURM_DIALECT section 3) and, for ``--mpi=pmi1|pmi2``,
  ``PMI_PORT``/``PMI_ID``/``PMI_RANK``/``PMI_SIZE`` pointing at srun's PMI server.
* Stdio: each stream either goes to a file (srun ``-o``/``-e`` pattern, expanded
  per task) or to srun itself: the daemon connects to srun's I/O address, sends
  one JSON header line ``{"key", "job_id", "step_id", "rank", "stream"}`` and
  hands the connected socket to the task as fd 0/1/2. No daemon process sits
  in the data path.
* Each task's end is one event ``{"event": "task_ended", "job_id", "step_id",
  "rank", "exit_code", "exit_signal", "time"}`` (``0:SIG`` when a signal killed it).
  Once every local task has ended, processes the tasks left behind (same
  session, or descendants seen while the task lived) are killed, like
  Slurm's end-of-step cleanup.
* :meth:`StepTasks.signal` delivers a signal to every task's process group (scancel
  ``-s``, srun forwarding USR1); :meth:`StepTasks.kill` is scancel: SIGCONT+SIGTERM,
  SIGKILL after ``kill_wait``. A step that outlives its job's time limit
  (``time_left_seconds``) is killed the same way.

A task that cannot start (executable not found, ...) ends at once with the text
Slurm's slurmstepd prints on the task's stderr and exit code = errno (2 for
ENOENT), as in Slurm.
"""

import asyncio
import errno
import json
import logging
import os
import pwd
import signal
import socket
import time

from . import proctree

log = logging.getLogger(__name__)

TAG_VAR = "BATCHHUB_STEP_TAG"  # in every task: finds escaped descendants at kill time
CONNECT_TIMEOUT = 10.0


def task_environment(step, *, job_id, step_id, rank, local_id, node_name, extra_env=None):
    """The environment of one task (SLURM_DIALECT section 3), srun's values kept byte-exact."""
    env = dict(step.get("environment") or {})
    # srun inside a batch job forwards the batch script's tag: it names processes of that job on
    # the batch host only, and must not make its daemon reach into tasks on other nodes (which
    # share /proc with it when nodes are virtual). Tasks carry the step's own tag instead.
    env.pop("BATCHHUB_JOB_TAG", None)
    for key, value in (extra_env or {}).items():
        env.setdefault(key, str(value))
    ntasks = str(step.get("num_tasks") or len(step.get("ranks") or []) or 1)
    nodes = step.get("nodes") or [node_name]
    env.update({
        "SLURM_JOB_ID": str(job_id), "SLURM_JOBID": str(job_id),
        "SLURM_STEP_ID": str(step_id), "SLURM_STEPID": str(step_id),
        "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(local_id),
        "SLURM_NODEID": str(step.get("node_index") or 0),
        "SLURM_NTASKS": ntasks, "SLURM_NPROCS": ntasks,
        "SLURM_STEP_NODELIST": step.get("nodelist") or ",".join(nodes),
        "SLURM_STEP_NUM_NODES": str(len(nodes)), "SLURM_STEP_NUM_TASKS": ntasks,
        "SLURM_STEP_TASKS_PER_NODE": str(step.get("tasks_per_node_str") or ntasks),
        "SLURMD_NODENAME": node_name,
        # as slurmstepd does (srun without --preserve-env): the step's own counts
        "SLURM_NNODES": str(len(nodes)), "SLURM_NODELIST": step.get("nodelist") or ",".join(nodes),
        "SLURM_TASKS_PER_NODE": str(step.get("tasks_per_node_str") or ntasks),
    })
    if step.get("cpus_per_task"):
        env["SLURM_CPUS_PER_TASK"] = str(step["cpus_per_task"])
    if step.get("job_nodelist"):
        env.setdefault("SLURM_JOB_NODELIST", step["job_nodelist"])
    mpi = step.get("mpi") or "none"
    if mpi in ("pmi1", "pmi2") and step.get("pmi_address"):
        env.update({"PMI_PORT": step["pmi_address"], "PMI_ID": str(rank), "PMI_RANK": str(rank),
                    "PMI_SIZE": ntasks})
        if mpi == "pmi2":
            env["PMI_JOBID"] = f"{job_id}.{step_id}"
    return env


def resolve_executable(argv0, env, cwd):
    """The path ``execve`` gets for ``argv0`` (searched in the *task's* PATH), or None."""
    if "/" in argv0:
        return os.path.join(cwd, argv0)
    path = env.get("PATH")
    if path is None:
        return None  # Slurm: no PATH in the step, no search (srun resolves it instead)
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", argv0)
        if not os.path.isabs(candidate):
            candidate = os.path.join(cwd, candidate)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def file_scope(pattern):
    """Who writes the file a ``-o``/``-e`` pattern names: one 'task', every task of a
    'node' (``%N``/``%n`` without ``%t``), or every task of the 'step'."""
    import re
    if re.search(r"(?<!%)%\d*t", pattern):
        return "task"
    if re.search(r"(?<!%)%\d*[Nn]", pattern):
        return "node"
    return "step"


def credential_ok(key, step, job_id, step_id):
    """Check the controller's signature on a launch (Slurm's job credential).

    ``key`` is the cluster's credential key (bytes or hex text) as the controller
    hands it to registered nodes; without one there is nothing to check against.
    """
    if not key:
        return True
    from ..credential import verify_step
    if isinstance(key, str):
        key = bytes.fromhex(key)
    return verify_step(key, step.get("credential") or "", job_id, step_id, step.get("uid"), step.get("nodelist"))


class _Task:
    __slots__ = ("rank", "local_id", "pid", "pidfd", "start_ticks", "exit_code", "exit_signal", "ended")

    def __init__(self, rank, local_id):
        self.rank = rank
        self.local_id = local_id
        self.pid = None
        self.pidfd = None
        self.start_ticks = None
        self.exit_code = 0
        self.exit_signal = 0
        self.ended = False


class StepTasks:
    """The tasks of one step on this node; see the module docstring."""

    def __init__(self, job_id, step_id, step, *, node_name, on_event, kill_wait=30.0, extra_env=None,
                 cpu_ids=None):
        self.job_id = int(job_id)
        self.step_id = int(step_id)
        self.step = step
        self.node_name = node_name
        self.on_event = on_event
        self.kill_wait = kill_wait
        self.extra_env = dict(extra_env or {})
        self.cpu_ids = list(cpu_ids or [])
        ranks = [int(r) for r in step.get("ranks") or []]
        self.tasks = {rank: _Task(rank, i) for i, rank in enumerate(ranks)}
        self.done = False
        self.tag = f"{node_name}:{self.job_id}.{self.step_id}:{os.urandom(6).hex()}"
        self._known = {}  # pid -> start ticks of every process seen in the step
        self._kill_handle = None
        self._limit_handle = None
        self._killing = False
        self._started = False
        self._cancelled_before_start = False
        self._waiters = []
        root = os.geteuid() == 0
        uid = step.get("uid")
        self._drop = root and uid is not None and int(uid) != 0
        self._uid = int(uid) if self._drop else os.geteuid()

    # ------------------------------------------------------------------ public
    async def start(self):
        """Start every local task; a task that cannot start ends at once (event included)."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        if self._cancelled_before_start:
            for task in self.tasks.values():
                self._task_ended(task, 0, signal.SIGKILL)
            return
        cwd = self.step.get("cwd") or "/"
        tasks = list(self.tasks.values())
        scopes = self._file_scopes()
        shared = "step" in scopes  # srun truncated it before the step; every task appends
        if len(tasks) > 1 and "node" in scopes:
            # One file per node: the first local task truncates it and opens it
            # before the others (they start once it exec'd) append.
            await self._launch(loop, tasks[0], cwd, append=shared)
            await asyncio.gather(*(self._launch(loop, task, cwd, append=True) for task in tasks[1:]))
        else:
            await asyncio.gather(*(self._launch(loop, task, cwd, append=shared) for task in tasks))
        left = self.step.get("time_left_seconds")
        if left is not None and not self.done:
            self._limit_handle = loop.call_later(max(0.0, float(left)), self._time_limit)

    def signal(self, signum):
        """Send ``signum`` to every task's process group and every process seen in the step."""
        if self.done:
            return False
        self._signal_all(signum)
        return True

    def suspend(self):
        """SIGSTOP every task (the job is suspended); the step's time limit stops with it."""
        if self.done or not self._started:
            return False
        if self._limit_handle is not None:
            self._limit_handle.cancel()
            self._limit_handle = None
        self._signal_all(signal.SIGSTOP)
        return True

    def resume(self, seconds_left=None):
        """SIGCONT every task; the time limit restarts with ``seconds_left`` (None: unlimited)."""
        if self.done:
            return False
        self._signal_all(signal.SIGCONT)
        if self._limit_handle is not None:
            self._limit_handle.cancel()
            self._limit_handle = None
        if seconds_left is not None and not self._killing:
            loop = asyncio.get_running_loop()
            self._limit_handle = loop.call_later(max(0.0, float(seconds_left)), self._time_limit)
        return True

    async def kill(self, signum=None):
        """``signum``: deliver it (scancel -s). None: SIGCONT+SIGTERM now, SIGKILL after kill_wait."""
        if signum is not None:
            self.signal(signum)
            return
        if not self._started:
            self._cancelled_before_start = True
            return
        if self.done or self._killing:
            return
        self._killing = True
        self._signal_all(signal.SIGCONT)
        self._signal_all(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        self._kill_handle = loop.call_later(self.kill_wait, self._signal_all, signal.SIGKILL)

    async def wait(self):
        """Return once every local task has ended."""
        if self.done:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        await fut

    # --------------------------------------------------------------- launching
    def _file_scopes(self):
        """How the -o/-e files are shared: {'task', 'node', 'step'} (see :func:`file_scope`)."""
        if (self.step.get("num_tasks") or len(self.tasks)) <= 1:
            return {"task"}
        return {file_scope(self.step[k]) for k in ("stdout", "stderr")
                if self.step.get(k) and not self.step[k].startswith("/dev/")}

    def _plan(self, task, cwd, env, executable):
        plan = proctree.LaunchPlan()
        plan.script = executable
        plan.argv = list(self.step["argv"])
        plan.env = env
        plan.workdir = cwd
        plan.drop = self._drop
        plan.uid = self._uid
        plan.gid = os.getegid()
        plan.groups = []
        if self._drop:
            try:
                pw = pwd.getpwuid(self._uid)
                name, default_gid = pw.pw_name, pw.pw_gid
            except KeyError:
                name, default_gid = str(self.step.get("user") or self._uid), self._uid
            plan.gid = int(self.step["gid"]) if self.step.get("gid") is not None else default_gid
            try:
                plan.groups = os.getgrouplist(name, plan.gid)
            except OSError:
                plan.groups = [plan.gid]
        plan.stdout = plan.stderr = ""
        plan.stdin = "/dev/null"
        plan.append = False
        plan.cpu_ids = self.cpu_ids
        plan.umask = 0o022
        try:
            plan.umask = int(env.get("SLURM_UMASK", "0022"), 8) & 0o777
        except ValueError:
            pass
        plan.interpreter = None
        plan.stdin_fd = plan.stdout_fd = plan.stderr_fd = None
        return plan

    def _output_path(self, pattern, task, cwd):
        from ..patterns import expand_output_pattern
        s = self.step
        path = expand_output_pattern(
            pattern, job_id=self.job_id, array_job_id=s.get("array_job_id"), array_task_id=s.get("array_task_id"),
            name=s.get("job_name") or s.get("name") or "", user=s.get("user") or "", node=self.node_name,
            node_index=s.get("node_index") or 0, step=self.step_id, task=task.rank)
        return path if os.path.isabs(path) else os.path.join(cwd, path)

    async def _connect(self, loop, rank, stream):
        """A socket to srun's I/O server, header sent, blocking again (the task inherits it)."""
        host, _, port = self.step["io_address"].rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, (host, int(port))), CONNECT_TIMEOUT)
            header = {"key": self.step.get("io_key", ""), "job_id": self.job_id, "step_id": self.step_id,
                      "rank": rank, "stream": stream}
            await loop.sock_sendall(sock, json.dumps(header).encode() + b"\n")
            if stream == "stdin":
                sock.shutdown(socket.SHUT_WR)  # the task only reads it
            elif stream in ("stdout", "stderr"):
                sock.shutdown(socket.SHUT_RD)  # the task only writes it
            sock.setblocking(True)
            return sock
        except BaseException:
            sock.close()
            raise

    async def _launch(self, loop, task, cwd, append=False):
        try:
            await self._launch_task(loop, task, cwd, append)
        except Exception:  # noqa: BLE001 -- a bad launch ends this task, never the daemon's loop
            log.exception("JobId=%s StepId=%s.%s task %s: launch failed", self.job_id, self.job_id, self.step_id,
                          task.rank)
            if task.pid is None:
                self._task_ended(task, 1, 0)

    async def _launch_task(self, loop, task, cwd, append):
        s = self.step
        env = task_environment(s, job_id=self.job_id, step_id=self.step_id, rank=task.rank,
                               local_id=task.local_id, node_name=self.node_name, extra_env=self.extra_env)
        env[TAG_VAR] = self.tag
        executable = resolve_executable(str(s["argv"][0]), env, cwd)
        plan = self._plan(task, cwd, env, executable)
        plan.append = append
        # srun -o FILE without -e: stderr goes to FILE too (Slurm); no pattern: to srun.
        wanted = []
        if not s.get("stdout"):
            wanted.append("stdout")
            if not s.get("stderr"):
                wanted.append("stderr")
        mode = s.get("stdin_mode") or "none"
        if mode == "all" or (mode == "0" and task.rank == 0):
            wanted.append("stdin")
        socks = {}
        try:
            if wanted:
                if not s.get("io_address"):
                    raise OSError(errno.EINVAL, "no I/O address for the step")
                conns = await asyncio.gather(*(self._connect(loop, task.rank, w) for w in wanted))
                socks = dict(zip(wanted, conns))
        except (OSError, asyncio.TimeoutError, ValueError) as exc:
            for sock in socks.values():
                sock.close()
            log.warning("JobId=%s StepId=%s.%s task %s: cannot reach srun at %s: %s", self.job_id, self.job_id,
                        self.step_id, task.rank,
                        s.get("io_address"), exc)
            self._task_ended(task, 1, 0)
            return
        try:
            if "stdout" in socks:
                plan.stdout_fd = socks["stdout"].fileno()
            else:
                plan.stdout = self._output_path(s["stdout"], task, cwd)
            if "stderr" in socks:
                plan.stderr_fd = socks["stderr"].fileno()
            elif s.get("stderr"):
                plan.stderr = self._output_path(s["stderr"], task, cwd)
            if "stdin" in socks:
                plan.stdin_fd = socks["stdin"].fileno()
            if executable is None:
                self._exec_not_found(task, plan, str(s["argv"][0]))
                return
            try:
                pid, errr = proctree.fork_exec(plan)
                why = proctree.exec_result_now(errr, proctree.EXEC_WAIT)
            except OSError as exc:
                log.warning("JobId=%s StepId=%s.%s task %s: cannot fork: %s", self.job_id, self.job_id, self.step_id,
                            task.rank, exc)
                self._task_ended(task, 1, 0)
                return
        finally:
            for sock in socks.values():
                sock.close()  # the task has its own copies now
        task.pid = pid
        me = proctree.read_proc(pid)
        if me is not None:
            task.start_ticks = me.start
            self._known[pid] = me.start
        try:
            task.pidfd = os.pidfd_open(pid)
            loop.add_reader(task.pidfd, self._on_exit, task)
        except (AttributeError, OSError):
            task.pidfd = None
            loop.create_task(self._poll_exit(task))
        if why is None:
            why = await proctree.read_exec_result(loop, errr)
        if why:
            log.info("JobId=%s StepId=%s.%s task %s did not start: %s", self.job_id, self.job_id, self.step_id,
                     task.rank, why)
        if self._killing and not task.ended:
            proctree.killpg(pid, signal.SIGKILL)  # killed while starting

    def _exec_not_found(self, task, plan, name):
        """Slurm's behaviour for a missing executable: a stderr line, exit code errno (ENOENT = 2)."""
        text = f"slurmstepd: error: execve(): {name}: No such file or directory\n".encode()
        fd = plan.stderr_fd if plan.stderr_fd is not None else None
        try:
            if fd is not None:
                os.write(fd, text)
            elif plan.stderr or plan.stdout:
                path = plan.stderr or plan.stdout
                self._write_as_user(path, text)
        except OSError:
            pass
        self._task_ended(task, errno.ENOENT, 0)

    def _write_as_user(self, path, text):
        """Append ``text`` to an output file as the job's user (a short forked child when root)."""
        pid = os.fork()
        if pid == 0:
            try:
                if self._drop:
                    os.setgroups([])
                    os.setresgid(int(self.step.get("gid") or self._uid), int(self.step.get("gid") or self._uid),
                                 int(self.step.get("gid") or self._uid))
                    os.setresuid(self._uid, self._uid, self._uid)
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
                os.write(fd, text)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    # -------------------------------------------------------------- monitoring
    def _on_exit(self, task):
        loop = asyncio.get_running_loop()
        try:
            loop.remove_reader(task.pidfd)
        except (ValueError, OSError):
            pass
        self._reap(task)

    async def _poll_exit(self, task):
        """Exit watch without pidfd (old kernels): poll waitpid."""
        while not task.ended:
            await asyncio.sleep(0.05)
            try:
                done, status = os.waitpid(task.pid, os.WNOHANG)
            except ChildProcessError:
                done, status = task.pid, 0
            if done:
                self._reap(task, reaped_status=status)
                return

    def _reap(self, task, reaped_status=None):
        if task.ended:
            return
        if reaped_status is None:
            try:
                _, status = os.waitpid(task.pid, 0)
            except ChildProcessError:
                status = 0
        else:
            status = reaped_status
        if task.pidfd is not None:
            os.close(task.pidfd)
            task.pidfd = None
        if os.WIFSIGNALED(status):
            self._task_ended(task, 0, os.WTERMSIG(status))
        else:
            self._task_ended(task, os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0, 0)

    def _task_ended(self, task, exit_code, exit_signal):
        if task.ended:
            return
        task.ended = True
        task.exit_code, task.exit_signal = exit_code, exit_signal
        self._emit({"event": "task_ended", "job_id": self.job_id, "step_id": self.step_id, "rank": task.rank,
                    "exit_code": exit_code, "exit_signal": exit_signal, "time": time.time()})
        if all(t.ended for t in self.tasks.values()):
            self._finish()

    def _finish(self):
        if self.done:
            return
        self.done = True
        for handle in (self._kill_handle, self._limit_handle):
            if handle is not None:
                handle.cancel()
        # Leftovers (daemons a task started) die with the step, as in Slurm.
        self._signal_all(signal.SIGKILL, tasks_too=False)
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    def _time_limit(self):
        if not self.done:
            log.info("JobId=%s StepId=%s.%s: job time limit reached, killing its tasks", self.job_id, self.job_id,
                     self.step_id)
            asyncio.ensure_future(self.kill())

    # ----------------------------------------------------------------- signals
    def _members(self):
        """Every live process of the step: the tasks' sessions, their descendants, tagged escapees."""
        started = [t for t in self.tasks.values() if t.pid is not None]
        if not started:
            return {}
        low = min(t.pid for t in started)
        if not proctree.near_pid_wrap(low) and all(pid >= low for pid in self._known):
            procs = proctree.scan_since(low)
        else:
            procs = proctree.scan()
        members = {}
        for t in started:
            members.update(proctree.job_members(procs, t.pid, t.pid, self._known, root_start=t.start_ticks))
        first = min((t.start_ticks for t in started if t.start_ticks is not None), default=None)
        entry = f"{TAG_VAR}={self.tag}".encode()
        for pid, p in proctree.tagged(procs, entry, self._uid, exclude={os.getpid()}, started_after=first).items():
            members[pid] = p
            self._known[pid] = p.start
        return members

    def _signal_all(self, signum, tasks_too=True):
        """``signum`` to every live task's process group, then to every step process outside
        those groups (``tasks_too=False``: the tasks have ended, only leftovers remain)."""
        groups = set()
        if tasks_too:
            for t in self.tasks.values():
                if t.pid is not None and not t.ended:
                    proctree.killpg(t.pid, signum)  # the task's process group (pgid = its pid)
                    groups.add(t.pid)
        members = self._members()
        proctree.send([pid for pid, p in members.items() if p.pgid not in groups], signum)

    def _emit(self, event):
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 -- the daemon's callback must not break the step
            log.exception("JobId=%s StepId=%s.%s: on_event failed", self.job_id, self.job_id, self.step_id)
