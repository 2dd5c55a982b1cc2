"""%sprio, %sshare, the usage view and reservations, on a cluster with multifactor priority and accounts.

The session cluster runs priority/basic, so this module starts its own (the
real controller and node daemons, configured with multifactor priority), adds a
class account with sacctmgr as the admin would, and runs the magics and the
widgets through both backends.
"""

import os
import time

import pytest

from cluster_support import TEST_CONF, LiveCluster
from kernel_ext import slurm_text
from kernel_ext.backend import BatchHubBackend, select_backend
from kernel_ext.tables import Table
from kernel_ext.widgets import (NodeDashboard, QueueDashboard, ReservationList, UsageView, explain_reason, subtree,
                                usage_svg)
from magic_helpers import assert_one_error_line, run_magic

pytestmark = pytest.mark.timeout(180)

CONF = TEST_CONF + "PriorityType=priority/multifactor\nPriorityWeightFairshare=10000\nPriorityWeightAge=1000\n"


@pytest.fixture(scope="module")
def mf_cluster(tmp_path_factory):
    c = LiveCluster(tmp_path_factory.mktemp("multifactor"), CONF).up()
    try:
        for cmd in (["add", "account", "class101", "fairshare=3"], ["add", "account", "lab", "fairshare=1"],
                    ["add", "user", "root", "account=class101"]):
            r = c.run("sacctmgr", "-i", *cmd)
            assert r.returncode == 0, r.stderr
        yield c
    finally:
        c.down()


@pytest.fixture(params=["batchhub", "cli"])
def mf_backend(request, mf_cluster, monkeypatch, tmp_path):
    """The kernel's environment pointed at the multifactor cluster, through one backend."""
    for key in ("BATCHHUB_HOME", "BATCHHUB_SOCKET", "BATCHHUB_CONF", "PATH"):
        monkeypatch.setenv(key, mf_cluster.env[key])
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("BATCHHUB_MAGICS_BACKEND", request.param)
    monkeypatch.chdir(tmp_path)
    return request.param


@pytest.fixture
def blocked(mf_cluster):
    """A job holding every CPU and one pending job in class101 behind it: (blocker, pending)."""
    blocker = mf_cluster.sbatch("-N", "4", "-n", "16", "-t", "5", "--wrap", "sleep 120")
    mf_cluster.wait_state(blocker, "RUNNING")  # a job of an earlier test may still be leaving its node
    pending = mf_cluster.sbatch("-A", "class101", "-J", "student-job", "-t", "5", "--wrap", "true")
    yield blocker, pending
    mf_cluster.run("scancel", str(pending), str(blocker))


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- %sprio / %sshare ---------------------------------------------------------------------------

def test_sprio_is_a_table_of_the_factors(ip, mf_backend, blocked):
    _, pending = blocked
    table = ip.run_line_magic("sprio", f"-j {pending}")
    assert isinstance(table, Table)
    assert table.columns == ["JOBID", "PARTITION", "PRIORITY", "SITE", "AGE", "FAIRSHARE"]
    row = table.dicts()[0]
    assert row["JOBID"] == str(pending) and row["PARTITION"] == "debug"
    assert int(row["FAIRSHARE"]) > 0 and int(row["PRIORITY"]) >= int(row["FAIRSHARE"])
    assert f"<td>{pending}</td>" in table._repr_html_()
    assert repr(table).splitlines()[0].split() == table.columns


def test_sprio_blank_cells_stay_in_their_columns(ip, mf_backend, blocked):
    weights = ip.run_line_magic("sprio", "-w")
    assert weights.dicts() == [{"JOBID": "Weights", "PARTITION": "", "PRIORITY": "", "SITE": "1",
                                "AGE": "1000", "FAIRSHARE": "10000"}]
    long = ip.run_line_magic("sprio", f"-l -j {blocked[1]}")
    assert long.columns[-2:] == ["NICE", "TRES"]
    assert long.rows[0][2] == "root" and long.rows[0][-1] == ""
    custom = ip.run_line_magic("sprio", f"-h -j {blocked[1]} -o '%i %o'")  # no header: sprio's own text
    assert repr(custom).split() == [str(blocked[1]), "class101"]


def test_sprio_without_pending_jobs_is_an_empty_table(ip, mf_backend):
    table = ip.run_line_magic("sprio", "-p gpu")
    assert isinstance(table, Table) and table.rows == [] and table.columns[0] == "JOBID"
    assert "No pending jobs." in repr(table) and "No pending jobs." in table._repr_html_()


def test_sprio_errors_are_one_line(ip, mf_backend):
    line = assert_one_error_line(*run_magic(ip, "sprio -j notanumber"), "sprio")
    assert "Invalid job id" in line
    assert_one_error_line(*run_magic(ip, "sprio --bogus"), "sprio")


def test_sshare_shows_the_tree_with_blank_users(ip, mf_backend):
    table = ip.run_line_magic("sshare", "-a")
    assert table.columns == ["Account", "User", "RawShares", "NormShares", "RawUsage", "EffectvUsage", "FairShare"]
    rows = {(r["Account"].strip(), r["User"]): r for r in table.dicts()}
    assert rows[("class101", "")]["RawShares"] == "3" and rows[("lab", "")]["RawShares"] == "1"
    assert rows[("class101", "")]["Account"] == " class101"  # one level under root: the tree's indentation
    assert ("class101", "root") in rows and rows[("root", "")]["FairShare"] == ""
    only = ip.run_line_magic("sshare", "-A class101 -a --format=Account,User,FairShare")
    assert only.columns == ["Account", "User", "FairShare"]
    assert {r[0].strip() for r in only.rows} == {"class101"}
    line = assert_one_error_line(*run_magic(ip, "sshare --format=Bogus"), "sshare")
    assert 'Invalid field requested: "Bogus"' in line


def test_backend_shares_agree(mf_cluster, mf_backend):
    rows = select_backend().shares()
    by_key = {(r["account"], r["user"]): r for r in rows}
    assert by_key[("class101", None)]["raw_shares"] == 3 and by_key[("class101", None)]["depth"] == 1
    assert by_key[("class101", "root")]["depth"] == 2
    assert by_key[("root", None)]["fairshare"] is None
    assert [r["account"] for r in subtree(rows, "class101")] == ["class101", "class101"]


# -- usage view ------------------------------------------------------------------------------------

def test_usage_view_follows_a_students_job(mf_cluster, mf_backend):
    view = UsageView(select_backend(), account="class101", interval=0.3)
    try:
        wait_for(lambda: view.refreshes >= 1, what="a first refresh")
        assert [(r["account"], r["user"]) for r in view.rows] == [("class101", None), ("class101", "root")]
        before = view.rows[1]["raw_usage"]
        job = mf_cluster.sbatch("-A", "class101", "-n", "2", "--wrap", "sleep 2")
        mf_cluster.wait_state(job, "COMPLETED")
        wait_for(lambda: view.rows and view.rows[1]["raw_usage"] > before, what="the job's usage")
        assert "<td>root</td>" in view.table.value and "class101" in view.table.value
        series = view.series()
        assert set(series) == {"class101", "class101/root"}
        values = [v for _, v in series["class101/root"]]
        assert len(values) >= 2 and values[-1] > values[0]
        assert "<polyline" in view.plot.value and "class101/root" in view.plot.value
        view.metric.value = "fairshare"
        assert all(0.0 <= v <= 1.0 for _, v in view.series()["class101/root"])
        view.users_only.value = True
        assert [r["user"] for r in view.rows] == ["root"]
        view.account.value = "nosuchclass"
        assert view.rows == [] and view.note.value == "no account 'nosuchclass' in the association tree"
        assert "No associations." in view.table.value
    finally:
        view.close()
    wait_for(lambda: not view.polling, timeout=5, what="the poller to stop")


def test_usage_view_one_query_per_interval_reconnecting_and_close(tmp_path):
    t0 = time.monotonic()
    view = UsageView(BatchHubBackend(str(tmp_path / "nobody.sock")), interval=0.2)
    try:
        wait_for(lambda: view.status.value.startswith("reconnecting"), what="reconnecting")
        time.sleep(1.0)
        assert view.polling and view.samples == []
        elapsed = time.monotonic() - t0
        assert 2 <= view.queries <= elapsed / 0.2 + 1.5, (view.queries, elapsed)
    finally:
        view.widget.close()  # closing the output in JupyterLab: the thread ends by itself
    wait_for(lambda: not view.polling, timeout=5, what="the poller to stop")
    q = view.queries
    time.sleep(0.5)
    assert view.queries == q


def test_usage_view_recovers_when_the_controller_returns(mf_cluster, tmp_path):
    link = tmp_path / "ctl.sock"
    link.symlink_to(tmp_path / "nothing-here")
    view = UsageView(BatchHubBackend(str(link)), interval=0.2)
    try:
        wait_for(lambda: view.status.value.startswith("reconnecting"), what="reconnecting")
        link.unlink()
        link.symlink_to(mf_cluster.socket)
        wait_for(lambda: view.status.value.startswith("updated"), what="recovery")
        assert view.error is None and any(r["account"] == "class101" for r in view.rows)
    finally:
        view.close()


# -- reservations ------------------------------------------------------------------------------------

def test_reservation_shows_in_the_list_and_on_its_node(mf_cluster, mf_backend):
    r = mf_cluster.run("scontrol", "create", "reservation", "ReservationName=class101_lab", "StartTime=now",
                       "Duration=30", "Nodes=n3", "Accounts=class101")
    assert r.returncode == 0, r.stderr
    resv, nodes = ReservationList(select_backend(), interval=0.3), NodeDashboard(select_backend(), interval=0.3)
    try:
        wait_for(lambda: "class101_lab" in resv.reservations, what="the reservation")
        shown = resv.reservations["class101_lab"]
        assert shown["nodelist"] == "n3" and shown["accounts"] == ["class101"] and shown["state"] == "ACTIVE"
        assert "<td>class101_lab</td>" in resv.table.value
        wait_for(lambda: "n3" in nodes.rows, what="node n3")
        assert nodes.rows["n3"].state.value == "idle (reserved)"
        assert nodes.rows["n1"].state.value == "idle"
        assert "1 in an active reservation" in nodes.summary.value
        job = mf_cluster.sbatch("-A", "class101", "--reservation=class101_lab", "-J", "in-lab", "-t", "2",
                                "--wrap", "sleep 30")
        queue = QueueDashboard(select_backend(), show="all", interval=0.3)
        try:
            wait_for(lambda: str(job) in queue.rows and queue.rows[str(job)].state.value == "RUNNING",
                     what="the job running in the reservation")
            assert queue.rows[str(job)].reason.value == "on n3 in reservation class101_lab"
        finally:
            queue.close()
            mf_cluster.run("scancel", str(job))
    finally:
        resv.close()
        nodes.close()
        for _ in range(50):
            if mf_cluster.run("scontrol", "delete", "ReservationName=class101_lab").returncode == 0:
                break
            time.sleep(0.2)


def test_new_pending_reasons_are_explained():
    job = {"job_id": 7, "state": "PENDING", "reason": "Reservation", "reservation": "class101_lab"}
    words, todo = explain_reason(job)
    assert "reservation class101_lab" in words and "scontrol show res class101_lab" in todo
    for reason, phrase in [("AssocMaxJobsLimit", "MaxJobs"), ("QOSMaxJobsPerUserLimit", "QOS"),
                           ("AssocGrpCpuLimit", "GrpTRES"), ("QOSMaxCpuPerJobLimit", "never start"),
                           ("ReservationDeleted", "never start")]:
        words, todo = explain_reason({"job_id": 1, "state": "PENDING", "reason": reason})
        assert phrase in words and todo and not words.startswith("waiting ("), reason


PREEMPT_CONF = """\
ClusterName=preemptdash
SlurmdParameters=config_overrides
SlurmdTimeout=30
KillWait=1
PreemptType=preempt/partition_prio
PreemptMode=SUSPEND,GANG
NodeName=p1 CPUs=2 RealMemory=1000
PartitionName=low Nodes=p1 Default=YES PriorityTier=1 PreemptMode=SUSPEND
PartitionName=high Nodes=p1 PriorityTier=10
"""


@pytest.mark.parametrize("backend", ["batchhub", "cli"])
def test_preempted_job_is_explained_in_the_queue_dashboard(make_cluster, monkeypatch, tmp_path, backend):
    c = make_cluster(PREEMPT_CONF, name="preempt")
    for key in ("BATCHHUB_HOME", "BATCHHUB_SOCKET", "BATCHHUB_CONF", "PATH"):
        monkeypatch.setenv(key, c.env[key])
    monkeypatch.setenv("BATCHHUB_MAGICS_BACKEND", backend)
    low = c.sbatch("-p", "low", "-n", "2", "-t", "5", "--wrap", "sleep 60")
    c.wait_state(low, "RUNNING")
    high = c.sbatch("-p", "high", "-n", "2", "-t", "5", "--wrap", "sleep 60")
    queue = QueueDashboard(select_backend(), show="all", interval=0.3)
    try:
        wait_for(lambda: str(low) in queue.rows and queue.rows[str(low)].state.value == "SUSPENDED",
                 what="the low-priority job suspended")
        row = queue.rows[str(low)]
        if backend == "batchhub":  # the API says why it is suspended and by whom
            assert row.reason_text == f"suspended: a higher-priority job preempted it (job {high}) and took its CPUs"
        else:  # squeue does not say which kind of suspension
            assert row.reason_text.startswith("suspended: stopped in place (preempted")
        assert "resumes where it stopped" in row.todo_text
        c.run("scancel", str(high))
        wait_for(lambda: queue.rows[str(low)].state.value == "RUNNING", what="the job resumed")
        assert queue.rows[str(low)].reason_text == ""
    finally:
        queue.close()
        c.run("scancel", str(low), str(high))


LIMITS_CONF = TEST_CONF + "AccountingStorageEnforce=associations,limits,qos\n"


@pytest.mark.parametrize("backend", ["batchhub", "cli"])
def test_association_limit_reason_is_explained_in_the_queue_dashboard(make_cluster, monkeypatch, backend):
    c = make_cluster(LIMITS_CONF, name="limits")
    for cmd in (["add", "account", "class101"], ["add", "user", "root", "account=class101", "MaxJobs=1"]):
        r = c.run("sacctmgr", "-i", *cmd)
        assert r.returncode == 0, r.stderr
    for key in ("BATCHHUB_HOME", "BATCHHUB_SOCKET", "BATCHHUB_CONF", "PATH"):
        monkeypatch.setenv(key, c.env[key])
    monkeypatch.setenv("BATCHHUB_MAGICS_BACKEND", backend)
    first = c.sbatch("-A", "class101", "-t", "5", "--wrap", "sleep 60")
    second = c.sbatch("-A", "class101", "-t", "5", "--wrap", "sleep 60")
    queue = QueueDashboard(select_backend(), show="all", interval=0.3)
    try:
        wait_for(lambda: str(second) in queue.rows and queue.rows[str(second)].reason_text.startswith("you already"),
                 what="the second job held back by MaxJobs")
        row = queue.rows[str(second)]
        assert row.reason_text == ("you already run as many jobs in this account as your association allows "
                                   "(MaxJobs)")
        assert row.todo_text == "wait for your other jobs in the account to end"
        assert queue.rows[str(first)].state.value == "RUNNING"
    finally:
        queue.close()
        c.run("scancel", str(first), str(second))


# -- pure parsing ----------------------------------------------------------------------------------------

def test_subtree_without_depths_keeps_the_accounts_own_rows():
    rows = [{"account": "root", "user": None}, {"account": "a", "user": None}, {"account": "a", "user": "x"},
            {"account": "b", "user": "y"}]
    assert subtree(rows, "a") == rows[1:3]


def test_sshare_dataframe_or_a_one_line_note_without_pandas(ip, mf_backend):
    try:
        import pandas  # noqa: F401
    except ImportError:
        result, captured = run_magic(ip, "sshare -a -o df")
        assert isinstance(result.result, Table) and "class101" in [a.strip() for a in result.result.column("Account")]
        assert captured.stderr.strip().splitlines() == [
            "sshare: error: -o df needs pandas, which is not installed; showing the table"]
    else:
        frame = ip.run_line_magic("sshare", "-a -o df")
        assert "class101" in [a.strip() for a in frame["Account"]]


def test_fixed_width_table_keeps_blank_cells():
    text = ("          JOBID PARTITION   PRIORITY       SITE\n"
            "        Weights                               1\n"
            "             12 debug            100          0\n")
    assert slurm_text.parse_fixed_width_table(text) == (
        ["JOBID", "PARTITION", "PRIORITY", "SITE"], [["Weights", "", "", "1"], ["12", "debug", "100", "0"]])
    assert slurm_text.parse_fixed_width_table("Unable to find jobs matching user/id(s) specified\n") is None


def test_usage_svg_draws_one_line_per_series():
    svg = usage_svg({"a/x": [(0, 0.0), (10, 5.0)], "a/y": [(0, 1.0)]}, "raw_usage")
    assert svg.startswith("<svg") and svg.count("<polyline") == 1 and svg.count("<circle") == 1
    assert ">a/x</text>" in svg and ">5</text>" in svg
    assert os.linesep not in svg
