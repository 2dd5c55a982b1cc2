"""BatchJobRunner with real processes (no mocks of the process layer)."""

import asyncio
import itertools
import json
import os
import pathlib
import pwd
import shutil
import signal
import sys
import tempfile
import time

import psutil
import pytest

from batch_backend.noded.runner import (LAUNCH_FAILED, TAG_VAR, BatchJobRunner, build_job_env,
                                        parse_signal_spec)

PY = sys.executable
_ids = itertools.count(9001)


def make_launch(tmp_path, script, **kw):
    uid = os.getuid()
    pw = pwd.getpwuid(uid)
    launch = dict(
        job_id=next(_ids), array_job_id=None, array_task_id=None, name="testjob", user=pw.pw_name, uid=uid,
        gid=pw.pw_gid, group="grp", account="acct01", qos="normal", partition="debug", script=script,
        script_args=[], environment={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, export="ALL",
        get_user_env=False, workdir=str(tmp_path), submit_dir=str(tmp_path), submit_host="login1",
        stdout_path=str(tmp_path / "out.txt"), stderr_path="", stdin="/dev/null", open_mode="truncate",
        time_limit=None, mem_limit_mb=None, cpus_on_node=2, cpu_ids=[], gpu_ids=[], nodes=["n1", "n2"],
        nodelist="n[1-2]", num_nodes=2, num_tasks=4, cpus_per_task=1, tasks_per_node_str="2(x2)",
        cpus_per_node_str="2(x2)", mem_per_node=1000, mem_per_cpu=None, cluster_name="cluster",
        node_index=0, restarts=0, signal="", extra_env={"BATCHHUB_SOCKET": "/run/batchhub.sock"},
    )
    launch.update(kw)
    return launch


def run(launch, tmp_path, action=None, kill_wait=1.0, poll=0.05, timeout=15):
    """Run a job to its end; returns (events, runner). ``action(runner)`` runs after start."""
    events = []
    spool = str(tmp_path / "spool")

    async def main():
        runner = BatchJobRunner(launch, node_name="n1", spool_dir=spool, on_event=events.append,
                                kill_wait=kill_wait, poll_interval=poll)
        await runner.start()
        if action is not None and not runner.done:
            await action(runner)
        await asyncio.wait_for(runner.wait(), timeout)
        return runner

    runner = asyncio.run(main())
    assert [e["event"] for e in events].count("ended") == 1
    assert not os.path.exists(runner.job_dir)
    return events, runner


def ended(events):
    return events[-1]


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_file(path, lines=1, timeout=4.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and open(path).read().count("\n") >= lines:
            return open(path).read()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} not written")


# ---------------------------------------------------------------------------- exit states

def test_completed_and_output(tmp_path):
    events, runner = run(make_launch(tmp_path, "#!/bin/sh\necho hello\necho oops >&2\n"), tmp_path)
    started, end = events
    assert started == {"event": "started", "job_id": runner.job_id, "pid": runner.pid, "time": started["time"]}
    assert set(end) == {"event", "job_id", "state", "exit_code", "exit_signal", "reason", "time", "max_rss_mb",
                        "restarts"}
    assert (end["state"], end["exit_code"], end["exit_signal"], end["reason"]) == ("COMPLETED", 0, 0, "None")
    assert end["time"] >= started["time"]
    assert (tmp_path / "out.txt").read_text() == "hello\noops\n"  # stderr joins stdout


def test_failed_exit_code(tmp_path):
    end = ended(run(make_launch(tmp_path, "#!/bin/sh\nexit 3\n"), tmp_path)[0])
    assert (end["state"], end["exit_code"], end["exit_signal"], end["reason"]) == ("FAILED", 3, 0, "NonZeroExitCode")


def test_killed_by_foreign_signal_is_failed(tmp_path):
    end = ended(run(make_launch(tmp_path, "#!/bin/sh\nkill -9 $$\n"), tmp_path)[0])
    assert (end["state"], end["exit_code"], end["exit_signal"]) == ("FAILED", 0, 9)
    assert end["reason"] == "RaisedSignal:9(Killed)"


def test_script_args_argv0_and_fast_start(tmp_path):
    launch = make_launch(tmp_path, '#!/bin/sh\necho "$0|$1|$2"\n', script_args=["a b", "c"])
    t0 = time.perf_counter()
    events = []

    async def main():
        runner = BatchJobRunner(launch, node_name="n1", spool_dir=str(tmp_path / "spool"), on_event=events.append)
        await runner.start()
        elapsed = time.perf_counter() - t0
        await runner.wait()
        return elapsed, runner

    elapsed, runner = asyncio.run(main())
    assert elapsed < 0.5  # typically ~5 ms
    assert (tmp_path / "out.txt").read_text() == f"{runner.job_dir}/script|a b|c\n"


# ---------------------------------------------------------------------------- output files

def test_truncate_and_append(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old\n")
    run(make_launch(tmp_path, "#!/bin/sh\necho new\n", open_mode="append"), tmp_path)
    assert out.read_text() == "old\nnew\n"
    run(make_launch(tmp_path, "#!/bin/sh\necho newer\n"), tmp_path)
    assert out.read_text() == "newer\n"
    run(make_launch(tmp_path, "#!/bin/sh\necho again\n", restarts=1), tmp_path)  # requeued run appends
    assert out.read_text() == "newer\nagain\n"


def test_missing_parent_dirs_and_separate_stderr(tmp_path):
    out, err = tmp_path / "a" / "b" / "job.out", tmp_path / "c" / "job.err"
    launch = make_launch(tmp_path, "#!/bin/sh\necho to-out\necho to-err >&2\n", stdout_path=str(out),
                         stderr_path=str(err))
    assert ended(run(launch, tmp_path)[0])["state"] == "COMPLETED"
    assert out.read_text() == "to-out\n"
    assert err.read_text() == "to-err\n"


def test_default_output_name(tmp_path):
    run(make_launch(tmp_path, "#!/bin/sh\necho x\n", stdout_path="", job_id=4040, array_job_id=4039,
                    array_task_id=0), tmp_path)
    assert (tmp_path / "slurm-4039_0.out").read_text() == "x\n"


# ---------------------------------------------------------------------------- environment

ENV_DUMP = f"#!{PY}\nimport json, os\nopen('env.json', 'w').write(json.dumps(dict(os.environ)))\n"


def test_environment_byte_exact_and_slurm_vars(tmp_path):
    tricky = '{"key": "va lue", "q": "\\"x\\"", "nl": "a\nb"}\n  trailing  '
    base = {"PATH": "/usr/bin:/bin", "IPP_CONNECTION_INFO": tricky, "EMPTY": "", "EQ": "a=b=c",
            "SLURM_JOB_ID": "1"}
    launch = make_launch(tmp_path, ENV_DUMP, environment=base, gpu_ids=[1, 3], export="PATH,IPP_CONNECTION_INFO",
                         array_job_id=4039, array_task_id=2, array_task_count=4, array_task_min=0,
                         array_task_max=3, array_task_step=1, open_mode="append", restarts=2,
                         cpus_per_task=2, mem_per_node=1000)
    events, runner = run(launch, tmp_path)
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["IPP_CONNECTION_INFO"] == tricky
    assert env["EMPTY"] == "" and env["EQ"] == "a=b=c" and env["PATH"] == "/usr/bin:/bin"
    jid = str(launch["job_id"])
    expect = {
        "SLURM_JOB_ID": jid, "SLURM_JOBID": jid, "SLURM_JOB_NAME": "testjob", "SLURM_JOB_USER": launch["user"],
        "SLURM_JOB_UID": str(launch["uid"]), "SLURM_JOB_GID": str(launch["gid"]), "SLURM_JOB_ACCOUNT": "acct01",
        "SLURM_JOB_PARTITION": "debug", "SLURM_JOB_QOS": "normal", "SLURM_JOB_NODELIST": "n[1-2]",
        "SLURM_NODELIST": "n[1-2]", "SLURM_JOB_NUM_NODES": "2", "SLURM_NNODES": "2",
        "SLURM_JOB_CPUS_PER_NODE": "2(x2)", "SLURM_CPUS_ON_NODE": "2", "SLURM_NTASKS": "4", "SLURM_NPROCS": "4",
        "SLURM_TASKS_PER_NODE": "2(x2)", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
        "SLURM_SUBMIT_DIR": str(tmp_path), "SLURM_SUBMIT_HOST": "login1", "SLURM_CLUSTER_NAME": "cluster",
        "SLURMD_NODENAME": "n1", "SLURM_CPUS_PER_TASK": "2", "SLURM_MEM_PER_NODE": "1000",
        "SLURM_GPUS_ON_NODE": "2", "SLURM_JOB_GPUS": "1,3", "CUDA_VISIBLE_DEVICES": "1,3",
        "GPU_DEVICE_ORDINAL": "1,3", "ENVIRONMENT": "BATCH", "SLURM_ARRAY_JOB_ID": "4039",
        "SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0",
        "SLURM_ARRAY_TASK_MAX": "3", "SLURM_ARRAY_TASK_STEP": "1", "SLURM_RESTART_COUNT": "2",
        "SLURM_OPEN_MODE": "a", "SLURM_EXPORT_ENV": "PATH,IPP_CONNECTION_INFO",
        "BATCHHUB_SOCKET": "/run/batchhub.sock", "SLURM_TASK_PID": str(runner.pid),
    }
    assert {k: env.get(k) for k in expect} == expect
    assert "SLURM_MEM_PER_CPU" not in env and "SLURM_GET_USER_ENV" not in env
    assert env[TAG_VAR].startswith(f"n1:{jid}:")


def test_export_none_gives_no_path(tmp_path):
    launch = make_launch(tmp_path, ENV_DUMP, environment={}, export="NONE", gpu_ids=[])
    assert ended(run(launch, tmp_path)[0])["state"] == "COMPLETED"
    env = json.loads((tmp_path / "env.json").read_text())
    assert not {"PATH", "HOME", "USER", "SHELL", "CUDA_VISIBLE_DEVICES"} & set(env)
    assert env["SLURM_EXPORT_ENV"] == "NONE"
    assert set(env) - {"PWD", "LC_CTYPE"} <= set(build_job_env(launch, "n1")) | {TAG_VAR, "SLURM_TASK_PID"}


def test_get_user_env_fills_under_explicit_values(tmp_path):
    launch = make_launch(tmp_path, ENV_DUMP, environment={"FOO": "bar", "HOME": "/custom"},
                         export="FOO,HOME", get_user_env=True)
    assert ended(run(launch, tmp_path)[0])["state"] == "COMPLETED"
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["FOO"] == "bar" and env["HOME"] == "/custom"  # explicit values win
    assert env["PATH"] and env["USER"] == pwd.getpwuid(os.getuid()).pw_name  # login values fill in
    assert env["SLURM_GET_USER_ENV"] == "1" and env["SLURM_EXPORT_ENV"] == "FOO,HOME"


def test_signal_dispositions_reset_and_cpu_binding(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    # the kernel runs "/bin/cat /proc/self/status SCRIPT": the status of the exec'd job process itself
    launch = make_launch(tmp_path, "#!/bin/cat /proc/self/status\n", cpu_ids=[cpus[-1]])
    run(launch, tmp_path)
    status = dict(line.split(":\t", 1) for line in (tmp_path / "out.txt").read_text().splitlines() if ":\t" in line)
    assert int(status["SigIgn"], 16) == 0 and int(status["SigBlk"], 16) == 0
    assert status["Cpus_allowed_list"] == str(cpus[-1])


# ---------------------------------------------------------------------------- limits

def test_time_limit_timeout_with_kill_after_kill_wait(tmp_path):
    # the shell and its sleep ignore SIGTERM: SIGKILL comes kill_wait later
    launch = make_launch(tmp_path, "#!/bin/sh\ntrap '' TERM\nsleep 30\n", time_limit_seconds=0.5)
    t0 = time.monotonic()
    end = ended(run(launch, tmp_path, kill_wait=0.5)[0])
    assert (end["state"], end["reason"], end["exit_code"], end["exit_signal"]) == ("TIMEOUT", "TimeLimit", 0, 9)
    assert 0.9 < time.monotonic() - t0 < 4


def test_time_limit_term(tmp_path):
    end = ended(run(make_launch(tmp_path, "#!/bin/sh\nsleep 30\n", time_limit_seconds=0.5), tmp_path)[0])
    assert (end["state"], end["exit_signal"]) == ("TIMEOUT", 15)


def test_signal_before_time_limit_to_batch_shell(tmp_path):
    script = "#!/bin/sh\ntrap 'echo warned; exit 0' USR1\nwhile :; do sleep 1 & wait $!; done\n"
    launch = make_launch(tmp_path, script, time_limit_seconds=1.5, signal="B:USR1@1")
    t0 = time.monotonic()
    end = ended(run(launch, tmp_path)[0])
    assert end["state"] == "COMPLETED" and (tmp_path / "out.txt").read_text() == "warned\n"
    assert time.monotonic() - t0 < 1.4


def test_set_time_left(tmp_path):
    async def shorten(runner):
        runner.set_time_left(0.3)

    end = ended(run(make_launch(tmp_path, "#!/bin/sh\nsleep 30\n"), tmp_path, action=shorten)[0])
    assert end["state"] == "TIMEOUT"


def test_memory_limit_out_of_memory(tmp_path):
    script = f"#!{PY}\nimport time\nb = b'x' * (200 << 20)\ntime.sleep(20)\n"
    end = ended(run(make_launch(tmp_path, script, mem_limit_mb=50), tmp_path)[0])
    assert (end["state"], end["reason"], end["exit_code"], end["exit_signal"]) == ("OUT_OF_MEMORY", "OutOfMemory", 0, 9)
    assert end["max_rss_mb"] > 50


# ---------------------------------------------------------------------------- cancel and signals

TREE = f"""#!{PY}
import os, sys, time
def daemon(exit_parent_at_once):
    if os.fork() == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            open('pids', 'a').write(f"{{os.getpid()}}\\n")
            time.sleep(60)
        elif not exit_parent_at_once:
            open('pids', 'a').write(f"{{os.getpid()}}\\n")
            time.sleep(60)
        os._exit(0)
daemon(False)   # child that setsid()s, with a grandchild
daemon(True)    # double fork: the intermediate exits at once, the grandchild escapes
open('pids', 'a').write(f"{{os.getpid()}}\\n")
time.sleep(60)
"""


@pytest.mark.parametrize("poll", [0.05, 30.0])  # 30 s: never polled, found by the tag scan only
def test_cancel_kills_whole_tree(tmp_path, poll):
    pids = []

    async def cancel(runner):
        pids.extend(int(x) for x in (await wait_file(tmp_path / "pids", 4)).split())
        await asyncio.sleep(0.1)
        await runner.cancel()

    events, runner = run(make_launch(tmp_path, TREE), tmp_path, action=cancel, poll=poll)
    end = ended(events)
    assert (end["state"], end["exit_code"], end["exit_signal"], end["reason"]) == ("CANCELLED", 0, 15, "None")
    assert len(pids) == 4 and runner.pid in pids
    assert [p for p in pids if alive(p)] == []


def test_leftover_processes_killed_at_normal_end(tmp_path):
    events, _ = run(make_launch(tmp_path, "#!/bin/sh\nsleep 60 &\necho $! > bg\n"), tmp_path)
    assert ended(events)["state"] == "COMPLETED"
    assert not alive(int((tmp_path / "bg").read_text()))


SIG_SCRIPT = f"""#!/bin/sh
trap 'echo shell >> sig.log' USR1
{PY} -c "
import signal, time
signal.signal(signal.SIGUSR1, lambda *a: open('sig.log', 'a').write('child\\n'))
open('ready', 'w').write('\\n')
time.sleep(30)
" &
while :; do sleep 1 & wait $!; done
"""


def test_signal_shell_only_tree_and_full(tmp_path):
    log = tmp_path / "sig.log"

    async def signals(runner):
        await wait_file(tmp_path / "ready")
        assert runner.signal(signal.SIGUSR1, batch_only=True)
        assert (await wait_file(log, 1)) == "shell\n"
        assert runner.signal(signal.SIGUSR1)  # scancel -s: everything but the batch shell
        assert (await wait_file(log, 2)) == "shell\nchild\n"
        runner.signal(signal.SIGUSR1, full=True)  # scancel -f -s: both
        text = await wait_file(log, 4)
        assert sorted(text.splitlines()[2:]) == ["child", "shell"]
        await runner.cancel()

    events, runner = run(make_launch(tmp_path, SIG_SCRIPT), tmp_path, action=signals)
    assert ended(events)["state"] == "CANCELLED"
    assert runner.signal(signal.SIGUSR1) is False  # finished: nothing to signal


def test_cancel_before_start(tmp_path):
    events = []

    async def main():
        runner = BatchJobRunner(make_launch(tmp_path, "#!/bin/sh\n"), node_name="n1",
                                spool_dir=str(tmp_path / "spool"), on_event=events.append)
        end = await runner.cancel()
        await runner.start()  # no-op
        assert await runner.cancel() is end
        return end

    end = asyncio.run(main())
    assert events == [end] and (end["state"], end["exit_code"], end["exit_signal"]) == ("CANCELLED", 0, 0)


# ---------------------------------------------------------------------------- launch failures

def test_launch_failure_missing_workdir(tmp_path):
    launch = make_launch(tmp_path, "#!/bin/sh\necho never\n", workdir=str(tmp_path / "nosuch"),
                         stdout_path=str(tmp_path / "out.txt"))
    events, _ = run(launch, tmp_path)
    assert [e["event"] for e in events] == ["ended"]
    end = events[0]
    assert (end["state"], end["exit_code"], end["exit_signal"]) == ("FAILED",) + LAUNCH_FAILED
    assert end["reason"] == f"launch failed: cannot chdir to {tmp_path}/nosuch: No such file or directory"
    assert (tmp_path / "out.txt").read_text() == f"batchhub: error: {end['reason'][15:]}\n"


def test_launch_failure_missing_interpreter(tmp_path):
    launch = make_launch(tmp_path, "#!/no/such/interp -x\necho never\n", stderr_path=str(tmp_path / "err.txt"))
    end = ended(run(launch, tmp_path)[0])
    assert end["state"] == "FAILED" and (end["exit_code"], end["exit_signal"]) == LAUNCH_FAILED
    assert end["reason"] == "launch failed: cannot execute /no/such/interp: No such file or directory"
    assert (tmp_path / "err.txt").read_text().startswith("batchhub: error: cannot execute /no/such/interp")
    assert (tmp_path / "out.txt").read_text() == ""


def test_launch_failure_missing_stdin(tmp_path):
    end = ended(run(make_launch(tmp_path, "#!/bin/sh\n", stdin="in.txt"), tmp_path)[0])
    assert end["reason"] == f"launch failed: cannot open input file {tmp_path}/in.txt: No such file or directory"


# ---------------------------------------------------------------------------- as another user

@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_runs_as_job_user_with_files_owned_by_user():
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    top = tempfile.mkdtemp(prefix="bh-runner-")
    try:
        os.chmod(top, 0o755)
        work = os.path.join(top, "work")
        os.mkdir(work)
        os.chown(work, nobody.pw_uid, nobody.pw_gid)
        out = os.path.join(work, "logs", "out.txt")
        launch = make_launch(pathlib.Path(work), "#!/bin/sh\nid -u; id -g; touch made-here\n", uid=nobody.pw_uid,
                             gid=nobody.pw_gid, user="nobody", stdout_path=out)
        events = []

        async def main():
            runner = BatchJobRunner(launch, node_name="n1", spool_dir=os.path.join(top, "spool"),
                                    on_event=events.append)
            await runner.start()
            return await runner.wait()

        end = asyncio.run(main())
        assert end["state"] == "COMPLETED", open(out).read()
        assert open(out).read() == f"{nobody.pw_uid}\n{nobody.pw_gid}\n"
        for path in (out, os.path.dirname(out), os.path.join(work, "made-here")):
            assert os.stat(path).st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_parse_signal_spec():
    assert parse_signal_spec("") is None
    assert parse_signal_spec("USR2@90") == (signal.SIGUSR2, 90, False)
    assert parse_signal_spec("B:SIGUSR1@30") == (signal.SIGUSR1, 30, True)
    assert parse_signal_spec("10") == (10, 60, False)
    with pytest.raises(ValueError):
        parse_signal_spec("B:NOPE@3")
