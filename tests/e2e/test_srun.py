"""srun / salloc end to end: real controller, real node daemons n1..n4, real tasks and MPI ranks.

Steps run inside batch jobs (the common case: job scripts, hydra's mpiexec),
inside salloc, and on allocations srun makes itself. Task placement is the
controller's; these tests assert what must hold whatever the layout: every
rank once, ids consistent with the node each task ran on, ≥ 2 virtual nodes.
"""

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest

BIN = os.path.dirname(sys.executable)

TASK_IDS = "echo $SLURM_PROCID $SLURM_LOCALID $SLURM_NODEID $SLURMD_NODENAME $SLURM_NTASKS " \
           "$SLURM_STEP_NUM_TASKS $SLURM_STEP_NUM_NODES $SLURM_STEP_NODELIST $SLURM_STEP_ID $SLURM_JOB_ID"

# One write per line: hydra's proxy merges its ranks' pipes into one stream, and
# PYTHONUNBUFFERED (set here) would turn print() into one write per word.
MPI_HELLO = """\
import os
from mpi4py import MPI
c = MPI.COMM_WORLD
total = c.allreduce(c.rank + 1)
os.write(1, f"{c.rank} {c.size} {total} {os.environ.get('SLURMD_NODENAME', '-')}\\n".encode())
"""


@pytest.fixture
def mpi_hello(cluster):
    path = cluster.path("mpi_hello.py")
    with open(path, "w") as f:
        f.write(MPI_HELLO)
    return path


def wait_file(path, pattern=None, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            if pattern is None or re.search(pattern, text):
                return text
        time.sleep(0.05)
    raise AssertionError(f"{path} never matched {pattern!r}")


def run_job(cluster, script, *args, timeout=60):
    """sbatch a script, wait for its end; returns (job_id, output text, state)."""
    out = f"srun-{uuid.uuid4().hex[:8]}-%j.out"
    job_id = cluster.sbatch("-o", out, *args, input="#!/bin/bash\n" + script)
    state = cluster.wait_state(job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}, timeout=timeout)
    with open(cluster.path(out.replace("%j", str(job_id)))) as f:
        return job_id, f.read(), state


def check_fan_out(lines, job_id, ntasks, min_nodes=2):
    rows = [line.split() for line in lines]
    assert sorted(int(r[0]) for r in rows) == list(range(ntasks))
    by_node = {}
    for procid, localid, nodeid, node, ntasks_env, step_tasks, step_nodes, step_nodelist, step_id, jid in rows:
        assert (ntasks_env, step_tasks, jid) == (str(ntasks), str(ntasks), str(job_id))
        by_node.setdefault(node, []).append((int(procid), int(localid), int(nodeid)))
    assert len(by_node) >= min_nodes
    assert len(by_node) == int(rows[0][6])
    for node, tasks in by_node.items():
        assert sorted(t[1] for t in tasks) == list(range(len(tasks)))  # LOCALID 0..k-1 per node
        assert len({t[2] for t in tasks}) == 1                       # one NODEID per node
    assert sorted(t[0][2] for t in by_node.values()) == list(range(len(by_node)))
    # block layout: a node's ranks are consecutive, in NODEID order
    for node, tasks in by_node.items():
        ranks = sorted(t[0] for t in tasks)
        assert ranks == list(range(ranks[0], ranks[0] + len(ranks)))
    return by_node


# -- fan-out, ids, output ----------------------------------------------------------------

def test_step_fans_out_across_virtual_nodes_with_per_task_ids(cluster):
    job_id, out, state = run_job(cluster, f"srun -n 4 -N 2 bash -c '{TASK_IDS}'\n", "-N", "2", "-n", "4")
    assert state == "COMPLETED", out
    check_fan_out(out.splitlines(), job_id, 4)
    steps = {row[0]: row[1] for row in cluster.acct(job_id, "JobID,State")}
    assert steps[f"{job_id}.0"] == "COMPLETED"


def test_default_step_is_the_jobs_ntasks(cluster):
    job_id, out, state = run_job(cluster, f"srun bash -c '{TASK_IDS}'\n", "-N", "2", "-n", "3")
    assert state == "COMPLETED", out
    check_fan_out(out.splitlines(), job_id, 3)


def test_label_prefixes_every_line_with_its_task(cluster):
    r = cluster.run("srun", "-n", "3", "-l", "bash", "-c", "echo one $SLURM_PROCID; echo two $SLURM_PROCID",
                    input="")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert sorted(lines) == sorted(f"{t}: {w} {t}" for t in range(3) for w in ("one", "two"))
    for t in range(3):  # a task's lines keep their order
        assert [x for x in lines if x.startswith(f"{t}: ")] == [f"{t}: one {t}", f"{t}: two {t}"]


def test_stdout_and_stderr_stay_separate(cluster):
    r = cluster.run("srun", "-n", "2", "bash", "-c", "echo out; echo err >&2", input="")
    assert r.returncode == 0
    assert r.stdout == "out\nout\n" and r.stderr == "err\nerr\n"


def test_stdin_goes_to_the_tasks(cluster):
    r = cluster.run("srun", "-n", "2", "-l", "cat", input="hello\n")
    assert sorted(r.stdout.splitlines()) == ["0: hello", "1: hello"]
    r = cluster.run("srun", "-n", "2", "--input=0", "-l", "cat", input="only-zero\n")
    assert r.stdout == "0: only-zero\n"


def test_per_task_output_files(cluster):
    tag = uuid.uuid4().hex[:6]
    job_id, out, state = run_job(cluster, f"srun -n 4 -N 2 -o 'task-{tag}-%j.%s-%t.out' bash -c "
                                          "'echo rank $SLURM_PROCID; echo err $SLURM_PROCID >&2'\n", "-N", "2", "-n", "4")
    assert state == "COMPLETED" and out == ""
    for t in range(4):
        with open(cluster.path(f"task-{tag}-{job_id}.0-{t}.out")) as f:
            assert f.read() == f"rank {t}\nerr {t}\n"


def test_missing_path_is_resolved_with_sruns_path(cluster):
    # --export=NONE: the step has no PATH; srun finds `env` with its own PATH (SLURM_DIALECT 10)
    r = cluster.run("srun", "-n", "1", "--export=NONE", "env", input="")
    assert r.returncode == 0, r.stderr
    names = {line.split("=", 1)[0] for line in r.stdout.splitlines()}
    assert "PATH" not in names and "SLURM_PROCID" in names and "HOME" not in names


# -- exit codes ------------------------------------------------------------------------------

def test_exit_code_is_the_worst_tasks_and_failures_are_reported(cluster):
    r = cluster.run("srun", "-n", "3", "bash", "-c", "exit $SLURM_PROCID", input="")
    assert r.returncode == 2
    errors = r.stderr.splitlines()
    assert any(re.fullmatch(r"srun: error: n\d+: task 2: Exited with exit code 2", e) for e in errors), errors
    assert any(re.fullmatch(r"srun: error: n\d+: task 1: Exited with exit code 1", e) for e in errors), errors
    assert not any("task 0" in e for e in errors)


def test_task_killed_by_a_signal(cluster):
    r = cluster.run("srun", "-n", "1", "bash", "-c", "kill -9 $$", input="")
    assert r.returncode == 128 + 9
    assert re.search(r"srun: error: n\d+: task 0: Killed", r.stderr)


def test_missing_executable_fails_like_slurm(cluster):
    r = cluster.run("srun", "-n", "1", "no-such-program-xyz", input="")
    assert r.returncode == 2
    assert "execve(): no-such-program-xyz: No such file or directory" in r.stderr


# -- MPI -------------------------------------------------------------------------------------

def test_mpi4py_ranks_across_two_virtual_nodes(cluster, mpi_hello):
    job_id, out, state = run_job(cluster, f"srun --mpi=pmi1 -n 4 -N 2 python {mpi_hello}\n",
                                 "-N", "2", "-n", "4", timeout=120)
    assert state == "COMPLETED", out
    rows = sorted(line.split() for line in out.splitlines())
    assert [(int(r[0]), int(r[1]), int(r[2])) for r in rows] == [(r, 4, 10) for r in range(4)]
    assert len({r[3] for r in rows}) == 2  # ranks really ran on two virtual nodes


def test_mpi_outside_a_job(cluster, mpi_hello):
    r = cluster.run("srun", "--mpi=pmi2", "-n", "3", "-N", "2", "python", mpi_hello, input="", timeout=120)
    assert r.returncode == 0, r.stderr
    rows = sorted(line.split() for line in r.stdout.splitlines())
    assert [(int(x[0]), int(x[1]), int(x[2])) for x in rows] == [(i, 3, 6) for i in range(3)]


def test_mpiexec_inside_a_batch_job_launches_through_srun(cluster, mpi_hello):
    job_id, out, state = run_job(cluster, f"mpiexec -n 4 python {mpi_hello}\necho mpiexec rc=$?\n",
                                 "-N", "2", "-n", "4", timeout=120)
    assert state == "COMPLETED", out
    lines = out.splitlines()
    assert lines[-1] == "mpiexec rc=0"
    rows = sorted(line.split() for line in lines[:-1])
    assert [(int(r[0]), int(r[1]), int(r[2])) for r in rows] == [(r, 4, 10) for r in range(4)]
    steps = {row[0]: (row[1], row[2]) for row in cluster.acct(job_id, "JobID,JobName,State")}
    assert steps[f"{job_id}.0"] == ("hydra_pmi_proxy", "COMPLETED")  # hydra's srun -N 2 -n 2 ... line


# -- cancellation and signals ------------------------------------------------------------------

def marked_processes(marker):
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if marker in " ".join(p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def wait_no_processes(marker, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = marked_processes(marker)
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError(f"orphans left: {[p.info['cmdline'] for p in left]}")


def test_scancel_step_kills_its_tasks_and_leaves_no_orphan(cluster):
    marker = f"marker-{uuid.uuid4().hex}"
    out = f"cancel-{marker}.out"
    # every task also starts a background child: the whole tree must go
    script = (f"srun -n 4 -N 2 bash -c 'sleep 300 & sleep 300; : {marker}'\n"
              "echo srun rc=$?\necho after\n")
    job_id = cluster.sbatch("-N", "2", "-n", "4", "-o", out, input="#!/bin/bash\n" + script)
    deadline = time.time() + 20
    while len([p for p in marked_processes(marker) if "srun" not in " ".join(p.info["cmdline"])]) < 4:
        assert time.time() < deadline, "tasks did not start"
        time.sleep(0.05)
    r = cluster.run("scancel", f"{job_id}.0")
    assert r.returncode == 0 and r.stderr == ""
    cluster.wait_state(job_id, "COMPLETED")  # the batch script outlives its step
    wait_no_processes(marker)
    text = wait_file(cluster.path(out), "after")
    assert "srun rc=143" in text
    assert re.search(rf"\*\*\* STEP {job_id}\.0 ON n\d+ CANCELLED AT ", text)
    steps = {row[0]: row[1] for row in cluster.acct(job_id, "JobID,State")}
    assert steps[f"{job_id}.0"] == "CANCELLED"


def test_cancelling_the_job_kills_its_steps(cluster):
    marker = f"marker-{uuid.uuid4().hex}"
    job_id = cluster.sbatch("-N", "2", "-n", "2", "-o", "/dev/null",
                            input=f"#!/bin/bash\nsrun -n 2 -N 2 bash -c 'sleep 300; : {marker}'\n")
    deadline = time.time() + 20
    while len(marked_processes(marker)) < 3:
        assert time.time() < deadline, "tasks did not start"
        time.sleep(0.05)
    assert cluster.run("scancel", str(job_id)).returncode == 0
    cluster.wait_state(job_id, "CANCELLED")
    wait_no_processes(marker)


def test_srun_forwards_signals_and_double_ctrl_c_cancels(cluster):
    marker = f"marker-{uuid.uuid4().hex}"
    cmd = ("trap 'echo usr1 $SLURM_PROCID' USR1; echo started; "
           f"while :; do sleep 0.05; done; : {marker}")
    p = subprocess.Popen([os.path.join(BIN, "srun"), "-n", "2", "-l", "bash", "-c", cmd],
                         env=cluster.env, cwd=cluster.workdir, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 20
        while len(marked_processes(marker)) < 3:
            assert time.time() < deadline, "tasks did not start"
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert "0: usr1 0" in out and "1: usr1 1" in out
    assert "srun: interrupt (one more within 1 sec to abort)" in err
    assert re.search(r"srun: StepId=\d+\.0 tasks 0-1: running", err)
    assert p.returncode == 128 + signal.SIGTERM
    wait_no_processes(marker)


# -- allocations -------------------------------------------------------------------------------

def test_srun_outside_a_job_makes_and_releases_its_own_allocation(cluster):
    r = cluster.run("srun", "-N", "2", "-n", "4", "bash", "-c", TASK_IDS, input="")
    assert r.returncode == 0 and r.stderr == ""
    job_id = r.stdout.split()[-1]
    check_fan_out(r.stdout.splitlines(), job_id, 4)
    rows = {row[0]: row[1] for row in cluster.acct(job_id, "JobID,State")}
    assert rows[job_id] == "COMPLETED" and rows[f"{job_id}.0"] == "COMPLETED"
    assert cluster.run("squeue", "-h", "-j", job_id).stdout == ""  # released


def test_salloc_runs_a_command_that_runs_srun(cluster):
    r = cluster.run("salloc", "-N", "2", "bash", "-c",
                    "echo alloc $SLURM_JOB_ID $SLURM_JOB_NUM_NODES $SLURM_JOB_NODELIST; "
                    "srun -l bash -c 'echo $SLURMD_NODENAME'; exit 3", input="")
    assert r.returncode == 3 and r.stderr == ""
    first, *rest = r.stdout.splitlines()
    _, job_id, num_nodes, nodelist = first.split()
    assert num_nodes == "2"
    assert sorted(line.split(": ")[0] for line in rest) == ["0", "1"]
    assert len({line.split(": ")[1] for line in rest}) == 2
    rows = {row[0]: (row[1], row[2]) for row in cluster.acct(job_id, "JobID,State,ExitCode")}
    assert rows[job_id] == ("FAILED", "3:0") and rows[f"{job_id}.0"][0] == "COMPLETED"


# -- bad input -----------------------------------------------------------------------------------

def test_impossible_resources_outside_an_allocation(cluster):
    r = cluster.run("srun", "-N", "50", "hostname", input="")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "srun: error: Unable to allocate resources: Requested node configuration is not available\n"


def test_unknown_mpi_type(cluster):
    r = cluster.run("srun", "--mpi=openmpi-magic", "-n", "1", "hostname", input="")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "srun: error: invalid MPI type 'openmpi-magic', --mpi=list for acceptable types\n"


def test_step_larger_than_its_allocation(cluster):
    job_id, out, state = run_job(cluster, "srun -n 8 hostname\necho rc=$?\n", "-n", "1")
    assert out == (f"srun: error: Unable to create step for job {job_id}: "
                   "Requested node configuration is not available\nrc=1\n")


def test_srun_with_an_expired_job_id(cluster):
    r = cluster.run("srun", "hostname", env={"SLURM_JOB_ID": "987654"}, input="")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines()[0] == "srun: error: Unable to confirm allocation for job 987654: Invalid job id specified"


@pytest.mark.parametrize("args,text", [
    (["-n", "0", "true"], 'srun: error: Invalid numeric value "0" for --ntasks.\n'),
    (["-N", "x", "true"], "srun: error: invalid node count `x'\n"),
    ([], "srun: error: No command given to execute.\n"),
])
def test_bad_arguments_are_one_line_errors(cluster, args, text):
    r = cluster.run("srun", *args, input="")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", text)
