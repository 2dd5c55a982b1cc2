"""What a node daemon left running when it died, found and ended by its next incarnation.

A node daemon killed with ``kill -9`` (or a crashed host agent) leaves its
jobs' processes behind: they run on, owned by nobody, while the controller
declares the node dead after SlurmdTimeout and ends (or requeues) the jobs.
So that no job runs twice, every batch job and step this daemon starts is
recorded in its spool as a small ``<key>.run`` file naming the job and the
random tag in its processes' environment; the file goes when the job or step
ends. A daemon starting up kills whatever its records still name and reports
those jobs lost (``NODE_FAIL``): the controller then requeues or fails them
once, whatever it had decided meanwhile.

The records live in the node's spool directory (owned by the daemon's account,
not by users): a user cannot make the daemon kill processes of others. The
tag is per job start, so another cluster's node of the same name on the same
machine is never touched.
"""

import json
import logging
import os
import shutil
import signal

from . import proctree

log = logging.getLogger("batchhub.noded")

SUFFIX = ".run"


def record(spool_dir, key, info):
    """Remember a started job or step (``info`` needs ``tag`` and ``tag_var``)."""
    path = os.path.join(spool_dir, key + SUFFIX)
    tmp = path + ".tmp"
    data = json.dumps(info).encode()  # dumps has the C encoder; json.dump to a file does not
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot record %s in %s: %s", key, spool_dir, exc)


def forget(spool_dir, key):
    try:
        os.unlink(os.path.join(spool_dir, key + SUFFIX))
    except OSError:
        pass


def reap(spool_dir):
    """Kill the processes of every recorded job/step; return their records (and remove them)."""
    found = []
    try:
        names = sorted(n for n in os.listdir(spool_dir) if n.endswith(SUFFIX))
    except OSError:
        return found
    procs = proctree.scan() if names else {}
    for name in names:
        path = os.path.join(spool_dir, name)
        try:
            with open(path) as f:
                info = json.load(f)
            entry = f"{info['tag_var']}={info['tag']}".encode()
        except (OSError, ValueError, KeyError, TypeError):
            forget(spool_dir, name[:-len(SUFFIX)])
            continue
        pids = proctree.tagged(procs, entry)
        proctree.send(pids, signal.SIGKILL)
        if pids:
            log.warning("killed %d leftover process(es) of %s from a previous node daemon",
                        len(pids), name[:-len(SUFFIX)])
        if info.get("job_dir"):
            shutil.rmtree(info["job_dir"], ignore_errors=True)
        forget(spool_dir, name[:-len(SUFFIX)])
        found.append(info)
    return found
