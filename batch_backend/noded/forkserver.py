"""Job processes forked from a small helper process instead of the node daemon.

Forking the node daemon (a Python process with ~14 MB of private memory) costs
more than a short job itself: the kernel copies the page tables, every page
either side writes until the child execs is copied, and the exec then tears
the copy down. On trivial jobs that was about half of the CPU time of the node
daemons and their jobs together. The fork server is a second Python process
that imports a few built-in modules and ``ctypes`` (~3 MB private memory),
started by the daemon and serving it over a socket pair; the daemon's event
loop no longer forks at all.

The server forks with ``clone(CLONE_PARENT)``, so a job process is the *node
daemon's* child exactly as after a plain fork there (``waitpid``, pidfds,
``SIGCHLD``, zombies holding the pid unchanged), and the child runs the same
set-up code (:func:`run_child`: session, identity, output files as the user,
cwd, affinity, exec) from a process that inherited everything else (cwd,
rlimits, affinity, credentials, cgroup) from the daemon when it started.

Where the server cannot be used (another architecture, no ctypes, a message too
big for the socket, the server gone), :func:`proctree.fork_exec` forks the
daemon itself as before. This file runs as the server's main script under
``python -I -S`` and therefore imports nothing from the package.
"""

import _signal
import errno
import os
import sys

_RESETTABLE = tuple(sorted(set(_signal.valid_signals()) - {_signal.SIGKILL, _signal.SIGSTOP}))
_STREAM_FDS = ("stdin_fd", "stdout_fd", "stderr_fd")
READY = b"ready"
READY_TIMEOUT = 10.0  # seconds the server may take to start (a Python with -I -S and ctypes: ~30 ms)
MAX_MESSAGE = 256 * 1024  # bytes of a marshalled plan; bigger plans (huge environments) fork directly
_CLONE_PARENT = 0x00008000
_SIGCHLD = 17
# clone's syscall number; its first argument is the flags on these (the other arguments stay 0: fork-like)
_SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220}


class LaunchPlan:
    """Everything the forked child needs, computed in the parent.

    ``stdin_fd``/``stdout_fd``/``stderr_fd`` (optional, e.g. a step task's socket
    to srun) are open descriptors the child uses as that stream instead of
    opening the ``stdin``/``stdout``/``stderr`` path; the parent keeps and closes
    its own copies.
    """
    __slots__ = ("script", "argv", "env", "workdir", "stdout", "stderr", "stdin", "append", "drop",
                 "uid", "gid", "groups", "cpu_ids", "umask", "interpreter",
                 "stdin_fd", "stdout_fd", "stderr_fd")


def run_child(plan, errw):
    """In the forked child: set up and exec; on failure report through ``errw``. Never returns."""
    out_fd = err_fd = None
    what = "set up the job"
    try:
        try:
            _signal.set_wakeup_fd(-1)  # the parent's loop must never see the child's signals
        except (ValueError, OSError):
            pass
        for sig in _RESETTABLE:
            try:
                _signal.signal(sig, _signal.SIG_DFL)
            except (OSError, ValueError, RuntimeError):
                pass
        os.setsid()
        if plan.drop:
            what = f"switch to uid {plan.uid} gid {plan.gid}"
            os.setgroups(plan.groups)
            os.setresgid(plan.gid, plan.gid, plan.gid)
            os.setresuid(plan.uid, plan.uid, plan.uid)
        os.umask(plan.umask)
        for kind in ("stdout", "stderr"):
            given = getattr(plan, kind + "_fd", None)
            if given is not None:
                if kind == "stdout":
                    out_fd = given
                else:
                    err_fd = given
                continue
            path = getattr(plan, kind)
            if kind == "stderr" and (not path or path == plan.stdout):
                err_fd = out_fd
                break
            what = f"create output file {path}"
            parent = os.path.dirname(path)
            if parent and not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
            mode = os.O_APPEND if plan.append else os.O_TRUNC
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOCTTY | mode, 0o666)
            if kind == "stdout":
                out_fd = fd
            else:
                err_fd = fd
        in_fd = getattr(plan, "stdin_fd", None)
        if in_fd is None:
            what = f"open input file {plan.stdin}"
            in_fd = os.open(plan.stdin, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            os.set_blocking(in_fd, True)
        what = f"chdir to {plan.workdir}"
        os.chdir(plan.workdir)
        if plan.cpu_ids:
            try:
                cpus = set(plan.cpu_ids) & os.sched_getaffinity(0)
                if cpus:
                    os.sched_setaffinity(0, cpus)
            except OSError:
                pass
        os.dup2(in_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        out_fd, err_fd = 1, 2  # the originals are closed below
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2 and fd != errw:
                try:
                    os.close(fd)
                except OSError:
                    pass
        plan.env["SLURM_TASK_PID"] = str(os.getpid())
        what = f"execute {plan.interpreter or plan.script}"
        _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
        os.execve(plan.script, plan.argv, plan.env)
    except BaseException as exc:  # noqa: BLE001 -- the child must never return to the loop
        why = f"cannot {what}: {getattr(exc, 'strerror', None) or exc}"
        try:
            os.write(errw, why.encode(errors="replace")[:4000] or b"?")
            fd = err_fd if err_fd is not None else out_fd
            if fd is not None:
                os.write(fd, f"batchhub: error: {why}\n".encode(errors="replace"))
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(127)


# ---------------------------------------------------------------- the wire format

def _fds_to_bytes(fds):
    return b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)


def _bytes_to_fds(data):
    return [int.from_bytes(data[i:i + 4], sys.byteorder) for i in range(0, len(data) - len(data) % 4, 4)]


def encode_plan(plan, errw):
    """``(message, fds)``: the plan as marshal data, and the descriptors that travel beside it as
    SCM_RIGHTS (the exec-error pipe's write end, then whichever stream descriptors the plan has)."""
    import marshal
    fields = {name: getattr(plan, name, None) for name in LaunchPlan.__slots__ if name not in _STREAM_FDS}
    streams = [getattr(plan, name, None) for name in _STREAM_FDS]
    try:
        message = marshal.dumps((fields, [fd is not None for fd in streams]))
    except (ValueError, TypeError):  # a value marshal cannot carry: fork directly
        raise ForkServerGone() from None
    return message, [errw] + [fd for fd in streams if fd is not None]


class ForkServerGone(Exception):
    """The fork server cannot take requests (not started, exited, or the request did not fit)."""


class ForkServerLost(Exception):
    """The fork server took a request but died before it said whether and which child it forked."""


class ForkServer:
    """The daemon's side: starts the server process and asks it for children.

    One instance per process (see :func:`proctree.fork_exec`); a forked copy of
    the daemon never uses its parent's instance.
    """

    def __init__(self):
        import threading
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.sock = None
        self.proc = None
        self.failed = False

    def start(self):
        """Start the server; False (and from then on direct forks) if that is not possible here."""
        if self.sock is not None:
            return True
        if self.failed or os.uname().machine not in _SYS_CLONE:
            self.failed = True
            return False
        import socket
        import subprocess
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__),
                                          str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                         stdin=subprocess.DEVNULL, close_fds=True)
        except OSError:
            ours.close()
            self.failed = True
            return False
        finally:
            theirs.close()
        # the server says it is ready (ctypes loaded) before any request goes out: a request
        # the server never read must never be mistaken for one it took (ForkServerLost)
        try:
            ours.settimeout(READY_TIMEOUT)
            ready = ours.recv(8) == READY
            ours.settimeout(None)
        except OSError:
            ready = False
        self.sock = ours
        if not ready:
            self._stop()
            return False
        return True

    def fork(self, plan, errw):
        """Fork a child running :func:`run_child` (the server's child, reparented as ours); its pid.

        Raises :class:`ForkServerGone` when nothing was forked and forking directly may still work
        (the request could not be handed over, or the server's clone was refused), OSError when
        the server's fork failed for lack of resources (EAGAIN, ENOMEM).
        """
        if os.getpid() != self.owner or not self.start():
            raise ForkServerGone()
        message, fds = encode_plan(plan, errw)
        if len(message) > MAX_MESSAGE:
            raise ForkServerGone()
        import socket
        with self.lock:
            try:
                self.sock.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fds_to_bytes(fds))])
            except OSError:
                self._stop()
                raise ForkServerGone() from None
            try:
                reply = self.sock.recv(8)
            except OSError:
                reply = b""
            if len(reply) != 8:
                self._stop()
                raise ForkServerLost()
        pid = int.from_bytes(reply, sys.byteorder, signed=True)
        if pid < 0:
            if -pid in (errno.EAGAIN, errno.ENOMEM):  # what a plain fork would have met too
                raise OSError(-pid, os.strerror(-pid))
            # e.g. EPERM from a seccomp filter that refuses clone() (nothing was forked)
            self._stop()
            raise ForkServerGone()
        return pid

    def _stop(self):
        """Give up on the server for good (this process forks directly from now on)."""
        self.failed = True
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


# ---------------------------------------------------------------- the server (its own process)

def _clone_parent():
    """A fork whose child is our parent's child (``clone(CLONE_PARENT | SIGCHLD)``)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    number = _SYS_CLONE[os.uname().machine]
    syscall = libc.syscall
    syscall.restype = ctypes.c_long

    def clone():
        pid = syscall(ctypes.c_long(number), ctypes.c_ulong(_CLONE_PARENT | _SIGCHLD), ctypes.c_ulong(0),
                      ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
        if pid < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return pid
    return clone


def serve(sock_fd):
    """Fork one child per request until the daemon closes its end of the socket.

    Request: a marshalled plan and its descriptors (see :func:`encode_plan`).
    Reply: 8 bytes, the child's pid, or minus errno when the fork failed.
    """
    import _socket
    import gc
    import marshal
    gc.disable()  # no collection (and no finalizer) may run in a child between clone and exec
    clone = _clone_parent()
    sock = _socket.socket(fileno=sock_fd)
    sock.sendall(READY)
    buf = bytearray(MAX_MESSAGE)
    anc_size = _socket.CMSG_SPACE(4 * 8)
    all_signals = set(_signal.valid_signals())
    while True:
        try:
            n, ancdata, _, _ = sock.recvmsg_into([buf], anc_size, _socket.MSG_CMSG_CLOEXEC)
        except InterruptedError:
            continue
        if n == 0:
            return
        fds = []
        for level, kind, data in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds.extend(_bytes_to_fds(data))
        try:
            fields, stream_flags = marshal.loads(memoryview(buf)[:n])
            plan = LaunchPlan()
            for name, value in fields.items():
                setattr(plan, name, value)
            errw, rest = fds[0], fds[1:]
            for name, present in zip(_STREAM_FDS, stream_flags):
                setattr(plan, name, rest.pop(0) if present else None)
            old_mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, all_signals)
            try:
                pid = clone()
                if pid == 0:
                    run_child(plan, errw)
            finally:
                _signal.pthread_sigmask(_signal.SIG_SETMASK, old_mask)
            reply = pid
        except OSError as exc:
            reply = -(exc.errno or 1)
        except Exception:  # noqa: BLE001 -- a malformed request fails that request only
            reply = -22  # EINVAL
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        sock.sendall(reply.to_bytes(8, sys.byteorder, signed=True))


if __name__ == "__main__":
    serve(int(sys.argv[1]))
