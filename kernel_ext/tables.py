"""What the query magics return: a table that shows as HTML in a notebook and as text in a terminal.

IPython picks the richest representation its frontend understands, so one
object serves both: JupyterLab calls ``_repr_html_``, a terminal IPython prints
``repr()``. The rows stay available as data (``table.rows``, ``table.dicts()``,
``table.to_dataframe()``) for code in the next cell.
"""

import html
import time

from batch_backend import timespec


class Table:
    """Columns and rows of strings, with the records they were made from.

    ``records`` keeps the source dicts (job dicts for ``%squeue``), so a
    program can use the full data while the table shows a readable subset.
    """

    def __init__(self, columns, rows, *, title=None, records=None, empty="No rows."):
        self.columns = list(columns)
        self.rows = [[("" if v is None else str(v)) for v in row] for row in rows]
        self.title = title
        self.records = records if records is not None else self.dicts()
        self.empty = empty

    def __len__(self):
        return len(self.rows)

    def dicts(self):
        """One ``{column: value}`` dict per row."""
        return [dict(zip(self.columns, row)) for row in self.rows]

    def column(self, name):
        """All values of one column."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def to_dataframe(self):
        """A pandas DataFrame of the shown columns (pandas must be installed)."""
        import pandas
        return pandas.DataFrame(self.rows, columns=self.columns)

    def __repr__(self):
        lines = [self.title] if self.title else []
        if not self.rows and not self.columns:
            return "\n".join(lines + [self.empty])
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            for i, value in enumerate(row[:len(widths)]):
                widths[i] = max(widths[i], len(value))
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths)).rstrip())
        for row in self.rows:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        if not self.rows:
            lines.append(self.empty)
        return "\n".join(lines)

    def _repr_html_(self):
        esc = html.escape
        parts = ['<table class="batchhub-table">']
        if self.title:
            parts.append(f"<caption style=\"text-align:left\">{esc(self.title)}</caption>")
        parts.append("<thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in self.columns) + "</tr></thead>")
        parts.append("<tbody>")
        for row in self.rows:
            parts.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>")
        if not self.rows:
            parts.append(f'<tr><td colspan="{max(1, len(self.columns))}"><i>{esc(self.empty)}</i></td></tr>')
        parts.append("</tbody></table>")
        return "".join(parts)


class TextOutput:
    """A command's text as it printed it (custom formats, help): ``<pre>`` in a notebook."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text.rstrip("\n")

    def _repr_html_(self):
        return f"<pre>{html.escape(self.text)}</pre>"


# -- builders ------------------------------------------------------------------------

SQUEUE_COLUMNS = ["JOBID", "PARTITION", "NAME", "USER", "STATE", "TIME", "TIME_LIMIT", "NODES", "CPUS",
                  "NODELIST(REASON)"]


def elapsed_seconds(job, now=None):
    """Seconds the job has run: Slurm's own ``run_time`` when the record has it, else start to end/now."""
    if job.get("run_time") is not None:
        return int(job["run_time"])
    start = job.get("start_time")
    if not start or job.get("start_estimated") or job.get("state") == "PENDING":
        return 0
    now = time.time() if now is None else now
    running = job.get("state") in ("RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED")
    end = now if running else (job.get("end_time") or now)
    return max(0, int(end - start))


def job_row(job, now=None):
    """One ``%squeue`` row of a job dict."""
    state = job.get("state", "")
    if job.get("nodelist") and state != "PENDING":
        where = job["nodelist"]
    else:
        where = f"({job.get('reason') or 'None'})"
    return [
        job.get("display_id") or job.get("job_id"), job.get("partition", ""), job.get("name", ""),
        job.get("user", ""), state, timespec.format_duration(elapsed_seconds(job, now)),
        timespec.format_limit(job.get("time_limit")), job.get("num_nodes", ""), job.get("num_cpus", ""),
        where,
    ]


def job_table(jobs, title=None):
    """The ``%squeue`` table: Slurm's long columns plus CPUs, full names, long states."""
    now = time.time()
    return Table(SQUEUE_COLUMNS, [job_row(j, now) for j in jobs], title=title, records=list(jobs),
                 empty="No jobs.")


def records_table(records, title=None):
    """``scontrol show`` records: one record as Key/Value rows, several as a wide table."""
    if len(records) == 1:
        rows = list(records[0].items())
        return Table(["Key", "Value"], rows, title=title, records=records)
    columns = []
    for rec in records:
        columns.extend(k for k in rec if k not in columns)
    rows = [[rec.get(c, "") for c in columns] for rec in records]
    return Table(columns, rows, title=title, records=records, empty="No records.")
