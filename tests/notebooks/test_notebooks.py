"""Every notebook in notebooks/ runs clean with nbclient against the live test cluster.

The kernel is the venv's ipykernel, started with the cluster's environment
(``BATCHHUB_SOCKET``, ``BATCHHUB_CONF``, the CLI on ``PATH``) in a fresh
working directory, as a BatchHub single-user server would start it. The
notebooks in the repository carry no outputs.
"""

import os
import pathlib
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from cluster_support import TEST_CONF

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
#: Seconds a notebook may take in all (the spec: each < 40 s; the margin is for a loaded machine).
BUDGET = 60

pytestmark = pytest.mark.timeout(150)

#: Notebooks that need a cluster of their own: name -> slurm.conf lines added to the test configuration.
OWN_CLUSTER = {
    # sprio needs multifactor priority; the notebook also creates an account and a reservation
    "instructor-class-usage.ipynb": "PriorityType=priority/multifactor\nPriorityWeightFairshare=10000\n"
                                    "PriorityWeightAge=1000\n",
}


def test_notebooks_exist_and_are_listed_in_the_readme():
    expected = {"getting-started.ipynb", "arrays-and-dependencies.ipynb", "mpi-hello.ipynb",
                "mandelbrot-ipyparallel.ipynb", "dask-on-batchhub.ipynb", "dashboards-tour.ipynb",
                "instructor-class-usage.ipynb"}
    assert expected <= set(NOTEBOOKS)
    readme = (NOTEBOOK_DIR / "README.md").read_text()
    assert all(name in readme for name in NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_outputs_are_stripped(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not stripped"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_clean(name, request, make_cluster, tmp_path):
    if name in OWN_CLUSTER:
        cluster = make_cluster(TEST_CONF + OWN_CLUSTER[name], name="own")
    else:
        cluster = request.getfixturevalue("cluster")
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    env = dict(cluster.env)
    env.pop("SLURM_JOB_ID", None)
    env.pop("BATCHHUB_MAGICS_BACKEND", None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    client = NotebookClient(nb, timeout=90, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    t0 = time.monotonic()
    client.execute(env=env, cwd=str(tmp_path))
    took = time.monotonic() - t0
    nbformat.write(nb, tmp_path / name)  # the executed copy, for a look when something fails
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"
              or (out.output_type == "stream" and out.name == "stderr" and ": error: " in out.text)]
    assert errors == [], errors
    assert took < BUDGET, f"{name} took {took:.1f} s"
