"""Accounting: where finished (and running) job records live for ``sacct``.

Slurm splits state in two: slurmctld keeps its own state files in
StateSaveLocation (local disk, what a restart recovers), and slurmdbd keeps
the accounting records (jobs, steps) in a database that may live elsewhere and
outlives the controller's memory. BatchHub makes the same cut:

* **The controller's journal stays local SQLite** (``<StateSaveLocation>/
  journal.sqlite``): pending and running jobs, submit payloads, submit tokens,
  the job id counter, node admin state. It is written before every
  acknowledgement, so it must be a local fsync away, never a network round trip.
* **The accounting records** (the job record with its steps: what ``sacct``
  reads) go to the store named by ``AccountingStorageURL`` in slurm.conf:

  - unset (the default): the journal's own ``jobs`` table: nothing to run;
  - ``sqlite:////abs/path/accounting.sqlite``: a separate SQLite file;
  - ``postgresql://user[:password]@host[:port]/dbname`` (libpq URL, any
    libpq parameter in the query string): PostgreSQL, with ``pip install
    'batchhub[postgres]'`` (psycopg 3). Several clusters may share one
    database: records are keyed by (ClusterName, job id).

  Both external stores use the same table (:data:`sql.SCHEMA`) and the same
  queries (:mod:`.query`), so ``sacct`` behaves the same on all three.

With an external store, every journaled job change is also queued in the
journal's outbox in the same transaction; the :class:`~.agent.AccountingAgent`
ships the queue in batches from a worker thread (the controller never waits
on the database to acknowledge a request), retries while the database is
down (the queue is on disk: a ``kill -9`` loses nothing), and flushes before
answering ``sacct`` so users read their own writes. Once shipped, finished
jobs older than MinJobAge leave the journal.

Purging: ``PurgeJobAfter`` (slurmdbd.conf's name; here in slurm.conf) deletes
accounting records of jobs that ended longer ago: a number of months, or a
number with a unit ``hours``/``days``/``months`` as in Slurm, or (BatchHub
extension, for tests and small installs) ``minutes``/``seconds``. Unset: kept
forever, as in Slurm.
"""

import re

#: seconds per PurgeJobAfter unit; Slurm's default unit is months (counted as 30 days here)
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400}


class AccountingConfigError(ValueError):
    """AccountingStorageURL or PurgeJobAfter cannot be used (the controller does not start)."""


def parse_purge_age(text):
    """PurgeJobAfter value -> seconds, or None when unset. ``'12'`` = 12 months, ``'36hours'``..."""
    if text is None or str(text).strip() == "":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", str(text))
    unit = m and (m.group(2).lower().rstrip("s") or "month")
    if not m or unit not in _UNITS:
        raise AccountingConfigError(f"PurgeJobAfter={text}: expected a number of months, or a number "
                                    "followed by hours, days, months (or minutes, seconds)")
    return int(m.group(1)) * _UNITS[unit]


def open_store(url, cluster_name):
    """The external job-record store for ``url`` (None: the journal is the store)."""
    if not url:
        return None
    from .sql import SQLJobStore
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        path = url[len("sqlite://"):] if url.lower().startswith("sqlite://") else ""
        if not path.startswith("/"):
            raise AccountingConfigError(f"AccountingStorageURL={url}: use sqlite:////absolute/path.sqlite")
        return SQLJobStore.sqlite(path, cluster_name)
    if scheme in ("postgresql", "postgres"):
        return SQLJobStore.postgresql(url, cluster_name)
    raise AccountingConfigError(f"AccountingStorageURL={url}: unsupported scheme {scheme!r} "
                                "(use postgresql://... or sqlite:////path)")


def redact(url):
    """The URL without its password (for logs and ``scontrol show config``)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url or "")


__all__ = ["AccountingConfigError", "open_store", "parse_purge_age", "redact"]
