"""A cluster over network namespaces per test module (see tests/netns_support.py)."""

import pytest

from netns_support import NetnsCluster, unavailable_reason


@pytest.fixture(scope="module")
def netns_cluster(tmp_path_factory, request):
    """Controller + 3 node daemons, each in a network namespace of its own, talking TCP.

    A module may set ``NETNS_CONF``: extra slurm.conf lines, or a function of the cluster's
    home returning (lines, environment of every daemon and command).
    """
    why = unavailable_reason()
    if why:
        pytest.skip(why)
    home = tmp_path_factory.mktemp("netns")
    conf = getattr(request.module, "NETNS_CONF", "")
    env = {}
    if callable(conf):  # a module that needs files first (certificates...): conf(home) -> (text, env)
        conf, env = conf(home)
    c = NetnsCluster(home, conf_extra=conf, env=env)
    try:
        c.up()
        yield c
    finally:
        c.destroy()
