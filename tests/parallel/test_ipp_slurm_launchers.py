"""IPyParallel's own, unmodified Slurm launchers against BatchHub's sbatch/scancel."""

import os

import pytest
from ipyparallel import interactive
from parallel_helpers import wait_job_final, wait_no_processes

pytestmark = pytest.mark.timeout(120)


def test_ipp_slurm_launchers_run_a_cluster_on_batchhub(batchhub_env, tmp_path):
    import ipyparallel as ipp
    c = ipp.Cluster(controller="slurm", engines="slurm", n=2, cluster_id=f"s{os.getpid()}",
                    profile_dir=str(tmp_path / "profile"), delay=0, engine_timeout=90,
                    controller_args=["--HeartMonitor.period=500"], shutdown_atexit=False)
    rc = c.start_and_connect_sync()
    try:
        rc.wait_for_engines(2, timeout=90)
        nodes = rc[:].apply_sync(interactive(lambda: __import__("os").environ["SLURM_JOB_ID"]))
        engine_job = next(iter(c.engines.values())).job_id
        assert nodes == [engine_job, engine_job]
        assert rc.load_balanced_view().map_sync(interactive(lambda x: x + 1), range(10)) == list(range(1, 11))
        controller_job = c.controller.job_id
    finally:
        rc.close()
        c.stop_cluster_sync()
    assert wait_job_final(controller_job) == "CANCELLED"
    assert wait_job_final(engine_job) == "CANCELLED"
    assert wait_no_processes("IPP_CLUSTER_ID", c.cluster_id) == []
