"""Fixtures of the hub tests: a real JupyterHub with the QueueSpawner on a real cluster (see hub_helpers.py)."""

import pytest

from hub_helpers import LiveHub, make_hub_cluster


@pytest.fixture(scope="module")
def hub_cluster(tmp_path_factory):
    c = make_hub_cluster(tmp_path_factory.mktemp("hubcluster"))
    yield c
    c.down()


@pytest.fixture(scope="module")
def hub(hub_cluster, tmp_path_factory):
    h = LiveHub(hub_cluster, tmp_path_factory.mktemp("hub")).start()
    yield h
    h.stop()
