"""Process-tree utilities for the node daemon (Linux ``/proc``).

A job's processes are found the way Slurm's ``proctrack/linuxproc`` +
``proctrack/pgid`` find them, without cgroups:

* every process of the job's session / process group (the batch shell runs
  in a new session, so its sid = pgid = its pid);
* every descendant (parent-pid walk) of a process already known to belong to
  the job, so a child that ``setsid()``s away is still found while its parent
  lives;
* every process ever seen as a member (remembered as ``(pid, start time)``, so
  a reused pid is never mistaken for ours), so an escaped process stays
  tracked after its parent dies;
* on demand (kills), every process of the job's uid whose *initial*
  environment carries the run's tag variable: this catches double-forked
  daemons that escaped between two polls.

:func:`fork_exec` starts a job process (the setup between fork and exec:
session, identity, output files, cwd, affinity, see :mod:`.forkserver`) and
reports setup errors back.

One ``/proc/*/stat`` pass yields parent, group, session, start time and RSS of
every process; :func:`scan` caches it for a few milliseconds so that many
runners polling at once share one pass.
"""

import _signal  # signal.py's wrappers turn every signal number into an enum: ~120 per fork
import errno
import gc
import os
import select
import signal
import time
from typing import NamedTuple

from . import forkserver
from .forkserver import LaunchPlan  # noqa: F401 -- callers build plans as proctree.LaunchPlan

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class Proc(NamedTuple):
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str  # 'R', 'S', 'Z', ...
    start: int  # start time in clock ticks since boot (identifies the process with pid)
    rss: int  # bytes

    @property
    def zombie(self):
        return self.state in ("Z", "X")


_cache = {"t": -1.0, "procs": {}}


def read_proc(pid):
    """The :class:`Proc` of one pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rp = data.rfind(b")")
    f = data[rp + 2:].split()
    try:
        # fields after the comm: [0]=state(3) [1]=ppid(4) [2]=pgrp(5) [3]=session(6)
        # [19]=starttime(22) [21]=rss pages(24)
        return Proc(pid, int(f[1]), int(f[2]), int(f[3]), f[0].decode(), int(f[19]), int(f[21]) * PAGE_SIZE)
    except (IndexError, ValueError):
        return None


def scan(max_age=0.0):
    """All processes as ``{pid: Proc}``; reuses a pass younger than ``max_age`` seconds."""
    now = time.monotonic()
    if max_age > 0 and now - _cache["t"] <= max_age:
        return _cache["procs"]
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            p = read_proc(int(name))
            if p is not None:
                procs[p.pid] = p
    _cache["t"], _cache["procs"] = time.monotonic(), procs
    return procs


def _pid_max():
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 4194304


PID_MAX = _pid_max()


def near_pid_wrap(pid):
    """True when pids allocated after ``pid`` may already have wrapped around to small numbers."""
    return pid > PID_MAX * 0.75


def scan_since(min_pid):
    """Processes with pid >= ``min_pid``: everything a job started, read without the cache.

    Pids grow monotonically until they wrap at pid_max (4M on 64-bit Linux), so
    a job's processes all have pids above its shell's. Reading only those makes
    the end-of-job sweep cost a few stat reads instead of one per process on the
    host; the periodic full scans still run for long jobs.
    """
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) >= min_pid:
            p = read_proc(int(name))
            if p is not None:
                procs[p.pid] = p
    return procs


def children_map(procs):
    kids = {}
    for p in procs.values():
        kids.setdefault(p.ppid, []).append(p.pid)
    return kids


def job_members(procs, root, sid, known, root_start=None):
    """Live processes of a job: ``{pid: Proc}``.

    ``root`` is the batch shell's pid, ``sid`` its session (= pgid), ``known``
    a ``{pid: start}`` dict of processes seen before (updated in place with
    every member found, and pruned of processes that are gone). Zombies are
    not members (they can neither run nor be killed), but the walk goes
    through them.
    """
    root_proc = procs.get(root)
    if root_start is not None and root_proc is not None and root_proc.start != root_start:
        # The root was reaped and its pid reused (pid_max may be as low as 32768): the new
        # owner and its session are strangers. (While any process of the old session or
        # group lived, the kernel could not have handed the pid out again.)
        root, sid = None, None
    seeds = [root] if root is not None else []
    for pid, start in list(known.items()):
        p = procs.get(pid)
        if p is None or p.start != start:
            del known[pid]
        else:
            seeds.append(pid)
    if sid is not None:
        seeds.extend(p.pid for p in procs.values() if p.sid == sid or p.pgid == sid)
    kids = children_map(procs)
    seen, members, stack = set(), {}, seeds
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        p = procs.get(pid)
        if p is None:
            continue
        if not p.zombie:
            members[pid] = p
            known[pid] = p.start
        stack.extend(kids.get(pid, ()))
    return members


def tagged(procs, tag, uid=None, exclude=(), started_after=None):
    """Processes whose initial environment contains the entry ``tag`` (bytes ``NAME=value``).

    Only processes owned by ``uid`` (None = any) are read; ``/proc/PID/environ``
    is readable by root and the owner. ``started_after`` (clock ticks since
    boot) skips processes older than the job: they cannot carry its tag, and
    reading every environ on a busy node costs milliseconds per job.
    """
    needle = b"\0" + tag + b"\0"
    found = {}
    for pid, p in procs.items():
        if p.zombie or pid in exclude:
            continue
        if started_after is not None and p.start < started_after:
            continue
        try:
            if uid is not None and os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = b"\0" + f.read()
        except OSError:
            continue
        if needle in env or env.endswith(b"\0" + tag):
            found[pid] = p
    return found


def send(pids, sig):
    """Send ``sig`` to each pid; returns how many were signalled."""
    n = 0
    for pid in pids:
        try:
            os.kill(pid, sig)
            n += 1
        except (ProcessLookupError, PermissionError):
            pass
    return n


def killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def signal_number(name):
    """'USR2', 'SIGUSR2', 'usr2', '12' -> 12; raises ValueError."""
    s = str(name).strip().upper()
    if s.isdigit():
        n = int(s)
        if 0 < n < signal.NSIG:
            return n
        raise ValueError(f"invalid signal number: {name}")
    if not s.startswith("SIG"):
        s = "SIG" + s
    try:
        return int(getattr(signal.Signals, s))
    except AttributeError:
        raise ValueError(f"invalid signal name: {name}") from None


# ---------------------------------------------------------------- fork/exec of a job process

EXEC_WAIT = 0.02  # seconds the parent waits for a child's exec before it goes back to its loop
_ALL_SIGNALS = frozenset(int(s) for s in signal.valid_signals())
_fork_server = None


def start_fork_server():
    """Start this process's fork server now (else on the first :func:`fork_exec`); False if unusable."""
    global _fork_server
    if _fork_server is None or _fork_server.owner != os.getpid():
        _fork_server = forkserver.ForkServer()
    return _fork_server.start()


def fork_exec(plan):
    """Start a child that runs :func:`forkserver.run_child`; returns ``(pid, fd)``.

    The child comes from the fork server (see :mod:`.forkserver`; it is our child
    all the same) or, where that cannot be used, from forking this process.
    ``fd`` is the read end of a close-on-exec pipe: EOF without data once the
    child exec'd, else the error text.
    """
    errr, errw = os.pipe()
    try:
        if _fork_server is None or _fork_server.owner != os.getpid():
            start_fork_server()
        try:
            pid = _fork_server.fork(plan, errw)
        except forkserver.ForkServerGone:
            pid = _fork_directly(plan, errw)
        except forkserver.ForkServerLost:
            raise OSError(errno.EIO, "the fork server died while forking") from None
    except BaseException:
        os.close(errr)
        raise
    finally:
        os.close(errw)
    return pid, errr


def _fork_directly(plan, errw):
    """Fork this process. All signals are blocked across the fork (the child unblocks
    them right before exec), so a signal that hits the child early never runs the
    parent's handlers, and the gc is off so no finalizer of the parent's objects
    runs in the child."""
    old_mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, _ALL_SIGNALS)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        pid = os.fork()
        if pid == 0:
            forkserver.run_child(plan, errw)
    finally:
        if gc_was_enabled:
            gc.enable()
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old_mask)
    return pid


def exec_result_now(fd, timeout):
    """The child's exec result if it is complete within ``timeout`` seconds, else None
    (then ``fd`` stays open for :func:`read_exec_result`).

    Waiting here a moment, instead of going back to the event loop, is cheaper:
    a child execs within a fraction of a millisecond, which saves the loop's
    reader round trip, and a child forked from this process (no fork server)
    makes every page written here meanwhile a copy-on-write copy. Only a closed
    pipe (the child exec'd or exited) is read here, so this never blocks longer.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    ready = poller.poll(timeout * 1000)
    if not ready or not ready[0][1] & select.POLLHUP:
        return None
    chunks = []
    while True:
        data = os.read(fd, 4096)
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


async def read_exec_result(loop, fd):
    """'' once the child exec'd (the close-on-exec pipe hit EOF), else the child's error text."""
    fut = loop.create_future()
    chunks = []

    def readable():
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if data:
            chunks.append(data)
        elif not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await fut
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")
