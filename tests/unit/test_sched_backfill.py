"""Backfill: who starts now, when the others will start, and that nobody is delayed by a lower job."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_backend import hostlist
from batch_backend.sched import backfill, fifo
from batch_backend.sched.placement import NodeView, place


def views(n=2, cpus=4, mem=1000, gpus=0):
    return {f"n{i}": NodeView(f"n{i}", cpus, mem, gpus, frozenset({"cpu"})) for i in range(1, n + 1)}


def job(job_id, **kw):
    j = {"job_id": job_id, "partition": "p", "num_tasks": 1, "cpus_per_task": 1, "num_nodes_req": None,
         "reason": "None", "time_limit": 10, "gres": "", "features": "", "held": "", "priority": 100 - job_id}
    j.update(kw)
    return j


def running(job_id, nodes, node_views, *, cpus, start=0, limit=10, mem=0, gpus=()):
    """A running job holding ``cpus`` (and ``mem``, GPU ids) on each of ``nodes``; applied to the views."""
    for n in nodes:
        node_views[n].alloc_cpus += cpus
        node_views[n].alloc_memory += mem
        node_views[n].alloc_gpu_ids.update(gpus)
        node_views[n].busy_jobs += 1
    return {"job_id": job_id, "nodes": list(nodes), "cpus_per_node": {n: cpus for n in nodes},
            "mem_alloc_per_node": {n: mem for n in nodes}, "gpus_per_node": {n: list(gpus) for n in nodes},
            "start_time": start, "time_limit": limit}


def state(nodes, pending, run=(), **kw):
    p = {"name": "p", "nodes": sorted(nodes), "state": "UP", "max_time": None, "max_nodes": None, "min_nodes": 0}
    return backfill.BackfillState(nodes=nodes, partitions={"p": p}, pending=pending, running=list(run),
                                  expand_hostlist=hostlist.expand, **kw)


def summary(decisions):
    """Decisions as comparable tuples: ('start', id, nodes) / ('est', id, t, nodes) / ('reason', id, r)."""
    out = []
    for d in decisions:
        if isinstance(d, fifo.Start):
            out.append(("start", d.job_id, d.allocation.nodes))
        elif isinstance(d, backfill.Estimate):
            out.append(("est", d.job_id, d.start_time, d.nodes))
        else:
            out.append(("reason", d.job_id, d.reason))
    return out


# -- behaviour ---------------------------------------------------------------------------

def test_everything_that_fits_starts_in_priority_order_with_no_estimates():
    d = backfill.schedule(state(views(), [job(1, num_tasks=4), job(2, num_tasks=4)]), now=0)
    assert summary(d) == [("start", 1, ["n1"]), ("start", 2, ["n2"])]
    assert not any(x.backfilled for x in d)


def test_head_job_gets_a_reservation_when_resources_free_up():
    nodes = views()
    run = [running(100, ["n1"], nodes, cpus=4, limit=10)]
    d = backfill.schedule(state(nodes, [job(1, num_tasks=8)], run), now=0)
    assert summary(d) == [("est", 1, 600, ["n1", "n2"]), ("reason", 1, "Resources")]


def test_small_job_backfills_into_the_hole_without_delaying_the_head_job():
    nodes = views()
    run = [running(100, ["n1"], nodes, cpus=4, limit=10)]  # n1 busy until 600; n2 idle
    s = state(nodes, [job(1, num_tasks=8), job(2, time_limit=5)], run)
    d = backfill.schedule(s, now=0)
    assert summary(d) == [("est", 1, 600, ["n1", "n2"]), ("reason", 1, "Resources"), ("start", 2, ["n2"])]
    assert d[2].backfilled


def test_small_job_that_would_delay_the_head_job_does_not_start():
    nodes = views()
    run = [running(100, ["n1"], nodes, cpus=4, limit=10)]
    d = backfill.schedule(state(nodes, [job(1, num_tasks=8), job(2, time_limit=20)], run), now=0)
    # job 2 fits on n2 now but would still hold it at 600, when job 1 needs both nodes.
    assert summary(d) == [("est", 1, 600, ["n1", "n2"]), ("reason", 1, "Resources"),
                          ("est", 2, 1200, ["n1"]), ("reason", 2, "Priority")]


def test_long_job_may_use_what_the_reservation_leaves_over():
    nodes = views(3)
    run = [running(100, ["n1"], nodes, cpus=4, limit=10), running(101, ["n2"], nodes, cpus=4, limit=20)]
    head = job(1, num_tasks=6, num_nodes_req=2, ntasks_per_node=3)  # at 600: 3 CPUs of n1 and of n3
    d = backfill.schedule(state(nodes, [head, job(2, time_limit=1000)], run), now=0)
    assert summary(d) == [("est", 1, 600, ["n1", "n3"]), ("reason", 1, "Resources"), ("start", 2, ["n3"])]


def test_estimates_are_monotone_and_equal_to_when_resources_free_up():
    nodes = views()
    run = [running(100, ["n1", "n2"], nodes, cpus=4, limit=10)]
    pending = [job(i, num_tasks=8, time_limit=10 * i) for i in range(1, 5)]
    d = backfill.schedule(state(nodes, pending, run), now=0)
    starts = [x.start_time for x in d if isinstance(x, backfill.Estimate)]
    assert starts == [600, 1200, 2400, 4200]  # each starts when the previous one's limit is up


def test_planning_window_bounds_estimates():
    nodes = views()
    run = [running(100, ["n1", "n2"], nodes, cpus=4, limit=120)]
    s = state(nodes, [job(1, num_tasks=8), job(2, num_tasks=8)], run, bf_window=60)
    d = backfill.schedule(s, now=0)
    assert summary(d) == [("reason", 1, "Resources"), ("reason", 2, "Priority")]
    s = state(nodes, [job(1, num_tasks=8), job(2, num_tasks=8)], run, bf_window=125)
    assert [x.start_time for x in backfill.schedule(s, now=0) if isinstance(x, backfill.Estimate)] == [7200]


def test_max_job_test_bounds_planning_below_the_head_job():
    nodes = views()
    run = [running(100, ["n1", "n2"], nodes, cpus=4, limit=10)]
    pending = [job(i, num_tasks=8) for i in range(1, 6)]
    d = backfill.schedule(state(nodes, pending, run, bf_max_job_test=2), now=0)
    # The head job is the main scheduler's; two more are planned; the next waits unplanned, and
    # with every partition blocked the pass stops there (job 5 keeps its reason, as under fifo).
    assert [x.job_id for x in d if isinstance(x, backfill.Estimate)] == [1, 2, 3]
    assert [(x.job_id, x.reason) for x in d if isinstance(x, fifo.SetReason)] == [
        (1, "Resources"), (2, "Priority"), (3, "Priority"), (4, "Priority")]


def test_job_without_time_limit_never_frees_its_nodes_for_planning():
    nodes = views()
    run = [running(100, ["n1"], nodes, cpus=4, limit=None)]
    d = backfill.schedule(state(nodes, [job(1, num_tasks=8), job(2, time_limit=None)], run), now=0)
    # Job 1 can never be planned, so it holds nothing back and unlimited job 2 may take n2.
    assert summary(d) == [("reason", 1, "Resources"), ("start", 2, ["n2"])]


def test_pending_job_without_time_limit_starts_only_if_it_delays_nobody():
    nodes = views()
    run = [running(100, ["n1"], nodes, cpus=4, limit=10)]
    d = backfill.schedule(state(nodes, [job(1, num_tasks=8), job(2, time_limit=None)], run), now=0)
    assert summary(d)[:2] == [("est", 1, 600, ["n1", "n2"]), ("reason", 1, "Resources")]
    assert ("start", 2, ["n2"]) not in summary(d)


def test_expected_ends_are_rounded_up_to_the_resolution():
    nodes = views()
    run = [running(100, ["n1", "n2"], nodes, cpus=4, start=1, limit=10)]  # ends at 601
    d = backfill.schedule(state(nodes, [job(1, num_tasks=8)], run), now=0)
    assert d[0].start_time == 660
    nodes = views()
    run = [running(100, ["n1", "n2"], nodes, cpus=4, start=1, limit=10)]
    d = backfill.schedule(state(nodes, [job(1, num_tasks=8)], run, bf_resolution=0), now=0)
    assert d[0].start_time == 601


def test_overdue_job_is_expected_to_end_shortly_not_now():
    nodes = views()
    run = [running(100, ["n1", "n2"], nodes, cpus=4, start=0, limit=10)]
    d = backfill.schedule(state(nodes, [job(1, num_tasks=8)], run), now=700)
    assert d[0].start_time == 720


def test_unchanged_estimate_is_not_emitted_again_and_a_stale_one_is_cleared():
    nodes = views()
    run = [running(100, ["n1"], nodes, cpus=4, limit=10)]
    known = job(1, num_tasks=8, reason="Resources", start_time=600, start_estimated=True, sched_nodes=["n1", "n2"])
    assert backfill.schedule(state(nodes, [known], run), now=0) == []
    assert backfill.schedule(state(nodes, [dict(known, sched_nodes="n[1-2]")], run), now=0) == []  # as stored
    assert backfill.schedule(state(nodes, [dict(known, sched_nodes="n1")], run), now=0) != []
    held = dict(known, held="user")
    assert summary(backfill.schedule(state(nodes, [held], run), now=0)) == [
        ("reason", 1, "JobHeldUser"), ("est", 1, None, [])]


def test_ineligible_jobs_keep_fifo_reasons_and_block_nobody():
    d = backfill.schedule(state(views(), [job(1, held="user"), job(2, begin_time=100), job(3)]), now=0)
    assert summary(d) == [("reason", 1, "JobHeldUser"), ("reason", 2, "BeginTime"), ("start", 3, ["n1"])]


def test_exclusive_job_is_not_planned_on_a_node_shared_by_a_reservation():
    nodes = views(2)
    run = [running(100, ["n1"], nodes, cpus=1, limit=10), running(101, ["n2"], nodes, cpus=4, limit=30)]
    # head: 3 CPUs on n1 from 600; the exclusive job must then wait for n2 (1800) rather than share n1.
    pending = [job(1, num_tasks=4, num_nodes_req=1, time_limit=60), job(2, exclusive=True, time_limit=5)]
    d = backfill.schedule(state(nodes, pending, run), now=0)
    assert ("est", 2, 1800, ["n2"]) in summary(d)


def test_impossible_job_does_not_make_a_possible_one_of_the_same_shape_look_impossible():
    nodes = views()
    run = [running(100, ["n1", "n2"], nodes, cpus=4, limit=10)]
    pending = [job(1, num_nodes_req=2, num_tasks=1), job(2, num_nodes_req=2, num_tasks=2, time_limit=20)]
    d = backfill.schedule(state(nodes, pending, run), now=0)
    # -N 2 with one task can never be placed; -N 2 with two tasks can, once the nodes free up.
    assert ("est", 2, 600, ["n1", "n2"]) in summary(d) and not any(x[:2] == ("est", 1) for x in summary(d))


def test_started_jobs_get_real_free_gpu_indices():
    nodes = views(1, gpus=2)
    run = [running(100, ["n1"], nodes, cpus=1, gpus=[0])]
    d = backfill.schedule(state(nodes, [job(1, gres="gpu:1")], run), now=0)
    assert d[0].allocation.gpus_per_node == {"n1": [1]}


def test_array_master_starts_tasks_then_gets_an_estimate_for_the_next():
    master = job(1, array_spec="0-3", array_pending=[0, 1, 2, 3], num_tasks=4)
    nodes = views()
    s = state(nodes, [master], [running(100, ["n1"], nodes, cpus=4, limit=10)])
    d = backfill.schedule(s, now=0)
    assert summary(d) == [("start", 1, ["n2"]), ("est", 1, 600, ["n1"]), ("reason", 1, "Resources")]


def test_plain_fifo_state_is_accepted():
    s = fifo.SchedState(nodes=views(), partitions=state(views(), []).partitions, pending=[job(1)],
                        expand_hostlist=hostlist.expand)
    assert summary(backfill.schedule(s, now=0)) == [("start", 1, ["n1"])]


def test_params_from_scheduler_parameters():
    assert backfill.params_from_scheduler_parameters({"bf_window": "2880", "bf_continue": True}) == {
        "bf_window": 2880}


# -- properties ----------------------------------------------------------------------------

def reference(nodes, run, pending, now, window=1440, res=60):
    """Brute force: every candidate time, every node, the whole window; no profiles, no caches."""
    def up(t):
        return t if t == math.inf or not res else math.ceil(t / res - 1e-9) * res
    live = _copy_views(nodes)  # for real GPU indices of jobs starting now
    base = {n: (v.free_cpus, v.free_memory, v.gpus - len(v.alloc_gpu_ids), v.busy_jobs) for n, v in nodes.items()}
    releases = []  # (node, t, cpus, mem, gpus): a running job gives its resources back at t
    for r in run:
        if r["time_limit"] is None:
            continue
        t = up(max(r["start_time"] + r["time_limit"] * 60, now))
        t = t if t > now else up(now + max(res, 1))
        releases += [(n, t, r["cpus_per_node"][n], r["mem_alloc_per_node"][n], len(r["gpus_per_node"][n]))
                     for n in r["nodes"]]
    holds = []  # (node, t0, t1, cpus, mem, gpus): started or planned jobs

    def free(n, t):
        c, m, g, b = base[n]
        for node, t1, dc, dm, dg in releases:
            if node == n and t >= t1:
                c, m, g, b = c + dc, m + dm, g + dg, b - 1
        for node, t0, t1, dc, dm, dg in holds:
            if node == n and t0 <= t < t1:
                c, m, g, b = c - dc, m - dm, g - dg, b + 1
        return c, m, g, b

    out = {}
    for j in pending:
        d = math.inf if j["time_limit"] is None else j["time_limit"] * 60
        ends = [r[1] for r in releases] + [h[2] for h in holds]
        for t in sorted({now} | {e for e in ends if now < e <= now + window * 60}):
            end = up(t + d)
            edges = [r[1] for r in releases] + [h[k] for h in holds for k in (1, 2)]
            points = {t} | {e for e in edges if t < e < end}
            vs = []
            for n in sorted(nodes):
                samples = [free(n, p) for p in points]
                c, m, g = (min(s[i] for s in samples) for i in range(3))
                b = max(s[3] for s in samples)
                v = live[n]
                ids = v.alloc_gpu_ids | set(v.free_gpu_ids()[g:]) if t == now else set(range(v.gpus - g))
                vs.append(NodeView(n, v.cpus, v.real_memory, v.gpus, v.features, v.cpus - c, v.real_memory - m,
                                   ids, v.usable, b))
            alloc = place(j, vs, expand_hostlist=hostlist.expand)
            if alloc is not None:
                holds += [(n, t, end, alloc.cpus_per_node[n], alloc.memory_per_node[n], len(alloc.gpus_per_node[n]))
                          for n in alloc.nodes]
                if t == now:
                    alloc.apply(live)
                out[j["job_id"]] = (t, alloc)
                break
    return out


node_counts = st.integers(1, 4)


@st.composite
def clusters(draw):
    n = draw(node_counts)
    cpus, mem, gpus = draw(st.sampled_from([2, 4, 8])), draw(st.sampled_from([1000, 4000])), draw(st.sampled_from([0, 2]))
    nodes = views(n, cpus, mem, gpus)
    run = []
    for i in range(draw(st.integers(0, 6))):
        name = f"n{draw(st.integers(1, n))}"
        v = nodes[name]
        if v.free_cpus < 1:
            continue
        c = draw(st.integers(1, v.free_cpus))
        m = draw(st.sampled_from([0, min(500, v.free_memory)]))
        g = v.free_gpu_ids()[:draw(st.integers(0, len(v.free_gpu_ids())))]
        limit = draw(st.one_of(st.none(), st.integers(1, 90)))
        run.append(running(900 + i, [name], nodes, cpus=c, mem=m, gpus=g, start=60 * draw(st.integers(0, 30)),
                           limit=limit))
    shapes = []
    for _ in range(draw(st.integers(1, 4))):
        exclusive = draw(st.booleans())
        shapes.append(dict(num_tasks=draw(st.integers(1, 8)), cpus_per_task=draw(st.integers(1, 2)),
                           num_nodes_req=draw(st.one_of(st.none(), st.integers(1, 3))),
                           mem_per_cpu=draw(st.sampled_from([None, 200])),
                           mem_per_node=draw(st.sampled_from([None, 300])),
                           gres=draw(st.sampled_from(["", "gpu:1"])), exclusive=exclusive,
                           time_limit=draw(st.one_of(st.none(), st.integers(1, 60)))))
    pending = [job(i, **draw(st.sampled_from(shapes))) for i in range(1, draw(st.integers(1, 10)) + 1)]
    return nodes, run, pending


def _copy_views(nodes):
    return {n: NodeView(v.name, v.cpus, v.real_memory, v.gpus, v.features, v.alloc_cpus, v.alloc_memory,
                        set(v.alloc_gpu_ids), v.usable, v.busy_jobs) for n, v in nodes.items()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_planner_agrees_with_brute_force(case):
    nodes, run, pending = case
    want = reference(_copy_views(nodes), run, pending, now=1800)
    d = backfill.schedule(state(_copy_views(nodes), pending, run), now=1800)
    got = {}
    for x in d:
        if isinstance(x, fifo.Start):
            got[x.job_id] = (1800, x.allocation)
        elif isinstance(x, backfill.Estimate):
            got[x.job_id] = (x.start_time, x.nodes)
    assert {k: (t, a.nodes if t > 1800 else a) for k, (t, a) in want.items()} == got


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_no_node_is_over_allocated_and_backfill_never_delays_the_top_job(case):
    nodes, run, pending = case
    live = _copy_views(nodes)
    d = backfill.schedule(state(live, pending, run), now=1800)
    for v in live.values():
        assert 0 <= v.alloc_cpus <= v.cpus and 0 <= v.alloc_memory <= v.real_memory
        assert v.alloc_gpu_ids <= set(range(v.gpus))
    estimates = [x for x in d if isinstance(x, backfill.Estimate)]
    if not estimates:
        return
    top = estimates[0]  # every job above it started now
    by_id = {j["job_id"]: j for j in pending}
    rank = [j["job_id"] for j in pending].index(top.job_id)

    def planned_start(started):
        base, extra = _copy_views(nodes), []
        for s in started:
            s.allocation.apply(base)
            extra.append({"nodes": s.allocation.nodes, "cpus_per_node": s.allocation.cpus_per_node,
                          "mem_alloc_per_node": s.allocation.memory_per_node,
                          "gpus_per_node": s.allocation.gpus_per_node, "start_time": 1800,
                          "time_limit": by_id[s.job_id]["time_limit"]})
        again = backfill.schedule(state(base, [dict(by_id[top.job_id])], run + extra), now=1800)
        return [x.start_time for x in again if isinstance(x, backfill.Estimate)]

    starts = [x for x in d if isinstance(x, fifo.Start)]
    above = [x for x in starts if [j["job_id"] for j in pending].index(x.job_id) < rank]
    assert planned_start(above) == [top.start_time]
    assert planned_start(starts) == [top.start_time]  # the backfilled jobs did not push it back
