"""Reservations as the scheduler sees them: windows, recurrence, overlap, access, and planning around them."""

import datetime as dt

import pytest

from batch_backend import hostlist
from batch_backend.sched import backfill, fifo
from batch_backend.sched import reservations as R
from batch_backend.sched.placement import NodeView

H = 3600


def resv(name="r", start=1000.0, end=1000.0 + H, nodes=("n1",), flags=(), **kw):
    r = {"name": name, "start_time": start, "end_time": end, "nodes": list(nodes), "flags": list(flags),
         "users": [], "groups": [], "accounts": []}
    r.update(kw)
    return r


def local(y, mo, d, h=0, mi=0):
    return dt.datetime(y, mo, d, h, mi).timestamp()


def views(n=2, cpus=4):
    return {f"n{i}": NodeView(f"n{i}", cpus, 1000, 0, frozenset()) for i in range(1, n + 1)}


def job(job_id, **kw):
    j = {"job_id": job_id, "partition": "p", "num_tasks": 1, "cpus_per_task": 1, "num_nodes_req": None,
         "reason": "None", "time_limit": 10, "gres": "", "features": "", "held": "", "priority": 100 - job_id,
         "user": "alice", "reservation": ""}
    j.update(kw)
    return j


def state(nodes, pending, cls=backfill.BackfillState, **kw):
    p = {"name": "p", "nodes": sorted(nodes), "state": "UP", "max_time": None, "max_nodes": None, "min_nodes": 0}
    return cls(nodes=nodes, partitions={"p": p}, pending=pending, expand_hostlist=hostlist.expand, **kw)


def summary(decisions):
    out = []
    for d in decisions:
        if isinstance(d, fifo.Start):
            out.append(("start", d.job_id, d.allocation.nodes))
        elif isinstance(d, backfill.Estimate):
            out.append(("est", d.job_id, d.start_time, d.nodes))
        else:
            out.append(("reason", d.job_id, d.reason))
    return out


# -- flags --------------------------------------------------------------------------------

def test_flags_parse_abbreviations_signs_and_purge_time():
    add, remove, purge = R.parse_flags("maint,ig,-daily,PURGE_COMP=10")
    assert add == {"MAINT", "IGNORE_JOBS", "PURGE_COMP"}
    assert remove == {"DAILY"}
    assert purge == 600


@pytest.mark.parametrize("text", ["BOGUS", "maint,nope", "DAILY=5", "-OVERLAP", "PURGE_COMP=xx"])
def test_unknown_or_malformed_flags_are_refused_with_slurms_message(text):
    with pytest.raises(R.FlagError, match=f"Error parsing flags {text}"):
        R.parse_flags(text)


def test_flags_print_in_slurms_order_with_purge_time():
    r = resv(flags=["SPEC_NODES", "WEEKLY", "PURGE_COMP", "MAINT"], purge_comp_time=300)
    assert R.flags_string(r) == "MAINT,WEEKLY,SPEC_NODES,PURGE_COMP=00:05:00"


# -- windows and recurrence -------------------------------------------------------------------

def test_one_off_reservation_has_one_window_and_does_not_roll():
    r = resv(start=100, end=200)
    assert list(R.occurrences(r, 0, 10_000)) == [(100, 200)]
    assert R.roll_forward(r, 500) == (100, 200)
    assert R.is_active(r, 100) and not R.is_active(r, 200) and not R.is_active(r, 99)


def test_daily_reservation_rolls_forward_to_the_next_day_same_wall_clock_time():
    start = local(2026, 12, 1, 10)
    r = resv(start=start, end=start + 2 * H, flags=["DAILY"])
    now = local(2026, 12, 3, 13)  # after the third occurrence ended
    assert R.roll_forward(r, now) == (local(2026, 12, 4, 10), local(2026, 12, 4, 12))
    assert R.roll_forward(r, local(2026, 12, 1, 11)) == (start, start + 2 * H)  # still running: unchanged


def test_weekly_class_slot_repeats_every_tuesday():
    tue = local(2026, 12, 1, 10)  # a Tuesday
    assert dt.datetime.fromtimestamp(tue).weekday() == 1
    r = resv(start=tue, end=tue + 2 * H, flags=["WEEKLY"])
    wins = list(R.occurrences(r, tue, tue + 21 * 86400))
    assert [dt.datetime.fromtimestamp(s).strftime("%a %H:%M") for s, _ in wins] == ["Tue 10:00"] * 3
    assert wins[1][0] == local(2026, 12, 8, 10)


def test_weekday_reservation_skips_the_weekend():
    fri = local(2026, 12, 4, 9)  # a Friday
    r = resv(start=fri, end=fri + H, flags=["WEEKDAY"])
    starts = [dt.datetime.fromtimestamp(s).strftime("%a") for s, _ in R.occurrences(r, fri, fri + 5 * 86400 + 1)]
    assert starts == ["Fri", "Mon", "Tue", "Wed"]


# -- overlap -------------------------------------------------------------------------------------

def test_reservations_on_the_same_nodes_and_time_overlap():
    a = resv("a", 0, H, ["n1", "n2"])
    assert R.overlapping(resv("b", H / 2, 2 * H, ["n2"]), [a]) == "a"
    assert R.overlapping(resv("b", H, 2 * H, ["n2"]), [a]) is None      # back to back
    assert R.overlapping(resv("b", 0, H, ["n3"]), [a]) is None          # other nodes


def test_overlap_and_maint_flags_waive_the_rule():
    a = resv("a", 0, H, ["n1"])
    assert R.overlapping(resv("b", 0, H, ["n1"], flags=["OVERLAP"]), [a]) is None
    assert R.overlapping(resv("b", 0, H, ["n1"], flags=["MAINT"]), [a]) is None


def test_a_recurring_reservation_overlaps_a_later_one_off_on_a_future_day():
    daily = resv("d", local(2026, 12, 1, 10), local(2026, 12, 1, 11), ["n1"], flags=["DAILY"])
    later = resv("x", local(2026, 12, 5, 10, 30), local(2026, 12, 5, 12), ["n1"])
    assert R.overlapping(later, [daily]) == "d"
    assert R.overlapping(resv("x", local(2026, 12, 5, 11), local(2026, 12, 5, 12), ["n1"]), [daily]) is None


# -- access ---------------------------------------------------------------------------------------

def test_users_groups_and_accounts_decide_who_may_use_it():
    assert R.may_use(resv(users=["alice", "bob"]), "alice", set(), "")
    assert not R.may_use(resv(users=["alice"]), "carol", set(), "")
    assert R.may_use(resv(users=["-alice"]), "carol", set(), "")        # everyone but alice
    assert not R.may_use(resv(users=["-alice"]), "alice", set(), "")
    assert R.may_use(resv(groups=["class101"]), "stud1", {"stud1", "class101"}, "")
    assert not R.may_use(resv(groups=["class101"]), "other", {"other"}, "")
    assert R.may_use(resv(accounts=["physics"]), "x", set(), "physics")
    assert not R.may_use(resv(accounts=["physics"]), "x", set(), None)


def test_users_and_accounts_must_both_match():
    r = resv(users=["alice"], accounts=["physics"])
    assert R.may_use(r, "alice", set(), "physics")
    assert not R.may_use(r, "alice", set(), "chem")
    assert not R.may_use(r, "bob", set(), "physics")


# -- scheduling around a reservation ----------------------------------------------------------------

def test_a_job_outside_may_use_reserved_nodes_only_if_it_ends_before_the_start():
    windows = R.blocked_windows([resv(start=3600, end=7200, nodes=["n1"])], 0, 10 * H)
    assert R.blocked_nodes(windows, 0, 30 * 60) == set()        # 30 min job ends before 1 h
    assert R.blocked_nodes(windows, 0, 2 * H) == {"n1"}          # 2 h job would still run
    assert R.blocked_nodes(windows, 0, float("inf")) == {"n1"}   # no time limit: never


def test_fifo_keeps_long_jobs_off_reserved_nodes_and_lets_short_ones_run():
    windows = R.blocked_windows([resv(start=3600, end=7200, nodes=["n1"])], 0, 10 * H)
    st = state(views(1), [job(1, time_limit=120)], cls=fifo.SchedState, reserved_windows=windows)
    assert summary(fifo.schedule(st, 0)) == [("reason", 1, "Resources")]
    st = state(views(1), [job(2, time_limit=30)], cls=fifo.SchedState, reserved_windows=windows)
    assert summary(fifo.schedule(st, 0)) == [("start", 2, ["n1"])]


def test_planner_estimates_a_long_job_after_a_future_reservation():
    """The backfill planner treats the reservation as a blocked window: squeue --start is right."""
    windows = R.blocked_windows([resv(start=3600, end=7200, nodes=["n1"])], 0, 10 * H)
    st = state(views(1), [job(1, time_limit=120), job(2, time_limit=30)], reserved_windows=windows)
    assert summary(backfill.schedule(st, 0)) == [("est", 1, 7200, ["n1"]), ("reason", 1, "Resources"),
                                                 ("start", 2, ["n1"])]


def test_planner_uses_free_nodes_outside_the_reservation():
    windows = R.blocked_windows([resv(start=0, end=7200, nodes=["n1"])], 0, 10 * H)
    st = state(views(2), [job(1, time_limit=120)], reserved_windows=windows)
    assert summary(backfill.schedule(st, 0)) == [("start", 1, ["n2"])]


def test_planner_does_not_place_a_window_crossing_job_between_two_windows():
    windows = R.blocked_windows([resv(start=3600, end=7200, nodes=["n1"], flags=["DAILY"])], 0, 3 * 86400)
    st = state(views(1), [job(1, time_limit=23 * 60)], reserved_windows=windows)
    d = summary(backfill.schedule(st, 0))
    assert d[0] == ("est", 1, 7200, ["n1"])   # 23 h fits between 2:00 and next day's 1:00


def test_reservation_jobs_wait_for_the_start_then_run_only_on_reserved_nodes():
    r = resv("class", start=100, end=100 + H, nodes=["n2"])
    jobs = [job(1, reservation="class")]
    st = state(views(2), jobs, cls=fifo.SchedState)
    before = summary(R.schedule_reserved(st, 50, {"class": r}, jobs))
    assert before == [("est", 1, 100, ["n2"]), ("reason", 1, "Reservation")]
    st = state(views(2), jobs, cls=fifo.SchedState)
    assert summary(R.schedule_reserved(st, 150, {"class": r}, jobs)) == [("start", 1, ["n2"])]


def test_reservation_job_too_big_for_its_reservation_waits_for_resources():
    r = resv("class", start=0, end=H, nodes=["n2"])
    jobs = [job(1, reservation="class", num_tasks=8)]
    st = state(views(2), jobs, cls=fifo.SchedState)
    assert summary(R.schedule_reserved(st, 10, {"class": r}, jobs)) == [("reason", 1, "Resources")]


def test_maint_window_gives_slurms_maintenance_reason():
    windows = R.blocked_windows([resv(start=0, end=H, nodes=["n1"], flags=["MAINT"])], 0, 10 * H)
    jobs = [job(1, time_limit=10)]
    st = state(views(1), jobs, cls=fifo.SchedState, reserved_windows=windows)
    d = R.maint_reasons(fifo.schedule(st, 10), jobs, st, windows, 10)
    assert summary(d) == [("reason", 1, "ReqNodeNotAvail, Reserved for maintenance")]


def test_jobs_in_a_reservation_end_with_it_plus_resv_over_run():
    r = resv(start=0, end=H)
    assert R.end_of_window(r, 0) == H
    assert R.end_of_window(r, 5) == H + 300
    assert R.end_of_window(r, None) is None   # ResvOverRun=UNLIMITED


def test_reservation_jobs_use_only_reserved_nodes_of_their_partition():
    r = resv("x", start=0, end=H, nodes=["n3"])
    jobs = [job(1, reservation="x")]
    st = state(views(3), jobs, cls=fifo.SchedState)
    st.partitions["p"]["nodes"] = ["n1", "n2"]       # n3 is reserved but not in the job's partition
    assert summary(R.schedule_reserved(st, 10, {"x": r}, jobs)) == [("reason", 1, "Resources")]


def test_flex_jobs_may_start_early_and_outside_but_not_in_another_reservation():
    flex = resv("flex", start=H, end=2 * H, nodes=["n1"], flags=["FLEX"])
    other = resv("other", start=0, end=H, nodes=["n2"])
    jobs = [job(1, reservation="flex", num_tasks=4), job(2, reservation="flex", num_tasks=4),
            job(3, reservation="flex", num_tasks=4)]
    st = state(views(3), jobs, cls=fifo.SchedState)
    d = summary(R.schedule_reserved(st, 0, {"flex": flex, "other": other}, jobs))
    # before its start, on its own node and on free n3; never on n2 (held by "other")
    assert d == [("start", 1, ["n1"]), ("start", 2, ["n3"]), ("reason", 3, "Resources")]
