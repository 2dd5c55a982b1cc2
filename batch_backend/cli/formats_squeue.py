"""squeue's output formatters: the ``-o`` engine (``%[.][width]code``) and ``-O`` fields.

Both compile to one list of :class:`~.formats_common.Column` (Slurm's
``_print_str`` padding/cutting rules); ``squeue_fields`` names the job keys
those columns need so squeue asks the API for only those (SLURM_DIALECT section 5).
Array-row expansion and sorting live in ``formats_common`` (the kernel
extension uses them too).
"""

import time as _time

from .. import timespec
from .formats_common import (NULL, Column, _literal, _or_null, _parse_percent_format, _secs, _slurm_time,
                             job_state_code, job_tres, pad, time_used)

SQUEUE_DEFAULT = "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"
SQUEUE_LONG = "%.18i %.9P %.8j %.8u %.8T %.10M %.9l %.6D %R"
SQUEUE_START = "%.18i %.9P %.8j %.8u %.2t %.19S %.6D %20Y %R"
SQUEUE_STEPS = "%.15i %.8j %.9P %.8u %.9M %N"


def _q_reason_list(job, now):
    if job.get("state") in ("PENDING", "TIMEOUT", "FAILED"):
        return f"({job.get('reason') or 'None'})", True
    return job.get("nodelist") or "", False


def _q_time_limit(job, now):
    limit = job.get("time_limit")
    return ("UNLIMITED" if limit is None else _secs(limit * 60)), False


def _q_time_left(job, now):
    limit = job.get("time_limit")
    if limit is None:
        return "UNLIMITED", True
    return _secs(limit * 60 - time_used(job, now)), False


def _q_end_time(job, now):
    end = job.get("end_time")
    if job.get("time_limit") is None and end and end > now:
        return "NONE"
    return _slurm_time(end)


def _q_array_task(job, now):
    if job.get("array_spec"):
        return job["array_spec"]
    if job.get("array_task_id") is not None:
        return str(job["array_task_id"])
    return "N/A"


def _q_min_cpus(job, now):
    return str((job.get("cpus_per_task") or 1) * (job.get("ntasks_per_node") or 1))


def _q_min_mem(job, now):
    return timespec.format_mem(job.get("mem_per_node") or job.get("mem_per_cpu") or 0)


def _q_tres_per_node(job, now):
    return f"gres:{job['gres']}" if job.get("gres") else "N/A"


def _q_pending_time(job, now):
    start = job.get("start_time") if not job.get("start_estimated") else None
    eligible = job.get("eligible_time")
    if not eligible:
        return "0"
    return str(max(0, int((start or now) - eligible)))


def _g(key, default=""):
    return lambda job, now: str(job.get(key) if job.get(key) is not None else default)


# code -> (title, value function (job, now) -> str or (str, cut))
SQUEUE_CODES = {
    "a": ("ACCOUNT", lambda j, now: _or_null(j.get("account"))),
    "A": ("JOBID", _g("job_id")),
    "b": ("TRES_PER_NODE", _q_tres_per_node),
    "B": ("EXEC_HOST", lambda j, now: j.get("batch_host") or "n/a"),
    "c": ("MIN_CPUS", _q_min_cpus),
    "C": ("CPUS", _g("num_cpus", 0)),
    "d": ("MIN_TMP_DISK", lambda j, now: "0"),
    "D": ("NODES", _g("num_nodes", 0)),
    "e": ("END_TIME", _q_end_time),
    "E": ("DEPENDENCY", _g("dependency")),
    "f": ("FEATURES", lambda j, now: _or_null(j.get("features"))),
    "F": ("ARRAY_JOB_ID", lambda j, now: str(j.get("array_job_id") or j.get("job_id"))),
    "g": ("GROUP", lambda j, now: str(j.get("group") or j.get("gid", ""))),
    "G": ("GROUP", _g("gid")),
    "h": ("OVER_SUBSCRIBE", lambda j, now: "NO" if j.get("exclusive") else "OK"),
    "H": ("SOCKETS_PER_NODE", lambda j, now: "*"),
    "i": ("JOBID", lambda j, now: str(j.get("display_id") or j.get("job_id"))),
    "I": ("CORES_PER_SOCKET", lambda j, now: "*"),
    "j": ("NAME", _g("name")),
    "J": ("THREADS_PER_CORE", lambda j, now: "*"),
    "k": ("COMMENT", lambda j, now: _or_null(j.get("comment"))),
    "K": ("ARRAY_TASK_ID", _q_array_task),
    "l": ("TIME_LIMIT", _q_time_limit),
    "L": ("TIME_LEFT", _q_time_left),
    "m": ("MIN_MEMORY", _q_min_mem),
    "M": ("TIME", lambda j, now: (_secs(time_used(j, now)), False)),
    "n": ("REQ_NODES", _g("nodelist_req")),
    "N": ("NODELIST", lambda j, now: (j.get("nodelist") or "", False)),
    "o": ("COMMAND", lambda j, now: _or_null(j.get("command"))),
    "O": ("CONTIGUOUS", lambda j, now: "0"),
    "p": ("PRIORITY", lambda j, now: "%16.14f" % ((j.get("priority") or 0) / 4294967295.0)),
    "P": ("PARTITION", _g("partition")),
    "q": ("QOS", lambda j, now: _or_null(j.get("qos"))),
    "Q": ("PRIORITY", _g("priority", 0)),
    "r": ("REASON", lambda j, now: j.get("reason") or "None"),
    "R": ("NODELIST(REASON)", _q_reason_list),
    "S": ("START_TIME", lambda j, now: _slurm_time(j.get("start_time"))),
    "t": ("ST", lambda j, now: job_state_code(j.get("state", ""))),
    "T": ("STATE", _g("state")),
    "u": ("USER", _g("user")),
    "U": ("UID", _g("uid")),
    "v": ("RESERVATION", lambda j, now: _or_null(j.get("reservation"))),
    "V": ("SUBMIT_TIME", lambda j, now: _slurm_time(j.get("submit_time"))),
    "w": ("WCKEY", lambda j, now: _or_null(j.get("wckey"))),
    "W": ("LICENSES", lambda j, now: _or_null(j.get("licenses"))),
    "x": ("EXC_NODES", _g("exclude")),
    "X": ("CORE_SPEC", lambda j, now: "N/A"),
    "y": ("NICE", _g("nice", 0)),
    "Y": ("SCHEDNODES", lambda j, now: (j.get("sched_nodes") or NULL, False)),
    "z": ("S:C:T", lambda j, now: "*:*:*"),
    "Z": ("WORK_DIR", _g("workdir")),
}

# Headers printed uncut even when right-justified (Slurm passes cut=false for them).
_UNCUT_TITLES = {"NODELIST", "NODELIST(REASON)", "SCHEDNODES"}

# squeue -O names -> a code above, or (title, function) of their own.
SQUEUE_LONG_FIELDS = {
    "account": "a", "jobid": "A", "gres": "b", "tres-per-node": "b", "batchhost": "B",
    "mincpus": "c", "numcpus": "C", "mintmpdisk": "d", "numnodes": "D", "endtime": "e",
    "dependency": "E", "feature": "f", "arrayjobid": "F", "groupname": "g", "groupid": "G",
    "oversubscribe": "h", "shared": "h", "sockets": "H", "jobarrayid": "i", "cores": "I",
    "name": "j", "threads": "J", "comment": "k", "arraytaskid": "K", "timelimit": "l",
    "timeleft": "L", "minmemory": "m", "timeused": "M", "reqnodes": "n", "nodelist": "N",
    "command": "o", "contiguous": "O", "priority": "p", "partition": "P", "qos": "q",
    "prioritylong": "Q", "reason": "r", "reasonlist": "R", "starttime": "S",
    "statecompact": "t", "state": "T", "userid": "U", "username": "u", "reservation": "v",
    "submittime": "V", "wckey": "w", "licenses": "W", "excnodes": "x", "corespec": "X",
    "nice": "y", "schednodes": "Y", "sct": "z", "workdir": "Z",
    "cluster": ("CLUSTER", _g("cluster_name")),
    "numtasks": ("TASKS", _g("num_tasks", 1)),
    "cpus-per-task": ("CPUS_PER_TASK", _g("cpus_per_task", 1)),
    "cpuspertask": ("CPUS_PER_TASK", _g("cpus_per_task", 1)),
    "ntpernode": ("NTASKS_PER_NODE", lambda j, now: str(j["ntasks_per_node"]) if j.get("ntasks_per_node") else "N/A"),
    "stdout": ("STDOUT", lambda j, now: j.get("stdout_path") or j.get("stdout") or ""),
    "stderr": ("STDERR", lambda j, now: j.get("stderr_path") or j.get("stderr") or j.get("stdout_path") or j.get("stdout") or ""),
    "stdin": ("STDIN", lambda j, now: j.get("stdin") or "/dev/null"),
    "eligibletime": ("ELIGIBLE_TIME", lambda j, now: _slurm_time(j.get("eligible_time"))),
    "accruetime": ("ACCRUE_TIME", lambda j, now: _slurm_time(j.get("eligible_time"))),
    "pendingtime": ("PENDING_TIME", _q_pending_time),
    "lastschedeval": ("LAST_SCHED_EVAL", lambda j, now: _slurm_time(j.get("start_time") or j.get("submit_time"))),
    "exit_code": ("EXIT_CODE", lambda j, now: f"{j.get('exit_code', 0)}:{j.get('exit_signal', 0)}"),
    "derivedec": ("DERIVED_EC", lambda j, now: f"{j.get('exit_code', 0)}:{j.get('exit_signal', 0)}"),
    "restartcnt": ("RESTARTCNT", _g("restarts", 0)),
    "requeue": ("REQUEUE", lambda j, now: "1" if j.get("requeue") else "0"),
    "batchflag": ("BATCH_FLAG", lambda j, now: "1"),
    "maxnodes": ("MAX_NODES", _g("num_nodes", 0)),
    "maxcpus": ("MAX_CPUS", _g("num_cpus", 0)),
    "mintime": ("MIN_TIME", lambda j, now: "0"),
    "allocnodes": ("ALLOC_NODES", _g("submit_host")),
    "allocsid": ("ALLOC_SID", lambda j, now: "0"),
    "associd": ("ASSOC_ID", lambda j, now: "0"),
    "network": ("NETWORK", lambda j, now: NULL),
    "deadline": ("DEADLINE", lambda j, now: "N/A"),
    "reboot": ("REBOOT", lambda j, now: "0"),
    "tres": ("TRES_ALLOC", lambda j, now: job_tres(j, alloc=True) if j.get("nodes") else ""),
    "tres-alloc": ("TRES_ALLOC", lambda j, now: job_tres(j, alloc=True) if j.get("nodes") else ""),
}


_USED = ("run_time", "state", "start_time", "start_estimated", "end_time", "suspend_time")

# code -> job keys its value needs (squeue asks the API for only these: pollers are frequent).
SQUEUE_CODE_FIELDS = {
    "a": ("account",), "A": ("job_id",), "b": ("gres",), "B": ("batch_host",),
    "c": ("cpus_per_task", "ntasks_per_node"), "C": ("num_cpus",), "d": (), "D": ("num_nodes",),
    "e": ("end_time", "time_limit"), "E": ("dependency",), "f": ("features",),
    "F": ("array_job_id", "job_id"), "g": ("group", "gid"), "G": ("gid",), "h": ("exclusive",),
    "H": (), "i": ("display_id", "job_id"), "I": (), "j": ("name",), "J": (), "k": ("comment",),
    "K": ("array_spec", "array_task_id"), "l": ("time_limit",), "L": ("time_limit",) + _USED,
    "m": ("mem_per_node", "mem_per_cpu"), "M": _USED, "n": ("nodelist_req",), "N": ("nodelist",),
    "o": ("command",), "O": (), "p": ("priority",), "P": ("partition",), "q": ("qos",),
    "Q": ("priority",), "r": ("reason",), "R": ("state", "reason", "nodelist"), "S": ("start_time",),
    "t": ("state",), "T": ("state",), "u": ("user",), "U": ("uid",), "v": ("reservation",),
    "V": ("submit_time",), "w": ("wckey",), "W": ("licenses",), "x": ("exclude",), "X": (),
    "y": ("nice",), "Y": ("sched_nodes",), "z": (), "Z": ("workdir",),
}
#: Keys squeue always needs: id matching, -r expansion and the default sort.
SQUEUE_BASE_FIELDS = ("job_id", "display_id", "array_job_id", "array_task_id", "array_spec", "state",
                      "partition", "priority", "start_time", "start_estimated")


def squeue_fields(columns, extra=()):
    """The job keys to ask the API for, or None (everything) if a column's needs are unknown."""
    keys = set(SQUEUE_BASE_FIELDS) | set(extra)
    for col in columns:
        if col.func is None:
            continue
        if col.code not in SQUEUE_CODE_FIELDS:
            return None
        keys.update(SQUEUE_CODE_FIELDS[col.code])
    return sorted(keys)


def parse_squeue_format(fmt):
    """Compile a squeue ``-o`` format; returns ``(columns, invalid_codes)``."""
    return _parse_percent_format(fmt, SQUEUE_CODES, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_squeue_long_format(spec):
    """Compile a squeue ``-O`` spec (``Name[:[.]width][suffix],...``); returns ``(columns, invalid)``.

    Names are case-insensitive; without ``:width`` a field is 20 wide,
    left-justified, with no separator (Slurm's behaviour).
    """
    columns, errors = [], []
    for token in spec.split(","):
        if not token:
            continue
        name, colon, rest = token.partition(":")
        right, width, suffix = False, 20, ""
        if colon:
            if rest.startswith("."):
                right, rest = True, rest[1:]
            k = 0
            while k < len(rest) and rest[k] in "0123456789":
                k += 1
            width = int(rest[:k]) if k else 0
            suffix = rest[k:]
        key = name.lower()
        entry = SQUEUE_LONG_FIELDS.get(key)
        if entry is None and key.startswith("numtask"):
            entry = SQUEUE_LONG_FIELDS["numtasks"]
        if entry is None:
            errors.append(name)
            columns.append(_literal(suffix))
            continue
        title, func = SQUEUE_CODES[entry] if isinstance(entry, str) else entry
        columns.append(Column(entry if isinstance(entry, str) else key, title, func, width, right, suffix))
    return columns, errors


def _render(columns, record, now, uncut_titles=_UNCUT_TITLES):
    out = []
    for col in columns:
        if col.func is not None:
            if record is None:
                out.append(pad(col.title, col.width, col.right, col.title not in uncut_titles))
            else:
                value = col.func(record, now)
                cut = True
                if isinstance(value, tuple):
                    value, cut = value
                out.append(pad(value, col.width, col.right, cut))
        out.append(col.suffix)
    return "".join(out)


def format_squeue(jobs, columns, header=True, now=None):
    """squeue's table: an optional header line, then one line per job dict."""
    now = _time.time() if now is None else now
    lines = [_render(columns, None, now)] if header else []
    lines.extend(_render(columns, job, now) for job in jobs)
    return "".join(line + "\n" for line in lines)


def format_squeue_steps(jobs, header=True, now=None):
    """``squeue -s``: one line per step of the given jobs (``%.15i %.8j %.9P %.8u %.9M %N``)."""
    now = _time.time() if now is None else now
    lines = []
    if header:
        lines.append(f"{pad('STEPID', 15, True)} {pad('NAME', 8, True)} {pad('PARTITION', 9, True)} "
                     f"{pad('USER', 8, True)} {pad('TIME', 9, True)} NODELIST")
    for job in jobs:
        for step in job.get("steps") or []:
            if step.get("state") not in ("RUNNING", "COMPLETING", None):
                continue
            sid = f"{job.get('display_id') or job['job_id']}.{step.get('step_id')}"
            used = max(0, int(now - step["start_time"])) if step.get("start_time") else 0
            lines.append(f"{pad(sid, 15, True)} {pad(step.get('name') or '', 8, True)} "
                         f"{pad(job.get('partition', ''), 9, True)} {pad(job.get('user', ''), 8, True)} "
                         f"{pad(_secs(used), 9, True, False)} {step.get('nodelist') or ''}")
    return "".join(line + "\n" for line in lines)
