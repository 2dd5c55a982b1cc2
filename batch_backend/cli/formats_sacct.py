"""sacct's output formatters: fixed-width, ``-p`` and ``-P`` tables over Slurm's field table.

``SACCT_FIELDS`` is Slurm's table (name -> default width, value kind, job and
step getters); ``sacct_rows`` orders jobs and their steps, ``format_sacct``
prints them (SLURM_DIALECT section 6).
"""

import time as _time

from .. import model, timespec
from .formats_common import _exit, job_mem_total, job_tres

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
    return max(0, int(end - start - float(rec.get("suspended_seconds") or 0)))


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

    def step_key(s):
        return order.get(str(s.get("step_id")), s.get("step_id") if isinstance(s.get("step_id"), int) else 10**9)
    for job in jobs:
        steps = sorted(job.get("steps") or [], key=step_key)
        if step_filter is None:
            # runs that preemption requeued come first, each with its own steps (Slurm keeps
            # one accounting record per run; the earlier ones show PREEMPTED)
            for run in job.get("prior_runs") or []:
                record = dict(job, **run)
                yield record, None
                if not allocations_only:
                    for step in sorted(run.get("steps") or [], key=step_key):
                        yield step, record
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
