"""Gang scheduling (sched/gang.py): oversubscription and time-slice rotation on an injected clock."""

from batch_backend.sched import gang
from batch_backend.sched.placement import NodeView


def job(job_id, cpus, node="n1", state="RUNNING", start=0.0, **kw):
    j = {"job_id": job_id, "state": state, "nodes": [node], "cpus_per_node": {node: cpus}, "start_time": start,
         "gang_active_since": start}
    j.update(kw)
    return j


def apply(jobs, decisions, now):
    """What the controller does with the decisions (the parts the ring reads)."""
    by_id = {j["job_id"]: j for j in jobs}
    for d in decisions:
        j = by_id[d.job_id]
        if isinstance(d, gang.Suspend):
            j.update(state="SUSPENDED", suspend_time=now)
        else:
            j.update(state="RUNNING", suspend_time=None, gang_active_since=now)


def running_ids(jobs):
    return sorted(j["job_id"] for j in jobs if j["state"] == "RUNNING")


def test_oversubscribe_values():
    assert gang.oversubscribe_jobs("FORCE:3") == 3
    assert gang.oversubscribe_jobs("force") == gang.DEFAULT_FORCE_JOBS == 4
    assert gang.oversubscribe_jobs("YES:4") == 1
    assert gang.oversubscribe_jobs("NO") == 1
    assert gang.oversubscribe_jobs(None) == 1
    parts = {"a": {"over_subscribe": "FORCE:2"}, "b": {"over_subscribe": "NO"}}
    assert gang.gang_partitions(parts) == {"a": 2}


def test_admission_views_scale_cpus_only():
    v = {"n1": NodeView("n1", 4, 1000, 0, frozenset(), alloc_cpus=4, alloc_memory=100)}
    scaled = gang.admission_views(v, 2)
    assert scaled["n1"].free_cpus == 4 and scaled["n1"].free_memory == 900
    assert v["n1"].free_cpus == 0  # the original is untouched


def test_between_rotations_running_jobs_keep_running_and_a_newcomer_waits():
    jobs = [job(1, 4, start=0), job(2, 4, start=5)]  # job 2 just admitted on the same 4 CPUs
    assert gang.timeslice(jobs, {"n1": 4}) == [gang.Suspend(2)]


def test_waiting_jobs_fill_free_cpus_without_a_rotation():
    jobs = [job(1, 2), job(2, 2, state="SUSPENDED", suspend_time=3)]
    assert gang.timeslice(jobs, {"n1": 4}) == [gang.Resume(2)]


def test_two_jobs_alternate_every_time_slice():
    jobs = [job(1, 4, start=0), job(2, 4, start=0)]
    clock = 0.0
    apply(jobs, gang.timeslice(jobs, {"n1": 4}), clock)
    seen = [running_ids(jobs)]
    last = clock
    for _ in range(6):
        clock += 1.0
        if gang.due(last, clock, time_slice=2):
            last = clock
            apply(jobs, gang.timeslice(jobs, {"n1": 4}, rotate=True), clock)
        seen.append(running_ids(jobs))
    assert seen == [[1], [1], [2], [2], [1], [1], [2]]


def test_three_jobs_on_two_slots_each_gets_turns_in_order():
    jobs = [job(1, 2), job(2, 2), job(3, 2)]
    apply(jobs, gang.timeslice(jobs, {"n1": 4}), 0)
    turns = [running_ids(jobs)]
    for t in range(1, 4):
        apply(jobs, gang.timeslice(jobs, {"n1": 4}, rotate=True), t)
        turns.append(running_ids(jobs))
    assert turns[0] == [1, 2]
    assert turns[1] == [2, 3] or turns[1] == [1, 3]
    assert all(len(t) == 2 for t in turns)
    # nobody waits two slices in a row
    for before, after in zip(turns, turns[1:]):
        assert {1, 2, 3} - set(before) <= set(after)


def test_higher_tier_always_runs():
    jobs = [job(1, 4), job(2, 4, state="SUSPENDED", suspend_time=1)]
    tiers = {1: 1, 2: 5}
    assert gang.timeslice(jobs, {"n1": 4}, tiers) == [gang.Suspend(1), gang.Resume(2)]
    apply(jobs, gang.timeslice(jobs, {"n1": 4}, tiers), 2)
    assert gang.timeslice(jobs, {"n1": 4}, tiers, rotate=True) == []  # the low-tier job gets no turn


def test_capacity_left_by_other_jobs_is_respected():
    jobs = [job(1, 2), job(2, 2, state="SUSPENDED", suspend_time=1)]
    assert gang.timeslice(jobs, {"n1": 2}, rotate=True) == [gang.Suspend(1), gang.Resume(2)]
    assert gang.timeslice(jobs, {"n1": 0}) == [gang.Suspend(1)]


def test_due():
    assert gang.due(None, 0, 30)
    assert not gang.due(10, 39, 30)
    assert gang.due(10, 40, 30)
