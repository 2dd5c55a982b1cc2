"""Dask across hosts: the scheduler in a notebook on the login host, workers as jobs on three others.

``BatchHubCluster`` must listen on the login host's address that routes to the
nodes (never loopback, which the workers' hosts cannot reach).
"""

import importlib.util
import json
import sys

import pytest

pytestmark = pytest.mark.timeout(300)

NOTEBOOK = """\
import json, socket
from distributed import Client
from kernel_ext.dask import BatchHubCluster

with BatchHubCluster(cores=2, processes=1, memory="450MB", walltime="00:10:00") as cluster, Client(cluster) as client:
    cluster.scale(jobs=3)
    client.wait_for_workers(3, timeout=120)
    hosts = client.run(socket.gethostname)
    total = client.submit(sum, client.map(lambda x: x * x, range(100))).result()
    print(json.dumps({"scheduler": cluster.scheduler_address, "hosts": sorted(hosts.values()),
                      "workers": sorted(hosts), "total": total}))
"""


def test_dask_workers_on_three_hosts_reach_a_scheduler_on_the_login_host(netns_cluster):
    c = netns_cluster
    if importlib.util.find_spec("dask_jobqueue") is None:
        pytest.skip("dask-jobqueue is not installed")
    script = c.path("dask_notebook.py")
    with open(script, "w") as f:
        f.write(NOTEBOOK)
    r = c.run(sys.executable, script, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:] + c.log_tail("ctl")
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["scheduler"].startswith("tcp://10.77.0.1:"), seen
    assert seen["hosts"] == ["n1", "n2", "n3"], (seen, c.log_tail("ctl"))
    assert all(w.startswith("tcp://10.77.0.1") and not w.startswith("tcp://10.77.0.1:") for w in seen["workers"]), seen
    assert seen["total"] == sum(x * x for x in range(100))
