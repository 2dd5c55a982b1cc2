"""The scheduling policy as a pure function of (state, now)."""

from batch_backend import hostlist
from batch_backend.sched import fifo
from batch_backend.sched.placement import NodeView, place


def views(n=2, cpus=4, mem=1000, gpus=0):
    return {f"n{i}": NodeView(f"n{i}", cpus, mem, gpus, frozenset({"cpu"})) for i in range(1, n + 1)}


def job(job_id, **kw):
    j = {"job_id": job_id, "partition": "p", "num_tasks": 1, "cpus_per_task": 1, "num_nodes_req": None,
         "reason": "None", "time_limit": 10, "gres": "", "features": "", "held": "", "priority": 100 - job_id}
    j.update(kw)
    return j


def state(nodes, pending, **part):
    p = {"name": "p", "nodes": sorted(nodes), "state": "UP", "max_time": None, "max_nodes": None, "min_nodes": 0}
    p.update(part)
    return fifo.SchedState(nodes=nodes, partitions={"p": p}, pending=pending, expand_hostlist=hostlist.expand)


def test_starts_jobs_that_fit_in_order():
    d = fifo.schedule(state(views(), [job(1, num_tasks=4), job(2, num_tasks=4)]), now=0)
    assert [(x.job_id, x.allocation.nodes) for x in d] == [(1, ["n1"]), (2, ["n2"])]


def test_head_job_that_does_not_fit_blocks_its_partition():
    nodes = views()
    nodes["n1"].alloc_cpus = 3
    s = state(nodes, [job(1, num_tasks=8), job(2)])
    d = fifo.schedule(s, now=0)
    # job 2 would fit on n2, but starting it could delay job 1: it waits (no backfill here)
    assert [(type(x).__name__, x.job_id, getattr(x, "reason", None)) for x in d] == [("SetReason", 1, "Resources")]
    assert s.blocked == {"p"}


def test_blocked_partition_does_not_block_another_partition():
    nodes = views(3)
    p2 = {"name": "q", "nodes": ["n3"], "state": "UP", "max_time": None, "max_nodes": None, "min_nodes": 0}
    s = state(nodes, [job(1, num_tasks=99, num_nodes_req=None), job(2, partition="q"), job(3)])
    s.partitions["p"]["nodes"] = ["n1", "n2"]
    s.partitions["q"] = p2
    d = fifo.schedule(s, now=0)
    assert [(type(x).__name__, x.job_id) for x in d] == [("SetReason", 1), ("Start", 2), ("SetReason", 3)]
    assert d[2].reason == "Priority"


def test_held_and_future_jobs_do_not_block_others():
    d = fifo.schedule(state(views(), [job(1, held="user"), job(2, begin_time=100), job(3)]), now=0)
    assert [(x.job_id, getattr(x, "reason", "start")) for x in d] == [(1, "JobHeldUser"), (2, "BeginTime"), (3, "start")]


def test_partition_time_limit_reason():
    d = fifo.schedule(state(views(), [job(1, time_limit=120)], max_time=60), now=0)
    assert d[0].reason == "PartitionTimeLimit"


def test_exact_node_count_spreads_tasks_block_wise():
    alloc = place(job(1, num_tasks=3, num_nodes_req=2), list(views().values()), expand_hostlist=hostlist.expand)
    assert alloc.nodes == ["n1", "n2"]
    assert alloc.tasks_per_node == {"n1": 2, "n2": 1}


def test_memory_and_gpus_are_consumable():
    nodes = views(gpus=2)
    d = fifo.schedule(state(nodes, [job(1, mem_per_node=800, gres="gpu:2"), job(2, mem_per_node=800, gres="gpu:1"),
                                    job(3, mem_per_node=800)]), now=0)
    starts = [x for x in d if isinstance(x, fifo.Start)]
    assert [(s.job_id, s.allocation.nodes, s.allocation.gpus_per_node) for s in starts] == [
        (1, ["n1"], {"n1": [0, 1]}), (2, ["n2"], {"n2": [0]})]
    assert [x.reason for x in d if isinstance(x, fifo.SetReason)] == ["Resources"]


def test_features_and_exclusion():
    nodes = views(3)
    nodes["n3"].features = frozenset({"gpu"})
    assert place(job(1, features="gpu"), list(nodes.values()), expand_hostlist=hostlist.expand).nodes == ["n3"]
    assert place(job(1, exclude="n[1-2]"), list(nodes.values()), expand_hostlist=hostlist.expand).nodes == ["n3"]
    assert place(job(1, features="tpu"), list(nodes.values()), expand_hostlist=hostlist.expand) is None


def test_array_master_starts_as_many_tasks_as_fit_within_its_throttle():
    master = job(1, array_spec="0-5%3", array_pending=[0, 1, 2, 3, 4, 5], array_max_running=3)
    d = fifo.schedule(state(views(), [master]), now=0)
    assert [type(x).__name__ for x in d] == ["Start", "Start", "Start", "SetReason"]
    assert d[-1].reason == "JobArrayTaskLimit"


def test_unusable_nodes_are_skipped():
    nodes = views()
    nodes["n1"].usable = False
    d = fifo.schedule(state(nodes, [job(1)]), now=0)
    assert d[0].allocation.nodes == ["n2"]
