"""The association store: seed, tree, inheritance, validation, durability (on a real SQLite journal)."""

import pytest

from batch_backend.controller.associations import AssociationStore, parse_enforce
from batch_backend.controller.identity import Identity
from batch_backend.controller.journal import Journal
from batch_backend.errors import BatchError, PermissionDenied
from batch_backend.tres import format_tres, parse_tres

ROOT = Identity(uid=0, gid=0, user="root", admin=True)
ALICE = Identity(uid=1234, gid=1234, user="alice", admin=False)


@pytest.fixture
def store(tmp_path):
    j = Journal(str(tmp_path / "j.sqlite"))
    yield AssociationStore(j, "testcluster", enforce="associations,limits,qos")
    j.close()


def add(store, kind, names, **settings):
    return store.change(kind, "add", {"names": names, "set": settings}, ROOT)


def test_seeded_like_a_new_slurm_cluster(store):
    assert [c["name"] for c in store.list("cluster")] == ["testcluster"]
    assert [(a["name"], a["description"]) for a in store.list("account")] == [("root", "default root account")]
    assert store.list("user") == [{"name": "root", "default_account": "root", "admin_level": "Administrator"}]
    assert [q["name"] for q in store.list("qos")] == ["normal"]
    assert not store.configured()


def test_tree_lists_accounts_and_users_with_parents_and_shares(store):
    add(store, "account", ["physics"], fairshare=40)
    add(store, "account", ["theory"], parent="physics", fairshare=10)
    add(store, "user", ["ana"], accounts=["theory"], fairshare=3)
    assert store.tree() == [
        {"account": "root", "parent": None, "user": None, "shares": 1, "partition": None},
        {"account": "root", "parent": "root", "user": "root", "shares": 1, "partition": None},
        {"account": "physics", "parent": "root", "user": None, "shares": 40, "partition": None},
        {"account": "theory", "parent": "physics", "user": None, "shares": 10, "partition": None},
        {"account": "theory", "parent": "theory", "user": "ana", "shares": 3, "partition": None},
    ]
    assert store.users["ana"]["default_account"] == "theory"


def test_max_limits_and_qos_are_inherited_grp_limits_are_not(store):
    add(store, "qos", ["high"], priority=100)
    add(store, "account", ["physics"], max_jobs=4, grp_tres={"cpu": 8}, qos=["normal", "high"])
    add(store, "user", ["ana"], accounts=["physics"])
    view = next(a for a in store.list("association", {"users": ["ana"]}))
    assert view["max_jobs"] == 4 and view["qos"] == ["normal", "high"] and view["grp_tres"] == {}
    assert store.qos_priorities() == [{"name": "high", "priority": 100}, {"name": "normal", "priority": 0}]


def test_bad_changes_raise_and_change_nothing(store):
    add(store, "account", ["physics"])
    before = (dict(store.accounts), dict(store.assocs), dict(store.users))
    for kind, names, settings in [("account", ["x"], {"parent": "nosuch"}),
                                  ("user", ["ana"], {"accounts": ["nosuch"]}),
                                  ("account", ["y"], {"qos": ["nosuchqos"]}),
                                  ("account", ["physics"], {})]:
        with pytest.raises(BatchError):
            add(store, kind, names, **settings)
    with pytest.raises(BatchError):
        store.change("account", "modify", {"where": {"names": ["physics"]}, "set": {"default_qos": "high"}}, ROOT)
    assert (store.accounts, store.assocs, store.users) == before


def test_only_admins_change_and_dry_run_changes_nothing(store):
    with pytest.raises(PermissionDenied):
        store.change("account", "add", {"names": ["x"]}, ALICE)
    answer = store.change("account", "add", {"names": ["x"], "dry_run": True}, ROOT)
    assert answer["changed"] == ["x"] and "x" not in store.accounts


def test_records_survive_reopening_the_journal(tmp_path):
    path = str(tmp_path / "j.sqlite")
    j = Journal(path)
    s = AssociationStore(j, "c")
    s.change("account", "add", {"names": ["physics"], "set": {"fairshare": 7}}, ROOT)
    s.change("user", "add", {"names": ["ana"], "set": {"accounts": ["physics"], "admin_level": "operator"}}, ROOT)
    j.close()
    s2 = AssociationStore(Journal(path), "c")
    assert s2.assocs[("physics", "", "")]["shares"] == 7
    assert s2.users["ana"]["admin_level"] == "Operator"
    assert s2.is_admin(Identity(uid=5, gid=5, user="ana", admin=False))


def test_delete_account_drops_its_associations_and_orphaned_users(store):
    add(store, "account", ["physics"])
    add(store, "user", ["ana"], accounts=["physics"])
    store.change("account", "delete", {"where": {"names": ["physics"]}}, ROOT)
    assert "physics" not in store.accounts and "ana" not in store.users
    assert not any(k[0] == "physics" for k in store.assocs)


def test_enforce_flags_imply_associations():
    assert parse_enforce("limits") == {"limits", "associations"}
    assert parse_enforce("safe") == {"safe", "limits", "associations"}
    assert parse_enforce("") == set()


def test_tres_strings_round_trip():
    assert parse_tres("cpu=4,mem=2G,node=1,gres/gpu=2") == {"cpu": 4, "mem": 2048, "node": 1, "gres/gpu": 2}
    assert format_tres({"mem": 2048, "cpu": 4}) == "cpu=4,mem=2G"
    assert parse_tres("cpu=-1") == {"cpu": None}


def test_openapi_documents_the_accounting_routes():
    from batch_backend.api.openapi import openapi_document
    paths = openapi_document()["paths"]
    for kind in ("clusters", "accounts", "users", "qos", "associations"):
        assert "get" in paths[f"/v1/accounting/{kind}"]
        assert "post" in paths[f"/v1/accounting/{kind}/modify"]
    assert "/v1/accounting/associations/add" not in paths
    assert "get" in paths["/v1/associations"]


@pytest.mark.parametrize("request_body", [
    {"names": "physics"}, {"names": [1]}, {"names": ["a b"]}, {"set": {"fairshare": "x"}, "names": ["p"]},
    {"set": {"grp_tres": {"bogus": 1}}, "names": ["p"]}, {"set": {"qos": "normal"}, "names": ["p"]},
    {"where": {"partitions": 5}}, {"where": {"nonsense": ["x"]}}, {"set": {"max_jobs": -3}, "names": ["p"]},
    [], {"set": [], "names": ["p"]},
])
def test_malformed_requests_are_invalid_requests(store, request_body):
    before = dict(store.assocs)
    with pytest.raises(BatchError) as err:
        store.change("account", "add", request_body, ROOT)
    assert err.value.status in (400, 404, 409)
    assert store.assocs == before


def _job(store, account="", qos="", user="root", partition="debug", time_limit=None):
    job = {"user": user, "partition": partition, "time_limit": None, "array_pending": None,
           "num_tasks": 1, "cpus_per_task": 1, "gres": ""}
    sub = {"account": account, "qos": qos, "time_limit": time_limit}
    return job, sub


PART = {"name": "debug", "allow_accounts": "ALL", "allow_qos": "ALL"}


def test_submit_fills_in_default_account_qos_and_max_wall(store):
    add(store, "qos", ["high"], max_wall=30)
    add(store, "account", ["physics"], qos=["normal", "high"], default_qos="high")
    add(store, "user", ["ana"], accounts=["physics"])
    job, sub = _job(store, user="ana")
    store.apply_to_job(job, sub, PART, lambda: [])
    assert (job["account"], job["qos"], job["time_limit"]) == ("physics", "high", 30)


def active_of(jobs):
    """An ``active_jobs(user=None)`` callable over a fixed list, as the controller gives."""
    return lambda user=None: [j for j in jobs if user is None or j["user"] == user]


def test_submit_limits_count_pending_and_running_jobs(store):
    from batch_backend.controller.associations import POLICY_VIOLATION
    add(store, "qos", ["small"], grp_submit=2)
    add(store, "account", ["physics"], qos=["normal", "small"], max_submit=3)
    add(store, "user", ["ana"], accounts=["physics"])
    active = [{"user": "ana", "account": "physics", "partition": "debug", "qos": "small", "array_pending": None}] * 2
    job, sub = _job(store, user="ana", qos="small")
    with pytest.raises(BatchError, match=POLICY_VIOLATION.replace("(", r"\(").replace(")", r"\)")):
        store.apply_to_job(job, sub, PART, active_of(active))
    job, sub = _job(store, user="ana")
    store.apply_to_job(job, sub, PART, active_of(active))  # QOS normal: only MaxSubmitJobs=3 counts
    active = active + [dict(active[0], qos="normal")]
    with pytest.raises(BatchError):
        store.apply_to_job(*_job(store, user="ana"), PART, active_of(active))


def test_max_submit_counts_only_the_users_own_jobs_grp_submit_everyones(store):
    add(store, "account", ["physics"], max_submit=2)
    add(store, "user", ["ana", "bob"], accounts=["physics"])
    bobs = [{"user": "bob", "account": "physics", "partition": "debug", "qos": "normal", "array_pending": None}] * 2
    asked = []

    def active(user=None):
        asked.append(user)
        return active_of(bobs)(user)
    store.apply_to_job(*_job(store, user="ana"), PART, active)  # bob's two jobs are not ana's
    assert asked == ["ana"]  # a per-user limit never asks for the whole queue
    add(store, "account", ["chem"], grp_submit=2)
    add(store, "user", ["ana", "bob"], accounts=["chem"])
    bobs = [dict(j, account="chem") for j in bobs]
    with pytest.raises(BatchError):
        store.apply_to_job(*_job(store, account="chem", user="ana"), PART, active_of(bobs))


def test_associations_and_qos_in_use_by_active_jobs_cannot_be_deleted(store):
    add(store, "qos", ["high"])
    add(store, "account", ["physics"], qos=["normal", "high"])
    add(store, "user", ["ana"], accounts=["physics"])
    jobs = [{"job_id": 7, "account": "physics", "user": "ana", "partition": "debug", "qos": "high"}]
    for kind, where in (("account", {"names": ["physics"]}), ("user", {"names": ["ana"]}), ("qos", {"names": ["high"]})):
        with pytest.raises(BatchError, match="Job\\(s\\) active"):
            store.change(kind, "delete", {"where": where}, ROOT, active_jobs=lambda: jobs)
    store.change("user", "delete", {"where": {"names": ["ana"]}}, ROOT, active_jobs=lambda: [])
    assert "ana" not in store.users
