"""Real resources of a node and the checks against slurm.conf."""

import os

from batch_backend.noded import proctree
from batch_backend.noded.resources import (check_node_resources, cpu_ids_for_node, detect_real_resources,
                                           pick_cpu_ids)


def test_detect_real_resources():
    real = detect_real_resources(detect_gpus=lambda: [0, 1])
    assert real["cpus"] == len(os.sched_getaffinity(0))
    assert real["memory_mb"] > 0
    assert real["gpus"] == [0, 1]


def test_check_node_resources():
    real = {"cpus": 2, "memory_mb": 4000, "gpus": []}
    assert check_node_resources({"cpus": 2, "real_memory": 4000, "gres": ""}, real) is None
    assert check_node_resources({"cpus": 1, "real_memory": 1, "gres": None}, real) is None
    assert check_node_resources({"cpus": 4}, real) == "Low socket*core*thread count, Low CPUs"
    assert check_node_resources({"real_memory": 8000}, real) == \
        "Low RealMemory (reported:4000 < 100.00% of configured:8000)"
    assert check_node_resources({"gres": "gpu:tesla:2"}, real) == \
        "gres/gpu count reported lower than configured (0 < 2)"
    assert check_node_resources({"cpus": 4, "real_memory": 8000, "gres": "gpu:2"}, real) == (
        "Low socket*core*thread count, Low CPUs, "
        "Low RealMemory (reported:4000 < 100.00% of configured:8000), "
        "gres/gpu count reported lower than configured (0 < 2)")
    assert check_node_resources({"cpus": 64, "real_memory": 10 ** 6, "gres": "gpu:8"}, real,
                                config_overrides=True) is None
    assert check_node_resources({"gres": "gpu:2"}, dict(real, gpus=[0, 1])) is None


def test_cpu_ids_for_node_wraps_round():
    host = [0, 1, 2, 3, 4, 5]
    assert cpu_ids_for_node(0, 4, host) == [0, 1, 2, 3]
    assert cpu_ids_for_node(1, 4, host) == [4, 5, 0, 1]
    assert cpu_ids_for_node(2, 2, [3, 1]) == [1, 3]
    assert cpu_ids_for_node(0, 4, []) == []


def test_pick_cpu_ids():
    node = [4, 5, 0, 1]
    assert pick_cpu_ids(node, [0, 1]) == [4, 5]
    assert pick_cpu_ids(node, [1, 2, 3]) == [0, 1, 5]
    assert pick_cpu_ids([0, 1, 0, 1], [0, 1, 2, 3]) == [0, 1]  # oversubscribed: no duplicates
    assert pick_cpu_ids([], [0]) == []
    assert pick_cpu_ids(node, []) == []


def test_proctree_scan_sees_this_process():
    procs = proctree.scan()
    me = procs[os.getpid()]
    assert me.ppid == os.getppid() and me.pgid == os.getpgid(0) and me.sid == os.getsid(0)
    assert me.rss > 1024 * 1024 and not me.zombie
    assert proctree.scan(max_age=60) is proctree.scan(max_age=60)


def test_proctree_job_members_walks_and_remembers():
    P = proctree.Proc
    procs = {
        1: P(1, 0, 1, 1, "S", 1, 0),
        100: P(100, 1, 100, 100, "S", 10, 4096),          # the batch shell
        101: P(101, 100, 100, 100, "S", 11, 4096),        # child
        102: P(102, 101, 102, 102, "S", 12, 4096),        # grandchild that setsid()ed
        103: P(103, 1, 100, 100, "S", 13, 4096),          # orphan still in the session
        104: P(104, 100, 100, 100, "Z", 14, 0),           # zombie: not a member
        200: P(200, 1, 200, 200, "S", 20, 4096),          # someone else
    }
    known = {}
    assert set(proctree.job_members(procs, 100, 100, known)) == {100, 101, 102, 103}
    assert known == {100: 10, 101: 11, 102: 12, 103: 13}
    # 101 died: 102 (now a child of init, own session) is still found through the memory
    del procs[101]
    procs[102] = procs[102]._replace(ppid=1)
    assert set(proctree.job_members(procs, 100, 100, known)) == {100, 102, 103}
    # pid 102 reused by another process (other start time): forgotten, not ours
    procs[102] = procs[102]._replace(start=99)
    assert set(proctree.job_members(procs, 100, 100, known)) == {100, 103}
    assert 102 not in known


def test_signal_number():
    import signal
    assert proctree.signal_number("USR2") == signal.SIGUSR2
    assert proctree.signal_number("sigterm") == signal.SIGTERM
    assert proctree.signal_number("10") == 10
