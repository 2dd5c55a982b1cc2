"""Output paths cannot write where the job's user could not (path traversal, absolute paths, symlinks).

The node daemon runs as root but opens a job's stdout/stderr/stdin only after
dropping to the job's uid/gid/groups (noded/forkserver.run_child), so the kernel's
permission checks are the user's own: ``-o /root/evil.out``, ``-o ../../..``
escapes, and symlinks planted in the user's directory (to a root-owned file or
into a root-only directory) all fail the job at launch with a reason that names
the path, and create or change nothing. Tested as a throwaway Unix user.
"""

import os
import shutil
import tempfile
import uuid

import pytest

from cluster_support import REPO, TEST_CONF, USER_PYTHON, shared_cluster, throwaway_users


pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to create a throwaway Unix user")


@pytest.fixture(scope="module")
def user():
    for names in throwaway_users("p"):
        yield names[0]


@pytest.fixture(scope="module")
def cluster(user):
    if not os.access(USER_PYTHON, os.X_OK):
        pytest.skip(f"{USER_PYTHON} is needed to run the CLI as another user")
    yield from shared_cluster(TEST_CONF, "batchhub-paths-")


@pytest.fixture
def user_dir(cluster, user):
    """A directory the user owns, as their working directory."""
    import pwd
    d = cluster.path(f"u-{uuid.uuid4().hex[:6]}")
    os.makedirs(d)
    pw = pwd.getpwnam(user)
    os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


@pytest.fixture
def root_file():
    """A root-owned, world-readable file outside the user's reach for writing."""
    fd, path = tempfile.mkstemp(prefix="bh-target-", dir="/var/tmp")
    os.write(fd, b"original\n")
    os.close(fd)
    os.chmod(path, 0o644)
    yield path
    os.unlink(path)


@pytest.fixture
def root_dir():
    """A root-only directory (like /root) that must stay empty."""
    d = tempfile.mkdtemp(prefix="bh-rootonly-", dir="/var/tmp")
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def submit_as(cluster, user, workdir, *args):
    code = f"import sys; sys.path.insert(0, {REPO!r}); from batch_backend.cli.sbatch import main; sys.exit(main())"
    r = cluster.run(USER_PYTHON, "-c", code, "--parsable", "-D", workdir, *args, user=user, cwd=workdir)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def assert_launch_failed(cluster, job_id, path_fragment):
    """FAILED 0:53 with 'launch failed: cannot create output file ...: Permission denied' (or the like)."""
    assert cluster.wait_state(job_id, {"FAILED"}) == "FAILED"
    assert cluster.acct(job_id, "JobID,State,ExitCode")[0] == [str(job_id), "FAILED", "0:53"]
    reason = cluster.job(job_id)["Reason"]
    assert reason.startswith("launch failed: cannot "), reason
    assert path_fragment in reason and "Permission denied" in reason, reason


def test_absolute_output_path_in_a_root_only_directory_fails_the_job(cluster, user, user_dir, root_dir):
    target = os.path.join(root_dir, "evil.out")
    job_id = submit_as(cluster, user, user_dir, "-o", target, "--wrap", "echo pwned")
    assert_launch_failed(cluster, job_id, target)
    assert os.listdir(root_dir) == []


def test_root_home_is_out_of_reach(cluster, user, user_dir):
    name = f"/root/evil-{uuid.uuid4().hex[:6]}.out"
    job_id = submit_as(cluster, user, user_dir, "-o", name, "--wrap", "echo pwned")
    assert_launch_failed(cluster, job_id, name)
    assert not os.path.exists(name)


def test_dot_dot_escape_fails_and_creates_nothing(cluster, user, user_dir, root_dir):
    rel = os.path.relpath(os.path.join(root_dir, "sub", "evil.out"), user_dir)
    assert rel.startswith("..")
    job_id = submit_as(cluster, user, user_dir, "-o", rel, "--wrap", "echo pwned")
    assert cluster.wait_state(job_id, {"FAILED"}) == "FAILED"
    assert "Permission denied" in cluster.job(job_id)["Reason"]
    assert os.listdir(root_dir) == []  # not even the missing 'sub' directory


def test_symlink_to_a_root_owned_file_is_not_written_through(cluster, user, user_dir, root_file):
    os.symlink(root_file, os.path.join(user_dir, "link.out"))
    job_id = submit_as(cluster, user, user_dir, "-o", "link.out", "--wrap", "echo pwned")
    assert_launch_failed(cluster, job_id, "link.out")
    with open(root_file) as f:
        assert f.read() == "original\n"


def test_error_file_symlink_is_not_written_through_either(cluster, user, user_dir, root_file):
    os.symlink(root_file, os.path.join(user_dir, "err.link"))
    job_id = submit_as(cluster, user, user_dir, "-o", "ok.out", "-e", "err.link", "--wrap", "echo pwned >&2")
    assert_launch_failed(cluster, job_id, "err.link")
    with open(root_file) as f:
        assert f.read() == "original\n"


def test_symlinked_directory_into_root_only_space_is_not_followed_into_a_write(cluster, user, user_dir, root_dir):
    os.symlink(root_dir, os.path.join(user_dir, "d"))
    job_id = submit_as(cluster, user, user_dir, "-o", "d/evil.out", "--wrap", "echo pwned")
    assert_launch_failed(cluster, job_id, "d/evil.out")
    assert os.listdir(root_dir) == []


def test_input_file_the_user_cannot_read_fails_the_job(cluster, user, user_dir):
    job_id = submit_as(cluster, user, user_dir, "-i", "/etc/shadow", "-o", "in.out", "--wrap", "cat")
    assert cluster.wait_state(job_id, {"FAILED"}) == "FAILED"
    reason = cluster.job(job_id)["Reason"]
    assert "/etc/shadow" in reason and "Permission denied" in reason, reason
    with open(os.path.join(user_dir, "in.out")) as f:
        text = f.read()
    assert "root:" not in text


def test_output_in_the_users_own_tree_with_dot_dot_works_and_is_theirs(cluster, user, user_dir):
    import pwd
    os.makedirs(os.path.join(user_dir, "a", "b"))
    os.chown(os.path.join(user_dir, "a"), pwd.getpwnam(user).pw_uid, -1)
    os.chown(os.path.join(user_dir, "a", "b"), pwd.getpwnam(user).pw_uid, -1)
    job_id = submit_as(cluster, user, user_dir, "-o", "a/b/../../new/ok.out", "--wrap", "echo fine")
    cluster.wait_state(job_id, "COMPLETED")
    out = os.path.join(user_dir, "new", "ok.out")
    assert os.stat(out).st_uid == pwd.getpwnam(user).pw_uid
    with open(out) as f:
        assert f.read() == "fine\n"
