"""The planner's two sweeps (node groups, single nodes) must make the same decisions.

:class:`~batch_backend.sched.planner.Planner` hands a pass to the per-node
:class:`~batch_backend.sched.node_planner.NodePlanner` when nodes hardly share
profiles; which one runs is a matter of speed only. Each test forces both and
compares every decision (starts with their allocations, estimates, reasons).
"""

import copy
import random

import pytest

from batch_backend import hostlist
from batch_backend.sched import backfill, fifo
from batch_backend.sched.placement import NodeView
from batch_backend.sched.planner import Planner
from batch_backend.sim.lublin import generate
from batch_backend.sim.simulator import Simulator, jobs_from_swf


def decisions_as_tuples(decisions):
    out = []
    for d in decisions:
        if isinstance(d, fifo.Start):
            a = d.allocation
            out.append(("start", d.job_id, a.nodes, a.tasks_per_node, a.cpus_per_node, a.memory_per_node,
                        a.gpus_per_node))
        elif isinstance(d, backfill.Estimate):
            out.append(("est", d.job_id, d.start_time, d.nodes))
        else:
            out.append(("reason", d.job_id, d.reason))
    return out


def busy_cluster(seed, n_nodes=24, n_pending=300, wide_running=False, windows=False):
    """Nodes running their own jobs (or, with ``wide_running``, a few wide ones) and a mixed queue."""
    rng = random.Random(seed)
    views = {f"n{i:02d}": NodeView(f"n{i:02d}", 8, 16000, 2 if i % 4 == 0 else 0) for i in range(n_nodes)}
    names = sorted(views)
    running, jid = [], 1
    groups = [names[i:i + 6] for i in range(0, n_nodes, 6)] if wide_running else [[n] for n in names]
    for nodes in groups:
        left = 8
        while left:
            c = min(left, rng.choice((1, 2, 4, 8)))
            limit = rng.choice((10, 30, 60, 120))
            for n in nodes:
                views[n].alloc_cpus += c
                views[n].alloc_memory += c * 1000
                views[n].busy_jobs += 1
            running.append({"job_id": jid, "nodes": list(nodes), "cpus_per_node": dict.fromkeys(nodes, c),
                            "mem_alloc_per_node": dict.fromkeys(nodes, c * 1000), "gpus_per_node": {},
                            "start_time": 0, "time_limit": limit})
            jid += 1
            left -= c
    pending = []
    for i in range(n_pending):
        u = rng.random()
        job = {"job_id": 1000 + i, "partition": "p", "num_tasks": rng.choice((1, 2, 4, 8, 16)), "cpus_per_task": 1,
               "num_nodes_req": None, "mem_per_cpu": rng.choice((0, 1000, 3000)), "time_limit": rng.choice((5, 30, 90)),
               "gres": "", "features": "", "held": "", "reason": "Priority", "priority": n_pending - i,
               "submit_time": i, "start_estimated": False}
        if u < 0.15:
            k = rng.choice((2, 3))
            job.update(num_nodes_req=k, num_tasks=k * rng.choice((1, 4)))
        elif u < 0.2:
            job.update(exclusive=True)
        elif u < 0.25:
            job.update(gres="gpu:1")
        elif u < 0.3:
            job.update(nodelist_req=rng.choice(names))
        pending.append(job)
    part = {"name": "p", "nodes": names, "state": "UP", "max_time": None, "max_nodes": None, "min_nodes": 0}
    extra = {"reserved_windows": {names[1]: [(600.0, 3000.0, False)]}} if windows else {}
    return backfill.BackfillState(nodes=views, partitions={"p": part}, pending=pending, running=running,
                                  expand_hostlist=hostlist.expand, **extra)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", ["own jobs", "wide jobs", "reservation"])
def test_both_sweeps_decide_alike_on_a_busy_cluster(seed, shape, monkeypatch):
    def run(per_node):
        monkeypatch.setattr(Planner, "_per_node", lambda self: per_node)
        st = busy_cluster(seed, wide_running=shape == "wide jobs", windows=shape == "reservation")
        return decisions_as_tuples(backfill.schedule(copy.deepcopy(st), now=0.0))

    by_groups, by_nodes = run(False), run(True)
    assert any(d[0] == "est" for d in by_groups)  # the queue waits: the sweeps were exercised
    assert by_groups == by_nodes


def test_both_sweeps_replay_a_workload_alike(monkeypatch):
    records = generate(250, procs=16 * 8, seed=5, load=0.8)
    runs = []
    for per_node in (False, True):
        monkeypatch.setattr(Planner, "_per_node", lambda self, v=per_node: v)
        jobs, _ = jobs_from_swf(records, 16 * 8)
        sim = Simulator(jobs, nodes=16, cpus=8, policy="backfill", bf_interval=30)
        sim.run()
        runs.append([(j["job_id"], j["start_time"], tuple(j["nodes"])) for j in sim.jobs])
    assert runs[0] == runs[1]


def test_nodes_running_their_own_jobs_get_the_per_node_sweep():
    planner = Planner(busy_cluster(1), now=0.0)
    planner._index()
    assert planner.by_node is not None


def test_nodes_sharing_wide_jobs_keep_the_group_sweep():
    planner = Planner(busy_cluster(1, wide_running=True), now=0.0)
    planner._index()
    assert planner.by_node is None


def _with_free_room(state, seed):
    """``state`` with about a third of its running jobs ended, so that some pending jobs can start."""
    rng = random.Random(seed)
    for job in list(state.running):
        if rng.random() < 0.35:
            state.running.remove(job)
            for n in job["nodes"]:
                v = state.nodes[n]
                v.alloc_cpus -= job["cpus_per_node"][n]
                v.alloc_memory -= job["mem_alloc_per_node"][n]
                v.busy_jobs -= 1
    return state


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", ["own jobs", "wide jobs", "reservation"])
def test_a_starts_only_pass_starts_what_a_full_pass_starts(seed, shape):
    base = _with_free_room(busy_cluster(seed, wide_running=shape == "wide jobs", windows=shape == "reservation"),
                           seed)

    def starts(estimates):
        st = copy.deepcopy(base)
        st.estimates = estimates
        return [d for d in decisions_as_tuples(backfill.schedule(st, now=0.0)) if d[0] == "start"]

    full = starts(True)
    assert full and len(full) < len(base.pending)  # some start, some wait behind planned jobs
    assert starts(False) == full


@pytest.mark.parametrize("per_node", [False, True])
def test_a_replay_starts_the_same_jobs_whether_passes_plan_in_full_or_only_for_starts(per_node, monkeypatch):
    monkeypatch.setattr(Planner, "_per_node", lambda self: per_node)
    records = generate(400, procs=16 * 8, seed=7, load=0.9)
    runs = []
    for estimates in (True, False):
        jobs, _ = jobs_from_swf(records, 16 * 8)
        sim = Simulator(jobs, nodes=16, cpus=8, policy="backfill", bf_interval=30, estimates=estimates)
        sim.run()
        runs.append([(j["job_id"], j["start_time"], tuple(j["nodes"])) for j in sim.jobs])
    assert runs[0] == runs[1]
