"""The earlier runs of a requeued job, kept for accounting.

Slurm writes one accounting record per run of a job: when a job is requeued
(``scontrol requeue``, REQUEUE preemption, a node failure with ``--requeue``)
the run that ended keeps its own row in sacct, in the state that ended it
(``REQUEUED``, ``PREEMPTED``, ``NODE_FAIL``; a finished job requeued
later keeps its final state) with its steps (``.batch``
``CANCELLED 0:15``), followed by the new run's row under the same job id
(SLURM_DIALECT section 6). BatchHub keeps those rows in the job record's
``prior_runs`` list; sacct prints them before the current run.
"""


def close_run(job, state, now, exit_code=0, exit_signal=0):
    """Append the run that just ended to ``job['prior_runs']`` and clear its steps.

    Call it before the job goes back to PENDING (its start time, nodes and
    steps still describe the run that ended).
    """
    if not job.get("start_time"):
        return
    host = job.get("batch_host", "")
    steps = list(job.get("steps", []))
    if not job.get("interactive") and not any(s.get("step_id") == "batch" for s in steps):
        steps.append({"step_id": "batch", "name": "batch", "state": "CANCELLED", "exit_code": 0,
                      "exit_signal": 15, "start_time": job["start_time"], "end_time": now, "nodelist": host,
                      "num_tasks": 1, "num_cpus": (job.get("cpus_per_node") or {}).get(host, 1)})
    job.setdefault("prior_runs", []).append({
        "state": state, "start_time": job["start_time"], "end_time": now,
        "nodes": list(job.get("nodes", [])), "nodelist": job.get("nodelist", ""), "batch_host": host,
        "num_nodes": job.get("num_nodes"), "num_cpus": job.get("num_cpus"),
        "exit_code": exit_code, "exit_signal": exit_signal,
        "suspended_seconds": job.get("suspended_seconds") or 0, "steps": steps,
        "preempted_by": (job.get("preempt") or {}).get("by") if state == "PREEMPTED" else None,
    })
    job["steps"] = []
    job["next_step_id"] = 0
