"""Preemption decisions (sched/preemption.py) on hand-built states, exact expected victims."""

import pytest

from batch_backend import hostlist
from batch_backend.sched import preemption
from batch_backend.sched.placement import NodeView
from batch_backend.sched.preemption import Preempt, PreemptConfigError


def nodes(n=2, cpus=4, mem=1000):
    return {f"n{i}": NodeView(f"n{i}", cpus, mem, 0, frozenset()) for i in range(1, n + 1)}


def partitions(names=("low", "high"), n=2):
    return {name: {"name": name, "nodes": [f"n{i}" for i in range(1, n + 1)], "state": "UP"} for name in names}


def config(ptype="preempt/partition_prio", mode="REQUEUE", parts=None, qos=None, **options):
    parts = parts or [{"name": "low", "priority_tier": 1}, {"name": "high", "priority_tier": 10}]
    opts = {"PreemptType": ptype, "PreemptMode": mode}
    opts.update(options)
    return preemption.config_from_options(opts, parts, qos)


def pending(job_id, partition="high", tasks=4, **kw):
    j = {"job_id": job_id, "partition": partition, "num_tasks": tasks, "cpus_per_task": 1, "num_nodes_req": None,
         "gres": "", "features": "", "priority": 1000, "state": "PENDING", "reason": "Resources"}
    j.update(kw)
    return j


def running(job_id, node, cpus, partition="low", start=0.0, priority=100, **kw):
    j = {"job_id": job_id, "partition": partition, "state": "RUNNING", "nodes": [node],
         "cpus_per_node": {node: cpus}, "mem_alloc_per_node": {node: 0}, "gpus_per_node": {node: []},
         "start_time": start, "priority": priority}
    j.update(kw)
    return j


def state_for(views, running_jobs, pending_jobs, cfg, parts=None):
    for r in running_jobs:
        if r["state"] in ("RUNNING", "COMPLETING") or not r.get("cpus_released"):
            for n in r["nodes"]:
                views[n].alloc_cpus += r["cpus_per_node"][n]
                views[n].busy_jobs += 1
    return preemption.PreemptionState(nodes=views, partitions=parts or partitions(), pending=pending_jobs,
                                      running=running_jobs, config=cfg, expand_hostlist=hostlist.expand)


# -- configuration ---------------------------------------------------------------------------

def test_preempt_mode_parsing_accepts_gang_flag_and_rejects_nonsense():
    assert preemption.parse_preempt_mode("SUSPEND,GANG") == ("SUSPEND", True)
    assert preemption.parse_preempt_mode("gang") == ("OFF", True)
    assert preemption.parse_preempt_mode("") == ("OFF", False)
    with pytest.raises(PreemptConfigError):
        preemption.parse_preempt_mode("KILL")


def test_partition_preempt_mode_overrides_the_cluster_mode():
    cfg = config(parts=[{"name": "low", "priority_tier": 1, "preempt_mode": "CANCEL", "grace_time": 5},
                        {"name": "high", "priority_tier": 2}])
    assert preemption.candidate_mode({"partition": "low"}, cfg) == "CANCEL"
    assert preemption.candidate_mode({"partition": "high"}, cfg) == "REQUEUE"
    assert preemption.grace_time({"partition": "low"}, cfg) == 5


def test_unknown_preempt_type_is_refused():
    with pytest.raises(PreemptConfigError):
        config(ptype="preempt/magic")


def test_exempt_time_is_read_in_slurm_time_format():
    assert config(PreemptExemptTime="00:01:30").exempt_time == 90
    assert config(PreemptExemptTime="2").exempt_time == 120


# -- who may preempt whom ----------------------------------------------------------------------

def test_partition_prio_higher_tier_preempts_lower_only():
    cfg = config()
    assert preemption.can_preempt({"job_id": 1, "partition": "high"}, {"job_id": 2, "partition": "low"}, cfg)
    assert not preemption.can_preempt({"job_id": 1, "partition": "low"}, {"job_id": 2, "partition": "high"}, cfg)
    assert not preemption.can_preempt({"job_id": 1, "partition": "low"}, {"job_id": 2, "partition": "low"}, cfg)


def test_preempt_off_partition_is_never_preempted():
    cfg = config(parts=[{"name": "low", "priority_tier": 1, "preempt_mode": "OFF"}, {"name": "high", "priority_tier": 2}])
    assert not preemption.can_preempt({"job_id": 1, "partition": "high"}, {"job_id": 2, "partition": "low"}, cfg)


def test_preempt_none_preempts_nothing():
    cfg = config(ptype="preempt/none")
    assert not preemption.can_preempt({"job_id": 1, "partition": "high"}, {"job_id": 2, "partition": "low"}, cfg)


def test_qos_preemption_follows_the_preempt_list_and_the_victims_qos_mode():
    qos = {"urgent": {"priority": 100, "preempt": ["scavenger"]},
           "scavenger": {"priority": 0, "preempt": [], "preempt_mode": "CANCEL"},
           "normal": {"priority": 10, "preempt": []}}
    cfg = config(ptype="preempt/qos", qos=qos)
    urgent = {"job_id": 1, "partition": "low", "qos": "urgent"}
    assert preemption.can_preempt(urgent, {"job_id": 2, "partition": "low", "qos": "scavenger"}, cfg)
    assert not preemption.can_preempt(urgent, {"job_id": 3, "partition": "low", "qos": "normal"}, cfg)
    assert not preemption.can_preempt({"job_id": 4, "partition": "high", "qos": "normal"},
                                      {"job_id": 2, "partition": "low", "qos": "scavenger"}, cfg)
    assert preemption.candidate_mode({"partition": "low", "qos": "scavenger"}, cfg) == "CANCEL"
    assert preemption.candidate_mode({"partition": "low", "qos": "normal"}, cfg) == "REQUEUE"


def test_qos_preemption_with_an_empty_table_preempts_nothing():
    cfg = config(ptype="preempt/qos")
    assert not preemption.can_preempt({"job_id": 1, "partition": "high", "qos": "normal"},
                                      {"job_id": 2, "partition": "low", "qos": "normal"}, cfg)


# -- choosing victims ------------------------------------------------------------------------------

def test_one_victim_when_one_is_enough_the_lowest_priority_one():
    cfg = config()
    jobs = [running(10, "n1", 4, priority=50), running(11, "n2", 4, priority=40)]
    s = state_for(nodes(), jobs, [pending(1, tasks=4)], cfg)
    assert preemption.decide(s, now=100) == [Preempt(11, "REQUEUE", 1, 0)]


def test_among_equal_priorities_the_most_recently_started_goes_first():
    cfg = config()
    jobs = [running(10, "n1", 4, start=10), running(11, "n2", 4, start=20)]
    s = state_for(nodes(), jobs, [pending(1, tasks=4)], cfg)
    assert [d.job_id for d in preemption.decide(s, now=100)] == [11]


def test_victim_set_is_minimal_small_jobs_not_needed_are_spared():
    # n1: two 2-CPU jobs; n2: one 4-CPU job with the lowest priority. The 4-task job
    # needs one whole node: the lone job on n2 is the cheapest single victim.
    cfg = config()
    jobs = [running(10, "n1", 2, priority=30), running(11, "n1", 2, priority=30), running(12, "n2", 4, priority=10)]
    s = state_for(nodes(), jobs, [pending(1, tasks=4, num_nodes_req=1)], cfg)
    assert [d.job_id for d in preemption.decide(s, now=100)] == [12]


def test_victims_added_in_order_then_unneeded_ones_put_back():
    # order is 10 (lowest priority, on n1 with 2 CPUs), 11 (n2, 4 CPUs), 12 (n1, 2 CPUs).
    # Greedy takes 10 then 11 (n2 now empty: fits); 10 is then not needed any more.
    cfg = config()
    jobs = [running(10, "n1", 2, priority=1), running(11, "n2", 4, priority=2), running(12, "n1", 2, priority=3)]
    s = state_for(nodes(), jobs, [pending(1, tasks=4, num_nodes_req=1)], cfg)
    assert [d.job_id for d in preemption.decide(s, now=100)] == [11]


def test_victims_on_several_nodes_add_up_for_a_job_that_spreads():
    # the two cheapest victims sit on different nodes; together they free the 4 CPUs needed
    cfg = config()
    jobs = [running(10, "n1", 2, priority=1), running(11, "n2", 2, priority=2),
            running(12, "n1", 2, priority=9), running(13, "n2", 2, priority=9)]
    s = state_for(nodes(), jobs, [pending(1, tasks=4)], cfg)
    assert [d.job_id for d in preemption.decide(s, now=100)] == [10, 11]


def test_a_job_that_cannot_fit_even_with_every_victim_preempts_nothing():
    cfg = config()
    jobs = [running(10, "n1", 4)]
    s = state_for(nodes(), jobs, [pending(1, tasks=99)], cfg)
    assert preemption.decide(s, now=100) == []


def test_same_tier_jobs_are_not_victims():
    cfg = config()
    jobs = [running(10, "n1", 4, partition="high"), running(11, "n2", 4, partition="high")]
    s = state_for(nodes(), jobs, [pending(1, tasks=4)], cfg)
    assert preemption.decide(s, now=100) == []


def test_victims_already_leaving_for_a_job_are_not_doubled():
    cfg = config()
    leaving = running(10, "n1", 4, preempt={"mode": "REQUEUE", "by": 1})
    jobs = [leaving, running(11, "n2", 4)]
    s = state_for(nodes(), jobs, [pending(1, tasks=4)], cfg)
    assert preemption.decide(s, now=100) == []  # job 1 waits for job 10


def test_two_preemptors_never_count_on_the_same_victim():
    cfg = config()
    jobs = [running(10, "n1", 4, priority=1), running(11, "n2", 4, priority=2)]
    s = state_for(nodes(), jobs, [pending(1, tasks=4), pending(2, tasks=4)], cfg)
    assert [(d.job_id, d.preemptor_id) for d in preemption.decide(s, now=100)] == [(10, 1), (11, 2)]


def test_free_resources_are_used_before_preempting():
    # n2 has 2 free CPUs; the 2-task job would fit there without preemption, but the
    # main pass would have started it: a 6-task job needs only 4 more CPUs from n1's victims.
    cfg = config()
    jobs = [running(10, "n1", 2, priority=1), running(11, "n1", 2, priority=2), running(12, "n2", 2, priority=0)]
    s = state_for(nodes(), jobs, [pending(1, tasks=6)], cfg)
    victims = [d.job_id for d in preemption.decide(s, now=100)]
    assert len(victims) == 2 and 12 in victims  # two victims free 4 CPUs (2 were free): minimal


def test_grace_time_comes_from_the_victims_partition():
    cfg = config(mode="CANCEL", parts=[{"name": "low", "priority_tier": 1, "grace_time": 7},
                                       {"name": "high", "priority_tier": 2}])
    s = state_for(nodes(1), [running(10, "n1", 4)], [pending(1, tasks=4)], cfg, parts=partitions(n=1))
    assert preemption.decide(s, now=100) == [Preempt(10, "CANCEL", 1, 7)]


def test_suspend_mode_frees_cpus_but_not_memory():
    cfg = config(mode="SUSPEND")
    views = nodes(1, cpus=4, mem=1000)
    victim = running(10, "n1", 4, mem_alloc_per_node={"n1": 800})
    views["n1"].alloc_memory = 800
    s = state_for(views, [victim], [pending(1, tasks=4, mem_per_node=500)], cfg, parts=partitions(n=1))
    assert preemption.decide(s, now=100) == []  # 500 MB do not fit beside the suspended job's 800
    views = nodes(1, cpus=4, mem=1000)
    views["n1"].alloc_memory = 400
    victim["mem_alloc_per_node"] = {"n1": 400}
    s = state_for(views, [victim], [pending(1, tasks=4, mem_per_node=500)], cfg, parts=partitions(n=1))
    assert preemption.decide(s, now=100) == [Preempt(10, "SUSPEND", 1, 0)]


def test_exempt_time_protects_young_jobs():
    cfg = config(PreemptExemptTime="00:01:00")
    jobs = [running(10, "n1", 4, start=90)]
    s = state_for(nodes(1), jobs, [pending(1, tasks=4)], cfg, parts=partitions(n=1))
    assert preemption.decide(s, now=100) == []
    s = state_for(nodes(1), jobs, [pending(1, tasks=4)], cfg, parts=partitions(n=1))
    assert [d.job_id for d in preemption.decide(s, now=200)] == [10]


def test_suspended_time_does_not_count_as_run_time():
    job = running(10, "n1", 4, start=0, suspended_seconds=30)
    assert preemption.run_seconds(job, now=100) == 70
    job.update(state="SUSPENDED", suspend_time=80)
    assert preemption.run_seconds(job, now=100) == 50


# -- resuming -----------------------------------------------------------------------------------------

def test_suspended_victim_resumes_only_after_its_preemptor_is_gone_and_cpus_are_free():
    cfg = config(mode="SUSPEND")
    victim = running(10, "n1", 4, state="SUSPENDED", cpus_released=True, preempt={"mode": "SUSPEND", "by": 1},
                     suspend_time=50)
    views = nodes(1)
    views["n1"].alloc_cpus = 4  # the preemptor runs
    assert preemption.resumable([victim], views, lambda job_id: False, cfg) == []
    assert preemption.resumable([victim], views, lambda job_id: True, cfg) == []  # CPUs taken by someone
    views["n1"].alloc_cpus = 0
    assert preemption.resumable([victim], views, lambda job_id: True, cfg) == [10]


def test_resume_order_is_priority_then_who_waited_longest_and_respects_room():
    cfg = config(mode="SUSPEND")
    a = running(10, "n1", 4, state="SUSPENDED", cpus_released=True, priority=5, suspend_time=10)
    b = running(11, "n1", 4, state="SUSPENDED", cpus_released=True, priority=9, suspend_time=20)
    assert preemption.resumable([a, b], nodes(1), lambda j: True, cfg) == [11]
