"""Accounts, QOS and reservations on the spawn form (issue #6), on a real hub and cluster.

The cluster enforces associations and QOS (sacctmgr), the hub runs as root in
multi-user mode, so each server job is submitted as the user's own Unix
account: the hub refuses what the user may not use before anything is queued,
and the controller would refuse it too. Users and groups are throwaway Unix
accounts made for the module.
"""

import os
import re
import subprocess
import sys
import time
import uuid

import pytest

from batch_backend.client import Client
from hub_helpers import HUB_CONF, LiveHub, messages
from cluster_support import LiveCluster

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root for throwaway Unix users and multi-user mode")

TAG = uuid.uuid4().hex[:5]
GROUP, STUDENT, OUTSIDER = f"cls{TAG}", f"stu{TAG}", f"out{TAG}"
PROFILES = """
c.QueueSpawner.profiles = [
    {"name": "tiny", "display_name": "Tiny", "cpus": 1, "memory": "512M", "time": 20},
    {"name": "class", "display_name": "Class 101 (reservation)", "partition": "solo", "cpus": 1,
      "memory": "512M", "time": 20, "account": "class101", "reservation": "lab101"},
]
"""


def ok(r):
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


@pytest.fixture(scope="module")
def unix_accounts():
    subprocess.run(["groupadd", GROUP], check=True)
    for name, extra in ((STUDENT, ["-G", GROUP]), (OUTSIDER, [])):
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", *extra, name], check=True)
    yield
    for name in (STUDENT, OUTSIDER):
        subprocess.run(["userdel", "-r", name], check=False, capture_output=True)
    subprocess.run(["groupdel", GROUP], check=False, capture_output=True)


@pytest.fixture(scope="module")
def acluster(tmp_path_factory, unix_accounts):
    c = LiveCluster(tmp_path_factory.mktemp("acluster"), HUB_CONF + "AccountingStorageEnforce=associations,qos\n")
    r = c.batchhub("up", "--no-link-cli", "--no-hub")
    assert r.returncode == 0, r.stderr + r.stdout
    c.wait_nodes_up()
    try:
        ok(c.run("sacctmgr", "-i", "add", "qos", "high"))
        ok(c.run("sacctmgr", "-i", "add", "account", "class101"))
        ok(c.run("sacctmgr", "-i", "add", "account", "physics"))
        ok(c.run("sacctmgr", "-i", "add", "user", STUDENT, "account=class101", "qos=normal"))
        ok(c.run("sacctmgr", "-i", "add", "user", OUTSIDER, "account=physics", "qos=normal,high",
                 "defaultqos=normal"))
        # the class's slot now on n3 (partition solo), and one in two hours on n1
        ok(c.run("scontrol", "create", "reservation", "ReservationName=lab101", "StartTime=now", "Duration=120",
                 "Nodes=n3", f"Groups={GROUP}"))
        ok(c.run("scontrol", "create", "reservation", "ReservationName=exam", "StartTime=now+2hours",
                 "Duration=60", "Nodes=n1", f"Groups={GROUP}"))
        yield c
    finally:
        c.down()


@pytest.fixture(scope="module")
def ahub(acluster, tmp_path_factory):
    h = LiveHub(acluster, tmp_path_factory.mktemp("ahub"))
    with open(os.path.join(h.dir, "test_config.py"), "a") as f:
        f.write(PROFILES)
    h.start()
    yield h
    h.stop()


def job_ids(cluster):
    return set(ok(cluster.run("sacct", "-n", "-X", "-P", "-o", "JobID")).split())


def refusal(hub, name, options):
    """The message a refused spawn shows (HTTP 400 at once, or the failed progress event)."""
    r = hub.spawn(name, options)
    if r.status_code == 400:
        return r.json()["message"]
    assert r.status_code in (201, 202), (options, r.status_code, r.text)
    final = hub.progress(name)[-1]
    assert final.get("failed"), (options, final)
    return final["message"]


def test_a_user_cannot_pick_an_account_qos_or_reservation_they_may_not_use(ahub, acluster):
    before = job_ids(acluster)
    cases = [
        ({"profile": "custom", "account": "class101"}, "You may not charge account 'class101': your accounts are physics."),
        ({"profile": "custom", "partition": "solo", "reservation": "lab101"}, "You are not admitted to reservation lab101."),
        ({"profile": "custom", "qos": "nosuch"}, "You may not use QOS 'nosuch' with account physics: yours are normal, high."),
        ({"profile": "class"}, "Profile 'class': You may not charge account 'class101'"),
        ({"profile": "tiny", "account": "class101"}, "cannot choose the account yourself"),
    ]
    for options, expected in cases:
        message = refusal(ahub, OUTSIDER, options)
        assert expected in message, (options, message)
    assert job_ids(acluster) == before  # nothing reached the queue
    # the controller refuses the same on its own (the hub's check is the friendly first line)
    # (sbatch --uid as root: the hub's own way of submitting for a user)
    r = acluster.run("sbatch", f"--uid={OUTSIDER}", "-A", "class101", "-o", "/dev/null", "--wrap=true", cwd="/tmp")
    assert r.returncode != 0 and "Invalid account" in r.stderr
    r = acluster.run("sbatch", f"--uid={OUTSIDER}", "-p", "solo", "--reservation=lab101", "-o", "/dev/null",
                     "--wrap=true", cwd="/tmp")
    assert r.returncode != 0 and "Access denied to requested reservation" in r.stderr
    # the form offers the outsider only their own: no class reservation, the class profile disabled
    page = ahub.browser_session(OUTSIDER).get(ahub.url + "/hub/spawn", timeout=30).text
    assert '<option value="physics" selected>physics (default)</option>' in page
    assert 'value="class" disabled' in page and "may not charge account &#x27;class101&#x27;" in page
    assert 'name="reservation"' not in page  # no reservation admits them: no reservation choice


def test_a_student_in_the_reservations_group_sees_it_and_the_server_runs_in_it(ahub, acluster):
    page = ahub.browser_session(STUDENT).get(ahub.url + "/hub/spawn", timeout=30).text
    assert re.search(r'<option value="lab101">lab101: active until [^<]* on n3</option>', page), page[-3000:]
    assert '<option value="exam">exam: from ' in page
    assert 'value="class" checked' in page or 'value="class">' in page  # offered, not disabled
    assert 'value="class" disabled' not in page
    assert ahub.spawn(STUDENT, {"profile": "class"}).status_code in (201, 202)
    events = ahub.progress(STUDENT)
    job_id = re.search(r"Submitted job (\d+)", messages(events)).group(1)
    job = acluster.job(job_id)
    assert (job["Reservation"], job["Account"], job["NodeList"]) == ("lab101", "class101", "n3"), job
    assert job["UserId"].startswith(STUDENT + "(")
    can_run = subprocess.run(["su", STUDENT, "-s", "/bin/sh", "-c", f"test -x {sys.executable}"]).returncode == 0
    if can_run:
        assert events[-1].get("ready"), messages(events)
        ahub.stop_server(STUDENT)
    else:  # this machine's Python is in root's private home: the job ran, in the reservation, and failed
        assert events[-1].get("failed") and "ended before the server started" in events[-1]["message"]


def test_waiting_for_a_reservation_says_which_and_when_it_starts(ahub, acluster):
    assert ahub.spawn(STUDENT, {"profile": "custom", "partition": "debug", "reservation": "exam",
                                "cpus": "1", "memory": "512M", "time": "20"}).status_code in (201, 202)
    thread, events = ahub.progress_in_background(STUDENT)
    start = Client(acluster.socket).reservation("exam")["start_time"]
    expected = f"waiting for reservation exam, starting at {time.strftime('%H:%M', time.localtime(start))}"
    deadline = time.time() + 30
    while time.time() < deadline and expected not in messages(events):
        time.sleep(0.2)
    text = messages(events)
    assert expected in text, text
    job_id = re.search(r"Submitted job (\d+)", text).group(1)
    acluster.run("scancel", job_id)
    thread.join(60)
    assert events[-1].get("failed"), messages(events)
