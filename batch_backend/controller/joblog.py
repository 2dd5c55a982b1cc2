"""One structured log line per job event: ``<event> JobId=N Key=Value ...``.

Every line about a job carries ``JobId=N`` (array tasks also ``ArrayJobId`` /
``ArrayTaskId``), Slurm's spelling, so ``grep 'JobId=42 '`` over the
controller and node logs gives a job's whole story. Values with spaces or
quotes are double-quoted (logfmt style); the logger is ``batchhub.jobs``.

Events: ``submit``, ``allocate``, ``end``, ``cancel``, ``signal``, ``requeue``,
``action`` (hold, release, suspend, ...), ``update``, ``node_fail``.
"""

import logging

log = logging.getLogger("batchhub.jobs")


def _value(v):
    text = "" if v is None else str(v)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def job_event(event, job, **fields):
    """Log ``event`` for ``job`` with ``fields`` (Key=Value, in the order given)."""
    if not log.isEnabledFor(logging.INFO):
        return
    parts = [f"JobId={job['job_id']}"]
    if job.get("array_job_id") is not None and job.get("array_task_id") is not None:
        parts.append(f"ArrayJobId={job['array_job_id']} ArrayTaskId={job['array_task_id']}")
    parts.extend(f"{k}={_value(v)}" for k, v in fields.items())
    log.info("%s %s", event, " ".join(parts))
