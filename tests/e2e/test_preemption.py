"""Preemption, suspend/resume and gang scheduling against a live cluster, through the CLI.

One node (p1) is shared by partitions of PriorityTier 1 (one per PreemptMode)
and a PriorityTier 10 partition ``high``; a second node (g1) carries an
``OverSubscribe=FORCE:2`` partition that the gang scheduler time-slices.
"""

import os
import subprocess
import time
import uuid

import pytest

from cluster_support import REPO, LiveCluster, shared_cluster


PREEMPT_CONF = """\
ClusterName=preemptcluster
SlurmdParameters=config_overrides
SlurmdTimeout=30
KillWait=1
MinJobAge=300
PreemptType=preempt/partition_prio
PreemptMode=SUSPEND,GANG
SchedulerTimeSlice=2
NodeName=p1 CPUs=2 RealMemory=1000
NodeName=g1 CPUs=2 RealMemory=1000
PartitionName=requeue Nodes=p1 Default=YES PriorityTier=1 PreemptMode=REQUEUE
PartitionName=cancel Nodes=p1 PriorityTier=1 PreemptMode=CANCEL
PartitionName=grace Nodes=p1 PriorityTier=1 PreemptMode=CANCEL GraceTime=5
PartitionName=suspend Nodes=p1 PriorityTier=1 PreemptMode=SUSPEND
PartitionName=high Nodes=p1 PriorityTier=10
PartitionName=gang Nodes=g1 PriorityTier=1 OverSubscribe=FORCE:2
"""


@pytest.fixture(scope="module")
def pc():
    """One cluster for the module, in a directory other users can reach (for the user test)."""
    yield from shared_cluster(PREEMPT_CONF, "batchhub-preempt-")


@pytest.fixture
def clean(pc):
    """Each test starts and ends with an empty queue (the module shares one cluster)."""
    yield pc
    r = pc.run("squeue", "-h", "-o", "%i")
    ids = r.stdout.split()
    if ids:
        pc.run("scancel", *ids)
        deadline = time.time() + 20
        while time.time() < deadline and pc.run("squeue", "-h", "-o", "%i").stdout.strip():
            time.sleep(0.1)


def squeue_state(c, job_id):
    return c.run("squeue", "-h", "-j", str(job_id), "-o", "%t").stdout.strip()


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def final_state(c, job_id, states, timeout=30):
    """Wait until the job's current run (its last sacct row; requeued runs come first) is in ``states``."""
    def current():
        rows = [r for r in c.acct(job_id, "JobID,State") if r[0] == str(job_id)]
        return rows[-1][1] if rows and rows[-1][1].split()[0] in states else None
    return wait_for(current, timeout=timeout, what=f"job {job_id} in {states}")


def gated(name):
    """A job command that runs until the test creates ``name`` (no guessing how long a step takes)."""
    return f"--wrap=while [ ! -e {name} ]; do sleep 0.1; done"


def open_gate(c, name):
    open(c.path(name), "w").close()


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()[0]


def pids_of(c, name):
    """The pid the job wrote to ``name`` (its batch shell)."""
    path = c.path(name)
    wait_for(lambda: os.path.exists(path) and open(path).read().strip(), what=f"{name}")
    return int(open(path).read().split()[0])


# -- configuration is visible ---------------------------------------------------------------------

def test_show_partition_and_config_report_preemption_settings(clean):
    c = clean
    out = c.run("scontrol", "show", "partition", "grace").stdout
    assert "PriorityTier=1 " in out and "PreemptMode=CANCEL" in out and "GraceTime=5 " in out
    out = c.run("scontrol", "show", "partition", "gang").stdout
    assert "OverSubscribe=FORCE:2" in out and "PreemptMode=GANG,SUSPEND" in out
    assert "PriorityTier=10 " in c.run("scontrol", "show", "partition", "high").stdout
    config = c.run("scontrol", "show", "config").stdout
    lines = {line.split("=")[0].strip(): line.split("=", 1)[1].strip() for line in config.splitlines() if " = " in line}
    assert lines["PreemptType"] == "preempt/partition_prio"
    assert lines["PreemptMode"] == "GANG,SUSPEND"
    assert lines["SchedulerTimeSlice"] == "2 sec"


# -- scontrol suspend / resume ---------------------------------------------------------------------

def test_admin_suspend_stops_every_process_and_resume_continues(clean):
    c = clean
    job = c.sbatch("-p", "requeue", "-n", "1", "-o", "susp.out",
                   "--wrap=echo $$ > susp.pid; srun sh -c 'echo $$ > step.pid; sleep 60' & "
                   "for i in $(seq 600); do echo $i; sleep 0.1; done")
    c.wait_state(job, "RUNNING")
    shell = pids_of(c, "susp.pid")
    step = pids_of(c, "step.pid")
    assert c.run("scontrol", "suspend", str(job)).returncode == 0
    assert squeue_state(c, job) == "S"
    assert c.job(job)["JobState"] == "SUSPENDED"
    wait_for(lambda: proc_state(shell) == "T" and proc_state(step) == "T", what="processes stopped")
    size = os.path.getsize(c.path("susp.out"))
    time.sleep(0.5)
    assert os.path.getsize(c.path("susp.out")) == size  # nothing runs while suspended
    r = c.run("scontrol", "suspend", str(job))
    assert r.returncode != 0 and "Job is not running" in r.stderr
    assert c.run("scontrol", "resume", str(job)).returncode == 0
    assert squeue_state(c, job) == "R"
    wait_for(lambda: proc_state(shell) != "T" and proc_state(step) != "T", what="processes continued")
    wait_for(lambda: os.path.getsize(c.path("susp.out")) > size, what="output grows again")
    info = c.job(job)
    assert info["SuspendTime"] != "None"
    r = c.run("scontrol", "resume", str(job))
    assert r.returncode != 0 and "not suspended" in r.stderr


def _epoch(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))


def _seconds(hms):
    h, m, s = (int(x) for x in hms.split(":"))
    return (h * 60 + m) * 60 + s


@pytest.fixture(scope="module")
def plain_user():
    if os.getuid() != 0 or not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("needs root (to create a throwaway user) and /usr/bin/python3")
    name = f"bh{uuid.uuid4().hex[:6]}p"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    yield name
    subprocess.run(["userdel", name], check=False)


def as_user(c, user, command, *args):
    code = f"import sys; sys.path.insert(0, {REPO!r}); from batch_backend.cli.{command} import main; sys.exit(main())"
    return c.run("/usr/bin/python3", "-c", code, *args, user=user)


def test_suspend_and_resume_are_refused_to_a_plain_user_even_for_their_own_job(clean, plain_user):
    c = clean
    r = as_user(c, plain_user, "sbatch", "--parsable", "-p", "requeue", "-o", "/dev/null", "--wrap=sleep 60")
    assert r.returncode == 0, r.stderr
    job = int(r.stdout)
    c.wait_state(job, "RUNNING")
    r = as_user(c, plain_user, "scontrol", "suspend", str(job))
    assert r.returncode != 0 and "Access/permission denied" in r.stderr and r.stdout == ""
    assert squeue_state(c, job) == "R"  # nothing changed
    assert c.run("scontrol", "suspend", str(job)).returncode == 0  # root may
    r = as_user(c, plain_user, "scontrol", "resume", str(job))
    assert r.returncode != 0 and "Access/permission denied" in r.stderr
    assert squeue_state(c, job) == "S"
    assert c.run("scontrol", "resume", str(job)).returncode == 0
    assert squeue_state(c, job) == "R"


def test_suspended_time_does_not_count_against_the_time_limit(clean):
    c = clean
    job = c.sbatch("-p", "requeue", "-t", "1", "-o", "/dev/null", "--wrap=sleep 30")
    c.wait_state(job, "RUNNING")
    before = c.job(job)
    assert c.run("scontrol", "suspend", str(job)).returncode == 0
    time.sleep(3)
    assert c.run("scontrol", "resume", str(job)).returncode == 0
    after = c.job(job)
    # the end moved on by the suspended time (Slurm: EndTime + suspended seconds)
    assert _epoch(after["EndTime"]) - _epoch(before["EndTime"]) >= 2
    wall = time.time() - _epoch(after["StartTime"])
    assert _seconds(after["RunTime"]) <= wall - 2  # RunTime leaves the suspension out
    assert int(after["SecsPreSuspend"]) >= 0 and after["SuspendTime"] != "None"


# -- preemption -----------------------------------------------------------------------------------

def test_requeue_preemption_puts_the_low_job_back_and_it_runs_after(clean):
    c = clean
    low = c.sbatch("-p", "requeue", "-n", "2", "-o", "rq.out",
                   "--wrap=echo run${SLURM_RESTART_COUNT:-0}; [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ] && sleep 60; true")
    c.wait_state(low, "RUNNING")
    high = c.sbatch("-p", "high", "-n", "2", "-o", "/dev/null", "--wrap=sleep 2")
    wait_for(lambda: c.job(low).get("Restarts") == "1", what="low job requeued")
    info = c.job(low)
    assert info["JobState"] in ("PENDING", "RUNNING", "COMPLETED")
    c.wait_state(high, "COMPLETED")
    final_state(c, low, {"COMPLETED"})
    rows = c.acct(low, "JobID,State")
    job_rows = [r[1] for r in rows if r[0] == str(low)]
    assert job_rows == ["PREEMPTED", "COMPLETED"]
    with open(c.path("rq.out")) as f:
        assert f.read().split() == ["run0", "run1"]


def test_sacct_shows_each_run_of_a_requeued_job(clean):
    c = clean
    job = c.sbatch("-p", "requeue", "-o", "/dev/null", "--wrap=sleep 60")
    c.wait_state(job, "RUNNING")
    assert c.run("scontrol", "requeue", str(job)).returncode == 0
    wait_for(lambda: c.job(job).get("Restarts") == "1" and c.job(job)["JobState"] == "RUNNING", what="rerun")
    rows = [r for r in c.acct(job, "JobID,State,ExitCode")]
    assert rows[:2] == [[str(job), "REQUEUED", "0:0"], [f"{job}.batch", "CANCELLED", "0:15"]]
    assert rows[2] == [str(job), "RUNNING", "0:0"]


def test_requeued_job_waits_with_reason_begintime_while_the_preemptor_runs(clean):
    c = clean
    low = c.sbatch("-p", "requeue", "-n", "2", "-o", "/dev/null", "--wrap=sleep 60")
    c.wait_state(low, "RUNNING")
    high = c.sbatch("-p", "high", "-n", "2", "-o", "/dev/null", "--wrap=sleep 30")
    c.wait_state(high, "RUNNING")
    out = c.run("squeue", "-h", "-j", str(low), "-o", "%T %r").stdout.split()
    assert out[0] == "PENDING" and out[1] in ("BeginTime", "Resources", "Priority")
    assert squeue_state(c, high) == "R"


def test_cancel_preemption_ends_the_low_job_as_preempted(clean):
    c = clean
    low = c.sbatch("-p", "cancel", "-n", "2", "-o", "/dev/null", "--wrap=sleep 60")
    c.wait_state(low, "RUNNING")
    high = c.sbatch("-p", "high", "-n", "2", "-o", "/dev/null", "--wrap=sleep 1")
    assert c.wait_state(low, "PREEMPTED") == "PREEMPTED"
    c.wait_state(high, "COMPLETED")
    assert squeue_state(c, low) == ""  # final: gone from squeue


def test_grace_time_sends_sigterm_first_then_ends_the_job(clean):
    c = clean
    low = c.sbatch("-p", "grace", "-n", "2", "-o", "grace.out",
                   "--wrap=trap 'echo got-term' TERM; sleep 60 & wait; echo still-here; sleep 60 & wait")
    c.wait_state(low, "RUNNING")
    time.sleep(0.3)
    high = c.sbatch("-p", "high", "-n", "2", "-o", "/dev/null", "--wrap=sleep 1")
    wait_for(lambda: "got-term" in open(c.path("grace.out")).read(), what="SIGTERM at preemption")
    assert squeue_state(c, low) == "R"  # still running during its GraceTime
    assert squeue_state(c, high) == "PD"
    assert c.wait_state(low, "PREEMPTED", timeout=30) == "PREEMPTED"
    c.wait_state(high, "COMPLETED")
    assert "still-here" in open(c.path("grace.out")).read()


def test_suspend_preemption_stops_the_low_job_until_the_high_job_ends(clean):
    c = clean
    low = c.sbatch("-p", "suspend", "-n", "2", "-o", "/dev/null",
                   "--wrap=echo $$ > low.pid; while [ ! -e low.go ]; do sleep 0.1; done")
    c.wait_state(low, "RUNNING")
    shell = pids_of(c, "low.pid")
    high = c.sbatch("-p", "high", "-n", "2", "-o", "/dev/null", gated("high.go"))
    wait_for(lambda: squeue_state(c, low) == "S", what="low job suspended")
    wait_for(lambda: proc_state(shell) == "T", what="low job's shell stopped")
    c.wait_state(high, "RUNNING")
    open_gate(c, "high.go")
    c.wait_state(high, "COMPLETED")
    wait_for(lambda: squeue_state(c, low) == "R", what="low job resumed")
    wait_for(lambda: proc_state(shell) != "T", what="low job's shell continued")
    open_gate(c, "low.go")
    assert c.wait_state(low, "COMPLETED", timeout=30) == "COMPLETED"


def test_suspend_preemption_survives_a_controller_restart(clean):
    c = clean
    low = c.sbatch("-p", "suspend", "-n", "2", "-o", "/dev/null", "--wrap=echo $$ > restart.pid; while [ ! -e restart-low.go ]; do sleep 0.1; done")
    c.wait_state(low, "RUNNING")
    shell = pids_of(c, "restart.pid")
    high = c.sbatch("-p", "high", "-n", "2", "-o", "/dev/null", gated("restart.go"))
    wait_for(lambda: squeue_state(c, low) == "S" and squeue_state(c, high) == "R", what="low suspended, high running")
    c.kill_controller()
    c.start_controller()
    assert squeue_state(c, low) == "S" and squeue_state(c, high) == "R"
    assert proc_state(shell) == "T"
    open_gate(c, "restart.go")
    assert c.wait_state(high, "COMPLETED") == "COMPLETED"
    wait_for(lambda: squeue_state(c, low) == "R", what="low job resumed after the restart")
    open_gate(c, "restart-low.go")
    assert c.wait_state(low, "COMPLETED", timeout=30) == "COMPLETED"


def test_lower_tier_job_never_preempts_a_higher_one(clean):
    c = clean
    high = c.sbatch("-p", "high", "-n", "2", "-o", "/dev/null", "--wrap=sleep 30")
    c.wait_state(high, "RUNNING")
    low = c.sbatch("-p", "requeue", "-n", "2", "-o", "/dev/null", "--wrap=sleep 1")
    time.sleep(1.5)
    assert squeue_state(c, high) == "R"
    assert squeue_state(c, low) == "PD"


# -- gang scheduling ----------------------------------------------------------------------------------

def test_gang_time_slicing_alternates_two_jobs(clean):
    c = clean
    a = c.sbatch("-p", "gang", "-n", "2", "-o", "/dev/null", "--wrap=echo $$ > gang-a.pid; sleep 120")
    b = c.sbatch("-p", "gang", "-n", "2", "-o", "/dev/null", "--wrap=echo $$ > gang-b.pid; sleep 120")
    c3 = c.sbatch("-p", "gang", "-n", "2", "-o", "/dev/null", "--wrap=sleep 120")  # FORCE:2: no third slot
    shells = {"a": pids_of(c, "gang-a.pid"), "b": pids_of(c, "gang-b.pid")}
    stopped_seen = False

    def pair():
        """Both states from one squeue call (two calls could straddle a rotation)."""
        out = dict(line.split() for line in c.run("squeue", "-h", "-j", f"{a},{b}", "-o", "%i %t").stdout.splitlines())
        return out.get(str(a)), out.get(str(b))
    wait_for(lambda: set(pair()) == {"R", "S"}, what="one runs, one waits")
    seen = []
    deadline = time.time() + 20
    while time.time() < deadline and len(seen) < 3:
        pair_now = pair()
        assert pair_now in (("R", "S"), ("S", "R")), pair_now  # never both on the CPUs at once
        if not seen or seen[-1] != pair_now:
            seen.append(pair_now)
        waiting = shells["a"] if pair_now[0] == "S" else shells["b"]
        stopped_seen = stopped_seen or proc_state(waiting) == "T"
        time.sleep(0.2)
    assert len(seen) >= 3  # flipped at least twice
    assert stopped_seen  # the waiting job's processes really are stopped
    assert c.run("squeue", "-h", "-j", str(c3), "-o", "%t %r").stdout.split() == ["PD", "Resources"]


def test_a_bad_preempt_setting_stops_the_controller_with_a_clear_error(tmp_path):
    c = LiveCluster(tmp_path, "SlurmdParameters=config_overrides\nPreemptType=preempt/bogus\n"
                              "NodeName=x1 CPUs=1 RealMemory=100\nPartitionName=p Nodes=x1 Default=YES\n")
    try:
        r = c.batchhub("up", "--no-link-cli", "--no-hub")
        assert r.returncode != 0
        assert "PreemptType: unsupported value 'preempt/bogus'" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        c.down()
