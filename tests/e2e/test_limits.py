"""Time and memory limits, enforced by the node daemon, visible in sacct."""

import time


def test_memory_limit_ends_job_out_of_memory(cluster):
    hog = "python3 -c 'import time; b = bytearray(300 * 1024 * 1024); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(30)'"
    job_id = cluster.sbatch("--mem=60M", "-o", "/dev/null", f"--wrap={hog}")
    state = cluster.wait_state(job_id, "OUT_OF_MEMORY", timeout=30)
    assert state == "OUT_OF_MEMORY"
    assert cluster.run("squeue", "-h", "-j", str(job_id)).stdout == ""


def test_time_limit_sends_warning_signal_then_times_out(cluster):
    # Slurm's smallest limit is one minute; --signal fires 55 s before it.
    script = ("#!/bin/bash\n#SBATCH -t 1\n#SBATCH --signal=B:USR1@55\n"
              "trap 'echo warned' USR1\ntrap 'echo term; exit 1' TERM\n"
              "for i in $(seq 1000); do sleep 0.2; done\n")
    t0 = time.time()
    job_id = cluster.sbatch("-o", "limit.out", input=script)
    state = cluster.wait_state(job_id, "TIMEOUT", timeout=90)
    assert state == "TIMEOUT"
    assert 55 <= time.time() - t0 <= 85
    with open(cluster.path("limit.out")) as f:
        lines = f.read().split("\n")
    # bash may also report its TERMed sleep ("Terminated") between the two
    assert lines[0] == "warned" and lines[-2:] == ["term", ""]
    assert cluster.acct(job_id, "JobID,State,ExitCode")[0][1] == "TIMEOUT"
