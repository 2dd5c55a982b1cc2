"""Live ipywidgets dashboards of the queue: :class:`QueueDashboard`, :class:`NodeDashboard`,
:class:`UsageView` (usage and fairshare over time) and :class:`ReservationList`.

All refresh from a daemon thread (never blocking the kernel) with exactly
one backend query per interval (``squeue`` for the queue, ``nodes`` for the
nodes, ``shares`` for usage, ``reservations`` for reservations), stop when
the widget is closed (or :meth:`close`/:meth:`stop` is called), and keep polling while the controller does not answer, saying
``reconnecting...`` in their status line.

The widgets' values are the state a test (or a curious user) can read:
``QueueDashboard.rows`` maps a job id to a :class:`JobRow` whose ``state``,
``reason`` and ``start`` labels and ``cancel``/``hold``/``release`` buttons
are ipywidgets; ``NodeDashboard.rows`` maps a node name to a
:class:`NodeRow` with ``cpu``/``mem``/``gpu`` progress bars and a ``jobs``
label. ``refresh()`` runs one poll synchronously.

ipywidgets is imported when a dashboard is created, not on import.
"""

import getpass
import html
import os
import threading
import time

from .backend import ControllerDown, QueueError, select_backend
from .slurm_text import state_word

#: Pending reason -> (plain words, what to do). ``{...}`` are filled from the job and its partition.
REASONS = {
    "None": ("waiting for the scheduler's next pass", "nothing: it is considered within seconds"),
    "Priority": ("waiting behind jobs with higher priority in this partition",
                 "wait, or ask for fewer resources or a shorter time so it can backfill"),
    "Resources": ("waiting for resources: the nodes it can use are busy",
                  "wait for running jobs to end, or ask for fewer CPUs/memory/GPUs"),
    "JobHeldUser": ("held by you", "press Release (or %scontrol release {job_id}) to let it start"),
    "JobHeldAdmin": ("held by an administrator", "ask the administrators why"),
    "Dependency": ("waiting for the jobs it depends on to finish", "nothing: it starts when they end"),
    "DependencyNeverSatisfied": ("it depends on a job that failed, so it will never start",
                                 "cancel it and resubmit without that dependency"),
    "BeginTime": ("waiting for its requested start time", "nothing: it becomes eligible then"),
    "PartitionTimeLimit": ("its time limit ({limit}) is longer than partition {partition} allows "
                           "({max_time}), so it will never start",
                           "cancel it and resubmit with --time {max_time} or less, or use another partition"),
    "PartitionNodeLimit": ("it asks for more nodes than partition {partition} allows, so it will never start",
                           "cancel it and resubmit with fewer nodes"),
    "PartitionDown": ("partition {partition} is down", "wait for the administrators, or use another partition"),
    "PartitionInactive": ("partition {partition} is inactive", "use another partition"),
    "ReqNodeNotAvail": ("the nodes it needs are unavailable (down, drained or reserved)",
                        "wait, or resubmit without --nodelist/--constraint"),
    "NodeDown": ("a node it needs is down", "wait, or resubmit without that node"),
    "Reservation": ("waiting for reservation {reservation} to start (or for room inside it)",
                    "nothing: it starts when the reservation's nodes are free; scontrol show res {reservation} "
                    "says when"),
    "ReservationDeleted": ("the reservation it asked for was deleted, so it will never start",
                           "cancel it and resubmit without --reservation (or with another one)"),
    "ReqNodeNotAvail, Reserved for maintenance": ("the nodes are reserved for maintenance",
                                                  "wait for the maintenance window to end"),
    "QOSMaxCpuPerUserLimit": ("you already use as many CPUs as your QOS allows", "wait for your other jobs to end"),
    "QOSMaxNodePerUserLimit": ("you already use as many nodes as your QOS allows",
                               "wait for your other jobs to end"),
    "QOSMaxCpuPerJobLimit": ("it asks for more CPUs than its QOS allows one job, so it will never start",
                             "cancel it and resubmit with fewer CPUs (sacctmgr show qos shows the limit)"),
    "QOSMaxNodePerJobLimit": ("it asks for more nodes than its QOS allows one job, so it will never start",
                              "cancel it and resubmit with fewer nodes"),
    "QOSMaxMemoryPerJob": ("it asks for more memory than its QOS allows one job, so it will never start",
                           "cancel it and resubmit with less --mem"),
    "QOSMaxGRESPerJob": ("it asks for more GPUs than its QOS allows one job, so it will never start",
                         "cancel it and resubmit with fewer GPUs"),
    "QOSGrpCpuLimit": ("everyone in its QOS together already uses all the CPUs the QOS may", "wait"),
    "QOSGrpMemLimit": ("everyone in its QOS together already uses all the memory the QOS may", "wait"),
    "QOSGrpGRES": ("everyone in its QOS together already uses all the GPUs the QOS may", "wait"),
    "QOSGrpNodeLimit": ("everyone in its QOS together already uses all the nodes the QOS may", "wait"),
    "QOSGrpJobsLimit": ("its QOS already runs as many jobs as it may", "wait for other jobs in the QOS to end"),
    "AssocGrpJobsLimit": ("your account already runs as many jobs as its group limit allows",
                          "wait for other jobs of the account to end"),
    "AssocGrpNodeLimit": ("your account's group already uses all the nodes it may", "wait"),
    "AssocMaxCpuPerJobLimit": ("it asks for more CPUs than your association allows one job, so it will never "
                               "start", "cancel it and resubmit with fewer CPUs (sacctmgr show assoc shows "
                                        "the limit)"),
    "AssocMaxNodePerJobLimit": ("it asks for more nodes than your association allows one job, so it will never "
                                "start", "cancel it and resubmit with fewer nodes"),
    "AssocMaxMemPerJob": ("it asks for more memory than your association allows one job, so it will never start",
                          "cancel it and resubmit with less --mem"),
    "AssocMaxGRESPerJob": ("it asks for more GPUs than your association allows one job, so it will never start",
                           "cancel it and resubmit with fewer GPUs"),
    "JobArrayTaskLimit": ("waiting for other tasks of its array to finish", "nothing"),
    "QOSMaxJobsPerUserLimit": ("you already run as many jobs as your QOS allows",
                               "wait for your other jobs to end"),
    "AssocMaxJobsLimit": ("you already run as many jobs in this account as your association allows (MaxJobs)",
                          "wait for your other jobs in the account to end"),
    "AssocMaxWallDurationPerJobLimit": ("its time limit ({limit}) is longer than your association allows, "
                                        "so it will never start",
                                        "cancel it and resubmit with a shorter --time"),
    "QOSMaxWallDurationPerJobLimit": ("its time limit ({limit}) is longer than its QOS allows, "
                                      "so it will never start", "cancel it and resubmit with a shorter --time"),
    "AssocGrpCpuLimit": ("your account (everyone in it together) already uses all the CPUs it may (GrpTRES cpu)",
                         "wait for jobs of the account to end, or ask the instructor/admin to raise GrpTRES"),
    "AssocGrpMemLimit": ("your account's group already uses all the memory it may", "wait"),
    "AssocGrpGRES": ("your account's group already uses all the GPUs it may", "wait"),
    "QOSMaxMemoryPerUser": ("you already use as much memory as your QOS allows", "wait for your other jobs to end"),
    "QOSMaxGRESPerUser": ("you already use as many GPUs as your QOS allows", "wait for your other jobs to end"),
    "AccountNotAllowed": ("partition {partition} does not admit its account, so it will never start",
                          "cancel it and resubmit with another -A or partition"),
    "QOSNotAllowed": ("partition {partition} does not admit its QOS, so it will never start",
                      "cancel it and resubmit with another --qos or partition"),
    "BadConstraints": ("no node matches its constraints, so it will never start",
                       "cancel it and resubmit with other --constraint/--gres"),
}


def _minutes(value):
    if value is None or value == "" or (isinstance(value, (int, float)) and value < 0):
        return "no limit"
    try:
        m = int(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{m // 60}:{m % 60:02d}:00" if m >= 60 else f"{m} min"


#: Why a SUSPENDED job is stopped (``suspend_kind``, BatchHub's job field) -> (plain words, what to do).
SUSPENDED = {
    "preempt": ("suspended: a higher-priority job preempted it{by} and took its CPUs",
                "nothing: it resumes where it stopped when that job ends; its time limit does not run meanwhile"),
    "gang": ("suspended for now: it shares its CPUs with other jobs in turns (gang time-slicing)",
             "nothing: its next time slice comes within the partition's slice time"),
    "admin": ("suspended by an administrator", "ask the administrators; scontrol resume {job_id} resumes it"),
    "": ("suspended: stopped in place (preempted, time-sliced or by an administrator)",
         "nothing: it resumes where it stopped; its time limit does not run meanwhile"),
}


def explain_reason(job, partitions=None):
    """``(plain words, what to do)`` for a pending or suspended job; ``("", "")`` for any other."""
    state = state_word(job.get("state"))
    if state == "SUSPENDED":
        kind = job.get("suspend_kind") if job.get("suspend_kind") in SUSPENDED else ""
        by = (job.get("preempt") or {}).get("by")
        words, todo = SUSPENDED[kind]
        return words.format(by=f" (job {by})" if by else ""), todo.format(job_id=job.get("job_id"))
    if state != "PENDING":
        return "", ""
    reason = job.get("reason") or "None"
    words, todo = REASONS.get(reason, (f"waiting ({reason})", "see %scontrol show job {job_id}"))
    part = (partitions or {}).get(job.get("partition")) or {}
    fields = {"job_id": job.get("job_id"), "partition": job.get("partition") or "?",
              "limit": _minutes(job.get("time_limit")), "max_time": _minutes(part.get("max_time")),
              "reservation": job.get("reservation") or "(its reservation)"}
    return words.format(**fields), todo.format(**fields)


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


class _Poller:
    """A daemon thread calling ``refresh()`` every *interval* seconds until stopped or closed."""

    def _init_poller(self, backend, interval, start):
        self.backend = backend or select_backend()
        self.interval = interval
        self.queries = 0
        self.refreshes = 0
        self.error = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        if start:
            self.start()

    def start(self):
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()
        return self

    def stop(self):
        """Stop refreshing (the widget stays shown with its last values)."""
        self._stop.set()

    def close(self):
        """Stop refreshing and close the widgets."""
        self.stop()
        self.widget.close()

    @property
    def polling(self):
        return self._thread.is_alive()

    def _closed(self):
        return self._stop.is_set() or getattr(self.widget, "comm", True) is None

    def _run(self):
        while not self._closed():
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - the thread must survive anything
                self.status.value = f"error: {e}"
            if self._stop.wait(self.interval):
                break

    def refresh(self):
        """One query, then the widgets follow it; returns True if the queue answered."""
        with self._lock:
            self.queries += 1
            try:
                data = self._query()
            except ControllerDown:
                self.error = "reconnecting"
                self.status.value = "reconnecting... (the queue controller does not answer)"
                return False
            except QueueError as e:
                self.error = str(e)
                self.status.value = f"error: {e}"
                return False
            self.error = None
            self.refreshes += 1
            self._apply(data)
            self.status.value = f"updated {time.strftime('%H:%M:%S')}"
            return True

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


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


# -- usage and fairshare -------------------------------------------------------------------------

#: What the usage view can plot: share dict key -> label.
USAGE_METRICS = {"raw_usage": "raw usage (CPU-seconds, decayed)", "effective_usage": "effective usage",
                 "fairshare": "fairshare factor"}

#: Line colours of the plot (a colour-blind-safe palette).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def share_key(row):
    """``account`` for an account row, ``account/user`` for a user row."""
    return f"{row['account']}/{row['user']}" if row.get("user") else str(row["account"])


def subtree(rows, account):
    """The rows of *account*'s subtree (the account, its users, its sub-accounts...) in tree order.

    *rows* are in sshare's depth-first order, so the subtree is the account's
    row and every following row deeper than it. An unknown account gives [].
    Rows without tree depths (an sshare that does not indent) give the
    account's own rows.
    """
    if not any(row.get("depth") for row in rows):
        return [row for row in rows if row["account"] == account]
    out, depth = [], None
    for row in rows:
        if depth is None:
            if row["account"] == account and not row.get("user"):
                depth = row.get("depth") or 0
                out.append(row)
        elif (row.get("depth") or 0) > depth:
            out.append(row)
        else:
            break
    return out


def _number(value, digits=6):
    if value is None:
        return ""
    if isinstance(value, (int, float)) and float(value).is_integer() and digits == 0:
        return str(int(value))
    return f"{float(value):.{digits}f}" if digits else str(int(round(float(value))))


def usage_table_html(rows):
    """The usage table as HTML: account, user, raw usage, effective usage, fairshare (sshare's numbers)."""
    esc = html.escape
    head = "".join(f"<th>{t}</th>" for t in ("account", "user", "raw shares", "raw usage", "effective usage",
                                              "fairshare"))
    body = []
    for row in rows:
        indent = "&nbsp;" * 2 * int(row.get("depth") or 0)
        body.append("<tr>" + "".join(f"<td>{v}</td>" for v in (
            indent + esc(str(row["account"])), esc(str(row.get("user") or "")), esc(str(row.get("raw_shares") or "")),
            _number(row.get("raw_usage"), 0), _number(row.get("effective_usage")),
            _number(row.get("fairshare")))) + "</tr>")
    if not body:
        body.append('<tr><td colspan="6"><i>No associations.</i></td></tr>')
    return f'<table class="batchhub-usage"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def usage_svg(series, metric, width=560, height=200):
    """A small line plot (SVG) of ``{name: [(time, value), ...]}``: no plotting library needed.

    The y axis starts at 0 and ends at the largest value (1 for the factors in
    [0, 1]); the x axis spans the sampled time. Names get a legend in colour.
    """
    esc = html.escape
    left, right, top, bottom = 48, 150, 10, 24
    points = [(t, v) for values in series.values() for t, v in values if v is not None]
    t0 = min((t for t, _ in points), default=0.0)
    t1 = max((t for t, _ in points), default=1.0)
    span = max(t1 - t0, 1e-9)
    vmax = max((v for _, v in points), default=0.0)
    if metric != "raw_usage":
        vmax = max(vmax, 1.0)
    vmax = vmax or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(t, v):
        return left + (t - t0) / span * plot_w, top + plot_h - v / vmax * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
             f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{esc(_axis_number(vmax))}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
             f'<text x="{left}" y="{height - 6}">{esc(time.strftime("%H:%M:%S", time.localtime(t0)))}</text>',
             f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">'
             f'{esc(time.strftime("%H:%M:%S", time.localtime(t1)))}</text>']
    for i, (name, values) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = [xy(t, v) for t, v in values if v is not None]
        if len(coords) == 1:
            x, y = coords[0]
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>')
        elif coords:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        ly = top + 12 + 14 * i
        parts.append(f'<line x1="{width - right + 8}" y1="{ly - 4}" x2="{width - right + 22}" y2="{ly - 4}" '
                     f'stroke="{colour}" stroke-width="2"/>'
                     f'<text x="{width - right + 26}" y="{ly}">{esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _axis_number(value):
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    return f"{value:g}" if value >= 1 else f"{value:.2f}"


class UsageView(_Poller):
    """Per-account / per-user usage and fairshare, live, with a plot over time (instructors, admins).

    Each refresh is one ``shares()`` query (sshare's numbers); the view keeps
    up to *history* samples and plots the chosen metric of the shown
    associations over time. ``account`` narrows the view to one account's
    subtree (a class: its users and sub-accounts); ``users_only`` plots user
    rows only. ``rows`` holds the share dicts currently shown, ``samples``
    the ``(time, {key: share dict})`` history, ``series()`` the plotted values.
    """

    def __init__(self, backend=None, *, account="", metric="raw_usage", interval=30.0, history=240,
                 users_only=False, start=True):
        import ipywidgets as w
        if metric not in USAGE_METRICS:
            raise ValueError(f"metric must be one of {', '.join(USAGE_METRICS)}")
        self.history = max(2, int(history))
        self.samples = []
        self.rows = []
        self.all_rows = []
        self.title = w.HTML("<b>BatchHub usage and fairshare</b>")
        self.status = w.Label(value="(waiting for the queue)")
        self.account = w.Text(value=account, placeholder="every account", description="account")
        self.metric = w.Dropdown(options=[(label, key) for key, label in USAGE_METRICS.items()], value=metric,
                                 description="plot")
        self.users_only = w.Checkbox(value=users_only, description="users only")
        self.note = w.Label(value="")
        self.plot = w.HTML(value="")
        self.table = w.HTML(value="")
        self.widget = w.VBox([w.HBox([self.title, self.status]), w.HBox([self.account, self.metric,
                                                                         self.users_only]),
                              self.note, self.plot, self.table])
        for control in (self.account, self.metric, self.users_only):
            control.observe(lambda _c: self._render(), names="value")
        self._init_poller(backend, interval, start)

    def _query(self):
        return self.backend.shares()

    def _apply(self, rows):
        self.all_rows = list(rows)
        self.samples.append((time.time(), {share_key(r): r for r in self.all_rows}))
        del self.samples[:-self.history]
        self._render()

    def shown_rows(self):
        """The share dicts the controls select (an account's subtree, maybe users only)."""
        account = self.account.value.strip()
        rows = subtree(self.all_rows, account) if account else list(self.all_rows)
        if self.users_only.value:
            rows = [r for r in rows if r.get("user")]
        return rows

    def series(self):
        """``{key: [(time, value), ...]}`` of the plotted metric for the shown associations (root left out)."""
        metric = self.metric.value
        keys = [share_key(r) for r in self.rows if r.get("depth")]
        return {key: [(t, (sample.get(key) or {}).get(metric)) for t, sample in self.samples if key in sample]
                for key in keys}

    def _render(self):
        with self._lock:
            self.rows = self.shown_rows()
            account = self.account.value.strip()
            missing = account and self.all_rows and not self.rows
            self.note.value = f"no account {account!r} in the association tree" if missing else ""
            self.table.value = usage_table_html(self.rows)
            self.plot.value = usage_svg(self.series(), self.metric.value) if self.samples else ""


# -- reservations ----------------------------------------------------------------------------------

def _when(stamp):
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else ""


class ReservationList(_Poller):
    """Advance reservations: name, state, window, nodes, who may use them (one query per interval)."""

    COLUMNS = ("name", "state", "start", "end", "nodes", "users", "accounts", "flags")

    def __init__(self, backend=None, *, interval=30.0, start=True):
        import ipywidgets as w
        self.reservations = {}
        self.title = w.HTML("<b>BatchHub reservations</b>")
        self.status = w.Label(value="(waiting for the queue)")
        self.table = w.HTML(value="")
        self.widget = w.VBox([w.HBox([self.title, self.status]), self.table])
        self._init_poller(backend, interval, start)

    def _query(self):
        return self.backend.reservations()

    @staticmethod
    def row(resv):
        return [resv.get("name", ""), resv.get("state", ""), _when(resv.get("start_time")),
                _when(resv.get("end_time")), resv.get("nodelist", ""), ",".join(resv.get("users") or []),
                ",".join(resv.get("accounts") or []), ",".join(resv.get("flags") or [])]

    def _apply(self, reservations):
        self.reservations = {r["name"]: r for r in reservations}
        esc = html.escape
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in self.row(r)) + "</tr>"
                       for r in sorted(reservations, key=lambda r: (r.get("start_time") or 0, r["name"])))
        if not body:
            body = f'<tr><td colspan="{len(self.COLUMNS)}"><i>No reservations.</i></td></tr>'
        self.table.value = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
