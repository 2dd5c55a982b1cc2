"""Servers survive what must not kill them: hub restarts and an unreachable controller."""

import os
import signal
import time

import pytest

from hub_helpers import LiveHub, make_hub_cluster, squeue_ids
from hub_helpers import messages


@pytest.fixture(scope="module")
def rcluster(tmp_path_factory):
    c = make_hub_cluster(tmp_path_factory.mktemp("rcluster"))
    yield c
    c.down()


@pytest.fixture(scope="module")
def rhub(rcluster, tmp_path_factory):
    h = LiveHub(rcluster, tmp_path_factory.mktemp("rhub")).start()
    yield h
    h.stop()


def _spawn_ready(hub, name, profile="tiny"):
    hub.spawn(name, {"profile": profile})
    events = hub.progress(name)
    assert events[-1].get("ready"), messages(events) + hub.log_tail()
    return hub.server(name)["state"]["job_id"]


def test_hub_restart_keeps_running_and_recovers_pending_servers(rhub, rcluster):
    running_job = _spawn_ready(rhub, "carol")
    blocker = rcluster.sbatch("-p", "solo", "-c", "2", "--wrap", "sleep 120")
    rcluster.wait_state(blocker, "RUNNING")
    try:
        rhub.spawn("dave", {"profile": "solo"})
        thread, events = rhub.progress_in_background("dave")
        deadline = time.time() + 20
        while time.time() < deadline and "queued in partition solo" not in messages(events):
            time.sleep(0.2)
        assert "queued in partition solo" in messages(events)
        pending_job = rhub.user("dave")["servers"][""]["state"]["job_id"]

        rhub.restart()
        # the running server was kept: same job, still answering through the (new) proxy
        assert rhub.server("carol")["state"]["job_id"] == running_job
        assert rhub.wait_server("carol", lambda s: s and s["ready"])
        assert rhub.through_proxy("carol").status_code == 200
        # the pending job was not cancelled by the restart...
        assert squeue_ids(rcluster)[pending_job] == "PENDING"
        # ...and becomes the user's server once it can start
        rcluster.run("scancel", str(blocker))
        server = rhub.wait_server("dave", lambda s: s and s["ready"], timeout=90)
        assert server["state"]["job_id"] == pending_job
        assert rhub.through_proxy("dave").status_code == 200
    finally:
        rcluster.run("scancel", str(blocker))
    rhub.stop_server("dave")


def test_unreachable_controller_does_not_drop_running_servers(rhub, rcluster):
    if rhub.server("carol") is None:
        _spawn_ready(rhub, "carol")
    job_id = rhub.server("carol")["state"]["job_id"]
    pid = rcluster.controller_pid()
    os.kill(pid, signal.SIGSTOP)  # hangs: every query times out, like an overloaded controller
    try:
        time.sleep(12)  # several watcher intervals (1 s) and hub polls (2 s)
        server = rhub.server("carol")
        assert server is not None and server["ready"], rhub.log_tail()
    finally:
        os.kill(pid, signal.SIGCONT)
    # the controller is gone altogether for a while (killed), then restarted from its journal
    rcluster.kill_controller()
    time.sleep(6)
    assert rhub.server("carol") is not None
    r = rcluster.batchhub("up", "--no-link-cli", "--no-hub")
    assert r.returncode == 0, r.stderr
    time.sleep(3)
    server = rhub.server("carol")
    assert server is not None and server["ready"] and server["state"]["job_id"] == job_id
    assert squeue_ids(rcluster)[job_id] == "RUNNING"
    assert rhub.through_proxy("carol").status_code == 200
    assert "is gone" not in rhub.log_tail(200)
    rhub.stop_server("carol")
    assert job_id not in squeue_ids(rcluster)
