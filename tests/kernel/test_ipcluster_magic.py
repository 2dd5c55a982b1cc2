"""%ipcluster start/status/stop: a real IPyParallel cluster as two BatchHub jobs."""


import pytest
from magic_helpers import assert_one_error_line, run_magic

pytestmark = pytest.mark.timeout(180)


def _final(cluster, job_id, timeout=30):
    return cluster.wait_state(job_id, {"CANCELLED", "COMPLETED", "FAILED"}, timeout=timeout).split()[0]


def test_start_status_stop(ip, cluster, kernel_env):
    magics = ip.magics_manager.registry["IPClusterMagics"]
    result, captured = run_magic(ip, "ipcluster start -n 2 --partition debug --time 10")
    assert result.error_in_exec is None, captured.stderr
    assert "2 engines ready" in captured.stdout, captured.stdout + captured.stderr
    try:
        rc, view = ip.user_ns["rc"], ip.user_ns["view"]
        assert len(rc.ids) == 2
        assert ip.run_cell("view.map_sync(lambda x: x * x, range(8))").result == [x * x for x in range(8)]
        assert type(view).__name__ == "LoadBalancedView"
        controller, engines = magics.controller_job(), magics.engine_job()
        assert controller and engines and controller != engines
        assert cluster.job(controller)["Partition"] == "debug"
        assert cluster.job(engines)["TimeLimit"] == "00:10:00"

        _, captured = run_magic(ip, "ipcluster status")
        assert "2 engines registered" in captured.stdout
        assert f"controller: job {controller} RUNNING" in captured.stdout
        assert f"engines: job {engines} RUNNING" in captured.stdout

        result, captured = run_magic(ip, "ipcluster start -n 2")
        assert "already running" in assert_one_error_line(result, captured, "ipcluster")
    finally:
        _, captured = run_magic(ip, "ipcluster stop")
    assert "stopped" in captured.stdout, captured.stderr
    assert "rc" not in ip.user_ns and "view" not in ip.user_ns
    assert _final(cluster, controller) == "CANCELLED"
    assert _final(cluster, engines) == "CANCELLED"
    _, captured = run_magic(ip, "ipcluster status")
    assert "No IPython cluster running" in captured.stdout


@pytest.mark.parametrize("line, words", [
    ("ipcluster stop", "no cluster is running"),
    ("ipcluster start", "needs -n"),
    ("ipcluster start -n two", "invalid int value"),
    ("ipcluster frobnicate", "invalid choice"),
])
def test_errors_are_one_line(ip, kernel_env, line, words):
    result, captured = run_magic(ip, line)
    assert words in assert_one_error_line(result, captured, "ipcluster")


def test_start_failure_is_one_line_and_leaves_nothing_bound(ip, cluster, kernel_env):
    # an unknown partition is rejected at submission
    result, captured = run_magic(ip, "ipcluster start -n 1 --partition nosuch --time 1")
    line = assert_one_error_line(result, captured, "ipcluster")
    assert "nosuch" in line or "partition" in line.lower(), line
    assert "rc" not in ip.user_ns
    assert ip.magics_manager.registry["IPClusterMagics"].cluster is None
