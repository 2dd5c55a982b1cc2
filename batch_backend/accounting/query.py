"""The accounting query (what ``sacct`` asks), as SQL shared by every job-record store.

The controller's journal (the default accounting store) and the external SQL
stores (SQLite file, PostgreSQL) hold job records in tables with the same
columns, so one builder gives them the same filters and therefore the same
``sacct`` behaviour. Placeholders are ``?``; a store using another paramstyle
rewrites them (the SQL contains no literal question marks).
"""

#: the indexed columns every job-record table has, besides ``data`` (the record as JSON)
JOB_COLUMNS = ("job_id", "array_job_id", "state", "user", "uid", "partition", "name",
               "submit_time", "start_time", "end_time")

#: job states after which a record can no longer change (the end time is a fact)
_ACTIVE = ("RUNNING", "PENDING", "SUSPENDED", "COMPLETING")


def job_row(job, text):
    """The column values of a job record (estimated start and end times are not facts: left out)."""
    start = None if job.get("start_estimated") else job.get("start_time")
    end = job.get("end_time") if job["state"] not in _ACTIVE else None
    return (job["job_id"], job.get("array_job_id"), job["state"], job["user"], job["uid"],
            job["partition"], job["name"], job["submit_time"], start, end, text)


def where_clause(*, job_ids=None, array_ids=None, users=None, start=None, end=None, states=None,
                 partitions=None, names=None):
    """``(sql, args)`` selecting jobs that overlap [start, end] and match the filters.

    ``sql`` is empty or starts with `` WHERE``. Column names are quoted
    (``"user"`` is a reserved word in PostgreSQL).
    """
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
            where.append(f'"{col}" IN ({",".join("?" * len(values))})')
            args.extend(values)
    if start is not None:
        where.append("(end_time IS NULL OR end_time >= ?)")
        args.append(start)
    if end is not None:
        where.append("submit_time <= ?")
        args.append(end)
    return (" WHERE " + " AND ".join(where)) if where else "", args
