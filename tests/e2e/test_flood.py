"""A user flooding sbatch against MaxSubmitJobs/MaxJobs: the limits hold under concurrent submissions.

test_accounts.py checks one extra submission against MaxSubmitJobs=1 and one
pending job against MaxJobs=1, sequentially. Here 20 ``sbatch`` processes race
each other (as a shell loop with ``&`` sends them): exactly the limit's worth
is accepted, every other one fails with Slurm's text and exit code 1, nothing
of a refused submission is left behind (squeue and sacct show exactly the
accepted jobs), and MaxJobs (or the QOS's MaxJobsPerUser) caps how many run at
once, the rest pending with Slurm's reason. The flood's speed is measured in
``batchhub bench flood``, not here.
"""

import concurrent.futures
import os
import shutil
import sys
import tempfile
import time
import uuid

import pytest

from cluster_support import BIN, TEST_CONF, LiveCluster

FLOOD_CONF = TEST_CONF + "AccountingStorageEnforce=associations,limits,qos\n"
POLICY = ("sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
          "(job submit limit, user's size and/or time limits)\n")


@pytest.fixture(scope="module")
def cluster():
    home = tempfile.mkdtemp(prefix="batchhub-flood-")
    c = LiveCluster(home, FLOOD_CONF)
    c.up()
    yield c
    c.down()
    shutil.rmtree(home, ignore_errors=True)


def sacctmgr(cluster, *args):
    exe = os.path.join(BIN, "sacctmgr")
    argv = [exe] if os.path.exists(exe) else [sys.executable, "-m", "batch_backend.cli.sacctmgr"]
    r = cluster.run(*argv, "-i", *args)
    assert r.returncode == 0, r.stderr


def flood(cluster, n, *args):
    """``n`` concurrent sbatch processes; returns (accepted job ids, refused results)."""
    def one(_):
        return cluster.run("sbatch", "--parsable", "-o", "/dev/null", *args, timeout=120)
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(one, range(n)))
    accepted = sorted(int(r.stdout) for r in results if r.returncode == 0)
    assert all(r.stderr == "" for r in results if r.returncode == 0)
    return accepted, [r for r in results if r.returncode != 0]


def squeue_rows(cluster, *select):
    """(job id, state, reason) of the queued jobs squeue selects (e.g. ``-A acct``)."""
    r = cluster.run("squeue", "-h", *select, "-o", "%i %T %r")
    assert r.returncode == 0, r.stderr
    return [(int(i), state, reason) for i, state, reason in (line.split(" ", 2) for line in r.stdout.splitlines())]


def watch_until_done(cluster, select, job_ids, cap, timeout=90):
    """Poll squeue until the jobs are gone, never more than ``cap`` running at once.

    Returns (most running at once, reasons seen on pending jobs).
    """
    most, reasons, rows = 0, set(), None
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = squeue_rows(cluster, *select)
        assert {i for i, _, _ in rows} <= set(job_ids)
        if not rows:
            return most, reasons
        most = max(most, sum(1 for _, state, _ in rows if state == "RUNNING"))
        reasons |= {r for _, state, r in rows if state == "PENDING"}
        assert most <= cap, rows
        time.sleep(0.1)
    raise AssertionError(f"still queued after {timeout}s: {rows}")


def sacct_ids(cluster, *select):
    r = cluster.run("sacct", "-n", "-P", "-X", *select, "-o", "JobID,State")
    assert r.returncode == 0, r.stderr
    return sorted((int(i), state) for i, state in (line.split("|") for line in r.stdout.splitlines()))


def test_flood_against_max_submit_jobs_and_max_jobs(cluster):
    account = f"fl{uuid.uuid4().hex[:6]}"
    sacctmgr(cluster, "add", "account", account, "MaxSubmitJobs=5", "MaxJobs=2")
    sacctmgr(cluster, "add", "user", "root", f"account={account}")
    accepted, refused = flood(cluster, 20, "-A", account, "--wrap=sleep 2")
    assert len(accepted) == 5 and len(refused) == 15
    assert all((r.returncode, r.stdout, r.stderr) == (1, "", POLICY) for r in refused)
    assert sorted(i for i, _, _ in squeue_rows(cluster, "-A", account)) == accepted
    assert [i for i, _ in sacct_ids(cluster, "-A", account)] == accepted  # a refused submit leaves no record
    most, reasons = watch_until_done(cluster, ["-A", account], accepted, cap=2)
    assert most == 2 and "AssocMaxJobsLimit" in reasons
    assert sacct_ids(cluster, "-A", account) == [(i, "COMPLETED") for i in accepted]
    again, refused = flood(cluster, 6, "-A", account, "--hold", "--wrap=true")  # the room came back
    assert len(again) == 5 and len(refused) == 1
    cluster.run("scancel", *map(str, again))


def test_flood_against_qos_per_user_limits(cluster):
    qos = f"fq{uuid.uuid4().hex[:6]}"
    sacctmgr(cluster, "add", "qos", qos, "MaxSubmitJobsPerUser=3", "MaxJobsPerUser=1")
    sacctmgr(cluster, "modify", "account", "root", "set", f"qos+={qos}")
    accepted, refused = flood(cluster, 10, f"--qos={qos}", "--wrap=sleep 1")
    assert len(accepted) == 3 and all((r.returncode, r.stderr) == (1, POLICY) for r in refused)
    assert sorted(i for i, _, _ in squeue_rows(cluster, "-q", qos)) == accepted
    most, reasons = watch_until_done(cluster, ["-q", qos], accepted, cap=1)
    assert most == 1 and "QOSMaxJobsPerUserLimit" in reasons
