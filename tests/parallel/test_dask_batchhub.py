"""Dask workers as BatchHub jobs: kernel_ext.dask.BatchHubCluster and unmodified SLURMCluster."""

import time

import pytest
from parallel_helpers import job_state, wait_job_final

pytestmark = pytest.mark.timeout(120)

LOOPBACK = {"host": "127.0.0.1", "dashboard_address": ":0"}


def _array_sum(client):
    import dask.array as da
    x = da.ones((400, 400), chunks=(100, 100))
    return client.compute(x.sum()).result(timeout=60)


def _wait_workers_gone(client, timeout=30):
    deadline = time.monotonic() + timeout
    while client.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.1)
    return client.scheduler_info()["workers"]


def test_job_script_retires_workers_before_the_walltime():
    from kernel_ext.dask import BatchHubCluster
    with BatchHubCluster(cores=1, memory="500MB", walltime="00:20:00", partition="debug",
                         account="physics", scheduler_options=LOOPBACK) as cluster:
        script = cluster.job_script()
    assert "#SBATCH -t 00:20:00" in script and "#SBATCH -p debug" in script and "#SBATCH -A physics" in script
    assert "--lifetime 1080s" in script  # 20 min less a 10 % margin


def test_batchhub_cluster_workers_compute_and_scale_down_cancels(batchhub_env):
    from distributed import Client

    from kernel_ext.dask import BatchHubCluster
    with BatchHubCluster(cores=1, memory="500MB", walltime="00:10:00", scheduler_options=LOOPBACK) as cluster, \
            Client(cluster) as client:
        cluster.scale(jobs=2)
        client.wait_for_workers(2, timeout=60)
        jobs = [job.job_id for job in cluster.workers.values()]
        assert len(jobs) == 2 and all(job_state(j) == "RUNNING" for j in jobs)
        assert _array_sum(client) == 400 * 400
        cluster.scale(0)
        assert _wait_workers_gone(client) == {}
        assert {wait_job_final(j) for j in jobs} <= {"CANCELLED", "COMPLETED"}


def test_batchhub_cluster_adapts_between_zero_and_two(batchhub_env):
    from distributed import Client

    from kernel_ext.dask import BatchHubCluster
    with BatchHubCluster(cores=1, memory="500MB", walltime="00:10:00", scheduler_options=LOOPBACK) as cluster, \
            Client(cluster) as client:
        cluster.adapt(minimum=0, maximum=2, interval="200ms", wait_count=2, target_duration="1s")
        assert _array_sum(client) == 400 * 400
        jobs = [job.job_id for job in cluster.workers.values()] or []
        assert _wait_workers_gone(client, timeout=60) == {}, "adaptive scaling retires idle workers"
        for j in jobs:
            assert wait_job_final(j) in ("CANCELLED", "COMPLETED")


def test_unmodified_slurm_cluster_runs_on_batchhub(batchhub_env):
    from dask_jobqueue import SLURMCluster
    from distributed import Client
    with SLURMCluster(cores=1, memory="500MB", walltime="00:10:00", scheduler_options=LOOPBACK) as cluster, \
            Client(cluster) as client:
        cluster.scale(jobs=2)
        client.wait_for_workers(2, timeout=60)
        jobs = [job.job_id for job in cluster.workers.values()]
        assert client.submit(sum, range(101)).result(timeout=30) == 5050
        assert _array_sum(client) == 400 * 400
        cluster.scale(0)
        assert _wait_workers_gone(client) == {}
        assert {wait_job_final(j) for j in jobs} <= {"CANCELLED", "COMPLETED"}
