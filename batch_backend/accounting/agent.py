"""The accounting agent: ships job records to the accounting store and purges old ones.

Like slurmctld's agent queue to slurmdbd: the controller never waits on the
accounting database to acknowledge a request. Saved jobs wait in the journal's
outbox (on disk, committed with the change itself); this agent ships them in
batches from one worker thread, keeps them queued while the database is down
(retrying with back-off, one log line per outage), and flushes before a
``sacct`` query so users read their own writes.

It also purges, on a slow timer:
* ``PurgeJobAfter``: accounting records of jobs that ended longer ago (in the
  external store, or in the journal when the journal is the store);
* with an external store, the journal's copies of finished jobs older than
  ``MinJobAge`` once shipped (slurmctld forgets them too; the journal stays
  small, so restarts stay fast).
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import AccountingUnavailable
from .sql import StoreError

log = logging.getLogger("batchhub.accounting")


class AccountingAgent:
    """Outbox shipping, sacct queries and purging for one controller."""

    #: seconds between shipping rounds (records reach the store at most this late)
    INTERVAL = 0.25
    #: records per transaction in the store
    BATCH = 2000
    #: journal rows forgotten per round (a long history is trimmed over several rounds)
    PURGE_BATCH = 5000

    def __init__(self, journal, store=None, *, min_job_age=300.0, purge_job_after=None, now=time.time):
        self.journal = journal
        self.store = store
        self.min_job_age = min_job_age
        self.purge_job_after = purge_job_after
        self.now = now
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="accounting") if store else None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.down_since = None
        self.last_error = ""
        self.shipped = 0
        self.purged_records = 0
        self.purged_journal = 0
        self._last_purge = 0.0
        if store is not None:
            journal.enable_outbox()

    @property
    def external(self):
        return self.store is not None

    def _purge_interval(self):
        ages = [a for a in (self.purge_job_after, self.min_job_age if self.external else None) if a and a > 0]
        return min(600.0, max(1.0, min(ages) / 4)) if ages else None

    async def _in_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- shipping ------------------------------------------------------------
    async def flush(self):
        """Ship everything queued; raises AccountingUnavailable if the store is down."""
        if not self.external:
            return
        async with self._lock:
            while True:
                batch = self.journal.outbox_batch(self.BATCH)
                if not batch:
                    return
                try:
                    await self._in_worker(self.store.write, batch)
                except StoreError as e:
                    self._down(e)
                    raise AccountingUnavailable(f"Problem talking to the database: {e}") from None
                self._up()
                self.journal.outbox_done(batch)
                self.shipped += len(batch)

    def _down(self, e):
        if self.down_since is None:
            self.down_since = self.now()
            log.error("accounting store unreachable, records stay queued in the journal: %s", e)
        self.last_error = str(e)

    def _up(self):
        if self.down_since is not None:
            log.info("accounting store back after %.0f s; shipping %d queued records",
                     self.now() - self.down_since, self.journal.outbox_size())
            self.down_since = None
            self.last_error = ""

    def backlog(self):
        return self.journal.outbox_size() if self.external else 0

    # -- queries ---------------------------------------------------------------
    async def query_jobs(self, **filters):
        """sacct's records: from the store (after a flush) or from the journal."""
        if not self.external:
            return self.journal.query_jobs(**filters)
        await self.flush()
        try:
            return await self._in_worker(lambda: self.store.query_jobs(**filters))
        except StoreError as e:
            self._down(e)
            raise AccountingUnavailable(f"Problem talking to the database: {e}") from None

    def lookup(self, job_id):
        """A job by id from the journal (dependencies on jobs the controller has forgotten)."""
        rows = self.journal.query_jobs(job_ids=[job_id])
        return rows[0] if rows else None

    # -- purging -----------------------------------------------------------------
    async def purge(self):
        """Apply PurgeJobAfter (and MinJobAge to the journal with an external store)."""
        now = self.now()
        if self.purge_job_after:
            before = now - self.purge_job_after
            if self.external:
                n = await self._in_worker(self.store.purge, before)
            else:
                n = self.journal.purge_finished(before, self.PURGE_BATCH)
                if n >= self.PURGE_BATCH:
                    self._last_purge = 0.0  # more to go: next round, not next interval
            if n:
                self.purged_records += n
                log.info("purged %d job records that ended before %s (PurgeJobAfter)", n,
                         time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(before)))
        if self.external and self.min_job_age > 0:
            n = self.journal.purge_finished(now - self.min_job_age, self.PURGE_BATCH)
            if n >= self.PURGE_BATCH:
                self._last_purge = 0.0
            if n:
                self.purged_journal += n
                log.debug("journal: forgot %d shipped jobs older than MinJobAge", n)

    # -- the loop --------------------------------------------------------------------
    async def run(self):
        """Ship and purge forever (cancelled when the controller stops)."""
        backoff = self.INTERVAL
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), backoff)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                backoff = self.INTERVAL
                interval = self._purge_interval()
                if interval and self.now() - self._last_purge >= interval:
                    self._last_purge = self.now()
                    await self.purge()
            except AccountingUnavailable:
                backoff = min(max(backoff * 2, 1.0), 30.0)
            except StoreError as e:
                self._down(e)
                backoff = min(max(backoff * 2, 1.0), 30.0)
            except Exception:  # keep shipping; the log says what broke
                log.exception("accounting agent round failed")
                backoff = 5.0

    def close(self):
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.store.close()
