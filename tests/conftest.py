"""Fixtures that start a real BatchHub cluster; the machinery is in cluster_support.py.

(Test modules import helpers from ``cluster_support``, never from ``conftest``:
several conftest modules exist and share that name.)
"""

import pytest

from cluster_support import LiveCluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """One cluster shared by the tests that do not kill or reconfigure it."""
    c = LiveCluster(tmp_path_factory.mktemp("cluster"))
    c.up()
    yield c
    c.down()


@pytest.fixture
def private_cluster(tmp_path):
    """A cluster of the test's own, for tests that kill daemons or need an empty queue."""
    c = LiveCluster(tmp_path)
    c.up()
    yield c
    c.down()


@pytest.fixture
def make_cluster(tmp_path):
    """Factory for clusters with a custom slurm.conf."""
    made = []

    def make(conf_text, name="c", wait_nodes=True):
        home = tmp_path / name
        home.mkdir()
        c = LiveCluster(home, conf_text)
        made.append(c)
        return c.up(wait_nodes)
    yield make
    for c in made:
        c.down()
