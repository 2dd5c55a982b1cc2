"""Spawning servers as batch jobs through a real JupyterHub: progress, validation, failures, stop."""

import re
import time

from hub_helpers import messages


def test_spawn_reports_progress_becomes_ready_and_answers_through_proxy(hub, hub_cluster):
    r = hub.spawn("alice", {"profile": "tiny"})
    assert r.status_code in (201, 202), r.text
    events = hub.progress("alice")
    text = messages(events)
    assert events[-1].get("ready"), text
    job_id = re.search(r"Submitted job (\d+)", text).group(1)
    order = [f"Submitted job {job_id}", f"Job {job_id} is running on node n", "Server starting",
             "reported 127.0.0.1:", "Server ready"]
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
        assert r.status_code == 400, (options, r.status_code, r.text)
        assert expected in r.json()["message"], (options, r.json())
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
    hub.ensure_user("formuser")
    r = hub.session.post(hub.url + "/hub/login", data={"username": "formuser", "password": "classroom"},
                         allow_redirects=False)
    assert r.status_code == 302, r.text
    s = hub.session.__class__()
    s.cookies.update(hub.session.cookies)
    page = s.get(hub.url + "/hub/spawn", timeout=30).text
    assert "Tiny: 1 CPU, 256 MB, 20 min" in page
    assert "Class 101" not in page  # not for this user
    assert "debug: up to 2 CPUs" in page and "solo: up to 2 CPUs" in page


def test_admin_view_and_time_extension(hub, hub_cluster):
    hub.spawn("erin", {"profile": "solo"})
    assert hub.progress("erin")[-1].get("ready")
    servers = hub.api("GET", "/batchhub/servers").json()["servers"]
    mine = [s for s in servers if s["user"] == "erin"]
    assert mine and mine[0]["node"] == "n3" and mine[0]["time_limit"] == 20
    r = hub.api("POST", "/batchhub/extend", json={"user": "erin", "minutes": 5})
    assert r.status_code == 200 and r.json()["time_limit"] == 25, r.text
    job_id = mine[0]["job_id"]
    assert hub_cluster.job(job_id)["TimeLimit"] == "00:25:00"
    r = hub.api("POST", "/batchhub/extend", json={"user": "erin", "minutes": 60})
    assert r.status_code == 409 and "Partition solo allows at most 30 min" in r.json()["message"]
    hub.stop_server("erin")
