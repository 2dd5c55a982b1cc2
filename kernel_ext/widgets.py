"""Live ipywidgets dashboards of the queue: :class:`QueueDashboard`, :class:`NodeDashboard`,
:class:`UsageView` (usage and fairshare over time) and :class:`ReservationList`.

All refresh from a daemon thread (never blocking the kernel) with exactly
one backend query per interval (``squeue`` for the queue, ``nodes`` for the
nodes, ``shares`` for usage, ``reservations`` for reservations), stop when
the widget is closed (or :meth:`close`/:meth:`stop` is called), and keep
polling while the controller does not answer, saying ``reconnecting...`` in
their status line.

The widgets' values are the state a test (or a curious user) can read:
``QueueDashboard.rows`` maps a job id to a :class:`JobRow` whose ``state``,
``reason`` and ``start`` labels and ``cancel``/``hold``/``release`` buttons
are ipywidgets; ``NodeDashboard.rows`` maps a node name to a
:class:`NodeRow` with ``cpu``/``mem``/``gpu`` progress bars and a ``jobs``
label; ``UsageView.rows`` are the share dicts shown, ``UsageView.samples``
their history and ``ReservationList.reservations`` maps a name to its
reservation dict. ``refresh()`` runs one poll synchronously.

ipywidgets is imported when a dashboard is created, not on import.
"""

import getpass
import html
import os
import threading
import time

from .backend import QueueError
from .poller import Poller as _Poller
from .reasons import REASONS, SUSPENDED, explain_reason
from .slurm_text import state_word
from .usage_view import USAGE_METRICS, ReservationList, UsageView, share_key, subtree, usage_svg, usage_table_html

#: The dashboards, and (from their own modules) the usage view, the reservation list and the reasons.
__all__ = ["QueueDashboard", "NodeDashboard", "JobRow", "NodeRow", "UsageView", "ReservationList",
           "explain_reason", "start_text", "node_state_text", "gpu_count", "REASONS", "SUSPENDED",
           "USAGE_METRICS", "share_key", "subtree", "usage_svg", "usage_table_html"]


def start_text(job, now=None):
    """Estimated (``~``) or actual start as ``HH:MM[:SS]``, or ""."""
    start = job.get("start_time")
    if not start:
        return ""
    now = time.time() if now is None else now
    stamp = time.strftime("%H:%M:%S" if abs(start - now) < 86400 else "%Y-%m-%d %H:%M", time.localtime(start))
    if state_word(job.get("state")) == "PENDING":
        return f"~{stamp} (estimated)" if job.get("start_estimated") else ""
    return stamp


def _me():
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return os.environ.get("USER", "")


# -- queue ---------------------------------------------------------------------------------------

#: Queue table columns and their widths.
COLUMNS = (("job", "8em"), ("name", "10em"), ("user", "7em"), ("partition", "6em"), ("state", "8em"),
           ("start", "12em"), ("why / where", "32em"))


class JobRow:
    """The widgets of one job row."""

    def __init__(self, dashboard, job, own):
        import ipywidgets as w
        self.job_id = str(job["job_id"])
        self.own = own
        widths = dict(COLUMNS)
        cell = lambda title: w.Layout(width=widths[title])  # noqa: E731
        self.id_label = w.Label(self.job_id, layout=cell("job"))
        self.name = w.Label(layout=cell("name"))
        self.user = w.Label(layout=cell("user"))
        self.partition = w.Label(layout=cell("partition"))
        self.state = w.Label(layout=cell("state"))
        self.start = w.Label(layout=cell("start"))
        self.reason = w.HTML(layout=cell("why / where"))
        self.cancel = w.Button(description="Cancel", button_style="danger", layout=w.Layout(width="5.5em"))
        self.hold = w.Button(description="Hold", layout=w.Layout(width="5em"))
        self.release = w.Button(description="Release", button_style="success", layout=w.Layout(width="6em"))
        self.cancel.on_click(lambda _b: dashboard.act("cancel", self.job_id))
        self.hold.on_click(lambda _b: dashboard.act("hold", self.job_id))
        self.release.on_click(lambda _b: dashboard.act("release", self.job_id))
        buttons = [self.cancel, self.hold, self.release] if own else []
        self.box = w.HBox([self.id_label, self.name, self.user, self.partition, self.state, self.start,
                           self.reason, *buttons])
        self.reason_text = self.todo_text = ""

    def update(self, job, partitions):
        state = state_word(job.get("state"))
        self.name.value = str(job.get("name") or "")
        self.user.value = str(job.get("user") or "")
        self.partition.value = str(job.get("partition") or "")
        self.state.value = state
        self.start.value = start_text(job)
        self.reason_text, self.todo_text = explain_reason(job, partitions)
        if self.reason_text:
            self.reason.value = (f"{html.escape(self.reason_text)}"
                                 f"<br><i>What to do: {html.escape(self.todo_text)}</i>")
        elif state == "RUNNING" and job.get("nodelist"):
            inside = f" in reservation {job['reservation']}" if job.get("reservation") else ""
            self.reason.value = html.escape(f"on {job['nodelist']}{inside}")
        else:
            self.reason.value = ""
        held = state == "PENDING" and (job.get("reason") or "").startswith("JobHeld")
        self.hold.disabled = state != "PENDING" or held
        self.release.disabled = not held
        self.cancel.disabled = False

    def close(self):
        self.box.close()


SORT_KEYS = {
    "job id": lambda j: (int(j.get("array_job_id") or j.get("job_id") or 0), int(j.get("array_task_id") or -1)
                         if str(j.get("array_task_id") or "").lstrip("-").isdigit() else -1),
    "state": lambda j: (state_word(j.get("state")), int(j.get("job_id") or 0)),
    "user": lambda j: (str(j.get("user") or ""), int(j.get("job_id") or 0)),
    "partition": lambda j: (str(j.get("partition") or ""), int(j.get("job_id") or 0)),
    "start": lambda j: (j.get("start_time") or float("inf"), int(j.get("job_id") or 0)),
    "name": lambda j: (str(j.get("name") or ""), int(j.get("job_id") or 0)),
}


class QueueDashboard(_Poller):
    """A live table of jobs: mine / all / one partition, sorted and filtered, with actions on own jobs.

    ``show``: ``"mine"``, ``"all"`` or ``"partition"`` (with *partition*). The
    ``filter_text`` box keeps rows whose id, name, user, partition or state
    contains its text (case-insensitive). Pending jobs say why they wait, in
    plain words with what to do, and their estimated start when the backfill
    planner has one.
    """

    def __init__(self, backend=None, *, show="mine", partition="", interval=5.0, sort="job id",
                 user=None, start=True):
        import ipywidgets as w
        self.user = user or _me()
        self.rows = {}
        self.jobs = []
        self.last_action = ""
        self.title = w.HTML("<b>BatchHub queue</b>")
        self.show = w.ToggleButtons(options=[("mine", "mine"), ("all", "all"), ("partition", "partition")],
                                    value=show)
        self.partition = w.Dropdown(options=[("(choose)", ""), *([(partition, partition)] if partition else [])],
                                    value=partition,
                                    description="partition")
        self.sort = w.Dropdown(options=list(SORT_KEYS), value=sort, description="sort by")
        self.filter_text = w.Text(value="", placeholder="filter: id, name, user, state...", description="filter")
        self.status = w.Label(value="(waiting for the queue)")
        self.message = w.Label(value="")
        self.count = w.Label(value="")
        header = w.HBox([w.HTML(f"<b>{title}</b>", layout=w.Layout(width=width)) for title, width in COLUMNS])
        self.table = w.VBox([])
        self.widget = w.VBox([w.HBox([self.title, self.status]),
                              w.HBox([self.show, self.partition]), w.HBox([self.sort, self.filter_text]),
                              self.count, header, self.table, self.message])
        for control in (self.sort, self.filter_text):
            control.observe(lambda _c: self._render(), names="value")
        for control in (self.show, self.partition):
            control.observe(lambda _c: self._refresh_soon(), names="value")
        self._partitions = None
        self._init_poller(backend, interval, start)

    # -- data -----------------------------------------------------------------------------
    def _partition_info(self):
        """Partitions by name, fetched once (limits change rarely): not part of the per-refresh query."""
        if self._partitions is None:
            try:
                self._partitions = {p["name"]: p for p in self.backend.partitions()}
            except (QueueError, NotImplementedError):
                return {}
            current = self.partition.value
            names = sorted(set(self._partitions) | ({current} if current else set()))
            self.partition.options = [("(choose)", ""), *[(n, n) for n in names]]
            self.partition.value = current
        return self._partitions

    def _argv(self):
        if self.show.value == "mine":
            return ["-u", self.user]
        if self.show.value == "partition" and self.partition.value:
            return ["-p", self.partition.value]
        return []

    def _query(self):
        return self.backend.queue(self._argv())

    def _apply(self, jobs):
        self.jobs = list(jobs)
        self._render()

    def _refresh_soon(self):
        """A control changed what to query: refresh now, off the kernel's thread."""
        if not self._closed():
            threading.Thread(target=self.refresh, daemon=True).start()

    def visible_jobs(self):
        """The jobs shown, filtered and sorted as the controls say."""
        text = self.filter_text.value.strip().lower()
        jobs = self.jobs
        if text:
            jobs = [j for j in jobs if any(text in str(j.get(k) or "").lower()
                                           for k in ("job_id", "display_id", "name", "user", "partition", "state"))]
        return sorted(jobs, key=SORT_KEYS[self.sort.value])

    def _render(self):
        with self._lock:
            partitions = self._partition_info()
            jobs = self.visible_jobs()
            keep = {}
            for job in jobs:
                key = str(job.get("display_id") or job["job_id"])
                row = self.rows.get(key)
                if row is None:
                    row = JobRow(self, job, own=(job.get("user") == self.user))
                row.job_id = str(job["job_id"]) if not job.get("display_id") else key
                row.update(job, partitions)
                keep[key] = row
            for key, row in self.rows.items():
                if key not in keep:
                    row.close()
            self.rows = keep
            self.table.children = tuple(row.box for row in keep.values())
            pending = sum(1 for j in jobs if state_word(j.get("state")) == "PENDING")
            running = sum(1 for j in jobs if state_word(j.get("state")) == "RUNNING")
            self.count.value = f"{len(jobs)} jobs ({running} running, {pending} pending)"

    # -- actions -----------------------------------------------------------------------------
    def act(self, action, job_id):
        """``cancel``/``hold``/``release`` one of your jobs, then refresh; the outcome is in ``message``."""
        try:
            if action == "cancel":
                self.backend.cancel([str(job_id)])
            elif action in ("hold", "release"):
                # uhold: a user hold, which the owner may release (root's plain "hold" is an admin hold)
                self.backend.command("scontrol", ["uhold" if action == "hold" else action, str(job_id)])
            else:
                raise QueueError(f"unknown action {action!r}")
        except QueueError as e:
            self.last_action = self.message.value = f"{action} {job_id} failed: {e}"
            return False
        self.last_action = self.message.value = f"{action} {job_id}: done"
        self.refresh()
        return True


# -- nodes -----------------------------------------------------------------------------------------

class NodeRow:
    """The widgets of one node: state, CPU/memory/GPU bars, running jobs."""

    def __init__(self, node):
        import ipywidgets as w
        self.name = node["name"]
        self.state = w.Label(layout=w.Layout(width="7em"))
        self.cpu = w.IntProgress(min=0, max=1, description="CPUs")
        self.cpu_label = w.Label(layout=w.Layout(width="5em"))
        self.mem = w.IntProgress(min=0, max=1, description="memory")
        self.mem_label = w.Label(layout=w.Layout(width="9em"))
        self.gpu = w.IntProgress(min=0, max=1, description="GPUs")
        self.gpu_label = w.Label(layout=w.Layout(width="4em"))
        self.jobs = w.Label()
        self.box = w.HBox([w.HTML(f"<b>{html.escape(self.name)}</b>", layout=w.Layout(width="5em")), self.state,
                           self.cpu, self.cpu_label, self.mem, self.mem_label, self.gpu, self.gpu_label,
                           self.jobs])

    @staticmethod
    def _bar(bar, label, used, total, unit=""):
        total, used = int(total or 0), int(used or 0)
        bar.max = max(1, total)
        bar.value = min(used, bar.max)
        bar.bar_style = "danger" if total and used >= total else ("warning" if used else "")
        label.value = f"{used}/{total}{unit}"

    def update(self, node):
        self.state.value = node_state_text(node)
        self._bar(self.cpu, self.cpu_label, node.get("alloc_cpus"), node.get("cpus"))
        self._bar(self.mem, self.mem_label, node.get("alloc_memory"), node.get("real_memory"), " MB")
        self._bar(self.gpu, self.gpu_label, node.get("alloc_gpus"), gpu_count(node.get("gres")))
        if "jobs" not in node:  # the Slurm CLI's node records do not list jobs (one query per refresh)
            self.job_ids, self.jobs.value = [], ""
            return
        jobs = node.get("jobs") or []
        self.job_ids = [str(j) if not isinstance(j, dict) else str(j.get("job_id")) for j in jobs]
        self.jobs.value = ("jobs: " + ", ".join(self.job_ids)) if self.job_ids else "no jobs"

    def close(self):
        self.box.close()


def node_state_text(node):
    """The node's state in lower case, with ``reserved``/``maint`` when it is in an active reservation."""
    state = str(node.get("state") or "").lower()
    flags = [str(f).upper() for f in node.get("state_flags") or []]
    if "MAINT" in flags:
        return f"{state} (maint)"
    if "RESERVED" in flags:
        return f"{state} (reserved)"
    return state


def gpu_count(gres):
    """GPUs in a gres string (``gpu:2``, ``gpu:a100:4,shard:8``); 0 without any."""
    total = 0
    for item in str(gres or "").split(","):
        parts = item.split("(")[0].split(":")
        if parts and parts[0] == "gpu":
            try:
                total += int(parts[-1])
            except ValueError:
                total += 1
    return total


class NodeDashboard(_Poller):
    """Per node: state, allocated / total CPUs, memory and GPUs as bars, and the jobs running there."""

    def __init__(self, backend=None, *, interval=5.0, start=True):
        import ipywidgets as w
        self.rows = {}
        self.nodes = []
        self.title = w.HTML("<b>BatchHub nodes</b>")
        self.status = w.Label(value="(waiting for the queue)")
        self.summary = w.Label(value="")
        self.table = w.VBox([])
        self.widget = w.VBox([w.HBox([self.title, self.status]), self.summary, self.table])
        self._init_poller(backend, interval, start)

    def _query(self):
        return self.backend.nodes()

    def _apply(self, nodes):
        self.nodes = list(nodes)
        keep = {}
        for node in sorted(self.nodes, key=lambda n: _natural(n["name"])):
            row = self.rows.get(node["name"]) or NodeRow(node)
            row.update(node)
            keep[node["name"]] = row
        for name, row in self.rows.items():
            if name not in keep:
                row.close()
        self.rows = keep
        self.table.children = tuple(row.box for row in keep.values())
        cpus = sum(int(n.get("cpus") or 0) for n in self.nodes)
        used = sum(int(n.get("alloc_cpus") or 0) for n in self.nodes)
        reserved = sum(1 for n in self.nodes if {"RESERVED", "MAINT"} & set(n.get("state_flags") or []))
        self.summary.value = (f"{len(self.nodes)} nodes, {used}/{cpus} CPUs allocated"
                              + (f", {reserved} in an active reservation" if reserved else ""))


def _natural(name):
    import re
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(name))]
