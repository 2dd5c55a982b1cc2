"""Identity from the socket: jobs run as their submitter; users touch only their own jobs."""

import os
import pwd
import subprocess
import uuid

import pytest

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to create throwaway Unix users")


@pytest.fixture(scope="module")
def two_users():
    names = [f"bh{uuid.uuid4().hex[:6]}a", f"bh{uuid.uuid4().hex[:6]}b"]
    for n in names:
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", n], check=True)
    yield names
    for n in names:
        subprocess.run(["userdel", n], check=False)


@pytest.fixture
def shared_workdir(cluster, two_users):
    d = cluster.path(f"shared-{uuid.uuid4().hex[:6]}")
    os.makedirs(d)
    os.chmod(d, 0o1777)
    os.chmod(cluster.home, 0o755)
    os.chmod(cluster.workdir, 0o755)
    return d


def test_job_runs_as_the_submitting_user(cluster, two_users, shared_workdir):
    alice = two_users[0]
    pw = pwd.getpwnam(alice)
    r = cluster.run("sbatch", "--parsable", "-o", "whoami.out", "--wrap=id -u; id -g; echo $SLURM_JOB_USER",
                    user=alice, cwd=shared_workdir)
    assert r.returncode == 0, r.stderr
    job_id = int(r.stdout)
    cluster.wait_state(job_id, "COMPLETED")
    out = os.path.join(shared_workdir, "whoami.out")
    assert os.stat(out).st_uid == pw.pw_uid
    with open(out) as f:
        assert f.read().split() == [str(pw.pw_uid), str(pw.pw_gid), alice]
    assert cluster.acct(job_id, "JobID,User")[0] == [str(job_id), alice]


def test_user_cannot_cancel_or_change_another_users_job(cluster, two_users, shared_workdir):
    alice, bob = two_users
    r = cluster.run("sbatch", "--parsable", "--hold", "--wrap=true", user=alice, cwd=shared_workdir)
    job_id = r.stdout.strip()
    r = cluster.run("scancel", job_id, user=bob, cwd=shared_workdir)
    assert r.returncode == 1
    assert r.stderr == f"scancel: error: Kill job error on job id {job_id}: Access/permission denied\n"
    r = cluster.run("scontrol", "release", job_id, user=bob, cwd=shared_workdir)
    assert r.returncode != 0 and "permission denied" in r.stderr.lower()
    r = cluster.run("scontrol", "update", f"JobId={job_id}", "JobName=stolen", user=bob, cwd=shared_workdir)
    assert r.returncode != 0 and "permission denied" in r.stderr.lower()
    assert cluster.state(job_id) == "PENDING"
    assert cluster.job(job_id)["JobName"] == "wrap"
    # the owner may
    assert cluster.run("scancel", job_id, user=alice, cwd=shared_workdir).returncode == 0
    assert cluster.state(job_id).startswith("CANCELLED")


def test_non_admin_cannot_drain_nodes(cluster, two_users, shared_workdir):
    r = cluster.run("scontrol", "update", "NodeName=n1", "State=DRAIN", "Reason=evil", user=two_users[1],
                    cwd=shared_workdir)
    assert r.returncode != 0 and "permission denied" in r.stderr.lower()
    assert "drain" not in cluster.run("sinfo", "-h", "-N", "-n", "n1", "-o", "%t").stdout
