"""Node daemons on other hosts: jobs and multi-node steps over TCP between network namespaces.

Every host (controller, n1, n2, n3) is a network namespace with its own address
and hostname; nodes reach the controller only over TCP with their node
credential, the CLI runs on the controller's host with a user token.
"""

import importlib.util
import sys
import time
import uuid

import pytest

NODES = {"n1": "10.77.0.11", "n2": "10.77.0.12", "n3": "10.77.0.13"}


def test_nodes_register_over_tcp_with_their_own_address(netns_cluster):
    c = netns_cluster
    for name, addr in NODES.items():
        info = c.node(name)
        assert info["State"] == "IDLE", info
        assert info["NodeAddr"] == addr and info["NodeHostName"] == name, info


def test_batch_jobs_run_on_the_hosts_of_their_nodes(netns_cluster):
    c = netns_cluster
    jobs = {}
    for name in NODES:
        jobs[name] = c.sbatch("-w", name, "-o", c.path(f"where-{name}.out"),
                              "--wrap=echo $(hostname) $SLURMD_NODENAME; ip -4 -o addr show dev eth0")
    for name, job in jobs.items():
        assert c.wait_state(job, "COMPLETED") == "COMPLETED"
        with open(c.path(f"where-{name}.out")) as f:
            host, node, *_ = f.read().split()
        assert (host, node) == (name, name)
        with open(c.path(f"where-{name}.out")) as f:
            assert f" {NODES[name]}/24 " in f.read()


def test_srun_spans_three_hosts(netns_cluster):
    c = netns_cluster
    r = c.run("srun", "-N3", "-l", "hostname", timeout=60)
    assert r.returncode == 0, r.stderr + c.log_tail("ctl")
    assert sorted(r.stdout.splitlines()) == ["0: n1", "1: n2", "2: n3"]


def test_srun_inside_a_batch_job_on_a_remote_node(netns_cluster):
    """The batch script on n1 reaches the controller over TCP with its job token; its step spans 3 hosts."""
    c = netns_cluster
    out = c.path("nested.out")
    job = c.sbatch("-N3", "-o", out, input="#!/bin/sh\nsrun -l hostname | sort\necho token=${BATCHHUB_TOKEN:+set}\n")
    assert c.wait_state(job, ("COMPLETED", "FAILED"), timeout=60) == "COMPLETED", open(out).read()
    with open(out) as f:
        assert f.read() == "0: n1\n1: n2\n2: n3\ntoken=set\n"


ALLREDUCE = """\
from mpi4py import MPI
import socket
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.Get_rank() + 1)
hosts = comm.gather(socket.gethostname())
if comm.Get_rank() == 0:
    print(comm.Get_size(), total, ",".join(hosts))
"""


def test_mpi_allreduce_across_three_hosts(netns_cluster):
    c = netns_cluster
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed")
    script = c.path("allreduce.py")
    with open(script, "w") as f:
        f.write(ALLREDUCE)
    r = c.run("srun", "-N3", "-n3", "--mpi=pmi1", sys.executable, script, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    assert r.stdout == "3 6 n1,n2,n3\n"


def test_job_token_ends_with_its_job(netns_cluster):
    c = netns_cluster
    out = c.path("token.out")
    job = c.sbatch("-w", "n2", "-o", out, "--wrap=echo $BATCHHUB_TOKEN")
    c.wait_state(job, "COMPLETED")
    with open(out) as f:
        token = f.read().strip()
    assert token and token != c.token
    r = c.run("squeue", "-h", env={"BATCHHUB_TOKEN": token})
    assert r.returncode == 1 and f"token of job {job}, which has ended" in r.stderr, r


def test_srun_on_the_controller_socket_reaches_remote_nodes(netns_cluster):
    """An admin on the controller's host, on its Unix socket: srun still listens where the nodes can reach it."""
    c = netns_cluster
    r = c.run("srun", "-N3", "-l", "hostname", env={"BATCHHUB_SOCKET": c.socket, "BATCHHUB_TOKEN": ""})
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: n1", "1: n2", "2: n3"]


def test_requeued_job_back_on_its_returning_node_runs_once(netns_cluster):
    """ReturnToService=1 (the default): n2 returns from a partition with a stale run of a job that was requeued meanwhile
    and now starts on n2 again: the stale run is killed, the new one runs to the end, once."""
    c = netns_cluster
    marker = f"mh-back-{uuid.uuid4().hex[:8]}"
    blockers = [c.sbatch("-w", n, "-c2", "-o", "/dev/null", "--wrap=sleep 300") for n in ("n1", "n3")]
    try:
        for b in blockers:
            c.wait_state(b, "RUNNING")
        out = c.path("back.out")
        job = c.sbatch("--requeue", "-o", out, input=(
            "#!/bin/bash\necho \"run ${SLURM_RESTART_COUNT:-0} on $(hostname)\"\n"
            f"if [ \"${{SLURM_RESTART_COUNT:-0}}\" = 0 ]; then exec -a {marker} sleep 300; fi\nsleep 2; echo done\n"))
        c.wait_state(job, "RUNNING")
        assert c.job(job)["NodeList"] == "n2"
        deadline = time.time() + 20
        while not c.processes("n2", marker) and time.time() < deadline:
            time.sleep(0.1)
        c.cut("n2")
        try:
            deadline = time.time() + 20
            while c.job(job).get("Restarts") != "1" and time.time() < deadline:
                time.sleep(0.2)
            assert c.job(job)["JobState"] == "PENDING"  # requeued; no other node has room
        finally:
            c.restore("n2")
        assert c.wait_state(job, ("COMPLETED", "FAILED"), timeout=40) == "COMPLETED", c.log_tail("ctl") + c.log_tail("n2")
        assert not c.processes("n2", marker)
        with open(out) as f:
            assert f.read() == "run 0 on n2\nrun 1 on n2\ndone\n"
        time.sleep(1)
        assert c.state(job) == "COMPLETED" and c.job(job)["Restarts"] == "1"
    finally:
        c.run("scancel", *map(str, blockers))
    c.wait_nodes(c.node_names, ("idle",))
