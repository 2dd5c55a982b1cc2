"""The Standard Workload Format (SWF) of the Parallel Workloads Archive.

One job per line, 18 whitespace-separated numeric fields; ``-1`` means
"unknown"; lines starting with ``;`` are comments, and header comments of the
form ``; Key: value`` (MaxProcs, MaxNodes, UnixStartTime, ...) describe the
machine. Reading real traces from the archive is how scheduling policies are
compared on workloads nobody tuned them for.

Fields (1-based, as the format defines them): 1 job number, 2 submit time (s
from trace start), 3 wait time, 4 run time, 5 allocated processors, 6 average
CPU time used, 7 used memory (KB per processor), 8 requested processors, 9
requested time (s), 10 requested memory (KB per processor), 11 status, 12 user
id, 13 group id, 14 executable number, 15 queue number, 16 partition number,
17 preceding job number, 18 think time.
"""

from dataclasses import dataclass, fields

FIELD_NAMES = (
    "job_number", "submit_time", "wait_time", "run_time", "allocated_procs", "avg_cpu_time",
    "used_memory", "requested_procs", "requested_time", "requested_memory", "status", "user_id",
    "group_id", "executable", "queue", "partition", "preceding_job", "think_time",
)


class SwfError(ValueError):
    """A line that is not valid SWF; the message names the file and line."""


@dataclass(slots=True)
class SwfJob:
    """One SWF record; unknown (-1) fields are None."""

    job_number: int
    submit_time: float
    wait_time: float | None
    run_time: float | None
    allocated_procs: int | None
    avg_cpu_time: float | None
    used_memory: float | None
    requested_procs: int | None
    requested_time: float | None
    requested_memory: float | None
    status: int | None
    user_id: int | None
    group_id: int | None
    executable: int | None
    queue: int | None
    partition: int | None
    preceding_job: int | None
    think_time: float | None

    @property
    def procs(self):
        """Processors to request: the requested count, else the allocated one (older traces)."""
        if self.requested_procs and self.requested_procs > 0:
            return self.requested_procs
        return self.allocated_procs if self.allocated_procs and self.allocated_procs > 0 else None

    def to_line(self):
        values = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                values.append("-1")
            elif isinstance(v, float) and v.is_integer():
                values.append(str(int(v)))
            else:
                values.append(str(v))
        return " ".join(values)


def _number(text):
    value = float(text)
    if value == -1:
        return None
    return int(value) if value.is_integer() else value


def parse_swf(lines, *, name="<swf>"):
    """Parse SWF text lines; returns ``(header, jobs)``.

    ``header`` maps header comment keys to their text ('MaxProcs' -> '128');
    ``jobs`` are :class:`SwfJob` in file order. Blank lines are skipped; a line
    with the wrong number of fields or a non-number raises :class:`SwfError`.
    """
    header, jobs = {}, []
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        if text.startswith(";"):
            key, sep, value = text[1:].partition(":")
            if sep and key.strip() and " " not in key.strip():
                header[key.strip()] = value.strip()
            continue
        parts = text.split()
        if len(parts) != 18:
            raise SwfError(f"{name}:{lineno}: expected 18 fields, found {len(parts)}")
        try:
            values = [_number(p) for p in parts]
        except ValueError:
            raise SwfError(f"{name}:{lineno}: fields must be numbers") from None
        if values[0] is None or values[1] is None:
            raise SwfError(f"{name}:{lineno}: job number and submit time are required")
        jobs.append(SwfJob(*values))
    return header, jobs


def load_swf(path):
    """Parse the SWF file at ``path`` (see :func:`parse_swf`)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return parse_swf(handle, name=str(path))


def write_swf(handle, jobs, header=None):
    """Write ``jobs`` (SwfJob) to a text ``handle``, header comments first."""
    for key, value in (header or {}).items():
        handle.write(f"; {key}: {value}\n")
    for job in jobs:
        handle.write(job.to_line() + "\n")
