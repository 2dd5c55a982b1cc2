"""Pure output formatters of the Slurm-dialect commands (no I/O, no client).

Each function takes the plain dicts of ``batch_backend.model`` and returns the
exact text Slurm 22.05 prints (SLURM_DIALECT sections 5-9), so every byte can
be tested without a controller:

* squeue: the ``-o`` engine (``%[.][width]code``) and ``-O`` fields, which both
  compile to one list of columns (Slurm's ``_print_str`` padding/cutting rules);
* sacct: fixed-width, ``-p`` and ``-P`` tables over Slurm's field table;
* scontrol: ``show job|node|partition|config`` records;
* sinfo: the ``-o`` engine over partition/state groups or single nodes.

Times are epoch seconds, printed in local time through ``timespec``; ``now``
is a parameter so tests are deterministic.
"""

import time as _time

from .. import model, timespec

NULL = "(null)"

# =============================================================================
# shared helpers
# =============================================================================


def pad(text, width, right=False, cut=True):
    """Slurm's ``_print_str``: *width* pads; ``.`` (right) right-justifies.

    Left-justified values are always cut to *width* (``%.Ns``); right-justified
    ones are cut only when *cut* (node lists and durations never are). Width 0
    prints the value as it is.
    """
    text = "" if text is None else str(text)
    if width <= 0:
        return text
    if right:
        text = text.rjust(width)
        return text[:width] if cut else text
    return text[:width].ljust(width)


def _or_null(value):
    return NULL if value in (None, "") else str(value)


def _secs(seconds):
    """squeue/sinfo ``_print_secs``: ``M:SS``, ``H:MM:SS``, ``D-HH:MM:SS``."""
    if seconds < 0 or seconds > 365 * 86400:
        return "INVALID"
    return timespec.format_duration(seconds)


def _slurm_time(epoch):
    """squeue ``_print_time``: a date or ``N/A``."""
    return timespec.format_datetime(epoch) if epoch else "N/A"


def job_state_code(state):
    return model.state_code(state)


def time_used(job, now):
    """Seconds a job has run (squeue ``%M``, scontrol ``RunTime``), as Slurm computes them."""
    if job.get("run_time") is not None:
        return max(0, int(job["run_time"]))
    start = job.get("start_time")
    state = job.get("state")
    if not start or state == "PENDING" or job.get("start_estimated"):
        return 0
    if state in ("RUNNING", "CONFIGURING"):
        end = now
    elif state == "SUSPENDED":
        end = job.get("suspend_time") or now
    else:
        end = job.get("end_time") or now
    return max(0, int(end - start))


def job_mem_total(job):
    """Total MB a job asks for (None when it asked for nothing)."""
    if job.get("mem_per_node"):
        return job["mem_per_node"] * max(1, job.get("num_nodes") or 1)
    if job.get("mem_per_cpu"):
        return job["mem_per_cpu"] * max(1, job.get("num_cpus") or 1)
    return None


def job_tres(job, alloc=False, alphabetic=False):
    """``cpu=3,mem=4G,node=1,billing=3[,gres/gpu=2]`` (TRES id order) or sacct's alphabetic order."""
    if alloc:
        nodes = len(job.get("nodes") or []) or job.get("num_nodes") or 0
        if job.get("gpus_per_node"):
            gpus = sum(len(v) for v in job["gpus_per_node"].values())
        else:
            gpus = model.gpu_count(job.get("gres")) * nodes
    else:
        nodes = job.get("num_nodes") or 1
        gpus = model.gpu_count(job.get("gres")) * nodes
    cpus = job.get("num_cpus") or 0
    items = [("cpu", str(cpus))]
    mem = job_mem_total(job)
    if mem:
        items.append(("mem", timespec.format_mem(mem)))
    items.append(("node", str(nodes)))
    items.append(("billing", str(cpus)))
    if gpus:
        items.append(("gres/gpu", str(gpus)))
    if alphabetic:
        items.sort()
    return ",".join(f"{k}={v}" for k, v in items)


# =============================================================================
# squeue
# =============================================================================

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


class Column:
    """One compiled output column: its code, title, value function, width, justification, suffix.

    A literal (text before the first ``%``, or an invalid code) has no function.
    """

    __slots__ = ("code", "title", "func", "width", "right", "suffix")

    def __init__(self, code, title, func, width=0, right=False, suffix=""):
        self.code, self.title, self.func = code, title, func
        self.width, self.right, self.suffix = width, right, suffix


def _literal(text):
    return Column(None, None, None, 0, False, text)


def _parse_percent_format(fmt, codes, all_codes):
    """Shared ``-o`` parser of squeue and sinfo (Slurm's strtok on '%').

    Returns ``(columns, errors)``: text before the first ``%`` is a literal
    prefix; each ``%[.][width]code`` token is a column whose suffix is the text
    up to the next ``%``. ``%all`` means every known code, ``|``-separated. Unknown
    codes print as typed and are reported in *errors*.
    """
    columns, errors = [], []
    format_all = fmt.lower() == "%all"
    if format_all:
        fmt = "|".join("%" + c for c in all_codes if c in codes)
    first = fmt.find("%")
    if first < 0:
        return [_literal(fmt)], errors
    if first > 0:
        columns.append(_literal(fmt[:first]))
    for token in fmt[first:].split("%"):
        if not token:
            continue  # strtok skips empty tokens, so '%%' prints nothing
        i = 0
        right = token.startswith(".")
        if right:
            i = 1
        j = i
        while j < len(token) and token[j].isdigit():
            j += 1
        width = int(token[i:j]) if j > i else 0
        code = token[j:j + 1]
        suffix = token[j + 1:]
        if code in codes:
            title, func = codes[code]
            columns.append(Column(code, title, func, width, right, suffix))
        else:
            errors.append(code or token)
            columns.append(_literal("%" + token))
    return columns, errors


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
            while k < len(rest) and rest[k].isdigit():
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


def expand_array_spec(spec):
    """``'2-3%2'`` / ``'3,5-8'`` / ``'0-6:2'`` -> task indices (for ``squeue -r``)."""
    body = spec.split("%", 1)[0]
    out = []
    for part in filter(None, body.split(",")):
        rng, _, step = part.partition(":")
        lo, dash, hi = rng.partition("-")
        if dash:
            out.extend(range(int(lo), int(hi) + 1, int(step or 1)))
        else:
            out.append(int(lo))
    return out


def expand_array_rows(jobs):
    """``squeue -r``: split each pending ``A_[x-y]`` record into one row per task."""
    out = []
    for job in jobs:
        spec = job.get("array_spec")
        if not spec:
            out.append(job)
            continue
        master = job.get("array_job_id") or job["job_id"]
        for index in expand_array_spec(spec):
            row = dict(job, array_spec=None, array_task_id=index, display_id=f"{master}_{index}")
            out.append(row)
    return out


def _state_rank(job):
    return job_state_code(job.get("state", ""))


_SORT_KEYS = {
    "B": lambda j: j.get("batch_host") or "",
    "C": lambda j: j.get("num_cpus") or 0,
    "D": lambda j: j.get("num_nodes") or 0,
    "e": lambda j: j.get("end_time") or 0,
    "g": lambda j: j.get("group") or "",
    "G": lambda j: j.get("gid") or 0,
    "i": lambda j: (j.get("array_job_id") or j.get("job_id") or 0,
                    j.get("array_task_id") if j.get("array_task_id") is not None else -1),
    "j": lambda j: j.get("name") or "",
    "l": lambda j: j.get("time_limit") if j.get("time_limit") is not None else float("inf"),
    "m": lambda j: j.get("mem_per_node") or j.get("mem_per_cpu") or 0,
    "N": lambda j: j.get("nodelist") or "",
    "p": lambda j: j.get("priority") or 0,
    "P": lambda j: j.get("partition") or "",
    "Q": lambda j: j.get("priority") or 0,
    "S": lambda j: j.get("start_time") or 0,
    "t": _state_rank,
    "T": lambda j: j.get("state") or "",
    "u": lambda j: j.get("user") or "",
    "U": lambda j: j.get("uid") or 0,
    "v": lambda j: j.get("reservation") or "",
    "V": lambda j: j.get("submit_time") or 0,
}


def sort_jobs(jobs, spec=None, now=None):
    """Order jobs like squeue: default ``P,t,-p`` (partition, state code, priority desc).

    Keys are applied as stable sorts from the last to the first, after a
    start-time-descending pre-sort, as Slurm does. Raises ``ValueError`` for
    an unknown key letter.
    """
    now = _time.time() if now is None else now
    jobs = sorted(jobs, key=_SORT_KEYS["i"])
    jobs.sort(key=lambda j: j.get("start_time") or 0, reverse=True)
    spec = spec or "P,t,-p"
    keys = []
    for item in filter(None, spec.split(",")):
        reverse = item.startswith("-")
        letter = item.lstrip("+-")
        for ch in letter:
            if ch == "M":
                keys.append((lambda j: time_used(j, now), reverse))
            elif ch == "L":
                keys.append((lambda j: (j.get("time_limit") or 0) * 60 - time_used(j, now), reverse))
            elif ch in _SORT_KEYS:
                keys.append((_SORT_KEYS[ch], reverse))
            else:
                raise ValueError(f"Invalid sort specification: {ch}")
    for key, reverse in reversed(keys):
        jobs.sort(key=key, reverse=reverse)
    return jobs


# =============================================================================
# sacct
# =============================================================================

SACCT_DEFAULT = "JobID,JobName,Partition,Account,AllocCPUS,State,ExitCode"
SACCT_BRIEF = "JobID,State,ExitCode"
SACCT_LONG = ("JobID,JobIDRaw,JobName,Partition,MaxVMSize,MaxVMSizeNode,MaxVMSizeTask,AveVMSize,"
              "MaxRSS,MaxRSSNode,MaxRSSTask,AveRSS,MaxPages,MaxPagesNode,MaxPagesTask,AvePages,"
              "MinCPU,MinCPUNode,MinCPUTask,AveCPU,NTasks,AllocCPUS,Elapsed,State,ExitCode,"
              "AveCPUFreq,ReqCPUFreqMin,ReqCPUFreqMax,ReqCPUFreqGov,ReqMem,ConsumedEnergy,"
              "MaxDiskRead,MaxDiskReadNode,MaxDiskReadTask,AveDiskRead,MaxDiskWrite,"
              "MaxDiskWriteNode,MaxDiskWriteTask,AveDiskWrite,ReqTRES,AllocTRES,TRESUsageInAve,"
              "TRESUsageInMax,TRESUsageInMaxNode,TRESUsageInMaxTask,TRESUsageInMin,"
              "TRESUsageInMinNode,TRESUsageInMinTask,TRESUsageInTot,TRESUsageOutMax,"
              "TRESUsageOutMaxNode,TRESUsageOutMaxTask,TRESUsageOutAve,TRESUsageOutTot")

# Value kinds, as Slurm's print_fields_* functions treat them in fixed-width output:
# "s" strings (cut with '+'), "d" dates (cut, no '+'), "n" numbers and "t" durations (never cut).


def _acct_state(job):
    state = job.get("state", "")
    if state == "CONFIGURING":
        return "PENDING"  # submitit would read CONFIGURING as finished
    if state == "CANCELLED" and job.get("cancelled_by") is not None:
        return f"CANCELLED by {job['cancelled_by']}"
    return state


def _step_state(step):
    state = step.get("state") or ""
    return "PENDING" if state == "CONFIGURING" else state


def _acct_start(rec):
    if rec.get("start_estimated"):
        return None
    return rec.get("start_time")


def _acct_end(rec):
    if rec.get("state", "") in model.ACTIVE_STATES:
        return None
    return rec.get("end_time")


def _elapsed(rec, now):
    start = _acct_start(rec)
    if not start:
        return 0
    end = _acct_end(rec) or now
    return max(0, int(end - start))


def _exit(rec):
    return f"{rec.get('exit_code') or 0}:{rec.get('exit_signal') or 0}"


def _derived_exit(job):
    if job.get("derived_exit_code") is not None:
        return str(job["derived_exit_code"])
    codes = [(s.get("exit_code") or 0, s.get("exit_signal") or 0) for s in job.get("steps") or []]
    codes.append((job.get("exit_code") or 0, job.get("exit_signal") or 0))
    return "%d:%d" % max(codes)


def _cpu_time(seconds):
    """sacct TotalCPU/UserCPU/SystemCPU: ``MM:SS.mmm``, ``HH:MM:SS``, ``D-HH:MM:SS``."""
    if seconds is None:
        return ""
    seconds = float(seconds)
    whole = int(seconds)
    if whole >= 3600:
        return timespec.format_hms(whole)
    return f"{whole // 60:02d}:{whole % 60:02d}.{int(round((seconds - whole) * 1000)) % 1000:03d}"


def _nnodes(rec):
    if rec.get("num_nodes") is not None and "step_id" not in rec:
        return str(rec["num_nodes"])
    nodelist = rec.get("nodelist")
    if not nodelist:
        return str(rec.get("num_nodes") or 1)
    from .. import hostlist
    try:
        return str(len(hostlist.expand(nodelist)))
    except ValueError:
        return "1"


def _b(fn):
    """A field computed the same way on job and step rows."""
    return (fn, fn)


def _blank(rec, ctx):
    return ""


def _job_id_text(job):
    return str(job.get("display_id") or job.get("job_id"))


def _step_id_text(job, step, raw=False):
    base = str(job.get("job_id")) if raw else _job_id_text(job)
    return f"{base}.{step.get('step_id')}"


# name -> (default width, kind, job getter, step getter); getters take (record, ctx)
# where ctx is a dict {"now", "job" (for steps)}. Step getter None = blank on steps.
SACCT_FIELDS = {}


def _field(name, width, kind, job_fn, step_fn=None):
    SACCT_FIELDS[name] = (width, kind, job_fn, step_fn)


_field("Account", 10, "s", lambda r, c: r.get("account") or "", lambda r, c: c["job"].get("account") or "")
_field("AdminComment", 15, "s", lambda r, c: r.get("admin_comment") or "")
_field("AllocCPUS", 10, "n", lambda r, c: str(0 if r.get("state") == "PENDING" and not r.get("nodes") else r.get("num_cpus") or 0),
       lambda r, c: str(r.get("num_cpus") or 0))
_field("AllocNodes", 10, "s", lambda r, c: str(len(r.get("nodes") or [])), lambda r, c: _nnodes(r))
_field("AllocTRES", 10, "s", lambda r, c: job_tres(r, alloc=True, alphabetic=True) if r.get("nodes") else "",
       lambda r, c: f"cpu={r.get('num_cpus') or 0},node={_nnodes(r)}")
_field("AssocID", 7, "n", lambda r, c: str(r.get("assoc_id") or 0))
for _name, _width in (("AveCPU", 10), ("AveCPUFreq", 10), ("AveDiskRead", 14), ("AveDiskWrite", 14),
                      ("AvePages", 10), ("AveRSS", 10), ("AveVMSize", 10)):
    _field(_name, _width, "s", _blank, lambda r, c, k=_name.lower(): str(r.get(k) or ""))
_field("BlockID", 16, "s", _blank)
_field("Cluster", 10, "s", lambda r, c: r.get("cluster_name") or c.get("cluster") or "",
       lambda r, c: c["job"].get("cluster_name") or c.get("cluster") or "")
_field("Comment", 14, "s", lambda r, c: r.get("comment") or "")
_field("Constraints", 19, "s", lambda r, c: r.get("features") or "")
_field("ConsumedEnergy", 14, "s", lambda r, c: "0", lambda r, c: "0")
_field("ConsumedEnergyRaw", 17, "n", lambda r, c: "0", lambda r, c: "0")
_field("Container", 19, "s", _blank)
_field("CPUTime", 10, "t", lambda r, c: timespec.format_hms(_elapsed(r, c["now"]) * (r.get("num_cpus") or 0)),
       lambda r, c: timespec.format_hms(_elapsed(r, c["now"]) * (r.get("num_cpus") or 0)))
_field("CPUTimeRAW", 10, "n", lambda r, c: str(_elapsed(r, c["now"]) * (r.get("num_cpus") or 0)),
       lambda r, c: str(_elapsed(r, c["now"]) * (r.get("num_cpus") or 0)))
_field("DBIndex", -21, "n", lambda r, c: str(r.get("job_id")))
_field("DerivedExitCode", 15, "s", lambda r, c: _derived_exit(r))
_field("Elapsed", 10, "t", *_b(lambda r, c: timespec.format_hms(_elapsed(r, c["now"]))))
_field("ElapsedRaw", 10, "n", *_b(lambda r, c: str(_elapsed(r, c["now"]))))
_field("Eligible", 19, "d", lambda r, c: timespec.format_datetime(r.get("eligible_time")),
       lambda r, c: timespec.format_datetime(r.get("start_time")))
_field("End", 19, "d", *_b(lambda r, c: timespec.format_datetime(_acct_end(r))))
_field("ExitCode", 8, "s", *_b(lambda r, c: _exit(r)))
_field("Extra", 14, "s", _blank)
_field("FailedNode", 8, "s", _blank)
_field("Flags", 19, "s", lambda r, c: r.get("flags") or "")
_field("GID", 6, "n", lambda r, c: str(r.get("gid", "")))
_field("Group", 9, "s", lambda r, c: r.get("group") or "")
_field("JobID", -12, "s", lambda r, c: _job_id_text(r), lambda r, c: _step_id_text(c["job"], r))
_field("JobIDRaw", -12, "s", lambda r, c: str(r.get("job_id")), lambda r, c: _step_id_text(c["job"], r, raw=True))
_field("JobName", 10, "s", lambda r, c: r.get("name") or "",
       lambda r, c: r.get("name") or str(r.get("step_id")))
_field("Layout", 9, "s", _blank)
_field("Licenses", 10, "s", _blank)
for _name, _width, _kind in (("MaxDiskRead", 12, "s"), ("MaxDiskReadNode", 15, "s"), ("MaxDiskReadTask", 15, "n"),
                             ("MaxDiskWrite", 12, "s"), ("MaxDiskWriteNode", 16, "s"), ("MaxDiskWriteTask", 16, "n"),
                             ("MaxPages", 8, "s"), ("MaxPagesNode", 12, "s"), ("MaxPagesTask", 14, "n"),
                             ("MaxRSSNode", 10, "s"), ("MaxRSSTask", 10, "n"), ("MaxVMSize", 10, "s"),
                             ("MaxVMSizeNode", 14, "s"), ("MaxVMSizeTask", 14, "n"), ("McsLabel", 12, "s"),
                             ("MinCPU", 10, "s"), ("MinCPUNode", 10, "s"), ("MinCPUTask", 10, "n")):
    _field(_name, _width, _kind, _blank, lambda r, c, k=_name.lower(): str(r.get(k) or ""))
_field("MaxRSS", 10, "s", _blank,
       lambda r, c: f"{int(r['max_rss_mb'] * 1024)}K" if r.get("max_rss_mb") is not None else "")
_field("NCPUS", 10, "n", lambda r, c: str(0 if r.get("state") == "PENDING" and not r.get("nodes") else r.get("num_cpus") or 0),
       lambda r, c: str(r.get("num_cpus") or 0))
_field("NNodes", 8, "n", *_b(lambda r, c: _nnodes(r)))
_field("NodeList", 15, "s", *_b(lambda r, c: r.get("nodelist") or "None assigned"))
_field("NTasks", 8, "n", _blank, lambda r, c: str(r.get("num_tasks") or ""))
_field("Partition", 10, "s", lambda r, c: r.get("partition") or "")
_field("Planned", 10, "t", lambda r, c: timespec.format_hms(
    max(0, int((_acct_start(r) or c["now"]) - (r.get("eligible_time") or r.get("submit_time") or c["now"])))))
_field("PlannedCPU", 10, "t", _blank)
_field("PlannedCPURAW", 13, "n", _blank)
_field("Priority", 10, "n", lambda r, c: str(r.get("priority") or 0))
_field("QOS", 10, "s", lambda r, c: r.get("qos") or "")
_field("QOSRAW", 6, "n", lambda r, c: "1")
_field("QOSREQ", 10, "s", lambda r, c: r.get("qos") or "")
_field("Reason", 22, "s", lambda r, c: r.get("reason") or "None")
_field("ReqCPUFreq", 10, "s", lambda r, c: "Unknown", lambda r, c: "Unknown")
_field("ReqCPUFreqGov", 13, "s", lambda r, c: "Unknown", lambda r, c: "Unknown")
_field("ReqCPUFreqMax", 13, "s", lambda r, c: "Unknown", lambda r, c: "Unknown")
_field("ReqCPUFreqMin", 13, "s", lambda r, c: "Unknown", lambda r, c: "Unknown")
_field("ReqCPUS", 8, "n", lambda r, c: str(r.get("num_cpus") or 0), lambda r, c: str(r.get("num_cpus") or 0))
_field("ReqMem", 10, "s", lambda r, c: timespec.format_mem(job_mem_total(r) or 0),
       lambda r, c: timespec.format_mem(job_mem_total(c["job"]) or 0))
_field("ReqNodes", 8, "s", lambda r, c: str(r.get("num_nodes") or 1))
_field("ReqTRES", 10, "s", lambda r, c: job_tres(r, alphabetic=True))
_field("Reservation", 20, "s", lambda r, c: r.get("reservation") or "")
_field("ReservationId", 8, "n", lambda r, c: "0" if not r.get("reservation") else "1")
_field("Restarts", 8, "n", lambda r, c: str(r.get("restarts") or 0))
_field("SegmentSize", 11, "n", _blank)
_field("SLUID", 14, "s", _blank)
_field("Start", 19, "d", *_b(lambda r, c: timespec.format_datetime(_acct_start(r))))
_field("State", 10, "s", lambda r, c: _acct_state(r), lambda r, c: _step_state(r))
_field("StdErr", 20, "s", lambda r, c: r.get("stderr_path") or r.get("stdout_path") or "")
_field("StdIn", 20, "s", lambda r, c: r.get("stdin") or "")
_field("StdOut", 20, "s", lambda r, c: r.get("stdout_path") or "")
_field("Submit", 19, "d", lambda r, c: timespec.format_datetime(r.get("submit_time")),
       lambda r, c: timespec.format_datetime(r.get("start_time")))
_field("SubmitLine", 20, "s", lambda r, c: r.get("submit_line") or "")
_field("Suspended", 10, "t", lambda r, c: "00:00:00", lambda r, c: "00:00:00")
_field("SystemComment", 15, "s", _blank)
_field("SystemCPU", 10, "s", _blank, lambda r, c: _cpu_time(r.get("system_cpu")))
_field("Timelimit", 10, "s", lambda r, c: timespec.format_hms(None if r.get("time_limit") is None else r["time_limit"] * 60))
_field("TimelimitRaw", 10, "s", lambda r, c: "UNLIMITED" if r.get("time_limit") is None else str(r["time_limit"]))
_field("TotalCPU", 10, "s", _blank, lambda r, c: _cpu_time(r.get("total_cpu")))
for _name, _width in (("TRESUsageInAve", 14), ("TRESUsageInMax", 14), ("TRESUsageInMaxNode", 18),
                      ("TRESUsageInMaxTask", 18), ("TRESUsageInMin", 14), ("TRESUsageInMinNode", 18),
                      ("TRESUsageInMinTask", 18), ("TRESUsageInTot", 14), ("TRESUsageOutAve", 15),
                      ("TRESUsageOutMax", 15), ("TRESUsageOutMaxNode", 19), ("TRESUsageOutMaxTask", 19),
                      ("TRESUsageOutMin", 15), ("TRESUsageOutMinNode", 19), ("TRESUsageOutMinTask", 19),
                      ("TRESUsageOutTot", 15)):
    _field(_name, _width, "s", _blank, _blank)
_field("UID", 6, "n", lambda r, c: str(r.get("uid", "")))
_field("User", 9, "s", lambda r, c: r.get("user") or "")
_field("UserCPU", 10, "s", _blank, lambda r, c: _cpu_time(r.get("user_cpu")))
_field("WCKey", 10, "s", lambda r, c: r.get("wckey") or "")
_field("WCKeyID", 10, "n", lambda r, c: "0")
_field("WorkDir", 20, "s", lambda r, c: r.get("workdir") or "")
# Slurm's table is alphabetical (case-insensitive): '-o' abbreviations match the first hit.
SACCT_FIELD_ORDER = sorted(SACCT_FIELDS, key=str.lower)


class SacctField:
    __slots__ = ("name", "width", "kind", "job_fn", "step_fn")

    def __init__(self, name, width):
        self.name, self.width = name, width
        _, self.kind, self.job_fn, self.step_fn = SACCT_FIELDS[name]


def parse_sacct_fields(spec):
    """``JobID,state,SubmitLine%512`` -> list of :class:`SacctField`.

    Names are case-insensitive and may be abbreviated (the first field in
    Slurm's alphabetical table that starts with the text wins); ``%N`` sets
    the width. Raises ``ValueError('Invalid field requested: "X"')``.
    """
    fields = []
    for token in filter(None, spec.split(",")):
        name, pct, width_text = token.partition("%")
        low = name.strip().lower()
        match = next((f for f in SACCT_FIELD_ORDER if f.lower() == low), None)
        if match is None and low:
            match = next((f for f in SACCT_FIELD_ORDER if f.lower().startswith(low)), None)
        if match is None:
            raise ValueError(f'Invalid field requested: "{name}"')
        width = SACCT_FIELDS[match][0]
        if pct:
            try:
                new = int(width_text)
            except ValueError:
                new = 0
            if new:
                width = new
        fields.append(SacctField(match, width))
    return fields


def _fixed(value, width, kind):
    """One fixed-width sacct cell plus its trailing space (print_fields.c)."""
    size = abs(width)
    right = width > 0
    if kind == "s" and len(value) > size:
        value = value[:size - 1] + "+"
    elif kind == "d":
        value = value[:size]
    return (value.rjust(size) if right else value.ljust(size)) + " "


def sacct_rows(jobs, allocations_only=False, step_filter=None):
    """Yield ``(record, job_or_None)`` in sacct order: each job, then its steps.

    Steps come ``batch``, ``extern``, then numbered ones in order. With
    *step_filter* (a set of ``(job_id_text, step_id_text)``), only those steps
    of those jobs are shown, without their job row.
    """
    order = {"batch": -2, "extern": -1}
    for job in jobs:
        steps = sorted(job.get("steps") or [],
                       key=lambda s: order.get(str(s.get("step_id")), s.get("step_id") if isinstance(s.get("step_id"), int) else 10**9))
        if step_filter is None:
            yield job, None
            if allocations_only:
                continue
            for step in steps:
                yield step, job
        else:
            for step in steps:
                if (str(job.get("job_id")), str(step.get("step_id"))) in step_filter or \
                        (_job_id_text(job), str(step.get("step_id"))) in step_filter:
                    yield step, job


def format_sacct(rows, fields, header=True, parsable=None, delimiter="|", now=None, cluster=""):
    """sacct's table over ``(record, job_or_None)`` rows.

    *parsable*: None (fixed width, every column followed by one space), ``"p"``
    (``--parsable``: a delimiter after every field) or ``"P"``
    (``--parsable2``: between fields only).
    """
    now = _time.time() if now is None else now
    lines = []
    last = len(fields) - 1
    if header:
        if parsable:
            names = [f.name for f in fields]
            lines.append(delimiter.join(names) + (delimiter if parsable == "p" else ""))
        else:
            lines.append("".join(_fixed(f.name, f.width, "d") for f in fields))
            lines.append("".join("-" * abs(f.width) + " " for f in fields))
    for record, job in rows:
        ctx = {"now": now, "job": job, "cluster": cluster}
        cells = []
        for i, f in enumerate(fields):
            fn = f.job_fn if job is None else f.step_fn
            value = fn(record, ctx) if fn is not None else ""
            if parsable:
                cells.append(value + (delimiter if parsable == "p" or i < last else ""))
            else:
                cells.append(_fixed(value, f.width, f.kind))
        lines.append("".join(cells))
    return "".join(line + "\n" for line in lines)


# =============================================================================
# scontrol show job | node | partition | config
# =============================================================================


def _record(lines, oneliner):
    if oneliner:
        return " ".join(line.strip() for line in lines if line.strip()) + "\n"
    return lines[0] + "\n" + "".join("   " + line + "\n" for line in lines[1:]) + "\n"


def _abs_path(path, workdir):
    if path and not path.startswith("/") and workdir:
        return workdir.rstrip("/") + "/" + path
    return path


def job_std_path(job, which):
    """Expanded StdOut/StdErr path of a job (scontrol, sacct): absolute, patterns filled in."""
    if which == "stderr" and not job.get("stderr"):
        which = "stdout"
    done = job.get(f"{which}_path")
    if done:
        return _abs_path(done, job.get("workdir"))
    pattern = job.get(which) or ""
    if not pattern:
        return ""
    from ..patterns import expand_output_pattern
    path = expand_output_pattern(
        pattern, job_id=job["job_id"], array_job_id=job.get("array_job_id"),
        array_task_id=job.get("array_task_id"), name=job.get("name", ""), user=job.get("user", ""),
        node=job.get("batch_host") or "%N")
    return _abs_path(path, job.get("workdir"))


def _array_throttle(job):
    if job.get("array_max_running"):
        return int(job["array_max_running"])
    spec = job.get("array_spec") or ""
    if "%" in spec:
        return int(spec.rsplit("%", 1)[1] or 0)
    return 0


def format_job(job, now=None, oneliner=False):
    """One ``scontrol show job`` record (SLURM_DIALECT section 7)."""
    now = _time.time() if now is None else now
    state = job.get("state", "")
    pending = state == "PENDING"
    started = bool(job.get("start_time")) and not job.get("start_estimated") and not pending
    if job.get("array_job_id") is not None and (job.get("array_task_id") is not None or job.get("array_spec")):
        task = job.get("array_spec") or job.get("array_task_id")
        first = (f"JobId={job['job_id']} ArrayJobId={job['array_job_id']} ArrayTaskId={task} "
                 f"ArrayTaskThrottle={_array_throttle(job)} JobName={job.get('name', '')}")
    else:
        first = f"JobId={job['job_id']} JobName={job.get('name', '')}"
    limit = job.get("time_limit")
    limit_text = timespec.format_hms(None if limit is None else limit * 60)
    start = job.get("start_time")
    if pending and not job.get("start_estimated"):
        start = None
    end = job.get("end_time")
    if pending:
        end = (start + limit * 60) if (start and limit is not None) else None
    eligible = job.get("eligible_time")
    mem_line = (f"MinMemoryCPU={timespec.format_mem(job['mem_per_cpu'])}" if job.get("mem_per_cpu")
                else f"MinMemoryNode={timespec.format_mem(job.get('mem_per_node') or 0)}")
    lines = [
        first,
        f"UserId={job.get('user', '')}({job.get('uid', '')}) GroupId={job.get('group', '')}({job.get('gid', '')}) MCS_label=N/A",
        f"Priority={job.get('priority', 0)} Nice={job.get('nice', 0)} Account={_or_null(job.get('account'))} QOS={_or_null(job.get('qos'))}",
        f"JobState={state} Reason={job.get('reason') or 'None'} Dependency={_or_null(job.get('dependency'))}",
        f"Requeue={1 if job.get('requeue') else 0} Restarts={job.get('restarts', 0)} BatchFlag=1 Reboot=0 ExitCode={_exit(job)}",
        f"RunTime={timespec.format_hms(time_used(job, now))} TimeLimit={limit_text} TimeMin=N/A",
        f"SubmitTime={timespec.format_datetime(job.get('submit_time'))} EligibleTime={timespec.format_datetime(eligible)}",
        f"AccrueTime={timespec.format_datetime(eligible)}",
        f"StartTime={timespec.format_datetime(start)} EndTime={timespec.format_datetime(end)} Deadline=N/A",
        f"SuspendTime=None SecsPreSuspend=0 LastSchedEval={timespec.format_datetime(job.get('start_time') if started else job.get('submit_time'))} Scheduler=Main",
        f"Partition={job.get('partition', '')} AllocNode:Sid={job.get('submit_host') or 'localhost'}:{job.get('alloc_sid', 0)}",
        f"ReqNodeList={_or_null(job.get('nodelist_req'))} ExcNodeList={_or_null(job.get('exclude'))}",
        f"NodeList={'' if pending else job.get('nodelist') or ''}",
    ]
    if not pending and job.get("batch_host"):
        lines.append(f"BatchHost={job['batch_host']}")
    lines += [
        f"NumNodes={job.get('num_nodes', 1)} NumCPUs={job.get('num_cpus', 1)} NumTasks={job.get('num_tasks', 1)} "
        f"CPUs/Task={job.get('cpus_per_task', 1)} ReqB:S:C:T=0:0:*:*",
        f"ReqTRES={job_tres(job)}",
        f"AllocTRES={job_tres(job, alloc=True) if (not pending and job.get('nodes')) else NULL}",
        f"Socks/Node=* NtasksPerN:B:S:C={job.get('ntasks_per_node') or 0}:0:*:* CoreSpec=*",
        f"MinCPUsNode={(job.get('cpus_per_task') or 1) * (job.get('ntasks_per_node') or 1)} {mem_line} MinTmpDiskNode=0",
        f"Features={_or_null(job.get('features'))} DelayBoot=00:00:00",
        f"OverSubscribe={'NO' if job.get('exclusive') else 'OK'} Contiguous=0 Licenses=(null) Network=(null)",
        f"Command={_or_null(job.get('command'))}",
        f"WorkDir={job.get('workdir', '')}",
    ]
    if job.get("comment"):
        lines.append(f"Comment={job['comment']}")
    lines += [
        f"StdErr={job_std_path(job, 'stderr')}",
        f"StdIn={job.get('stdin') or '/dev/null'}",
        f"StdOut={job_std_path(job, 'stdout')}",
        "Power=",
    ]
    if job.get("gres"):
        lines.append(f"TresPerNode=gres:{job['gres']}")
    return _record(lines, oneliner)


def node_state_long(node):
    """``scontrol show node`` State: ``IDLE``, ``MIXED+DRAIN``, ``DOWN+NOT_RESPONDING``..."""
    base = node.get("state", "UNKNOWN")
    flags = list(node.get("state_flags") or [])
    if base == "DRAINED":
        base = "IDLE"
        flags.insert(0, "DRAIN") if "DRAIN" not in flags else None
    elif base == "DRAINING":
        base = "ALLOCATED" if node.get("alloc_cpus", 0) >= node.get("cpus", 1) else "MIXED"
        flags.insert(0, "DRAIN") if "DRAIN" not in flags else None
    order = {"DRAIN": 0, "NOT_RESPONDING": 1}
    flags.sort(key=lambda f: order.get(f, 2))
    return "+".join([base] + flags)


def _node_cfg_tres(node):
    items = [f"cpu={node.get('cpus', 0)}", f"mem={timespec.format_mem(node.get('real_memory') or 0)}",
             f"billing={node.get('cpus', 0)}"]
    gpus = model.gpu_count(node.get("gres"))
    if gpus:
        items.append(f"gres/gpu={gpus}")
    return ",".join(items)


def _node_alloc_tres(node):
    items = []
    if node.get("alloc_cpus"):
        items.append(f"cpu={node['alloc_cpus']}")
    if node.get("alloc_memory"):
        items.append(f"mem={timespec.format_mem(node['alloc_memory'])}")
    if node.get("alloc_gpus"):
        items.append(f"gres/gpu={node['alloc_gpus']}")
    return ",".join(items)


def format_node(node, oneliner=False):
    """One ``scontrol show node`` record (Slurm 22.05 layout; trailing spaces as Slurm prints)."""
    cpus = node.get("cpus", 0)
    features = ",".join(node.get("features") or []) or NULL
    load = node.get("cpu_load")
    free = node.get("free_memory")
    lines = [
        f"NodeName={node['name']} Arch={node.get('arch') or NULL} CoresPerSocket={node.get('cores_per_socket', 1)} ",
        f"CPUAlloc={node.get('alloc_cpus', 0)} CPUEfctv={cpus} CPUTot={cpus} "
        f"CPULoad={'N/A' if load is None else '%.2f' % load}",
        f"AvailableFeatures={features}",
        f"ActiveFeatures={features}",
        f"Gres={node.get('gres') or NULL}",
        f"NodeAddr={node.get('address') or node['name']} NodeHostName={node.get('hostname') or node['name']} "
        f"Version={node.get('version') or '22.05.11'}",
    ]
    if node.get("os"):
        lines.append(f"OS={node['os']} ")
    lines += [
        f"RealMemory={node.get('real_memory', 0)} AllocMem={node.get('alloc_memory', 0)} "
        f"FreeMem={'N/A' if free is None else free} Sockets={node.get('sockets', cpus)} Boards=1",
        f"State={node_state_long(node)} ThreadsPerCore={node.get('threads_per_core', 1)} TmpDisk=0 "
        f"Weight={node.get('weight', 1)} Owner=N/A MCS_label=N/A",
        f"Partitions={','.join(node.get('partitions') or [])} ",
        f"BootTime={timespec.format_datetime(node.get('boot_time')) if node.get('boot_time') else 'None'} "
        f"SlurmdStartTime={timespec.format_datetime(node.get('boot_time')) if node.get('boot_time') else 'None'}",
        f"LastBusyTime={timespec.format_datetime(node.get('last_busy'))}",
        f"CfgTRES={_node_cfg_tres(node)}",
        f"AllocTRES={_node_alloc_tres(node)}",
        "CapWatts=n/a",
        "CurrentWatts=0 AveWatts=0",
        "ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s",
    ]
    if node.get("reason"):
        who = node.get("reason_user") or "slurm"
        when = timespec.format_datetime(node.get("reason_time"))
        lines.append(f"Reason={node['reason']} [{who}@{when}]")
    return _record(lines, oneliner)


def format_partition(part, oneliner=False):
    """One ``scontrol show partition`` record (Slurm 22.05 layout)."""
    max_time = part.get("max_time")
    default_time = part.get("default_time")
    nodes = part.get("nodes") or []
    total_cpus = part.get("total_cpus", 0)
    lines = [
        f"PartitionName={part['name']}",
        f"AllowGroups={part.get('allow_groups') or 'ALL'} AllowAccounts={part.get('allow_accounts') or 'ALL'} AllowQos=ALL",
        f"AllocNodes=ALL Default={'YES' if part.get('default') else 'NO'} QoS=N/A",
        f"DefaultTime={'NONE' if default_time is None else timespec.format_hms(default_time * 60)} "
        f"DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden={'YES' if part.get('hidden') else 'NO'}",
        f"MaxNodes={'UNLIMITED' if part.get('max_nodes') is None else part['max_nodes']} "
        f"MaxTime={timespec.format_hms(None if max_time is None else max_time * 60)} "
        f"MinNodes={part.get('min_nodes', 0)} LLN=NO MaxCPUsPerNode=UNLIMITED",
        f"Nodes={part.get('nodelist') or NULL}",
        f"PriorityJobFactor=1 PriorityTier={part.get('priority_tier', 1)} "
        f"RootOnly={'YES' if part.get('root_only') else 'NO'} ReqResv=NO OverSubscribe=NO",
        "OverTimeLimit=NONE PreemptMode=OFF",
        f"State={part.get('state', 'UP')} TotalCPUs={total_cpus} TotalNodes={len(nodes)} SelectTypeParameters=NONE",
        "JobDefaults=(null)",
        "DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED",
        f"TRES=cpu={total_cpus},node={len(nodes)},billing={total_cpus}",
    ]
    return _record(lines, oneliner)


def format_config(config, now=None):
    """``scontrol show config``: a dated header, then ``Key = Value`` lines."""
    now = _time.time() if now is None else now
    lines = [f"Configuration data as of {timespec.format_datetime(now)}"]
    for key in sorted(config, key=str.lower):
        value = config[key]
        lines.append(f"{key:<23} = {NULL if value in (None, '') else value}")
    return "\n".join(lines) + "\n"


# =============================================================================
# sinfo
# =============================================================================

SINFO_DEFAULT = "%9P %.5a %.10l %.6D %.6t %N"
SINFO_LONG = "%9P %.5a %.10l %.10s %.4r %.8h %.10g %.6D %.11T %N"
SINFO_NODES = "%N %.6D %.9P %6t"
SINFO_NODES_LONG = "%N %.6D %.9P %.11T %.4c %.8z %.6m %.8d %.6w %.8f %20E"
SINFO_SUMMARIZE = "%9P %.5a %.10l %.16F  %N"
SINFO_REASONS = "%20E %9u %19H %N"
SINFO_REASONS_LONG = "%20E %12U %19H %6t %N"
MIN_FIELD_SIZE = 9  # Slurm's MIN_NODE_FIELD_SIZE / MIN_PART_FIELD_SIZE

_NODE_BASE_NUM = {"UNKNOWN": 0, "DOWN": 1, "IDLE": 2, "ALLOCATED": 3, "MIXED": 5, "FUTURE": 6,
                  "DRAINED": 2, "DRAINING": 3, "COMPLETING": 3}
_COMPACT = {"IDLE": "idle", "ALLOCATED": "alloc", "MIXED": "mix", "DOWN": "down", "UNKNOWN": "unk",
            "DRAINED": "drain", "DRAINING": "drng", "COMPLETING": "comp", "FUTURE": "futr"}
_LONG = {"IDLE": "idle", "ALLOCATED": "allocated", "MIXED": "mixed", "DOWN": "down", "UNKNOWN": "unknown",
         "DRAINED": "drained", "DRAINING": "draining", "COMPLETING": "completing", "FUTURE": "future"}


def _drain_base(node):
    """Fold the DRAIN flag into DRAINED/DRAINING as Slurm's node_state_string does."""
    base = node.get("state", "UNKNOWN")
    flags = node.get("state_flags") or []
    if "DRAIN" in flags and base not in ("DRAINED", "DRAINING"):
        base = "DRAINING" if base in ("ALLOCATED", "MIXED", "COMPLETING") else "DRAINED"
    return base


def node_state_compact(node):
    """sinfo ``%t``: ``idle``, ``mix``, ``alloc``, ``drain``, ``drng``, ``down``, + ``*`` if not responding."""
    base = _drain_base(node)
    star = "*" if "NOT_RESPONDING" in (node.get("state_flags") or []) else ""
    return _COMPACT.get(base, base.lower()[:5]) + star


def node_state_name(node):
    """sinfo ``%T``: ``idle``, ``mixed``, ``allocated``, ``drained``, ``draining``, ``down`` (+ ``*``)."""
    base = _drain_base(node)
    star = "*" if "NOT_RESPONDING" in (node.get("state_flags") or []) else ""
    return _LONG.get(base, base.lower()) + star


def node_state_num(node):
    """Slurm's numeric node state (base | DRAIN 0x200 | NO_RESPOND 0x800), sinfo's ``-t`` sort key."""
    raw = node.get("state", "UNKNOWN")
    flags = node.get("state_flags") or []
    num = _NODE_BASE_NUM.get(raw, 0)
    if raw == "DRAINING":
        num = 3 if node.get("alloc_cpus", 0) >= node.get("cpus", 1) else 5
    if "DRAIN" in flags or raw in ("DRAINED", "DRAINING"):
        num |= 0x200
    if "NOT_RESPONDING" in flags:
        num |= 0x800
    return num


def _range(values, fmt=str, plus=True):
    """sinfo min/max: ``4`` or ``4+`` (``_build_min_max``), or ``lo-hi`` when not *plus*."""
    values = [v for v in values if v is not None]
    if not values:
        return "N/A"
    lo, hi = min(values), max(values)
    if lo == hi:
        return fmt(hi)
    return f"{fmt(lo)}+" if plus else f"{fmt(lo)}-{fmt(hi)}"


class SinfoGroup:
    """A row of sinfo: one partition (or None) and the nodes it summarizes."""

    __slots__ = ("part", "nodes")

    def __init__(self, part, nodes):
        self.part, self.nodes = part, nodes


def _part_name(g, width):
    if g.part is None:
        return "n/a"
    name = g.part["name"]
    if g.part.get("default"):
        if len(name) < width or width == 0:
            name += "*"
        else:
            name = name[:width - 1] + "*"
    return name


def _part_time(minutes_key):
    def fn(g):
        if g.part is None:
            return "n/a"
        minutes = g.part.get(minutes_key)
        if minutes is None:
            return "infinite" if minutes_key == "max_time" else "n/a"
        return _secs(minutes * 60)
    return fn


def _hostlist(names):
    from .. import hostlist
    return hostlist.compress(names) if names else ""


def _node_class(node):
    """'alloc', 'idle' or 'other' (down, drained, draining, not responding), as sinfo counts."""
    if "NOT_RESPONDING" in (node.get("state_flags") or []):
        return "other"
    base = _drain_base(node)
    if base in ("ALLOCATED", "MIXED", "COMPLETING"):
        return "alloc"
    return "idle" if base == "IDLE" else "other"


def _counts(nodes):
    """Nodes allocated/idle/other/total (sinfo ``%F``)."""
    classes = [_node_class(n) for n in nodes]
    alloc, idle = classes.count("alloc"), classes.count("idle")
    return alloc, idle, len(nodes) - alloc - idle, len(nodes)


def _cpu_counts(nodes):
    """CPUs allocated/idle/other/total (sinfo ``%C``): all CPUs of an 'other' node are other."""
    alloc = idle = other = total = 0
    for n in nodes:
        cpus, used = n.get("cpus", 0), n.get("alloc_cpus", 0)
        total += cpus
        if _node_class(n) == "other":
            other += cpus
        else:
            alloc += used
            idle += cpus - used
    return alloc, idle, other, total


def _reason_user(g, with_uid):
    user = next((n.get("reason_user") for n in g.nodes if n.get("reason_user")), None)
    if not user:
        return "Unknown"
    if with_uid:
        try:
            import pwd
            return f"{user}({pwd.getpwnam(user).pw_uid})"
        except (KeyError, ImportError):
            return f"{user}"
    return user


# code -> (title, function(group) -> str, grouping key?) ; key=True: nodes of a row share this value
SINFO_CODES = {
    "a": ("AVAIL", lambda g: "n/a" if g.part is None else (g.part.get("state") or "UP").lower(), False),
    "A": ("NODES(A/I)", lambda g: "%d/%d" % _counts(g.nodes)[:2], False),
    "b": ("ACTIVE_FEATURES", lambda g: ",".join(g.nodes[0].get("features") or []) or NULL, True),
    "B": ("MAX_CPUS_PER_NODE", lambda g: "UNLIMITED", False),
    "c": ("CPUS", lambda g: _range(n.get("cpus") for n in g.nodes), True),
    "C": ("CPUS(A/I/O/T)", lambda g: "%d/%d/%d/%d" % _cpu_counts(g.nodes), False),
    "d": ("TMP_DISK", lambda g: "0", False),
    "D": ("NODES", lambda g: str(len(g.nodes)), False),
    "e": ("FREE_MEM", lambda g: _range((n.get("free_memory") for n in g.nodes), plus=False), False),
    "E": ("REASON", lambda g: g.nodes[0].get("reason") or "none", True),
    "f": ("AVAIL_FEATURES", lambda g: ",".join(g.nodes[0].get("features") or []) or NULL, True),
    "F": ("NODES(A/I/O/T)", lambda g: "%d/%d/%d/%d" % _counts(g.nodes), False),
    "g": ("GROUPS", lambda g: "n/a" if g.part is None else (
        "all" if (g.part.get("allow_groups") or "ALL").upper() == "ALL" else g.part["allow_groups"]), False),
    "G": ("GRES", lambda g: g.nodes[0].get("gres") or NULL, True),
    "h": ("OVERSUBSCRIBE", lambda g: "NO", False),
    "H": ("TIMESTAMP", lambda g: timespec.format_datetime(g.nodes[0].get("reason_time")), True),
    "I": ("PRIO_JOB_FACTOR", lambda g: "1", False),
    "l": ("TIMELIMIT", _part_time("max_time"), False),
    "L": ("DEFAULTTIME", _part_time("default_time"), False),
    "m": ("MEMORY", lambda g: _range(n.get("real_memory") for n in g.nodes), True),
    "M": ("PREEMPT_MODE", lambda g: "OFF", False),
    "n": ("HOSTNAMES", lambda g: _hostlist([n.get("hostname") or n["name"] for n in g.nodes]), False),
    "N": ("NODELIST", lambda g: _hostlist([n["name"] for n in g.nodes]), False),
    "o": ("NODE_ADDR", lambda g: _hostlist([n.get("address") or n["name"] for n in g.nodes]), False),
    "O": ("CPU_LOAD", lambda g: _range((n.get("cpu_load") for n in g.nodes), fmt=lambda v: "%.2f" % v, plus=False), False),
    "p": ("PRIO_TIER", lambda g: str(g.part.get("priority_tier", 1)) if g.part else "n/a", False),
    "P": ("PARTITION", lambda g: _part_name(g, 0), False),  # format_sinfo passes the width
    "r": ("ROOT", lambda g: "n/a" if g.part is None else ("yes" if g.part.get("root_only") else "no"), False),
    "R": ("PARTITION", lambda g: "n/a" if g.part is None else g.part["name"], False),
    "s": ("JOB_SIZE", lambda g: "n/a" if g.part is None else "%d-%s" % (
        max(1, g.part.get("min_nodes") or 1),
        "infinite" if g.part.get("max_nodes") is None else g.part["max_nodes"]), False),
    "S": ("ALLOCNODES", lambda g: "all", False),
    "t": ("STATE", lambda g: node_state_compact(g.nodes[0]) if g.nodes else "n/a", True),
    "T": ("STATE", lambda g: node_state_name(g.nodes[0]) if g.nodes else "n/a", True),
    "u": ("USER", lambda g: _reason_user(g, False), True),
    "U": ("USER", lambda g: _reason_user(g, True), True),
    "v": ("VERSION", lambda g: g.nodes[0].get("version") or "N/A", True),
    "V": ("CLUSTER", lambda g: g.nodes[0].get("cluster_name") or "N/A", False),
    "w": ("WEIGHT", lambda g: _range(n.get("weight", 1) for n in g.nodes), True),
    "X": ("SOCKETS", lambda g: _range(n.get("sockets", n.get("cpus")) for n in g.nodes), True),
    "Y": ("CORES", lambda g: _range(n.get("cores_per_socket", 1) for n in g.nodes), True),
    "Z": ("THREADS", lambda g: _range(n.get("threads_per_core", 1) for n in g.nodes), True),
    "z": ("S:C:T", lambda g: "%s:%s:%s" % (_range(n.get("sockets", n.get("cpus")) for n in g.nodes),
                                           _range(n.get("cores_per_socket", 1) for n in g.nodes),
                                           _range(n.get("threads_per_core", 1) for n in g.nodes)), True),
}
_SINFO_UNCUT_TITLES = {"NODELIST", "HOSTNAMES", "NODE_ADDR"}
# Per-node values of the grouping codes (what makes two nodes fall in different rows).
_SINFO_NODE_KEYS = {
    "b": lambda n: tuple(n.get("features") or ()), "f": lambda n: tuple(n.get("features") or ()),
    "c": lambda n: n.get("cpus"), "E": lambda n: n.get("reason") or "", "G": lambda n: n.get("gres") or "",
    "H": lambda n: n.get("reason_time"), "m": lambda n: n.get("real_memory"),
    "t": node_state_num, "T": node_state_num,
    "u": lambda n: n.get("reason_user") or "", "U": lambda n: n.get("reason_user") or "",
    "v": lambda n: n.get("version") or "", "w": lambda n: n.get("weight", 1),
    "X": lambda n: n.get("sockets"), "Y": lambda n: n.get("cores_per_socket"),
    "Z": lambda n: n.get("threads_per_core"), "z": lambda n: (n.get("sockets"), n.get("cores_per_socket")),
}


def parse_sinfo_format(fmt):
    """Compile a sinfo ``-o`` format; returns ``(columns, invalid_codes)``."""
    codes = {c: (title, fn) for c, (title, fn, _) in SINFO_CODES.items()}
    return _parse_percent_format(fmt, codes, "abcdefghlmnoprstuvwzABCDEFGHILMNORSTUVXYZ")


def sinfo_groups(partitions, nodes, columns, node_mode=False, summarize=False):
    """Build sinfo's rows: per partition (config order), nodes split by the grouping codes.

    *node_mode* (``-N``): one row per node and partition, in node order.
    *summarize* (``-s``): one row per partition. Rows are sorted like Slurm's
    default ``#P,-t`` (partition order, then numeric state descending).
    """
    by_name = {n["name"]: n for n in nodes}
    order = {n["name"]: i for i, n in enumerate(nodes)}
    codes = [col.code for col in columns if col.code in _SINFO_NODE_KEYS]
    groups = []
    for part in partitions:
        members = [by_name[m] for m in part.get("nodes") or [] if m in by_name]
        members.sort(key=lambda n: order[n["name"]])
        if node_mode:
            groups.extend(SinfoGroup(part, [n]) for n in members)
            continue
        if summarize:
            if members:
                groups.append(SinfoGroup(part, members))
            continue
        buckets = {}
        for n in members:
            buckets.setdefault(tuple(_SINFO_NODE_KEYS[c](n) for c in codes), []).append(n)
        rows = [SinfoGroup(part, ns) for ns in buckets.values()]
        if "t" in codes or "T" in codes:
            rows.sort(key=lambda g: node_state_num(g.nodes[0]), reverse=True)
        groups.extend(rows)
    if node_mode:
        groups.sort(key=lambda g: order[g.nodes[0]["name"]])
    return groups


def format_sinfo(groups, columns, header=True, auto_width=False, node_mode=False):
    """sinfo's table. *auto_width*: Slurm's default formats widen %P (and %N with -N) to fit."""
    part_width = node_width = None
    if auto_width:
        part_width = max([MIN_FIELD_SIZE] + [len(g.part["name"]) + (1 if g.part.get("default") else 0)
                                              for g in groups if g.part])
        if node_mode:
            node_width = max([MIN_FIELD_SIZE] + [len(SINFO_CODES["N"][1](g)) for g in groups])
    rows = [None] + groups if header else groups
    lines = []
    for g in rows:
        out = []
        for col in columns:
            if col.func is None:
                out.append(col.suffix)
                continue
            code = col.code
            width = col.width
            if code in ("P", "R") and part_width is not None:
                width = part_width
            elif code in ("N", "n") and node_width is not None:
                width = node_width
            if g is None:
                out.append(pad(col.title, width, col.right, col.title not in _SINFO_UNCUT_TITLES))
            else:
                value = _part_name(g, width) if code == "P" else col.func(g)
                out.append(pad(value, width, col.right, True))
            out.append(col.suffix)
        lines.append("".join(out))
    return "".join(line + "\n" for line in lines)


def date_line(now=None):
    """The ``ctime`` line squeue/sinfo print before ``-l``/``-i`` output."""
    now = _time.time() if now is None else now
    return _time.asctime(_time.localtime(now)) + "\n"
