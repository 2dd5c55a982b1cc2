"""What the hub does with a server's job besides start/stop: describe, extend, read its output.

Kept apart from :mod:`spawner.spawner` so that the spawner stays the JupyterHub
contract (start, poll, stop, progress, state) and these small operations can be
read and changed on their own.
"""

import os
import time

from batch_backend.client import ClientError
from batch_backend.model import ACTIVE_STATES

from .reasons import clock, duration
from .watcher import call


def describe(job_id, node, host, port, job):
    """Job id, node, state and time left of one server, for the admin view."""
    out = {"job_id": job_id, "node": node, "url": f"http://{host}:{port}" if port else ""}
    if job:
        out.update(state=job["state"], reason=job.get("reason"), partition=job.get("partition"),
                   time_limit=job.get("time_limit"), end_time=job.get("end_time"))
        if job["state"] == "RUNNING" and job.get("end_time"):
            out["time_left"] = max(0, int(job["end_time"] - time.time()))
    return out


async def extend_time(address, job_id, minutes):
    """Add ``minutes`` to a running job's limit if its partition allows it.

    Returns ``(ok, message, new_limit_minutes)``. The controller lets only admins
    raise a limit; the hub is one, so it first asks the controller's planner
    whether the extension stays within the partition's MaxTime and the QOS /
    association MaxWall, runs into no reservation on the job's nodes (nor past its
    own reservation's end) and delays no other job's planned start, and says why
    not otherwise.
    """
    if not job_id:
        return False, "This server has no job.", None
    if minutes <= 0:
        return False, "Ask for a positive number of minutes.", None
    try:
        job = await call(address, "job", job_id)
        parts = {p["name"]: p for p in await call(address, "partitions")}
    except ClientError as e:
        return False, f"The controller could not be asked: {e}", None
    if job["state"] not in ACTIVE_STATES:
        return False, f"Job {job_id} is not running ({job['state']}).", None
    current = job.get("time_limit")
    if current is None:
        return False, "The job has no time limit.", None
    limit = (parts.get(job["partition"]) or {}).get("max_time")
    wanted = current + minutes
    if limit is not None and wanted > limit:
        return (False, f"Partition {job['partition']} allows at most {duration(limit * 60)}; the job "
                f"already has {duration(current * 60)}.", current)
    try:
        check = await call(address, "extension_check", job_id, minutes)
    except ClientError as e:
        return False, f"The controller could not be asked: {e}", current
    if not check.get("ok"):
        return False, f"Not extended: {check.get('reason') or 'the queue said no'}.", current
    try:
        await call(address, "update_job", job_id, time_limit=wanted)
    except ClientError as e:
        return False, f"The queue refused the extension: {e}", current
    end = (job.get("start_time") or time.time()) + wanted * 60
    return True, f"Time limit of job {job_id} is now {duration(wanted * 60)} (ends {clock(end)}).", wanted


def output_tail(path, lines=15):
    """The last lines of a job's output file, as a sentence for an error message."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return f"(Its output file {path} is not readable from the hub.)"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"Last lines of {path}:\n{tail}" if tail.strip() else f"Its output file {path} is empty."
