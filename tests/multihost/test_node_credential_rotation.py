"""A node credential replaced in its file is taken up by the running node daemon.

When the controller refuses the credential (expired, or signed with a key that
was rotated) the daemon re-reads its token file, so renewing a credential is
`batchhub node-token ... -o FILE` on the controller's host and a copy, with no
restart of the daemon and of the jobs it runs.
"""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(180)


def _mint(c, lifespan=None):
    argv = [sys.executable, "-m", "batch_backend.admin", "node-token", "--nodes", "n[1-3]", "-o", c.token_path]
    if lifespan:
        argv += ["--lifespan", str(lifespan)]
    r = subprocess.run(argv, env=c.env("ctl"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_an_expired_node_credential_renewed_in_its_file_brings_the_node_back(netns_cluster):
    c = netns_cluster
    # n3's daemon starts with a credential that expires in a few seconds
    _mint(c, lifespan=4)
    c.stop("n3")
    c.start_node("n3")
    c.wait_nodes(["n3"], ("idle",))
    # refused once it expires: the node stops answering and is declared dead
    c.wait_nodes(["n3"], ("down*",), timeout=40)
    assert "401" in c.log_tail("n3", 20000) or "expired" in c.log_tail("n3", 20000)
    # the admin renews the credential in the file; the daemon takes it up by itself
    _mint(c)
    c.wait_nodes(["n3"], ("idle", "mix", "alloc"), timeout=40)
    assert "node credential reloaded" in c.log_tail("n3", 20000)
    job = c.sbatch("-w", "n3", "--wrap", "hostname")
    assert c.wait_state(job, ("COMPLETED", "FAILED"), timeout=30) == "COMPLETED"
