"""An acknowledged job survives kill -9 of the controller: never lost, never duplicated."""

import collections
import subprocess
import threading
import time


def test_acknowledged_jobs_survive_kill_9_of_the_controller(private_cluster):
    c = private_cluster
    acked = []
    stop = threading.Event()

    def submitter():
        while not stop.is_set():
            r = c.run("sbatch", "--parsable", "-o", "/dev/null", "--wrap=sleep 0.2", timeout=30)
            if r.returncode == 0:
                acked.append(int(r.stdout.strip()))
            else:
                # refused while the controller is down: a clean error, never a traceback
                assert "Traceback" not in r.stderr, r.stderr
                assert "Unable to contact slurm controller" in r.stderr, r.stderr
                time.sleep(0.05)

    threads = [threading.Thread(target=submitter) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            time.sleep(1.0)
            c.kill_controller()
            time.sleep(0.3)
            c.start_controller()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(acked) > 20
    assert len(set(acked)) == len(acked), "an id was handed out twice"
    deadline = time.time() + 120
    while time.time() < deadline:
        r = c.run("sacct", "-P", "-n", "-X", "-S", "2000-01-01", "-o", "JobID,State")
        rows = [line.split("|") for line in r.stdout.splitlines()]
        if all(state in ("COMPLETED",) for _, state in rows) and len(rows) >= len(acked):
            break
        time.sleep(0.5)
    ids = collections.Counter(int(job) for job, _ in rows)
    assert all(n == 1 for n in ids.values()), "a job appears twice"
    missing = set(acked) - set(ids)
    assert not missing, f"acknowledged jobs lost: {sorted(missing)[:10]}"
    assert {state for _, state in rows} == {"COMPLETED"}


def test_running_job_keeps_running_across_controller_restart(private_cluster):
    c = private_cluster
    job_id = c.sbatch("-o", "survivor.out", "--wrap=sleep 2; echo finished")
    c.wait_state(job_id, "RUNNING")
    c.kill_controller()
    time.sleep(0.5)
    c.start_controller()
    assert c.state(job_id) in ("RUNNING", "COMPLETED")
    assert c.wait_state(job_id, "COMPLETED", timeout=30) == "COMPLETED"
    with open(c.path("survivor.out")) as f:
        assert f.read() == "finished\n"


def test_job_that_ends_while_controller_is_down_is_recorded(private_cluster):
    c = private_cluster
    job_id = c.sbatch("-o", "/dev/null", "--wrap=sleep 0.5; exit 4")
    c.wait_state(job_id, "RUNNING")
    c.kill_controller()
    time.sleep(1.5)  # the job ends while nobody listens
    c.start_controller()
    assert c.wait_state(job_id, "FAILED", timeout=30) == "FAILED"
    assert c.acct(job_id, "JobID,ExitCode")[0] == [str(job_id), "4:0"]


def test_sbatch_waits_for_a_killed_controller_to_come_back(private_cluster):
    # kill -9 leaves the socket behind: sbatch reads "connection refused" as a restart in
    # progress and re-sends its submission (same submit token) for up to 10 s, like Slurm's
    # clients waiting MessageTimeout for slurmctld
    c = private_cluster
    c.kill_controller()
    t0 = time.time()
    proc = subprocess.Popen([c.env["PATH"].split(":")[0] + "/sbatch", "--parsable", "-o", "/dev/null",
                             "--wrap=true"], env=c.env, cwd=c.workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    assert proc.poll() is None, "sbatch gave up while the controller was being restarted"
    c.start_controller()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    job_id = int(out.strip())
    assert time.time() - t0 >= 1.5
    assert c.wait_state(job_id, "COMPLETED") == "COMPLETED"
    assert [row[0] for row in c.acct(job_id, "JobID")] == [str(job_id), f"{job_id}.batch"]
