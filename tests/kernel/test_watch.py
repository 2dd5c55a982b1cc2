"""The job-watch widget: its model values follow the job, and polling stops when it should."""

import time

from kernel_ext.backend import BatchHubBackend, select_backend
from kernel_ext.watch import JobWatch


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_watch_follows_a_job_from_running_to_completed(ip, backend_name, kernel_env):
    marker = kernel_env / "go-on"
    job_id = ip.run_cell_magic(
        "sbatch", "-t 10", f"echo started\nwhile [ ! -e {marker} ]; do sleep 0.05; done\necho finished\n")
    watch = JobWatch(job_id, select_backend(), interval=0.1)
    try:
        wait_for(lambda: watch.state_label.value == "RUNNING", what="RUNNING")
        wait_for(lambda: watch.tail.value == "started", what="the output tail")
        assert watch.time_label.value.endswith(" / 10:00")
        assert 0.0 <= watch.progress.value < 1.0
        assert watch.polling and not watch.ended
        marker.write_text("")
        assert watch.wait(timeout=30) is not None
        assert watch.state_label.value == "COMPLETED"
        assert watch.timeline.value.split(" → ")[-2:] == ["RUNNING", "COMPLETED"]
        assert watch.tail.value == "started\nfinished"
        assert watch.progress.bar_style == "success"
        assert watch.ended and not watch.polling
    finally:
        watch.close()


def test_watch_marks_a_failed_job(ip, kernel_env, monkeypatch):
    monkeypatch.setenv("BATCHHUB_MAGICS_BACKEND", "batchhub")
    job_id = ip.run_cell_magic("sbatch", "", "exit 2\n")
    watch = JobWatch(job_id, interval=0.1)
    assert watch.wait(timeout=30) is not None
    assert watch.state_label.value == "FAILED"
    assert watch.progress.bar_style == "danger"
    assert watch.records[0]["exit_code"] == 2


def test_closing_the_widget_stops_polling(ip, cluster, kernel_env):
    job_id = ip.run_cell_magic("sbatch", "--hold", "true\n")
    try:
        watch = JobWatch(job_id, BatchHubBackend(), interval=0.1)
        wait_for(lambda: watch.state_label.value == "PENDING", what="PENDING")
        watch.close()
        wait_for(lambda: not watch.polling, timeout=5, what="the poller to stop")
        assert not watch.ended
    finally:
        cluster.run("scancel", str(job_id))


def test_unreachable_queue_shows_reconnecting_and_keeps_polling(kernel_env):
    watch = JobWatch(1, BatchHubBackend(str(kernel_env / "nobody.sock")), interval=0.1)
    try:
        wait_for(lambda: watch.message.value.startswith("reconnecting"), what="reconnecting")
        assert watch.polling
        assert watch.state_label.value == "(waiting for the queue)"
    finally:
        watch.close()
    wait_for(lambda: not watch.polling, timeout=5, what="the poller to stop")


def test_unknown_job_ends_the_watch_with_a_message(kernel_env):
    watch = JobWatch(987654, BatchHubBackend(), interval=0.1)
    assert watch.wait(timeout=10) == []
    assert "no longer known" in watch.message.value
    assert not watch.polling
