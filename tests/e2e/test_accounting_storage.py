"""Accounting storage by URL: sacct behaves the same on the journal, an SQLite file and PostgreSQL.

The PostgreSQL cases run against a real server the test starts (Debian's
postgresql binaries, see tests/pg_support.py); they skip, saying why, when
no server can be started here.
"""

import os
import sqlite3
import time
import uuid

import pytest

from cluster_support import TEST_CONF, LiveCluster
from pg_support import PostgresServer, Unavailable

BACKENDS = ["journal", "sqlite", "postgresql"]


@pytest.fixture(scope="module")
def pg(request):
    server = PostgresServer()
    try:
        server.start()
    except Unavailable as e:
        server.cleanup()
        pytest.skip(f"PostgreSQL tests skipped: {e}")
    yield server
    server.cleanup()


def store_conf(backend, home, request, db_name):
    """slurm.conf lines selecting the accounting store of ``backend``."""
    if backend == "journal":
        return ""
    if backend == "sqlite":
        return f"AccountingStorageURL=sqlite:///{home}/accounting.sqlite\n"
    server = request.getfixturevalue("pg")
    server.create_database(db_name)
    return f"AccountingStorageURL={server.url(db_name)}\n"


def start_cluster(backend, home, request, extra="", db_name=None):
    os.makedirs(home, exist_ok=True)
    db_name = db_name or f"acct_{uuid.uuid4().hex[:12]}"
    c = LiveCluster(home, TEST_CONF + store_conf(backend, home, request, db_name) + extra)
    c.up()
    c.db_name = db_name
    return c


@pytest.fixture(scope="module", params=BACKENDS)
def acct_cluster(request, tmp_path_factory):
    c = start_cluster(request.param, tmp_path_factory.mktemp(f"acct-{request.param}"), request)
    c.backend = request.param
    yield c
    c.down()


def wait_final(c, job_ids, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = c.run("sacct", "-P", "-n", "-X", "-S", "2000-01-01", "-o", "JobID,State")
        rows = dict(line.split("|") for line in r.stdout.splitlines())
        if all(rows.get(str(j), "PENDING") not in ("PENDING", "RUNNING", "COMPLETING") for j in job_ids):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"jobs did not end: {r.stdout} {r.stderr}")


def sacct(c, *args):
    r = c.run("sacct", "-P", "-n", *args)
    assert r.returncode == 0, r.stderr
    return [line.split("|") for line in r.stdout.splitlines()]


def test_sacct_answers_the_same_on_every_accounting_store(acct_cluster):
    c = acct_cluster
    ok = c.sbatch("-J", "ok", "-o", "/dev/null", "--wrap=true")
    failed = c.sbatch("-J", "bad", "-o", "/dev/null", "--wrap=exit 3")
    held = c.sbatch("-J", "held", "-o", "/dev/null", "--hold", "--wrap=true")
    assert c.run("scancel", str(held)).returncode == 0
    array = c.sbatch("-J", "arr", "-o", "/dev/null", "--array=1-3", "--wrap=true")
    stepped = c.sbatch("-J", "stepped", "-o", "/dev/null", "--wrap=srun -n 1 true")
    wait_final(c, [ok, failed, held, stepped])
    deadline = time.time() + 60
    while time.time() < deadline:
        tasks = sacct(c, "-X", "-j", str(array), "-o", "JobID,State")
        if len(tasks) == 3 and all(state == "COMPLETED" for _, state in tasks):
            break
        time.sleep(0.2)

    everything = sacct(c, "-X", "-S", "2000-01-01", "-o", "JobName,State,ExitCode")
    assert sorted(everything) == sorted([
        ["ok", "COMPLETED", "0:0"], ["bad", "FAILED", "3:0"], ["held", "CANCELLED by 0", "0:0"],
        ["arr", "COMPLETED", "0:0"], ["arr", "COMPLETED", "0:0"], ["arr", "COMPLETED", "0:0"],
        ["stepped", "COMPLETED", "0:0"]]) or sorted(everything) == sorted([
        ["ok", "COMPLETED", "0:0"], ["bad", "FAILED", "3:0"], ["held", f"CANCELLED by {os.getuid()}", "0:0"],
        ["arr", "COMPLETED", "0:0"], ["arr", "COMPLETED", "0:0"], ["arr", "COMPLETED", "0:0"],
        ["stepped", "COMPLETED", "0:0"]])
    # a job with its steps
    assert sacct(c, "-j", str(stepped), "-o", "JobID,State") == [
        [str(stepped), "COMPLETED"], [f"{stepped}.batch", "COMPLETED"], [f"{stepped}.0", "COMPLETED"]]
    assert sacct(c, "-j", str(failed), "-o", "JobID,ExitCode") == [[str(failed), "3:0"], [f"{failed}.batch", "3:0"]]
    # filters: state, name, array, user, time window
    assert sacct(c, "-X", "-S", "2000-01-01", "-s", "F", "-o", "JobID") == [[str(failed)]]
    assert sacct(c, "-X", "-S", "2000-01-01", "--name=ok,bad", "-o", "JobName") == [["ok"], ["bad"]]
    assert sorted(r[0] for r in sacct(c, "-X", "-j", str(array), "-o", "JobID")) == \
        [f"{array}_1", f"{array}_2", f"{array}_3"]
    assert sacct(c, "-X", "-j", f"{array}_2", "-o", "JobID") == [[f"{array}_2"]]
    assert sacct(c, "-X", "-S", "2000-01-01", "-u", "nobody", "-o", "JobID") == []
    assert sacct(c, "-X", "-S", "2000-01-01", "-E", "2001-01-01", "-o", "JobID") == []
    assert sacct(c, "-X", "-j", "999999", "-o", "JobID") == []


def job_record_columns(c):
    """Column names of the store's job table (the schema is the same on every SQL store)."""
    if c.backend == "sqlite":
        db = sqlite3.connect(os.path.join(c.home, "accounting.sqlite"))
        return [row[1] for row in db.execute("PRAGMA table_info(job_records)")]
    pg = c.pg
    return [r[0] for r in pg.query("SELECT column_name FROM information_schema.columns "
                                   "WHERE table_name = 'job_records' ORDER BY ordinal_position", db=c.db_name)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_external_store_holds_records_under_the_same_schema(backend, tmp_path, request):
    c = start_cluster(backend, tmp_path / backend, request)
    c.backend = backend
    c.pg = request.getfixturevalue("pg") if backend == "postgresql" else None
    try:
        job = c.sbatch("-o", "/dev/null", "--wrap=exit 2")
        c.wait_state(job, "FAILED")
        assert job_record_columns(c) == ["cluster", "job_id", "array_job_id", "state", "user", "uid", "partition",
                                         "name", "submit_time", "start_time", "end_time", "data"]
        if backend == "postgresql":
            rows = c.pg.query("SELECT cluster, job_id, state FROM job_records", db=c.db_name)
        else:
            rows = sqlite3.connect(os.path.join(c.home, "accounting.sqlite")).execute(
                "SELECT cluster, job_id, state FROM job_records").fetchall()
        assert [tuple(r) for r in rows] == [("testcluster", job, "FAILED")]
    finally:
        c.down()


def test_records_wait_while_postgresql_is_down_and_survive_kill_9(pg, tmp_path, request):
    c = start_cluster("postgresql", tmp_path / "pgdown", request)
    try:
        before = c.sbatch("-o", "/dev/null", "--wrap=true")
        c.wait_state(before, "COMPLETED")
        pg.stop()
        job = c.sbatch("-o", "/dev/null", "--wrap=exit 5")
        deadline = time.time() + 30
        while c.run("squeue", "-h", "-j", str(job)).stdout.strip() and time.time() < deadline:
            time.sleep(0.2)
        r = c.run("sacct", "-j", str(job))
        assert r.returncode != 0
        assert "Traceback" not in r.stderr
        assert "Problem talking to the database" in r.stderr, r.stderr
        # the controller keeps serving; the record waits in the journal's outbox (on disk)
        assert c.run("squeue").returncode == 0
        c.kill_controller()
        c.start_controller()
        pg.restart()
        deadline = time.time() + 60
        while time.time() < deadline:
            r = c.run("sacct", "-P", "-n", "-X", "-j", f"{before},{job}", "-o", "JobID,State,ExitCode")
            if r.returncode == 0:
                break
            time.sleep(0.5)
        assert r.stdout.splitlines() == [f"{before}|COMPLETED|0:0", f"{job}|FAILED|5:0"], r.stderr
    finally:
        c.down()


def test_bad_accounting_url_stops_the_controller_with_a_clear_error(tmp_path):
    c = LiveCluster(tmp_path, TEST_CONF + "AccountingStorageURL=mysql://db/acct\n")
    r = c.batchhub("up", "--no-link-cli", "--no-hub")
    try:
        assert r.returncode != 0
        assert "unsupported scheme 'mysql'" in r.stderr
        assert "Traceback" not in r.stderr + r.stdout
    finally:
        c.down()


# -- purging: MinJobAge (controller memory, journal) and PurgeJobAfter (accounting) ----------
def journal_has(c, job_id):
    db = sqlite3.connect(os.path.join(c.home, "state", "journal.sqlite"))
    try:
        return db.execute("SELECT COUNT(*) FROM jobs WHERE job_id=?", (job_id,)).fetchone()[0] == 1
    finally:
        db.close()


def poll(predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.parametrize("backend", BACKENDS)
def test_min_job_age_forgets_finished_jobs_but_sacct_keeps_them(backend, tmp_path, request):
    c = start_cluster(backend, tmp_path / backend, request, extra="MinJobAge=4\n")
    try:
        job = c.sbatch("-o", "/dev/null", "--wrap=true")
        c.wait_state(job, "COMPLETED")
        assert c.run("scontrol", "show", "job", str(job)).returncode == 0  # still remembered
        assert poll(lambda: c.run("scontrol", "show", "job", str(job)).returncode != 0), "never forgotten"
        r = c.run("scontrol", "show", "job", str(job))
        assert "Invalid job id specified" in r.stderr
        assert c.run("squeue", "-h", "-t", "all", "-j", str(job)).stdout.strip() == ""
        assert sacct(c, "-X", "-j", str(job), "-o", "JobID,State") == [[str(job), "COMPLETED"]]
        if backend == "journal":
            assert journal_has(c, job), "the journal is the accounting store: the record stays"
        else:
            assert poll(lambda: not journal_has(c, job)), "a shipped old job should leave the journal"
        c.kill_controller()
        c.start_controller()
        assert c.run("scontrol", "show", "job", str(job)).returncode != 0
        assert sacct(c, "-X", "-j", str(job), "-o", "JobID,State") == [[str(job), "COMPLETED"]]
    finally:
        c.down()


@pytest.mark.parametrize("backend", BACKENDS)
def test_purge_job_after_removes_old_records_from_accounting(backend, tmp_path, request):
    c = start_cluster(backend, tmp_path / backend, request, extra="MinJobAge=1\nPurgeJobAfter=4seconds\n")
    try:
        pending = c.sbatch("-o", "/dev/null", "--hold", "--wrap=true")
        done = c.sbatch("-o", "/dev/null", "--wrap=true")
        c.wait_state(done, "COMPLETED")
        assert poll(lambda: sacct(c, "-X", "-j", str(done), "-o", "JobID") == []), "record never purged"
        # unfinished jobs are never purged, whatever their age
        assert sacct(c, "-X", "-j", str(pending), "-o", "JobID,State") == [[str(pending), "PENDING"]]
        config = c.run("scontrol", "show", "config").stdout
        assert "PurgeJobAfter" in config and "4seconds" in config
    finally:
        c.down()


def test_a_store_configured_later_receives_every_record(tmp_path, request):
    c = start_cluster("journal", tmp_path / "later", request)
    try:
        first = c.sbatch("-o", "/dev/null", "--wrap=true")
        c.wait_state(first, "COMPLETED")
        c.down()
        with open(c.conf_path, "a") as f:
            f.write(f"AccountingStorageURL=sqlite:///{c.home}/accounting.sqlite\n")
        c.up()
        second = c.sbatch("-o", "/dev/null", "--wrap=exit 1")
        c.wait_state(second, "FAILED")
        assert sacct(c, "-X", "-j", f"{first},{second}", "-o", "JobID,State") == [
            [str(first), "COMPLETED"], [str(second), "FAILED"]]
        rows = sqlite3.connect(os.path.join(c.home, "accounting.sqlite")).execute(
            "SELECT job_id FROM job_records ORDER BY job_id").fetchall()
        assert [r[0] for r in rows] == [first, second]
    finally:
        c.down()
