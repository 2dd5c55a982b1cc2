"""The controller's durable journal: an embedded SQLite database in WAL mode.

Why SQLite in WAL mode: every accepted change (submit, cancel, state
transition) is committed here *before* the client gets its answer. A commit in
WAL mode is an append to the ``-wal`` file, which the OS keeps even when the
controller is ``kill -9``-ed, so an acknowledged job is never lost and, because
the job id counter lives in the same transaction as the job, never duplicated.
``synchronous=NORMAL`` (the default here) survives process crashes; set
``JournalSync=FULL`` in the config to also survive power loss, at the cost of
an fsync per commit.

The journal stores whole job records as JSON (the API's job dict) plus a few
indexed columns for accounting queries, and the bulky, write-once parts of a
submission (script, environment) in a separate table, so a state transition
rewrites a few hundred bytes rather than the whole environment.

The ``jobs`` table is also the default accounting store (what ``sacct``
reads). With an external accounting database (``AccountingStorageURL``, see
``batch_backend.accounting``) every saved job is also queued in
``acct_outbox`` in the same transaction, and the accounting agent ships it;
the journal then forgets finished jobs once they are shipped and older than
MinJobAge, as slurmctld does, so it stays small and restarts stay fast.
"""

import json
import sqlite3
import time

from ..accounting.query import JOB_COLUMNS as _JOB_COLUMNS
from ..accounting.query import job_row, where_clause
from .metrics import COMMIT_BUCKETS, Histogram

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    array_job_id INTEGER,
    state TEXT NOT NULL,
    user TEXT NOT NULL,
    uid INTEGER NOT NULL,
    partition TEXT NOT NULL,
    name TEXT NOT NULL,
    submit_time REAL NOT NULL,
    start_time REAL,
    end_time REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_end ON jobs(end_time);
CREATE INDEX IF NOT EXISTS jobs_array ON jobs(array_job_id);
CREATE TABLE IF NOT EXISTS payloads (job_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submit_tokens (token TEXT PRIMARY KEY, job_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS submit_tokens_job ON submit_tokens(job_id);
CREATE TABLE IF NOT EXISTS acct_outbox (job_id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS acct_records (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,
                                         PRIMARY KEY (kind, key));
"""

def _job_row(job, text=None):
    return job_row(job, text if text is not None else json.dumps(job, separators=(",", ":")))


class Journal:
    """Durable storage of jobs, submissions, node admin state and accounting records."""

    def __init__(self, path, *, sync="NORMAL"):
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if str(sync).upper() == 'FULL' else 'NORMAL'}")
        self.db.executescript(SCHEMA)
        #: queue saved jobs for an external accounting store (see enable_outbox)
        self.outbox = False
        #: /metrics: batchhub_journal_commit_seconds
        self.commit_times = Histogram(COMMIT_BUCKETS)
        self._depth = 0  # open transaction() blocks: only the outermost one commits

    def close(self):
        self.db.close()

    # -- transactions ------------------------------------------------------
    def transaction(self):
        """``with journal.transaction():`` groups writes into one commit.

        Blocks nest: an inner block joins the outer one, which alone commits (or
        rolls back everything). That is how a bulk submission is one commit.
        """
        return _Transaction(self)

    # -- job ids -----------------------------------------------------------
    def next_job_id(self, first_job_id=1):
        row = self.db.execute("SELECT value FROM meta WHERE key='next_job_id'").fetchone()
        if row:
            return int(row[0])
        row = self.db.execute("SELECT MAX(job_id) FROM jobs").fetchone()
        return max(first_job_id, (row[0] or 0) + 1)

    def set_next_job_id(self, value):
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('next_job_id', ?)", (str(value),))

    # -- small durable values (usage snapshots, ...) ----------------------------
    def get_meta(self, key):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key, value):
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    # -- jobs --------------------------------------------------------------
    def save_job(self, job):
        self.save_jobs([job])

    def save_jobs(self, jobs, texts=None):
        """Save job records; ``texts`` are their JSON encodings when the caller has them."""
        texts = texts or [None] * len(jobs)
        sql = f"INSERT OR REPLACE INTO jobs({','.join(_JOB_COLUMNS)}, data) VALUES ({','.join('?' * 11)})"
        rows = [_job_row(j, t) for j, t in zip(jobs, texts)]
        if not self.outbox:
            self.db.executemany(sql, rows)
            return
        with self.transaction():  # the record and its place in the outbox commit together, or neither
            self.db.executemany(sql, rows)
            self._queue_for_accounting([j["job_id"] for j in jobs])

    def save_payload(self, job_id, payload):
        self.db.execute("INSERT OR REPLACE INTO payloads(job_id, data) VALUES (?, ?)",
                        (job_id, json.dumps(payload, separators=(",", ":"))))

    def load_payload(self, job_id):
        row = self.db.execute("SELECT data FROM payloads WHERE job_id=?", (job_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def save_submit_token(self, token, job_id):
        self.db.execute("INSERT OR REPLACE INTO submit_tokens(token, job_id) VALUES (?, ?)", (token, job_id))

    def job_for_token(self, token):
        row = self.db.execute("SELECT job_id FROM submit_tokens WHERE token=?", (token,)).fetchone()
        return row[0] if row else None

    def load_live_jobs(self, finished_since):
        """Jobs the controller keeps in memory: unfinished ones and those ended recently."""
        # Two index searches, not "IS NULL OR >=" (which scans the table): when the journal is
        # the accounting store it holds the whole history, and a restart must not read it all.
        rows = self.db.execute(
            "SELECT data FROM (SELECT job_id, data FROM jobs WHERE end_time IS NULL "
            "UNION ALL SELECT job_id, data FROM jobs WHERE end_time >= ?) ORDER BY job_id",
            (finished_since,))
        return [json.loads(r[0]) for r in rows]

    def query_jobs(self, *, job_ids=None, array_ids=None, users=None, start=None, end=None,
                   states=None, partitions=None, names=None):
        """Accounting query (sacct): jobs overlapping [start, end], filtered."""
        where, args = where_clause(job_ids=job_ids, array_ids=array_ids, users=users, start=start, end=end,
                                   states=states, partitions=partitions, names=names)
        return [json.loads(r[0]) for r in self.db.execute("SELECT data FROM jobs" + where + " ORDER BY job_id", args)]

    # -- purge (PurgeJobAfter, MinJobAge) -------------------------------------
    def purge_finished(self, before, limit=5000):
        """Forget up to ``limit`` jobs that ended before ``before`` (payloads, submit tokens too).

        Jobs still waiting in the accounting outbox are kept: a record is never
        dropped before the accounting store has it. Bounded so that a first purge
        of a long history does not hold the controller for seconds: call again
        while it returns ``limit``. Returns how many went.
        """
        ids = [r[0] for r in self.db.execute(
            "SELECT job_id FROM jobs WHERE end_time IS NOT NULL AND end_time < ? "
            "AND job_id NOT IN (SELECT job_id FROM acct_outbox) LIMIT ?", (before, limit))]
        if not ids:
            return 0
        rows = [(i,) for i in ids]
        with self.transaction():
            self.db.executemany("DELETE FROM payloads WHERE job_id=?", rows)
            self.db.executemany("DELETE FROM submit_tokens WHERE job_id=?", rows)
            self.db.executemany("DELETE FROM jobs WHERE job_id=?", rows)
        return len(ids)

    def job_count(self):
        return self.db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]

    # -- accounting outbox (external accounting store) -------------------------
    def enable_outbox(self):
        """From now on, every saved job is queued for the external accounting store."""
        self.outbox = True

    def _queue_for_accounting(self, job_ids):
        self.db.executemany(
            "INSERT INTO acct_outbox(job_id, version) VALUES (?, 1) "
            "ON CONFLICT(job_id) DO UPDATE SET version = version + 1", [(i,) for i in job_ids])

    def queue_all_for_accounting(self):
        """Queue every journaled job (an accounting store configured after jobs ran)."""
        self.db.execute("INSERT OR IGNORE INTO acct_outbox(job_id, version) SELECT job_id, 1 FROM jobs")

    def outbox_batch(self, limit=2000):
        """``[(job_id, version, data)]`` waiting to be shipped, oldest ids first."""
        return self.db.execute(
            "SELECT o.job_id, o.version, j.data FROM acct_outbox o JOIN jobs j ON j.job_id = o.job_id "
            "ORDER BY o.job_id LIMIT ?", (limit,)).fetchall()

    def outbox_done(self, shipped):
        """Drop shipped entries, unless the job changed again meanwhile (a newer version waits)."""
        with self.transaction():
            self.db.executemany("DELETE FROM acct_outbox WHERE job_id=? AND version=?",
                                [(job_id, version) for job_id, version, _ in shipped])

    def accounting_target(self):
        """The accounting store the outbox last fed (None: the journal itself)."""
        row = self.db.execute("SELECT value FROM meta WHERE key='accounting_target'").fetchone()
        return row[0] if row else None

    def set_accounting_target(self, target):
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('accounting_target', ?)", (target,))

    def outbox_size(self):
        return self.db.execute("SELECT COUNT(*) FROM acct_outbox").fetchone()[0]

    # -- nodes -------------------------------------------------------------
    def save_node(self, name, data):
        self.db.execute("INSERT OR REPLACE INTO nodes(name, data) VALUES (?, ?)", (name, json.dumps(data)))

    def load_nodes(self):
        return {name: json.loads(data) for name, data in self.db.execute("SELECT name, data FROM nodes")}

    # -- reservations ------------------------------------------------------
    def save_reservation(self, resv):
        data = {k: v for k, v in resv.items() if not k.startswith("_")}
        self.db.execute("INSERT OR REPLACE INTO reservations(name, data) VALUES (?, ?)",
                        (resv["name"], json.dumps(data, separators=(",", ":"))))

    def delete_reservation(self, name):
        self.db.execute("DELETE FROM reservations WHERE name=?", (name,))

    def load_reservations(self):
        return {name: json.loads(data) for name, data in self.db.execute("SELECT name, data FROM reservations")}

    def reservation_suffix(self):
        """The counter behind automatic reservation names (``alice_3``)."""
        row = self.db.execute("SELECT value FROM meta WHERE key='resv_suffix'").fetchone()
        return int(row[0]) if row else 0

    def set_reservation_suffix(self, value):
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('resv_suffix', ?)", (str(value),))
    # -- accounting records (sacctmgr: clusters, accounts, users, associations, QOS) --
    def save_acct_record(self, kind, key, data):
        self.db.execute("INSERT OR REPLACE INTO acct_records(kind, key, data) VALUES (?, ?, ?)",
                        (kind, key, json.dumps(data, separators=(",", ":"))))

    def drop_acct_record(self, kind, key):
        self.db.execute("DELETE FROM acct_records WHERE kind=? AND key=?", (kind, key))

    def load_acct_records(self):
        """[(kind, key, record)] in insertion order."""
        return [(k, key, json.loads(d)) for k, key, d in
                self.db.execute("SELECT kind, key, data FROM acct_records ORDER BY rowid")]


class _Transaction:
    def __init__(self, journal):
        self.journal = journal

    def __enter__(self):
        if self.journal._depth == 0:
            self.journal.db.execute("BEGIN IMMEDIATE")
        self.journal._depth += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        self.journal._depth -= 1
        if self.journal._depth == 0:
            if exc_type is None:
                t0 = time.perf_counter()
                self.journal.db.execute("COMMIT")
                self.journal.commit_times.observe(time.perf_counter() - t0)
            else:
                self.journal.db.execute("ROLLBACK")
        return False
