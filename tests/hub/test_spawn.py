"""Spawning servers as batch jobs through a real JupyterHub: progress, validation, failures, stop."""

import os
import re
import subprocess
import sys
import time
import uuid

import pytest

from batch_backend.client import Client
from hub_helpers import ADMIN_PASSWORD
from hub_helpers import messages


SHORT_STARTED = {}


def test_a_one_minute_server_is_started_early(hub):
    """Starts the server that the last test watches hit its time limit (overlaps the wait)."""
    hub.spawn("shorty", {"profile": "custom", "cpus": "1", "memory": "512M", "time": "1"})
    assert hub.progress("shorty")[-1].get("ready")
    SHORT_STARTED["at"] = time.time()


def test_spawn_reports_progress_becomes_ready_and_answers_through_proxy(hub, hub_cluster):
    r = hub.spawn("alice", {"profile": "tiny"})
    assert r.status_code in (201, 202), r.text
    events = hub.progress("alice")
    text = messages(events)
    assert events[-1].get("ready"), text
    job_id = re.search(r"Submitted job (\d+)", text).group(1)
    order = [f"Submitted job {job_id}", f"Job {job_id} is running on node n", "Server starting",
             "reported 127.0.0.1:", "Server is listening", "Server ready"]
    positions = [text.find(m) for m in order]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), text
    server = hub.server("alice")
    assert server["ready"] and server["state"]["job_id"] == job_id
    assert hub_cluster.job(job_id)["JobState"] == "RUNNING"
    assert hub.through_proxy("alice").status_code == 200


def test_stop_cancels_the_job_and_waits_until_it_left_the_queue(hub, hub_cluster):
    server = hub.server("alice")
    if server is None:
        hub.spawn("alice", {"profile": "tiny"})
        assert hub.progress("alice")[-1].get("ready")
        server = hub.server("alice")
    job_id = server["state"]["job_id"]
    hub.stop_server("alice")
    r = hub_cluster.run("squeue", "-h", "-j", job_id)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout
    assert hub_cluster.state(job_id).startswith("CANCELLED")


def test_pending_server_shows_position_reason_then_starts(hub, hub_cluster):
    # fill the one-node partition so the server job must wait
    blocker = hub_cluster.sbatch("-p", "solo", "-c", "2", "--wrap", "sleep 120")
    hub_cluster.wait_state(blocker, "RUNNING")
    second = hub_cluster.sbatch("-p", "solo", "-c", "2", "--wrap", "sleep 120")
    try:
        assert hub.spawn("bob", {"profile": "solo"}).status_code in (201, 202)
        thread, events = hub.progress_in_background("bob")
        deadline = time.time() + 30
        while time.time() < deadline and "position 2 of 2" not in messages(events):
            time.sleep(0.2)
        text = messages(events)
        assert "queued in partition solo, position 2 of 2" in text, text
        assert "waiting behind jobs with higher priority" in text or "waiting for resources" in text, text
        hub_cluster.run("scancel", str(second))
        deadline = time.time() + 30
        while time.time() < deadline and "position 1 of 1" not in messages(events):
            time.sleep(0.2)
        assert "position 1 of 1; waiting for resources: the nodes it can use are busy" in messages(events)
        pending = Client(hub_cluster.socket).job(re.search(r"Submitted job (\d+)", messages(events)).group(1))
        if pending.get("start_estimated"):  # the backfill planner's estimate, once the controller has one
            deadline = time.time() + 10
            while time.time() < deadline and "Estimated start" not in messages(events):
                time.sleep(0.2)
            assert "Estimated start" in messages(events)
        hub_cluster.run("scancel", str(blocker))
        thread.join(90)
        text = messages(events)
        assert events[-1].get("ready"), text
        assert text.index("position 1 of 1") < text.index("is running on node n3"), text
    finally:
        hub_cluster.run("scancel", str(blocker), str(second))
    hub.stop_server("bob")


def test_job_that_dies_before_reporting_fails_the_spawn_fast_with_reason_and_output(hub):
    began = time.time()
    hub.spawn("crash", {"profile": "tiny"})
    events = hub.progress("crash")
    elapsed = time.time() - began
    final = events[-1]
    assert final.get("failed"), events
    assert "ended before the server started: the job failed (exit code 3)" in final["message"]
    assert "crash: the module foo is not installed" in final["message"]
    assert elapsed < 60  # well under start_timeout (90 s): it did not wait for the timeout
    assert hub.server("crash") is None


def test_invalid_options_are_refused_before_reaching_the_queue(hub, hub_cluster):
    before = set(hub_cluster.run("sacct", "-n", "-X", "-P", "-o", "JobID").stdout.split())
    cases = [
        ({"profile": "custom", "memory": "64G"}, "Memory can be at most"),
        ({"profile": "custom", "cpus": "many"}, "CPUs must be a whole number"),
        ({"profile": "custom", "cpus": "9"}, "CPUs can be at most 2"),
        ({"profile": "custom", "partition": "nosuch"}, "Partition 'nosuch'"),
        ({"profile": "custom", "partition": "solo", "time": "2:00:00"}, "Partition solo allows at most 30 min"),
        ({"profile": "custom", "time": "soon"}, "Time must look like"),
        ({"profile": "tiny", "reservation": "class101"}, "cannot choose the reservation"),
        ({"profile": "class101"}, "may not use profile 'class101'"),
        ({"profile": "huge"}, "There is no profile 'huge'"),
    ]
    for options, expected in cases:
        r = hub.spawn("mallory", options)
        if r.status_code == 400:  # refused while the API request waited
            message = r.json()["message"]
        else:  # slow_spawn_timeout=0: accepted at once, refused in the spawn; the page shows why
            assert r.status_code in (201, 202), (options, r.status_code, r.text)
            final = hub.progress("mallory")[-1]
            assert final.get("failed"), (options, final)
            message = final["message"]
        assert expected in message, (options, message)
    after = set(hub_cluster.run("sacct", "-n", "-X", "-P", "-o", "JobID").stdout.split())
    assert after == before


def test_profile_restricted_to_a_user_works_for_that_user(hub, hub_cluster):
    hub.spawn("teacher", {"profile": "class101"})
    events = hub.progress("teacher")
    assert events[-1].get("ready"), messages(events)
    job_id = hub.server("teacher")["state"]["job_id"]
    assert hub_cluster.job(job_id)["Account"] == "class101"
    hub.stop_server("teacher")


def test_spawn_form_lists_profiles_and_live_partitions(hub):
    s = hub.browser_session("formuser")
    page = s.get(hub.url + "/hub/spawn", timeout=30).text
    assert "Tiny: 1 CPU, 512 MB, 20 min" in page
    assert "Class 101" not in page  # not for this user
    assert "Big: 8 CPUs <span class=\"text-danger\">(unavailable: CPUs can be at most 2 here" in page
    assert "debug: up to 2 CPUs" in page and "solo: up to 2 CPUs" in page
    # a bad custom request comes back to the form with the reason, and nothing is queued
    r = s.post(hub.url + "/hub/spawn", data={"profile": "custom", "partition": "solo", "cpus": "1",
                                             "memory": "1G", "time": "45", "_xsrf": s.cookies.get("_xsrf")},
               timeout=30)
    assert "Partition solo allows at most 30 min (you asked for 45 min)" in r.text
    assert hub.server("formuser") is None


def test_admin_view_and_time_extension(hub, hub_cluster):
    hub.spawn("erin", {"profile": "solo"})
    assert hub.progress("erin")[-1].get("ready")
    servers = hub.api("GET", "/batchhub/servers").json()["servers"]
    mine = [s for s in servers if s["user"] == "erin"]
    assert mine and mine[0]["node"] == "n3" and mine[0]["time_limit"] == 20
    page = hub.browser_session("admin", ADMIN_PASSWORD).get(hub.url + "/hub/batchhub", timeout=30).text
    assert f"<td>erin</td><td>(default)</td><td>{mine[0]['job_id']}</td><td>RUNNING</td><td>solo</td><td>n3</td>" in page
    r = hub.api("POST", "/batchhub/extend", json={"user": "erin", "minutes": 5})
    assert r.status_code == 200 and r.json()["time_limit"] == 25, r.text
    job_id = mine[0]["job_id"]
    assert hub_cluster.job(job_id)["TimeLimit"] == "00:25:00"
    r = hub.api("POST", "/batchhub/extend", json={"user": "erin", "minutes": 60})
    assert r.status_code == 409 and "Partition solo allows at most 30 min" in r.json()["message"]
    hub.stop_server("erin")


def test_server_warns_before_its_time_limit_and_can_ask_for_more(hub, hub_cluster):
    hub.spawn("frank", {"profile": "solo"})
    assert hub.progress("frank")[-1].get("ready")
    job_id = hub.server("frank")["state"]["job_id"]
    info = hub.through_proxy("frank", "api/batchhub/walltime").json()
    assert info["job_id"] == job_id and info["warnings"] == [600, 120]
    assert 18 * 60 < info["seconds_left"] <= 20 * 60
    # the JupyterLab plugin that turns this into warning notifications is installed in the page
    lab = hub.through_proxy("frank", "lab")
    assert lab.status_code == 200 and '"name": "batchhub-walltime"' in lab.text.replace('"name":"', '"name": "')
    for ext in ("@jupyter-widgets/jupyterlab-manager", "ipyparallel-labextension"):  # the platform's UI
        assert f'"name": "{ext}"' in lab.text.replace('"name":"', '"name": "'), ext
    entry = hub.through_proxy("frank", "lab/extensions/batchhub-walltime/static/remoteEntry.js")
    assert entry.status_code == 200 and "Extend by 30 min" in entry.text
    # "Extend" from inside the server goes through the hub, which checks the partition limit
    r = hub.session.post(f"{hub.url}/user/frank/api/batchhub/walltime/extend", json={"minutes": 5}, timeout=30)
    assert r.status_code == 200 and r.json()["extended"], r.text
    assert hub_cluster.job(job_id)["TimeLimit"] == "00:25:00"
    assert hub.through_proxy("frank", "api/batchhub/walltime").json()["seconds_left"] > 22 * 60
    r = hub.session.post(f"{hub.url}/user/frank/api/batchhub/walltime/extend", json={"minutes": 30}, timeout=30)
    assert r.status_code == 200 and not r.json()["extended"]
    assert "allows at most 30 min" in r.json()["message"]
    hub.stop_server("frank")


def test_one_shared_watcher_follows_all_servers_in_one_query(hub):
    names = ["w1", "w2", "w3"]
    for name in names:
        hub.spawn(name, {"profile": "tiny"})
    for name in names:
        assert hub.progress(name)[-1].get("ready")
    job_ids = {hub.server(n)["state"]["job_id"] for n in names}
    watcher = hub.api("GET", "/batchhub/servers").json()["watchers"][0]
    assert job_ids <= {str(j) for j in watcher["watched"]}
    before, t0 = watcher["queries"], time.time()
    time.sleep(5)
    after = hub.api("GET", "/batchhub/servers").json()["watchers"][0]["queries"]
    intervals = (time.time() - t0) / watcher["interval"]
    # one query per interval for all servers (a per-spawner poller would make 3 per interval)
    assert after - before <= intervals + 2, (before, after, intervals)
    for name in names:
        hub.stop_server(name)


def test_server_killed_by_its_time_limit_tells_the_user_why(hub, hub_cluster):
    if "at" not in SHORT_STARTED:
        test_a_one_minute_server_is_started_early(hub)
    job_id = hub.server("shorty")["state"]["job_id"] if hub.server("shorty") else None
    hub.wait_server("shorty", lambda s: s is None, timeout=max(5, 100 - (time.time() - SHORT_STARTED["at"])))
    state = hub.user("shorty")
    assert state["servers"] == {}
    if job_id:
        assert hub_cluster.state(job_id) == "TIMEOUT"
    page = hub.browser_session("shorty").get(hub.url + "/hub/spawn", timeout=30).text
    assert "ended at" in page and "the job reached its time limit of 1 min" in page, page[-3000:]


@pytest.fixture
def unix_user():
    if os.getuid() != 0:
        pytest.skip("needs root to create a throwaway Unix user")
    name = f"bh{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True)
    yield name
    subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


def test_multi_user_mode_runs_the_server_job_as_the_users_account(hub, hub_cluster, unix_user):
    hub.spawn(unix_user, {"profile": "tiny"})
    thread, events = hub.progress_in_background(unix_user)
    deadline = time.time() + 20
    while time.time() < deadline and not re.search(r"Submitted job (\d+)", messages(events)):
        time.sleep(0.1)
    job_id = re.search(r"Submitted job (\d+)", messages(events)).group(1)
    job = hub_cluster.job(job_id)
    assert job["UserId"].startswith(unix_user + "(")
    assert job["WorkDir"] == f"/home/{unix_user}"
    thread.join(90)
    can_run = subprocess.run(["su", unix_user, "-s", "/bin/sh", "-c", f"test -x {sys.executable}"]).returncode == 0
    if can_run:
        assert events[-1].get("ready"), messages(events)
        hub.stop_server(unix_user)
    else:
        # this machine's Python lives in root's private home: the job, run as the user, cannot
        # exec it, and the spawn says so at once instead of waiting for start_timeout
        final = events[-1]
        assert final.get("failed") and "ended before the server started" in final["message"], final
        assert "Permission denied" in final["message"] or "not found" in final["message"], final


def test_server_that_dies_while_starting_fails_the_spawn_with_the_reason(hub):
    # 64 MB: the job starts and reports, then the memory limit kills the starting server
    hub.spawn("hungry", {"profile": "custom", "cpus": "1", "memory": "64M", "time": "10"})
    events = hub.progress("hungry")
    final = events[-1]
    assert final.get("failed"), messages(events)
    assert "the job ran out of memory" in final["message"], final
    assert hub.server("hungry") is None


def test_servers_page_is_for_admins_only(hub):
    r = hub.browser_session("student").get(hub.url + "/hub/batchhub", timeout=30)
    assert r.status_code == 403
