"""Multifactor priority: normalised factors, weights, classic fairshare with decaying usage."""

import time

import pytest

from batch_backend.sched import priority as prio
from batch_backend.sched.priority import FactorInputs, PriorityWeights, UsageTracker

DAY = 86400.0


def job(**kw):
    j = {"job_id": 1, "partition": "p", "qos": "normal", "account": "phys", "user": "ana", "num_tasks": 1,
         "cpus_per_task": 1, "num_nodes_req": None, "eligible_time": 0.0, "nice": 0, "gres": ""}
    j.update(kw)
    return j


INPUTS = FactorInputs(total_nodes=10, total_cpus=100, partition_job_factors={"p": 1, "big": 4},
                      qos_priorities={"normal": 0, "high": 100})


def test_every_factor_is_normalised_to_the_unit_interval():
    w = PriorityWeights(age=1000, fairshare=1000, job_size=1000, partition=1000, qos=1000, tres={"cpu": 1000})
    inputs = FactorInputs(total_nodes=10, total_cpus=100, total_tres={"cpu": 100},
                          partition_job_factors={"p": 1, "big": 4}, qos_priorities={"normal": 0, "high": 100},
                          fairshare=lambda j: 7.0)
    for j in (job(), job(num_tasks=500, num_nodes_req=50, partition="big", qos="high", eligible_time=-99 * DAY)):
        _, f = prio.job_priority(j, 10 * DAY, weights=w, factors_inputs=inputs)
        values = [f["age"], f["fairshare"], f["jobsize"], f["partition"], f["qos"], *f["tres"].values()]
        assert all(0.0 <= v <= 1.0 for v in values), f


def test_priority_is_the_weighted_sum_of_factors_minus_nice():
    w = PriorityWeights(age=1000, partition=2000, qos=4000, max_age=10 * DAY)
    j = job(partition="big", qos="high", eligible_time=0.0, nice=50)
    p, f = prio.job_priority(j, 5 * DAY, weights=w, factors_inputs=INPUTS)
    assert (f["age"], f["partition"], f["qos"]) == (0.5, 1.0, 1.0)
    assert p == 500 + 2000 + 4000 - 50
    assert prio.weighted_factors(f, w) == {"age": 500, "fairshare": 0, "jobsize": 0, "partition": 2000,
                                           "qos": 4000, "tres": {}, "nice": -50}


def test_age_saturates_at_max_age_and_held_jobs_do_not_age():
    w = PriorityWeights(age=1000, max_age=DAY)
    assert prio.job_priority(job(eligible_time=0.0), 3 * DAY, weights=w, factors_inputs=INPUTS)[1]["age"] == 1.0
    assert prio.job_priority(job(eligible_time=None), 3 * DAY, weights=w, factors_inputs=INPUTS)[1]["age"] == 0.0


def test_job_size_favours_large_jobs_by_default_and_small_ones_on_request():
    big, small = job(num_tasks=100, num_nodes_req=10), job(num_tasks=1)
    large_first = PriorityWeights(job_size=1000)
    small_first = PriorityWeights(job_size=1000, favor_small=True)
    size = [prio.job_priority(j, 0, weights=large_first, factors_inputs=INPUTS)[1]["jobsize"] for j in (big, small)]
    assert size == [1.0, pytest.approx((0.1 + 0.01) / 2)]
    size = [prio.job_priority(j, 0, weights=small_first, factors_inputs=INPUTS)[1]["jobsize"] for j in (big, small)]
    assert size == [0.0, pytest.approx((0.9 + 0.99) / 2)]


def test_priority_is_at_least_one_because_zero_means_held():
    assert prio.job_priority(job(nice=10000), 0, weights=PriorityWeights(), factors_inputs=INPUTS)[0] == 1


def test_weights_from_slurm_conf():
    conf = {"PriorityWeightAge": "1000", "PriorityWeightFairshare": "10000", "PriorityMaxAge": "14-0",
            "PriorityDecayHalfLife": "1-0", "PriorityFavorSmall": "YES", "PriorityWeightTRES": "CPU=100,GRES/gpu=2000",
            "PriorityUsageResetPeriod": "weekly"}
    w = PriorityWeights.from_conf(lambda k, d: conf.get(k, d))
    assert (w.age, w.fairshare, w.job_size, w.max_age, w.decay_half_life, w.favor_small) == (
        1000, 10000, 0, 14 * DAY, DAY, True)
    assert w.tres == {"cpu": 100, "gres/gpu": 2000} and w.usage_reset_period == "WEEKLY"


def test_tres_factor_is_the_requested_share_of_the_cluster():
    w = PriorityWeights(tres={"cpu": 1000, "gres/gpu": 2000})
    inputs = FactorInputs(total_nodes=4, total_cpus=64, total_tres={"cpu": 64, "gres/gpu": 8})
    p, f = prio.job_priority(job(num_tasks=16, gres="gpu:2", num_nodes_req=2), 0, weights=w, factors_inputs=inputs)
    assert f["tres"] == {"cpu": 0.25, "gres/gpu": 0.5} and p == 250 + 1000


# -- fairshare -------------------------------------------------------------------------------

def test_usage_decays_with_the_half_life():
    assert prio.decay_usage(1000.0, 3600, 3600) == 500.0
    assert prio.decay_usage(1000.0, 7200, 3600) == 250.0
    assert prio.decay_usage(1000.0, 7200, 0) == 1000.0  # no half-life: no decay
    u = UsageTracker(half_life=3600)
    u.charge("phys", "ana", 1000, now=0)
    u.charge("phys", "ana", 1000, now=3600)
    assert u.usage("phys", "ana", now=3600) == pytest.approx(1500)
    assert u.usage("phys", "ana", now=7200) == pytest.approx(750)


def test_fairshare_is_classic_two_to_the_minus_usage_over_shares():
    assert prio.fairshare_factor(0.0, 0.5) == 1.0
    assert prio.fairshare_factor(0.5, 0.5) == 0.5
    assert prio.fairshare_factor(1.0, 0.5) == 0.25
    assert prio.fairshare_factor(0.3, 0.0) == 0.0


def test_heavy_user_gets_a_lower_factor_that_recovers_as_usage_decays():
    u = UsageTracker(half_life=DAY)
    u.charge("phys", "ana", 9000, now=0)
    u.charge("phys", "bob", 1000, now=0)
    ana, bob = (u.fairshare("phys", x, 0.5, now=0) for x in ("ana", "bob"))
    assert ana == pytest.approx(2 ** (-0.9 / 0.5)) and bob == pytest.approx(2 ** (-0.1 / 0.5))
    # Ratios stay while nobody runs (both decay alike); new usage by bob then shifts the balance.
    assert u.fairshare("phys", "ana", 0.5, now=10 * DAY) == pytest.approx(ana)
    u.charge("phys", "bob", 9000 * 2 ** -10, now=10 * DAY)
    assert u.fairshare("phys", "ana", 0.5, now=10 * DAY) > ana


def test_normalized_shares_multiply_down_the_account_tree():
    assert prio.normalized_shares([(40, 100), (1, 4)]) == pytest.approx(0.1)


def test_usage_reset_period_clears_usage_at_the_boundary():
    u = UsageTracker(half_life=0, reset_period="DAILY")
    noon = time.mktime((2024, 3, 5, 12, 0, 0, 0, 0, -1))
    u.charge("phys", "ana", 100, now=noon)
    assert u.usage("phys", "ana", now=noon + 3600) == 100
    assert u.usage("phys", "ana", now=noon + DAY) == 0


def test_tracker_stays_finite_over_years_of_decay():
    u = UsageTracker(half_life=3600)
    for day in range(0, 3 * 365):
        u.charge("a", "u", 100.0, now=day * DAY)
    assert 0 < u.usage("a", "u", now=3 * 365 * DAY) < 200
    assert u.normalized_usage("a", "u", now=3 * 365 * DAY) == pytest.approx(1.0)


def test_fairshare_reorders_two_users_jobs_after_usage():
    u = UsageTracker(half_life=DAY)
    w = PriorityWeights(fairshare=10000, age=100)
    inputs = FactorInputs(fairshare=lambda j: u.fairshare(j["account"], j["user"], 0.5, now=DAY))
    a, b = job(job_id=1, user="ana", eligible_time=0.0), job(job_id=2, user="bob", eligible_time=100.0)
    order = lambda: sorted((a, b), key=lambda j: -prio.job_priority(j, DAY, weights=w, factors_inputs=inputs)[0])
    assert [j["user"] for j in order()] == ["ana", "bob"]  # older first while nobody has usage
    u.charge("phys", "ana", 3600 * 64, now=DAY / 2)
    assert [j["user"] for j in order()] == ["bob", "ana"]
