"""Fixtures for IPyParallel and Dask on a real BatchHub cluster.

IPyParallel's Cluster and dask-jobqueue run in the test process and reach the
queue the way a kernel does: through ``$BATCHHUB_SOCKET`` (our launchers, via
``batch_backend.client``) or the CLI on ``$PATH`` (the unmodified Slurm
launchers). So the session's cluster environment is put into ``os.environ``
and the working directory is the cluster's work dir (batch files, job logs).
"""

import os

import pytest

ENV_KEYS = ("BATCHHUB_HOME", "BATCHHUB_SOCKET", "BATCHHUB_CONF", "PATH")


@pytest.fixture(scope="session")
def batchhub_env(cluster):
    saved = {key: os.environ.get(key) for key in ENV_KEYS + ("SLURM_JOB_ID",)}
    cwd = os.getcwd()
    os.environ.update({key: cluster.env[key] for key in ENV_KEYS})
    os.environ.pop("SLURM_JOB_ID", None)
    os.chdir(cluster.workdir)
    yield cluster
    os.chdir(cwd)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

