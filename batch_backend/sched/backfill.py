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

The availability profile is per node: a step function of free CPUs, memory,
GPUs and job count over time (a list of breakpoints, never a per-second grid),
built lazily: a pass in which every job starts now never builds one.
"""

import bisect
import heapq
import math
from dataclasses import dataclass, field

from .fifo import SchedState, SetReason, Start, ineligible_reason, job_task_ids
from .placement import NodeView, features_match, gpu_count, place

INF = math.inf


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


@dataclass
class Estimate:
    """The planner's start time for a pending job, or ``start_time=None`` to clear one.

    ``nodes`` are the nodes it is planned on (squeue's SCHEDNODES). Emitted only
    when it differs from the job's stored ``start_time``/``sched_nodes`` while
    ``start_estimated`` is true, so a steady queue causes no writes.
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


# -- per-node availability ----------------------------------------------------------

class _Profile:
    """Free resources of one node as a step function: segment i is [times[i], times[i+1])."""

    __slots__ = ("times", "cpus", "mem", "gpus", "busy")

    def __init__(self, view, now, releases):
        gpus_free = view.gpus - len(view.alloc_gpu_ids)
        self.times, self.cpus, self.mem = [now], [view.free_cpus], [view.free_memory]
        self.gpus, self.busy = [gpus_free], [view.busy_jobs]
        for t, c, m, g in sorted(releases):
            if t != self.times[-1]:
                self.times.append(t)
                self.cpus.append(self.cpus[-1])
                self.mem.append(self.mem[-1])
                self.gpus.append(self.gpus[-1])
                self.busy.append(self.busy[-1])
            # Clamped: resources of a job the controller already released are not counted twice.
            self.cpus[-1] = min(view.cpus, self.cpus[-1] + c)
            self.mem[-1] = min(view.real_memory, self.mem[-1] + m)
            self.gpus[-1] = min(view.gpus, self.gpus[-1] + g)
            self.busy[-1] = max(0, self.busy[-1] - 1)

    def _split(self, t):
        k = bisect.bisect_left(self.times, t)
        if k < len(self.times) and self.times[k] == t:
            return k, False
        self.times.insert(k, t)
        for values in (self.cpus, self.mem, self.gpus, self.busy):
            values.insert(k, values[k - 1])
        return k, True

    def reserve(self, t0, t1, cpus, mem, gpus):
        """Take resources over [t0, t1); returns the breakpoints it created."""
        created = []
        i, new = self._split(t0)
        if new:
            created.append(t0)
        if t1 == INF:
            j = len(self.times)
        else:
            j, new = self._split(t1)
            if new:
                created.append(t1)
        for k in range(i, j):
            self.cpus[k] -= cpus
            self.mem[k] -= mem
            self.gpus[k] -= gpus
            self.busy[k] += 1
        return created


@dataclass
class _Req:
    """A job's request, reduced to what the planner compares."""

    cpus_per_task: int
    mem_per_cpu: int
    mem_per_node: int
    gpus: int
    tasks_per_node: int
    exclusive: bool
    ntasks: int
    want_nodes: int
    required: list
    duration: float  # seconds, INF without a time limit
    key: tuple


def _request(job, pname, expand):
    tl = job.get("time_limit")
    key = (pname, job["cpus_per_task"], job["num_tasks"], job.get("num_nodes_req"), job.get("ntasks_per_node"),
           job.get("mem_per_cpu"), job.get("mem_per_node"), job.get("gres") or "", job.get("features") or "",
           job.get("exclude") or "", job.get("nodelist_req") or "", bool(job.get("exclusive")), tl)
    required = expand(job["nodelist_req"]) if job.get("nodelist_req") and expand else []
    return _Req(job["cpus_per_task"], job.get("mem_per_cpu") or 0, job.get("mem_per_node") or 0,
                gpu_count(job.get("gres")), job.get("ntasks_per_node") or 0, bool(job.get("exclusive")),
                job["num_tasks"], job.get("num_nodes_req") or 0, required,
                INF if tl is None else tl * 60.0, key)


def _fit(req, cpus, mem, gpus, busy):
    """Tasks of ``req`` that fit in these free resources: placement._node_capacity on numbers."""
    if req.exclusive and busy:
        return 0
    tasks = cpus // req.cpus_per_task
    if req.mem_per_cpu:
        tasks = min(tasks, mem // (req.mem_per_cpu * req.cpus_per_task))
    elif req.mem_per_node and mem < req.mem_per_node:
        return 0
    if req.gpus > gpus:
        return 0
    if req.tasks_per_node:
        tasks = min(tasks, req.tasks_per_node)
    return max(tasks, 0)


class _Eligible:
    """The nodes a kind of job may use, in partition order, and those with free CPUs now."""

    __slots__ = ("names", "members", "pos", "free_now")

    def __init__(self, names):
        self.names = names
        self.members = set(names)
        self.pos = {n: i for i, n in enumerate(names)}
        self.free_now = names  # pruned as nodes fill up: nothing frees up *now* within a pass


class _Sweep:
    """Per-job capacity bookkeeping while walking breakpoints forward in time."""

    __slots__ = ("caps", "mins", "total", "count", "heap", "version")

    def __init__(self):
        self.caps, self.mins, self.version = {}, {}, {}
        self.total = self.count = 0
        self.heap = []


class _Planner:
    """One pass's availability profiles, breakpoint index and planning."""

    def __init__(self, state, now):
        self.state, self.now, self.views = state, now, state.nodes
        self.res = getattr(state, "bf_resolution", 60) or 0
        self.horizon = now + getattr(state, "bf_window", 1440) * 60.0
        self.indexed = False       # releases of running jobs loaded into profiles
        self.profiles = {}         # node -> _Profile (nodes without one are flat: free now, forever)
        self.bp_times = []         # sorted times after now where some profile changes
        self.bp_nodes = {}         # time -> nodes with a breakpoint then
        self.early_releases = {}   # node -> releases of jobs started before indexing
        self.eligible = {}
        self.shape_floor = {}      # request key -> earliest start found (None: none in window)

    # -- time and profiles ----------------------------------------------------------
    def round_up(self, t):
        if t == INF or self.res <= 0:
            return t
        return math.ceil(t / self.res - 1e-9) * self.res

    def _release_time(self, end):
        t = self.round_up(max(end, self.now))
        # Overdue jobs are being killed: their resources are not free *now*.
        return t if t > self.now else self.round_up(self.now + max(self.res, 1))

    def _index(self):
        """Load the running jobs' expected ends into profiles (first time a job must wait)."""
        releases = self.early_releases
        for job in self.state.running:
            end = job.get("end_time")
            if end is None:
                if job.get("time_limit") is None:
                    continue  # runs forever as far as planning knows
                end = job["start_time"] + job["time_limit"] * 60
            end = self._release_time(end)
            cpn, mpn, gpn = job.get("cpus_per_node") or {}, job.get("mem_alloc_per_node") or {}, \
                job.get("gpus_per_node") or {}
            for name in job.get("nodes") or ():
                if name in self.views:
                    releases.setdefault(name, []).append((end, cpn.get(name, 0), mpn.get(name, 0),
                                                          len(gpn.get(name, ()))))
        for name, rel in releases.items():
            prof = self.profiles[name] = _Profile(self.views[name], self.now, rel)
            for t in prof.times[1:]:
                self.bp_nodes.setdefault(t, []).append(name)
        self.bp_times = sorted(self.bp_nodes)
        self.indexed = True

    def _profile(self, name):
        prof = self.profiles.get(name)
        if prof is None:
            prof = self.profiles[name] = _Profile(self.views[name], self.now, ())
        return prof

    def commit(self, req, t, alloc):
        """Hold ``alloc`` from ``t`` for the job's time limit; apply it to the views if it starts now."""
        end = self.round_up(t + req.duration)
        for name in alloc.nodes:
            c, m = alloc.cpus_per_node[name], alloc.memory_per_node[name]
            g = len(alloc.gpus_per_node.get(name, ()))
            if not self.indexed:
                if end != INF:
                    self.early_releases.setdefault(name, []).append((end, c, m, g))
                continue
            for bp in self._profile(name).reserve(t, end, c, m, g):
                nodes = self.bp_nodes.get(bp)
                if nodes is None:
                    self.bp_nodes[bp] = [name]
                    bisect.insort(self.bp_times, bp)
                else:
                    nodes.append(name)
        if t == self.now:
            alloc.apply(self.views)

    # -- planning -----------------------------------------------------------------------
    def _eligible_for(self, job, partition, req):
        key = (partition["name"], job.get("features") or "", job.get("exclude") or "")
        elig = self.eligible.get(key)
        if elig is None:
            expand = self.state.expand_hostlist
            excluded = set(expand(job["exclude"])) if job.get("exclude") and expand else set()
            views = self.views
            elig = self.eligible[key] = _Eligible([
                n for n in partition["nodes"]
                if n in views and views[n].usable and n not in excluded
                and features_match(job.get("features"), views[n].features)])
        return elig

    def plan(self, job, partition, req):
        """Earliest ``(start, Allocation)`` for one task of ``job``, or None within the window."""
        floor = self.shape_floor.get(req.key, self.now)
        if floor is None:
            return None  # an identical request found no room: availability only shrinks in a pass
        elig = self._eligible_for(job, partition, req)
        found = None
        if elig.names and all(r in elig.members for r in req.required):
            if not self.indexed and floor == self.now:
                # Until some job must wait, "now" is all that matters: no profiles needed.
                found = self._walk(job, req, elig, floor, now_only=True)
            if found is None:
                if not self.indexed:
                    self._index()
                found = self._walk(job, req, elig, floor)
        self.shape_floor[req.key] = found[0] if found else None
        return found

    def _evaluate(self, sw, req, name, t):
        """Capacity of node ``name`` for ``req`` over [t, end): exact per-resource minima."""
        prof = self.profiles.get(name)
        if prof is None:
            v = self.views[name]
            mins = (v.free_cpus, v.free_memory, v.gpus - len(v.alloc_gpu_ids), v.busy_jobs)
            expiry = None
        else:
            times = prof.times
            i = bisect.bisect_right(times, t) - 1
            end = self.round_up(t + req.duration)
            j = len(times) if end == INF else bisect.bisect_left(times, end, i + 1)
            if j == i + 1:
                mins = (prof.cpus[i], prof.mem[i], prof.gpus[i], prof.busy[i])
            else:
                mins = (min(prof.cpus[i:j]), min(prof.mem[i:j]), min(prof.gpus[i:j]), max(prof.busy[i:j]))
            expiry = None
            # The capacity holds until the window's right edge reaches a segment with less.
            for k in range(j, len(times)):
                if prof.cpus[k] < mins[0] or prof.mem[k] < mins[1] or prof.gpus[k] < mins[2] \
                        or prof.busy[k] > mins[3]:
                    expiry = times[k] - req.duration
                    break
        cap = _fit(req, *mins)
        old = sw.caps.get(name, 0)
        sw.total += cap - old
        sw.count += (cap > 0) - (old > 0)
        sw.caps[name] = cap
        sw.mins[name] = mins
        ver = sw.version[name] = sw.version.get(name, 0) + 1
        if expiry is not None and cap:
            heapq.heappush(sw.heap, (expiry, ver, name))

    def _feasible(self, sw, req):
        return (sw.total >= req.ntasks and sw.count >= max(req.want_nodes, 1)
                and all(sw.caps.get(r, 0) for r in req.required))

    def _walk(self, job, req, elig, floor, now_only=False):
        """Sweep breakpoints from ``now`` (or jump to ``floor``) to the first time the job fits.

        The earliest feasible start is always ``now`` or a breakpoint (before
        one, nothing gets freer), so only those are tried. Node capacities are
        updated incrementally: at its own breakpoints, and when the job's
        window starts to cover a later reservation (an expiry in ``sw.heap``).
        """
        now, sw = self.now, _Sweep()
        bps = self.bp_times
        k_now = bisect.bisect_right(bps, now)
        k_floor = bisect.bisect_right(bps, floor)
        if floor > now and (k_floor - k_now) * 2 > len(elig.names):
            t, k = floor, k_floor   # cheaper to evaluate every node at the floor than to sweep to it
            for name in elig.names:
                self._evaluate(sw, req, name, t)
        else:
            t, k = now, k_now
            early = floor == now and not req.want_nodes
            views, dead = self.views, []
            for name in elig.free_now:
                if views[name].free_cpus <= 0:
                    dead.append(name)
                    continue
                self._evaluate(sw, req, name, now)
                if early and sw.caps[name] and self._feasible(sw, req):
                    alloc = self._place_at(job, req, now, sw, elig)
                    if alloc is not None:
                        self._prune(elig, dead)
                        return now, alloc
            self._prune(elig, dead)
        while True:
            if t >= floor and self._feasible(sw, req):
                alloc = self._place_at(job, req, t, sw, elig)
                if alloc is not None:
                    return t, alloc
            if now_only or k >= len(bps) or bps[k] > self.horizon:
                return None
            t = bps[k]
            k += 1
            for name in self.bp_nodes[t]:
                if name in elig.members:
                    self._evaluate(sw, req, name, t)
            heap = sw.heap
            while heap and heap[0][0] < t:
                _, ver, name = heapq.heappop(heap)
                if sw.version[name] == ver:
                    self._evaluate(sw, req, name, t)

    @staticmethod
    def _prune(elig, dead):
        if len(dead) * 8 > len(elig.free_now):
            gone = set(dead)
            elig.free_now = [n for n in elig.free_now if n not in gone]

    def _place_at(self, job, req, t, sw, elig):
        """Run the real placement on views showing what is free over the job's window."""
        caps = sw.caps
        if len(caps) * 8 < len(elig.names):
            names = sorted((n for n, c in caps.items() if c), key=elig.pos.__getitem__)
        else:
            names = [n for n in elig.names if caps.get(n)]
        if not req.want_nodes and not req.required:
            # Block layout fills nodes in order: the first ones with room decide.
            room, cut = 0, len(names)
            for i, n in enumerate(names):
                room += caps[n]
                if room >= req.ntasks:
                    cut = i + 1
                    break
            names = names[:cut]
        views = []
        for name in names:
            v = self.views[name]
            cpus, mem, gpus, busy = sw.mins[name]
            if t == self.now:  # real GPU indices: the allocation is used as is
                free = v.free_gpu_ids()
                gpu_ids = v.alloc_gpu_ids | set(free[gpus:])
            else:
                gpu_ids = set(range(v.gpus - gpus))
            views.append(NodeView(name, v.cpus, v.real_memory, v.gpus, v.features, v.cpus - cpus,
                                  v.real_memory - mem, gpu_ids, True, busy))
        return place(job, views, expand_hostlist=self.state.expand_hostlist)


# -- the pass ---------------------------------------------------------------------------

def _estimate_changed(job, start, nodes):
    return not (job.get("start_estimated") and job.get("start_time") == start and job.get("sched_nodes") == nodes)


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
    planner = _Planner(state, now)
    decisions = []
    blocked = state.blocked
    max_test = getattr(state, "bf_max_job_test", 500)
    tested = 0
    # Partitions with pending jobs: once all are blocked and the depth is spent, stop early.
    waiting = {job["partition"] for job in state.pending}
    for job in state.pending:
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
        reason = _schedule_job(planner, job, partition, behind, decisions)
        if reason is None:
            continue
        if reason in ("Resources", "Priority"):
            reason = "Priority" if behind else "Resources"
            blocked.add(pname)
        _set_reason(job, reason, decisions)
    return decisions


def _schedule_job(planner, job, partition, behind, decisions):
    """Start, or plan, ``job`` (each task of an array master); return its pending reason or None."""
    state, now = planner.state, planner.now
    req = _request(job, partition["name"], state.expand_hostlist)
    is_array = bool(job.get("array_spec"))
    count = len(job_task_ids(job)) if is_array else 1
    limit = job.get("array_max_running")
    started, found = 0, None
    while started < count:
        if limit and state.running_array_tasks.get(job["job_id"], 0) >= limit:
            break
        found = planner.plan(job, partition, req)
        if found is None or found[0] > now:
            break
        planner.commit(req, now, found[1])
        decisions.append(Start(job["job_id"], found[1], backfilled=behind))
        started += 1
        found = None
        if is_array:
            state.running_array_tasks[job["job_id"]] = state.running_array_tasks.get(job["job_id"], 0) + 1
    if started == count:
        return None
    throttled = ineligible_reason(job, partition, now, state)
    if throttled:
        _clear_estimate(job, decisions)
        return throttled
    if found is not None:
        start, alloc = found
        planner.commit(req, start, alloc)
        if _estimate_changed(job, start, alloc.nodes):
            decisions.append(Estimate(job["job_id"], start, list(alloc.nodes)))
    else:
        _clear_estimate(job, decisions)
    return "Resources"
