"""Accounts, users, associations, QOS and limits through sacctmgr, sbatch and squeue (enforcement on)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from cluster_support import BIN, TEST_CONF, LiveCluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER_PYTHON = "/usr/bin/python3"
ENFORCED_CONF = TEST_CONF + (
    "AccountingStorageEnforce=associations,limits,qos\n"
    "PartitionName=chem Nodes=n3 AllowAccounts=chem\n"
    "PartitionName=secret Nodes=n3 Hidden=YES\n"
    "PartitionName=closed Nodes=n3 State=INACTIVE\n")
POLICY = ("sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
          "(job submit limit, user's size and/or time limits)\n")
BAD_ACCOUNT = "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified\n"
BAD_QOS = "sbatch: error: Batch job submission failed: Invalid qos specification\n"


@pytest.fixture(scope="module")
def cluster():
    """A cluster that enforces associations, limits and QOS, in a directory other users can reach."""
    home = tempfile.mkdtemp(prefix="batchhub-accounts-")
    os.chmod(home, 0o755)
    c = LiveCluster(home, ENFORCED_CONF)
    os.chmod(c.workdir, 0o1777)
    c.up()
    yield c
    c.down()
    shutil.rmtree(home, ignore_errors=True)


def sacctmgr(cluster, *args, input=None):
    exe = os.path.join(BIN, "sacctmgr")
    argv = [exe] if os.path.exists(exe) else [sys.executable, "-m", "batch_backend.cli.sacctmgr"]
    return cluster.run(*argv, *args, input=input)


def ok(r):
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout


def name(prefix):
    return f"{prefix}{uuid.uuid4().hex[:5]}"


def job_count(cluster):
    return len(ok(cluster.run("sacct", "-P", "-n", "-X", "-o", "JobID")).splitlines())


def reason(cluster, job_id):
    return ok(cluster.run("squeue", "-h", "-j", str(job_id), "-o", "%r")).strip()


def wait_reason(cluster, job_id, want, timeout=15):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = reason(cluster, job_id)
        if got == want:
            return got
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} reason {got!r}, expected {want!r}")


def test_account_tree_and_default_account(cluster):
    physics, theory = name("phys"), name("theo")
    out = ok(sacctmgr(cluster, "-i", "add", "account", physics, "Description=Physics", "fairshare=40"))
    assert out.startswith(" Adding Account(s)\n  " + physics + "\n")
    ok(sacctmgr(cluster, "-i", "add", "account", theory, f"parent={physics}", "fairshare=10"))
    ok(sacctmgr(cluster, "-i", "add", "user", "root", f"account={theory}"))
    rows = ok(sacctmgr(cluster, "show", "assoc", "-P", "-n", "where", f"account={physics},{theory}",
                       "format=account,user,share,qos")).splitlines()
    assert rows == [f"{physics}||40|normal", f"{theory}||10|normal", f"{theory}|root|1|normal"]
    tree = ok(sacctmgr(cluster, "show", "account", theory, "withassoc", "-P", "format=account,parentname,user"))
    assert tree.splitlines() == ["Account|Par Name|User", f"{theory}|{physics}|", f"{theory}||root"]
    ok(sacctmgr(cluster, "-i", "modify", "user", "root", "set", f"defaultaccount={theory}"))
    assert ok(sacctmgr(cluster, "show", "user", "root", "-P", "-n")) == f"root|{theory}|Administrator\n"
    job_id = cluster.sbatch("--hold", "--wrap=true")
    assert ok(cluster.run("squeue", "-h", "-j", str(job_id), "-o", "%a %q")) == f"{theory} normal\n"
    assert cluster.job(job_id)["Account"] == theory
    assert cluster.acct(job_id, "JobID,Account,QOS")[0] == [str(job_id), theory, "normal"]
    ok(sacctmgr(cluster, "-i", "modify", "user", "root", "set", "defaultaccount=root"))
    cluster.run("scancel", str(job_id))


def test_unknown_or_disallowed_account_and_qos_are_refused_and_nothing_is_stored(cluster):
    other, high = name("oth"), name("high")
    ok(sacctmgr(cluster, "-i", "add", "account", other))
    ok(sacctmgr(cluster, "-i", "add", "qos", high, "priority=10"))
    before = job_count(cluster)
    for args, err in [(["-A", "nosuchaccount"], BAD_ACCOUNT), (["-A", other], BAD_ACCOUNT),
                      (["--qos=nosuchqos"], BAD_QOS), ([f"--qos={high}"], BAD_QOS)]:
        r = cluster.run("sbatch", *args, "--wrap=true")
        assert (r.returncode, r.stdout, r.stderr) == (1, "", err), args
    assert job_count(cluster) == before
    ok(sacctmgr(cluster, "-i", "modify", "account", "root", "set", f"qos+={high}"))
    job_id = cluster.sbatch(f"--qos={high}", "--hold", "--wrap=true")
    assert ok(cluster.run("squeue", "-h", "-j", str(job_id), "-o", "%q")) == f"{high}\n"
    cluster.run("scancel", str(job_id))
    ok(sacctmgr(cluster, "-i", "modify", "account", "root", "set", f"qos-={high}"))


def test_max_submit_jobs_rejects_the_extra_submission(cluster):
    acct = name("sub")
    ok(sacctmgr(cluster, "-i", "add", "account", acct, "MaxSubmitJobs=1"))
    ok(sacctmgr(cluster, "-i", "add", "user", "root", f"account={acct}"))
    first = cluster.sbatch("-A", acct, "--hold", "--wrap=true")
    before = job_count(cluster)
    r = cluster.run("sbatch", "-A", acct, "--wrap=true")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", POLICY)
    assert job_count(cluster) == before
    cluster.run("scancel", str(first))
    cluster.wait_state(first, "CANCELLED")
    cluster.run("scancel", str(cluster.sbatch("-A", acct, "--hold", "--wrap=true")))  # room again


def test_max_jobs_keeps_the_second_job_pending_until_the_first_ends(cluster):
    acct = name("mj")
    ok(sacctmgr(cluster, "-i", "add", "account", acct, "MaxJobs=1"))
    ok(sacctmgr(cluster, "-i", "add", "user", "root", f"account={acct}"))
    first = cluster.sbatch("-A", acct, "-o", "/dev/null", "--wrap=sleep 2")
    second = cluster.sbatch("-A", acct, "-o", "/dev/null", "--wrap=true")
    cluster.wait_state(first, "RUNNING")
    wait_reason(cluster, second, "AssocMaxJobsLimit")
    cluster.wait_state(first, "COMPLETED", timeout=30)
    cluster.wait_state(second, "COMPLETED", timeout=30)


def test_grp_cpu_limit_reason_and_other_jobs_still_start(cluster):
    acct = name("grp")
    ok(sacctmgr(cluster, "-i", "add", "account", acct, "GrpTRES=cpu=2"))
    ok(sacctmgr(cluster, "-i", "add", "user", "root", f"account={acct}"))
    big = cluster.sbatch("-A", acct, "-n", "2", "-o", "/dev/null", "--wrap=sleep 30")
    cluster.wait_state(big, "RUNNING")
    waiting = cluster.sbatch("-A", acct, "-n", "1", "-o", "/dev/null", "--wrap=true")
    wait_reason(cluster, waiting, "AssocGrpCpuLimit")
    other = cluster.sbatch("-o", "/dev/null", "--wrap=true")  # account root: not limited, not blocked
    cluster.wait_state(other, "COMPLETED")
    assert reason(cluster, waiting) == "AssocGrpCpuLimit"
    cluster.run("scancel", str(big), str(waiting))


def test_qos_max_jobs_per_user_reason(cluster):
    q = name("q")
    ok(sacctmgr(cluster, "-i", "add", "qos", q, "MaxJobsPerUser=1"))
    ok(sacctmgr(cluster, "-i", "modify", "account", "root", "set", f"qos+={q}"))
    first = cluster.sbatch(f"--qos={q}", "-o", "/dev/null", "--wrap=sleep 30")
    second = cluster.sbatch(f"--qos={q}", "-o", "/dev/null", "--wrap=true")
    cluster.wait_state(first, "RUNNING")
    wait_reason(cluster, second, "QOSMaxJobsPerUserLimit")
    cluster.run("scancel", str(first), str(second))


def test_partition_allow_accounts_and_max_time(cluster):
    r = cluster.run("sbatch", "-p", "chem", "--wrap=true")
    assert (r.returncode, r.stderr) == (1, BAD_ACCOUNT)
    job_id = cluster.sbatch("-p", "short", "-t", "10", "-o", "/dev/null", "--wrap=true")
    wait_reason(cluster, job_id, "PartitionTimeLimit")
    cluster.run("scancel", str(job_id))


def test_inactive_partition_refuses_submissions(cluster):
    r = cluster.run("sbatch", "-p", "closed", "--wrap=true")
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "", "sbatch: error: Batch job submission failed: Required partition not available (inactive or drain)\n")


def test_hidden_partition_jobs_show_only_with_all(cluster):
    job_id = cluster.sbatch("-p", "secret", "--hold", "--wrap=true")
    assert str(job_id) not in ok(cluster.run("squeue", "-h", "-o", "%i")).split()
    assert str(job_id) in ok(cluster.run("squeue", "-a", "-h", "-o", "%i")).split()
    assert "secret" not in ok(cluster.run("sinfo", "-h", "-o", "%P"))
    assert "secret" in ok(cluster.run("sinfo", "-a", "-h", "-o", "%P"))
    assert "PartitionName=secret" not in ok(cluster.run("scontrol", "show", "partition"))
    assert "PartitionName=secret" in ok(cluster.run("scontrol", "-a", "show", "partition"))
    assert "Hidden=YES" in ok(cluster.run("scontrol", "show", "partition", "secret"))
    cluster.run("scancel", str(job_id))


def test_without_immediate_the_answer_on_stdin_decides(cluster):
    kept, dropped = name("keep"), name("drop")
    out = ok(sacctmgr(cluster, "add", "account", dropped, input="n\n"))
    assert out.endswith("Would you like to commit changes? (You have 30 seconds to decide)\n(N/y): \n"
                        " Changes Discarded\n")
    ok(sacctmgr(cluster, "add", "account", kept, input="y\n"))
    shown = ok(sacctmgr(cluster, "show", "account", "-n", "-P", "format=account")).split()
    assert kept in shown and dropped not in shown


def test_associations_survive_a_controller_kill(cluster):
    acct = name("dur")
    ok(sacctmgr(cluster, "-i", "add", "account", acct, "fairshare=7", "MaxJobs=3"))
    cluster.kill_controller()
    cluster.start_controller()
    row = ok(sacctmgr(cluster, "show", "assoc", "-P", "-n", "where", f"account={acct}",
                      "format=account,share,maxjobs"))
    assert row == f"{acct}|7|3\n"
    cluster.wait_nodes_up()


@pytest.fixture(scope="module")
def plain_user():
    if os.getuid() != 0 or not os.access(USER_PYTHON, os.X_OK):
        pytest.skip("needs root and /usr/bin/python3 to run sacctmgr as a throwaway user")
    user = f"bh{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", user], check=True)
    yield user
    subprocess.run(["userdel", user], check=False)


def test_non_admin_may_read_but_not_change(cluster, plain_user):
    acct = name("adm")
    ok(sacctmgr(cluster, "-i", "add", "account", acct))
    code = f"import sys; sys.path.insert(0, {REPO!r}); from batch_backend.cli.sacctmgr import main; main()"
    r = cluster.run(USER_PYTHON, "-c", code, "-i", "modify", "account", acct, "set", "fairshare=5", user=plain_user)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", " Error with request: Access/permission denied\n")
    r = cluster.run(USER_PYTHON, "-c", code, "-i", "add", "account", name("x"), user=plain_user)
    assert (r.returncode, r.stderr) == (1, " Problem adding accounts: Access/permission denied\n")
    r = cluster.run(USER_PYTHON, "-c", code, "show", "assoc", "-P", "-n", "where", f"account={acct}",
                    "format=account,share", user=plain_user)
    assert (r.returncode, r.stdout) == (0, f"{acct}|1\n")


def test_without_enforcement_any_account_is_accepted(make_cluster):
    c = make_cluster(TEST_CONF)
    job_id = c.sbatch("-A", "whatever", "--hold", "--wrap=true")
    assert ok(c.run("squeue", "-h", "-j", str(job_id), "-o", "%a %q")) == "whatever normal\n"


def test_commands_can_come_on_stdin(cluster):
    acct = name("stdin")
    script = f"# set up\nadd account {acct} fairshare=3\ny\nshow assoc where account={acct} format=account,share\nexit\n"
    r = sacctmgr(cluster, input=script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(f"   Account     Share \n---------- --------- \n{acct[:9]}+         3 \n") \
        or r.stdout.endswith(f"{acct:>10}         3 \n")
    shown = ok(sacctmgr(cluster, "show", "assoc", "where", f"account={acct}", "format=account,share", "-P", "-n"))
    assert shown == f"{acct}|3\n"


def test_admin_level_makes_a_user_an_administrator(cluster, plain_user):
    acct = name("op")
    code = f"import sys; sys.path.insert(0, {REPO!r}); from batch_backend.cli.sacctmgr import main; main()"
    ok(sacctmgr(cluster, "-i", "add", "user", plain_user, "account=root", "AdminLevel=Operator"))
    r = cluster.run(USER_PYTHON, "-c", code, "-i", "add", "account", acct, user=plain_user)
    assert r.returncode == 0, r.stderr
    ok(sacctmgr(cluster, "-i", "delete", "user", plain_user))
    r = cluster.run(USER_PYTHON, "-c", code, "-i", "delete", "account", acct, user=plain_user)
    assert (r.returncode, r.stderr) == (1, " Error with request: Access/permission denied\n")


def test_scontrol_update_moves_a_pending_job_to_another_account_with_the_same_checks(cluster):
    acct = name("mv")
    ok(sacctmgr(cluster, "-i", "add", "account", acct))
    job_id = cluster.sbatch("--hold", "--wrap=true")
    r = cluster.run("scontrol", "update", f"JobId={job_id}", f"Account={acct}")
    assert r.returncode == 1 and "Invalid account or account/partition combination specified" in r.stderr
    ok(sacctmgr(cluster, "-i", "add", "user", "root", f"account={acct}"))
    ok(cluster.run("scontrol", "update", f"JobId={job_id}", f"Account={acct}"))
    assert cluster.job(job_id)["Account"] == acct
    r = cluster.run("scontrol", "update", f"JobId={job_id}", "QOS=nosuchqos")
    assert r.returncode == 1 and "Invalid qos specification" in r.stderr
    assert cluster.job(job_id)["QOS"] == "normal"
    cluster.run("scancel", str(job_id))
