"""scontrol's reservation words: argument parsing and the show record, as Slurm 22.05 prints them."""

import pytest

from batch_backend.cli import scontrol_resv
from batch_backend.cli.common import UsageError
from batch_backend.cli.formats_scontrol import format_reservation


def test_create_arguments_become_api_fields():
    spec = scontrol_resv.parse_options(
        ["reservation", "ReservationName=class101", "StartTime=2026-12-01T10:00", "Duration=2:00:00",
         "Nodes=n[1-2]", "Groups=class101", "Flags=WEEKLY", "PartitionName=debug"], "No reservation created.")
    assert spec["name"] == "class101" and spec["nodes"] == "n[1-2]" and spec["groups"] == "class101"
    assert spec["duration"] == 120 and spec["flags"] == "WEEKLY" and spec["partition"] == "debug"
    assert spec["start_time"] > 0


def test_keys_abbreviate_as_in_slurm_and_plus_minus_edit_lists():
    spec = scontrol_resv.parse_options(["Res=r1", "Users+=a,b", "Flags-=DAILY", "Duration+=30", "NodeCnt=2",
                                        "Part=debug"], "No reservation update.")
    assert spec == {"name": "r1", "users": "+a,+b", "flags": "-DAILY", "duration_delta": 30, "node_cnt": 2,
                    "partition": "debug"}


def test_unlimited_duration_and_relative_start():
    spec = scontrol_resv.parse_options(["StartTime=now+1hour", "Duration=UNLIMITED"], "x", now=1000.0)
    assert spec == {"start_time": 4600.0, "duration": -1}


@pytest.mark.parametrize("arg,message", [
    ("StartTime=tomorrowish", "Invalid start time StartTime=tomorrowish.  No reservation created."),
    ("EndTime=25:99", "Invalid end time EndTime=25:99.  No reservation created."),
    ("Duration=abc", "Invalid duration Duration=abc.  No reservation created."),
    ("Colour=blue", "Unknown parameter Colour=blue.  No reservation created."),
    ("NodeCnt=two", "Invalid node count two"),
    ("Nodes+=n3", "The +=/-= notation is not supported when updating Nodes.  No reservation created."),
    ("bare", "Misformatted parameter 'bare', most options have a parameter after '='.  No reservation created."),
])
def test_bad_arguments_give_slurms_messages(arg, message):
    with pytest.raises(UsageError) as e:
        scontrol_resv.parse_options([arg], "No reservation created.")
    assert e.value.message == message


def test_show_record_layout():
    resv = {"name": "class101", "start_time": 1000.0, "end_time": 1000.0 + 7200, "nodelist": "n[1-2]",
            "node_cnt": 2, "core_cnt": 8, "features": "", "partition": "", "flags_text": "WEEKLY,SPEC_NODES",
            "tres": "cpu=8", "users": [], "groups": ["class101"], "accounts": [], "licenses": ""}
    text = format_reservation(resv, now=500.0)
    lines = text.splitlines()
    assert lines[0].startswith("ReservationName=class101 StartTime=") and lines[0].endswith("Duration=02:00:00")
    assert lines[1] == ("   Nodes=n[1-2] NodeCnt=2 CoreCnt=8 Features=(null) PartitionName=(null) "
                        "Flags=WEEKLY,SPEC_NODES")
    assert lines[2] == "   TRES=cpu=8"
    assert lines[3] == ("   Users=(null) Groups=class101 Accounts=(null) Licenses=(null) State=INACTIVE "
                        "BurstBuffer=(null) Watts=n/a")
    assert lines[4] == "   MaxStartDelay=(null)"
    assert text.endswith("\n\n")
    assert "State=ACTIVE" in format_reservation(resv, now=2000.0)
    assert format_reservation(resv, oneliner=True, now=0).count("\n") == 1


@pytest.mark.parametrize("state,flags,compact,long", [
    ("IDLE", ["RESERVED"], "resv", "reserved"),
    ("MIXED", ["RESERVED"], "mix", "mixed"),
    ("IDLE", ["MAINT"], "maint", "maint"),
    ("ALLOCATED", ["MAINT"], "alloc", "allocated"),
    ("DRAINED", ["DRAIN", "MAINT"], "drain", "drained"),
])
def test_sinfo_shows_reserved_nodes_as_slurm_does(state, flags, compact, long):
    from batch_backend.cli.formats_sinfo import node_state_compact, node_state_name
    node = {"name": "n1", "state": state, "state_flags": flags, "cpus": 4, "alloc_cpus": 0}
    assert (node_state_compact(node), node_state_name(node)) == (compact, long)


def test_sinfo_state_filter_knows_resv_and_maint():
    from batch_backend.cli.sinfo import _node_matches, parse_node_states
    wanted = parse_node_states(["resv"])
    assert _node_matches({"state": "MIXED", "state_flags": ["RESERVED"]}, wanted)
    assert not _node_matches({"state": "IDLE", "state_flags": []}, wanted)
    assert _node_matches({"state": "IDLE", "state_flags": ["MAINT"]}, parse_node_states(["maint"]))


@pytest.mark.parametrize("args,stderr", [
    (["create", "res", "StartTime=now", "Duration=5", "Nodes=n1", "Users=root"],
     "Error creating the reservation: Unable to contact slurm controller (connect failure)\n"),
    (["update", "ReservationName=x", "Duration=5"],
     "Error updating the reservation: Unable to contact slurm controller (connect failure)\n"),
    (["delete", "ReservationName=x"], "delete_reservation ReservationName=x: "
                                      "Unable to contact slurm controller (connect failure)\n"),
    (["show", "reservation"], "slurm_load_reservations error: Unable to contact slurm controller (connect failure)\n"),
])
def test_controller_unreachable_texts(tmp_path, args, stderr):
    import os
    import subprocess
    import sys
    env = dict(os.environ, BATCHHUB_SOCKET=str(tmp_path / "none.sock"))
    r = subprocess.run([sys.executable, "-m", "batch_backend.cli.scontrol", *args], env=env, capture_output=True,
                       text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", stderr)
