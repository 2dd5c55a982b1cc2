"""proctree.fork_exec through the fork server, and its fallback to forking directly (real processes)."""

import os
import signal
import sys

import pytest

from batch_backend.noded import forkserver, proctree

pytestmark = pytest.mark.skipif(os.uname().machine not in forkserver._SYS_CLONE,
                                reason="no fork server on this architecture")


def make_plan(tmp_path, env=None, script_text="#!/bin/sh\necho \"pid=$$ task=$SLURM_TASK_PID ppid=$PPID\"\n"):
    script = tmp_path / "script"
    script.write_text(script_text)
    script.chmod(0o700)
    plan = proctree.LaunchPlan()
    plan.script, plan.argv = str(script), [str(script)]
    plan.env = dict(env or {"PATH": "/usr/bin:/bin"})
    plan.workdir = str(tmp_path)
    plan.stdout, plan.stderr, plan.stdin = str(tmp_path / "out"), "", "/dev/null"
    plan.append = plan.drop = False
    plan.uid, plan.gid, plan.groups = os.geteuid(), os.getegid(), []
    plan.cpu_ids, plan.umask, plan.interpreter = [], 0o022, "/bin/sh"
    return plan


def run(plan):
    """fork_exec + exec result + waitpid: (exec error text, exit status)."""
    pid, fd = proctree.fork_exec(plan)
    why = proctree.exec_result_now(fd, 5.0)
    if why is None:  # the error text came before the pipe closed
        with os.fdopen(fd, "rb") as f:
            why = f.read().decode()
    _, status = os.waitpid(pid, 0)  # our child, whichever process forked it
    return pid, why, status


@pytest.fixture
def server():
    assert proctree.start_fork_server()
    yield proctree._fork_server
    proctree._fork_server = None  # the next use starts a fresh one


def test_job_is_our_child_with_its_own_pid_in_the_environment(tmp_path, server):
    plan = make_plan(tmp_path)
    pid, why, status = run(plan)
    assert why == "" and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert (tmp_path / "out").read_text() == f"pid={pid} task={pid} ppid={os.getpid()}\n"
    assert server.proc.poll() is None  # the server forked it and lives on


def test_setup_error_reported_through_the_server(tmp_path, server):
    plan = make_plan(tmp_path)
    plan.workdir = str(tmp_path / "missing")
    _, why, status = run(plan)
    assert why.startswith(f"cannot chdir to {plan.workdir}: ")
    assert os.WEXITSTATUS(status) == 127
    assert (tmp_path / "out").read_text().startswith("batchhub: error: cannot chdir to ")


def test_stream_descriptors_travel_to_the_child(tmp_path, server):
    r, w = os.pipe()
    plan = make_plan(tmp_path)
    plan.stdout_fd = w
    _, why, status = run(plan)
    os.close(w)
    with os.fdopen(r) as f:
        assert f.read().startswith("pid=")
    assert why == "" and os.WEXITSTATUS(status) == 0


def test_environment_too_big_for_the_server_forks_directly_byte_exact(tmp_path, server):
    chunk = 100_000  # one string may not pass 128 KiB (MAX_ARG_STRLEN); the sum passes MAX_MESSAGE
    env = {"PATH": "/usr/bin:/bin", **{f"BIG{i}": str(i) * chunk for i in range(3)}}
    plan = make_plan(tmp_path, env=env, script_text="#!/bin/sh\nprintf %s \"$BIG0$BIG1$BIG2\"\n")
    assert len(forkserver.encode_plan(plan, 0)[0]) > forkserver.MAX_MESSAGE
    _, why, status = run(plan)
    assert why == "" and os.WEXITSTATUS(status) == 0
    assert (tmp_path / "out").read_text() == "0" * chunk + "1" * chunk + "2" * chunk


def test_dead_server_falls_back_to_forking_directly(tmp_path, server):
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    plan = make_plan(tmp_path)
    pid, why, status = run(plan)
    assert why == "" and os.WEXITSTATUS(status) == 0
    assert (tmp_path / "out").read_text() == f"pid={pid} task={pid} ppid={os.getpid()}\n"
    assert server.failed and server.proc is None  # reaped, not used again


def test_a_forked_copy_of_the_process_does_not_share_the_server(tmp_path, server):
    """A child process (os.fork) gets a server of its own instead of talking over its parent's socket."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover -- runs in the child
        code = 1
        try:
            plan = make_plan(tmp_path)
            _, why, status = run(plan)
            code = 0 if why == "" and os.WEXITSTATUS(status) == 0 and proctree._fork_server is not server else 2
        finally:
            os.write(w, bytes([code]))
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"\0"
    os.close(r)
    os.waitpid(pid, 0)
    assert server.proc.poll() is None
    _, why, _ = run(make_plan(tmp_path))  # and ours still works
    assert why == ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
