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
"""

import json
import sqlite3

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
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS acct_records (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,
                                         PRIMARY KEY (kind, key));
"""

_JOB_COLUMNS = ("job_id", "array_job_id", "state", "user", "uid", "partition", "name",
                "submit_time", "start_time", "end_time")


def _job_row(job, text=None):
    # Estimated start and end times are not facts: the indexed columns keep only real ones.
    start = None if job.get("start_estimated") else job.get("start_time")
    end = job.get("end_time") if job["state"] not in ("RUNNING", "PENDING", "SUSPENDED", "COMPLETING") else None
    return (job["job_id"], job.get("array_job_id"), job["state"], job["user"], job["uid"],
            job["partition"], job["name"], job["submit_time"], start, end,
            text if text is not None else json.dumps(job, separators=(",", ":")))


class Journal:
    """Durable storage of jobs, submissions, node admin state and accounting records."""

    def __init__(self, path, *, sync="NORMAL"):
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if str(sync).upper() == 'FULL' else 'NORMAL'}")
        self.db.executescript(SCHEMA)
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
        self.db.execute(
            f"INSERT OR REPLACE INTO jobs({','.join(_JOB_COLUMNS)}, data) VALUES ({','.join('?' * 11)})",
            _job_row(job))

    def save_jobs(self, jobs, texts=None):
        """Save job records; ``texts`` are their JSON encodings when the caller has them."""
        texts = texts or [None] * len(jobs)
        self.db.executemany(
            f"INSERT OR REPLACE INTO jobs({','.join(_JOB_COLUMNS)}, data) VALUES ({','.join('?' * 11)})",
            [_job_row(j, t) for j, t in zip(jobs, texts)])

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
        rows = self.db.execute(
            "SELECT data FROM jobs WHERE end_time IS NULL OR end_time >= ? ORDER BY job_id",
            (finished_since,))
        return [json.loads(r[0]) for r in rows]

    def query_jobs(self, *, job_ids=None, array_ids=None, users=None, start=None, end=None,
                   states=None, partitions=None, names=None):
        """Accounting query (sacct): jobs overlapping [start, end], filtered."""
        where, args = [], []
        id_terms = []
        if job_ids:
            id_terms.append(f"job_id IN ({','.join('?' * len(job_ids))})")
            args.extend(job_ids)
        if array_ids:
            id_terms.append(f"array_job_id IN ({','.join('?' * len(array_ids))})")
            args.extend(array_ids)
        if id_terms:
            where.append("(" + " OR ".join(id_terms) + ")")
        for col, values in (("user", users), ("state", states), ("partition", partitions), ("name", names)):
            if values:
                where.append(f"{col} IN ({','.join('?' * len(values))})")
                args.extend(values)
        if start is not None:
            where.append("(end_time IS NULL OR end_time >= ?)")
            args.append(start)
        if end is not None:
            where.append("submit_time <= ?")
            args.append(end)
        sql = "SELECT data FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY job_id"
        return [json.loads(r[0]) for r in self.db.execute(sql, args)]

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
            self.journal.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False
