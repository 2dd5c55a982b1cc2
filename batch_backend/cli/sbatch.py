"""sbatch: submit a batch script (file, stdin or --wrap) to the controller.

Output is byte-compatible with Slurm 22.05 (``Submitted batch job N`` or
``N`` with ``--parsable``) because batchspawner, ipyparallel, dask-jobqueue and
submitit parse it. The script is read here, at submit time: later edits or
deletion of the file do not affect the job.
"""

import sys
import time

USAGE = """Usage: sbatch [OPTIONS(0)...] [ : [OPTIONS(N)...]] script(0) [args(0)...]
Submit a batch script to BatchHub's Slurm-compatible controller.
Common options: -J NAME, -p PARTITION, -N NODES, -n TASKS, -c CPUS, --mem=MB, -t TIME,
-o FILE, -e FILE, -D DIR, --export=..., --array=SPEC, --dependency=..., --hold, --wait,
--parsable, --wrap=CMD. See SLURM_DIALECT.md for the full contract.
"""


def _fail(lines, rc=1):
    for line in lines:
        sys.stderr.write(f"sbatch: error: {line}\n")
    return rc


def run(argv):
    from .sbatch_options import UsageError, build_submission
    from ..client import APIError, Client, ControllerUnreachable
    stdin_text = None
    try:
        submission, flags = build_submission(argv, stdin_text=stdin_text)
    except UsageError as e:
        return _fail(e.lines)
    if flags.get("help") or flags.get("usage"):
        sys.stdout.write(USAGE)
        return 0
    if flags.get("version"):
        sys.stdout.write("slurm 22.05.11\n")
        return 0
    submission["submit_line"] = " ".join(["sbatch"] + list(argv))
    wait = submission.pop("wait", False) or flags.get("wait")
    client = Client()
    try:
        # a controller being restarted (kill -9 leaves its socket) is waited for, as Slurm's
        # clients wait MessageTimeout (10 s); the submit token makes the re-sends safe
        answer = client.submit(submission, retries=2, restart_wait=10.0)
    except ControllerUnreachable:
        return _fail(["Batch job submission failed: Unable to contact slurm controller (connect failure)"])
    except APIError as e:
        lines = list(e.details.get("detail_lines", []))
        lines.append(f"Batch job submission failed: {e.message}")
        return _fail(lines)
    job_id = answer.get("job_id")
    if flags.get("test_only"):
        sys.stderr.write("sbatch: Job would be submitted (test only)\n")
        return 0
    cluster = flags.get("cluster")
    if flags.get("parsable"):
        sys.stdout.write(f"{job_id};{cluster}\n" if cluster else f"{job_id}\n")
    else:
        sys.stdout.write(f"Submitted batch job {job_id}" + (f" on cluster {cluster}\n" if cluster else "\n"))
    sys.stdout.flush()
    if wait:
        return _wait(client, job_id)
    return 0


def _wait(client, job_id):
    """--wait: block until the job ends; exit with its exit code (like Slurm)."""
    from ..client import ClientError
    from ..model import FINAL_STATES
    delay = 0.05
    while True:
        try:
            jobs = client.request("GET", f"/jobs/{job_id}")["jobs"]
        except ClientError:
            time.sleep(1)
            continue
        if jobs and all(j["state"] in FINAL_STATES for j in jobs):
            worst = max(jobs, key=lambda j: (j["exit_code"] != 0 or j["state"] != "COMPLETED", j["exit_code"]))
            if worst["state"] == "COMPLETED":
                return 0
            return worst["exit_code"] or 1
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def main(argv=None):
    from .common import run_command
    return run_command("sbatch", run, argv)


if __name__ == "__main__":
    sys.exit(main())
