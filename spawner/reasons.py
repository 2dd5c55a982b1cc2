"""Slurm job states and pending reasons, said in plain words for the spawn page.

Slurm explains a waiting job with a one-word reason (``Priority``,
``Resources``, ``JobHeldUser``...). Scientists clicking "Start my server" should
not need the Slurm manual: :func:`pending_text` turns the job dict into one
sentence, and :func:`end_text` says why a job that ended is gone.
"""

import time

#: Slurm pending reason -> plain words. ``{...}`` fields are filled from the job dict.
PENDING_REASONS = {
    "None": "waiting for the scheduler's next pass",
    "Priority": "waiting behind jobs with higher priority in this partition",
    "Resources": "waiting for resources: the nodes it can use are busy",
    "JobHeldUser": "held by its owner (release it to let it start)",
    "JobHeldAdmin": "held by an administrator",
    "Dependency": "waiting for the jobs it depends on to finish",
    "DependencyNeverSatisfied": "it depends on a job that failed, so it can never start",
    "BeginTime": "waiting for its requested start time{begin}",
    "PartitionTimeLimit": "its time limit is longer than partition {partition} allows, so it cannot start",
    "PartitionNodeLimit": "it asks for more nodes than partition {partition} allows",
    "PartitionDown": "partition {partition} is down",
    "PartitionInactive": "partition {partition} is inactive",
    "ReqNodeNotAvail": "the nodes it needs are unavailable (down, drained or reserved)",
    "NodeDown": "a node it needs is down",
    "Reservation": "waiting for reservation {reservation}{begin}",
    "JobArrayTaskLimit": "waiting for other tasks of its array to finish",
    "QOSMaxJobsPerUserLimit": "you already run as many jobs as your QOS allows",
    "AssocMaxJobsLimit": "your account already runs as many jobs as it may",
    "QOSMaxCpuPerUserLimit": "you already use as many CPUs as your QOS allows",
    "AssocGrpCpuLimit": "your account's group already uses all the CPUs it may",
    "AssocGrpMemLimit": "your account's group already uses all the memory it may",
    "AssocGrpGRES": "your account's group already uses all the GPUs it may",
    "AssocGrpJobsLimit": "your account's group already runs as many jobs as it may",
    "AssocMaxWallDurationPerJobLimit": "its time limit is longer than your account allows, so it cannot start",
    "QOSMaxWallDurationPerJobLimit": "its time limit is longer than its QOS allows, so it cannot start",
    "QOSMaxMemoryPerUser": "you already use as much memory as your QOS allows",
    "QOSMaxGRESPerUser": "you already use as many GPUs as your QOS allows",
    "QOSGrpCpuLimit": "everyone in its QOS together already uses all the CPUs the QOS may",
    "AccountNotAllowed": "partition {partition} does not admit its account",
    "QOSNotAllowed": "partition {partition} does not admit its QOS",
    "Licenses": "waiting for licenses",
    "BadConstraints": "no node matches its constraints",
}

#: Final state -> why the job is gone, in plain words.
END_STATES = {
    "COMPLETED": "the job ended (its server exited)",
    "CANCELLED": "the job was cancelled",
    "FAILED": "the job failed",
    "TIMEOUT": "the job reached its time limit",
    "OUT_OF_MEMORY": "the job ran out of memory",
    "NODE_FAIL": "the node running the job failed",
    "PREEMPTED": "the job was preempted by a higher-priority job",
    "BOOT_FAIL": "the node could not be booted for the job",
    "DEADLINE": "the job missed its deadline",
    "GONE": "the job is no longer known to the queue",
}


def clock(epoch, now=None):
    """'10:32' today, 'Tue 10:32' within a week, else the date."""
    now = time.time() if now is None else now
    t = time.localtime(epoch)
    if time.localtime(now)[:3] == t[:3]:
        return time.strftime("%H:%M", t)
    if abs(epoch - now) < 6 * 86400:
        return time.strftime("%a %H:%M", t)
    return time.strftime("%Y-%m-%d %H:%M", t)


def duration(seconds):
    """'45 s', '4 min', '2 h 05 min', '3 days'."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} days"


def reason_text(job, now=None):
    """The pending reason of ``job`` in plain words."""
    reason = job.get("reason") or "None"
    template = PENDING_REASONS.get(reason)
    if template is None:
        return f"waiting ({reason})"
    begin = ""
    when = job.get("begin_time") or (job.get("start_time") if job.get("start_estimated") else None)
    if when:
        begin = f" at {clock(when, now)}"
    return template.format(partition=job.get("partition", "?"), begin=begin,
                           reservation=job.get("reservation") or "?")


def pending_text(job, position=None, now=None):
    """One sentence about a pending job: position, reason, estimated start."""
    now = time.time() if now is None else now
    parts = [f"Job {job['job_id']} is queued in partition {job.get('partition', '?')}"]
    if position:
        pos, total = position
        parts[0] += f", position {pos} of {total}"
    parts.append(reason_text(job, now))
    text = "; ".join(parts)
    if job.get("start_estimated") and job.get("start_time"):
        start = job["start_time"]
        text += f". Estimated start {clock(start, now)}"
        text += f" (in {duration(start - now)})" if start > now else " (any moment now)"
    return text + "."


def end_text(job):
    """Why a job is gone: its final state and exit status in plain words."""
    state = (job.get("state") or "GONE").split()[0]
    text = END_STATES.get(state, f"the job ended ({state})")
    code, sig = job.get("exit_code") or 0, job.get("exit_signal") or 0
    if state == "FAILED":
        if sig == 53:  # Slurm's 0:53: the batch script could not be launched
            text += " (it could not be launched on the node)"
        elif sig:
            text += f" (killed by signal {sig})"
        elif code:
            text += f" (exit code {code})"
    if state == "TIMEOUT" and job.get("time_limit"):
        text += f" of {duration(job['time_limit'] * 60)}"
    return text
