"""slurm.conf parsing: nodes, partitions, options and precise path:line errors."""

import pytest

from batch_backend.conf import (
    ConfError, get_int_option, get_option, load_conf, parse_conf, scheduler_parameters,
)

SITE = """\
# A small site
ClusterName=hpc   # trailing comment
SlurmctldHost=ctl
SchedulerParameters=bf_continue,default_queue_depth=100,Bf_Window=60
KillWait=30 MinJobAge=600

NodeName=DEFAULT CPUs=8 RealMemory=32000 State=UNKNOWN
NodeName=n[1-4] Feature=intel,avx2
NodeName=gpu[01-02] CPUs=16 RealMemory=64000 Gres=gpu:2 \\
    NodeAddr=10.0.0.[11-12] Port=[17001-17002] Weight=10
PartitionName=DEFAULT State=UP MaxTime=1-00:00:00
PartitionName=debug Nodes=n[1-2] Default=YES MaxTime=30 DefaultTime=5
PartitionName=batch Nodes=ALL MaxTime=INFINITE MaxNodes=2 AllowGroups=hpc,staff
PartitionName=gpu Nodes=gpu[01-02] PriorityTier=2 Hidden=YES RootOnly=no OverSubscribe=force:4
"""


@pytest.fixture
def site():
    return parse_conf(SITE, path="/etc/slurm/slurm.conf")


def test_options_keep_spelling_and_look_up_case_insensitively(site):
    assert site["options"]["ClusterName"] == "hpc"
    assert get_option(site, "clustername") == "hpc"
    assert get_option(site, "KILLWAIT") == "30"
    assert get_option(site, "MinJobAge") == "600"
    assert get_option(site, "Nope", "dflt") == "dflt"
    assert get_int_option(site, "killwait", 5) == 30
    assert get_int_option(site, "SlurmdTimeout", 300) == 300


def test_later_option_replaces_earlier_regardless_of_case():
    conf = parse_conf("killwait=1\nKillWait=2\n")
    assert conf["options"] == {"KillWait": "2"}


def test_scheduler_parameters_are_a_dict(site):
    assert site["options"]["SchedulerParameters"] == \
        "bf_continue,default_queue_depth=100,Bf_Window=60"
    assert scheduler_parameters(site) == {
        "bf_continue": True, "default_queue_depth": "100", "bf_window": "60"}
    assert scheduler_parameters(parse_conf("")) == {}


def test_nodes_are_expanded_with_defaults(site):
    names = [n["name"] for n in site["nodes"]]
    assert names == ["n1", "n2", "n3", "n4", "gpu01", "gpu02"]
    n1 = site["nodes"][0]
    assert n1 == {"name": "n1", "cpus": 8, "real_memory": 32000, "gres": "",
                  "features": ["intel", "avx2"], "state": "UNKNOWN", "reason": "",
                  "address": "n1", "hostname": "n1", "port": None, "weight": 1}


def test_node_addr_and_port_expand_in_parallel_with_names(site):
    gpu01, gpu02 = site["nodes"][4:]
    assert (gpu01["address"], gpu01["port"], gpu01["cpus"], gpu01["gres"]) == \
        ("10.0.0.11", 17001, 16, "gpu:2")
    assert (gpu02["address"], gpu02["port"], gpu02["weight"]) == ("10.0.0.12", 17002, 10)


def test_partitions(site):
    debug, batch, gpu = site["partitions"]
    assert debug["name"] == "debug" and debug["default"] is True
    assert debug["nodes"] == ["n1", "n2"]
    assert (debug["max_time"], debug["default_time"]) == (30, 5)
    assert batch["nodes"] == ["n1", "n2", "n3", "n4", "gpu01", "gpu02"]
    assert batch["max_time"] is None and batch["max_nodes"] == 2
    assert batch["allow_groups"] == "hpc,staff" and batch["allow_accounts"] == "ALL"
    assert batch["default"] is False
    assert gpu["max_time"] == 1440  # from PartitionName=DEFAULT
    assert (gpu["priority_tier"], gpu["hidden"], gpu["root_only"]) == (2, True, False)
    assert gpu["over_subscribe"] == "FORCE:4"
    assert gpu["state"] == "UP" and gpu["min_nodes"] == 0 and gpu["allow_qos"] == "ALL"


def test_last_default_partition_wins():
    conf = parse_conf("NodeName=n1\nPartitionName=a Nodes=n1 Default=YES\n"
                      "PartitionName=b Nodes=n1 Default=YES\n")
    assert [p["default"] for p in conf["partitions"]] == [False, True]


def test_cpus_default_from_socket_layout_and_to_one():
    conf = parse_conf("NodeName=a Sockets=2 CoresPerSocket=4 ThreadsPerCore=2\nNodeName=b\n")
    assert [n["cpus"] for n in conf["nodes"]] == [16, 1]
    assert conf["nodes"][0]["other"] == {"Sockets": "2", "CoresPerSocket": "4",
                                         "ThreadsPerCore": "2"}


def test_keys_are_case_insensitive_and_quotes_group_values():
    conf = parse_conf('nodename=n1 cpus=2 REASON="under repair # not a comment"\n'
                      "partitionname=p nodes=n1\n")
    assert conf["nodes"][0]["cpus"] == 2
    assert conf["nodes"][0]["reason"] == "under repair # not a comment"
    assert conf["partitions"][0]["nodes"] == ["n1"]


def test_escaped_hash_is_not_a_comment():
    conf = parse_conf("Comment=a\\#b # real comment\n")
    assert conf["options"] == {"Comment": "a#b"}


def test_down_nodes_set_state_and_reason():
    conf = parse_conf('NodeName=n[1-2]\nDownNodes=n2 State=DOWN Reason="bad disk"\n')
    assert [(n["state"], n["reason"]) for n in conf["nodes"]] == \
        [("UNKNOWN", ""), ("DOWN", "bad disk")]


def test_include_is_relative_to_including_file(tmp_path):
    (tmp_path / "nodes.conf").write_text("NodeName=n[1-2] CPUs=4\n")
    (tmp_path / "slurm.conf").write_text("Include nodes.conf\nPartitionName=p Nodes=ALL\n")
    conf = load_conf(str(tmp_path / "slurm.conf"))
    assert [n["name"] for n in conf["nodes"]] == ["n1", "n2"]
    assert conf["partitions"][0]["nodes"] == ["n1", "n2"]


def test_error_in_included_file_names_that_file(tmp_path):
    (tmp_path / "nodes.conf").write_text("\nNodeName=n1 CPUs=many\n")
    (tmp_path / "slurm.conf").write_text("Include nodes.conf\n")
    with pytest.raises(ConfError) as info:
        load_conf(str(tmp_path / "slurm.conf"))
    assert str(info.value) == f"{tmp_path}/nodes.conf:2: bad number 'many' for CPUs"


def test_load_conf_missing_file(tmp_path):
    path = str(tmp_path / "none.conf")
    with pytest.raises(ConfError) as info:
        load_conf(path)
    assert str(info.value) == f"{path}: cannot read configuration file: No such file or directory"


@pytest.mark.parametrize("text, message", [
    ("NodeName=n1\nNodeName=n[0-1]\n",
     "x.conf:2: duplicate node 'n1' (already defined at x.conf:1)"),
    ("NodeName=n1\n\nPartitionName=p Nodes=n[1-3]\n",
     "x.conf:3: partition 'p' names unknown node 'n2' in Nodes=n[1-3]"),
    ("NodeName=n[1-2 CPUs=1\n",
     "x.conf:1: bad hostlist in NodeName=n[1-2: unbalanced '[' in hostlist 'n[1-2'"),
    ("NodeName=n1 CPUs=0\n", "x.conf:1: bad number '0' for CPUs"),
    ("NodeName=n1 RealMemory=1G\n", "x.conf:1: bad number '1G' for RealMemory"),
    ("NodeName=n1 Colour=red\n", "x.conf:1: unknown NodeName parameter 'Colour'"),
    ("NodeName=n1 State=SLEEPY\n", "x.conf:1: bad node State 'SLEEPY'"),
    ("NodeName=n[1-2] NodeAddr=a[1-3]\n", "x.conf:1: NodeAddr=a[1-3] names 3 values for 2 nodes"),
    ("PartitionName=p Default=maybe\n", "x.conf:1: bad boolean 'maybe' for Default (use YES or NO)"),
    ("PartitionName=p MaxTime=forever\n", "x.conf:1: bad time 'forever' for MaxTime"),
    ("PartitionName=p State=OPEN\n", "x.conf:1: bad partition State 'OPEN'"),
    ("PartitionName=p\nPartitionName=p\n",
     "x.conf:2: duplicate partition 'p' (already defined at x.conf:1)"),
    ("ClusterName\n", "x.conf:1: expected Key=Value, got 'ClusterName'"),
    ("KillWait=soon\n", "x.conf:1: bad number 'soon' for KillWait"),
    ("# c\nNodeName=n1 \\\n  CPUs=x\n", "x.conf:2: bad number 'x' for CPUs"),
    ("Include missing.conf\n",
     "x.conf:1: cannot read included file 'missing.conf': No such file or directory"),
    ("DownNodes=n9\nNodeName=n1\n", "x.conf:1: DownNodes names unknown node 'n9'"),
])
def test_errors_are_path_line_message(text, message):
    with pytest.raises(ConfError) as info:
        parse_conf(text, path="x.conf")
    assert str(info.value) == message


def test_continuation_joins_lines_and_keeps_first_line_number():
    conf = parse_conf("NodeName=n1 \\\n CPUs=3 \\\n RealMemory=100\n")
    assert (conf["nodes"][0]["cpus"], conf["nodes"][0]["real_memory"]) == (3, 100)


def test_partition_nodes_deduplicated_and_empty_allowed():
    conf = parse_conf("NodeName=n[1-2]\nPartitionName=p Nodes=n1,n[1-2]\nPartitionName=q\n")
    assert conf["partitions"][0]["nodes"] == ["n1", "n2"]
    assert conf["partitions"][1]["nodes"] == []
