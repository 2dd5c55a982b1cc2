"""EASY-style backfill with start-time estimates, as Slurm's sched/backfill does it.

``schedule(state, now) -> decisions`` has the same contract as
:func:`batch_backend.sched.fifo.schedule` and may replace it behind the same
call: it reads a :class:`BackfillState` (a :class:`~.fifo.SchedState` that also
knows the running jobs) and returns :class:`~.fifo.Start`,
:class:`~.fifo.SetReason` and :class:`Estimate` decisions.

Why backfill: priority FIFO leaves nodes idle behind a big job waiting at the
head of the queue. Backfill lets smaller jobs use that idle time, but only when
they provably delay no higher-priority job, so users can trust the order and the
start times the planner tells them.

How, in one pass over the pending jobs in priority order:

* every job that can start now (and delays nobody, see below) starts;
* a job that cannot start is *planned*: the earliest time enough resources are
  free on suitable nodes for its whole time limit, computed from the running
  jobs' expected ends (``start_time + time_limit``; a job without a limit runs
  forever). The planned start and nodes become a reservation in the
  availability profile, and an :class:`Estimate` for ``squeue --start``;
* every later job is planned against the profile *with* those reservations, so
  it starts now only if it ends before them or uses resources they do not need.

Like Slurm (and unlike textbook EASY, which protects only the head job) every
planned job holds its reservation, so estimates are consistent with each other
and no job within the planning depth is ever delayed by one below it.

Cost is bounded as in Slurm: planned starts are looked for only up to
``bf_window`` minutes ahead, at most ``bf_max_job_test`` jobs are planned after
the first job of their partition has blocked, and times are rounded up to
``bf_resolution`` seconds so that ends close together share one breakpoint.
Jobs past the depth keep reason ``Priority`` and get no estimate.

Finding the earliest start is :mod:`.planner`'s job (per-node availability
profiles over time, :mod:`.availability`, swept breakpoint by breakpoint); this
module is the policy: which jobs are planned, in what order, and what users are
told.
"""

import itertools
import operator
from dataclasses import dataclass, field

from .fifo import SchedState, SetReason, Start, ineligible_reason, job_task_ids
from .availability import INF, Request
from .planner import Planner


_CPUS, _ALLOC_CPUS, _USABLE = (operator.attrgetter(a) for a in ("cpus", "alloc_cpus", "usable"))


@dataclass
class BackfillState(SchedState):
    """A :class:`~.fifo.SchedState` plus what planning ahead needs.

    ``running``: job dicts holding resources (RUNNING, COMPLETING, SUSPENDED),
    with ``nodes``, ``cpus_per_node``, ``mem_alloc_per_node``, ``gpus_per_node``,
    ``start_time`` and ``time_limit`` (minutes, None = forever); ``end_time``,
    when set, is used as the expected end instead (the controller moves it when
    a limit is updated).
    """

    running: list = field(default_factory=list)
    bf_window: int = 1440        # minutes ahead a planned start may lie (SchedulerParameters bf_window)
    bf_max_job_test: int = 500   # jobs planned per pass after their partition blocked (bf_max_job_test)
    bf_resolution: int = 60      # seconds expected ends are rounded up to (bf_resolution)
    estimates: bool = True       # False: only starts matter (the simulator), see schedule()


@dataclass
class Estimate:
    """The planner's start time for a pending job, or ``start_time=None`` to clear one.

    ``nodes`` are the nodes it is planned on (squeue's SCHEDNODES). Emitted only
    when it differs from the job's stored ``start_time``/``sched_nodes`` (a list
    or a hostlist string) while ``start_estimated`` is true, so a steady queue
    causes no writes.
    """

    job_id: int
    start_time: float | None
    nodes: list


def params_from_scheduler_parameters(params):
    """BackfillState keyword arguments from ``conf.scheduler_parameters(conf)``."""
    out = {}
    for key in ("bf_window", "bf_max_job_test", "bf_resolution"):
        value = params.get(key)
        if isinstance(value, str) and value.isdigit():
            out[key] = int(value)
    return out


# -- the pass ---------------------------------------------------------------------------

def _estimate_changed(job, start, nodes, expand):
    """Whether the job's stored estimate differs; ``sched_nodes`` may be a list or a hostlist string."""
    if not (job.get("start_estimated") and job.get("start_time") == start):
        return True
    stored = job.get("sched_nodes")
    if isinstance(stored, str):
        return not (stored and expand and expand(stored) == nodes)
    return stored != nodes


def _clear_estimate(job, decisions):
    if job.get("start_estimated") and job.get("start_time") is not None:
        decisions.append(Estimate(job["job_id"], None, []))


def _set_reason(job, reason, decisions):
    if job.get("reason") != reason:
        decisions.append(SetReason(job["job_id"], reason))


def schedule(state, now):
    """One backfill pass: start what may start, plan the rest, explain everything.

    Accepts a plain :class:`~.fifo.SchedState` too (no running jobs known:
    resources held now are assumed held forever, so nothing is planned ahead).
    """
    planner = Planner(state, now, window_minutes=getattr(state, "bf_window", 1440),
                      resolution=getattr(state, "bf_resolution", 60))
    decisions = []
    blocked = state.blocked
    max_test = getattr(state, "bf_max_job_test", 500)
    tested = 0
    # Partitions with pending jobs: once all are blocked and the depth is spent, stop early.
    waiting = {job["partition"] for job in state.pending}
    pending, candidates = state.pending, None
    if not getattr(state, "estimates", True):
        candidates = _StartCandidates(state)
        pending = candidates.prefix
    last = pending[-1] if pending else None
    for i, job in enumerate(pending):
        if candidates is not None and not candidates.any_from(i, planner):
            break  # no job from here on could start now: the rest of the plan changes nothing
        pname = job["partition"]
        partition = state.partitions.get(pname)
        reason = ineligible_reason(job, partition, now, state)
        if reason is not None:
            _set_reason(job, reason, decisions)
            _clear_estimate(job, decisions)
            continue
        behind = pname in blocked
        if behind:
            if tested >= max_test:
                _set_reason(job, "Priority", decisions)
                _clear_estimate(job, decisions)
                if waiting <= blocked:
                    break  # nothing below is examined: its reason and estimate stay as they were
                continue
            tested += 1
        reason = _schedule_job(planner, job, partition, behind, decisions, hold=job is not last)
        if reason is None:
            continue
        if reason in ("Resources", "Priority"):
            reason = "Priority" if behind else "Resources"
            blocked.add(pname)
        _set_reason(job, reason, decisions)
    return decisions


class _StartCandidates:
    """The jobs of a starts-only pass that might start now, and so the part of the queue to plan.

    A job needs at least ``num_tasks * cpus_per_task`` CPUs free over its
    whole time limit to start now. Free now, before the pass: a job asking
    for more than all nodes have free cannot start in this pass, and jobs
    after the last one that might start need no plan (a plan only constrains
    the jobs after it), so ``prefix`` ends there. Then, as the pass holds
    higher-priority jobs' planned starts, the planner's count of free CPUs
    over time (:class:`~.planner._TotalFree`) only goes down: once no job
    from the current one on finds enough there over its time limit, the
    pass can stop. The starts are exactly those of the full pass.
    """

    def __init__(self, state):
        views = state.nodes.values()
        free = sum(itertools.compress(map(max, map(operator.sub, map(_CPUS, views), map(_ALLOC_CPUS, views)),
                                          itertools.repeat(0)), map(_USABLE, views)))
        pending = state.pending
        self.jobs = []  # (index, CPUs needed, time limit in seconds), in queue order
        for i, job in enumerate(pending):
            need = job["num_tasks"] * job["cpus_per_task"]
            if need <= free:
                tl = job.get("time_limit")
                self.jobs.append((i, need, INF if tl is None else tl * 60.0))
        self.prefix = pending[:self.jobs[-1][0] + 1] if self.jobs else ()

    def any_from(self, i, planner):
        """Could some job at index ``i`` or later still start now?"""
        total, jobs = planner.total, self.jobs
        while jobs:
            k, need, duration = jobs[-1]
            if k < i:
                return False
            if total is None or total.fits(planner.now, need, planner.round_up(planner.now + duration)):
                return True
            jobs.pop()
        return False


def _schedule_job(planner, job, partition, behind, decisions, hold=True):
    """Start, or plan, ``job`` (each task of an array master); return its pending reason or None.

    ``hold``: keep the job's planned start from the jobs planned after it (False for the
    last job of a pass, which nobody is planned after).
    """
    state, now = planner.state, planner.now
    req = Request(job, partition["name"], state.expand_hostlist)
    is_array = bool(job.get("array_spec"))
    count = len(job_task_ids(job)) if is_array else 1
    limit = job.get("array_max_running")
    started, found = 0, None
    limits = getattr(state, "limits", None)
    while started < count:
        if limit and state.running_array_tasks.get(job["job_id"], 0) >= limit:
            break
        if started and limits is not None and limits.reason(job):
            break
        found = planner.plan(job, partition, req)
        if found is None or found[0] > now:
            break
        planner.commit(req, now, found[1])
        decisions.append(Start(job["job_id"], found[1], backfilled=behind))
        if limits is not None:
            limits.charge(job, found[1])
        started += 1
        found = None
        if is_array:
            state.running_array_tasks[job["job_id"]] = state.running_array_tasks.get(job["job_id"], 0) + 1
    if started == count:
        return None
    # Starting tasks may have reached an array throttle or a limit; nothing else changed.
    throttled = ineligible_reason(job, partition, now, state) if is_array or limits is not None else None
    if throttled:
        _clear_estimate(job, decisions)
        return throttled
    if found is not None:
        start, alloc = found
        if hold:
            planner.commit(req, start, alloc)
        if _estimate_changed(job, start, alloc.nodes, state.expand_hostlist):
            decisions.append(Estimate(job["job_id"], start, list(alloc.nodes)))
    else:
        _clear_estimate(job, decisions)
    return "Resources"
