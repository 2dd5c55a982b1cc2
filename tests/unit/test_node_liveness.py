"""The controller's side of node failure, on a real Cluster and journal with a hand-driven clock.

SlurmdTimeout, ReturnToService, the end report of a stale run, and what a
returning node is told to kill (no daemons here: node daemons are the API's
callers, simulated by calling the same Cluster methods the API calls).
"""

import pytest

from batch_backend.conf import parse_conf
from batch_backend.controller.cluster import Cluster
from batch_backend.controller.identity import Identity
from batch_backend.controller.journal import Journal

ROOT = Identity(uid=0, gid=0, user="root", admin=True, node=True)


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self):
        return self.t


def make(tmp_path, extra=""):
    conf = parse_conf("SlurmdTimeout=4\nSlurmdParameters=config_overrides\n" + extra +
                      "NodeName=n[1-2] CPUs=2 RealMemory=100\nPartitionName=p Nodes=ALL Default=YES\n", path="t")
    clock = Clock()
    cluster = Cluster(conf, Journal(str(tmp_path / "journal.sqlite")), now=clock)
    cluster.recover()
    for name in ("n1", "n2"):
        cluster.node_register(name, {"cpus": 2, "memory_mb": 100, "gpus": []})
    return cluster, clock


def submit(cluster, **fields):
    job_id = cluster.submit(dict({"script": "#!/bin/sh\nsleep 100\n", "workdir": "/tmp"}, **fields), ROOT)
    cluster.schedule_now()
    return cluster.jobs[job_id]


def silence(cluster, clock, quiet, talking=("n2",)):
    """Let SlurmdTimeout pass with ``quiet`` silent and the others polling."""
    for _ in range(5):
        clock.t += 1
        for name in talking:
            cluster.node_seen(name)
        cluster.check_node_timeouts()


def test_silent_node_goes_down_and_its_jobs_fail(tmp_path):
    cluster, clock = make(tmp_path)
    job = submit(cluster, nodelist_req="n1")
    assert job["state"] == "RUNNING"
    silence(cluster, clock, "n1")
    node = cluster.nodes["n1"].to_dict()
    assert (node["state"], node["state_flags"], node["reason"]) == ("DOWN", ["NOT_RESPONDING"], "Not responding")
    assert node["reason_user"] == "slurm"
    assert job["state"] == "NODE_FAIL"
    assert cluster.nodes["n2"].to_dict()["state"] == "IDLE"


@pytest.mark.parametrize("rts, state_after", [("0", "DOWN"), ("1", "IDLE")])
def test_return_to_service(tmp_path, rts, state_after):
    cluster, clock = make(tmp_path, f"ReturnToService={rts}\n")
    silence(cluster, clock, "n1")
    cluster.node_register("n1", {"cpus": 2, "memory_mb": 100, "gpus": []})
    assert cluster.nodes["n1"].to_dict()["state"] == state_after
    cluster.update_nodes(["n1"], "RESUME", None, ROOT)
    assert cluster.nodes["n1"].to_dict()["state"] == "IDLE"


def test_admin_down_is_not_lifted_by_registration(tmp_path):
    cluster, clock = make(tmp_path, "ReturnToService=1\n")
    cluster.update_nodes(["n1"], "DOWN", "disk broken", ROOT)
    cluster.node_register("n1", {"cpus": 2, "memory_mb": 100, "gpus": []})
    assert cluster.nodes["n1"].to_dict()["state"] == "DOWN"


def test_requeued_job_ignores_the_end_of_its_stale_run(tmp_path):
    cluster, clock = make(tmp_path)
    job = submit(cluster, nodelist_req="n1", requeue=True)
    silence(cluster, clock, "n1")
    assert (job["state"], job["restarts"]) == ("PENDING", 1)
    cluster.node_register("n1", {"cpus": 2, "memory_mb": 100, "gpus": [], "running": [job["job_id"]]})
    assert {"type": "cancel", "job_id": job["job_id"], "stale": True} in [c for _, c in cluster.nodes["n1"].commands]
    cluster.schedule_now()  # ReturnToService=1: n1 is back, the new run starts there
    assert job["state"] == "RUNNING" and job["batch_host"] == "n1"
    end = {"event": "ended", "job_id": job["job_id"], "state": "CANCELLED", "exit_code": 0, "exit_signal": 15}
    cluster.node_event("n1", dict(end, restarts=0))  # the stale run 0, killed
    assert job["state"] == "RUNNING"
    cluster.node_event("n1", dict(end, state="COMPLETED", exit_signal=0, restarts=1))
    assert job["state"] == "COMPLETED"


def test_returning_node_is_told_to_kill_stale_step_tasks(tmp_path):
    cluster, clock = make(tmp_path)
    job = submit(cluster, nodelist_req="n1")
    cluster.node_register("n2", {"cpus": 2, "memory_mb": 100, "gpus": [], "steps": [[job["job_id"], 0], [99, 3]]})
    kills = [c for _, c in cluster.nodes["n2"].commands if c["type"] == "kill_step"]
    # the job lives, but not on n2: its step there is stale, and so is anything of an unknown job
    assert [(c["job_id"], c["step_id"]) for c in kills] == [(job["job_id"], 0), (99, 3)]
    cluster.node_register("n1", {"cpus": 2, "memory_mb": 100, "gpus": [], "running": [job["job_id"]],
                                 "steps": [[job["job_id"], 0]]})
    assert not [c for _, c in cluster.nodes["n1"].commands if c["type"] == "kill_step"]


def test_lost_job_of_a_restarted_daemon_is_requeued_not_relaunched(tmp_path):
    cluster, clock = make(tmp_path)
    job = submit(cluster, nodelist_req="n1", requeue=True)
    # the daemon of n1 was killed and restarted within SlurmdTimeout; it reports the job lost
    cluster.node_register("n1", {"cpus": 2, "memory_mb": 100, "gpus": [], "finished": [job["job_id"]]})
    assert not [c for _, c in cluster.nodes["n1"].commands if c["type"] == "launch"]
    cluster.node_event("n1", {"event": "ended", "job_id": job["job_id"], "state": "NODE_FAIL", "exit_code": 0,
                              "exit_signal": 9, "reason": "NodeDown", "restarts": 0})
    assert (job["state"], job["restarts"]) == ("PENDING", 1)
