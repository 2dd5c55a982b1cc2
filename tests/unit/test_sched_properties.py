"""Properties of the pure scheduler on random small clusters and queues (hypothesis).

Unlike the brute-force comparison in test_sched_backfill.py (one partition of
identical nodes), these clusters are heterogeneous: nodes differ in CPUs,
memory, GPUs and features, some are drained, partitions overlap and some are
down, jobs ask for constraints, node lists, exclusions, exclusive nodes and
array tasks. For every pass of the FIFO and the backfill policy:

* no node is over-allocated: the decisions' allocations, added to what running
  jobs hold, never exceed a node's CPUs or memory, never hand out a GPU index
  twice or one the node lacks, and an exclusive job never shares its node;
* each start is a valid placement of its job: nodes of its partition only,
  usable, carrying its features, not excluded, its required nodes included,
  the right node count, tasks, CPUs, memory and GPUs;
* backfill never delays the top-priority blocked job (Slurm's EASY guarantee):
  its planned start is the same whether the jobs started below it in this pass
  exist or not.
"""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_backend import hostlist
from batch_backend.sched import backfill, fifo
from batch_backend.sched.placement import NodeView, features_match, gpu_count

NOW = 1800
PROPS = settings(max_examples=int(os.environ.get("BATCHHUB_FUZZ_EXAMPLES", 400)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEATURES = ["a", "b", "gpu"]


# -- random clusters ------------------------------------------------------------------------
@st.composite
def clusters(draw):
    nodes = {}
    for i in range(1, draw(st.integers(1, 5)) + 1):
        name = f"n{i}"
        nodes[name] = NodeView(name, draw(st.sampled_from([1, 2, 4, 8])), draw(st.sampled_from([500, 1000, 4000])),
                               draw(st.sampled_from([0, 0, 1, 2])),
                               frozenset(draw(st.lists(st.sampled_from(FEATURES), unique=True, max_size=3))),
                               usable=draw(st.integers(0, 9)) > 0)
    names = sorted(nodes)
    partitions = {}
    for k in range(draw(st.integers(1, 3))):
        members = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        partitions[f"p{k}"] = {"name": f"p{k}", "nodes": members,
                               "state": draw(st.sampled_from(["UP", "UP", "UP", "DOWN"])),
                               "max_time": draw(st.sampled_from([None, None, 45])), "max_nodes": None, "min_nodes": 0}
    running = []
    for r in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(names))
        v = nodes[name]
        if v.free_cpus < 1 or not v.usable:
            continue
        cpus = draw(st.integers(1, v.free_cpus))
        mem = draw(st.sampled_from([0, min(300, v.free_memory)]))
        gpus = v.free_gpu_ids()[:draw(st.integers(0, len(v.free_gpu_ids())))]
        v.alloc_cpus += cpus
        v.alloc_memory += mem
        v.alloc_gpu_ids.update(gpus)
        v.busy_jobs += 1
        running.append({"job_id": 900 + r, "nodes": [name], "cpus_per_node": {name: cpus},
                        "mem_alloc_per_node": {name: mem}, "gpus_per_node": {name: list(gpus)},
                        "start_time": 60 * draw(st.integers(0, 30)),
                        "time_limit": draw(st.one_of(st.none(), st.integers(1, 90)))})
    pending = []
    for job_id in range(1, draw(st.integers(1, 10)) + 1):
        pname = draw(st.sampled_from(sorted(partitions)))
        members = partitions[pname]["nodes"]
        mem_kind = draw(st.sampled_from(["none", "node", "cpu"]))
        job = {
            "job_id": job_id, "partition": pname, "priority": 1000 - job_id, "reason": "None", "held": "",
            "num_tasks": draw(st.integers(1, 8)), "cpus_per_task": draw(st.integers(1, 2)),
            "num_nodes_req": draw(st.one_of(st.none(), st.integers(1, 3))),
            "ntasks_per_node": draw(st.one_of(st.none(), st.none(), st.integers(1, 4))),
            "mem_per_node": draw(st.sampled_from([100, 600])) if mem_kind == "node" else None,
            "mem_per_cpu": draw(st.sampled_from([100, 300])) if mem_kind == "cpu" else None,
            "gres": draw(st.sampled_from(["", "", "gpu:1", "gpu:2"])),
            "features": draw(st.sampled_from(["", "", "a", "b", "a&b", "a|gpu", "gpu"])),
            "nodelist_req": draw(st.sampled_from(["", "", "", draw(st.sampled_from(members))])),
            "exclude": draw(st.sampled_from(["", "", "", draw(st.sampled_from(names))])),
            "exclusive": draw(st.integers(0, 4)) == 0,
            "time_limit": draw(st.one_of(st.none(), st.integers(1, 60))),
        }
        if job["num_nodes_req"] and job["num_nodes_req"] > job["num_tasks"]:
            job["num_tasks"] = job["num_nodes_req"]
        if draw(st.integers(0, 9)) == 0:
            job["held"] = "user"
        if draw(st.integers(0, 6)) == 0:
            tasks = list(range(draw(st.integers(2, 4))))
            job.update(array_spec=f"0-{tasks[-1]}", array_pending=tasks,
                       array_max_running=draw(st.sampled_from([None, 1, 2])))
        pending.append(job)
    return nodes, partitions, running, pending


def copy_views(nodes):
    return {n: NodeView(v.name, v.cpus, v.real_memory, v.gpus, v.features, v.alloc_cpus, v.alloc_memory,
                        set(v.alloc_gpu_ids), v.usable, v.busy_jobs) for n, v in nodes.items()}


def fifo_state(nodes, partitions, pending):
    return fifo.SchedState(nodes=copy_views(nodes), partitions=partitions, pending=[dict(j) for j in pending],
                           expand_hostlist=hostlist.expand)


def backfill_state(nodes, partitions, pending, running):
    return backfill.BackfillState(nodes=copy_views(nodes), partitions=partitions,
                                  pending=[dict(j) for j in pending], running=list(running),
                                  expand_hostlist=hostlist.expand)


# -- the checks -----------------------------------------------------------------------------
def check_starts(nodes, partitions, pending, decisions):
    """Every Start is a valid placement and all of them together over-allocate nothing."""
    by_id = {j["job_id"]: j for j in pending}
    cpus = {n: v.alloc_cpus for n, v in nodes.items()}
    mem = {n: v.alloc_memory for n, v in nodes.items()}
    gpus = {n: set(v.alloc_gpu_ids) for n, v in nodes.items()}
    jobs_on = {n: v.busy_jobs for n, v in nodes.items()}
    exclusive_on = set()
    for d in decisions:
        if not isinstance(d, fifo.Start):
            continue
        job, a = by_id[d.job_id], d.allocation
        partition = partitions[job["partition"]]
        assert job["held"] == "" and partition["state"] == "UP", job
        assert a.nodes and len(set(a.nodes)) == len(a.nodes)
        if job["num_nodes_req"]:
            assert len(a.nodes) == job["num_nodes_req"], (job, a)
        if job["nodelist_req"]:
            assert set(hostlist.expand(job["nodelist_req"])) <= set(a.nodes), (job, a)
        assert sum(a.tasks_per_node.values()) == job["num_tasks"], (job, a)
        for n in a.nodes:
            v = nodes[n]
            assert n in partition["nodes"], f"job {d.job_id} started on {n}, outside partition {partition}"
            assert v.usable, f"job {d.job_id} started on unusable {n}"
            assert features_match(job["features"], v.features), f"job {d.job_id} on {n} lacking {job['features']}"
            assert n not in (hostlist.expand(job["exclude"]) if job["exclude"] else []), (job, a)
            tasks = a.tasks_per_node[n]
            assert tasks >= 1 and (not job["ntasks_per_node"] or tasks <= job["ntasks_per_node"]), (job, a)
            assert a.cpus_per_node[n] >= tasks * job["cpus_per_task"], (job, a)
            want_mem = job["mem_per_cpu"] * a.cpus_per_node[n] if job["mem_per_cpu"] else (job["mem_per_node"] or 0)
            assert a.memory_per_node[n] == want_mem, (job, a)
            granted = set(a.gpus_per_node.get(n, ()))
            assert len(granted) == gpu_count(job["gres"]), (job, a)
            assert granted <= set(range(v.gpus)), f"GPU ids {granted} on {n} with {v.gpus} GPUs"
            assert not granted & gpus[n], f"GPU {granted & gpus[n]} of {n} handed out twice"
            if job["exclusive"]:
                assert jobs_on[n] == 0, f"exclusive job {d.job_id} shares {n}"
            assert n not in exclusive_on, f"{n} is held exclusively, job {d.job_id} joined it"
            cpus[n] += a.cpus_per_node[n]
            mem[n] += a.memory_per_node[n]
            gpus[n] |= granted
            jobs_on[n] += 1
            if job["exclusive"]:
                exclusive_on.add(n)
            assert cpus[n] <= v.cpus, f"{n}: {cpus[n]} CPUs allocated of {v.cpus}"
            assert mem[n] <= v.real_memory, f"{n}: {mem[n]} MB allocated of {v.real_memory}"


def started_as_running(decisions, by_id):
    return [{"job_id": d.job_id, "nodes": list(d.allocation.nodes), "cpus_per_node": dict(d.allocation.cpus_per_node),
             "mem_alloc_per_node": dict(d.allocation.memory_per_node),
             "gpus_per_node": {n: list(g) for n, g in d.allocation.gpus_per_node.items()},
             "start_time": NOW, "time_limit": by_id[d.job_id]["time_limit"]}
            for d in decisions if isinstance(d, fifo.Start)]


def apply_starts(nodes, decisions):
    views = copy_views(nodes)
    for d in decisions:
        if isinstance(d, fifo.Start):
            d.allocation.apply(views)
    return views


# -- properties -------------------------------------------------------------------------------
@PROPS
@given(clusters())
def test_fifo_pass_never_over_allocates_and_places_validly(case):
    nodes, partitions, _, pending = case
    decisions = fifo.schedule(fifo_state(nodes, partitions, pending), NOW)
    check_starts(nodes, partitions, pending, decisions)


@PROPS
@given(clusters())
def test_backfill_pass_never_over_allocates_and_places_validly(case):
    nodes, partitions, running, pending = case
    decisions = backfill.schedule(backfill_state(nodes, partitions, pending, running), NOW)
    check_starts(nodes, partitions, pending, decisions)


@PROPS
@given(clusters())
def test_backfill_never_delays_the_top_priority_blocked_job(case):
    nodes, partitions, running, pending = case
    decisions = backfill.schedule(backfill_state(nodes, partitions, pending, running), NOW)
    by_id = {j["job_id"]: j for j in pending}
    order = [j["job_id"] for j in pending]
    estimates = [d for d in decisions if isinstance(d, backfill.Estimate) and d.start_time is not None]
    if not estimates:
        return
    top = min(estimates, key=lambda e: order.index(e.job_id))  # highest-priority job with a planned start
    if by_id[top.job_id].get("array_spec"):
        return  # an array master's own tasks start in the same pass; the plain case says what matters
    rank = order.index(top.job_id)
    starts = [d for d in decisions if isinstance(d, fifo.Start)]

    def planned_start(started):
        """The top job's planned start on the cluster as it would be with only ``started`` begun."""
        state = backfill_state(apply_starts(nodes, started), partitions, [by_id[top.job_id]],
                               running + started_as_running(started, by_id))
        return [d.start_time for d in backfill.schedule(state, NOW) if isinstance(d, backfill.Estimate)]

    without_backfill = planned_start([d for d in starts if order.index(d.job_id) < rank])
    with_backfill = planned_start(starts)
    assert without_backfill == [top.start_time], "the pass planned the top job differently from a replay"
    assert with_backfill == without_backfill, (
        f"jobs started below job {top.job_id} pushed its planned start from {without_backfill} to {with_backfill}")


@PROPS
@given(clusters())
def test_a_second_pass_starts_nothing_the_first_left_out_for_lack_of_room(case):
    """Idempotence: with the first pass's starts applied, a pass at the same instant starts nothing new."""
    nodes, partitions, running, pending = case
    decisions = backfill.schedule(backfill_state(nodes, partitions, pending, running), NOW)
    by_id = {j["job_id"]: j for j in pending}
    started = {d.job_id for d in decisions if isinstance(d, fifo.Start)}
    left = [j for j in pending if j["job_id"] not in started]
    if not left:
        return
    again = backfill.schedule(backfill_state(apply_starts(nodes, decisions), partitions, left,
                                             running + started_as_running(decisions, by_id)), NOW)
    assert not [d for d in again if isinstance(d, fifo.Start)]


# -- regressions found by the properties above ----------------------------------------------------
def _one_partition(nodes):
    return {"p0": {"name": "p0", "nodes": sorted(nodes), "state": "UP", "max_time": None, "max_nodes": None,
                   "min_nodes": 0}}


def _job(**kw):
    job = {"job_id": 1, "partition": "p0", "priority": 1, "reason": "None", "held": "", "num_tasks": 1,
           "cpus_per_task": 1, "num_nodes_req": None, "ntasks_per_node": None, "mem_per_node": None,
           "mem_per_cpu": None, "gres": "", "features": "", "nodelist_req": "", "exclude": "",
           "exclusive": False, "time_limit": 10}
    job.update(kw)
    return job


def test_exclusive_job_with_mem_per_cpu_needs_memory_for_every_cpu_of_the_node():
    """It is charged mem-per-cpu x all CPUs; 8 x 300 MB do not fit in 1000 MB, 2 x 300 MB in 4000 do."""
    nodes = {"n1": NodeView("n1", 8, 1000), "n2": NodeView("n2", 2, 4000)}
    job = _job(exclusive=True, mem_per_cpu=300)
    for policy, state in ((fifo, fifo_state(nodes, _one_partition(nodes), [job])),
                          (backfill, backfill_state(nodes, _one_partition(nodes), [job], []))):
        starts = [d for d in policy.schedule(state, NOW) if isinstance(d, fifo.Start)]
        assert [(s.allocation.nodes, s.allocation.memory_per_node) for s in starts] == [(["n2"], {"n2": 600})]


def test_required_node_lacking_the_features_is_not_silently_dropped():
    """--nodelist=n1 --constraint=a with n1 lacking 'a': no placement (it once ran on n2 instead)."""
    nodes = {"n1": NodeView("n1", 1, 500), "n2": NodeView("n2", 1, 500, 0, frozenset({"a"}))}
    for extra in ({"features": "a"}, {"exclude": "n1"}):
        job = _job(nodelist_req="n1", **extra)
        assert not [d for d in fifo.schedule(fifo_state(nodes, _one_partition(nodes), [job]), NOW)
                    if isinstance(d, fifo.Start)]
        assert not [d for d in backfill.schedule(backfill_state(nodes, _one_partition(nodes), [job], []), NOW)
                    if isinstance(d, fifo.Start)]
