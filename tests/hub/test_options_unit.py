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


# -- accounts, QOS and reservations (spawner.access) ------------------------------------------
from spawner.access import Access  # noqa: E402
from spawner.options import form_to_options  # noqa: E402

NOW = 1_800_000_000
ASSOCS = [{"account": "physics", "user": "ann", "partition": "", "qos": ["normal", "high"],
           "default_qos": "normal", "max_wall": None},
          {"account": "theory", "user": "ann", "partition": "", "qos": ["normal"], "default_qos": None,
           "max_wall": 30}]
QOS = [{"name": "normal", "max_wall": None}, {"name": "high", "max_wall": 45}, {"name": "vip", "max_wall": None}]
RESVS = [{"name": "class101", "start_time": NOW + 3600, "end_time": NOW + 7200, "nodes": ["n1"], "nodelist": "n1",
          "users": [], "groups": ["students"], "accounts": [], "partition": "", "flags": []},
         {"name": "staffonly", "start_time": NOW - 60, "end_time": NOW + 600, "nodes": ["n2"], "nodelist": "n2",
          "users": ["carl"], "groups": [], "accounts": [], "partition": "", "flags": []},
         {"name": "old", "start_time": NOW - 7200, "end_time": NOW - 3600, "nodes": ["n1"], "nodelist": "n1",
          "users": ["ann"], "groups": [], "accounts": [], "partition": "", "flags": []}]


def ann_access(enforce=("associations", "qos", "limits"), groups=("students",)):
    return Access("ann", associations=ASSOCS, user_record={"default_account": "physics"}, qos=QOS,
                  reservations=RESVS, enforce=enforce, groups=groups, now=NOW)


def resolve_ann(options, access=None, profiles=PROFILES):
    return resolve(options, profiles=profiles, usable=usable(), allow_custom=True, user_name="ann",
                   hub_groups=["students"], access=access or ann_access())


def test_custom_request_may_name_the_users_account_qos_and_admitted_reservation():
    r = resolve_ann({"profile": "custom", "account": "physics", "qos": "high", "reservation": "class101",
                     "time": "40"})
    assert (r.account, r.qos, r.reservation) == ("physics", "high", "class101")
    assert "--reservation=class101" in r.sbatch_args() and "--qos=high" in r.sbatch_args()


@pytest.mark.parametrize("options, message", [
    ({"account": "chemistry"}, "You may not charge account 'chemistry': your accounts are physics, theory."),
    ({"account": "theory", "qos": "high"}, "You may not use QOS 'high' with account theory: yours are normal."),
    ({"qos": "vip"}, "You may not use QOS 'vip' with account physics"),
    ({"reservation": "staffonly"}, "You are not admitted to reservation staffonly."),
    ({"reservation": "old"}, "Reservation old has ended."),
    ({"reservation": "nosuch"}, "There is no reservation 'nosuch'"),
    ({"reservation": "class101", "partition": "gpu"}, "Reservation class101 is on nodes n1, none of them in partition gpu; choose partition debug or staff."),
    ({"qos": "high", "time": "50"}, "QOS high allows at most 45 min per job (you asked for 50 min)."),
    ({"account": "theory", "time": "40"}, "Account theory allows at most 30 min per job (you asked for 40 min)."),
])
def test_custom_accounting_choices_the_user_may_not_make_are_refused(options, message):
    with pytest.raises(OptionsError) as e:
        resolve_ann(dict(options, profile="custom"))
    assert message in str(e.value)


def test_profile_naming_a_reservation_is_for_its_members_only():
    profiles = [{"name": "class", "display_name": "Class 101 (reservation)", "cpus": 1, "memory": "1G",
                 "time": 30, "reservation": "class101"}]
    assert resolve_ann({"profile": "class"}, profiles=profiles).reservation == "class101"
    with pytest.raises(OptionsError, match=r"Profile 'class': You are not admitted to reservation class101\."):
        resolve_ann({"profile": "class"}, access=ann_access(groups=()), profiles=profiles)
    html = render_form(profiles=profiles, usable=usable(), allow_custom=True, user_name="ann", hub_groups=[],
                       access=ann_access(groups=()))
    assert 'value="class" disabled' in html and "not admitted to reservation class101" in html


def test_unenforced_accounting_still_lets_admin_profiles_name_any_account():
    profiles = [{"name": "lab", "cpus": 1, "memory": "1G", "time": 30, "account": "somelab"}]
    assert resolve_ann({"profile": "lab"}, access=ann_access(enforce=()), profiles=profiles).account == "somelab"
    with pytest.raises(OptionsError, match="may not charge account 'somelab'"):
        resolve_ann({"profile": "lab"}, profiles=profiles)  # enforced: the controller would refuse it
    with pytest.raises(OptionsError, match="may not charge account 'somelab'"):  # a user never types one
        resolve_ann({"profile": "custom", "account": "somelab"}, access=ann_access(enforce=()))


def test_form_offers_the_users_accounts_qos_and_reservations_with_defaults():
    html = render_form(profiles=[], usable=usable(), allow_custom=True, user_name="ann", hub_groups=[],
                       access=ann_access(), clock=lambda t: f"T{int(t - NOW)}")
    assert '<option value="physics" selected>physics (default)</option><option value="theory">' in html
    assert '<option value="" selected>default (normal)</option><option value="normal">normal</option>' \
           '<option value="high">high</option>' in html
    assert "vip" not in html
    assert '<option value="class101">class101: from T3600 to T7200 on n1</option>' in html
    assert "staffonly" not in html and "old" not in html


def test_form_posting_a_profile_ignores_the_custom_fields():
    assert form_to_options({"profile": ["small"], "account": ["physics"], "cpus": ["2"]}) == {"profile": "small"}
    assert form_to_options({"profile": ["custom"], "account": ["physics"], "qos": [""], "reservation": [""]}) == \
        {"profile": "custom", "account": "physics"}


def test_partitions_that_admit_none_of_the_users_accounts_are_left_out():
    parts = [dict(PARTITIONS[0], allow_accounts="physics"), dict(PARTITIONS[1], allow_accounts="bio")]
    assert sorted(usable_partitions(parts, NODES, None, ["physics", "theory"])) == ["debug"]


@pytest.mark.parametrize("job, reservation_start, words", [
    ({"job_id": 7, "partition": "debug", "reason": "Reservation", "reservation": "class101"}, NOW + 3600,
     "waiting for reservation class101, starting at "),
    ({"job_id": 7, "partition": "debug", "reason": "AssocMaxJobsLimit"}, None,
     "your account already runs as many of your jobs as it allows at once"),
    ({"job_id": 7, "partition": "debug", "reason": "QOSMaxJobsPerUserLimit", "qos": "high"}, None,
     "you already run as many jobs as QOS high allows one user"),
    ({"job_id": 7, "partition": "debug", "reason": "AssocGrpCpuLimit"}, None,
     "your account (with everyone in it) already uses all the CPUs it may"),
])
def test_reservation_and_accounting_reasons_in_plain_words(job, reservation_start, words):
    text = pending_text(job, now=NOW, reservation_start=reservation_start)
    assert words in text, text
    if reservation_start:
        import time as _t
        assert text.endswith(_t.strftime("%H:%M", _t.localtime(reservation_start)) + "."), text
