"""The controller's reservation book on a clock we drive: rollover, end of window, PURGE_COMP, the journal.

A real :class:`Cluster` and SQLite journal (no daemons: nothing here needs a node)."""

import datetime as dt

import pytest

from batch_backend.conf import parse_conf
from batch_backend.controller.cluster import Cluster
from batch_backend.controller.identity import Identity
from batch_backend.controller.journal import Journal
from batch_backend.errors import Conflict, InvalidRequest, NotFound, PermissionDenied

CONF = """\
ClusterName=t
NodeName=n[1-3] CPUs=4 RealMemory=1000
PartitionName=p Nodes=ALL Default=YES MaxTime=60 State=UP
"""
ROOT = Identity(uid=0, gid=0, user="root", admin=True)
ALICE = Identity(uid=12345, gid=12345, user="alice", admin=False)


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def clock():
    return Clock(dt.datetime(2026, 12, 1, 9, 0).timestamp())   # a Tuesday, 09:00


@pytest.fixture
def make(tmp_path, clock):
    def make():
        c = Cluster(parse_conf(CONF), Journal(str(tmp_path / "journal.sqlite")), now=clock)
        c.recover()
        return c
    return make


def test_weekly_slot_rolls_forward_and_the_roll_is_journaled(make, clock):
    c = make()
    start = clock.t + 3600
    resv = c.reservations.create({"name": "class", "start_time": start, "duration": 120, "nodes": "n[1-2]",
                                  "groups": "root", "flags": "WEEKLY"}, ROOT)
    assert resv["flags"] == ["SPEC_NODES", "WEEKLY"]
    clock.t = start + 3 * 3600          # the class is over
    assert c.reservations.tick()
    rolled = c.reservations.get("class")
    assert rolled["start_time"] == dt.datetime(2026, 12, 8, 10, 0).timestamp()
    assert rolled["end_time"] - rolled["start_time"] == 7200
    again = make()                      # what a restarted controller reads from the journal
    assert again.reservations.get("class")["start_time"] == rolled["start_time"]


def test_one_off_reservation_is_deleted_when_it_ends(make, clock):
    c = make()
    c.reservations.create({"name": "once", "start_time": clock.t, "duration": 10, "nodes": "n1",
                           "users": "root"}, ROOT)
    clock.t += 11 * 60
    c.reservations.tick()
    with pytest.raises(NotFound):
        c.reservations.get("once")
    assert make().reservations.items == {}


def test_purge_comp_deletes_an_idle_reservation_after_its_time(make, clock):
    c = make()
    c.reservations.create({"name": "pc", "start_time": clock.t, "duration": 600, "nodes": "n1", "users": "root",
                           "flags": "PURGE_COMP=2"}, ROOT)
    clock.t += 60
    c.reservations.tick()
    assert c.reservations.get("pc")
    clock.t += 61
    c.reservations.tick()
    with pytest.raises(NotFound):
        c.reservations.get("pc")


def test_automatic_names_count_up_across_restarts(make, clock):
    c = make()
    spec = {"start_time": clock.t + 3600, "duration": 10, "users": "root"}
    assert c.reservations.create(dict(spec, nodes="n1"), ROOT)["name"] == "root_1"
    assert make().reservations.create(dict(spec, nodes="n2"), ROOT)["name"] == "root_2"


def test_only_admins_change_reservations(make, clock):
    c = make()
    with pytest.raises(PermissionDenied, match="Access/permission denied"):
        c.reservations.create({"start_time": clock.t, "duration": 10, "nodes": "n1", "users": "alice"}, ALICE)
    c.reservations.create({"name": "r", "start_time": clock.t, "duration": 10, "nodes": "n1", "users": "root"}, ROOT)
    with pytest.raises(PermissionDenied):
        c.reservations.update("r", {"duration": 20}, ALICE)
    with pytest.raises(PermissionDenied):
        c.reservations.delete("r", ALICE)


def test_a_refused_update_changes_nothing(make, clock):
    c = make()
    c.reservations.create({"name": "a", "start_time": clock.t, "duration": 60, "nodes": "n1", "users": "root"}, ROOT)
    c.reservations.create({"name": "b", "start_time": clock.t, "duration": 60, "nodes": "n2", "users": "root"}, ROOT)
    before = dict(c.reservations.get("b"))
    with pytest.raises(Conflict, match="overlaps with another reservation"):
        c.reservations.update("b", {"nodes": "n1"}, ROOT)
    with pytest.raises(InvalidRequest, match="Error parsing flags"):
        c.reservations.update("b", {"flags": "SOMETIMES"}, ROOT)
    assert c.reservations.get("b") == before
    stored = make().reservations.get("b")
    assert (stored["nodes"], stored["flags"], stored["end_time"]) == (["n2"], ["SPEC_NODES"], before["end_time"])


def test_start_time_far_in_the_past_is_refused(make, clock):
    c = make()
    with pytest.raises(InvalidRequest, match="Invalid time specified"):
        c.reservations.create({"start_time": clock.t - 3600, "duration": 10, "nodes": "n1", "users": "root"}, ROOT)


@pytest.mark.parametrize("bad", [
    {"start_time": float("nan")}, {"start_time": "tomorrow"}, {"duration": True}, {"duration": "10"},
    {"partition": ["p"]}, {"nodes": 3}, {"users": 5}, {"colour": "blue"}, {"end_time": float("inf")},
])
def test_malformed_api_requests_are_400s_and_change_nothing(make, clock, bad):
    c = make()
    spec = dict({"start_time": clock.t, "duration": 10, "nodes": "n1", "users": "root"}, **bad)
    with pytest.raises(InvalidRequest):
        c.reservations.create(spec, ROOT)
    assert c.reservations.items == {} and make().reservations.items == {}
