"""Crash safety under load: concurrent clients submit while the controller is kill -9-ed.

The shorter version of ``batchhub bench crash`` (benchmarks/crash_load.py): 200
submissions from 4 client processes, the controller SIGKILLed twice at random
moments while they submit and restarted each time. Every submission must be
acknowledged (the client re-sends its submit token), and the accounting
records must hold each acknowledged job exactly once, in a final state.
"""

import os
import subprocess

import pytest

from benchmarks.crash_load import run_crash_load
from cluster_support import BIN, TEST_CONF


@pytest.mark.parametrize("store", ["journal", "sqlite"])
def test_every_acknowledged_job_exists_once_and_ends_after_kills_under_load(make_cluster, tmp_path, store):
    # "sqlite": the records reach sacct through the journal's outbox, which the kills must not lose
    extra = f"AccountingStorageURL=sqlite:///{tmp_path}/accounting.sqlite\n" if store == "sqlite" else ""
    c = make_cluster(TEST_CONF + extra)

    def start_controller():
        subprocess.Popen([os.path.join(BIN, "batchhub"), "up", "--no-link-cli", "--no-hub"], env=c.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    rep = run_crash_load(c.socket, c.kill_controller, start_controller, submissions=200, clients=4, kills=2,
                         seed=8, workdir=c.workdir, settle_timeout=240, log=lambda *_: None)
    assert rep["failed_clients"] == 0
    assert rep["kills_during_submit"] >= 1, "the kills must land while submissions flow"
    assert rep["acknowledged"] == 200
    assert rep["acked_ids_distinct"] == 200, "one id acknowledged for two submissions"
    assert rep["lost"] == [], "acknowledged jobs missing from accounting"
    assert rep["duplicate_ids"] == []
    assert rep["duplicate_submissions"] == [], "a retried submission created a second job"
    assert rep["ack_mismatch"] == []
    assert rep["job_records"] == 200
    assert rep["not_final"] == []
    assert rep["states"] == {"COMPLETED": 200}
