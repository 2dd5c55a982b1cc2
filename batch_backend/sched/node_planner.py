"""The backfill planner's per-node sweep: for passes where (nearly) every node has its own future.

:class:`~.planner.Planner` sweeps *groups* of nodes that share an
availability profile, which is what makes replays of wide-job workloads fast;
but on a cluster where every node runs its own jobs (the controller's usual
case) each group is one node, and the group bookkeeping (shared profiles
copied on write, move logs, the total-free bound) costs about twice a plain
per-node sweep. The planner measures that once per pass, when profiles are
first needed, and hands the rest of the pass to :class:`NodePlanner` when the
groups would be about as many as the nodes. Both find the same earliest
start and the same allocation for every job (tests/unit/test_sim_replay_digest.py
and test_sched_properties.py hold either to the same decisions).

Representation: each node's free CPUs, memory, GPUs and job count as a step
function of time (:class:`~.availability.Profile`), built on first use and
changed in place by :meth:`NodePlanner.commit`.

Search: the earliest feasible start is ``now`` or a breakpoint where some node
gains resources, so :meth:`NodePlanner._walk` sweeps breakpoints in time order,
keeping each node's capacity for the job (tasks that fit over the job's whole
window) up to date incrementally, and runs the real :func:`~.placement.place`
on window views once the totals say it could fit.

Why it is fast enough for 10,000 pending jobs: capacities depend only on a
job's per-node shape (the *capacity key*), and feasibility is monotone in the
task count, so a sweep saved by one job is resumed by later jobs of the same
shape from the latest point they provably cannot start before (the
*dominance floor*), re-evaluating only nodes touched since. A deep queue then
costs about one sweep per shape, not one per job.
"""

import bisect
import heapq
import math

from .availability import INF, Profile, window_capacity
from .placement import Allocation, NodeView, features_match, place
MAX_SAVED = 12  # sweep states kept per capacity key


def releases_by_node(ending):
    """node -> [(end, cpus, memory, gpus)] given back by the running jobs ``ending`` ([(end, job)])."""
    jobs_on = {}
    for end, job in ending:
        cpus = job.get("cpus_per_node") or {}
        mem = job.get("mem_alloc_per_node") or {}
        gpus = job.get("gpus_per_node") or {}
        for n in job.get("nodes") or ():
            entry = (end, cpus.get(n, 0), mem.get(n, 0), len(gpus.get(n, ())))
            known = jobs_on.get(n)
            if known is None:
                jobs_on[n] = [entry]
            else:
                known.append(entry)
    return jobs_on


class Eligible:
    """The nodes a kind of job may use, in partition order, and those with free CPUs now."""

    __slots__ = ("names", "members", "_pos", "free_now")

    def __init__(self, names):
        self.names = names
        self.members = set(names)
        self._pos = None
        self.free_now = names  # pruned as nodes fill up: nothing frees up *now* within a pass

    @property
    def pos(self):
        if self._pos is None:
            self._pos = {n: i for i, n in enumerate(self.names)}
        return self._pos


class _Sweep:
    """Capacities of every eligible node for one capacity key, valid at time ``t``.

    Nodes absent from ``caps`` have capacity 0. ``heap`` holds (time, serial,
    node): past that time the node's window reaches a segment with less room.
    ``log_pos`` is how much of the planner's touch log is already reflected.
    """

    __slots__ = ("caps", "mins", "total", "count", "hist", "heap", "version", "serial", "t", "log_pos")

    def __init__(self, t):
        self.caps, self.mins, self.version, self.heap = {}, {}, {}, []
        self.hist = {}  # capacity -> number of nodes with it (for -N: the k roomiest, without sorting)
        self.total = self.count = self.serial = self.log_pos = 0
        self.t = t

    def set_cap(self, name, cap, mins):
        caps = self.caps
        old = caps.get(name, 0)
        if cap != old:
            self.total += cap - old
            hist = self.hist
            if old:
                left = hist[old] - 1
                if left:
                    hist[old] = left
                else:
                    del hist[old]
            else:
                self.count += 1
            if cap:
                hist[cap] = hist.get(cap, 0) + 1
            else:
                self.count -= 1
        caps[name] = cap
        self.mins[name] = mins
        self.serial = serial = self.serial + 1
        self.version[name] = serial

    def top_fits(self, k, ntasks):
        """Do the ``k`` roomiest nodes hold ``ntasks`` tasks?"""
        for cap in sorted(self.hist, reverse=True):
            take = min(self.hist[cap], k)
            ntasks -= take * cap
            k -= take
            if ntasks <= 0:
                return True
            if not k:
                return False
        return False

    def copy(self):
        new = _Sweep(self.t)
        new.caps, new.mins, new.version = self.caps.copy(), self.mins.copy(), self.version.copy()
        new.hist, new.heap = self.hist.copy(), list(self.heap)
        new.total, new.count, new.serial, new.log_pos = self.total, self.count, self.serial, self.log_pos
        return new


class PlannerBase:
    """What both sweeps share: time rounding, eligible nodes, the dominance floors, and
    placement on window views. Subclasses set ``now``, ``res``, ``state``, ``views``,
    ``eligible``, ``floors`` and ``dominance``."""

    def round_up(self, t):
        if t == INF or self.res <= 0:
            return t
        return math.ceil(t / self.res - 1e-9) * self.res

    def _release_time(self, end):
        t = self.round_up(max(end, self.now))
        # Overdue jobs are being killed: their resources are not free *now*.
        return t if t > self.now else self.round_up(self.now + max(self.res, 1))

    def _eligible_for(self, job, partition, req):
        elig = self.eligible.get(req.elig_key)
        if elig is None:
            expand = self.state.expand_hostlist
            excluded = set(expand(job["exclude"])) if job.get("exclude") and expand else set()
            views, features = self.views, job.get("features")
            elig = self.eligible[req.elig_key] = Eligible([
                n for n in partition["nodes"]
                if n in views and views[n].usable and n not in excluded
                and (not features or features_match(features, views[n].features))])
        return elig

    def _floor(self, req):
        """The earliest the job could start: no earlier than any job it dominates found room.

        Job A dominates job B (same per-node shape) when A has at least as many
        tasks and at least as long a time limit (a longer window has less room
        on every node), and B has no -N or the same -N (a -N job is harder than
        a plain one with as many tasks). Availability only shrinks within a
        pass, so B's start stays a lower bound for A.
        """
        floor = self.floors.get(req.key, self.now)
        if not req.required:
            ntasks, duration = req.ntasks, req.duration
            for want in ((0, req.want_nodes) if req.want_nodes else (0,)):
                for (d, n), start in self.dominance.get((req.shape_key, want), {}).items():
                    if start > floor and n <= ntasks and d <= duration:
                        floor = start
        return floor

    def _record(self, req, start):
        self.floors[req.key] = start
        # More tasks are harder only from want_nodes tasks up: placement refuses -N k with fewer.
        if not req.required and req.ntasks >= req.want_nodes:
            table = self.dominance.setdefault((req.shape_key, req.want_nodes), {})
            key = (req.duration, req.ntasks)
            if start > table.get(key, -INF):
                table[key] = start

    def _place_in_window(self, job, names, t, mins_of):
        """:func:`~.placement.place` on views of ``names`` as they are over the window from ``t``
        (``mins_of(name)``: the least free cpus, memory, GPUs and the busy flag there)."""
        views = []
        for name in names:
            v = self.views[name]
            cpus, mem, gpus, busy = mins_of(name)
            if t == self.now:  # real GPU indices: the allocation is used as is
                free = v.free_gpu_ids()
                gpu_ids = v.alloc_gpu_ids | set(free[gpus:])
            else:
                gpu_ids = set(range(v.gpus - gpus))
            views.append(NodeView(name, v.cpus, v.real_memory, v.gpus, v.features, v.cpus - cpus,
                                  v.real_memory - mem, gpu_ids, True, busy))
        return place(job, views, expand_hostlist=self.state.expand_hostlist)


class NodePlanner(PlannerBase):
    """One pass's per-node profiles, breakpoint index and planning (see the module docstring).

    Built by :class:`~.planner.Planner` when it first needs profiles, with
    what it gathered until then (``shared``): the releases of jobs started
    before that, the eligible node lists, the floors and dominance table
    (the same dicts, so either records for both), and the running jobs'
    releases per node (``jobs_on``: node -> [(end, cpus, memory, gpus)]).
    """

    def __init__(self, state, now, *, window_minutes=1440, resolution=60, shared=None):
        self.state, self.now, self.views = state, now, state.nodes
        self.res = resolution or 0
        self.horizon = now + window_minutes * 60.0
        self.indexed = False       # running jobs' ends loaded into profiles
        self.profiles = {}         # node -> Profile; nodes without one are flat (free now, forever)
        self.flat = set()          # nodes known to need no profile (yet)
        self.bp_times = []         # sorted times after now where some node gains resources
        self.bp_nodes = {}         # time -> nodes that gain then
        self.early_releases = {}   # node -> releases of jobs started before indexing
        self.ending = []           # (expected end, job) of running jobs that end (after indexing)
        self.jobs_on = None        # node -> [(end, cpus, mem, gpus)], built when a first profile is needed
        self.touched = []          # nodes whose profile changed, in order (for resuming sweeps)
        self.zero_from = {}        # node -> first time its CPUs are all taken (absent: never)
        self.eligible = {}
        self.floors = {}           # Request.key -> earliest start found (INF: none in window)
        self.dominance = {}        # (shape key, want_nodes) -> {(duration, ntasks): latest start found}
        self.saved = {}            # capacity key -> [_Sweep] sorted by t
        if shared is not None:
            self.early_releases, self.eligible, self.floors, self.dominance, self.jobs_on = shared
        # Advance reservations (sched/reservations.py): node -> [(start, end, maint)] windows the
        # jobs planned here (none of them belongs to a reservation) must keep clear of. They live
        # in the profiles, so planning starts indexed: no "free now, forever" shortcut.
        self.windows = getattr(state, "reserved_windows", None) or {}
        if self.windows:
            self._index()

    # -- time and profiles ----------------------------------------------------------
    def _index(self):
        """Index the running jobs' expected ends (the first time a job must wait).

        Per job, not per node: a wide job's nodes are listed at its end in one
        C-level ``extend``; each node's releases are gathered when its profile
        is first needed (many never are).
        """
        bp_nodes, ending = self.bp_nodes, []
        for job in getattr(self.state, "running", ()):
            end = job.get("end_time")
            if end is None:
                if job.get("time_limit") is None:
                    continue  # runs forever as far as planning knows
                end = job["start_time"] + job["time_limit"] * 60
            end = self._release_time(end)
            nodes = job.get("nodes") or ()
            known = bp_nodes.get(end)
            if known is None:
                bp_nodes[end] = list(nodes)
            else:
                known.extend(nodes)
            ending.append((end, job))
        for name, rel in self.early_releases.items():
            for t, *_ in rel:
                bp_nodes.setdefault(t, []).append(name)
        for name, wins in self.windows.items():
            for _, end, _ in wins:  # a reservation's end gives its node back
                if end != INF:
                    bp_nodes.setdefault(self.round_up(end), []).append(name)
        self.ending = ending
        self.bp_times = sorted(bp_nodes)
        self.indexed = True

    def _releases_of(self, name):
        """``(time, cpus, mem, gpus)`` given back on node ``name`` by running jobs (and early starts)."""
        jobs_on = self.jobs_on
        if jobs_on is None:
            self.jobs_on = jobs_on = releases_by_node(self.ending)
        early = self.early_releases.get(name)
        rel = jobs_on.get(name)
        if early:
            return early + rel if rel else list(early)
        return list(rel) if rel else []

    def _profile(self, name):
        """The node's profile, built on first use; None for a node that stays as it is now, forever."""
        prof = self.profiles.get(name)
        if prof is None and self.indexed and name not in self.flat:
            rel = self._releases_of(name)
            wins = self.windows.get(name)
            if rel or wins:
                prof = self.profiles[name] = Profile(self.views[name], self.now, rel)
                v = self.views[name]
                for start, end, _ in wins or ():
                    prof.reserve(max(start, self.now), self.round_up(end), v.cpus, v.real_memory, v.gpus)
            else:
                self.flat.add(name)
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
            prof = self._profile(name)
            if prof is None:
                prof = self.profiles[name] = Profile(self.views[name], self.now, ())
                self.flat.discard(name)
            prof.reserve(t, end, c, m, g)
            if end != INF:
                # The sweep needs only gains: the reservation's end (its start is a loss).
                nodes = self.bp_nodes.get(end)
                if nodes is None:
                    self.bp_nodes[end] = [name]
                    bisect.insort(self.bp_times, end)
                elif nodes[-1] != name:
                    nodes.append(name)
            self.touched.append(name)
            if t < self.zero_from.get(name, INF):
                k = next((k for k, free in enumerate(prof.cpus) if free <= 0), None)
                if k is not None:
                    self.zero_from[name] = prof.times[k]
        if t == self.now:
            alloc.apply(self.views)

    # -- planning -----------------------------------------------------------------------
    def plan(self, job, partition, req):
        """Earliest ``(start, Allocation)`` for one task of ``job``, or None within the window."""
        floor = self._floor(req)
        found = None
        elig = self._eligible_for(job, partition, req)
        if floor != INF and elig.names and all(r in elig.members for r in req.required):
            if not self.indexed and floor == self.now:
                # Until some job must wait, "now" is all that matters: no profiles needed.
                found = self._walk(job, req, elig, floor, now_only=True)
            if found is None:
                if not self.indexed:
                    self._index()
                found = self._walk(job, req, elig, floor)
        self._record(req, found[0] if found else INF)
        return found

    def _evaluate(self, sw, req, name, t, end, gains_only=False):
        """Capacity of node ``name`` for ``req`` over [t, end): exact per-resource minima.

        The planner's hot path, hence the early outs: with ``gains_only`` (at
        the node's own breakpoint) nothing happens unless the node gains
        something at ``t`` (losses reach the window's right edge first and come
        through the expiry heap); a node that cannot take a task at ``t`` needs
        no window scan (it is evaluated again at its next breakpoint); and the
        expiry scan only looks for a later segment that would lower *this
        job's* capacity.
        """
        prof = self.profiles.get(name)
        if prof is None and self.indexed and name not in self.flat:
            prof = self._profile(name)  # first use (flat nodes skip the call: the hot path)
        expiry = mins = None
        if prof is None:
            v = self.views[name]
            mins = (v.cpus - v.alloc_cpus, v.real_memory - v.alloc_memory, v.gpus - len(v.alloc_gpu_ids),
                    v.busy_jobs)
            cap = req.fit(*mins)
        else:
            if gains_only:
                times, cpus, mem, gpus, busy = prof.times, prof.cpus, prof.mem, prof.gpus, prof.busy
                i = bisect.bisect_right(times, t) - 1
                if i and cpus[i] <= cpus[i - 1] and mem[i] <= mem[i - 1] and gpus[i] <= gpus[i - 1] \
                        and busy[i] >= busy[i - 1]:
                    return
            cap, mins, expiry = window_capacity(prof, req, t, end)
        sw.set_cap(name, cap, mins)
        if expiry is not None:
            heapq.heappush(sw.heap, (expiry, sw.serial, name))

    def _feasible(self, sw, req):
        if sw.total < req.ntasks or sw.count < max(req.want_nodes, 1):
            return False
        if req.required and not all(sw.caps.get(r, 0) for r in req.required):
            return False
        if req.want_nodes:  # -N k: the k roomiest nodes must hold every task
            return sw.top_fits(req.want_nodes, req.ntasks)
        return True

    def _start_state(self, req, elig, floor):
        """A sweep at or before ``floor``: a saved one brought up to date, or a jump to ``floor``."""
        saved = self.saved.get(req.capacity_key, ())
        i = bisect.bisect_right([s.t for s in saved], floor) - 1
        bps = self.bp_times
        if i >= 0:
            base = saved[i]
            gap = bisect.bisect_right(bps, floor) - bisect.bisect_right(bps, base.t)
            # Touched nodes only lost resources: one that had no room still has none.
            caps = base.caps
            dirty = {n for n in self.touched[base.log_pos:] if caps.get(n)}
        if i >= 0 and (gap + len(dirty)) * 2 <= len(elig.names) + 2:
            sw = saved[i].copy()
            end = self.round_up(sw.t + req.duration)
            members = elig.members
            for name in dirty:
                if name in members:
                    self._evaluate(sw, req, name, sw.t, end)
            return sw
        if floor > self.now:
            # Cheaper to evaluate every node at the floor than to sweep there.
            sw = _Sweep(floor)
            end = self.round_up(floor + req.duration)
            for name in elig.names:
                self._evaluate(sw, req, name, floor, end)
            return sw
        return None

    def _save(self, req, sw):
        sw.log_pos = len(self.touched)
        saved = self.saved.setdefault(req.capacity_key, [])
        saved.insert(bisect.bisect_right([s.t for s in saved], sw.t), sw)
        if len(saved) > MAX_SAVED:
            # Keep the spread: drop the state closest in time to its predecessor (never the first).
            k = min(range(1, len(saved)), key=lambda x: saved[x].t - saved[x - 1].t)
            del saved[k]

    def _walk(self, job, req, elig, floor, now_only=False):
        """Sweep breakpoints from a start state to the first time the job fits; save the sweep."""
        now, bps = self.now, self.bp_times
        sw = None if now_only else self._start_state(req, elig, floor)
        if sw is None:
            sw = _Sweep(now)
            early = floor == now and not req.want_nodes and not req.required
            views, dead, zero_from = self.views, [], self.zero_from
            end = self.round_up(now + req.duration)
            for name in elig.free_now:
                v = views[name]
                if v.cpus - v.alloc_cpus <= 0:  # free_cpus, without the property call
                    dead.append(name)
                    continue
                if zero_from.get(name, INF) < end:
                    continue  # free now, but entirely taken before the job would end: capacity 0
                self._evaluate(sw, req, name, now, end)
                if early and sw.caps[name] and sw.total >= req.ntasks:
                    # Block layout takes the first nodes with room: no need to look further.
                    alloc = self._place_at(job, req, now, sw, elig)
                    if alloc is not None:
                        self._prune(elig, dead)
                        return now, alloc
            self._prune(elig, dead)
            if self.indexed:
                self._save(req, sw.copy())
        t = sw.t
        k = bisect.bisect_right(bps, t)
        members, heap, profiles, fit = elig.members, sw.heap, self.profiles, req.fit
        set_cap = sw.set_cap
        fits = {}  # final-segment values -> capacity (many nodes end up alike: empty)
        while True:
            if t >= floor and self._feasible(sw, req):
                alloc = self._place_at(job, req, t, sw, elig)
                if alloc is not None:
                    break
            if now_only or k >= len(bps) or bps[k] > self.horizon:
                alloc = None
                break
            t = sw.t = bps[k]
            k += 1
            end = self.round_up(t + req.duration)
            for name in self.bp_nodes[t]:
                if name not in members:
                    continue
                prof = profiles.get(name) or self._profile(name)
                if prof.times[-1] != t:
                    self._evaluate(sw, req, name, t, end, True)
                    continue
                # Fast path: the node's last change; the window lies in its final segment.
                mins = (prof.cpus[-1], prof.mem[-1], prof.gpus[-1], prof.busy[-1])
                cap = fits.get(mins)
                if cap is None:
                    cap = fits[mins] = fit(*mins)
                set_cap(name, cap, mins)
            while heap and heap[0][0] < t:
                _, ver, name = heapq.heappop(heap)
                if sw.version[name] == ver:
                    self._evaluate(sw, req, name, t, end)
        if self.indexed and not now_only:
            self._save(req, sw)
        return (t, alloc) if alloc is not None else None

    @staticmethod
    def _prune(elig, dead):
        if len(dead) * 8 > len(elig.free_now):
            gone = set(dead)
            elig.free_now = [n for n in elig.free_now if n not in gone]

    def _place_at(self, job, req, t, sw, elig):
        """Run the real placement on views showing what is free over the job's window."""
        caps = sw.caps
        if sw.count * 8 < len(elig.names):
            names = sorted((n for n, c in caps.items() if c), key=elig.pos.__getitem__)
        else:
            names = [n for n in elig.names if caps.get(n)]
        if not req.required:
            # Placement fills nodes in order, so the first ones with room decide
            # (with -N: the first k, unless they are too small, then the roomiest).
            if req.want_nodes:
                head = names[:req.want_nodes]
                if sum(caps[n] for n in head) >= req.ntasks:
                    names = head
            else:
                room, cut = 0, len(names)
                for i, n in enumerate(names):
                    room += caps[n]
                    if room >= req.ntasks:
                        cut = i + 1
                        break
                names = names[:cut]
                if not (req.exclusive or req.gpus):
                    return self._block_allocation(req, names, caps)
        return self._place_in_window(job, names, t, sw.mins.__getitem__)

    @staticmethod
    def _block_allocation(req, names, caps):
        """What :func:`~.placement.place` returns for a plain job (no -N, -w, --exclusive, GPUs).

        The fast path of :meth:`_place_at`, the simulator's hot spot: ``names``
        are the first nodes with room in partition order, just enough of them,
        and ``caps`` their capacities over the window (``req.fit``, which counts
        tasks exactly as placement does), so placement's block layout is known
        without building window views: one task on each, then each filled in
        turn. Eligibility (features, --exclude) was applied when ``names`` were.
        """
        room = 0
        for name in names:
            room += caps[name]
        if not names or room < req.ntasks:
            return None
        tasks = dict.fromkeys(names, 1)
        left = req.ntasks - len(names)
        for name in names:
            if left <= 0:
                break
            more = min(caps[name] - 1, left)
            tasks[name] += more
            left -= more
        c, mem_per_cpu, mem_per_node = req.cpus_per_task, req.mem_per_cpu, req.mem_per_node
        cpus = {name: tasks[name] * c for name in names}
        mem = {name: mem_per_cpu * n for name, n in cpus.items()} if mem_per_cpu else \
            dict.fromkeys(names, mem_per_node)
        return Allocation(list(names), tasks, cpus, mem, {name: [] for name in names})
