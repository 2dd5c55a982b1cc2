"""Priority-ordered FIFO: the core's scheduling policy.

``schedule(state, now) -> decisions`` is a pure function: it reads a
:class:`SchedState` snapshot and returns what to do, touching nothing else. The
live controller and the simulator call the same function; a smarter policy
(multifactor priority, backfill) replaces this module behind the same
signature.

Like Slurm's main scheduler without backfill, a partition stops at its first
job that cannot start: lower-priority jobs in that partition wait with reason
``Priority`` so that a big job at the head of the queue is not starved by
small ones behind it. Jobs that are not eligible (held, begin time, unmet
dependency, over a partition limit) never block anyone.
"""

from dataclasses import dataclass, field

from .placement import place


@dataclass
class SchedState:
    """Everything a pass may read. ``pending`` is in priority order."""

    nodes: dict              # name -> NodeView (free resources now)
    partitions: dict         # name -> partition dict (model.PARTITION_FIELDS)
    pending: list            # job dicts, highest priority first
    running_array_tasks: dict = field(default_factory=dict)  # array_job_id -> running task count
    dependency_state: object = None  # callable(job) -> (satisfied: bool, never: bool)
    expand_hostlist: object = None
    #: association/QOS limits (:class:`.limits.Limits`), or None when not enforced
    limits: object = None
    #: filled by the pass: partitions whose head job is waiting for resources. Jobs not
    #: visited after every partition blocked keep their reason; new ones start at Priority.
    blocked: set = field(default_factory=set)
    #: advance reservations the jobs of this pass must keep clear of (none of them belongs to
    #: one): node -> [(start, end, maint)], see sched/reservations.blocked_windows
    reserved_windows: dict = None


@dataclass
class Start:
    """Start ``job_id`` with ``allocation`` (for an array master: its next task).

    ``backfilled`` is true when the job started ahead of a higher-priority job
    of its partition that is still waiting (only the backfill policy does that);
    it feeds statistics such as sdiag's "Total backfilled jobs".
    """

    job_id: int
    allocation: object
    backfilled: bool = False


@dataclass
class SetReason:
    """Leave ``job_id`` pending with this reason."""

    job_id: int
    reason: str


def ineligible_reason(job, partition, now, state):
    """Why ``job`` may not start at all right now, or None if it may."""
    if job.get("held") == "admin":
        return "JobHeldAdmin"
    if job.get("held") == "resv":  # its reservation ended or was deleted (release to run outside it)
        return "ReservationDeleted"
    if job.get("held"):
        return "JobHeldUser"
    if job.get("begin_time") and job["begin_time"] > now:
        return "BeginTime"
    if job.get("dependency") and state.dependency_state is not None:
        satisfied, never = state.dependency_state(job)
        if never:
            return "DependencyNeverSatisfied"
        if not satisfied:
            return "Dependency"
    if partition is None:
        return "PartitionDown"
    if partition["state"] == "INACTIVE":
        return "PartitionInactive"
    if partition["state"] == "DOWN":
        return "PartitionDown"  # DRAIN takes no new jobs but still runs the queued ones
    refused = partition_refuses(partition, job)
    if refused:
        return refused
    limit = partition.get("max_time")
    if limit is not None and (job.get("time_limit") is None or job["time_limit"] > limit):
        return "PartitionTimeLimit"
    max_nodes = partition.get("max_nodes")
    if max_nodes is not None and (job.get("num_nodes_req") or 1) > max_nodes:
        return "PartitionNodeLimit"
    if (job.get("num_nodes_req") or 0) and job["num_nodes_req"] < partition.get("min_nodes", 0):
        return "PartitionNodeLimit"
    if job.get("array_spec") and job.get("array_max_running"):
        if state.running_array_tasks.get(job["job_id"], 0) >= job["array_max_running"]:
            return "JobArrayTaskLimit"
    limits = getattr(state, "limits", None)
    if limits is not None:
        return limits.reason(job)
    return None


def _listed(value, item):
    if not value:
        return False
    return item in {v.strip() for v in (value or "").split(",") if v.strip()}


def partition_refuses(partition, job):
    """``AccountNotAllowed``/``QOSNotAllowed`` when the partition's AllowAccounts/DenyAccounts/
    AllowQos/DenyQos keep the job out (e.g. after ``scontrol update`` moved it), else None."""
    account, qos = job.get("account") or "", job.get("qos") or ""
    allow = partition.get("allow_accounts") or "ALL"
    if (allow.upper() != "ALL" and not _listed(allow, account)) or _listed(partition.get("deny_accounts"), account):
        return "AccountNotAllowed"
    allow = partition.get("allow_qos") or "ALL"
    if (allow.upper() != "ALL" and not _listed(allow, qos)) or _listed(partition.get("deny_qos"), qos):
        return "QOSNotAllowed"
    return None


def schedule(state, now):
    """One scheduling pass: start what fits, in priority order; explain the rest."""
    decisions = []
    blocked = state.blocked
    partition_views = {}
    for job in state.pending:
        pname = job["partition"]
        partition = state.partitions.get(pname)
        reason = ineligible_reason(job, partition, now, state)
        if reason is None and pname in blocked:
            reason = "Priority"
        if reason is None:
            views = partition_views.get(pname)
            if views is None:
                views = partition_views[pname] = [state.nodes[n] for n in partition["nodes"] if n in state.nodes]
            if state.reserved_windows:
                views = _outside_reservations(views, state, job, now)
            started = _start_what_fits(job, views, state, decisions)
            if started and not job.get("array_spec"):
                continue
            if started:
                # An array master whose remaining tasks wait: throttle or resources.
                reason = ineligible_reason(job, partition, now, state) or "Resources"
                if len(job_task_ids(job)) <= started:
                    continue
            else:
                reason = "Resources"
            if reason == "Resources":
                blocked.add(pname)
        if job.get("reason") != reason:
            decisions.append(SetReason(job["job_id"], reason))
        if len(blocked) == len(state.partitions):
            break  # every partition waits on its head job: nothing below can start
    return decisions


def _outside_reservations(views, state, job, now):
    """The views a job may start on now: nodes whose reservations begin only after it would end."""
    from .reservations import blocked_nodes, job_duration
    blocked = blocked_nodes(state.reserved_windows, now, job_duration(job))
    return [v for v in views if v.name not in blocked] if blocked else views


def job_task_ids(job):
    """The unstarted task indices of an array master (empty for other jobs)."""
    return job.get("array_pending") or []


def _start_what_fits(job, views, state, decisions):
    """Start ``job`` (or as many tasks of an array master as fit); return how many."""
    count = len(job_task_ids(job)) if job.get("array_spec") else 1
    limit = job.get("array_max_running")
    started = 0
    while started < count:
        if limit and state.running_array_tasks.get(job["job_id"], 0) >= limit:
            break
        if started and state.limits is not None and state.limits.reason(job):
            break
        alloc = place(job, views, expand_hostlist=state.expand_hostlist)
        if alloc is None:
            break
        alloc.apply(state.nodes)
        decisions.append(Start(job["job_id"], alloc))
        if state.limits is not None:
            state.limits.charge(job, alloc)
        started += 1
        if job.get("array_spec"):
            state.running_array_tasks[job["job_id"]] = state.running_array_tasks.get(job["job_id"], 0) + 1
    return started
