"""What is free on a node over time, and what a job needs of a node: the planner's data.

:class:`Profile` is one node's free CPUs, memory, GPUs and job count as a step
function of time (a list of breakpoints, never a per-second grid), built from
the node's free resources now plus what running jobs give back when their time
limits are up; planned jobs take their share with :meth:`Profile.reserve`.
:class:`Request` reduces a job dict to the numbers the planner compares, and
:func:`fitter` counts how many of its tasks fit in given free resources, exactly
as :func:`~.placement.place` would.
"""

import bisect
import math

from .placement import gpu_count

INF = math.inf


class Profile:
    """Free resources of one node as a step function: segment i is [times[i], times[i+1])."""

    __slots__ = ("times", "cpus", "mem", "gpus", "busy", "_gains")

    def __init__(self, view, now, releases):
        self._gains = None
        c, m = view.cpus - view.alloc_cpus, view.real_memory - view.alloc_memory
        g, b = view.gpus - len(view.alloc_gpu_ids), view.busy_jobs
        times, cpus, mem, gpus, busy = [now], [c], [m], [g], [b]
        for t, dc, dm, dg in (sorted(releases) if len(releases) > 1 else releases):
            # Clamped: resources of a job the controller already released are not counted twice.
            c, m = min(view.cpus, c + dc), min(view.real_memory, m + dm)
            g, b = min(view.gpus, g + dg), max(0, b - 1)
            if t != times[-1]:
                times.append(t)
                cpus.append(c)
                mem.append(m)
                gpus.append(g)
                busy.append(b)
            else:
                cpus[-1], mem[-1], gpus[-1], busy[-1] = c, m, g, b
        self.times, self.cpus, self.mem, self.gpus, self.busy = times, cpus, mem, gpus, busy

    def copy(self):
        new = Profile.__new__(Profile)
        new.times, new.cpus, new.mem, new.gpus, new.busy = (
            self.times[:], self.cpus[:], self.mem[:], self.gpus[:], self.busy[:])
        new._gains = None
        return new

    def gain_times(self):
        """Times after the first where some resource comes back (more CPUs, memory or GPUs, fewer jobs).

        Only there can a job that did not fit start to fit. Cached: the
        planner never changes a profile once it is shared (see :meth:`copy`).
        """
        gains = self._gains
        if gains is None:
            times, cpus, mem, gpus, busy = self.times, self.cpus, self.mem, self.gpus, self.busy
            gains = self._gains = [times[i] for i in range(1, len(times))
                                   if cpus[i] > cpus[i - 1] or mem[i] > mem[i - 1] or gpus[i] > gpus[i - 1]
                                   or busy[i] < busy[i - 1]]
        return gains

    def reserved(self, t0, t1, cpus, mem, gpus):
        """A copy with resources taken over [t0, t1), its gain times derived from this profile's.

        Taking the same amounts from every segment of [t0, t1) keeps the
        comparisons between neighbours inside it and after it, so only the
        breakpoints at ``t0`` and ``t1`` can change whether they are gains;
        the planner makes a profile this way for every node group a
        reservation touches, and rescanning every breakpoint cost more than
        the reservation itself.
        """
        gains = self._gains
        new = self.copy()
        new.reserve(t0, t1, cpus, mem, gpus)
        if gains is not None:
            gains = gains[:]
            for t in (t0, t1):
                if t == INF:
                    continue
                k = bisect.bisect_left(gains, t)
                was = k < len(gains) and gains[k] == t
                now = new._gains_at(t)
                if was and not now:
                    del gains[k]
                elif now and not was:
                    gains.insert(k, t)
            new._gains = gains
        return new

    def _gains_at(self, t):
        """Whether breakpoint ``t`` (not the first) is a gain time: see :meth:`gain_times`."""
        times = self.times
        i = bisect.bisect_left(times, t)
        if i == 0 or i >= len(times) or times[i] != t:
            return False
        cpus, mem, gpus, busy = self.cpus, self.mem, self.gpus, self.busy
        return cpus[i] > cpus[i - 1] or mem[i] > mem[i - 1] or gpus[i] > gpus[i - 1] or busy[i] < busy[i - 1]

    def _split(self, t):
        k = bisect.bisect_left(self.times, t)
        if k < len(self.times) and self.times[k] == t:
            return k
        self.times.insert(k, t)
        for values in (self.cpus, self.mem, self.gpus, self.busy):
            values.insert(k, values[k - 1])
        return k

    def reserve(self, t0, t1, cpus, mem, gpus):
        """Take resources over [t0, t1)."""
        self._gains = None
        i = self._split(t0)
        j = len(self.times) if t1 == INF else self._split(t1)
        for k in range(i, j):
            self.cpus[k] -= cpus
            self.mem[k] -= mem
            self.gpus[k] -= gpus
            self.busy[k] += 1


def window_capacity(prof, req, t, end):
    """``(capacity, minima, expiry)`` of profile ``prof`` for ``req`` over [t, end): exact per-resource minima.

    Both planner sweeps evaluate every node (or node group) with this.
    ``expiry``: the time past which a later window reaches a segment that
    lowers *this job's* capacity (None: never). A profile that cannot take a
    task at ``t`` needs no window scan (capacity 0, minima and expiry None):
    it is evaluated again where it next gains.
    """
    times, cpus, mem, gpus, busy = prof.times, prof.cpus, prof.mem, prof.gpus, prof.busy
    i = bisect.bisect_right(times, t) - 1
    cap = req.fit(cpus[i], mem[i], gpus[i], busy[i])
    if not cap:
        return 0, None, None
    n = len(times)
    j = n if end == INF else bisect.bisect_left(times, end, i + 1)
    if j == i + 1:
        mins = (cpus[i], mem[i], gpus[i], busy[i])
    else:
        mins = (min(cpus[i:j]), min(mem[i:j]), min(gpus[i:j]), max(busy[i:j]))
        cap = req.fit(*mins)
    if cap and j < n:
        c_need = cap * req.cpus_per_task
        m_need = c_need * req.mem_per_cpu if req.mem_per_cpu else req.mem_per_node
        g_need, excl = req.gpus, req.exclusive
        for k in range(j, n):
            if cpus[k] < c_need or mem[k] < m_need or gpus[k] < g_need or (excl and busy[k]):
                return cap, mins, times[k] - req.duration
    return cap, mins, None


class Request:
    """A job's request, reduced to what the planner compares."""

    __slots__ = ("cpus_per_task", "mem_per_cpu", "mem_per_node", "gpus", "tasks_per_node", "exclusive",
                 "ntasks", "want_nodes", "required", "duration", "key", "capacity_key", "shape_key", "elig_key", "fit")

    def __init__(self, job, pname, expand):
        tl = job.get("time_limit")
        self.cpus_per_task = job["cpus_per_task"]
        self.mem_per_cpu = job.get("mem_per_cpu") or 0
        self.mem_per_node = job.get("mem_per_node") or 0
        self.gpus = gpu_count(job.get("gres"))
        self.tasks_per_node = job.get("ntasks_per_node") or 0
        self.exclusive = bool(job.get("exclusive"))
        self.ntasks = job["num_tasks"]
        self.want_nodes = job.get("num_nodes_req") or 0
        self.required = expand(job["nodelist_req"]) if job.get("nodelist_req") and expand else []
        self.duration = INF if tl is None else tl * 60.0
        self.elig_key = (pname, job.get("features") or "", job.get("exclude") or "")
        # What a node's capacity for the job depends on (not the task or node count)...
        self.shape_key = (self.elig_key, self.cpus_per_task, self.mem_per_cpu, self.mem_per_node, self.gpus,
                          self.tasks_per_node, self.exclusive)
        self.capacity_key = self.shape_key + (self.duration,)  # ...over its window
        self.key = (self.capacity_key, self.ntasks, self.want_nodes, job.get("nodelist_req") or "")
        self.fit = fitter(self)


def fitter(req):
    """``fit(cpus, mem, gpus, busy)``: tasks of ``req`` that fit, as placement._node_capacity counts them.

    Built once per request with the constants bound, because it runs for
    every node the planner looks at.
    """
    c, excl, gpus_needed, tpn = req.cpus_per_task, req.exclusive, req.gpus, req.tasks_per_node
    mem_task = req.mem_per_cpu * c
    mem_node = 0 if mem_task else req.mem_per_node
    if not (excl or mem_task or mem_node or gpus_needed or tpn):
        return lambda cpus, mem, gpus, busy: cpus // c if cpus > 0 else 0

    mem_cpu = req.mem_per_cpu

    def fit(cpus, mem, gpus, busy):
        if (excl and busy) or gpus < gpus_needed or mem < mem_node:
            return 0
        if excl and mem_cpu and mem_cpu * cpus > mem:
            return 0  # charged for every CPU of the node, as placement._node_capacity says
        tasks = cpus // c
        if mem_task:
            tasks = min(tasks, mem // mem_task)
        if tpn and tasks > tpn:
            tasks = tpn
        return tasks if tasks > 0 else 0
    return fit
