"""batchhub up/down/status, node resource checks, queueing when the cluster is full."""

import os
import time

from cluster_support import process_running


def _node_daemons_and_their_children(c):
    """Pids of the node daemons and of the processes they run (their fork servers, when idle)."""
    run_dir = os.path.join(c.home, "run")
    pids = []
    for fname in os.listdir(run_dir):
        if fname.startswith("noded-") and fname.endswith(".pid"):
            with open(os.path.join(run_dir, fname)) as f:
                pids.append(int(f.read()))
    for pid in list(pids):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                pids.extend(int(k) for k in f.read().split())
    return pids


def test_up_is_idempotent_and_down_stops_everything(make_cluster):
    conf = "NodeName=a[1-2] CPUs=1 RealMemory=100\nPartitionName=p Nodes=ALL Default=YES\n"
    c = make_cluster(conf)
    pid = c.controller_pid()
    r = c.batchhub("up", "--no-link-cli", "--no-hub")
    assert r.returncode == 0 and "already running" in r.stdout
    assert c.controller_pid() == pid
    assert c.batchhub("status").returncode == 0
    node_side = _node_daemons_and_their_children(c)
    assert len(node_side) > 2  # two node daemons and their fork servers
    assert c.batchhub("down").returncode == 0
    assert not process_running(pid)
    deadline = time.time() + 10
    while any(process_running(p) for p in node_side) and time.time() < deadline:
        time.sleep(0.05)
    assert not [p for p in node_side if process_running(p)]
    r = c.run("squeue")
    assert r.returncode == 1 and "Unable to contact slurm controller" in r.stderr


def test_node_with_fewer_real_resources_than_configured_is_down(make_cluster):
    conf = "NodeName=big CPUs=512 RealMemory=100\nNodeName=ok CPUs=1 RealMemory=100\nPartitionName=p Nodes=ALL Default=YES\n"
    c = make_cluster(conf, wait_nodes=False)
    deadline = time.time() + 10
    while time.time() < deadline:
        out = c.run("sinfo", "-h", "-N", "-o", "%N %t").stdout
        if "big down" in out:
            break
        time.sleep(0.1)
    assert "big down" in out and "ok idle" in out
    node = c.run("scontrol", "show", "node", "big").stdout
    assert "Low" in node and "CPU" in node  # Slurm-style reason naming what is short
    job_id = c.sbatch("-o", "/dev/null", "--wrap=true")
    c.wait_state(job_id, "COMPLETED")
    assert c.job(job_id)["NodeList"] == "ok"


def test_jobs_queue_in_priority_order_when_full(make_cluster):
    c = make_cluster("SlurmdParameters=config_overrides\nNodeName=solo CPUs=1 RealMemory=100\n"
                     "PartitionName=p Nodes=ALL Default=YES\n")
    first = c.sbatch("-o", "/dev/null", "--wrap=sleep 2")
    second = c.sbatch("-o", "/dev/null", "--wrap=true")
    third = c.sbatch("-o", "/dev/null", "--wrap=true")
    c.wait_state(first, "RUNNING")
    assert c.run("squeue", "-h", "-j", str(second), "-o", "%R").stdout == "(Resources)\n"
    assert c.run("squeue", "-h", "-j", str(third), "-o", "%R").stdout in ("(Priority)\n", "(Resources)\n")
    c.wait_state(third, "COMPLETED", timeout=30)
    s2 = c.job(second)["StartTime"]
    s3 = c.job(third)["StartTime"]
    assert s2 <= s3


FAST_FAIL_CONF = """\
SlurmdParameters=config_overrides
SlurmdTimeout=2
KillWait=1
NodeName=f[1-2] CPUs=1 RealMemory=100
PartitionName=p Nodes=ALL Default=YES
"""


def test_dead_node_fails_its_jobs_and_comes_back(make_cluster):
    import signal
    c = make_cluster(FAST_FAIL_CONF)
    marker = f"nodefail{time.time_ns()}"
    plain = c.sbatch("-w", "f1", "-o", "/dev/null", f"--wrap=bash -c 'exec -a {marker} sleep 300'")
    c.wait_state(plain, "RUNNING")
    with open(os.path.join(c.home, "run", "noded-f1.pid")) as f:
        os.kill(int(f.read()), signal.SIGKILL)
    assert c.wait_state(plain, "NODE_FAIL", timeout=20) == "NODE_FAIL"
    out = c.run("sinfo", "-h", "-N", "-n", "f1", "-o", "%N %t").stdout
    assert out.strip() in ("f1 down*", "f1 idle*", "f1 unk*")
    # the job on the dead node was not orphaned by the controller: its processes are the
    # node's business (a dead node takes them with it); clean up what the test started
    subprocess_kill(marker)
    # the node comes back (batchhub up restarts missing daemons) and serves again
    c.start_controller()
    c.wait_nodes_up()
    again = c.sbatch("-w", "f1", "-o", "/dev/null", "--wrap=true")
    assert c.wait_state(again, "COMPLETED") == "COMPLETED"


def test_requeue_flag_moves_job_off_a_dead_node(make_cluster):
    import signal
    c = make_cluster(FAST_FAIL_CONF)
    job = c.sbatch("--requeue", "-w", "f1", "-o", "/dev/null", "--wrap=sleep 300")
    c.wait_state(job, "RUNNING")
    with open(os.path.join(c.home, "run", "noded-f1.pid")) as f:
        os.kill(int(f.read()), signal.SIGKILL)
    deadline = time.time() + 20
    while time.time() < deadline:
        info = c.job(job)
        if info.get("Restarts") == "1":
            break
        time.sleep(0.2)
    assert info["Restarts"] == "1" and info["JobState"] == "PENDING"
    c.run("scancel", str(job))
    subprocess_kill(os.path.join(c.home, "spool"))  # the killed daemon's orphan (its next start would)


def subprocess_kill(marker):
    import signal
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def test_backfill_starts_small_jobs_that_delay_nobody_and_shows_estimates(make_cluster):
    c = make_cluster("SlurmdParameters=config_overrides\nNodeName=bf1 CPUs=2 RealMemory=100\n"
                     "PartitionName=p Nodes=ALL Default=YES\n")
    running = c.sbatch("-c", "1", "-t", "10", "-o", "/dev/null", "--wrap=sleep 60")
    c.wait_state(running, "RUNNING")
    big = c.sbatch("-c", "2", "-t", "10", "-o", "/dev/null", "--wrap=true")
    short = c.sbatch("-c", "1", "-t", "1", "-o", "/dev/null", "--wrap=sleep 30")
    long = c.sbatch("-c", "1", "-t", "20", "-o", "/dev/null", "--wrap=true")
    # the short job fits in the hole before the big job's planned start: it starts now
    assert c.wait_state(short, "RUNNING") == "RUNNING"
    deadline = time.time() + 10
    while time.time() < deadline:
        big_job, long_job = c.job(big), c.job(long)
        if big_job["StartTime"] != "Unknown" and long_job["JobState"] == "PENDING":
            break
        time.sleep(0.1)
    # the big job waits for resources with a planned start about when the first job's limit ends
    assert big_job["JobState"] == "PENDING" and big_job["Reason"] == "Resources"
    run_start = time.mktime(time.strptime(c.job(running)["StartTime"], "%Y-%m-%dT%H:%M:%S"))
    planned = time.mktime(time.strptime(big_job["StartTime"], "%Y-%m-%dT%H:%M:%S"))
    assert run_start + 600 <= planned <= run_start + 600 + 120
    # the long job would delay it, so it waits
    assert long_job["JobState"] == "PENDING"
    out = c.run("squeue", "--start", "-h", "-j", str(big)).stdout
    assert big_job["StartTime"] in out and "bf1" in out
    c.run("scancel", str(running), str(big), str(short), str(long))


def test_extension_check_refuses_when_it_would_delay_a_planned_start(make_cluster):
    from batch_backend.client import Client
    c = make_cluster("SlurmdParameters=config_overrides\nSchedulerParameters=bf_interval=0\n"
                     "NodeName=x1 CPUs=2 RealMemory=100\nNodeName=x2 CPUs=1 RealMemory=100\n"
                     "PartitionName=p Nodes=x1 Default=YES MaxTime=60\nPartitionName=q Nodes=x2 MaxTime=60\n")
    blocker = c.sbatch("-c", "1", "-t", "5", "-o", "/dev/null", "--wrap=sleep 60")
    alone = c.sbatch("-p", "q", "-t", "5", "-o", "/dev/null", "--wrap=sleep 60")
    c.wait_state(blocker, "RUNNING")
    c.wait_state(alone, "RUNNING")
    waiting = c.sbatch("-c", "2", "-t", "5", "-o", "/dev/null", "--wrap=true")
    client = Client(c.socket)
    deadline = time.time() + 10
    while c.job(waiting)["StartTime"] == "Unknown" and time.time() < deadline:
        time.sleep(0.1)
    answer = client.extension_check(blocker, 10)
    assert answer["ok"] is False
    assert [d["job_id"] for d in answer["delays"]] == [waiting]
    assert f"job {waiting}" in answer["reason"]
    assert client.extension_check(alone, 10)["ok"] is True       # nobody waits behind it
    too_long = client.extension_check(alone, 100)
    assert too_long["ok"] is False and "at most 60 minutes" in too_long["reason"]
    c.run("scancel", str(blocker), str(alone), str(waiting))
