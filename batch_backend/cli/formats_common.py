"""Helpers shared by the Slurm-dialect output formatters (no I/O, no client).

The ``formats_<command>`` modules print exactly what Slurm 22.05 prints
(SLURM_DIALECT sections 5-9); this module holds what several of them use:

* Slurm's ``_print_str`` padding/cutting rules (``pad``) and the ``-o``
  format engine (``%[.][width]code`` -> :class:`Column`) of squeue and sinfo;
* time and state helpers (``_secs``, ``time_used``, ``job_state_code``, ``date_line``);
* job-level values several records print (``job_tres``, ``job_std_path``, exit codes);
* ``squeue -r`` array rows and squeue's sort, also used by the kernel extension.

Times are epoch seconds, printed in local time through ``timespec``; ``now``
is a parameter so tests are deterministic.
"""

import time as _time

from .. import model, timespec

NULL = "(null)"

# =============================================================================
# padding, time, state and job helpers
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
    # suspended time is not run time (Slurm: RunTime and Elapsed leave it out)
    return max(0, int(end - start - float(job.get("suspended_seconds") or 0)))


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


def _exit(rec):
    return f"{rec.get('exit_code') or 0}:{rec.get('exit_signal') or 0}"


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


def date_line(now=None):
    """The ``ctime`` line squeue/sinfo print before ``-l``/``-i`` output."""
    now = _time.time() if now is None else now
    return _time.asctime(_time.localtime(now)) + "\n"


# =============================================================================
# the -o format engine (squeue, sinfo)
# =============================================================================


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
        while j < len(token) and token[j] in "0123456789":
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


# =============================================================================
# array rows and sorting (squeue -r, squeue -S)
# =============================================================================


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
