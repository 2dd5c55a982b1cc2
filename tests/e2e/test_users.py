"""Identity from the socket: jobs run as their submitter; users touch only their own jobs."""

import os
import pwd
import uuid

import pytest

from cluster_support import TEST_CONF, USER_PYTHON, as_user, shared_cluster, throwaway_users


pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to create throwaway Unix users")




@pytest.fixture(scope="module")
def two_users():
    yield from throwaway_users("ab")


@pytest.fixture(scope="module")
def cluster(two_users):
    """A cluster in a directory other users can reach (pytest's tmp dirs are 0700)."""
    if not os.access(USER_PYTHON, os.X_OK):
        pytest.skip(f"{USER_PYTHON} is needed to run the CLI as another user")
    yield from shared_cluster(TEST_CONF + "PartitionName=staff Nodes=n1 AllowGroups=root\n", "batchhub-users-")



@pytest.fixture
def shared_workdir(cluster):
    d = cluster.path(f"shared-{uuid.uuid4().hex[:6]}")
    os.makedirs(d)
    os.chmod(d, 0o1777)
    return d


def test_job_runs_as_the_submitting_user(cluster, two_users, shared_workdir):
    alice = two_users[0]
    pw = pwd.getpwnam(alice)
    r = as_user(cluster, alice, "sbatch", "--parsable", "-D", shared_workdir, "-o", "whoami.out",
                "--wrap=id -u; id -g; echo $SLURM_JOB_USER")
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
    r = as_user(cluster, alice, "sbatch", "--parsable", "--hold", "-D", shared_workdir, "--wrap=true")
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    r = as_user(cluster, bob, "scancel", job_id)
    assert r.returncode == 1
    assert r.stderr == f"scancel: error: Kill job error on job id {job_id}: Access/permission denied\n"
    r = as_user(cluster, bob, "scontrol", "release", job_id)
    assert r.returncode != 0 and "permission denied" in r.stderr.lower()
    r = as_user(cluster, bob, "scontrol", "update", f"JobId={job_id}", "JobName=stolen")
    assert r.returncode != 0 and "permission denied" in r.stderr.lower()
    assert cluster.state(job_id) == "PENDING"
    assert cluster.job(job_id)["JobName"] == "wrap"
    # the owner may
    assert as_user(cluster, alice, "scancel", job_id).returncode == 0
    assert cluster.state(job_id).startswith("CANCELLED")


def test_non_admin_cannot_drain_nodes(cluster, two_users, shared_workdir):
    r = as_user(cluster, two_users[1], "scontrol", "update", "NodeName=n1", "State=DRAIN", "Reason=evil")
    assert r.returncode != 0 and "permission denied" in r.stderr.lower()
    assert "drain" not in cluster.run("sinfo", "-h", "-N", "-n", "n1", "-o", "%t").stdout


def test_partition_allow_groups_admits_only_members(cluster, two_users, shared_workdir):
    r = as_user(cluster, two_users[0], "sbatch", "-p", "staff", "-D", shared_workdir, "--wrap=true")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.endswith("sbatch: error: Batch job submission failed: User's group not permitted to use this partition\n")
    assert cluster.run("sbatch", "-p", "staff", "-o", "/dev/null", "--wrap=true").returncode == 0  # root is
