"""Run one batch job on this node: the node daemon's slurmstepd for the batch step.

``BatchJobRunner(launch, node_name=..., spool_dir=..., on_event=...)`` writes the
script to ``<spool_dir>/job<ID>/script``, forks (through the fork server, see
:mod:`.forkserver`: the child is still the daemon's), and in the child (after fork,
before exec): starts a new session, drops to the job's uid/gid/groups (daemon
root and uid != 0; an unprivileged daemon runs jobs as itself and ignores
uid), creates missing output directories and opens the output files *as the
user* (so root never writes through a user's symlink), chdirs to the working
directory, binds to ``cpu_ids`` and execs the script (the kernel reads ``#!``).
Exit is watched through a pidfd; every ``poll_interval`` the job's process
tree (see :mod:`.proctree`) is rescanned for RSS and escaped descendants.

Events (``on_event(dict)``, called on the event loop)::

    {"event": "started", "job_id": N, "pid": P, "time": epoch}
    {"event": "ended", "job_id": N, "state": S, "exit_code": C, "exit_signal": SIG,
     "reason": R, "time": epoch, "max_rss_mb": M, "restarts": RUN}

(``restarts``: which run of the job this was, so the controller never takes the
end of a stale earlier run for the end of the current one.)

``ended`` comes exactly once, after the remaining processes are killed and the
spool directory removed. ``exit_code``/``exit_signal`` always describe how the
batch shell really ended (``0:15`` for a TERMed shell, ...); state/reason:

* COMPLETED / 'None': exit 0.
* FAILED / 'NonZeroExitCode': exit N != 0 (``N:0``).
* FAILED / 'RaisedSignal:9(Killed)': killed by a signal we did not send (``0:SIG``).
* CANCELLED / 'None': :meth:`cancel` (or cancel before launch: ``0:0``, no started event).
* TIMEOUT / 'TimeLimit': time limit (SIGCONT+SIGTERM to the tree, SIGKILL after kill_wait).
* OUT_OF_MEMORY / 'OutOfMemory': summed RSS of the tree above mem_limit_mb (SIGKILL to the tree).
* Launch failure (workdir, output/input file, interpreter, spool): FAILED with
  ``exit_code=0, exit_signal=53`` -- what Slurm shows (``FAILED|0:53``, SLURM_DIALECT
  section 6), see ``LAUNCH_FAILED`` -- reason ``'launch failed: <why>'``, no started
  event, and ``batchhub: error: <why>`` as the first line of the job's stderr (or
  stdout) file when it could be opened. :meth:`start` does not raise for these.

Test hook: ``launch['time_limit_seconds']`` (float) overrides ``time_limit`` (minutes).
"""

import asyncio
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time

from . import proctree

log = logging.getLogger(__name__)

LAUNCH_FAILED = (0, 53)  # (exit_code, exit_signal) of a launch failure, as Slurm shows it
TAG_VAR = "BATCHHUB_JOB_TAG"  # set in every job; finds double-forked escapees at kill time
USER_ENV_TIMEOUT = 8.0  # seconds, like Slurm's --get-user-env default
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USER_PATH = "/usr/local/bin:/usr/bin:/bin"
_MiB = 1024 * 1024
_ENV_MARK = b"__BATCHHUB_ENV_BEGIN__\n"


class LaunchError(Exception):
    """Misuse of the runner (started twice, no job id). Job-level failures are events instead."""


def parse_signal_spec(spec):
    """``'[B:]SIG[@T]'`` -> ``(signum, seconds_before_limit, batch_only)``, or None for ''."""
    if not spec:
        return None
    m = re.fullmatch(r"(?:([BR]+):)?([A-Za-z0-9]+)(?:@(\d+))?", spec.strip())
    if not m:
        raise ValueError(f"invalid --signal spec: {spec!r}")
    return proctree.signal_number(m.group(2)), int(m.group(3) or 60), "B" in (m.group(1) or "")


def build_job_env(launch, node_name, base=None):
    """The batch shell's environment (SLURM_DIALECT sections 2.3 and 3).

    ``base`` (default ``launch['environment']``) is kept byte-exact; ``SLURM_*`` and
    ``extra_env`` are laid over it. No PATH/HOME is invented.
    """
    env = dict((launch.get("environment") or {}) if base is None else base)

    def put(key, value):
        if value is not None and value != "":
            env[key] = str(value)

    L = launch.get
    for key in ("SLURM_JOB_ID", "SLURM_JOBID"):
        put(key, L("job_id"))
    put("SLURM_JOB_NAME", L("name"))
    put("SLURM_JOB_USER", L("user"))
    put("SLURM_JOB_UID", L("uid"))
    put("SLURM_JOB_GID", L("gid"))
    put("SLURM_JOB_ACCOUNT", L("account"))
    put("SLURM_JOB_PARTITION", L("partition"))
    put("SLURM_JOB_QOS", L("qos"))
    for key in ("SLURM_JOB_NODELIST", "SLURM_NODELIST"):
        put(key, L("nodelist") or ",".join(L("nodes") or []) or node_name)
    for key in ("SLURM_JOB_NUM_NODES", "SLURM_NNODES"):
        put(key, L("num_nodes") or 1)
    put("SLURM_JOB_CPUS_PER_NODE", L("cpus_per_node_str") or L("cpus_on_node"))
    put("SLURM_CPUS_ON_NODE", L("cpus_on_node"))
    for key in ("SLURM_NTASKS", "SLURM_NPROCS"):
        put(key, L("num_tasks"))
    put("SLURM_TASKS_PER_NODE", L("tasks_per_node_str"))
    for key in ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID"):
        env[key] = "0"
    put("SLURM_SUBMIT_DIR", L("submit_dir"))
    put("SLURM_SUBMIT_HOST", L("submit_host"))
    put("SLURM_CLUSTER_NAME", L("cluster_name"))
    env["SLURMD_NODENAME"] = node_name
    if L("cpus_per_task"):
        put("SLURM_CPUS_PER_TASK", L("cpus_per_task"))
    put("SLURM_MEM_PER_NODE", L("mem_per_node"))
    put("SLURM_MEM_PER_CPU", L("mem_per_cpu"))
    gpus = ",".join(str(g) for g in L("gpu_ids") or [])
    if gpus:
        put("SLURM_GPUS_ON_NODE", len(L("gpu_ids")))
        for key in ("SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL"):
            env[key] = gpus
    env["ENVIRONMENT"] = "BATCH"
    if L("array_job_id") is not None and L("array_task_id") is not None:
        put("SLURM_ARRAY_JOB_ID", L("array_job_id"))
        put("SLURM_ARRAY_TASK_ID", L("array_task_id"))
        for part in ("COUNT", "MIN", "MAX", "STEP"):
            put(f"SLURM_ARRAY_TASK_{part}", L(f"array_task_{part.lower()}"))
    if (L("restarts") or 0) > 0:
        put("SLURM_RESTART_COUNT", L("restarts"))
    if L("open_mode") == "append":
        env["SLURM_OPEN_MODE"] = "a"
    export = L("export")
    if export and export != "ALL":
        env["SLURM_EXPORT_ENV"] = export
    if L("get_user_env"):
        env["SLURM_GET_USER_ENV"] = "1"
    for key, value in (L("extra_env") or {}).items():
        env[key] = str(value)
    return env


def _login_env_fallback(uid):
    """HOME/PATH/SHELL/USER/LOGNAME from the password database (no login shell run)."""
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        return {"PATH": ROOT_PATH if uid == 0 else USER_PATH}
    return {"HOME": pw.pw_dir, "SHELL": pw.pw_shell or "/bin/sh", "USER": pw.pw_name,
            "LOGNAME": pw.pw_name, "PATH": ROOT_PATH if uid == 0 else USER_PATH}


def _su_login_env(user):
    """The user's login environment via ``su - USER`` (root only), or None."""
    cmd = "echo " + _ENV_MARK.decode().strip() + "; env -0"
    try:
        res = subprocess.run(["su", "-", user, "-c", cmd], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=USER_ENV_TIMEOUT, env={"PATH": ROOT_PATH})
    except (OSError, subprocess.SubprocessError):
        return None
    pos = res.stdout.find(_ENV_MARK)
    if res.returncode != 0 or pos < 0:
        return None
    env = {}
    for entry in res.stdout[pos + len(_ENV_MARK):].split(b"\0"):
        key, eq, value = entry.partition(b"=")
        if eq and key:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env or None


def _make_job_dir(spool_dir, job_dir):
    """Create ``job_dir`` (mode 0700) afresh: a stale one (same job and run) is removed first."""
    try:
        os.mkdir(job_dir, 0o700)
    except FileExistsError:
        shutil.rmtree(job_dir, ignore_errors=True)
        os.mkdir(job_dir, 0o700)
    except FileNotFoundError:
        os.makedirs(spool_dir, exist_ok=True)
        os.mkdir(job_dir, 0o700)


def _remove_job_dir(job_dir):
    """Remove the job's spool directory: two syscalls when it holds only the script
    (shutil.rmtree's safe walk costs ~10x the CPU); anything else goes the thorough way."""
    try:
        os.unlink(os.path.join(job_dir, "script"))
    except FileNotFoundError:
        pass
    except OSError:
        return shutil.rmtree(job_dir, ignore_errors=True)
    try:
        os.rmdir(job_dir)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(job_dir, ignore_errors=True)


class BatchJobRunner:
    """One batch job on this node; see the module docstring for the events."""

    def __init__(self, launch, *, node_name, spool_dir, on_event, kill_wait=5.0, poll_interval=0.25):
        if launch.get("job_id") is None:
            raise LaunchError("launch has no job_id")
        self.launch = launch
        self.job_id = int(launch["job_id"])
        self.node_name = node_name
        self.spool_dir = spool_dir
        self.on_event = on_event
        self.kill_wait = kill_wait
        self.poll_interval = poll_interval
        self.pid = None
        self.done = False
        self.start_time = None
        self.end_event = None
        self.tag = f"{node_name}:{self.job_id}:{secrets.token_hex(6)}"
        # One directory per run: a requeued job may start here again while the cleanup of
        # its stale earlier run (a node back from a partition) is still removing that one's.
        restarts = int(launch.get("restarts") or 0)
        self.job_dir = os.path.join(spool_dir, f"job{self.job_id}" + (f".{restarts}" if restarts else ""))
        self._started = False
        self._cancel_requested = False
        self._cause = None  # 'cancel' | 'timeout' | 'oom' once we start ending the job
        self._exited = False  # batch shell exited (zombie, not yet reaped)
        self._reaped = False
        self._known = {}  # pid -> start ticks of every process ever seen in the job
        self._shell_start = None
        self._max_rss = 0
        self._timers = []
        self._kill_handle = None
        self._pidfd = None
        self._exit_evt = None
        self._waiters = []
        self._monitor_task = None
        self.suspended = False
        root = os.geteuid() == 0
        uid = launch.get("uid")
        self._drop = root and uid is not None and int(uid) != 0
        self._run_uid = int(uid) if self._drop else os.geteuid()

    # ----------------------------------------------------------------- public
    async def start(self):
        """Launch the job. Emits 'started' (and later 'ended'), or only 'ended' on launch failure."""
        if self.done:  # cancelled before start
            return
        if self._started:
            raise LaunchError(f"job {self.job_id} already started")
        self._started = True
        loop = asyncio.get_running_loop()
        try:
            plan = self._prepare()
        except OSError as exc:
            return self._launch_failed(f"cannot write the batch script to {self.job_dir}: {exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001 -- a malformed launch is this job's failure, not the daemon's
            log.exception("JobId=%s bad launch", self.job_id)
            return self._launch_failed(f"bad launch request: {exc}")
        if self.launch.get("get_user_env"):
            login = None
            if os.geteuid() == 0:
                login = await loop.run_in_executor(None, _su_login_env, self._user_name())
            login = login or _login_env_fallback(self._run_uid)
            plan.env = {**login, **plan.env}
        if self._cancel_requested:
            return self._end("CANCELLED", 0, 0, "None")
        self.start_time = time.time()
        try:
            pid, errr = proctree.fork_exec(plan)
        except OSError as exc:  # EAGAIN: process limit
            return self._launch_failed(f"cannot fork: {exc.strerror or exc}")
        why = proctree.exec_result_now(errr, proctree.EXEC_WAIT)
        self.pid = pid
        me = proctree.read_proc(pid)  # the shell's start ticks tell it apart from a later owner of its pid
        if me is not None:
            self._known[pid] = me.start
            self._shell_start = me.start
        self._exit_evt = asyncio.Event()
        try:
            self._pidfd = os.pidfd_open(pid)
            loop.add_reader(self._pidfd, self._on_pidfd)
        except (AttributeError, OSError):
            self._pidfd = None
        if why is None:
            why = await proctree.read_exec_result(loop, errr)
        if why:
            os.waitpid(pid, 0)
            self._reaped = True
            self._close_pidfd()
            return self._launch_failed(why)
        self._emit({"event": "started", "job_id": self.job_id, "pid": pid, "time": self.start_time})
        self._arm_timers(loop)
        self._monitor_task = loop.create_task(self._monitor())

    def signal(self, signum, *, batch_only=False, full=False):
        """Deliver ``signum`` like ``scancel -s``: by default to every process of the job except
        the batch shell (Slurm: the steps); ``batch_only`` (``-b``) to the shell only; ``full``
        (``-f``) to the shell and everything else. Returns False when the job is not running."""
        if self.pid is None or self._reaped or self.done:
            return False
        if batch_only:
            return proctree.send([self.pid], signum) > 0 if not self._exited else False
        self._signal_tree(signum, include_shell=full)
        return True

    def suspend(self):
        """``scontrol suspend``, preemption, gang scheduling: SIGSTOP to every process of the job
        (shell included) and stop the time-limit clock. Returns False when there is nothing to stop."""
        if self.pid is None or self._reaped or self.done or self._exited or self._cause is not None:
            return False
        for handle in self._timers:
            handle.cancel()
        self._timers = []
        self.suspended = True
        self._signal_tree(signal.SIGSTOP, include_shell=True, tag_scan=True)
        return True

    def resume(self, seconds_left=None):
        """SIGCONT to every process and restart the time-limit clock with ``seconds_left``
        (None: unlimited; the controller extends the end time by the suspended time)."""
        if not self.suspended or self.done:
            return False
        self.suspended = False
        self._signal_tree(signal.SIGCONT, include_shell=True, tag_scan=True)
        if seconds_left is not None and seconds_left <= 0:
            self._terminate("timeout", signal.SIGTERM)
        else:
            self.set_time_left(seconds_left)
        return True

    async def cancel(self):
        """SIGCONT+SIGTERM to the whole tree, SIGKILL after kill_wait; returns the ended event."""
        if self.done:
            return self.end_event
        if self.pid is None:  # not launched yet
            self._cancel_requested = True
            if not self._started:
                self._end("CANCELLED", 0, 0, "None")
            return await self.wait()
        self._terminate("cancel", signal.SIGTERM)
        return await self.wait()

    async def wait(self):
        """The ended event, once the job has ended."""
        if self.done:
            return self.end_event
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return await fut

    # -------------------------------------------------------------- launching
    def _user_name(self):
        try:
            return pwd.getpwuid(self._run_uid).pw_name
        except KeyError:
            return str(self.launch.get("user") or self._run_uid)

    def _passwd_gid(self):
        try:
            return pwd.getpwuid(self._run_uid).pw_gid
        except KeyError:
            return self._run_uid

    def _prepare(self):
        L = self.launch
        workdir = L.get("workdir") or L.get("submit_dir") or "/"
        plan = proctree.LaunchPlan()
        plan.workdir = workdir
        plan.drop = self._drop
        plan.uid, plan.gid = self._run_uid, os.getegid()
        if self._drop:
            plan.gid = int(L["gid"]) if L.get("gid") is not None else self._passwd_gid()
        plan.groups = []
        if self._drop:
            try:
                plan.groups = os.getgrouplist(self._user_name(), plan.gid)
            except OSError:
                plan.groups = [plan.gid]
        out = L.get("stdout_path") or (
            f"slurm-{L['array_job_id']}_{L['array_task_id']}.out" if L.get("array_task_id") is not None
            else f"slurm-{self.job_id}.out")
        plan.stdout = os.path.join(workdir, out)
        plan.stderr = os.path.join(workdir, L["stderr_path"]) if L.get("stderr_path") else ""
        plan.stdin = os.path.join(workdir, L.get("stdin") or "/dev/null")
        plan.append = L.get("open_mode") == "append" or (L.get("restarts") or 0) > 0
        plan.cpu_ids = list(L.get("cpu_ids") or [])
        plan.env = build_job_env(L, self.node_name)
        plan.env[TAG_VAR] = self.tag
        try:
            plan.umask = int(plan.env.get("SLURM_UMASK", "0022"), 8) & 0o777
        except ValueError:
            plan.umask = 0o022
        text = L.get("script") or ""
        first = text.split("\n", 1)[0]
        plan.interpreter = first[2:].strip().split(" ")[0] if first.startswith("#!") else None
        # the spool: root-owned parent, job dir and script owned by the user
        _make_job_dir(self.spool_dir, self.job_dir)
        plan.script = os.path.join(self.job_dir, "script")
        fd = os.open(plan.script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        try:
            os.write(fd, text.encode("utf-8", "surrogateescape"))
            os.fchmod(fd, 0o700)
            if self._drop:
                os.fchown(fd, plan.uid, plan.gid)
                os.chown(self.job_dir, plan.uid, plan.gid)
        finally:
            os.close(fd)
        plan.argv = [plan.script] + [str(a) for a in L.get("script_args") or []]
        return plan

    def _launch_failed(self, why):
        log.warning("JobId=%s launch failed: %s", self.job_id, why)
        self._end("FAILED", LAUNCH_FAILED[0], LAUNCH_FAILED[1], f"launch failed: {why}")

    def _arm_timers(self, loop):
        L = self.launch
        limit = L.get("time_limit_seconds")
        if limit is None and L.get("time_limit"):
            limit = float(L["time_limit"]) * 60
        self.set_time_left(limit)

    def set_time_left(self, seconds):
        """(Re)arm the time limit ``seconds`` from now (None/0 = unlimited): ``scontrol update TimeLimit``."""
        for handle in self._timers:
            handle.cancel()
        self._timers = []
        if not seconds or self.done or self._exited or self.pid is None:
            return
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(seconds, self._terminate, "timeout", signal.SIGTERM))
        try:
            spec = parse_signal_spec(self.launch.get("signal"))
        except ValueError as exc:
            log.warning("JobId=%s %s", self.job_id, exc)
            spec = None
        if spec:
            signum, before, batch_only = spec
            self._timers.append(loop.call_later(max(0.0, seconds - before), self._warn, signum, batch_only))

    def _warn(self, signum, batch_only):
        if not self._exited and self._cause is None:
            self.signal(signum, batch_only=batch_only)

    # ------------------------------------------------------------- monitoring
    def _on_pidfd(self):
        asyncio.get_running_loop().remove_reader(self._pidfd)
        self._exit_evt.set()

    def _close_pidfd(self):
        if self._pidfd is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._pidfd)
            except (RuntimeError, ValueError):
                pass
            os.close(self._pidfd)
            self._pidfd = None

    def _shell_exited(self):
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:  # reaped behind our back (a waitpid(-1) somewhere)
            return True

    def _members(self, max_age=0.0, *, since_shell=False):
        if since_shell and not proctree.near_pid_wrap(self.pid) and all(pid >= self.pid for pid in self._known):
            procs = proctree.scan_since(self.pid)
        else:
            procs = proctree.scan(max_age)
        return proctree.job_members(procs, self.pid, self.pid, self._known, root_start=self._shell_start), procs

    async def _monitor(self):
        try:
            while True:
                try:
                    await asyncio.wait_for(self._exit_evt.wait(), self.poll_interval)
                except asyncio.TimeoutError:
                    pass
                if self._exit_evt.is_set() or self._shell_exited():
                    break
                members, _ = self._members(max_age=min(0.05, self.poll_interval / 2))
                rss = sum(p.rss for p in members.values())
                self._max_rss = max(self._max_rss, rss)
                limit = self.launch.get("mem_limit_mb")
                if limit and rss > int(limit) * _MiB and self._cause is None:
                    log.info("JobId=%s RSS %d MB over the %s MB limit", self.job_id, rss // _MiB, limit)
                    self._terminate("oom", signal.SIGKILL)
            self._exited = True
            await self._finish()
        except Exception:  # a bug must not leave the job unreported
            log.exception("JobId=%s monitor failed", self.job_id)
            self._exited = True
            if not self.done:
                self._signal_tree(signal.SIGKILL, include_shell=True, tag_scan=True)
                status = self._reap()
                self._end("FAILED", *status, "RunnerError")

    async def _finish(self):
        if self._cause is not None and self._kill_handle is not None:
            # we asked for TERM: give the rest of the tree until kill_wait to go, then KILL (timer)
            deadline = time.monotonic() + self.kill_wait + 5
            while time.monotonic() < deadline and self._members()[0]:
                await asyncio.sleep(min(self.poll_interval, 0.1))
        for handle in self._timers + [self._kill_handle]:
            if handle is not None:
                handle.cancel()
        # leftovers die with the batch step (Slurm kills the step's container)
        if self._signal_tree(signal.SIGKILL, include_shell=True, tag_scan=True):
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and self._members()[0]:
                await asyncio.sleep(0.01)
        code, sig = self._reap()
        if self._cause == "cancel":
            state, reason = "CANCELLED", "None"
        elif self._cause == "timeout":
            state, reason = "TIMEOUT", "TimeLimit"
        elif self._cause == "oom":
            state, reason = "OUT_OF_MEMORY", "OutOfMemory"
        elif code == 0 and sig == 0:
            state, reason = "COMPLETED", "None"
        elif sig:
            state, reason = "FAILED", f"RaisedSignal:{sig}({signal.strsignal(sig) or sig})"
        else:
            state, reason = "FAILED", "NonZeroExitCode"
        self._end(state, code, sig, reason)

    def _reap(self):
        """Reap the shell: (exit_code, exit_signal). (Its rusage is not used: ru_maxrss would
        include the forked daemon's RSS before exec.)"""
        self._close_pidfd()
        if self._reaped:
            return 0, 0
        self._reaped = True
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return 0, 0
        if os.WIFSIGNALED(status):
            return 0, os.WTERMSIG(status)
        return (os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0), 0

    # ---------------------------------------------------------------- killing
    def _terminate(self, cause, sig):
        """Start ending the job for ``cause``: SIGKILL now, or CONT+TERM now and KILL after kill_wait."""
        if self.pid is None or self._exited or self._exit_evt.is_set() or self._cause is not None:
            return
        self._cause = cause
        log.info("JobId=%s %s, sending %s", self.job_id, cause, signal.Signals(sig).name)
        if sig == signal.SIGKILL:
            self._signal_tree(signal.SIGKILL, include_shell=True, tag_scan=True)
            return
        self._signal_tree(signal.SIGCONT, include_shell=True)
        self._signal_tree(sig, include_shell=True, tag_scan=True)
        loop = asyncio.get_running_loop()
        self._kill_handle = loop.call_later(self.kill_wait, self._signal_tree, signal.SIGKILL, True, True)

    def _signal_tree(self, sig, include_shell, tag_scan=False):
        """Signal every process of the job once (shell included or not)."""
        if self._reaped:
            return
        members, procs = self._members(since_shell=tag_scan)
        if tag_scan:
            entry = f"{TAG_VAR}={self.tag}".encode()
            for pid, p in proctree.tagged(procs, entry, self._run_uid, exclude={os.getpid()},
                                          started_after=self._shell_start).items():
                members[pid] = p
                self._known[pid] = p.start
        if include_shell:
            proctree.killpg(self.pid, sig)  # the group (shell included), then whoever left it
            others = [pid for pid, p in members.items() if p.pgid != self.pid]
        else:
            others = [pid for pid in members if pid != self.pid]
        proctree.send(others, sig)
        return len(members)

    # ----------------------------------------------------------------- ending
    def _end(self, state, exit_code, exit_signal, reason):
        if self.done:
            return
        _remove_job_dir(self.job_dir)
        self.done = True
        self.end_event = {"event": "ended", "job_id": self.job_id, "state": state, "exit_code": exit_code,
                          "exit_signal": exit_signal, "reason": reason, "time": time.time(),
                          "max_rss_mb": -(-self._max_rss // _MiB), "restarts": self.launch.get("restarts") or 0}
        self._emit(self.end_event)
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(self.end_event)
        self._waiters.clear()

    def _emit(self, event):
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 -- the daemon's callback must not break the runner
            log.exception("JobId=%s on_event failed for %s", self.job_id, event.get("event"))
