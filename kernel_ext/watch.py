"""Following a job until it ends: the poller, its output tail, and the job-watch widget.

:func:`poll_job` is the one polling loop (quick first polls, then every
*interval* seconds; "controller unreachable" is reported and retried, never
read as "job gone"). ``%sbatch --wait`` drives it with a text status line in a
terminal, or through :class:`JobWatch` - an ipywidgets view updated from a
background thread - in a notebook. ipywidgets is imported only when a
:class:`JobWatch` is created.
"""

import collections
import os
import threading
import time

from batch_backend import timespec

from .backend import ControllerDown, JobNotFound, QueueError, is_final, select_backend
from .slurm_text import state_word
from .tables import elapsed_seconds


def poll_job(backend, job_id, *, interval=2.0, first_delay=0.1, stop=None):
    """Yield ``(records, error)`` for each poll of the job until it has ended.

    *records* are the job's dicts (every task of an array) or None when the
    poll failed with *error* (a :class:`QueueError`). The loop ends after the
    poll that finds every record final, when the job is unknown (purged or
    never existed: that error is yielded last), or when the *stop* event is
    set. The delay grows from *first_delay* to *interval* seconds.
    """
    delay = first_delay
    while True:
        try:
            records, error = backend.job_records(job_id), None
        except JobNotFound as e:
            yield None, e
            return
        except QueueError as e:
            records, error = None, e
        yield records, error
        if records and all(is_final(r) for r in records):
            return
        if stop is not None:
            if stop.wait(delay):
                return
        else:
            time.sleep(delay)
        delay = min(interval, delay * 1.6)


def summarize_states(records):
    """``COMPLETED`` for one job (or tasks all in one state), ``RUNNING 2, PENDING 1`` otherwise."""
    states = [state_word(r.get("state")) for r in records]
    if len(set(states)) == 1:
        return states[0]
    return ", ".join(f"{s} {n}" for s, n in collections.Counter(states).items())


def output_files(records):
    """The distinct output files of the job's records, stdout before stderr."""
    files = []
    for rec in records:
        for key in ("stdout_file", "stderr_file"):
            path = rec.get(key)
            if path and path not in files and path != "/dev/null":
                files.append(path)
    return files


def read_tail(path, lines=20, max_bytes=65536):
    """The last *lines* lines of a text file ("" if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:]) if lines else ""


def progress_of(records, now=None):
    """``(elapsed seconds, limit seconds or None)`` of the longest-running record."""
    best = max(records, key=lambda r: elapsed_seconds(r, now))
    limit = best.get("time_limit")
    return elapsed_seconds(best, now), (None if limit is None else int(limit) * 60)


def describe_end(job_id, records):
    """One line saying how the job ended: state, exit code, run time."""
    state = summarize_states(records)
    codes = sorted({(r.get("exit_code") or 0, r.get("exit_signal") or 0) for r in records})
    elapsed, _ = progress_of(records)
    text = f"Job {job_id} {state}"
    if codes != [(0, 0)]:
        text += " (exit code " + ", ".join(f"{c}:{s}" for c, s in codes) + ")"
    return text + f" after {timespec.format_duration(elapsed)}"


class JobWatch:
    """A live view of one job: state, timeline, elapsed vs time limit, output tail.

    Polling runs in a daemon thread from construction (``start=False`` to
    defer it) and stops when the job ends, :meth:`stop` or :meth:`close` is
    called, or the widget is closed from elsewhere. The widgets' values are
    the state: ``state_label.value`` (``RUNNING``...), ``timeline.value``
    (``PENDING → RUNNING → COMPLETED``), ``progress.value`` (fraction of the
    time limit used), ``time_label.value``, ``tail.value`` (last lines of the
    output file) and ``message.value`` (``reconnecting...`` while the queue
    does not answer).
    """

    def __init__(self, job_id, backend=None, *, interval=2.0, tail_lines=20, start=True):
        import ipywidgets as w
        self.job_id = str(job_id)
        self.backend = backend or select_backend()
        self.interval = interval
        self.tail_lines = tail_lines
        self.records = []
        self.error = None
        self.ended = False
        self.title = w.HTML(f"<b>Job {self.job_id}</b>")
        self.state_label = w.Label(value="(waiting for the queue)")
        self.timeline = w.Label(value="")
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="elapsed")
        self.time_label = w.Label(value="")
        self.message = w.Label(value="")
        self.tail = w.Textarea(value="", disabled=True, layout=w.Layout(width="100%", height="10em"))
        self.widget = w.VBox([
            w.HBox([self.title, self.state_label]), self.timeline,
            w.HBox([self.progress, self.time_label]), self.message, self.tail])
        self._history = []
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-watch-{self.job_id}", daemon=True)
        if start:
            self.start()

    # -- lifecycle --------------------------------------------------------------------
    def start(self):
        if not self._thread.is_alive() and not self._finished.is_set():
            self._thread.start()
        return self

    def stop(self):
        """Stop polling (the job itself is not touched)."""
        self._stop.set()

    def close(self):
        """Stop polling and close the widgets."""
        self.stop()
        self.widget.close()

    @property
    def polling(self):
        """True while the background poller runs."""
        return self._thread.is_alive() and not self._finished.is_set()

    def wait(self, timeout=None):
        """Block until polling has ended; return the last records (None on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished.wait(0.25):
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return self.records

    def _closed(self):
        return self._stop.is_set() or getattr(self.widget, "comm", True) is None

    def _run(self):
        try:
            for records, error in poll_job(self.backend, self.job_id, interval=self.interval, stop=self._stop):
                if self._closed():
                    break
                self.update(records, error)
        finally:
            self._finished.set()

    # -- model --------------------------------------------------------------------------
    def update(self, records, error=None):
        """Apply one poll result to the widgets."""
        self.error = error
        if records is None:
            if isinstance(error, JobNotFound):
                self.message.value = f"job {self.job_id} is no longer known to the queue"
            elif isinstance(error, ControllerDown):
                self.message.value = "reconnecting... (the queue controller does not answer)"
            else:
                self.message.value = str(error)
            return
        self.records = records
        self.message.value = ""
        state = summarize_states(records)
        self.state_label.value = state
        if not self._history or self._history[-1] != state:
            self._history.append(state)
            self.timeline.value = " → ".join(self._history)
        first = records[0]
        if first.get("name"):
            self.title.value = f"<b>Job {self.job_id}</b> {_html(first['name'])}"
        elapsed, limit = progress_of(records)
        self.progress.value = min(1.0, elapsed / limit) if limit else 0.0
        limit_text = timespec.format_duration(limit) if limit else "no limit"
        self.time_label.value = f"{timespec.format_duration(elapsed)} / {limit_text}"
        self.ended = all(is_final(r) for r in records)
        if self.ended:
            self.progress.bar_style = "success" if state == "COMPLETED" else "danger"
        files = output_files(records)
        if files:
            text = read_tail(files[0], self.tail_lines)
            if text != self.tail.value:
                self.tail.value = text

    # -- display ----------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self):
        state = self.state_label.value
        return f"<JobWatch job {self.job_id}: {state}>"


def _html(text):
    import html
    return html.escape(str(text))
