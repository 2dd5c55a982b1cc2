"""Profile.copy and Profile.gain_times: what the planner's shared, never-changed profiles rely on."""

from batch_backend.sched.availability import INF, Profile
from batch_backend.sched.placement import NodeView


def busy_node():
    view = NodeView("n1", 16, 1000, 2, alloc_cpus=10, alloc_memory=600, alloc_gpu_ids={0}, busy_jobs=2)
    # two running jobs give back (4 CPUs, 200 MB) at 120 and (6 CPUs, 400 MB, 1 GPU) at 300
    return Profile(view, 0, [(120, 4, 200, 0), (300, 6, 400, 1)])


def series(p):
    return p.times, p.cpus, p.mem, p.gpus, p.busy


def test_a_reservation_on_a_copy_leaves_the_original_alone():
    original = busy_node()
    before = tuple(list(s) for s in series(original))
    gains = original.gain_times()
    copy = original.copy()
    copy.reserve(60, 200, 2, 50, 0)
    assert series(original) == before
    assert original.gain_times() == gains == [120, 300]
    assert copy.times == [0, 60, 120, 200, 300]
    assert copy.cpus == [6, 4, 8, 10, 16]
    assert copy.busy == [2, 3, 2, 1, 0]


def test_gain_times_are_where_resources_come_back():
    p = busy_node()
    assert p.gain_times() == [120, 300]
    p.reserve(60, 200, 2, 0, 0)  # a reservation's start is a loss, its end a gain
    assert p.gain_times() == [120, 200, 300]
    p.reserve(400, INF, 16, 1000, 2)  # held forever: no gain at its start
    assert p.gain_times() == [120, 200, 300]
