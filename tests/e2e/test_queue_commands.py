"""squeue, scancel, scontrol, sinfo, sacct end to end, byte-compatible where clients parse."""

import re
import time


def test_squeue_default_header_and_row(private_cluster):
    c = private_cluster
    job_id = c.sbatch("--hold", "-J", "held", "--wrap=true")
    r = c.run("squeue")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)"
    user = c.run("id", "-un").stdout.strip()
    assert lines[1] == f"{job_id:>18} {'debug':>9} {'held':>8} {user[:8]:>8} PD       0:00      1 (JobHeldUser)"


def test_squeue_state_and_batch_host_as_batchspawner_reads_them(private_cluster):
    c = private_cluster
    held = c.sbatch("--hold", "--wrap=true")
    assert c.run("squeue", "-h", "-j", str(held), "-o", "%T %B").stdout == "PENDING n/a\n"
    running = c.sbatch("--wrap=sleep 30", "-o", "/dev/null")
    c.wait_state(running, "RUNNING")
    out = c.run("squeue", "-h", "-j", str(running), "-o", "%T %B").stdout
    assert re.fullmatch(r"RUNNING n\d\n", out)
    c.run("scancel", str(running))
    c.wait_state(running, "CANCELLED")
    r = c.run("squeue", "-h", "-j", str(running), "-o", "%T %B")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")  # finished: vanishes even with -j
    r = c.run("squeue", "-h", "-t", "all", "-j", str(running), "-o", "%T")
    assert r.stdout == "CANCELLED\n"


def test_squeue_filters(private_cluster):
    c = private_cluster
    a = c.sbatch("--hold", "-J", "alpha", "-p", "short", "--wrap=true")
    b = c.sbatch("--hold", "-J", "beta", "--wrap=true")
    assert c.run("squeue", "-h", "-o", "%i", "-p", "short").stdout.split() == [str(a)]
    assert c.run("squeue", "-h", "-o", "%i", "-n", "beta").stdout.split() == [str(b)]
    # Slurm's default sort: partition, state, priority
    assert c.run("squeue", "-h", "-o", "%i", "--me").stdout.split() == [str(b), str(a)]
    assert c.run("squeue", "-h", "-o", "%i", "-t", "PD").stdout.split() == [str(b), str(a)]
    assert c.run("squeue", "-h", "-o", "%i", "-t", "R").stdout == ""
    assert c.run("squeue", "-h", "-o", "%i|%u|%T", f"-j{a}").stdout.split("|")[2] == "PENDING\n"


def test_squeue_start_shows_pending_jobs(private_cluster):
    c = private_cluster
    job_id = c.sbatch("--hold", "--wrap=true")
    r = c.run("squeue", "--start")
    assert r.returncode == 0
    assert "START_TIME" in r.stdout.splitlines()[0]
    assert str(job_id) in r.stdout


def test_scancel_pending_and_running_and_finished(private_cluster):
    c = private_cluster
    pending = c.sbatch("--hold", "--wrap=true")
    running = c.sbatch("--wrap=sleep 60", "-o", "/dev/null")
    c.wait_state(running, "RUNNING")
    r = c.run("scancel", str(pending), str(running))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert c.wait_state(pending, "CANCELLED").startswith("CANCELLED")
    assert c.wait_state(running, "CANCELLED").startswith("CANCELLED")
    uid = c.run("id", "-u").stdout.strip()
    assert c.acct(running, "JobID,State")[0] == [str(running), f"CANCELLED by {uid}"]
    r = c.run("scancel", str(running))  # already finished
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_scancel_kills_the_whole_process_tree(private_cluster):
    c = private_cluster
    marker = f"treemarker{time.time_ns()}"
    script = (f"#!/bin/bash\n(exec -a {marker}-a sleep 300) &\n"
              f"setsid bash -c 'exec -a {marker}-b sleep 301' &\n"
              f"bash -c 'exec -a {marker}-c sleep 302' &\nwait\n")
    job_id = c.sbatch("-o", "/dev/null", input=script)
    c.wait_state(job_id, "RUNNING")

    def procs():
        out = []
        import os
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if marker.encode() in f.read():
                            out.append(int(pid))
                except OSError:
                    pass
        return out
    deadline = time.time() + 10
    while len(procs()) < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert len(procs()) == 3
    assert c.run("scancel", str(job_id)).returncode == 0
    c.wait_state(job_id, "CANCELLED")
    deadline = time.time() + 10
    while procs() and time.time() < deadline:
        time.sleep(0.05)
    assert procs() == []


def test_scancel_signal_reaches_the_job(private_cluster):
    c = private_cluster
    script = "#!/bin/bash\ntrap 'echo got-usr1; exit 0' USR1\nwhile true; do sleep 0.1; done\n"
    job_id = c.sbatch("-o", "sig.out", input=script)
    c.wait_state(job_id, "RUNNING")
    time.sleep(0.3)
    r = c.run("scancel", "-b", "-s", "USR1", str(job_id))
    assert r.returncode == 0 and r.stderr == ""
    c.wait_state(job_id, "COMPLETED")
    with open(c.path("sig.out")) as f:
        assert f.read() == "got-usr1\n"


def test_scancel_by_user_and_name(private_cluster):
    c = private_cluster
    a = c.sbatch("--hold", "-J", "x1", "--wrap=true")
    b = c.sbatch("--hold", "-J", "x2", "--wrap=true")
    assert c.run("scancel", "-n", "x1").returncode == 0
    assert c.state(a).startswith("CANCELLED") and c.state(b) == "PENDING"
    user = c.run("id", "-un").stdout.strip()
    assert c.run("scancel", "-u", user).returncode == 0
    assert c.state(b).startswith("CANCELLED")


def test_hold_release_requeue(private_cluster):
    c = private_cluster
    job_id = c.sbatch("--hold", "-o", "rq.out", "--open-mode=append", "--wrap=echo run $SLURM_RESTART_COUNT; sleep 30")
    assert c.run("squeue", "-h", "-j", str(job_id), "-o", "%R").stdout == "(JobHeldUser)\n"
    assert c.run("scontrol", "release", str(job_id)).returncode == 0
    c.wait_state(job_id, "RUNNING")
    r = c.run("scontrol", "requeue", str(job_id))
    assert r.returncode == 0, r.stderr
    deadline = time.time() + 20
    while time.time() < deadline:
        if c.job(job_id).get("Restarts") == "1" and c.job(job_id)["JobState"] == "RUNNING":
            break
        time.sleep(0.1)
    assert c.job(job_id)["Restarts"] == "1"
    time.sleep(0.3)
    c.run("scancel", str(job_id))
    c.wait_state(job_id, "CANCELLED")
    with open(c.path("rq.out")) as f:
        assert f.read() == "run\nrun 1\n"


def test_scontrol_show_job_layout(private_cluster):
    c = private_cluster
    job_id = c.sbatch("-J", "showme", "-t", "10", "-n", "2", "-o", "show.out", "--wrap=sleep 30")
    c.wait_state(job_id, "RUNNING")
    r = c.run("scontrol", "show", "job", str(job_id))
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.split("\n")
    assert lines[0] == f"JobId={job_id} JobName=showme"
    assert all(line.startswith("   ") for line in lines[1:-2] if line)
    assert lines[-2:] == ["", ""]  # a blank line after the record
    job = c.job(job_id)
    assert job["JobState"] == "RUNNING" and job["Reason"] == "None"
    assert job["TimeLimit"] == "00:10:00"
    assert job["NumTasks"] == "2"
    assert job["StdOut"] == c.path("show.out")
    assert job["Command"] == "(null)"
    assert job["BatchHost"] == job["NodeList"]
    c.run("scancel", str(job_id))


def test_scontrol_update_job(private_cluster):
    c = private_cluster
    job_id = c.sbatch("--hold", "-t", "30", "--wrap=true")
    assert c.run("scontrol", "update", f"JobId={job_id}", "TimeLimit=5", "JobName=renamed").returncode == 0
    job = c.job(job_id)
    assert job["TimeLimit"] == "00:05:00" and job["JobName"] == "renamed"
    assert c.run("scontrol", "update", f"JobId={job_id}", "Partition=short").returncode == 0
    assert c.job(job_id)["Partition"] == "short"
    r = c.run("scontrol", "update", f"JobId={job_id}", "Partition=nosuch")
    assert r.returncode != 0 and "Traceback" not in r.stderr


def test_node_drain_and_resume(private_cluster):
    c = private_cluster
    r = c.run("scontrol", "update", "NodeName=n[1-3]", "State=DRAIN", "Reason=maintenance")
    assert r.returncode == 0, r.stderr
    out = c.run("sinfo", "-h", "-N", "-o", "%N %t").stdout.split("\n")
    assert "n1 drain" in out and "n4 idle" in out
    job_id = c.sbatch("-o", "/dev/null", "--wrap=true")
    c.wait_state(job_id, "COMPLETED")
    assert c.job(job_id)["NodeList"] == "n4"
    node = c.run("scontrol", "show", "node", "n1").stdout
    assert "Reason=maintenance" in node and "DRAIN" in node
    assert c.run("scontrol", "update", "NodeName=n[1-3]", "State=RESUME").returncode == 0
    assert "n1 idle" in c.run("sinfo", "-h", "-N", "-o", "%N %t").stdout


def test_sinfo_default_output(private_cluster):
    r = private_cluster.run("sinfo")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST"
    assert lines[1] == "debug*       up    1:00:00      4   idle n[1-4]"
    assert "short" in lines[2] and "gpu" in lines[3]


def test_scontrol_show_partition_and_config(private_cluster):
    c = private_cluster
    r = c.run("scontrol", "show", "partition", "short")
    assert r.returncode == 0 and "PartitionName=short" in r.stdout and "MaxTime=00:05:00" in r.stdout.replace("MaxTime=5:00", "MaxTime=00:05:00")
    assert c.run("scontrol", "show", "config").returncode == 0
    r = c.run("scontrol", "show", "partition", "nosuch")
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_sacct_rows_and_formats(private_cluster):
    c = private_cluster
    job_id = c.sbatch("-J", "acctjob", "--wrap=true", "-o", "/dev/null")
    c.wait_state(job_id, "COMPLETED")
    r = c.run("sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", str(job_id))
    lines = r.stdout.splitlines()
    assert lines[0] == "JobID|State|NodeList"
    assert re.fullmatch(rf"{job_id}\|COMPLETED\|n\d", lines[1])
    assert re.fullmatch(rf"{job_id}\.batch\|COMPLETED\|n\d", lines[2])
    r = c.run("sacct", "-P", "-n", "-X", "-j", str(job_id), "-o", "JobID,JobName,State,ExitCode,Submit,Elapsed")
    fields = r.stdout.strip().split("|")
    assert fields[:4] == [str(job_id), "acctjob", "COMPLETED", "0:0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", fields[4])
    assert re.fullmatch(r"\d\d:\d\d:\d\d", fields[5])
    r = c.run("sacct", "--jobs", str(job_id), "--format=SubmitLine%512", "--noheader", "--parsable2", "--allocations")
    assert r.stdout == "sbatch --parsable -J acctjob --wrap=true -o /dev/null\n"
    r = c.run("sacct", "-j", "999999", "-P", "-o", "JobID,State")
    assert (r.returncode, r.stdout) == (0, "JobID|State\n")
    r = c.run("sacct", "-u", "no_such_user_xyz")
    assert r.returncode == 1 and r.stderr == "sacct: error: Invalid user id: no_such_user_xyz\n"


def test_sacct_default_table(private_cluster):
    c = private_cluster
    job_id = c.sbatch("-J", "tbl", "--wrap=true", "-o", "/dev/null")
    c.wait_state(job_id, "COMPLETED")
    lines = c.run("sacct", "-j", str(job_id)).stdout.splitlines()
    assert lines[0] == "JobID           JobName  Partition    Account  AllocCPUS      State ExitCode "
    assert lines[1] == "------------ ---------- ---------- ---------- ---------- ---------- -------- "
    assert lines[2].startswith(f"{job_id:<12} {'tbl':>10} {'debug':>10}")


def test_suspend_and_resume_stop_and_continue_the_job(private_cluster):
    c = private_cluster
    job_id = c.sbatch("-o", "tick.out", "--wrap=for i in $(seq 200); do echo $i; sleep 0.05; done")
    c.wait_state(job_id, "RUNNING")
    time.sleep(0.3)
    assert c.run("scontrol", "suspend", str(job_id)).returncode == 0
    assert c.run("squeue", "-h", "-j", str(job_id), "-o", "%T").stdout == "SUSPENDED\n"
    time.sleep(0.3)
    with open(c.path("tick.out")) as f:
        before = f.read()
    time.sleep(0.6)
    with open(c.path("tick.out")) as f:
        assert f.read() == before  # stopped: no new lines
    assert c.run("scontrol", "resume", str(job_id)).returncode == 0
    assert c.wait_state(job_id, "COMPLETED", timeout=30) == "COMPLETED"
    with open(c.path("tick.out")) as f:
        assert f.read().split()[-1] == "200"
