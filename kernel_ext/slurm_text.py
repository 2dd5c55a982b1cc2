"""Reading what the Slurm commands print: records, delimited rows, times, errors.

The Slurm-CLI backend (:class:`kernel_ext.backend.SlurmCLIBackend`) only sees
text, so these parsers turn it back into values: ``scontrol show`` records
(``Key=Value`` tokens, the regex jupyterlab-slurm uses), ``sacct -P`` /
``squeue -o`` rows cut on an unprintable delimiter (job names may contain ``|``
or spaces; they never contain ``\\x1f``), Slurm's durations and local-time
timestamps, and a command's stderr squeezed into the one line a notebook cell
shows. The ``*_job``/``*_node``/``*_partition`` functions at the end map those
values onto the dict fields of ``batch_backend.model``, so the kernel code
above the backend never knows which backend answered. Everything here is pure
(no I/O): it reads text from BatchHub's CLI and from a real Slurm alike.
"""

import re
import time

#: Field separator asked of squeue/sinfo/sacct: ASCII "unit separator".
SEP = "\x1f"

_PAIR = re.compile(r"([\w:/]+)=(.*?)(?=\s+[\w:/]+=|$)")
_UNSET = {"", "N/A", "n/a", "(null)", "None", "Unknown", "NONE"}


def parse_records(text):
    """``scontrol show job|node|partition`` output -> list of ``{key: value}``.

    Works for the multi-line layout (a record starts at column 0, its other
    lines are indented, a blank line follows) and for ``--oneliner`` output
    (one record per line).
    """
    records = []
    current = None
    for line in text.splitlines():
        if not line.strip():
            current = None
            continue
        if current is None or not line[:1].isspace():
            current = {}
            records.append(current)
        for match in _PAIR.finditer(line.strip()):
            current[match.group(1)] = match.group(2)
    return [r for r in records if r]


def parse_delimited(text, sep=SEP, header=True):
    """Rows of ``sacct -P``-style output -> ``(columns, rows)``; rows are lists of str.

    With *header*, the first line names the columns; otherwise *columns* is
    ``None``.
    """
    lines = [line for line in text.split("\n") if line != ""]
    columns = None
    if header:
        if not lines:
            return [], []
        columns, lines = lines[0].split(sep), lines[1:]
    return columns, [line.split(sep) for line in lines]


def parse_whitespace_table(text):
    """A Slurm fixed-width table (header on line 1) -> ``(columns, rows)``, or None.

    This is how slurm-magic reads ``sinfo``/``sprio``/``sshare``: split every
    line on whitespace. When the lines do not all split into the header's
    number of fields (a value with spaces, a date line before the header,
    help text) the text is not a table and None is returned.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    columns = lines[0].split()
    rows = [line.split() for line in lines[1:]]
    if not looks_like_header(columns) or any(len(row) != len(columns) for row in rows):
        return None
    return columns, rows


def looks_like_header(words):
    """Slurm's column titles are upper case or CamelCase (``JOBID``, ``RawShares``), never a sentence.

    Keeps a one-line message (``Unable to find jobs matching ...``) from being read as an empty table.
    """
    return len(words) >= 2 and not any(w.isalpha() and w.islower() for w in words)


def parse_fixed_width_table(text):
    """A Slurm fixed-width table whose cells may be blank or indented -> ``(columns, rows)``, or None.

    ``sshare`` leaves the User cell of account rows blank and indents accounts
    by tree level; ``sprio -l`` leaves TRES blank. Splitting on whitespace
    cannot read those, so the columns are found by position: a dashes line
    under the header (sshare's) gives them exactly, otherwise the character
    positions that are blank on every line separate them. Values are
    stripped. None when the columns found do not match the header's words.
    """
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if len(lines) < 1:
        return None
    header, body = lines[0], lines[1:]
    if body and set(body[0]) <= {"-", " "}:
        spans = [(m.start(), m.end()) for m in re.finditer(r"-+", body[0])]
        body = body[1:]
    else:
        width = max(len(line) for line in lines)
        blank = [all(i >= len(line) or line[i] == " " for line in lines) for i in range(width)]
        spans, start = [], None
        for i, is_blank in enumerate(blank + [True]):
            if not is_blank and start is None:
                start = i
            elif is_blank and start is not None:
                spans.append((start, i))
                start = None
    columns = [header[a:b].strip() for a, b in spans]
    if not looks_like_header(columns) or any(not c or " " in c for c in columns) or columns != header.split():
        return None
    rows = []
    for line in body:
        if line[spans[-1][1]:].strip():  # something beyond the last column: not this table
            return None
        rows.append([line[a:b].strip() for a, b in spans])
    return columns, rows


def parse_pipe_table(text):
    """``-p``/``-P`` output (``|`` separated, header first, maybe a trailing ``|``) -> ``(columns, rows)``."""
    lines = [line for line in text.splitlines() if line != ""]
    if not lines:
        return None
    trailing = lines[0].endswith("|")
    split = (lambda line: line[:-1].split("|")) if trailing else (lambda line: line.split("|"))
    columns = split(lines[0])
    rows = [split(line) for line in lines[1:]]
    if any(len(row) != len(columns) for row in rows):
        return None
    return columns, rows


def _float_or_none(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


#: sshare fields the CLI backend asks for, and the share dict key of each.
SSHARE_FIELDS = (("Account", "account"), ("User", "user"), ("RawShares", "raw_shares"),
                 ("NormShares", "norm_shares"), ("RawUsage", "raw_usage"), ("NormUsage", "norm_usage"),
                 ("EffectvUsage", "effective_usage"), ("FairShare", "fairshare"))
SSHARE_FORMAT = ",".join(name for name, _ in SSHARE_FIELDS)


def sshare_rows(text):
    """Share dicts (as ``GET /v1/shares`` rows) from ``sshare -a -P -o SSHARE_FORMAT`` output."""
    parsed = parse_pipe_table(text)
    if parsed is None:
        return []
    columns, rows = parsed
    out = []
    for row in rows:
        raw = dict(zip(columns, row))
        account = raw.get("Account", "")
        shares = raw.get("RawShares", "")
        out.append({
            "account": account.strip(), "user": raw.get("User") or None,
            "depth": len(account) - len(account.lstrip(" ")),
            "raw_shares": int(shares) if shares.isdigit() else (shares or None),
            "norm_shares": _float_or_none(raw.get("NormShares")),
            "raw_usage": _float_or_none(raw.get("RawUsage")) or 0.0,
            "norm_usage": _float_or_none(raw.get("NormUsage")),
            "effective_usage": _float_or_none(raw.get("EffectvUsage")),
            "fairshare": _float_or_none(raw.get("FairShare")),
        })
    return out


def scontrol_reservation(rec):
    """A reservation dict (``batch_backend.model.RESERVATION_FIELDS``, partly) from ``scontrol show res``."""
    nodelist = unset_to_empty(rec.get("Nodes"))
    try:
        from batch_backend import hostlist
        nodes = hostlist.expand(nodelist) if nodelist else []
    except (ImportError, ValueError):
        nodes = []
    split = lambda key: [v for v in unset_to_empty(rec.get(key)).split(",") if v]  # noqa: E731
    return {
        "name": rec.get("ReservationName", ""), "state": rec.get("State", ""),
        "start_time": parse_timestamp(rec.get("StartTime")), "end_time": parse_timestamp(rec.get("EndTime")),
        "nodes": nodes, "nodelist": nodelist, "node_cnt": int_or_none(rec.get("NodeCnt")) or len(nodes),
        "core_cnt": int_or_none(rec.get("CoreCnt")) or 0,
        "partition": unset_to_empty(rec.get("PartitionName")),
        "flags": split("Flags"), "flags_text": unset_to_empty(rec.get("Flags")),
        "users": split("Users"), "accounts": split("Accounts"), "groups": split("Groups"),
    }


def parse_duration(text):
    """Slurm elapsed time (``M:SS``, ``H:MM:SS``, ``D-HH:MM:SS``) -> seconds, or None."""
    text = (text or "").strip()
    if text in _UNSET or text.upper() in ("UNLIMITED", "INVALID"):
        return None
    days = 0
    if "-" in text:
        day_text, _, text = text.partition("-")
        if not day_text.isdigit():
            return None
        days = int(day_text)
    parts = text.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        return None
    numbers = [int(p) for p in parts]
    if days and len(numbers) == 1:  # D-H
        numbers = [numbers[0], 0, 0]
    while len(numbers) < 3:
        numbers.insert(0, 0)
    hours, minutes, seconds = numbers
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_limit(text):
    """A time limit as printed (``1:00:00``, ``5:00``, ``UNLIMITED``) -> minutes or None."""
    seconds = parse_duration(text)
    return None if seconds is None else -(-seconds // 60)


def parse_timestamp(text):
    """``YYYY-MM-DDTHH:MM:SS`` (local time, as Slurm prints it) -> epoch, or None."""
    text = (text or "").strip()
    if text in _UNSET:
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def parse_exit(text):
    """``code:signal`` -> ``(code, signal)`` (``(0, 0)`` when unreadable)."""
    code, _, signal = (text or "").partition(":")
    return (int(code) if code.isdigit() else 0), (int(signal) if signal.isdigit() else 0)


def state_word(text):
    """``CANCELLED by 0`` / ``RUNNING`` -> the bare state name."""
    words = (text or "").split()
    return words[0].rstrip("+") if words else ""


def int_or_none(text):
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def unset_to_empty(text):
    return "" if text is None or text.strip() in _UNSET else text.strip()


_PREFIXES = re.compile(r"^(?:slurm_load_\w+|slurm_update|slurm_\w+) error: ", re.I)


def one_line(prog, text, limit=300):
    """A command's stderr as one line for a notebook cell.

    Drops the ``prog: error:`` prefixes and Slurm's ``Try "prog --help"``
    hint; continuation lines of one message (sbatch's three-line "does not
    look like a batch script") are joined; a long list of similar lines is
    cut to the first one and a count.
    """
    lines = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith('Try "'):
            continue
        for prefix in (f"{prog}: error: ", f"{prog}: "):
            if line.startswith(prefix):
                line = line[len(prefix):]
                break
        line = _PREFIXES.sub("", line)
        lines.append(line)
    if not lines:
        return f"{prog} failed"
    if len(lines) > 3:
        message = f"{lines[0]} (and {len(lines) - 1} more lines)"
    else:
        message = lines[0]
        for line in lines[1:]:
            # a sentence wrapped over lines reads on with a space; separate messages get "; "
            joiner = " " if message.endswith(".") or line[:1].islower() else "; "
            message += joiner + line
    return message if len(message) <= limit else message[:limit - 3] + "..."


# squeue -o fields the CLI backend asks for: (job dict key, squeue code).
SQUEUE_FIELDS = (
    ("job_id", "%A"), ("display_id", "%i"), ("array_job_id", "%F"), ("array_task_id", "%K"),
    ("partition", "%P"), ("name", "%j"), ("user", "%u"), ("state", "%T"), ("reason", "%r"),
    ("run_time", "%M"), ("time_limit", "%l"), ("num_nodes", "%D"), ("num_cpus", "%C"),
    ("nodelist", "%N"), ("submit_time", "%V"), ("start_time", "%S"), ("account", "%a"),
    ("qos", "%q"), ("workdir", "%Z"), ("priority", "%Q"), ("reservation", "%v"),
)
SQUEUE_FORMAT = SEP.join(code for _, code in SQUEUE_FIELDS)

# sacct fields used to describe a job scontrol no longer knows.
SACCT_JOB_FIELDS = "JobID,JobIDRaw,JobName,User,Partition,State,ExitCode,Submit,Start,End,Elapsed," \
                    "Timelimit,NNodes,AllocCPUS,NodeList,WorkDir"


# -- text -> the dicts of batch_backend.model (for the CLI backend) ---------------------------

def display_id(job_id, array_job_id, task):
    """Slurm's shown id: ``N``, ``A_i`` or ``A_[spec]`` for unstarted array tasks."""
    if array_job_id is None or task in ("", None):
        return str(job_id)
    return f"{array_job_id}_{task}" if str(task).isdigit() else f"{array_job_id}_[{task}]"


def squeue_job(row):
    """A job dict from one ``squeue -h -o SQUEUE_FORMAT`` row (a list of field strings)."""
    raw = dict(zip((key for key, _ in SQUEUE_FIELDS), row))
    task = unset_to_empty(raw["array_task_id"])
    array_job = int_or_none(raw["array_job_id"]) if task else None
    state = raw["state"].strip()
    return {
        "job_id": int(raw["job_id"]) if raw["job_id"].isdigit() else raw["job_id"],
        "display_id": raw["display_id"].strip(),
        "array_job_id": array_job,
        "array_task_id": int(task) if task.isdigit() else None,
        "array_spec": task if task and not task.isdigit() else None,
        "partition": raw["partition"], "name": raw["name"], "user": raw["user"], "state": state,
        "reason": raw["reason"], "run_time": parse_duration(raw["run_time"]) or 0,
        "time_limit": parse_limit(raw["time_limit"]),
        "num_nodes": int_or_none(raw["num_nodes"]) or 0,
        "num_cpus": int_or_none(raw["num_cpus"]) or 0,
        "nodelist": unset_to_empty(raw["nodelist"]),
        "submit_time": parse_timestamp(raw["submit_time"]),
        "start_time": parse_timestamp(raw["start_time"]),
        "start_estimated": state == "PENDING",
        "account": unset_to_empty(raw["account"]), "qos": unset_to_empty(raw["qos"]),
        "workdir": raw["workdir"], "priority": int_or_none(raw["priority"]) or 0,
        "reservation": unset_to_empty(raw["reservation"]),
    }


def scontrol_job(rec):
    """A job dict from one ``scontrol show job`` record."""
    job_id = int_or_none(rec.get("JobId")) or rec.get("JobId")
    array_job = int_or_none(rec.get("ArrayJobId"))
    task = rec.get("ArrayTaskId") if array_job is not None else None
    state = state_word(rec.get("JobState"))
    code, signal = parse_exit(rec.get("ExitCode"))
    stdout = unset_to_empty(rec.get("StdOut"))
    stderr = unset_to_empty(rec.get("StdErr"))
    return {
        "job_id": job_id, "display_id": display_id(job_id, array_job, task),
        "array_job_id": array_job, "array_task_id": int(task) if task and task.isdigit() else None,
        "array_spec": task if task and not task.isdigit() else None,
        "name": rec.get("JobName", ""), "user": rec.get("UserId", "").split("(")[0],
        "account": unset_to_empty(rec.get("Account")), "partition": rec.get("Partition", ""),
        "state": state, "reason": rec.get("Reason", ""), "exit_code": code, "exit_signal": signal,
        "run_time": parse_duration(rec.get("RunTime")) or 0,
        "time_limit": parse_limit(rec.get("TimeLimit")),
        "submit_time": parse_timestamp(rec.get("SubmitTime")),
        "start_time": parse_timestamp(rec.get("StartTime")),
        "start_estimated": state == "PENDING",
        "end_time": parse_timestamp(rec.get("EndTime")),
        "nodelist": unset_to_empty(rec.get("NodeList")),
        "batch_host": unset_to_empty(rec.get("BatchHost")),
        "num_nodes": int_or_none(rec.get("NumNodes")) or 0,
        "num_cpus": int_or_none(rec.get("NumCPUs")) or 0,
        "workdir": rec.get("WorkDir", ""), "command": unset_to_empty(rec.get("Command")),
        "reservation": unset_to_empty(rec.get("Reservation")),
        "stdout_file": stdout, "stderr_file": stderr or stdout,
    }


def sacct_job(rec):
    """A job dict from one ``sacct -X -o SACCT_JOB_FIELDS[,StdOut,StdErr]`` row (as a dict)."""
    raw_id = rec.get("JobIDRaw") or rec.get("JobID", "")
    shown = rec.get("JobID", raw_id)
    base, _, task = shown.partition("_")
    code, signal = parse_exit(rec.get("ExitCode"))
    stdout = unset_to_empty(rec.get("StdOut"))
    return {
        "job_id": int(raw_id) if raw_id.isdigit() else raw_id, "display_id": shown,
        "array_job_id": int(base) if task and base.isdigit() else None,
        "array_task_id": int(task) if task.isdigit() else None,
        "name": rec.get("JobName", ""), "user": rec.get("User", ""), "partition": rec.get("Partition", ""),
        "state": state_word(rec.get("State")), "reason": "", "exit_code": code, "exit_signal": signal,
        "run_time": parse_duration(rec.get("Elapsed")) or 0,
        "time_limit": parse_limit(rec.get("Timelimit")),
        "submit_time": parse_timestamp(rec.get("Submit")),
        "start_time": parse_timestamp(rec.get("Start")),
        "end_time": parse_timestamp(rec.get("End")), "start_estimated": False,
        "nodelist": unset_to_empty(rec.get("NodeList")).replace("None assigned", ""),
        "num_nodes": int_or_none(rec.get("NNodes")) or 0,
        "num_cpus": int_or_none(rec.get("AllocCPUS")) or 0,
        "workdir": rec.get("WorkDir", ""), "stdout_file": stdout,
        "stderr_file": unset_to_empty(rec.get("StdErr")) or stdout,
    }


def scontrol_node(rec):
    """A node dict from one ``scontrol show node`` record."""
    state, _, flags = rec.get("State", "UNKNOWN").partition("+")
    return {
        "name": rec.get("NodeName", ""), "state": state.rstrip("*"),
        "state_flags": [f for f in flags.split("+") if f],
        "reason": unset_to_empty(rec.get("Reason")),
        "cpus": int_or_none(rec.get("CPUTot")) or 0,
        "alloc_cpus": int_or_none(rec.get("CPUAlloc")) or 0,
        "real_memory": int_or_none(rec.get("RealMemory")) or 0,
        "alloc_memory": int_or_none(rec.get("AllocMem")) or 0,
        "gres": unset_to_empty(rec.get("Gres")),
        "alloc_gpus": tres_count(rec.get("AllocTRES"), "gres/gpu"),
        "features": [f for f in unset_to_empty(rec.get("AvailableFeatures")).split(",") if f],
        "partitions": [p for p in unset_to_empty(rec.get("Partitions")).split(",") if p],
        "address": rec.get("NodeAddr", ""), "hostname": rec.get("NodeHostName", ""),
    }


def tres_count(text, name):
    """The count of *name* (``gres/gpu``) in a TRES string (``cpu=3,mem=500M,gres/gpu=1``); 0 if absent."""
    total = 0
    for item in unset_to_empty(text).split(","):
        key, _, value = item.partition("=")
        if key == name or key.startswith(name + ":"):
            total += int_or_none(value) or 0
    return total


def scontrol_partition(rec):
    """A partition dict from one ``scontrol show partition`` record."""
    from batch_backend import hostlist
    nodelist = unset_to_empty(rec.get("Nodes"))
    try:
        nodes = hostlist.expand(nodelist) if nodelist else []
    except ValueError:
        nodes = []
    max_nodes = rec.get("MaxNodes", "")
    return {
        "name": rec.get("PartitionName", ""), "default": rec.get("Default") == "YES",
        "state": rec.get("State", ""), "max_time": parse_limit(rec.get("MaxTime")),
        "default_time": parse_limit(rec.get("DefaultTime")),
        "max_nodes": int(max_nodes) if max_nodes.isdigit() else None,
        "nodes": nodes, "nodelist": nodelist,
        "total_cpus": int_or_none(rec.get("TotalCPUs")) or 0,
        "hidden": rec.get("Hidden") == "YES",
    }
