"""Node credentials and where a remote node daemon finds its controller (pure functions)."""

import os

import pytest

from batch_backend.auth import jwt
from batch_backend.conf import parse_conf
from batch_backend.controller.identity import Identity
from batch_backend.noded.remote import NodeConfigError, controller_address, read_node_token

KEY = b"k" * 32


def test_node_token_names_its_nodes_and_no_user():
    claims = jwt.verify(KEY, jwt.make_node_token(KEY, "n[1-3]", now=1000), now=1001)
    assert claims["node"] == "n[1-3]" and claims["sun"] == "node:n[1-3]"
    assert claims["exp"] - claims["iat"] == jwt.NODE_TOKEN_LIFESPAN


@pytest.mark.parametrize("nodes", ["", "  ", None])
def test_node_token_needs_nodes(nodes):
    with pytest.raises(ValueError):
        jwt.make_node_token(KEY, nodes)


def test_node_identity_speaks_only_for_its_nodes():
    node = Identity(uid=-1, gid=-1, user="node:n1", admin=False, node=True, nodes=frozenset({"n1"}))
    assert node.speaks_for("n1") and not node.speaks_for("n2")
    local = Identity(uid=0, gid=0, user="root", admin=True, node=True)
    assert local.speaks_for("n2")  # the socket's root/service account: any node of this host
    user = Identity(uid=1000, gid=1000, user="alice", admin=True, node=False)
    assert not user.speaks_for("n1")


def conf(text):
    return parse_conf(text + "NodeName=n1 CPUs=1 RealMemory=100\nPartitionName=p Nodes=ALL\n", path="t")


@pytest.mark.parametrize("text, flag, expected", [
    ("", None, None),  # nothing configured: the local Unix socket
    ("BatchHubTCPAddress=10.0.0.1:6817\n", None, None),  # a TCP listener alone says nothing of the host
    ("SlurmctldHost=ctl\nBatchHubTCPAddress=0.0.0.0:6820\n", None, "ctl:6820"),
    ("SlurmctldHost=ctl(10.77.0.1)\nBatchHubTCPAddress=10.77.0.1:6817\n", None, "10.77.0.1:6817"),
    ("SlurmctldHost=ctl(10.77.0.1)\nBatchHubTCPAddress=10.77.0.1:6817\n", "10.9.9.9:1", "10.9.9.9:1"),
    ("BatchHubTCPAddress=10.77.0.1:6817\n", "head", "head:6817"),
    ("SlurmctldHost=ctl\nBatchHubTCPAddress=6820\nBatchHubTLSCert=/c.pem\nBatchHubTLSKey=/k.pem\n", None,
     "https://ctl:6820"),
])
def test_controller_address(text, flag, expected):
    assert controller_address(flag, conf(text)) == expected


def test_node_token_file_must_be_private(tmp_path):
    path = tmp_path / "node.token"
    path.write_text("abc.def.ghi\n")
    os.chmod(path, 0o644)
    with pytest.raises(NodeConfigError, match="readable by its owner only"):
        read_node_token(str(path), "10.0.0.1:6817")
    os.chmod(path, 0o600)
    assert read_node_token(str(path), "10.0.0.1:6817") == "abc.def.ghi"


def test_tcp_without_a_node_token_is_a_config_error(tmp_path):
    with pytest.raises(NodeConfigError, match="needs a node credential"):
        read_node_token(None, "10.0.0.1:6817")
    assert read_node_token(None, str(tmp_path / "controller.sock")) is None
    with pytest.raises(NodeConfigError, match="does not exist"):
        read_node_token(str(tmp_path / "missing"), "10.0.0.1:6817")
