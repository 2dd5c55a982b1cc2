"""Job records in an SQL database: SQLite file or PostgreSQL, one schema, one set of queries.

Used only from the accounting agent's worker thread (one connection, made
lazily there): a database that is down or slow never blocks the controller's
event loop. A failed statement drops the connection; the next call reconnects.
"""

import json
import sqlite3

from .query import JOB_COLUMNS, job_row, where_clause

#: the accounting table. Portable DDL: SQLite and PostgreSQL read it the same way.
#: Keyed by cluster as slurmdbd's per-cluster tables are: clusters may share a database.
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS job_records (
        cluster TEXT NOT NULL,
        job_id BIGINT NOT NULL,
        array_job_id BIGINT,
        state TEXT NOT NULL,
        "user" TEXT NOT NULL,
        uid BIGINT NOT NULL,
        partition TEXT NOT NULL,
        name TEXT NOT NULL,
        submit_time DOUBLE PRECISION NOT NULL,
        start_time DOUBLE PRECISION,
        end_time DOUBLE PRECISION,
        data TEXT NOT NULL,
        PRIMARY KEY (cluster, job_id))""",
    "CREATE INDEX IF NOT EXISTS job_records_end ON job_records(cluster, end_time)",
    "CREATE INDEX IF NOT EXISTS job_records_array ON job_records(cluster, array_job_id)",
    'CREATE INDEX IF NOT EXISTS job_records_user ON job_records(cluster, "user")',
]

_COLS = ("cluster",) + JOB_COLUMNS + ("data",)


def _quote(col):
    return f'"{col}"'


_UPSERT = (f"INSERT INTO job_records ({','.join(_quote(c) for c in _COLS)}) "
           f"VALUES ({','.join('?' * len(_COLS))}) ON CONFLICT (cluster, job_id) DO UPDATE SET "
           + ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in _COLS[2:]))


class StoreError(Exception):
    """The database refused or could not be reached; ``str()`` says why in one line."""


class SQLJobStore:
    """Job records of one cluster in an SQL database."""

    def __init__(self, connect, cluster_name, *, paramstyle="qmark", label=""):
        self._connect = connect
        self.cluster = cluster_name
        self.paramstyle = paramstyle
        self.label = label
        self.conn = None

    @classmethod
    def sqlite(cls, path, cluster_name):
        def connect():
            conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        return cls(connect, cluster_name, label=f"sqlite:{path}")

    @classmethod
    def postgresql(cls, url, cluster_name):
        try:
            import psycopg
        except ImportError:
            from . import AccountingConfigError
            raise AccountingConfigError("AccountingStorageURL is a PostgreSQL URL but psycopg is not installed "
                                        "(pip install 'batchhub[postgres]')") from None

        def connect():
            return psycopg.connect(url, connect_timeout=5)
        from . import redact
        return cls(connect, cluster_name, paramstyle="format", label=redact(url))

    # -- plumbing ------------------------------------------------------------
    def _sql(self, text):
        return text.replace("?", "%s") if self.paramstyle == "format" else text

    def _run(self, work):
        """Run ``work(cursor)`` in one transaction; connection problems become StoreError."""
        try:
            if self.conn is None:
                self.conn = self._connect()
                cur = self.conn.cursor()
                for stmt in SCHEMA:
                    cur.execute(stmt)
                self.conn.commit()
            cur = self.conn.cursor()
            result = work(cur)
            self.conn.commit()
            return result
        except Exception as e:  # noqa: BLE001 - any driver error: drop the connection, report
            self.close()
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreError(f"{self.label}: {first_line}") from None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self.conn = None

    # -- the store's operations ------------------------------------------------
    def write(self, shipped):
        """Upsert ``[(job_id, version, json_text)]`` in one transaction."""
        rows = [(self.cluster,) + job_row(json.loads(text), text) for _, _, text in shipped]
        self._run(lambda cur: cur.executemany(self._sql(_UPSERT), rows))

    def query_jobs(self, **filters):
        """Same filters and order as the journal's query (see :func:`.query.where_clause`)."""
        where, args = where_clause(**filters)
        sql = "SELECT data FROM job_records WHERE cluster = ?" + (" AND " + where[len(" WHERE "):] if where else "")
        sql += " ORDER BY job_id"

        def work(cur):
            cur.execute(self._sql(sql), [self.cluster, *args])
            return [json.loads(r[0]) for r in cur.fetchall()]
        return self._run(work)

    def purge(self, before):
        """Delete records of jobs that ended before ``before``; returns how many."""
        def work(cur):
            cur.execute(self._sql("DELETE FROM job_records WHERE cluster = ? AND end_time IS NOT NULL "
                                  "AND end_time < ?"), (self.cluster, before))
            return cur.rowcount
        return self._run(work)

    def count(self):
        def work(cur):
            cur.execute(self._sql("SELECT COUNT(*) FROM job_records WHERE cluster = ?"), (self.cluster,))
            return cur.fetchone()[0]
        return self._run(work)
