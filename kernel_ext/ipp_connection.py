"""IPyParallel connection files on the shared directory, and reaching the controller.

Both sides use this: the kernel's launchers (:mod:`kernel_ext.ipp`) name and
read the files; the controller job writes them and the engines' job waits for
them and checks the controller answers (:mod:`kernel_ext.ipp_job`). See
:mod:`kernel_ext.ipp` for the file naming and the atomic-write rules.
"""

import json
import os
import socket
import tempfile
import time

from ipyparallel.cluster.launcher import LauncherError

from batch_backend import client as bbclient

#: States in which a job may still run (batch_backend.model.ACTIVE_STATES, plus REQUEUED: it runs again).
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED"})


class ControllerUnreachableError(LauncherError):
    """The engines' job could not reach the controller at the address in its connection file."""


class ConnectionFileTimeout(LauncherError, TimeoutError):
    """The controller's connection file did not appear (or stayed invalid) in time."""


# --------------------------------------------------------------------------
# connection files: one writer (the controller job), many readers
# --------------------------------------------------------------------------

def shared_root():
    """The shared directory every host mounts (the connection files live there).

    ``$BATCHHUB_SHARED_DIR`` (node daemons set it in every job), else slurm.conf's
    ``BatchHubSharedDir`` (a login host's notebook on a multi-host cluster), else
    the layout's ``<home>/shared`` (all nodes on this host).
    """
    env = os.environ.get("BATCHHUB_SHARED_DIR")
    if env:
        return env
    from batch_backend.paths import layout
    where = layout()
    if os.path.exists(where.conf_path):
        from batch_backend.conf import ConfError, get_option, load_conf
        try:
            configured = get_option(load_conf(where.conf_path), "BatchHubSharedDir")
        except (ConfError, OSError):
            configured = None
        if configured:
            return configured
    return where.shared_dir


def _user():
    import pwd
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())


def connection_file_name(cluster_id, job_id, kind):
    """``ipcontroller-<cluster_id>-job<N>-<kind>.json``: the job id is in the name."""
    prefix = f"ipcontroller-{cluster_id}" if cluster_id else "ipcontroller"
    return f"{prefix}-job{job_id}-{kind}.json"


def write_json_atomic(path, data):
    """Write *data* as JSON to *path* so readers see no file or a whole one.

    Temp file in the same directory (created 0600 by mkstemp), fsync, rename,
    fsync of the directory: the rename is atomic on local filesystems and NFS.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def read_connection_file(path, job_id, instance=None):
    """The connection dict at *path* if it belongs to controller *job_id* (and *instance*).

    Returns ``(info, None)`` or ``(None, why_not)``: a missing file, a file that
    does not parse (a writer that is not ours, or a torn copy), or one that
    names another controller are all "not yet", never an error.
    """
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None, "no connection file yet"
    except OSError as e:
        return None, f"cannot read: {e}"
    try:
        info = json.loads(text)
    except ValueError:
        return None, "incomplete or invalid JSON"
    tag = info.get("batchhub") if isinstance(info, dict) else None
    if not isinstance(tag, dict) or str(tag.get("job_id")) != str(job_id):
        return None, f"written by another controller ({tag.get('job_id') if isinstance(tag, dict) else 'unknown'})"
    if instance and tag.get("instance") != instance:
        return None, f"written by another instance of job {job_id}"
    return info, None


def wait_for_connection_file(path, job_id, instance=None, timeout=300.0, poll=0.1, still_running=None):
    """Block until :func:`read_connection_file` accepts *path*; raise ConnectionFileTimeout.

    *still_running* (optional callable) is asked between polls; when it returns
    a false value the wait ends early with a LauncherError naming the reason.
    """
    deadline = time.monotonic() + timeout
    why = "no connection file yet"
    while True:
        info, why = read_connection_file(path, job_id, instance)
        if info is not None:
            return info
        if still_running is not None:
            alive = still_running()
            if alive is not True and alive:
                raise LauncherError(f"controller job {job_id} {alive} before writing {path}")
        if time.monotonic() > deadline:
            raise ConnectionFileTimeout(
                f"connection file of controller job {job_id} not ready after {timeout:.0f}s: {path} ({why})")
        time.sleep(poll)


def registration_address(info):
    """``(host, port)`` the engines register at, as the connection file says."""
    proto, _, host = info["interface"].partition("://")
    if host in ("*", "0.0.0.0", ""):
        host = info.get("location") or "127.0.0.1"
    return host.strip("[]"), int(info["registration"])


def check_reachable(info, timeout=10.0):
    """Open (and close) a TCP connection to the registration port; raise ControllerUnreachableError.

    ZeroMQ connects lazily and would just hang: this gives the pointed error.
    """
    host, port = registration_address(info)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=min(2.0, timeout)).close()
            return host, port
        except OSError as e:
            if time.monotonic() > deadline:
                node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
                job = (info.get("batchhub") or {}).get("job_id")
                raise ControllerUnreachableError(
                    f"cannot reach the IPython controller (job {job}) at tcp://{host}:{port} "
                    f"from node {node}: {e.strerror or e}") from None
            time.sleep(0.2)


# --------------------------------------------------------------------------
# controller address
# --------------------------------------------------------------------------

def _is_loopback(addr):
    return addr in ("localhost", "::1") or addr.startswith("127.")


def controller_bind_address(node_name=None, client=None):
    """``(ip, location)`` for ipcontroller on this node.

    The node's address as the queue controller records it (NodeAddr) when it
    is routable. A loopback NodeAddr is only right when every node runs on
    this host (virtual nodes); otherwise listen on all interfaces and
    advertise this host's address, never silently localhost.
    """
    node_name = node_name or os.environ.get("SLURMD_NODENAME")
    host = socket.gethostname().split(".")[0]
    try:
        nodes = (client or bbclient.Client(timeout=10)).nodes()
    except bbclient.ClientError:
        nodes = []
    me = next((n for n in nodes if n.get("name") == node_name), None)
    addr = (me or {}).get("address") or ""
    if addr and not _is_loopback(addr):
        return addr, addr
    remote = [n for n in nodes if (n.get("hostname") or host).split(".")[0] != host
              or (n.get("address") and not _is_loopback(n["address"]))]
    if me is not None and not remote:
        return addr or "127.0.0.1", addr or "127.0.0.1"
    try:
        location = socket.gethostbyname(socket.getfqdn())
    except OSError:
        location = socket.getfqdn()
    return "*", location


# --------------------------------------------------------------------------
# launchers
# --------------------------------------------------------------------------
