"""Fixtures for the kernel-side tests: a real IPython shell wired to the live test cluster.

The magics run in an ``InteractiveShell`` (the same object a Jupyter kernel
wraps) against the session ``cluster`` of ``tests/conftest.py``; nothing of the
queue is mocked. ``backend_name`` runs a test once through
``batch_backend.client`` and once through the installed Slurm commands.
"""

import pytest
from IPython.core.interactiveshell import InteractiveShell

from kernel_ext.ipcluster_magic import IPClusterMagics
from kernel_ext.magics import SlurmMagics


@pytest.fixture(scope="session")
def ip():
    """The IPython shell with the queue magics registered."""
    shell = InteractiveShell.instance()
    shell.register_magics(SlurmMagics)
    shell.register_magics(IPClusterMagics)
    return shell


@pytest.fixture
def magics(ip):
    """The registered SlurmMagics instance (its traits are reset after the test)."""
    instance = ip.magics_manager.registry["SlurmMagics"]
    saved = instance.watch_widget, instance.poll_interval, instance.tail_lines
    instance.poll_interval = 0.2
    yield instance
    instance.watch_widget, instance.poll_interval, instance.tail_lines = saved
    instance.last_watch = None


@pytest.fixture
def kernel_env(cluster, monkeypatch, tmp_path):
    """The kernel's environment: the cluster's socket, the CLI on PATH, a fresh working directory."""
    for key in ("BATCHHUB_HOME", "BATCHHUB_SOCKET", "BATCHHUB_CONF", "PATH"):
        monkeypatch.setenv(key, cluster.env[key])
    for key in ("SLURM_JOB_ID", "BATCHHUB_MAGICS_BACKEND", "BATCHHUB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=["batchhub", "cli"])
def backend_name(request, kernel_env, monkeypatch):
    """Run the test through BatchHub's client, then through the Slurm command line."""
    monkeypatch.setenv("BATCHHUB_MAGICS_BACKEND", request.param)
    return request.param


@pytest.fixture
def queue_down(kernel_env, monkeypatch):
    """A kernel whose controller address leads nowhere."""
    monkeypatch.setenv("BATCHHUB_SOCKET", str(kernel_env / "no-controller.sock"))


@pytest.fixture
def cancel_after(cluster):
    """Collect job ids to cancel at teardown (held jobs must not linger in the shared cluster)."""
    ids = []
    yield ids
    if ids:
        cluster.run("scancel", *map(str, ids))
