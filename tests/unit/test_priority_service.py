"""Multifactor priority wired into the controller: config, exact factors, usage accounting, classic fairshare.

Everything runs on an injected clock: the real Cluster and PriorityService with
a real (temporary) SQLite journal, no daemons.
"""

import pytest

from batch_backend.conf import ConfError, parse_conf
from batch_backend.controller.cluster import Cluster
from batch_backend.controller.identity import Identity
from batch_backend.controller.journal import Journal
from batch_backend.sched import priority as prio
from batch_backend.sched.priority import UsageTracker, fairshare_table, parse_duration, priority_type

HOUR = 3600.0
NODES = """NodeName=n[1-4] CPUs=4 RealMemory=1000
PartitionName=debug Nodes=ALL Default=YES MaxTime=60 State=UP PriorityJobFactor=1
PartitionName=high Nodes=n[1-2] MaxTime=60 State=UP PriorityJobFactor=4
"""
MULTIFACTOR = """PriorityType=priority/multifactor
PriorityWeightAge=1000
PriorityWeightFairshare=10000
PriorityWeightJobSize=800
PriorityWeightPartition=2000
PriorityMaxAge=1:00:00
PriorityDecayHalfLife=1:00:00
PriorityCalcPeriod=0:10
"""


class Clock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def make_cluster(tmp_path, conf_text, clock):
    journal = Journal(str(tmp_path / "journal.sqlite"))
    cluster = Cluster(parse_conf(conf_text), journal, now=clock)
    cluster.recover()
    return cluster


def caller(user="ana", uid=5001, admin=False):
    return Identity(uid=uid, gid=uid, user=user, admin=admin, node=False)


def submit(cluster, who, **kw):
    sub = {"script": "#!/bin/sh\ntrue\n", "user": who.user, "workdir": "/tmp", "num_tasks": 1, **kw}
    return cluster.submit(sub, who)


# -- configuration --------------------------------------------------------------------------

def test_durations_keep_seconds():
    assert parse_duration("30") == 1800.0           # a bare number is minutes
    assert parse_duration("0:20") == 20.0           # M:S
    assert parse_duration("1:00:00") == 3600.0
    assert parse_duration("7-0") == 7 * 86400.0
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_priority_type_is_basic_unless_weights_or_explicit():
    conf = {}
    assert priority_type(lambda k, d: conf.get(k, d)) == "priority/basic"
    conf = {"PriorityWeightAge": "10"}
    assert priority_type(lambda k, d: conf.get(k, d)) == "priority/multifactor"
    conf = {"PriorityWeightAge": "10", "PriorityType": "priority/basic"}
    assert priority_type(lambda k, d: conf.get(k, d)) == "priority/basic"
    with pytest.raises(ValueError, match="PriorityType"):
        priority_type(lambda k, d: {"PriorityType": "priority/magic"}.get(k, d))


def test_bad_priority_setting_stops_the_controller_with_its_name(tmp_path):
    with pytest.raises(ConfError, match="PriorityMaxAge"):
        make_cluster(tmp_path, NODES + "PriorityType=priority/multifactor\nPriorityMaxAge=later\n", Clock())


# -- factors, exact numbers ---------------------------------------------------------------------

def test_factors_and_priority_with_an_injected_clock(tmp_path):
    clock = Clock()
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, clock)
    ana = caller()
    job_id = submit(c, ana, num_tasks=4, partition="high")
    clock.t += 900  # a quarter of PriorityMaxAge
    [entry] = c.priority.report([c.jobs[job_id]], clock())
    f = entry["factors"]
    assert f["age"] == 0.25
    assert f["fairshare"] == 1.0                  # nobody used anything yet
    assert f["jobsize"] == (1 / 4 + 4 / 16) / 2   # nodes 1 of 4, cpus 4 of 16
    assert f["partition"] == 1.0                  # PriorityJobFactor 4 of max 4
    assert entry["weighted"]["age"] == 250.0 and entry["weighted"]["jobsize"] == 200.0
    assert entry["priority"] == 250 + 10000 + 200 + 2000
    # PriorityCalcPeriod (10 s) recomputes the stored priority
    c.priority.tick(clock())
    assert c.jobs[job_id]["priority"] == 12450


def test_priority_is_truncated_like_slurmctld():
    w = prio.PriorityWeights(age=1000, max_age=3.0)
    job = {"job_id": 1, "eligible_time": 0.0, "num_tasks": 1, "cpus_per_task": 1, "nice": 0}
    assert prio.job_priority(job, 2.0, weights=w, factors_inputs=prio.FactorInputs())[0] == 666


def test_basic_priority_is_submit_order_minus_nice(tmp_path):
    c = make_cluster(tmp_path, NODES, Clock())
    ana = caller()
    first, second = submit(c, ana), submit(c, ana, nice=5)
    assert c.priority.type == "priority/basic"
    assert c.jobs[first]["priority"] == 10**8 - first
    assert c.jobs[second]["priority"] == 10**8 - second - 5


def test_held_jobs_show_zero_and_admin_set_priority_is_pinned(tmp_path):
    clock = Clock()
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, clock)
    ana, root = caller(), caller("root", 0, admin=True)
    held, pinned = submit(c, ana, hold=True), submit(c, ana)
    assert c.jobs[held]["priority"] == 0
    c.update_job(str(pinned), {"priority": 7}, root)
    clock.t += HOUR
    c.priority.tick(clock())
    assert c.jobs[pinned]["priority"] == 7 and c.jobs[pinned]["priority_set"] == 7
    c.job_action(str(held), "release", ana)
    assert c.jobs[held]["priority"] > 7
    c.update_job(str(pinned), {"priority": 0}, root)  # Slurm: priority=0 is an admin hold
    assert c.jobs[pinned]["held"] == "admin" and c.jobs[pinned]["priority"] == 0


def test_nice_lowers_a_multifactor_priority(tmp_path):
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, Clock())
    ana = caller()
    job_id = submit(c, ana)
    before = c.jobs[job_id]["priority"]
    c.update_job(str(job_id), {"nice": 100}, ana)
    assert c.jobs[job_id]["priority"] == before - 100


# -- usage accounting ---------------------------------------------------------------------------

def _run(cluster, job_id, clock):
    """Start a pending job by hand on n1 (what a scheduling pass does), as of clock()."""
    from batch_backend.sched.placement import Allocation
    job = cluster.jobs[job_id]
    cpus = job["num_tasks"] * job["cpus_per_task"]
    alloc = Allocation(["n1"], {"n1": job["num_tasks"]}, {"n1": cpus}, {"n1": 0}, {})
    cluster._save(*cluster._start(job, alloc, clock()))
    return job


def test_running_and_ended_jobs_charge_decayed_cpu_seconds(tmp_path):
    clock = Clock()
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, clock)
    ana = caller()
    job = _run(c, submit(c, ana, num_tasks=2), clock)
    clock.t += 600
    c.priority.tick(clock())  # charged while it runs
    assert c.priority.usage.usage("root", "ana", clock()) == pytest.approx(1200)
    clock.t += 600
    c.job_ended(job["job_id"], "COMPLETED", end_time=clock())
    assert c.priority.usage.usage("root", "ana", clock()) == pytest.approx(1200 * 2 ** (-600 / HOUR) + 1200)
    clock.t += HOUR  # one half-life later: half of it
    assert c.priority.usage.usage("root", "ana", clock()) == pytest.approx((1200 * 2 ** (-1 / 6) + 1200) / 2)


def test_usage_survives_a_restart_and_running_jobs_lose_nothing(tmp_path):
    clock = Clock()
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, clock)
    ana = caller()
    job = _run(c, submit(c, ana, num_tasks=1), clock)
    clock.t += 100
    c.priority.tick(clock())  # journals usage as of now (100 cpu-s)
    clock.t += 50            # the controller dies here, un-journaled
    c.journal.close()
    again = make_cluster(tmp_path, NODES + MULTIFACTOR, clock)
    assert again.jobs[job["job_id"]]["state"] == "RUNNING"
    again.priority.tick(clock())  # charged from the journaled time on: the 50 s are not lost
    assert again.priority.usage.usage("root", "ana", clock()) == pytest.approx(100 * 2 ** (-50 / HOUR) + 50)


# -- classic fairshare on an account tree -----------------------------------------------------------

TREE = [
    {"account": "root", "parent": None, "user": None, "shares": 1},
    {"account": "phys", "parent": "root", "user": None, "shares": 3},
    {"account": "chem", "parent": "root", "user": None, "shares": 1},
    {"account": "phys", "parent": "phys", "user": "ana", "shares": 1},
    {"account": "phys", "parent": "phys", "user": "bob", "shares": 1},
    {"account": "chem", "parent": "chem", "user": "eve", "shares": 1},
]


def test_normalized_shares_usage_and_fairshare_on_a_two_level_tree():
    u = UsageTracker(half_life=0)
    u.charge("phys", "ana", 600, now=0)
    u.charge("chem", "eve", 400, now=0)
    rows = fairshare_table(TREE, u, now=0)
    assert [(r["account"], r["user"], r["depth"]) for r in rows] == [
        ("root", None, 0), ("chem", None, 1), ("chem", "eve", 2), ("phys", None, 1),
        ("phys", "ana", 2), ("phys", "bob", 2)]
    by = {(r["account"], r["user"]): r for r in rows}
    assert by[("phys", None)]["norm_shares"] == 0.75 and by[("chem", None)]["norm_shares"] == 0.25
    assert by[("phys", "ana")]["norm_shares"] == 0.375 and by[("chem", "eve")]["norm_shares"] == 0.25
    assert by[("root", None)]["raw_usage"] == 1000 and by[("phys", None)]["raw_usage"] == 600
    assert by[("phys", None)]["norm_usage"] == 0.6
    # children of root: effective usage = normalised usage
    assert by[("phys", None)]["effective_usage"] == 0.6
    assert by[("phys", None)]["fairshare"] == pytest.approx(2 ** (-0.6 / 0.75))
    # deeper: UE = U + (UE_parent - U) * S_child / S_siblings
    assert by[("phys", "ana")]["effective_usage"] == pytest.approx(0.6 + (0.6 - 0.6) * 0.5)
    assert by[("phys", "bob")]["effective_usage"] == pytest.approx(0.0 + (0.6 - 0.0) * 0.5)
    assert by[("phys", "bob")]["fairshare"] == pytest.approx(2 ** (-0.3 / 0.375))
    assert by[("phys", "ana")]["fairshare"] == pytest.approx(2 ** (-0.6 / 0.375))
    assert by[("chem", "eve")]["fairshare"] == pytest.approx(2 ** (-(0.4 + 0.0) / 0.25))


def test_default_tree_and_heavy_user_ranks_below(tmp_path):
    clock = Clock()
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, clock)
    ana, bob = caller("ana", 5001), caller("bob", 5002)
    job = _run(c, submit(c, ana, num_tasks=4), clock)
    clock.t += 600
    c.job_ended(job["job_id"], "COMPLETED", end_time=clock())
    a, b = submit(c, ana), submit(c, bob)
    assert c.jobs[b]["priority"] > c.jobs[a]["priority"]
    rows = {r["user"]: r for r in c.priority.fairshare_rows(clock()) if r["user"]}
    assert rows["ana"]["norm_shares"] == rows["bob"]["norm_shares"] == 0.5
    assert rows["ana"]["fairshare"] == 0.25 and rows["bob"]["fairshare"] == 1.0


def test_associations_from_sacctmgr_shape_drive_fairshare(tmp_path):
    clock = Clock()
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, clock)
    c.assoc_source = lambda: TREE
    c.qos_source = lambda: [{"name": "normal", "priority": 0}, {"name": "high", "priority": 10}]
    c.priority.usage.charge("phys", "ana", 600, clock())
    c.priority.associations_changed(clock())
    job_id = submit(c, caller("ana"), account="phys", qos="high")
    [entry] = c.priority.report([c.jobs[job_id]], clock())
    assert entry["factors"]["fairshare"] == pytest.approx(2 ** (-1.0 / 0.375))
    assert entry["factors"]["qos"] == 1.0


def test_a_job_waiting_on_a_dependency_does_not_age(tmp_path):
    clock = Clock()
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, clock)
    ana = caller()
    first = submit(c, ana)
    second = submit(c, ana, dependency=f"afterok:{first}")
    clock.t += 1800
    assert c.jobs[second]["eligible_time"] is None
    by_id = {e["job_id"]: e for e in c.priority.report([c.jobs[first], c.jobs[second]], clock())}
    assert by_id[first]["factors"]["age"] == 0.5 and by_id[second]["factors"]["age"] == 0.0


def test_a_job_without_account_is_charged_to_the_users_default_association(tmp_path):
    clock = Clock()
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, clock)
    c.assoc_source = lambda: TREE + [{"account": "chem", "parent": "chem", "user": "ana", "shares": 1,
                                      "default": True}]
    c.priority.associations_changed(clock())
    job = _run(c, submit(c, caller("ana")), clock)
    clock.t += 60
    c.job_ended(job["job_id"], "COMPLETED", end_time=clock())
    assert c.priority.usage.usage("chem", "ana", clock()) == pytest.approx(60)
    assert c.priority.usage.usage("phys", "ana", clock()) == 0


@pytest.mark.parametrize("fields", [{"priority": -1}, {"priority": "high"}, {"nice": "x"}, {"nice": True}])
def test_bad_priority_or_nice_is_refused_and_changes_nothing(tmp_path, fields):
    from batch_backend.errors import InvalidRequest
    c = make_cluster(tmp_path, NODES + MULTIFACTOR, Clock())
    job_id = submit(c, caller())
    before = dict(c.jobs[job_id])
    with pytest.raises(InvalidRequest):
        c.update_job(str(job_id), dict(fields, name="renamed"), caller("root", 0, admin=True))
    assert c.jobs[job_id] == before


def test_fairshare_parent_takes_the_accounts_shares_and_usage():
    tree = [dict(a) for a in TREE]
    tree[4]["shares"] = "parent"  # bob: Fairshare=parent
    u = UsageTracker(half_life=0)
    u.charge("phys", "ana", 600, now=0)
    u.charge("chem", "eve", 400, now=0)
    by = {(r["account"], r["user"]): r for r in fairshare_table(tree, u, now=0)}
    bob, phys = by[("phys", "bob")], by[("phys", None)]
    assert bob["raw_shares"] == "parent"
    assert (bob["norm_shares"], bob["effective_usage"], bob["fairshare"]) == (
        phys["norm_shares"], phys["effective_usage"], phys["fairshare"])
    assert by[("phys", "ana")]["norm_shares"] == 0.75  # the only sibling with shares
