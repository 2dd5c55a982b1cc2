"""One watcher per hub: all of the hub's jobs in one controller query per interval.

batchspawner polls with one ``squeue`` per user per interval, so 500 users mean
500 queries. Here every :class:`~spawner.QueueSpawner` registers its job id with
the process-wide :class:`JobWatcher` of its controller address, and a single
loop asks ``client.jobs(ids=[...all...], fields=[...])`` (plus, while some of
them pend, one query for queue positions). Spawners read the cached answer and
wait on :meth:`JobWatcher.changed` for the next one.

"Controller unreachable" is a state of the *watcher*, never of a job: while it
lasts, every job keeps its last known state (:attr:`JobWatcher.reachable` is
False), so a controller restart cannot make a running server look gone.
"""

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from batch_backend.client import Client, ClientError, ControllerUnreachable
from batch_backend.model import ACTIVE_STATES

#: Fields the spawners show or decide on (compact rows: much less to send).
JOB_FIELDS = ["job_id", "state", "reason", "partition", "nodes", "batch_host", "start_time",
              "start_estimated", "end_time", "time_limit", "stdout_path", "exit_code",
              "exit_signal", "user", "held", "reservation", "begin_time", "priority", "submit_time"]
QUEUE_FIELDS = ["job_id", "partition", "priority", "submit_time", "state"]

_local = threading.local()
_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="batchhub-client")


def _client(address):
    """A Client per (thread, address): the client is not thread-safe, connections are kept alive."""
    clients = getattr(_local, "clients", None)
    if clients is None:
        clients = _local.clients = {}
    c = clients.get(address)
    if c is None:
        c = clients[address] = Client(address, timeout=10)
    return c


async def call(address, method, *args, **kwargs):
    """Run one blocking client call in the client thread pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _executor, lambda: getattr(_client(address), method)(*args, **kwargs))


GONE = "GONE"


class JobWatcher:
    """Follows a set of job ids with one query per interval; shared by all spawners."""

    _instances = {}

    @classmethod
    def get(cls, address, log=None):
        """The watcher of ``address`` in this process (created on first use)."""
        w = cls._instances.get(address)
        if w is None:
            w = cls._instances[address] = cls(address)
        if log is not None:
            w.log = log
        return w

    def __init__(self, address, *, interval=5.0, fast_interval=0.5):
        self.address = address
        self.interval = interval
        self.fast_interval = fast_interval
        self.log = logging.getLogger("batchhub.watcher")
        self.jobs = {}            # job_id -> last job dict seen (GONE state once absent)
        self.positions = {}       # job_id -> (position, total) in its partition's queue
        self._watchers = {}       # job_id -> number of spawners following it
        self._urgent = {}         # job_id -> number of spawners waiting on a start
        self.reachable = True
        self.unreachable_since = None
        self.last_error = ""
        self.queries = 0          # controller queries made (for tests and benchmarks)
        self.last_update = 0.0
        self._event = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._polls_started = 0
        self._polls_done = 0
        self._task = None

    # -- registration ----------------------------------------------------------------
    def watch(self, job_id):
        """Follow ``job_id`` (one call per follower; :meth:`unwatch` ends it)."""
        job_id = int(job_id)
        self._watchers[job_id] = self._watchers.get(job_id, 0) + 1
        self._ensure_running()
        self._wakeup.set()

    def hurry(self, job_id):
        """A start waits on ``job_id``: poll at the fast interval until :meth:`relax`."""
        job_id = int(job_id)
        self._urgent[job_id] = self._urgent.get(job_id, 0) + 1
        self._wakeup.set()

    def relax(self, job_id):
        """The start that waited on ``job_id`` is over: normal interval again."""
        job_id = int(job_id)
        n = self._urgent.get(job_id, 0) - 1
        if n > 0:
            self._urgent[job_id] = n
        else:
            self._urgent.pop(job_id, None)

    def unwatch(self, job_id):
        job_id = int(job_id)
        n = self._watchers.get(job_id, 0) - 1
        if n > 0:
            self._watchers[job_id] = n
            return
        self._watchers.pop(job_id, None)
        self._urgent.pop(job_id, None)
        self.jobs.pop(job_id, None)
        self.positions.pop(job_id, None)

    @property
    def watched(self):
        return sorted(self._watchers)

    # -- waiting -----------------------------------------------------------------------
    async def changed(self, timeout=None):
        """Wait for the next answer (or failed attempt) from the controller."""
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def refresh(self):
        """Ask now instead of at the next interval; returns after the answer."""
        target = self._polls_started + 1
        self._ensure_running()
        self._wakeup.set()
        while self._polls_done < target and self._watchers:
            await self.changed(1.0)

    def job(self, job_id):
        return self.jobs.get(int(job_id))

    # -- the loop --------------------------------------------------------------------------
    def _ensure_running(self):
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self):
        while self._watchers:
            self._polls_started += 1
            try:
                await self._poll_once()
            except Exception:  # never let the one watcher die
                self.log.exception("job watcher poll failed")
            self._polls_done = self._polls_started
            event, self._event = self._event, asyncio.Event()
            event.set()
            delay = self.fast_interval if (self._urgent or not self.reachable) else self.interval
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), delay)
            except asyncio.TimeoutError:
                pass
        self._task = None

    async def _poll_once(self):
        ids = self.watched
        if not ids:
            return
        try:
            self.queries += 1
            rows = await call(self.address, "jobs", ids=[str(i) for i in ids],
                              include_finished=True, fields=JOB_FIELDS)
            pending_parts = {r["partition"] for r in rows if r["state"] == "PENDING"}
            queue = []
            if pending_parts:
                self.queries += 1
                queue = await call(self.address, "jobs", states=["PENDING"],
                                   partitions=sorted(pending_parts), fields=QUEUE_FIELDS)
        except ControllerUnreachable as e:
            if self.reachable:
                self.log.warning("controller unreachable (%s): keeping the last known state of %d jobs",
                                 e, len(ids))
                self.unreachable_since = time.time()
            self.reachable, self.last_error = False, str(e)
            return
        except ClientError as e:
            self.log.warning("job query failed: %s", e)
            self.last_error = str(e)
            return
        if not self.reachable:
            self.log.info("controller reachable again after %.0f s", time.time() - self.unreachable_since)
        self.reachable, self.unreachable_since, self.last_error = True, None, ""
        self.last_update = time.time()
        seen = set()
        for row in rows:
            jid = int(row["job_id"])
            if jid in self._watchers:
                seen.add(jid)
                self.jobs[jid] = row
        for jid in ids:
            if jid not in seen and jid in self._watchers:
                # purged after MinJobAge (or never existed): the controller answered, so it is gone
                old = self.jobs.get(jid) or {"job_id": jid}
                if old.get("state") in ACTIVE_STATES or "state" not in old:
                    self.jobs[jid] = dict(old, state=GONE)
        self.positions = _positions(queue, self._watchers)


def _positions(queue, wanted):
    """(position, total) of each wanted pending job in its partition, in scheduling order."""
    by_part = {}
    for row in queue:
        by_part.setdefault(row["partition"], []).append(row)
    out = {}
    for rows in by_part.values():
        rows.sort(key=lambda r: (-(r.get("priority") or 0), r.get("submit_time") or 0, r["job_id"]))
        for i, r in enumerate(rows):
            if int(r["job_id"]) in wanted:
                out[int(r["job_id"])] = (i + 1, len(rows))
    return out
