"""IPyParallel with controller="batchhub", engines="batchhub": real jobs, real MPI engines."""

import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest
from ipyparallel import interactive
from parallel_helpers import processes_with_env, wait_job_final, wait_no_processes

pytestmark = pytest.mark.timeout(120)

FAST = ["--HeartMonitor.period=500"]


def _make_cluster(tmp_path, n, cluster_id, **engine_cfg):
    from traitlets.config import Config

    import ipyparallel as ipp
    cfg = Config()
    cfg.BatchHubLauncher.time = "10"
    for key, value in engine_cfg.items():
        cfg.BatchHubEngineSetLauncher[key] = value
    return ipp.Cluster(controller="batchhub", engines="batchhub", n=n, cluster_id=cluster_id,
                       profile_dir=str(tmp_path / "profile"), delay=0, controller_args=FAST,
                       engine_timeout=90, config=cfg, shutdown_atexit=False)


def _finished_job(cluster):
    """The id of a real job that already ended (a 'previous controller')."""
    job_id = cluster.sbatch("--wrap", "true")
    cluster.wait_state(job_id, "COMPLETED")
    return job_id


@pytest.fixture(scope="module")
def ipp_cluster(batchhub_env, tmp_path_factory):
    """n=4 engines as one job of 2 x 2 tasks, with stale connection files planted beforehand."""
    from kernel_ext.ipp import connection_file_name, shared_root
    tmp = tmp_path_factory.mktemp("ipp")
    cluster_id = f"t{os.getpid()}a"
    conn_dir = os.path.join(shared_root(), os.environ.get("USER") or _user(), "ipython", cluster_id)
    os.makedirs(conn_dir, mode=0o700, exist_ok=True)
    # leftovers of a crashed controller: IPP's generic name and an earlier job's name,
    # both pointing at a port where nothing listens
    dead = {"interface": "tcp://127.0.0.1", "registration": _closed_port(), "key": "stale",
            "location": "127.0.0.1", "pack": "json", "unpack": "json", "signature_scheme": "hmac-sha256"}
    old_job = _finished_job(batchhub_env)
    stale = [os.path.join(conn_dir, f"ipcontroller-{cluster_id}-engine.json"),
             os.path.join(conn_dir, connection_file_name(cluster_id, old_job, "engine"))]
    for path in stale:
        with open(path, "w") as f:
            json.dump(dict(dead, batchhub={"job_id": str(old_job), "instance": "old"}), f)
    c = _make_cluster(tmp, 4, cluster_id, ntasks_per_node=2)
    t0 = time.monotonic()
    rc = c.start_and_connect_sync()
    rc.wait_for_engines(4, timeout=90)
    c.ready_after = time.monotonic() - t0
    c.stale_files = stale
    yield c, rc
    rc.close()
    c.stop_cluster_sync()


def _user():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_engines_compute_a_result(ipp_cluster):
    _, rc = ipp_cluster
    assert rc[:].apply_sync(interactive(lambda x: x * 2), 21) == [42] * 4
    view = rc.load_balanced_view()
    assert view.map_sync(interactive(lambda x: x ** 2), range(32)) == [x ** 2 for x in range(32)]


def test_engines_are_mpi_ranks_of_one_step(ipp_cluster):
    c, rc = ipp_cluster

    @interactive  # functions of a test module travel by value, not by module reference
    def where():
        import os

        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        return comm.rank, comm.size, comm.allreduce(comm.rank), os.environ["SLURM_STEP_ID"], \
            os.environ["SLURMD_NODENAME"], os.environ["SLURM_JOB_ID"]

    rows = rc[:].apply_sync(where)
    assert sorted(r[0] for r in rows) == [0, 1, 2, 3]
    assert {r[1] for r in rows} == {4} and {r[2] for r in rows} == {6}
    assert len({(r[3], r[5]) for r in rows}) == 1, "all engines are tasks of one step of one job"
    assert len({r[4] for r in rows}) == 2, "2 tasks per node: the step spans two virtual nodes"
    engine_set = next(iter(c.engines.values()))
    assert {r[5] for r in rows} == {engine_set.job_id}
    assert sorted(rc.ids) == [0, 1, 2, 3]  # engine id = MPI rank
    assert rc[:].apply_sync(interactive(lambda: __import__("os").environ["SLURM_JOB_ID"]))[0] != c.controller.job_id


def test_connection_files_are_private_and_name_their_controller(ipp_cluster):
    c, _ = ipp_cluster
    for path in c.controller.connection_files.values():
        assert f"-job{c.controller.job_id}-" in os.path.basename(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as f:
            tag = json.load(f)["batchhub"]
        assert tag == {**tag, "job_id": c.controller.job_id, "instance": c.controller.instance}
    leftovers = [n for n in os.listdir(c.controller.connection_dir) if n.endswith(".tmp")]
    assert leftovers == []


def test_stale_connection_files_of_a_previous_controller_are_ignored(ipp_cluster):
    c, rc = ipp_cluster
    # the engines registered although stale files for this cluster id pointed elsewhere
    assert len(rc.ids) == 4
    assert all(os.path.exists(p) for p in c.stale_files)
    out = next(iter(c.engines.values())).get_output()
    assert f"controller job {c.controller.job_id} answers at tcp://" in out


def test_stop_cluster_cancels_both_jobs_and_leaves_no_process(batchhub_env, tmp_path):
    c = _make_cluster(tmp_path, 2, f"t{os.getpid()}b")
    rc = c.start_and_connect_sync()
    rc.wait_for_engines(2, timeout=90)
    assert rc[:].apply_sync(interactive(lambda: 1)) == [1, 1]
    controller_job = c.controller.job_id
    engine_job = next(iter(c.engines.values())).job_id
    files = list(c.controller.connection_files.values())
    running = processes_with_env("IPP_CLUSTER_ID", c.cluster_id)
    assert len(running) >= 3, "controller and both engines are visible in the process table"
    rc.close()
    c.stop_cluster_sync()
    assert wait_job_final(controller_job) == "CANCELLED"
    assert wait_job_final(engine_job) == "CANCELLED"
    assert wait_no_processes("IPP_CLUSTER_ID", c.cluster_id) == []
    assert not any(os.path.exists(p) for p in files)


def test_engines_over_several_jobs_and_dead_engines_replaced(batchhub_env, tmp_path):
    """4 engines as 2 jobs of 2; one job cancelled: its engines leave, a new job replaces them."""
    from batch_backend.client import Client
    c = _make_cluster(tmp_path, 2, f"t{os.getpid()}c")
    rc = c.start_and_connect_sync()
    rc.wait_for_engines(2, timeout=90)
    c.start_engines_sync(2)  # a second engine job, same controller
    rc.wait_for_engines(4, timeout=90)
    jobs_of = interactive(lambda: __import__("os").environ["SLURM_JOB_ID"])
    first, second = [launcher.job_id for launcher in c.engines.values()]
    assert first != second and sorted(rc[:].apply_sync(jobs_of)) == sorted([first] * 2 + [second] * 2)
    with Client() as client:
        client.cancel([second])
    assert wait_job_final(second) == "CANCELLED"
    deadline = time.monotonic() + 30
    while len(rc.ids) > 2 and time.monotonic() < deadline:  # the hub's heartbeat drops dead engines
        time.sleep(0.2)
    assert len(rc.ids) == 2 and rc[:].apply_sync(jobs_of) == [first, first]
    c.start_engines_sync(2)  # replacements
    rc.wait_for_engines(4, timeout=90)
    third = list(c.engines.values())[-1].job_id
    assert sorted(rc[:].apply_sync(jobs_of)) == sorted([first] * 2 + [third] * 2)
    assert rc[:].apply_sync(interactive(lambda x: x + 1), 1) == [2] * 4
    rc.close()
    c.stop_cluster_sync()
    assert wait_no_processes("IPP_CLUSTER_ID", c.cluster_id) == []


# -- the engines' side of the connection file, as real processes ----------------------

def _waiter(path, job_id, instance, timeout=20, reach=1):
    return subprocess.Popen(
        [sys.executable, "-m", "kernel_ext.ipp", "wait-controller", "--file", str(path), "--job-id", str(job_id),
         "--instance", instance, "--timeout", str(timeout), "--reach-timeout", str(reach)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _info(job_id, instance, port):
    return {"interface": "tcp://127.0.0.1", "registration": port, "location": "127.0.0.1",
            "key": "k", "batchhub": {"job_id": str(job_id), "instance": instance}}


def test_engine_waits_past_stale_and_half_written_files(tmp_path):
    from kernel_ext.ipp import write_json_atomic
    path = tmp_path / "ipcontroller-x-job7-engine.json"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        # a file of another controller job, then a torn one: neither may be used
        path.write_text(json.dumps(_info(6, "i", _closed_port())))
        proc = _waiter(path, 7, "i")
        time.sleep(1.0)
        assert proc.poll() is None, "accepted a stale connection file"
        path.write_text(json.dumps(_info(7, "i", port))[:40])
        time.sleep(0.8)
        assert proc.poll() is None, "accepted a half-written connection file"
        write_json_atomic(str(path), _info(7, "i", port))
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert f"answers at tcp://127.0.0.1:{port}" in out
    finally:
        listener.close()


def test_engine_that_cannot_reach_its_controller_names_the_address(tmp_path):
    from kernel_ext.ipp import write_json_atomic
    path = tmp_path / "ipcontroller-x-job9-engine.json"
    port = _closed_port()
    write_json_atomic(str(path), _info(9, "i", port))
    proc = _waiter(path, 9, "i", reach=1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert f"cannot reach the IPython controller (job 9) at tcp://127.0.0.1:{port}" in err


def test_engines_job_fails_with_the_address_it_tried(batchhub_env, tmp_path):
    """A whole engines job whose controller is gone: the job fails fast and says where it looked."""
    from kernel_ext.ipp import BatchHubEngineSetLauncher, connection_file_name, write_json_atomic
    old_job = str(_finished_job(batchhub_env))
    launcher = BatchHubEngineSetLauncher(cluster_id=f"t{os.getpid()}c", profile_dir=str(tmp_path),
                                         controller_job_id=old_job, controller_instance="i", reach_timeout=1)
    port = _closed_port()
    write_json_atomic(os.path.join(launcher.connection_dir, connection_file_name(launcher.cluster_id, old_job, "engine")),
                      _info(old_job, "i", port))

    import asyncio
    asyncio.run(launcher.start(2))
    assert wait_job_final(launcher.job_id, timeout=40) == "FAILED"
    assert f"at tcp://127.0.0.1:{port}" in launcher.get_output()


def test_write_json_atomic_is_private_and_leaves_no_temp(tmp_path):
    from kernel_ext.ipp import read_connection_file, write_json_atomic
    path = tmp_path / "f.json"
    write_json_atomic(str(path), {"batchhub": {"job_id": "3", "instance": "z"}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["f.json"]
    assert read_connection_file(str(path), 3, "z")[0] is not None
    assert read_connection_file(str(path), 4, "z")[0] is None
    assert read_connection_file(str(path), 3, "other")[0] is None
