"""Spawn options and plain-words messages, without a hub (pure functions)."""

import pytest

from spawner.options import OptionsError, render_form, resolve, usable_partitions
from spawner.reasons import end_text, pending_text

PARTITIONS = [
    {"name": "debug", "default": True, "state": "UP", "max_time": 60, "default_time": None,
     "nodes": ["n1", "n2"], "allow_groups": "ALL", "root_only": False, "hidden": False},
    {"name": "gpu", "default": False, "state": "UP", "max_time": None, "default_time": 30,
     "nodes": ["g1"], "allow_groups": "ALL", "root_only": False, "hidden": False},
    {"name": "staff", "default": False, "state": "UP", "max_time": 60, "nodes": ["n1"],
     "allow_groups": "staff", "root_only": False, "hidden": False},
    {"name": "down", "default": False, "state": "DOWN", "max_time": 60, "nodes": ["n1"],
     "allow_groups": "ALL", "root_only": False, "hidden": False},
]
NODES = [{"name": "n1", "cpus": 4, "real_memory": 8000, "gres": ""},
         {"name": "n2", "cpus": 8, "real_memory": 16000, "gres": ""},
         {"name": "g1", "cpus": 8, "real_memory": 32000, "gres": "gpu:2"}]
PROFILES = [{"name": "small", "cpus": 1, "memory": "2G", "time": "2:00:00"},
            {"name": "gpu", "partition": "gpu", "cpus": 4, "memory": "8G", "gpus": 1, "time": 120},
            {"name": "class", "cpus": 1, "memory": "1G", "time": 30, "reservation": "class101",
             "account": "c101", "groups": ["students"]}]


def usable(groups=None):
    return usable_partitions(PARTITIONS, NODES, groups)


def test_usable_partitions_hide_down_and_group_restricted_ones_with_per_node_limits():
    u = usable(groups=["users"])
    assert sorted(u) == ["debug", "gpu"]
    assert (u["debug"]["max_cpus"], u["debug"]["max_memory"], u["gpu"]["max_gpus"]) == (8, 16000, 2)
    assert "staff" in usable(groups=["staff"])


def test_profile_resolves_to_the_request_with_its_account_and_reservation():
    r = resolve({"profile": "class"}, profiles=PROFILES, usable=usable(), allow_custom=True,
                user_name="ann", hub_groups=["students"])
    assert (r.partition, r.cpus, r.memory_mb, r.time_minutes, r.account, r.reservation) == \
        ("debug", 1, 1024, 30, "c101", "class101")
    assert "--reservation=class101" in r.sbatch_args() and "--account=c101" in r.sbatch_args()


def test_gpu_profile_asks_for_gres():
    r = resolve({"profile": "gpu"}, profiles=PROFILES, usable=usable(), allow_custom=False,
                user_name="ann", hub_groups=[])
    assert "--gres=gpu:1" in r.sbatch_args() and r.time_minutes == 120


@pytest.mark.parametrize("options, message", [
    ({"profile": "small"}, "Partition debug allows at most 1 h (you asked for 2 h)"),
    ({"profile": "class"}, "You may not use profile 'class'"),
    ({"profile": "custom", "gpus": "3", "partition": "gpu"}, "GPUs can be at most 2 here"),
    ({"profile": "custom", "memory": "-1G"}, "Memory must be a size like 2G"),
    ({"profile": "custom", "partition": "staff"}, "Partition 'staff' (your request) is not available"),
    ({"profile": "custom", "account": "rich"}, "cannot choose the account yourself"),
    ({"profile": "custom", "time": "0"}, "An unlimited time is not allowed"),
])
def test_bad_options_are_refused_with_a_sentence(options, message):
    with pytest.raises(OptionsError) as e:
        resolve(options, profiles=PROFILES, usable=usable(groups=["users"]), allow_custom=True,
                user_name="bob", hub_groups=[])
    assert message in str(e.value)


def test_custom_requests_can_be_switched_off():
    with pytest.raises(OptionsError, match="Custom requests are not enabled"):
        resolve({"profile": "custom", "cpus": "2"}, profiles=PROFILES, usable=usable(), allow_custom=False,
                user_name="bob", hub_groups=[])


def test_form_disables_profiles_that_do_not_fit_and_hides_forbidden_ones():
    html = render_form(profiles=PROFILES, usable=usable(), allow_custom=True, user_name="bob", hub_groups=[])
    assert 'value="small" disabled' in html and "allows at most 1 h" in html
    assert 'value="gpu" checked' in html  # the first profile that fits is preselected
    assert "class" not in html.replace("class=", "")
    assert "gpu: up to 8 CPUs, 32000 MB, 2 GPUs, no time limit" in html


def test_pending_text_says_position_reason_and_estimated_start():
    job = {"job_id": 7, "partition": "debug", "reason": "Resources", "start_time": 1000.0 + 240,
           "start_estimated": True}
    text = pending_text(job, (3, 5), now=1000.0)
    assert text.startswith("Job 7 is queued in partition debug, position 3 of 5; waiting for resources")
    assert "Estimated start" in text and "(in 4 min)" in text
    held = pending_text({"job_id": 8, "partition": "debug", "reason": "JobHeldUser"}, None, now=0)
    assert "held by its owner" in held and "position" not in held
    resv = pending_text({"job_id": 9, "partition": "debug", "reason": "Reservation",
                         "reservation": "class101", "begin_time": 3600.0}, None, now=0)
    assert "waiting for reservation class101 at " in resv


@pytest.mark.parametrize("job, words", [
    ({"state": "TIMEOUT", "time_limit": 90}, "the job reached its time limit of 1 h 30 min"),
    ({"state": "PREEMPTED"}, "preempted"),
    ({"state": "NODE_FAIL"}, "the node running the job failed"),
    ({"state": "FAILED", "exit_code": 3}, "the job failed (exit code 3)"),
    ({"state": "FAILED", "exit_signal": 53}, "could not be launched"),
    ({"state": "GONE"}, "no longer known to the queue"),
])
def test_end_text_says_why_a_job_is_gone(job, words):
    assert words in end_text(job)
