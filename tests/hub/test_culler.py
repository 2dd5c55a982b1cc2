"""jupyterhub-idle-culler, run by the hub config as a service: an idle server is stopped, so its
batch job is cancelled and its node's CPUs are free again."""

import time

import pytest

from hub_helpers import LiveHub, messages, squeue_ids

CULL_TIMEOUT = 10  # seconds idle; the config culls every max(10, timeout // 2) s


@pytest.fixture(scope="module")
def culling_hub(hub_cluster, tmp_path_factory):
    h = LiveHub(hub_cluster, tmp_path_factory.mktemp("cullhub"))
    h.env["BATCHHUB_HUB_CULL_TIMEOUT"] = str(CULL_TIMEOUT)
    h.start()
    yield h
    h.stop()


def _alloc_cpus(cluster, node):
    r = cluster.run("scontrol", "show", "node", node)
    assert r.returncode == 0, r.stderr
    for word in r.stdout.split():
        if word.startswith("CPUAlloc="):
            return int(word.split("=", 1)[1])
    raise AssertionError(r.stdout)


def test_idle_server_is_culled_its_job_cancelled_and_node_freed(culling_hub, hub_cluster):
    hub = culling_hub
    hub.spawn("idler", {"profile": "tiny"})
    events = hub.progress("idler")
    assert events[-1].get("ready"), messages(events) + hub.log_tail()
    server = hub.server("idler")
    job_id = server["state"]["job_id"]
    job = hub_cluster.job(job_id)
    assert job["JobState"] == "RUNNING"
    node = job["NodeList"]
    assert _alloc_cpus(hub_cluster, node) >= 1

    # nobody uses the server: within timeout + one cull interval (+ slack) the culler stops it
    began = time.time()
    limit = CULL_TIMEOUT + max(10, CULL_TIMEOUT // 2) + 25
    while time.time() - began < limit and hub.server("idler") is not None:
        time.sleep(0.5)
    assert hub.server("idler") is None, f"not culled in {limit} s\n{hub.log_tail()}"
    with open(hub.log_path, errors="replace") as f:  # stopped by the culler service, nobody else
        assert "DELETE /hub/api/users/idler/server (idle-culler@" in f.read()

    # the job left the queue as cancelled, and its CPUs are free again
    deadline = time.time() + 15
    while time.time() < deadline and job_id in squeue_ids(hub_cluster):
        time.sleep(0.3)
    assert job_id not in squeue_ids(hub_cluster)
    r = hub_cluster.run("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State")
    assert r.returncode == 0, r.stderr
    assert f"{job_id}|CANCELLED" in r.stdout, r.stdout
    assert _alloc_cpus(hub_cluster, node) == 0
    # the user is still there (the culler stops servers, it does not delete users)
    assert hub.user("idler") is not None
