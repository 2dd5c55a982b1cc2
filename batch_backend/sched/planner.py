"""When could a job start? The backfill planner's availability profiles and search.

:class:`Planner` answers, for one job at a time in priority order, the
earliest ``(start, Allocation)`` on a cluster whose future is known only
through running jobs' expected ends and the reservations of jobs planned
before it; :meth:`Planner.commit` then holds that allocation so later jobs
are planned around it. It is private to one pass (built from one
:class:`~.fifo.SchedState`, thrown away after), so it may cache freely: within
a pass availability only ever shrinks, which is what makes the caches sound.

Representation: each node's free CPUs, memory, GPUs and job count as a step
function of time (:class:`~.availability.Profile`). Nodes built from the same
facts (free resources now, releases, reservations) share one immutable
profile, and :meth:`Planner.commit` gives the nodes of an allocation new
shared profiles (copy-on-write), so the nodes of a cluster fall into a few
*groups* with identical futures (a wide job's nodes, the idle nodes). Profiles
are only built once some job cannot start now, so a pass that starts
everything costs what FIFO costs.

Search: the earliest feasible start is the job's floor (see below) or a time
where some eligible group gains resources, so :meth:`Planner._walk` sweeps
those times in order, keeping each group's capacity for the job (tasks that
fit over the job's whole window) up to date, weighted by its node count, and
places the job once the totals say it fits. Before that, the free CPUs of all
nodes together (:class:`_TotalFree`) rule out every time they are too few.

Why it is fast enough for 10,000 pending jobs and 100,000-job replays: a sweep
costs the number of distinct groups (tens), not nodes (hundreds or
thousands); and a job's start is never looked for before the latest start
found for a job it dominates (same per-node shape, no more tasks, no longer
limit: the *dominance floor*), since availability only shrinks within a pass.

When groups would be about as many as nodes (every node running its own jobs,
the controller's usual case), the group bookkeeping costs about twice a plain
per-node sweep; :meth:`Planner._per_node` checks that once per pass, when
profiles are first needed, and hands the pass to
:class:`~.node_planner.NodePlanner`, which makes the same decisions.
"""

import bisect
import heapq
import itertools
import operator

from .availability import INF, Profile, window_capacity
from .node_planner import NodePlanner, PlannerBase, releases_by_node
from .placement import Allocation

MAX_SAVED = 12  # sweeps kept per capacity key
SMALL_JOB = 64  # tasks: up to this many, a plain job's nodes are looked for one by one
_VIEW_FACTS = operator.attrgetter("cpus", "real_memory", "gpus", "alloc_cpus", "alloc_memory", "busy_jobs")
_GPU_IDS = operator.attrgetter("alloc_gpu_ids")
_CPUS, _ALLOC_CPUS = operator.attrgetter("cpus"), operator.attrgetter("alloc_cpus")


class _Sweep:
    """Capacities of the nodes with free CPUs now, for the "start now?" sweep before any job waits.

    Nodes absent from ``caps`` have capacity 0.
    """

    __slots__ = ("caps", "mins", "total", "count", "hist")

    def __init__(self):
        self.caps, self.mins, self.hist = {}, {}, {}
        self.total = self.count = 0

    def set_cap(self, name, cap, mins):
        self.caps[name] = cap
        self.mins[name] = mins
        if cap:
            self.total += cap
            self.count += 1
            self.hist[cap] = self.hist.get(cap, 0) + 1


def _top_fits(hist, k, ntasks):
    """Do the ``k`` roomiest nodes hold ``ntasks`` tasks? (``hist``: capacity -> nodes with it)"""
    for cap in sorted(hist, reverse=True):
        take = min(hist[cap], k)
        ntasks -= take * cap
        k -= take
        if ntasks <= 0:
            return True
        if not k:
            return False
    return False


class _GroupSweep:
    """Capacities for one job at time ``t``, per *group*: the eligible nodes sharing one profile.

    Nodes whose free resources now and future releases and reservations are
    the same have the same capacity for any job at any time, and the planner
    shares one immutable :class:`~.availability.Profile` between them, so a
    sweep evaluates each distinct profile once, weighted by how many eligible
    nodes have it. ``heap`` holds (time, serial, profile): past that time the
    window reaches a segment with less room. Because profiles never change, a
    saved sweep stays right for every profile it has evaluated: resuming it
    only needs the group moves (``log_pos``) made by commits since.
    """

    __slots__ = ("on", "caps", "roomy", "mins", "version", "heap", "hist", "total", "count", "serial", "t",
                 "log_pos")

    def __init__(self, on, t):
        self.on = on  # profile -> set of the eligible nodes on it (now)
        self.caps, self.mins, self.version, self.heap, self.hist = {}, {}, {}, [], {}
        self.roomy = set()  # profiles with capacity (some may have no eligible node left)
        self.total = self.count = self.serial = self.log_pos = 0
        self.t = t

    def copy(self):
        new = _GroupSweep(self.on, self.t)
        new.caps, new.mins, new.version, new.hist = self.caps.copy(), self.mins.copy(), self.version.copy(), \
            self.hist.copy()
        new.heap, new.roomy = list(self.heap), set(self.roomy)
        new.total, new.count, new.serial, new.log_pos = self.total, self.count, self.serial, self.log_pos
        return new

    def weigh(self, cap, n):
        """Count ``n`` more (or fewer, if negative) nodes with capacity ``cap``."""
        if cap and n:
            self.total += cap * n
            self.count += n
            hist = self.hist
            left = hist.get(cap, 0) + n
            if left:
                hist[cap] = left
            else:
                del hist[cap]

    def set_cap(self, prof, cap, mins, expiry):
        old = self.caps.get(prof, 0)
        if cap != old:
            members = self.on.get(prof)
            if members:
                n = len(members)
                self.weigh(old, -n)
                self.weigh(cap, n)
            if cap:
                self.roomy.add(prof)
            else:
                self.roomy.discard(prof)
        self.caps[prof] = cap
        self.mins[prof] = mins
        self.serial = serial = self.serial + 1
        self.version[prof] = serial
        if expiry is not None:
            heapq.heappush(self.heap, (expiry, serial, prof))


class _TotalFree:
    """Free CPUs of all nodes together as a step function of time: a cheap bound for the sweep.

    Built from the views and the running jobs' releases without any node's
    profile, and kept up to date by :meth:`Planner.commit`. It never
    undercounts (releases are not clamped at a node's size, and no node's free
    CPUs go below zero without advance reservations, when it is not used), so
    a job whose tasks need more CPUs than it shows over the job's whole window
    cannot start then on any set of nodes, and the sweep can skip straight past.
    """

    __slots__ = ("times", "cpus")

    def __init__(self, now, base, releases):
        gains = {}
        for t, c in releases:
            if t <= now:
                base += c
            else:
                gains[t] = gains.get(t, 0) + c
        self.times, self.cpus = [now], [base]
        for t in sorted(gains):
            self.times.append(t)
            self.cpus.append(self.cpus[-1] + gains[t])

    def _split(self, t):
        k = bisect.bisect_left(self.times, t)
        if k < len(self.times) and self.times[k] == t:
            return k
        self.times.insert(k, t)
        self.cpus.insert(k, self.cpus[k - 1])
        return k

    def take(self, t0, t1, cpus):
        i = self._split(t0)
        j = len(self.times) if t1 == INF else self._split(t1)
        self.cpus[i:j] = [v - cpus for v in self.cpus[i:j]]

    def fits(self, t, need, end):
        """Are ``need`` CPUs free over [t, end)?"""
        times, values = self.times, self.cpus
        i = bisect.bisect_right(times, t) - 1
        j = len(times) if end == INF else bisect.bisect_left(times, end, i + 1)
        return values[i] >= need if j == i + 1 else min(values[i:j]) >= need

    def first_possible(self, floor, need, duration, horizon, round_up):
        """The first of ``floor`` and the later breakpoints (up to ``horizon``) where ``need`` CPUs
        are free over [t, round_up(t + duration)); None if there is none."""
        times, values = self.times, self.cpus
        n = len(times)
        i = bisect.bisect_right(times, floor) - 1
        t = floor
        while True:
            if values[i] >= need:
                end = round_up(t + duration)
                j = n if end == INF else bisect.bisect_left(times, end, i + 1)
                if j == i + 1 or min(values[i:j]) >= need:
                    return t
            i += 1
            if i >= n or times[i] > horizon:
                return None
            t = times[i]


class Planner(PlannerBase):
    """One pass's availability profiles and planning (see the module docstring)."""

    def __init__(self, state, now, *, window_minutes=1440, resolution=60):
        self.state, self.now, self.views = state, now, state.nodes
        self.res = resolution or 0
        self.window_minutes = window_minutes
        self.horizon = now + window_minutes * 60.0
        self.indexed = False       # running jobs' ends known: profiles can be built
        self.by_node = None        # NodePlanner the pass was handed to (groups about as many as nodes)
        self.node_prof = {}        # node -> its Profile, shared with every node alike (never changed)
        self.base_keys = None      # node -> its profile's key, when _per_node made them all
        self.canon = {}            # what a fresh profile is built from -> the shared Profile
        self.after = {}            # (id(profile), reservation) -> (profile, profile with it taken)
        self.groups = {}           # Request.elig_key -> {profile: set of eligible nodes on it}
        self.moves = {}            # Request.elig_key -> [(old profile, new profile, nodes moved)], in order
        self.saved = {}            # Request.capacity_key -> [_GroupSweep] sorted by t
        self.gain_times = []       # sorted times after now where some profile gains resources
        self.gains_at = {}         # time -> profiles that gain then
        self.early_releases = {}   # node -> releases of jobs started before indexing
        self.ending = []           # (expected end, job) of running jobs that end (after indexing)
        self.jobs_on = None        # node -> [(end, cpus, mem, gpus)] of running jobs, after indexing
        self.total = None          # _TotalFree, after indexing (without advance reservations)
        self.eligible = {}
        self.floors = {}           # Request.key -> earliest start found (INF: none in window)
        self.dominance = {}        # (shape key, want_nodes) -> {(duration, ntasks): latest start found}
        # Advance reservations (sched/reservations.py): node -> [(start, end, maint)] windows the
        # jobs planned here (none of them belongs to a reservation) must keep clear of. They live
        # in the profiles, so planning starts indexed: no "free now, forever" shortcut.
        self.windows = getattr(state, "reserved_windows", None) or {}
        if self.windows:
            self._index()

    # -- time and profiles ----------------------------------------------------------
    def _index(self):
        """Note the running jobs' expected ends (the first time a job must wait).

        Per job, not per node: each node's releases are gathered when its
        profile is first needed.
        """
        ending = []
        for job in getattr(self.state, "running", ()):
            end = job.get("end_time")
            if end is None:
                if job.get("time_limit") is None:
                    continue  # runs forever as far as planning knows
                end = job["start_time"] + job["time_limit"] * 60
            ending.append((self._release_time(end), job))
        self.ending = ending
        self.indexed = True
        self.jobs_on = releases_by_node(ending)
        if self._per_node():
            self.by_node = NodePlanner(self.state, self.now, window_minutes=self.window_minutes,
                                       resolution=self.res, shared=(self.early_releases, self.eligible, self.floors,
                                                                    self.dominance, self.jobs_on))
            if not self.by_node.indexed:
                self.by_node._index()
            return
        if not self.windows:
            releases = [(end, sum((job.get("cpus_per_node") or {}).values())) for end, job in ending]
            for rel in self.early_releases.values():
                releases.extend((t, c) for t, c, _, _ in rel)
            views = self.views.values()
            free = sum(map(max, map(operator.sub, map(_CPUS, views), map(_ALLOC_CPUS, views)), itertools.repeat(0)))
            self.total = _TotalFree(self.now, free, releases)

    def _per_node(self):
        """Would (nearly) every node be a group of its own? Then the per-node sweep is cheaper.

        Counts the distinct facts profiles are built from, with C-level maps
        (it runs in every pass that plans). Without early starts and advance
        reservations these are the keys :meth:`_profile` makes, kept for
        :meth:`_groups_for`; otherwise releases are left unsorted and GPU ids
        out, so the count can be off a little either way, which only matters
        for speed. More than half as many as nodes hands the pass to
        :class:`~.node_planner.NodePlanner`.
        """
        views, early, windows = self.views, self.early_releases, self.windows
        names, none = list(views), []
        if not (early or windows):
            keys = self._base_keys(names, list(views.values()))
            self.base_keys = dict(zip(names, keys))
            return len(set(keys)) * 2 > len(names)
        rels = map(self.jobs_on.get, names, itertools.repeat(none))
        if early:
            rels = map(operator.add, map(early.get, names, itertools.repeat(none)), rels)
        keys = zip(map(_VIEW_FACTS, views.values()), map(tuple, rels))
        if windows:
            keys = zip(keys, map(tuple, map(windows.get, names, itertools.repeat(()))))
        return len(set(keys)) * 2 > len(names)

    def _base_keys(self, names, views):
        """The keys :meth:`_profile` makes for nodes without early releases or reservations, with
        C-level maps (``views``: the nodes' views, in the order of ``names``)."""
        return list(zip(map(_VIEW_FACTS, views), map(len, map(_GPU_IDS, views)),
                        map(tuple, map(sorted, map(self.jobs_on.get, names, itertools.repeat(())))),
                        itertools.repeat(())))

    def _releases_of(self, name):
        """``(time, cpus, mem, gpus)`` given back on node ``name`` by running jobs (and early starts)."""
        jobs_on = self.jobs_on
        early = self.early_releases.get(name)
        rel = jobs_on.get(name)
        if early:
            return early + rel if rel else list(early)
        return list(rel) if rel else []

    def _profile(self, name):
        """The node's profile (after indexing), shared with every node built from the same facts.

        A node's view does not change after indexing until a job is committed
        on it, and :meth:`commit` takes the profile first, so building it
        whenever it is first asked for gives the same profile.
        """
        prof = self.node_prof.get(name)
        if prof is None:
            v = self.views[name]
            rel = self._releases_of(name)
            rel.sort()
            wins = self.windows.get(name)
            key = (_VIEW_FACTS(v), len(v.alloc_gpu_ids), tuple(rel), tuple(wins) if wins else ())
            prof = self.canon.get(key)
            if prof is None:
                prof = self.canon[key] = Profile(v, self.now, rel)
                for start, end, _ in wins or ():
                    prof.reserve(max(start, self.now), self.round_up(end), v.cpus, v.real_memory, v.gpus)
                self._register(prof)
            self.node_prof[name] = prof
        return prof

    def _register(self, prof):
        """Index a new profile's gain times: the sweep's candidate times."""
        gains_at = self.gains_at
        for t in prof.gain_times():
            known = gains_at.get(t)
            if known is None:
                gains_at[t] = [prof]
                bisect.insort(self.gain_times, t)
            else:
                known.append(prof)

    def _moves(self, names, node_prof, cpus, mem, gpus):
        """An allocation's nodes by (profile, cpus, memory, gpus taken), built with C-level zips."""
        profs = list(map(node_prof.get, names))
        if None in profs:
            profs = [p or self._profile(n) for p, n in zip(profs, names)]
        keys = list(zip(profs, map(cpus.__getitem__, names), map(mem.__getitem__, names),
                        [len(gpus.get(n, ())) for n in names] if gpus and any(gpus.values())
                        else itertools.repeat(0)))
        return _by_runs(names, keys)

    def commit(self, req, t, alloc):
        """Hold ``alloc`` from ``t`` for the job's time limit; apply it to the views if it starts now.

        Profiles are shared, so a node gets a new one with the reservation
        taken; nodes that had the same profile and take the same share get the
        same new one (a wide job's nodes stay one group).
        """
        if self.by_node is not None:
            return self.by_node.commit(req, t, alloc)
        end = self.round_up(t + req.duration)
        if not self.indexed:
            cpus, mem, gpus = alloc.cpus_per_node, alloc.memory_per_node, alloc.gpus_per_node
            if end != INF:
                for name in alloc.nodes:
                    self.early_releases.setdefault(name, []).append(
                        (end, cpus[name], mem[name], len(gpus.get(name, ()))))
        else:
            names, node_prof = alloc.nodes, self.node_prof
            block = type(alloc) is _Block
            if not block:
                cpus, mem, gpus = alloc.cpus_per_node, alloc.memory_per_node, alloc.gpus_per_node
            if self.total is not None:
                self.total.take(t, end, req.ntasks * req.cpus_per_task if block else sum(cpus.values()))
            # Nodes that had the same profile and take the same share move together.
            if block:
                moves = alloc.moves(req, node_prof)
            elif len(names) == 1:
                name = names[0]
                moves = {(node_prof.get(name) or self._profile(name), cpus[name], mem[name],
                          len(gpus.get(name, ()))): names}
            else:
                moves = self._moves(names, node_prof, cpus, mem, gpus)
            groups = [(on, self.eligible[ek].members, self.moves.setdefault(ek, []))
                      for ek, on in self.groups.items()]
            for (old, c, m, g), names in moves.items():
                key = (id(old), t, end, c, m, g)
                known = self.after.get(key)
                if known is None:
                    new = old.reserved(t, end, c, m, g)
                    self.after[key] = (old, new)  # keeps ``old`` alive, so its id is not reused
                    self._register(new)
                else:
                    new = known[1]
                node_prof.update(dict.fromkeys(names, new))
                for on, eligible, log in groups:
                    moved = eligible.intersection(names)
                    if not moved:
                        continue
                    log.append((old, new, len(moved)))
                    left = on[old]
                    left -= moved
                    if not left:
                        del on[old]
                    known = on.get(new)
                    if known is None:
                        on[new] = moved
                    else:
                        known |= moved
        if t == self.now:
            alloc.apply(self.views)

    # -- planning -----------------------------------------------------------------------
    def _groups_for(self, req, elig):
        on = self.groups.get(req.elig_key)
        if on is None:
            on = self.groups[req.elig_key] = {}
            names, node_prof = elig.names, self.node_prof
            profs = list(map(node_prof.get, names))
            if None in profs:
                # _profile's key for nodes without early releases or reservations, with C-level maps:
                # this runs for every node in every pass that plans.
                special = self.early_releases.keys() | self.windows.keys()
                if special or profs.count(None) != len(profs):
                    todo = [n for n, p in zip(names, profs) if p is None and n not in special]
                else:
                    todo = names
                if todo:
                    views = list(map(self.views.__getitem__, todo))
                    if self.base_keys is not None:  # made by _per_node: no node changed since
                        keys = list(map(self.base_keys.__getitem__, todo))
                    else:
                        keys = self._base_keys(todo, views)
                    canon, now = self.canon, self.now
                    new = [key for key in dict.fromkeys(keys) if key not in canon]  # in node order
                    if new:
                        first = dict(zip(reversed(keys), reversed(views)))  # key -> its first node's view
                        for key in new:
                            prof = canon[key] = Profile(first[key], now, key[2])
                            self._register(prof)
                    node_prof.update(zip(todo, map(canon.__getitem__, keys)))
                if special:
                    profile = self._profile
                    profs = [p or profile(n) for p, n in zip(map(node_prof.get, names), names)]
                else:
                    profs = list(map(node_prof.__getitem__, names))
            for prof, name in zip(profs, names):
                known = on.get(prof)
                if known is None:
                    on[prof] = {name}
                else:
                    known.add(name)
        return on

    def plan(self, job, partition, req):
        """Earliest ``(start, allocation)`` for one task of ``job``, or None within the window.

        The allocation is an :class:`~.placement.Allocation` when the job can
        start now. A plain job planned for later gets a :class:`_Block`: its
        ``nodes`` are what the job would get, and :meth:`commit` holds them
        without the per-node dicts an Allocation needs (most plans of a deep
        queue are never started as planned).
        """
        if self.by_node is not None:
            return self.by_node.plan(job, partition, req)
        floor = self._floor(req)
        found = None
        elig = self._eligible_for(job, partition, req)
        if floor != INF and elig.names and all(r in elig.members for r in req.required):
            if not self.indexed and floor == self.now:
                # Until some job must wait, "now" is all that matters: no profiles needed.
                found = self._start_now(job, req, elig)
            if found is None:
                if not self.indexed:
                    self._index()
                    if self.by_node is not None:
                        return self.by_node.plan(job, partition, req)
                found = self._walk(job, req, elig, floor)
            if found is not None and found[0] == self.now and type(found[1]) is _Block:
                found = (found[0], found[1].allocation(req))
        self._record(req, found[0] if found else INF)
        return found

    def _start_now(self, job, req, elig):
        """Before any job waits: can the job start now, on the views as they are?"""
        now, sw, views, dead = self.now, _Sweep(), self.views, []
        early = not req.want_nodes and not req.required
        fit = req.fit
        for name in elig.free_now:
            v = views[name]
            free = v.cpus - v.alloc_cpus  # free_cpus, without the property call
            if free <= 0:
                dead.append(name)
                continue
            mins = (free, v.real_memory - v.alloc_memory, v.gpus - len(v.alloc_gpu_ids), v.busy_jobs)
            cap = fit(*mins)
            sw.set_cap(name, cap, mins)
            if early and cap and sw.total >= req.ntasks:
                # Block layout takes the first nodes with room: no need to look further.
                alloc = self._place_at(job, req, now, sw.caps.get, sw.mins.__getitem__, elig)
                if alloc is not None:
                    self._prune(elig, dead)
                    return now, alloc
        self._prune(elig, dead)
        if self._feasible(sw.total, sw.count, sw.hist, sw.caps.get, req):
            alloc = self._place_at(job, req, now, sw.caps.get, sw.mins.__getitem__, elig)
            if alloc is not None:
                return now, alloc
        return None

    @staticmethod
    def _prune(elig, dead):
        if len(dead) * 8 > len(elig.free_now):
            gone = set(dead)
            elig.free_now = [n for n in elig.free_now if n not in gone]

    @staticmethod
    def _feasible(total, count, hist, cap_of, req):
        if total < req.ntasks or count < max(req.want_nodes, 1):
            return False
        if req.required and not all(cap_of(r) for r in req.required):
            return False
        if req.want_nodes:  # -N k: the k roomiest nodes must hold every task
            return _top_fits(hist, req.want_nodes, req.ntasks)
        return True

    def _walk(self, job, req, elig, floor):
        """The first time from ``floor`` the job fits, sweeping the times its nodes' groups gain resources.

        Capacities only grow where some node gets resources back (a running
        job's or a planned job's end, a reservation's end), so those times are
        the only candidates after ``floor``; losses (the window's right edge
        reaching a busier segment) come through the expiry heap. The sweep
        starts from a saved one of the same capacity key when that is cheaper
        than evaluating every group, and is saved for the jobs after.
        """
        duration = req.duration
        start = floor
        if self.total is not None:
            # Until all free CPUs together suffice, no time can work: start the sweep there. (The
            # candidate times skipped are breakpoints of the total too, so each was ruled out.)
            start = self.total.first_possible(floor, req.ntasks * req.cpus_per_task, duration, self.horizon,
                                              self.round_up)
            if start is None:
                return None
        on = self._groups_for(req, elig)
        log = self.moves.setdefault(req.elig_key, [])
        sw = self._resume(req, on, log, start)
        if sw is None:
            sw = self._fresh(req, on, start)
            sw.log_pos = len(log)
        evaluate, set_cap, gains_at, times = window_capacity, sw.set_cap, self.gains_at, self.gain_times
        heap, node_prof, horizon, caps = sw.heap, self.node_prof, self.horizon, sw.caps
        cap_of = lambda name: caps.get(node_prof.get(name), 0)  # noqa: E731
        plain = not (req.required or req.want_nodes or req.exclusive or req.gpus)
        t, alloc = sw.t, None
        k = bisect.bisect_right(times, t)
        fits = {}  # final-segment values -> capacity (many groups end up alike: empty)
        while True:
            if t >= start and self._feasible(sw.total, sw.count, sw.hist, cap_of, req):
                alloc = self._allocate(job, req, t, sw, elig, plain)
                if alloc is not None:
                    break
            if k >= len(times) or times[k] > horizon:
                break
            t = sw.t = times[k]
            k += 1
            end = self.round_up(t + duration)
            for prof in gains_at[t]:
                if prof in on:
                    if prof.times[-1] != t:
                        set_cap(prof, *evaluate(prof, req, t, end))
                        continue
                    # The profile's last change: the window lies in its final segment.
                    mins = (prof.cpus[-1], prof.mem[-1], prof.gpus[-1], prof.busy[-1])
                    cap = fits.get(mins)
                    if cap is None:
                        cap = fits[mins] = req.fit(*mins)
                    set_cap(prof, cap, mins if cap else None, None)
            while heap and heap[0][0] < t:
                _, ver, prof = heapq.heappop(heap)
                if sw.version[prof] == ver:
                    set_cap(prof, *evaluate(prof, req, t, end))
        self._save(req, sw, len(log))
        return (t, alloc) if alloc is not None else None

    def _allocate(self, job, req, t, sw, elig, plain):
        """The job's allocation at ``t`` from the sweep's capacities (None if placement refuses)."""
        caps, node_prof = sw.caps, self.node_prof
        if plain and req.ntasks <= SMALL_JOB and sw.count * 8 >= len(elig.names):
            # A small job with room on many nodes: the first few nodes with room in partition
            # order, found without listing them all.
            names, room, got, need = [], [], 0, req.ntasks
            for n in elig.names:
                c = caps.get(node_prof[n])
                if c:
                    names.append(n)
                    room.append(c)
                    got += c
                    if got >= need:
                        break
            return self._block_allocation(req, names, room)
        roomy = self._roomy(sw, elig)
        if plain:
            # The first nodes with room in partition order, just enough of them.
            room = list(map(caps.__getitem__, map(node_prof.__getitem__, roomy)))
            cut = bisect.bisect_left(list(itertools.accumulate(room)), req.ntasks) + 1
            return self._block_allocation(req, roomy[:cut], room[:cut])
        return self._place_at(job, req, t, lambda name: caps.get(node_prof.get(name), 0),
                              lambda name: sw.mins[node_prof[name]], elig, roomy)

    def _fresh(self, req, on, t):
        """A sweep at ``t`` with every group evaluated."""
        sw = _GroupSweep(on, t)
        end = self.round_up(t + req.duration)
        evaluate, set_cap = window_capacity, sw.set_cap
        # A group without a free CPU at t has capacity 0 (the sweep's default): not even a lookup.
        if t == self.now:
            roomy = [prof for prof in on if prof.cpus[0] > 0]
        else:
            bisect_right = bisect.bisect_right
            roomy = [prof for prof in on if prof.cpus[bisect_right(prof.times, t) - 1] > 0]
        for prof in roomy:
            set_cap(prof, *evaluate(prof, req, t, end))
        return sw

    def _resume(self, req, on, log, start):
        """A saved sweep at or before ``start``, brought up to date, when cheaper than a fresh one."""
        saved = self.saved.get(req.capacity_key)
        if not saved:
            return None
        i = bisect.bisect_right([s.t for s in saved], start) - 1
        if i < 0:
            return None
        base = saved[i]
        # Cost: the groups moved since, and (roughly) the breakpoints to sweep up to ``start``.
        moved = len(log) - base.log_pos
        times = self.gain_times
        gap = bisect.bisect_right(times, start) - bisect.bisect_right(times, base.t)
        if (moved + gap) * 2 > len(on) + 2:
            return None
        sw = base.copy()
        sw.on = on
        caps, t = sw.caps, sw.t
        end = self.round_up(t + req.duration)
        for old, new, k in log[base.log_pos:]:
            # k nodes left ``old`` for ``new`` (``old`` with a reservation taken: never roomier)
            had = caps.get(old, 0)
            sw.weigh(had, -k)
            if had and new not in caps:  # made since (or had no room): evaluated as a fresh sweep would
                cap, mins, expiry = window_capacity(new, req, t, end)
                caps[new], sw.mins[new] = cap, mins
                if cap:
                    sw.roomy.add(new)
                sw.serial += 1
                sw.version[new] = sw.serial
                if expiry is not None:
                    heapq.heappush(sw.heap, (expiry, sw.serial, new))
            sw.weigh(caps.get(new, 0), k)
        sw.log_pos = len(log)
        return sw

    def _save(self, req, sw, log_pos):
        sw.log_pos = log_pos
        saved = self.saved.setdefault(req.capacity_key, [])
        saved.insert(bisect.bisect_right([s.t for s in saved], sw.t), sw)
        if len(saved) > MAX_SAVED:
            # Keep the spread: drop the state closest in time to its predecessor (never the first).
            k = min(range(1, len(saved)), key=lambda x: saved[x].t - saved[x - 1].t)
            del saved[k]

    @staticmethod
    def _roomy(sw, elig):
        """The eligible nodes with room for the job in the sweep, in partition order."""
        on = sw.on
        groups = [on[prof] for prof in sw.roomy if prof in on]
        if sw.count * 8 < len(elig.names):
            return sorted((n for members in groups for n in members), key=elig.pos.__getitem__)
        members = groups[0] if len(groups) == 1 else set().union(*groups)
        return list(filter(members.__contains__, elig.names))

    def _place_at(self, job, req, t, cap_of, mins_of, elig, candidates=None):
        """Run the real placement on views showing what is free over the job's window.

        ``cap_of(node)``: the job's capacity on the node over the window;
        ``mins_of(node)``: the node's free (cpus, memory, gpus, jobs) over it;
        ``candidates``: the nodes that may have room, in partition order (default: all eligible).
        """
        if candidates is None:
            candidates = elig.names
        if not req.required and not req.want_nodes:
            # Placement fills nodes in order, so the first ones with room decide.
            names, caps, room = [], {}, 0
            for n in candidates:
                c = cap_of(n)
                if c:
                    names.append(n)
                    caps[n] = c
                    room += c
                    if room >= req.ntasks:
                        break
            if not (req.exclusive or req.gpus):
                return self._block_allocation(req, names, list(map(caps.__getitem__, names)))
        else:
            names = [n for n in candidates if cap_of(n)]
            if not req.required:
                # With -N: the first k, unless they are too small, then the roomiest.
                head = names[:req.want_nodes]
                if sum(cap_of(n) for n in head) >= req.ntasks:
                    names = head
        return self._place_in_window(job, names, t, mins_of)

    @staticmethod
    def _block_allocation(req, names, room):
        """What :func:`~.placement.place` gives a plain job (no -N, -w, --exclusive, GPUs), as a
        :class:`_Block`: ``names`` are the first nodes with room in partition order, just
        enough of them, and ``room`` their capacities over the window (``req.fit``, which
        counts tasks exactly as placement does). Eligibility (features, --exclude) was
        applied when ``names`` were chosen."""
        total, ntasks = sum(room), req.ntasks
        if not names or total < ntasks:
            return None
        return _Block(names, room, total)


class _Block:
    """Placement's block layout for a plain job, kept as node names and their capacities.

    :func:`~.placement.place` gives a plain job one task on each of the first
    nodes with room, then fills each in turn; on just enough nodes that means
    every node but the last full and the last with the rest, and otherwise the
    fill order decides. :meth:`allocation` builds the real
    :class:`~.placement.Allocation`; :meth:`moves` is what
    :meth:`Planner.commit` needs, grouped by profile without per-node dicts.
    """

    __slots__ = ("nodes", "room", "total")

    def __init__(self, names, room, total):
        self.nodes, self.room, self.total = names, room, total

    def tasks(self, ntasks):
        """Tasks per node, in node order (a list)."""
        room = self.room
        if self.total - room[-1] < ntasks:
            # Just enough nodes: every node but the last fills up, the last takes the rest.
            tasks = list(room)
            tasks[-1] = ntasks - (self.total - room[-1])
            return tasks
        tasks, left = [1] * len(room), ntasks - len(room)
        for i, cap in enumerate(room):
            if left <= 0:
                break
            more = min(cap - 1, left)
            tasks[i] += more
            left -= more
        return tasks

    def allocation(self, req):
        names, c = self.nodes, req.cpus_per_task
        tasks = dict(zip(names, self.tasks(req.ntasks)))
        cpus = dict(tasks) if c == 1 else {name: n * c for name, n in tasks.items()}
        mem = {name: req.mem_per_cpu * n for name, n in cpus.items()} if req.mem_per_cpu else \
            dict.fromkeys(names, req.mem_per_node)
        return Allocation(list(names), tasks, cpus, mem, {name: [] for name in names})

    def moves(self, req, node_prof):
        """The nodes by (profile, cpus, memory, gpus taken): runs of one profile and share move
        together, so the Python loop goes once per run."""
        names = self.nodes
        cpus = list(map(operator.mul, self.tasks(req.ntasks), itertools.repeat(req.cpus_per_task)))
        mem = map(operator.mul, cpus, itertools.repeat(req.mem_per_cpu)) if req.mem_per_cpu else \
            itertools.repeat(req.mem_per_node)
        return _by_runs(names, zip(map(node_prof.__getitem__, names), cpus, mem, itertools.repeat(0)))


def _by_runs(names, keys):
    """``names`` grouped by their ``keys``, sliced by runs of equal neighbouring keys: block
    allocations take runs of neighbours of one group with the same share, so the Python loop
    goes once per run, not once per node."""
    moves, i = {}, 0
    for key, run in itertools.groupby(keys):
        k = i + len(list(run))
        known = moves.get(key)
        if known is None:
            moves[key] = names[i:k]
        else:
            known.extend(names[i:k])
        i = k
    return moves
