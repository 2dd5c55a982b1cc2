"""salloc: obtain an allocation, run a command in it, release it (SLURM_DIALECT section 9).

``salloc -N 2 [command [args...]]`` asks the controller for an interactive
allocation (the same request srun makes outside a job), waits until it is
granted, then runs the command on this host (default: ``$SHELL``, else
``/bin/sh``) with the allocation's ``SLURM_*`` environment (``SLURM_JOB_ID``,
``SLURM_JOB_NODELIST``, ``SLURM_NTASKS``, ...), so that ``srun`` inside it
creates steps of the allocation. When the command exits the allocation is
released and salloc exits with the command's exit code. If the allocation
ends first (time limit, ``scancel``), the command gets SIGHUP, as in Slurm.

Slurm's ``salloc: Granted job allocation N`` / ``Relinquishing`` lines go to
stderr only when stderr is a terminal: clients that run salloc through a pipe
(slurm-magic) read any stderr as a failure (SLURM_DIALECT section 0).
"""

import os
import sys

from .srun import SrunError, allocate, allocation_env, allocation_submission, parse_args, release

PROG = "salloc"
USAGE = """\
Usage: salloc [-N nnodes] [-n ntasks] [-c ncpus] [--ntasks-per-node=n] [-p partition] [-t time]
              [-J jobname] [-A account] [--mem=MB] [-w hosts] [-x hosts] [--exclusive] [command [args...]]
"""
JOB_POLL = 2.0  # seconds between checks that the allocation still exists


def _say(text, quiet):
    if not quiet and sys.stderr.isatty():
        sys.stderr.write(f"{PROG}: {text}\n")
        sys.stderr.flush()


def run(argv):
    try:
        return _run(argv)
    except SrunError as e:
        if e.message:
            for line in e.message.splitlines():
                sys.stderr.write(f"{PROG}: error: {line}\n")
        return e.rc


def _run(argv):
    opts, command = parse_args(argv)
    if opts.get("help") or opts.get("usage"):
        sys.stdout.write(USAGE)
        return 0
    if opts.get("version"):
        sys.stdout.write("slurm 22.05.11\n")
        return 0
    quiet = bool(opts.get("quiet"))
    env = dict(os.environ)
    cwd = os.getcwd()
    if opts.get("chdir"):
        cwd = os.path.abspath(opts["chdir"])
    if not command:
        command = [env.get("SHELL") or "/bin/sh"]
    name = str(opts.get("name") or os.path.basename(command[0]) or "interactive")
    from ..client import Client
    client = Client()
    submission = allocation_submission(opts, PROG, env, cwd, name, " ".join([PROG] + list(argv)))
    job = allocate(client, submission, PROG, quiet=quiet)
    job_id = job["job_id"]
    _say(f"Granted job allocation {job_id}", quiet)
    rc = 1
    try:
        rc = _run_command(client, job_id, command, allocation_env(job, env), cwd)
    finally:
        _say(f"Relinquishing job allocation {job_id}", quiet)
        release(client, job_id, rc)
    return rc


def _run_command(client, job_id, command, env, cwd):
    import signal
    import subprocess
    from ..client import ClientError
    from ..model import FINAL_STATES
    try:
        proc = subprocess.Popen(command, env=env, cwd=cwd)
    except OSError as e:
        raise SrunError(f'Unable to exec command "{command[0]}": {e.strerror or e}') from None
    # The command owns the terminal: Ctrl-C is its business, not salloc's.
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while True:
            try:
                return _returncode(proc.wait(timeout=JOB_POLL))
            except subprocess.TimeoutExpired:
                pass
            try:
                state = client.job(job_id)["state"]
            except ClientError:
                continue
            if state in FINAL_STATES:
                sys.stderr.write(f"{PROG}: Job allocation {job_id} has been revoked.\n")
                proc.send_signal(signal.SIGHUP)
                try:
                    return _returncode(proc.wait(timeout=5))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    return _returncode(proc.wait())
    finally:
        signal.signal(signal.SIGINT, old)


def _returncode(code):
    return 128 - code if code < 0 else code


def main(argv=None):
    from .common import run_command
    return run_command(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
