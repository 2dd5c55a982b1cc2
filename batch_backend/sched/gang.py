"""Gang scheduling: jobs that share CPUs take turns (Slurm's sched/gang).

A partition with ``OverSubscribe=FORCE:N`` (alias ``Shared=FORCE:N``) admits
up to N jobs per CPU: :func:`admission_views` scales each node's CPUs by N for
that partition's own scheduling pass. With ``PreemptMode=...,GANG`` the jobs
then time-share the real CPUs: every ``SchedulerTimeSlice`` seconds
:func:`timeslice` picks the set that runs next and the rest are suspended
(SIGSTOP), so each job gets its turn. Without GANG the admitted jobs all run at
once (plain oversubscription), as in Slurm.

The ring is every job of a FORCE partition that is RUNNING or SUSPENDED by the
gang scheduler itself (not by an admin or by preemption). Other jobs on the
same nodes are not time-sliced, they only reduce the CPUs the ring may use.
Higher partition tiers always go first (a tier's jobs never wait for a lower
tier's turn). Within a tier, a rotation puts the jobs that have waited longest
first and the jobs that just ran last; between rotations (a job started or
ended) the running jobs keep running and waiting ones fill only free CPUs.

Pure: ``timeslice(jobs, capacity, ...) -> [Suspend | Resume]``.
"""

import dataclasses
from dataclasses import dataclass

DEFAULT_FORCE_JOBS = 4  # Slurm: FORCE without a count means FORCE:4


def oversubscribe_jobs(value):
    """Jobs per CPU an ``OverSubscribe`` value forces: ``'FORCE:3'`` -> 3, ``'FORCE'`` -> 4, others 1.

    (``YES[:N]`` lets jobs share only when they ask with ``--oversubscribe``,
    which BatchHub does not offer: it counts as 1.)
    """
    text = str(value or "NO").upper()
    kind, _, count = text.partition(":")
    if kind != "FORCE":
        return 1
    if not count:
        return DEFAULT_FORCE_JOBS
    try:
        return max(1, int(count))
    except ValueError:
        return 1


def gang_partitions(partitions):
    """``{name: N}`` for the partitions whose CPUs are shared by N jobs (N > 1)."""
    out = {}
    for name, part in partitions.items():
        n = oversubscribe_jobs(part.get("over_subscribe"))
        if n > 1:
            out[name] = n
    return out


def admission_views(nodes, factor):
    """NodeViews with ``factor`` times the CPUs, for admitting jobs into a FORCE:N partition."""
    return {n: dataclasses.replace(v, cpus=v.cpus * factor, alloc_gpu_ids=set(v.alloc_gpu_ids))
            for n, v in nodes.items()}


@dataclass
class Suspend:
    """Stop ``job_id`` until its next turn."""

    job_id: int


@dataclass
class Resume:
    """Let ``job_id`` run again."""

    job_id: int


def due(last_rotation, now, time_slice):
    """Time for the next rotation?"""
    return last_rotation is None or now - last_rotation >= time_slice


def _turn_order(jobs, tiers, rotate):
    """Higher tiers first; then, at a rotation, the jobs waiting longest, then the running ones
    (the one that ran longest last); between rotations the running ones, then the waiting ones."""
    def key(job):
        t = -tiers.get(job["job_id"], 1)
        since = job.get("gang_active_since") or job.get("start_time") or 0
        waited = job.get("suspend_time") or 0
        if job["state"] == "RUNNING":
            return (t, 1, -since, job["job_id"]) if rotate else (t, 0, since, job["job_id"])
        return (t, 0 if rotate else 1, waited, job["job_id"])
    return sorted(jobs, key=key)


def timeslice(jobs, capacity, tiers=None, rotate=False):
    """Which ring jobs run now: ``[Suspend | Resume]`` for those that change.

    ``jobs``: ring job dicts (``state`` RUNNING or SUSPENDED, ``cpus_per_node``,
    ``nodes``, ``start_time``, ``suspend_time``, ``gang_active_since``).
    ``capacity``: node -> CPUs the ring may use. ``tiers``: job id -> partition
    PriorityTier. ``rotate``: a time slice ended (else only fill free CPUs and
    settle overcommitment, keeping running jobs running).
    """
    tiers = tiers or {}
    used = {}
    active = set()
    for job in _turn_order(jobs, tiers, rotate):
        cpus = job.get("cpus_per_node") or {}
        if all(used.get(n, 0) + cpus.get(n, 0) <= capacity.get(n, 0) for n in job.get("nodes") or []):
            for n in job.get("nodes") or []:
                used[n] = used.get(n, 0) + cpus.get(n, 0)
            active.add(job["job_id"])
    out = []
    for job in sorted(jobs, key=lambda j: j["job_id"]):
        if job["state"] == "RUNNING" and job["job_id"] not in active:
            out.append(Suspend(job["job_id"]))
        elif job["state"] == "SUSPENDED" and job["job_id"] in active:
            out.append(Resume(job["job_id"]))
    return out
