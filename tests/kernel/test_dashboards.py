"""Queue and node dashboards: the widget models follow the queue (values asserted, not just rendered)."""

import time

import pytest

from kernel_ext.backend import BatchHubBackend, select_backend
from kernel_ext.widgets import NodeDashboard, QueueDashboard, explain_reason

pytestmark = pytest.mark.timeout(120)


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_held_job_row_release_and_cancel(ip, cluster, backend_name, cancel_after):
    job_id = ip.run_cell_magic("sbatch", "--hold -J dash-held -t 5", "sleep 30\n")
    cancel_after.append(job_id)
    dash = QueueDashboard(select_backend(), show="mine", interval=0.2)
    try:
        key = str(job_id)
        wait_for(lambda: key in dash.rows, what="the held job's row")
        row = dash.rows[key]
        assert row.state.value == "PENDING"
        assert row.reason_text == "held by you"
        assert "Release" in row.todo_text and "held by you" in row.reason.value
        assert row.own and not row.release.disabled and row.hold.disabled
        assert row.name.value == "dash-held"

        row.release.click()
        assert dash.last_action == f"release {job_id}: done"
        wait_for(lambda: dash.rows[key].state.value == "RUNNING", what="RUNNING after release")
        assert dash.rows[key].reason_text == ""
        assert dash.rows[key].start.value  # the actual start time

        dash.rows[key].cancel.click()
        assert dash.last_action == f"cancel {job_id}: done"
        assert cluster.wait_state(job_id, "CANCELLED").startswith("CANCELLED")
        wait_for(lambda: key not in dash.rows or dash.rows[key].state.value == "CANCELLED",
                 what="the cancelled job to leave the table")
    finally:
        dash.close()
    wait_for(lambda: not dash.polling, timeout=5, what="the poller to stop")


def test_hold_button_filter_sort_and_views(ip, cluster, kernel_env, cancel_after, monkeypatch):
    monkeypatch.setenv("BATCHHUB_MAGICS_BACKEND", "batchhub")
    a = ip.run_cell_magic("sbatch", "--begin now+1hour -J dash-alpha -p short -t 2", "true\n")
    b = ip.run_cell_magic("sbatch", "--hold -J dash-beta -t 3", "true\n")
    cancel_after.extend([a, b])
    dash = QueueDashboard(BatchHubBackend(), show="mine", interval=30, start=False)
    try:
        assert dash.refresh() and dash.queries == 1
        assert {str(a), str(b)} <= set(dash.rows)
        assert dash.rows[str(a)].reason_text.startswith("waiting for its requested start time")
        dash.rows[str(a)].hold.click()
        assert dash.rows[str(a)].reason_text == "held by you"
        assert cluster.job(a)["Reason"].startswith("JobHeldUser")

        dash.filter_text.value = "alpha"
        assert list(dash.rows) == [str(a)]
        dash.filter_text.value = ""
        dash.sort.value = "name"
        mine = [k for k in dash.rows if k in (str(a), str(b))]
        assert mine == [str(a), str(b)]

        dash.show.value = "partition"
        dash.partition.value = "short"
        dash.refresh()
        assert str(a) in dash.rows and str(b) not in dash.rows
        dash.show.value = "all"
        dash.refresh()
        assert {str(a), str(b)} <= set(dash.rows)
    finally:
        dash.close()


def test_partition_time_limit_is_explained_with_the_limit():
    job = {"job_id": 5, "state": "PENDING", "reason": "PartitionTimeLimit", "partition": "short",
           "time_limit": 30}
    words, todo = explain_reason(job, {"short": {"name": "short", "max_time": 5}})
    assert words == "its time limit (30 min) is longer than partition short allows (5 min), so it will never start"
    assert "--time 5 min or less" in todo
    assert explain_reason({"state": "RUNNING"}) == ("", "")


def test_estimated_start_is_shown(ip, cluster, kernel_env, cancel_after):
    """A job queued behind a full partition shows the backfill planner's estimated start."""
    blockers = [ip.run_cell_magic("sbatch", "-p gpu -n 4 -t 3", "sleep 60\n")]
    waiting = ip.run_cell_magic("sbatch", "-p gpu -n 4 -t 2 -J dash-waits", "true\n")
    cancel_after.extend(blockers + [waiting])
    dash = QueueDashboard(BatchHubBackend(), show="partition", partition="gpu", interval=0.3)
    try:
        wait_for(lambda: str(waiting) in dash.rows and dash.rows[str(waiting)].start.value.endswith("(estimated)"),
                 what="an estimated start")
        row = dash.rows[str(waiting)]
        assert row.state.value == "PENDING"
        assert row.reason_text and "What to do" in row.reason.value
    finally:
        dash.close()


def test_node_dashboard_bars_follow_allocations(ip, cluster, backend_name, cancel_after):
    dash = NodeDashboard(select_backend(), interval=0.2)
    try:
        wait_for(lambda: set(dash.rows) == {"n1", "n2", "n3", "n4"}, what="four nodes")
        n4 = dash.rows["n4"]
        assert n4.cpu.max == 4 and n4.mem.max == 2000 and n4.gpu.max == 2
        assert dash.rows["n1"].gpu.max == 1 and dash.rows["n1"].gpu_label.value == "0/0"
        job = ip.run_cell_magic("sbatch", "-p gpu -w n4 -c 3 --mem 500 --gres gpu:1 -t 2", "sleep 30\n")
        cancel_after.append(job)
        wait_for(lambda: dash.rows["n4"].cpu.value == 3, what="the job's CPUs on n4")
        n4 = dash.rows["n4"]
        assert (n4.cpu.value, n4.mem.value, n4.gpu.value) == (3, 500, 1)
        assert n4.cpu_label.value == "3/4" and n4.gpu_label.value == "1/2"
        assert n4.mem_label.value == "500/2000 MB"
        if backend_name == "batchhub":  # the CLI's node records do not list jobs
            assert n4.job_ids == [str(job)] and n4.jobs.value == f"jobs: {job}"
        assert dash.summary.value.startswith("4 nodes, 3/16 CPUs allocated")
        cluster.run("scancel", str(job))
        wait_for(lambda: dash.rows["n4"].cpu.value == 0, what="CPUs freed")
        assert dash.rows["n4"].gpu.value == 0
        if backend_name == "batchhub":
            assert dash.rows["n4"].jobs.value == "no jobs"
    finally:
        dash.close()
    wait_for(lambda: not dash.polling, timeout=5, what="the poller to stop")


def test_one_query_per_interval_and_reconnecting(kernel_env):
    t0 = time.monotonic()
    dash = NodeDashboard(BatchHubBackend(str(kernel_env / "nobody.sock")), interval=0.2)
    try:
        wait_for(lambda: dash.status.value.startswith("reconnecting"), what="reconnecting")
        time.sleep(1.0)
        assert dash.polling
        elapsed = time.monotonic() - t0
        assert 2 <= dash.queries <= elapsed / 0.2 + 1.5, (dash.queries, elapsed)  # one per interval, plus the first
    finally:
        dash.close()
    wait_for(lambda: not dash.polling, timeout=5, what="the poller to stop")
    q = dash.queries
    time.sleep(0.5)
    assert dash.queries == q


def test_queue_dashboard_recovers_after_the_controller_returns(cluster, kernel_env, monkeypatch, tmp_path):
    """Reconnecting while down, rows again once the address answers (a symlink switched under it)."""
    link = tmp_path / "ctl.sock"
    link.symlink_to(tmp_path / "nothing-here")
    dash = QueueDashboard(BatchHubBackend(str(link)), show="all", interval=0.2)
    try:
        wait_for(lambda: dash.status.value.startswith("reconnecting"), what="reconnecting")
        link.unlink()
        link.symlink_to(cluster.socket)
        wait_for(lambda: dash.status.value.startswith("updated"), what="recovery")
        assert dash.error is None
    finally:
        dash.close()


def test_closing_the_widget_from_the_frontend_stops_polling(kernel_env):
    """The user closes the output (the widget's comm goes away): the refresh thread ends by itself."""
    dash = QueueDashboard(BatchHubBackend(), show="all", interval=0.1)
    wait_for(lambda: dash.refreshes >= 1, what="a first refresh")
    dash.widget.close()  # what closing the widget in JupyterLab does; not dash.close()
    wait_for(lambda: not dash.polling, timeout=5, what="the poller to stop")
    q = dash.queries
    time.sleep(0.4)
    assert dash.queries == q


def test_refresh_never_blocks_the_kernel(kernel_env):
    """Creating a dashboard returns at once even when the controller never answers."""
    t0 = time.monotonic()
    dash = QueueDashboard(BatchHubBackend(str(kernel_env / "nobody.sock")), interval=0.1)
    assert time.monotonic() - t0 < 1.0
    try:
        wait_for(lambda: dash.status.value.startswith("reconnecting"), what="reconnecting")
        assert dash.rows == {} and dash.polling
    finally:
        dash.close()
