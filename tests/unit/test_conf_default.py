"""The embedded slurm.conf that describes this machine as four virtual nodes."""

import pytest

from batch_backend import conf as conf_module
from batch_backend.conf import get_option, parse_conf
from batch_backend.conf_default import default_conf_text, detect_host


@pytest.mark.parametrize("ncpu, node_cpus", [(1, 1), (2, 2), (3, 2), (4, 2), (8, 2), (16, 4), (64, 16)])
def test_cpus_per_virtual_node(ncpu, node_cpus):
    conf = parse_conf(default_conf_text("/var/lib/batchhub", {"cpus": ncpu, "memory_mb": 16000}))
    assert [n["cpus"] for n in conf["nodes"]] == [node_cpus] * 4


def test_default_conf_content():
    conf = parse_conf(default_conf_text("/var/lib/batchhub", {"cpus": 8, "memory_mb": 16000}))
    assert [n["name"] for n in conf["nodes"]] == ["n1", "n2", "n3", "n4"]
    assert conf["nodes"][0]["real_memory"] == 3000  # 16000 * 0.75 / 4
    assert get_option(conf, "ClusterName") == "batchhub"
    assert get_option(conf, "SlurmdTimeout") == "30"
    assert get_option(conf, "KillWait") == "5"
    assert get_option(conf, "MinJobAge") == "300"
    assert get_option(conf, "StateSaveLocation") == "/var/lib/batchhub"
    (debug,) = conf["partitions"]
    assert debug["name"] == "debug" and debug["default"] is True and debug["state"] == "UP"
    assert debug["max_time"] is None and debug["nodes"] == ["n1", "n2", "n3", "n4"]


def test_state_dir_with_spaces_survives_the_round_trip():
    text = default_conf_text("/srv/batch hub/state", {"cpus": 4, "memory_mb": 4000})
    assert get_option(parse_conf(text), "StateSaveLocation") == "/srv/batch hub/state"


def test_tiny_memory_still_gives_positive_node_memory():
    conf = parse_conf(default_conf_text("/s", {"cpus": 1, "memory_mb": 2}))
    assert conf["nodes"][0]["real_memory"] == 1


def test_detect_host_reports_positive_cpus_and_memory():
    host = detect_host()
    assert host["cpus"] >= 1 and host["memory_mb"] >= 1
    assert set(host) == {"cpus", "memory_mb"}


def test_conf_module_re_exports_default_helpers():
    assert conf_module.default_conf_text is default_conf_text
    assert conf_module.detect_host is detect_host
