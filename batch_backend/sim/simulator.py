"""A discrete-event simulator that replays a workload through the real scheduler.

Why: a scheduling policy is only trustworthy if it can be measured on workloads
at scales no test machine has. The simulator owns a virtual clock, NodeViews and
job dicts shaped like the controller's, and calls the very ``schedule(state,
now)`` the controller calls (:mod:`~batch_backend.sched.fifo` or
:mod:`~batch_backend.sched.backfill`), so what it measures is what runs.

Like the controller, it runs one pass whenever something happened (jobs
submitted or ended at a virtual instant; all events of one instant coalesce
into one pass). With ``bf_interval`` it runs instead as Slurm does: the cheap
priority-FIFO pass on every event, and the backfill pass at most every
``bf_interval`` virtual seconds (which is what makes 10,000-node replays
affordable; FIFO never starts a job out of order, so nothing is delayed). Jobs run for their trace run time, cut at their time limit as
the node daemon would; a job without a requested time gets its run time as limit
(a perfect estimate), because "forever" would keep backfill from planning
anything around it.

Policies apply each Start's allocation to ``state.nodes`` themselves (fifo and
backfill both keep that running tally), so the simulator hands its live
NodeViews to the pass instead of copying 10,000 of them per pass, and applies
only job ends itself.
"""

import gc
import heapq
import math
import statistics
import time

from ..sched import backfill, fifo
from ..sched import reservations as resv_rules
from ..sched.placement import NodeView
from ..sched.priority import (FactorInputs, PriorityWeights, UsageTracker, default_associations,
                              fairshare_table, job_priority)

POLICIES = {"fifo": fifo.schedule, "backfill": backfill.schedule}
PARTITION = "batch"
BSLD_TAU = 10.0  # seconds: bounded slowdown ignores how short very short jobs are


class Metrics(dict):
    """Figures of one run (a dict, so they print and serialise as they are)."""

    COLUMNS = (
        ("jobs", "jobs run", "{:d}"), ("skipped", "jobs skipped", "{:d}"),
        ("mean_wait", "mean wait (s)", "{:.0f}"), ("median_wait", "median wait (s)", "{:.0f}"),
        ("p95_wait", "95th pct wait (s)", "{:.0f}"), ("mean_bsld", "mean bounded slowdown", "{:.2f}"),
        ("max_user_mean_wait", "worst user mean wait (s)", "{:.0f}"),
        ("user_fairness", "user fairness (Jain, bsld)", "{:.3f}"),
        ("utilization", "utilization", "{:.1%}"), ("makespan", "makespan (s)", "{:.0f}"),
        ("backfilled", "backfilled jobs", "{:d}"), ("passes", "scheduler passes", "{:d}"),
        ("mean_pass_ms", "mean pass (ms)", "{:.2f}"), ("max_pass_ms", "max pass (ms)", "{:.1f}"),
        ("wall_s", "simulation wall time (s)", "{:.1f}"),
    )


def jobs_from_swf(records, total_cpus):
    """Job dicts (controller shape) from SWF records; returns ``(jobs, skipped)``.

    Records without processors or run time, or wider than the cluster, are
    skipped: replaying them would only measure the trace's damage.
    """
    jobs, skipped = [], 0
    for r in sorted(records, key=lambda r: (r.submit_time, r.job_number)):
        procs = r.procs
        if not procs or r.run_time is None or r.run_time < 0 or procs > total_cpus:
            skipped += 1
            continue
        limit_s = r.requested_time if r.requested_time and r.requested_time > 0 else max(r.run_time, 60)
        limit = max(1, math.ceil(limit_s / 60))
        jobs.append({
            "job_id": len(jobs) + 1, "partition": PARTITION, "num_tasks": procs, "cpus_per_task": 1,
            "num_nodes_req": None, "ntasks_per_node": None, "mem_per_cpu": None, "mem_per_node": None,
            "gres": "", "features": "", "exclude": "", "nodelist_req": "", "held": "", "dependency": "",
            "reason": "None", "time_limit": limit, "priority": 0, "nice": 0,
            "user": f"u{r.user_id if r.user_id is not None else 0}", "account": "sim", "qos": "normal",
            "submit_time": float(r.submit_time), "eligible_time": float(r.submit_time),
            "start_time": None, "start_estimated": False,
            "run_time": float(min(r.run_time, limit * 60)),
        })
    return jobs, skipped


class Simulator:
    """Replays job dicts (see :func:`jobs_from_swf`) on ``nodes`` x ``cpus`` with one policy.

    ``priority``: ``"fcfs"`` (submit order, what FIFO and EASY papers compare) or
    ``"multifactor"`` (age + classic fairshare over the trace's users, usage
    charged as jobs end, recomputed every ``calc_period`` virtual seconds like
    PriorityCalcPeriod). ``limits``: ``(assocs, qos)`` as
    :class:`batch_backend.sched.limits.Limits` takes them, to replay under
    association/QOS limits (jobs need ``account``, ``user``, ``qos``).
    """

    def __init__(self, jobs, *, nodes, cpus, mem=0, policy="backfill", priority="fcfs",
                 bf_window=1440, bf_max_job_test=500, bf_resolution=60, bf_interval=0, weights=None,
                 calc_period=300, on_pass=None, reservations=(), limits=None, estimates=False):
        self.limits = limits
        # Start times are all a replay measures, so backfill passes plan only as far as a job could
        # still start (backfill.schedule with estimates False: the same starts); True plans every
        # pass in full, as the controller does for squeue --start.
        self.estimates = estimates
        self.jobs = [dict(j) for j in jobs]
        self.policy_name = policy if isinstance(policy, str) else getattr(policy, "__name__", "custom")
        self.policy = POLICIES[policy] if isinstance(policy, str) else policy
        self.views = {f"n{i:05d}": NodeView(f"n{i:05d}", cpus, mem) for i in range(1, nodes + 1)}
        self.partitions = {PARTITION: {"name": PARTITION, "nodes": list(self.views), "state": "UP",
                                       "max_time": None, "max_nodes": None, "min_nodes": 0,
                                       "priority_job_factor": 1}}
        self.total_cpus = nodes * cpus
        self.bf = {"bf_window": bf_window, "bf_max_job_test": bf_max_job_test, "bf_resolution": bf_resolution}
        self.bf_interval = bf_interval if self.policy is backfill.schedule else 0
        self.last_backfill = self.next_tick = None
        self.priority = priority
        self.weights = weights or PriorityWeights(age=1000, fairshare=10000, max_age=7 * 86400.0,
                                                  decay_half_life=7 * 86400.0)
        self.calc_period = calc_period
        self.usage = UsageTracker(self.weights.decay_half_life)
        self.users = sorted({j["user"] for j in self.jobs}) or ["u0"]
        self.associations = default_associations(self.users)
        self.on_pass = on_pass  # callback(sim, now, decisions), for tests
        # Advance reservations (sched/reservations.py): trace jobs keep off their windows.
        self.reservations = [dict(r) for r in reservations]
        self.resv_ticks = set()
        self.pending = {}
        self.running = {}
        self.pass_times = []
        self.backfilled = 0
        self.order_dirty = False
        self.last_calc = None

    # -- priority ------------------------------------------------------------------------
    def _reprioritise(self, now):
        if self.priority == "fcfs":
            return  # insertion order is submit order
        if not self.order_dirty and self.last_calc is not None and now - self.last_calc < self.calc_period:
            return
        # the controller's classic fairshare over its default tree (every user under root, one share)
        table = {r["user"]: r["fairshare"] for r in fairshare_table(self.associations, self.usage, now) if r["user"]}
        inputs = FactorInputs(total_nodes=len(self.views), total_cpus=self.total_cpus,
                              fairshare=lambda job: table.get(job["user"], 0.0))
        for job in self.pending.values():
            job["priority"], _ = job_priority(job, now, weights=self.weights, factors_inputs=inputs)
        ordered = sorted(self.pending.values(), key=lambda j: (-j["priority"], j["submit_time"], j["job_id"]))
        self.pending = {j["job_id"]: j for j in ordered}
        self.order_dirty, self.last_calc = False, now

    # -- events --------------------------------------------------------------------------
    def _end(self, job):
        for name in job["nodes"]:
            v = self.views[name]
            v.alloc_cpus -= job["cpus_per_node"][name]
            v.alloc_memory -= job["mem_alloc_per_node"][name]
            v.alloc_gpu_ids.difference_update(job["gpus_per_node"][name])
            v.busy_jobs -= 1
        del self.running[job["job_id"]]
        if self.priority != "fcfs":
            self.usage.charge("root", job["user"], job["num_cpus"] * job["run_time"], job["actual_end"])

    def _start(self, job, alloc, now, heap, seq):
        job["start_time"], job["start_estimated"] = now, False
        job["nodes"] = list(alloc.nodes)
        job["cpus_per_node"] = dict(alloc.cpus_per_node)
        job["mem_alloc_per_node"] = dict(alloc.memory_per_node)
        job["gpus_per_node"] = {n: list(g) for n, g in alloc.gpus_per_node.items()}
        job["num_cpus"] = sum(alloc.cpus_per_node.values())
        job["end_time"] = now + job["time_limit"] * 60  # expected end, as the controller records it
        job["actual_end"] = now + job["run_time"]
        del self.pending[job["job_id"]]
        self.running[job["job_id"]] = job
        heapq.heappush(heap, (job["actual_end"], 0, seq, job["job_id"]))

    def _pass(self, now, heap, seq):
        self._reprioritise(now)
        windows = {}
        if self.reservations:
            windows = resv_rules.blocked_windows(self.reservations, now, now + resv_rules.WINDOW_HORIZON)
            ends = [e for wins in windows.values() for _, e, _ in wins if e > now]
            if ends and min(ends) not in self.resv_ticks:  # nodes come back: time for a pass
                self.resv_ticks.add(min(ends))
                seq += 1
                heapq.heappush(heap, (min(ends), 2, seq, 0))
        state = backfill.BackfillState(
            nodes=self.views, partitions=self.partitions, pending=list(self.pending.values()),
            running=list(self.running.values()), reserved_windows=windows, estimates=self.estimates,
            **self.bf)
        if self.limits is not None:
            from ..sched.limits import Limits
            state.limits = Limits(*self.limits, running=self.running.values())
        policy = self.policy
        backfill_owed = False
        if self.bf_interval:
            if self.last_backfill is not None and now - self.last_backfill < self.bf_interval:
                policy = fifo.schedule  # the main scheduler, between backfill passes
                backfill_owed = True
            else:
                self.last_backfill = now
        t0 = time.perf_counter()
        decisions = policy(state, now)
        self.pass_times.append(time.perf_counter() - t0)
        for d in decisions:
            job = self.pending.get(d.job_id)
            if job is None:
                continue
            if isinstance(d, fifo.Start):
                seq += 1
                self._start(job, d.allocation, now, heap, seq)
                self.backfilled += bool(d.backfilled)
            elif isinstance(d, fifo.SetReason):
                job["reason"] = d.reason
            elif isinstance(d, backfill.Estimate):
                job["start_time"], job["start_estimated"] = d.start_time, d.start_time is not None
                job["sched_nodes"] = d.nodes
        if backfill_owed and self.pending and (self.next_tick is None or self.next_tick <= now):
            # Something happened that only the main scheduler has seen: wake up for the next
            # backfill pass even if no job submits or ends by then. Without an event since the
            # last backfill pass nothing could start, so no tick is needed (as slurmctld skips
            # backfill cycles when nothing changed).
            self.next_tick = self.last_backfill + self.bf_interval
            seq += 1
            heapq.heappush(heap, (self.next_tick, 2, seq, 0))
        if self.on_pass is not None:
            self.on_pass(self, now, decisions)
        return seq

    def run(self):
        """Replay every job to its end; returns :class:`Metrics`.

        CPython's cyclic garbage collector is paused meanwhile: a replay keeps
        every job dict alive and makes millions of short-lived tuples, lists
        and dicts, so the collector kept rescanning the same long-lived
        objects (about 15% of a 10,000-job replay) while finding almost
        nothing: the scheduler's structures hold no reference cycles, so
        reference counting frees them.
        """
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if collecting:
                gc.enable()

    def _run(self):
        wall = time.perf_counter()
        by_id = {j["job_id"]: j for j in self.jobs}
        # (time, kind, seq, job_id): kind 0 = end before 1 = submit, so freed nodes are seen at once;
        # kind 2 = a backfill tick (bf_interval), which only triggers a pass.
        heap = [(j["submit_time"], 1, j["job_id"], j["job_id"]) for j in self.jobs]
        heapq.heapify(heap)
        seq = len(self.jobs)
        while heap:
            now = heap[0][0]
            while heap and heap[0][0] == now:
                _, kind, _, job_id = heapq.heappop(heap)
                if kind == 0:
                    self._end(by_id[job_id])
                elif kind == 1:
                    self.pending[job_id] = by_id[job_id]
                    self.order_dirty = True
            if self.pending:
                seq = self._pass(now, heap, seq)
        return self.metrics(time.perf_counter() - wall)

    def metrics(self, wall_s=0.0, skipped=0):
        done = [j for j in self.jobs if j.get("actual_end") is not None]
        waits = [j["start_time"] - j["submit_time"] for j in done]
        bsld = [max(1.0, (w + j["run_time"]) / max(j["run_time"], BSLD_TAU)) for w, j in zip(waits, done)]
        per_user, per_user_bsld = {}, {}
        for w, b, j in zip(waits, bsld, done):
            per_user.setdefault(j["user"], []).append(w)
            per_user_bsld.setdefault(j["user"], []).append(b)
        first = min((j["submit_time"] for j in done), default=0.0)
        last = max((j["actual_end"] for j in done), default=0.0)
        makespan = last - first
        work = sum(j["num_cpus"] * j["run_time"] for j in done)
        ordered = sorted(waits)
        return Metrics(
            policy=self.policy_name, priority=self.priority, jobs=len(done), skipped=skipped,
            mean_wait=statistics.fmean(waits) if waits else 0.0,
            median_wait=statistics.median(waits) if waits else 0.0,
            p95_wait=ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0,
            mean_bsld=statistics.fmean(bsld) if bsld else 0.0,
            max_user_mean_wait=max((statistics.fmean(v) for v in per_user.values()), default=0.0),
            user_fairness=jain_index([statistics.fmean(v) for v in per_user_bsld.values()]),
            utilization=work / (self.total_cpus * makespan) if makespan > 0 else 0.0,
            makespan=makespan, backfilled=self.backfilled, passes=len(self.pass_times),
            mean_pass_ms=1000 * statistics.fmean(self.pass_times) if self.pass_times else 0.0,
            max_pass_ms=1000 * max(self.pass_times, default=0.0), wall_s=wall_s)


def jain_index(values):
    """Jain's fairness index of per-user figures: 1 when every user fares alike, 1/n at worst."""
    if not values:
        return 1.0
    square_sum = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * square_sum) if square_sum else 1.0


def simulate(records, *, nodes, cpus, policy="backfill", **kw):
    """Replay SWF ``records`` with one policy; returns :class:`Metrics`."""
    jobs, skipped = jobs_from_swf(records, nodes * cpus)
    sim = Simulator(jobs, nodes=nodes, cpus=cpus, policy=policy, **kw)
    result = sim.run()
    result["skipped"] = skipped
    return result


LABELS = {("fifo", "fcfs"): "FCFS", ("backfill", "fcfs"): "FCFS+EASY",
          ("fifo", "multifactor"): "multifactor", ("backfill", "multifactor"): "multifactor+backfill"}


def run_label(result):
    """The name papers use for a policy/priority pair (FCFS, FCFS+EASY, ...)."""
    return LABELS.get((result["policy"], result["priority"]), f"{result['policy']}/{result['priority']}")


def format_table(results):
    """A metrics table, one column per run."""
    heads = [run_label(r) for r in results]
    width = max(len(label) for _, label, _ in Metrics.COLUMNS)
    colw = max(12, *(len(h) for h in heads))
    lines = [f"{'':<{width}}  " + "  ".join(f"{h:>{colw}}" for h in heads)]
    for key, label, fmt in Metrics.COLUMNS:
        lines.append(f"{label:<{width}}  " + "  ".join(f"{fmt.format(r[key]):>{colw}}" for r in results))
    return "\n".join(lines)
