"""Multifactor priority with fairshare, end to end: two Unix users on a one-node cluster.

User A computes first; then both queue behind a busy node and B's job starts
first although A submitted earlier. sprio shows the factors that sum to each
priority, sshare shows both users' usage, the usage survives a kill -9 of the
controller, and the age factor grows while a job waits.
"""

import os
import time

import pytest

from cluster_support import USER_PYTHON, as_user, shared_cluster, throwaway_users


pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to create throwaway Unix users")

CONF = """\
ClusterName=fair
SlurmdParameters=config_overrides
SlurmdTimeout=30
KillWait=1
PriorityType=priority/multifactor
PriorityWeightFairshare=100000
PriorityWeightAge=1000
PriorityWeightJobSize=100
PriorityMaxAge=0:30
PriorityCalcPeriod=0:01
PriorityDecayHalfLife=7-0
NodeName=n1 CPUs=2 RealMemory=1000
PartitionName=debug Nodes=ALL Default=YES MaxTime=10 State=UP
"""


@pytest.fixture(scope="module")
def users():
    yield from throwaway_users("ab", prefix="fs", random_len=5)  # 8 chars: sprio cuts USER at 8


@pytest.fixture(scope="module")
def cluster(users):
    if not os.access(USER_PYTHON, os.X_OK):
        pytest.skip(f"{USER_PYTHON} is needed to run the CLI as another user")
    yield from shared_cluster(CONF, "batchhub-fair-")



def submit_as(cluster, user, *args):
    r = as_user(cluster, user, "sbatch", "--parsable", "-D", cluster.workdir, "-o", "/dev/null", "-t", "1", *args)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return int(r.stdout)


def table(text):
    """Whitespace table -> list of dicts keyed by the header line."""
    lines = text.splitlines()
    head = lines[0].split()
    return [dict(zip(head, line.split())) for line in lines[1:]]


def usage_of(cluster):
    r = cluster.run("sshare", "-a", "-P", "-o", "Account,User,RawUsage,FairShare")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    rows = [line.split("|") for line in r.stdout.splitlines()[1:]]
    return {user: (int(raw), float(fs)) for _, user, raw, fs in rows if user}


def wait_for(predicate, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_fairshare_puts_the_light_user_first(cluster, users):
    a, b = users
    first = submit_as(cluster, a, "-n", "2", "--wrap=sleep 2")   # A computes: 2 CPUs x ~2 s
    cluster.wait_state(first, "COMPLETED", timeout=30)
    assert wait_for(lambda: usage_of(cluster).get(a, (0, 1))[0] >= 3)
    blocker = submit_as(cluster, a, "-n", "2", "--wrap=sleep 30")
    cluster.wait_state(blocker, "RUNNING")
    a_job = submit_as(cluster, a, "-n", "2", "--wrap=sleep 1")   # A asks first...
    b_job = submit_as(cluster, b, "-n", "2", "--wrap=sleep 1")   # ...B second
    prio = {int(r["JOBID"]): r for r in table(cluster.run("sprio", "-l").stdout)}
    assert int(prio[b_job]["FAIRSHARE"]) > int(prio[a_job]["FAIRSHARE"])
    assert int(prio[b_job]["PRIORITY"]) > int(prio[a_job]["PRIORITY"])
    assert cluster.run("scancel", str(blocker)).returncode == 0  # the node frees up: who goes first?
    for job_id in (a_job, b_job):
        cluster.wait_state(job_id, "COMPLETED", timeout=30)
    starts = {int(job_id): start for job_id, start in cluster.acct(f"{a_job},{b_job}", "JobID,Start")
              if job_id.isdigit()}
    assert starts[b_job] < starts[a_job]  # B's job went first: fairshare reordered the queue


def test_sprio_long_factors_sum_to_the_priority(cluster, users):
    a, b = users
    blocker = submit_as(cluster, a, "-n", "2", "--wrap=sleep 30")
    cluster.wait_state(blocker, "RUNNING")
    jobs = [submit_as(cluster, a, "-n", "1", "--wrap=true"), submit_as(cluster, b, "-n", "2", "--wrap=true")]
    r = cluster.run("sprio", "-l")
    assert r.returncode == 0 and r.stderr == ""
    head = r.stdout.splitlines()[0].split()
    assert head == ["JOBID", "PARTITION", "USER", "PRIORITY", "SITE", "AGE", "ASSOC", "FAIRSHARE", "JOBSIZE",
                    "PARTITION", "QOS", "NICE", "TRES"]
    rows = {int(line.split()[0]): line.split() for line in r.stdout.splitlines()[1:]}
    for job_id in jobs:
        _, _, user, priority, site, age, assoc, fs, size, part, qos, nice = rows[job_id][:12]
        total = sum(int(x) for x in (site, age, assoc, fs, size, part, qos)) - int(nice)
        # each weighted column is rounded for display; the priority is the truncated exact sum
        assert abs(total - int(priority)) <= 3, rows[job_id]
        assert user == (a if job_id == jobs[0] else b)
    # the default format shows only the factors with a weight, and -u adds USER
    head = cluster.run("sprio", "-u", b).stdout.splitlines()[0].split()
    assert head == ["JOBID", "PARTITION", "USER", "PRIORITY", "SITE", "AGE", "FAIRSHARE", "JOBSIZE"]
    weights = cluster.run("sprio", "-w").stdout.splitlines()[1].split()
    assert weights == ["Weights", "1", "1000", "100000", "100"]
    assert cluster.run("sprio", "-j", "999999").stdout == "Unable to find jobs matching user/id(s) specified\n"
    cluster.run("scancel", str(blocker))
    for job_id in jobs:
        cluster.wait_state(job_id, "COMPLETED", timeout=30)


def test_sshare_shows_both_users_with_usage_and_it_survives_kill_9(cluster, users):
    a, b = users
    ran = [submit_as(cluster, a, "-n", "2", "--wrap=sleep 1"), submit_as(cluster, b, "-n", "1", "--wrap=sleep 1")]
    for job_id in ran:
        cluster.wait_state(job_id, "COMPLETED", timeout=30)
    before = usage_of(cluster)
    assert before[a][0] > 0 and before[b][0] > 0
    heavy, light = (a, b) if before[a][0] > before[b][0] else (b, a)
    assert before[heavy][1] < before[light][1]  # the heavier user has the lower fairshare factor
    r = cluster.run("sshare", "-a")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["Account", "User", "RawShares", "NormShares", "RawUsage", "EffectvUsage", "FairShare"]
    assert lines[1].startswith("-------------------- ---------- ")
    assert lines[2].startswith("root ") and lines[2][21:31].strip() == ""  # the root account row, no user
    assert any(line.startswith(" root") and line.split()[1] == a for line in lines[2:])
    mine = as_user(cluster, a, "sshare", "-n", "-P", "-o", "User")  # without -a: the caller's own rows
    assert mine.returncode == 0 and mine.stderr == ""
    assert {u for u in mine.stdout.split()} == {a}
    time.sleep(1.5)  # the controller journals usage once a second
    cluster.kill_controller()
    cluster.start_controller()
    after = usage_of(cluster)
    for user in (a, b):
        assert after[user][0] >= before[user][0] - 1, (before, after)


def test_age_factor_grows_while_a_job_waits(cluster, users):
    a, _ = users
    blocker = submit_as(cluster, a, "-n", "2", "--wrap=sleep 30")
    cluster.wait_state(blocker, "RUNNING")
    waiting = submit_as(cluster, a, "-n", "2", "--wrap=true")

    def age():
        r = cluster.run("sprio", "-j", str(waiting), "-h", "-o", "%a %A")
        return float(r.stdout.split()[0]), int(r.stdout.split()[1])

    def stored_priority():
        return int(cluster.run("squeue", "-h", "-j", str(waiting), "-o", "%Q").stdout)

    first, first_stored = age(), stored_priority()
    time.sleep(2.5)
    second = age()
    assert second[0] > first[0] + 0.05 and second[1] > first[1]  # ~1/30 of PriorityMaxAge per second
    # the stored priority (squeue %Q) is recomputed every PriorityCalcPeriod (1 s here); it moves
    # with age and with the blocker's growing usage, which lowers this user's fairshare
    assert stored_priority() != first_stored
    cluster.run("scancel", str(blocker))
    cluster.wait_state(waiting, "COMPLETED", timeout=30)
