"""Helpers of the tests/parallel suite: job states and the process table."""

import psutil


def processes_with_env(name, value):
    """Live processes whose environment has ``name=value`` (the process table is the truth)."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(name) == value:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def wait_no_processes(name, value, timeout=20.0):
    """Poll until no process carries ``name=value``; return the survivors (empty on success)."""
    import time
    deadline = time.monotonic() + timeout
    left = processes_with_env(name, value)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_with_env(name, value)
    return [(p.pid, " ".join(p.cmdline()[:6])) for p in left if p.is_running()]


def job_state(job_id):
    from batch_backend.client import Client
    with Client() as c:
        return c.job(str(job_id))["state"]


def wait_job_final(job_id, timeout=30.0):
    import time
    active = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"}
    deadline = time.monotonic() + timeout
    state = job_state(job_id)
    while state in active and time.monotonic() < deadline:
        time.sleep(0.1)
        state = job_state(job_id)
    return state
