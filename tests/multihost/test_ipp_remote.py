"""IPyParallel across hosts: a notebook on the login host, controller and MPI engines on three others.

The controller's host (``ctl``) plays the login node where a notebook runs; the
IPython controller is a batch job on one node host, the engines an MPI step over
all three. They find each other through the connection file in the directory
every host mounts (slurm.conf's ``BatchHubSharedDir``, not any host's own
BatchHub home), and the engines and the notebook connect to the controller at
its node's routable address, never at loopback.
"""

import importlib.util
import json
import os
import sys

import pytest

pytestmark = pytest.mark.timeout(300)


def NETNS_CONF(home):
    shared = os.path.join(str(home), "nfs")
    os.makedirs(shared, mode=0o1777, exist_ok=True)
    os.chmod(shared, 0o1777)
    return f"BatchHubSharedDir={shared}\n", {}


NOTEBOOK = """\
import glob, json, os, socket, sys
from kernel_ext.ipp import cluster
from kernel_ext.ipp_connection import shared_root

def where():
    import socket
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    return socket.gethostname(), comm.Get_rank(), comm.Get_size(), comm.allreduce(comm.Get_rank() + 1)

n = int(sys.argv[3])
c = cluster(n=n, time="10", cluster_id=sys.argv[1], profile_dir=sys.argv[2], delay=0,
            controller_args=["--HeartMonitor.period=500"], engine_timeout=120, shutdown_atexit=False,
            config={"BatchHubEngineSetLauncher": {"ntasks_per_node": 1}})
rc = c.start_and_connect_sync()
try:
    rc.wait_for_engines(n, timeout=120)
    files = {}
    for path in glob.glob(os.path.join(shared_root(), "*", "ipython", sys.argv[1], "*.json")):
        with open(path) as f:
            files[path] = json.load(f)
    print(json.dumps({"engines": rc[:].apply_sync(where), "files": files}))
finally:
    rc.close()
    c.stop_cluster_sync()
"""


NODE_ADDRS = {"10.77.0.11", "10.77.0.12", "10.77.0.13"}


def _notebook(c):
    for module in ("ipyparallel", "mpi4py"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    script = c.path("notebook.py")
    with open(script, "w") as f:
        f.write(NOTEBOOK)
    return script


def _check_connection_files(seen, shared):
    """The files were in the shared directory and name the controller's node address, not loopback."""
    assert seen["files"], seen
    for path, info in seen["files"].items():
        assert path.startswith(shared + os.sep), path
        assert info["location"] in NODE_ADDRS, (path, info)
        assert info["interface"].split("//")[-1] in NODE_ADDRS, (path, info)


def test_ipp_engines_on_three_hosts_reach_a_controller_on_a_fourth(netns_cluster):
    c = netns_cluster
    script = _notebook(c)
    shared = os.path.join(c.home, "nfs")
    r = c.run(sys.executable, script, "remote1", c.path("profile"), "3", timeout=240)
    assert r.returncode == 0, r.stderr[-3000:] + c.log_tail("ctl")
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    engines = seen["engines"]
    hosts = sorted(host for host, *_ in engines)
    assert hosts == ["n1", "n2", "n3"], engines
    assert sorted(rank for _, rank, _, _ in engines) == [0, 1, 2]
    assert {(size, total) for _, _, size, total in engines} == {(3, 6)}  # one MPI world over three hosts
    _check_connection_files(seen, shared)


def test_a_kernel_running_as_a_job_finds_the_shared_directory_from_slurm_conf(netns_cluster):
    """A JupyterHub kernel is itself a job on a node: its node daemon hands it BatchHubSharedDir."""
    c = netns_cluster
    script = _notebook(c)
    out = c.path("kernel-job.out")
    job = c.sbatch("-w", "n1", "-o", out, "--wrap",
                   f"echo shared=$BATCHHUB_SHARED_DIR; {sys.executable} {script} remote2 {c.path('profile2')} 2")
    state = c.wait_state(job, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), timeout=240)
    with open(out) as f:
        text = f.read()
    assert state == "COMPLETED", text[-3000:]
    lines = text.strip().splitlines()
    shared = os.path.join(c.home, "nfs")
    assert lines[0] == f"shared={shared}"
    seen = json.loads(lines[-1])
    assert len(seen["engines"]) == 2 and {(size, total) for _, _, size, total in seen["engines"]} == {(2, 3)}
    _check_connection_files(seen, shared)
