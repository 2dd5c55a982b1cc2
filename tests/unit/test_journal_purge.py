"""Journal purge: old finished jobs go in bounded rounds; unshipped and unfinished ones stay."""

import time

from batch_backend.controller.journal import Journal


def job(job_id, state="COMPLETED", end=None):
    return {"job_id": job_id, "array_job_id": None, "state": state, "user": "u", "uid": 1000, "partition": "p",
            "name": "n", "submit_time": 1.0, "start_time": 2.0, "end_time": end}


def test_purge_takes_old_finished_jobs_in_bounded_rounds(tmp_path):
    j = Journal(str(tmp_path / "journal.sqlite"))
    now = time.time()
    with j.transaction():
        j.save_jobs([job(i, end=now - 1000) for i in range(1, 26)] + [job(26, end=now)]
                    + [job(27, "PENDING"), job(28, "RUNNING", end=now - 5000)])
        for i in (1, 2):
            j.save_payload(i, {"script": "x"})
            j.save_submit_token(f"t{i}", i)
    assert j.purge_finished(now - 10, limit=10) == 10
    assert j.purge_finished(now - 10, limit=10) == 10
    assert j.purge_finished(now - 10, limit=10) == 5
    assert j.purge_finished(now - 10, limit=10) == 0
    assert [r["job_id"] for r in j.query_jobs()] == [26, 27, 28]  # recent, pending, running (end = limit)
    assert j.load_payload(1) is None and j.job_for_token("t1") is None


def test_purge_keeps_jobs_not_yet_shipped_to_the_accounting_store(tmp_path):
    j = Journal(str(tmp_path / "journal.sqlite"))
    j.enable_outbox()
    now = time.time()
    j.save_jobs([job(1, end=now - 1000), job(2, end=now - 1000)])
    j.outbox_done([row for row in j.outbox_batch() if row[0] == 1])  # job 1 shipped, job 2 not
    assert j.purge_finished(now - 10) == 1
    assert [r["job_id"] for r in j.query_jobs()] == [2]
    assert [row[0] for row in j.outbox_batch()] == [2]


def test_a_job_changed_while_being_shipped_stays_queued(tmp_path):
    j = Journal(str(tmp_path / "journal.sqlite"))
    j.enable_outbox()
    j.save_jobs([job(1, "RUNNING")])
    batch = j.outbox_batch()
    j.save_jobs([job(1, "COMPLETED", end=5.0)])  # changes while the batch is on its way
    j.outbox_done(batch)
    assert [(row[0], '"COMPLETED"' in row[2]) for row in j.outbox_batch()] == [(1, True)]


def test_live_jobs_are_read_without_the_history(tmp_path):
    j = Journal(str(tmp_path / "journal.sqlite"))
    now = time.time()
    j.save_jobs([job(1, end=now - 1000), job(2, "PENDING"), job(3, end=now - 1)])
    assert [jb["job_id"] for jb in j.load_live_jobs(now - 60)] == [2, 3]
