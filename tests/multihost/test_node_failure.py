"""Node failure and network partitions across hosts (network namespaces, SlurmdTimeout=5).

ReturnToService=0 (Slurm's default): a node the controller declared dead stays
DOWN ("Not responding") after its daemon returns, until an admin resumes it.
"""

import os
import signal
import time
import uuid

NETNS_CONF = "ReturnToService=0\n"


def sleeper(marker, first_run_sleeps=True):
    """A batch script: logs each run (restart count, host), the first run sleeps under ``marker``."""
    return (f"#!/bin/bash\necho \"run ${{SLURM_RESTART_COUNT:-0}} on $(hostname)\"\n"
            f"if [ \"${{SLURM_RESTART_COUNT:-0}}\" = 0 ]; then exec -a {marker} sleep 300; fi\n"
            if first_run_sleeps else f"#!/bin/bash\necho start $(hostname)\nexec -a {marker} sleep 300\n")


def submit_on(c, node, *args, input):
    """Submit a job that starts on ``node``, without pinning it there (the other nodes are kept busy)."""
    others = [n for n in c.node_names if n != node]
    blockers = [c.sbatch("-w", n, "-c2", "-o", "/dev/null", "--wrap=sleep 300") for n in others]
    for b in blockers:
        c.wait_state(b, "RUNNING")
    job = c.sbatch(*args, input=input)
    try:
        c.wait_state(job, "RUNNING")
        assert c.job(job)["NodeList"] == node
    finally:
        c.run("scancel", *map(str, blockers))
    for b in blockers:
        c.wait_state(b, "CANCELLED")
    return job


def wait_for(check, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(what)


def resume(c, node):
    r = c.run("scontrol", "update", f"nodename={node}", "state=resume")
    assert r.returncode == 0, r.stderr
    c.wait_nodes([node], ("idle",))


def test_killed_node_daemon(netns_cluster):
    """kill -9 of n2's daemon: NODE_FAIL, --requeue runs elsewhere, leftovers die when it returns, resume."""
    c = netns_cluster
    marker = f"mh-kill-{uuid.uuid4().hex[:8]}"
    requeued = submit_on(c, "n2", "--requeue", "-o", c.path("requeued.out"), input=sleeper(marker))
    plain = c.sbatch("-w", "n2", "-o", c.path("plain.out"), input=sleeper(marker, first_run_sleeps=False))
    c.wait_state(plain, "RUNNING")
    wait_for(lambda: len(c.processes("n2", marker)) == 2, "both jobs' processes run on n2")
    os.kill(c.procs.pop("n2").pid, signal.SIGKILL)

    assert c.wait_state(plain, "NODE_FAIL", timeout=20) == "NODE_FAIL"
    assert c.node_states()["n2"] == "down*"
    node = c.node("n2")
    assert node["State"] == "DOWN+NOT_RESPONDING" and node["Reason"].startswith("Not responding [slurm@"), node
    # the --requeue job starts again on another node and completes there
    assert c.wait_state(requeued, "COMPLETED", timeout=30) == "COMPLETED"
    with open(c.path("requeued.out")) as f:
        runs = f.read().splitlines()
    assert runs[0] == "run 0 on n2" and runs[1] in ("run 1 on n1", "run 1 on n3") and len(runs) == 2, runs
    # a dead daemon's jobs run on, orphaned, until the node's next daemon cleans up
    assert len(c.processes("n2", marker)) == 2
    c.start_node("n2")
    wait_for(lambda: not c.processes("n2", marker), "leftover processes killed by n2's new daemon")
    c.wait_nodes(["n2"], ("down",))  # registered again, but DOWN until an admin says otherwise
    assert c.state(plain) == "NODE_FAIL" and c.state(requeued) == "COMPLETED"
    resume(c, "n2")
    again = c.sbatch("-w", "n2", "-o", c.path("again.out"), "--wrap=hostname")
    assert c.wait_state(again, "COMPLETED") == "COMPLETED"
    with open(c.path("again.out")) as f:
        assert f.read() == "n2\n"


def test_partition_longer_than_slurmd_timeout(netns_cluster):
    """n3 cut off: jobs fail/requeue on the controller's side; when the link returns, n3's stale copies die."""
    c = netns_cluster
    marker = f"mh-cut-{uuid.uuid4().hex[:8]}"
    requeued = submit_on(c, "n3", "--requeue", "-o", c.path("cut-requeued.out"), input=sleeper(marker))
    plain = c.sbatch("-w", "n3", "-o", c.path("cut-plain.out"), input=sleeper(marker, first_run_sleeps=False))
    c.wait_state(plain, "RUNNING")
    wait_for(lambda: len(c.processes("n3", marker)) == 2, "both jobs' processes run on n3")
    c.cut("n3")
    try:
        assert c.wait_state(plain, "NODE_FAIL", timeout=20) == "NODE_FAIL"
        assert c.node_states()["n3"] == "down*"
        assert c.wait_state(requeued, "COMPLETED", timeout=30) == "COMPLETED"
        # the partitioned node cannot know yet: its copies still run
        assert len(c.processes("n3", marker)) == 2
    finally:
        c.restore("n3")
    # the node re-registers, is told its jobs are stale, and kills them
    wait_for(lambda: not c.processes("n3", marker), "stale jobs killed on n3 after the link returned", timeout=30)
    c.wait_nodes(["n3"], ("down",))
    time.sleep(1)  # the stale runs' end reports reach the controller: they change nothing
    assert c.state(plain) == "NODE_FAIL" and c.state(requeued) == "COMPLETED"
    with open(c.path("cut-requeued.out")) as f:
        runs = f.read().splitlines()
    assert runs[0] == "run 0 on n3" and runs[1] in ("run 1 on n1", "run 1 on n2") and len(runs) == 2, runs
    assert c.job(requeued)["Restarts"] == "1"  # one requeue: the stale run never counted as a run
    resume(c, "n3")


def test_short_partition_changes_nothing(netns_cluster):
    """A link down for less than SlurmdTimeout: the job runs on and completes, the node stays up."""
    c = netns_cluster
    job = c.sbatch("-w", "n1", "-o", c.path("short.out"), "--wrap=sleep 4; echo done $(hostname)")
    c.wait_state(job, "RUNNING")
    c.cut("n1")
    time.sleep(1.0)
    c.restore("n1")
    assert c.wait_state(job, ("COMPLETED", "NODE_FAIL"), timeout=30) == "COMPLETED"
    with open(c.path("short.out")) as f:
        assert f.read() == "done n1\n"
    assert c.node_states()["n1"] in ("idle", "mix")


def test_partition_of_one_node_of_a_multi_node_job(netns_cluster):
    """A 2-node job loses n3: the whole job ends NODE_FAIL, its batch script and step on n1 are killed at
    once, and the step task n3 kept running through the partition dies when n3 is back."""
    c = netns_cluster
    marker = f"mh-step-{uuid.uuid4().hex[:8]}"
    job = c.sbatch("-w", "n1,n3", "-N2", "-o", c.path("step.out"),
                   input=f"#!/bin/bash\nsrun -N2 bash -c 'exec -a {marker} sleep 300'\n")
    c.wait_state(job, "RUNNING")
    wait_for(lambda: c.processes("n1", marker) and c.processes("n3", marker), "the step's tasks run on n1 and n3")
    c.cut("n3")
    try:
        assert c.wait_state(job, "NODE_FAIL", timeout=20) == "NODE_FAIL"
        wait_for(lambda: not c.processes("n1", marker), "the step's task on the healthy node n1 killed")
        assert c.processes("n3", marker)  # the partitioned node cannot know yet
    finally:
        c.restore("n3")
    wait_for(lambda: not c.processes("n3", marker), "the stale step task on n3 killed after the link returned")
    c.wait_nodes(["n3"], ("down",))
    assert c.state(job) == "NODE_FAIL"
    resume(c, "n3")
    c.wait_nodes(["n1"], ("idle",))  # nothing of the job is left on n1


def test_controller_restart_with_remote_nodes(netns_cluster):
    """kill -9 of the controller: the remote nodes keep their job, re-register over TCP, and it completes once."""
    c = netns_cluster
    out = c.path("survivor.out")
    job = c.sbatch("-w", "n2", "-o", out, "--wrap=echo start; sleep 3; echo end $(hostname)")
    c.wait_state(job, "RUNNING")
    os.kill(c.procs.pop("ctl").pid, signal.SIGKILL)
    time.sleep(1)
    c.start_controller()
    assert c.wait_state(job, ("COMPLETED", "NODE_FAIL", "FAILED"), timeout=30) == "COMPLETED"
    with open(out) as f:
        assert f.read() == "start\nend n2\n"
    c.wait_nodes(c.node_names, ("idle",))
