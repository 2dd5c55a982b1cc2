"""The controller's per-user job index that submit limits count from, on a real Cluster and journal.

Why: a user flooding sbatch gets every extra submission refused by
MaxSubmitJobs; counting their active jobs must not scan everyone's queue, so
the controller keeps ``jobs_by_user`` next to ``jobs``. These tests check the
index stays equal to ``jobs`` through submit, array task split-off, cancel,
purge after MinJobAge and a restart (recover), and that the limit it feeds
refuses exactly the extra submission.
"""

import pytest

from batch_backend.conf import parse_conf
from batch_backend.controller.associations import POLICY_VIOLATION
from batch_backend.controller.cluster import Cluster
from batch_backend.controller.identity import Identity
from batch_backend.controller.journal import Journal
from batch_backend.errors import BatchError

CONF = """\
SlurmdParameters=config_overrides
AccountingStorageEnforce=associations,limits,qos
MinJobAge=10
NodeName=n1 CPUs=2 RealMemory=1000
PartitionName=debug Nodes=n1 Default=YES
"""

ROOT = Identity(uid=0, gid=0, user="root", admin=True)
MALLORY = Identity(uid=4242, gid=4242, user="mallory", admin=False)


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def make(path, clock):
    c = Cluster(parse_conf(CONF), Journal(str(path / "journal.sqlite")), now=clock)
    c.recover()
    return c


def held(**extra):
    return dict({"script": "#!/bin/sh\ntrue\n", "workdir": "/tmp", "hold": True}, **extra)


def index_matches(c):
    flat = {job_id: job for jobs in c.jobs_by_user.values() for job_id, job in jobs.items()}
    return flat.keys() == c.jobs.keys() and all(flat[i] is c.jobs[i] for i in flat) \
        and all(job["user"] == user for user, jobs in c.jobs_by_user.items() for job in jobs.values())


@pytest.fixture
def setup(tmp_path):
    clock = Clock()
    c = make(tmp_path, clock)
    c.assoc.change("account", "add", {"names": ["flood"], "set": {"max_submit": 3}}, ROOT)
    c.assoc.change("user", "add", {"names": ["mallory"], "set": {"accounts": ["flood"]}}, ROOT)
    yield c, clock, tmp_path
    c.journal.close()


def test_max_submit_refuses_exactly_the_extra_submission_and_others_do_not_count(setup):
    c, _, _ = setup
    for _ in range(5):
        c.submit(held(), ROOT)  # another user's queue does not count against mallory
    mine = [c.submit(held(), MALLORY) for _ in range(3)]
    passes, next_id = [], c.next_job_id
    c.request_schedule = lambda: passes.append(1)
    with pytest.raises(BatchError, match=r"Job violates accounting/QOS policy \(job submit limit"):
        c.submit(held(), MALLORY)
    assert passes == [] and c.next_job_id == next_id  # a refusal costs no pass and no job id
    assert c.journal.query_jobs(job_ids=[next_id]) == []
    assert len(c.jobs) == 8 and index_matches(c)
    assert sorted(j["job_id"] for j in c.active_jobs("mallory")) == mine
    c.cancel([str(mine[0])], MALLORY)
    assert len(c.active_jobs("mallory")) == 2
    c.submit(held(), MALLORY)  # room again
    assert POLICY_VIOLATION.startswith("Job violates")


def test_index_follows_array_split_purge_and_restart(setup):
    c, clock, path = setup
    c.node_register("n1", {"cpus": 2, "memory_mb": 1000, "gpus": [], "running": [], "finished": []})
    array = c.submit({"script": "#!/bin/sh\nsleep 100\n", "workdir": "/tmp", "array": "0-1"}, MALLORY)
    c.schedule_now()  # both tasks start: task 0 is split off the array record as a job of its own
    assert len(c.jobs) == 2 and index_matches(c)
    c.submit(held(), MALLORY)  # two tasks + this one = MaxSubmitJobs
    with pytest.raises(BatchError):
        c.submit(held(), MALLORY)
    c.cancel([str(j["job_id"]) for j in c.active_jobs("mallory")], MALLORY)
    for job in c.jobs.values():  # what the node daemon would report for the killed tasks
        if job["state"] == "COMPLETING" or job["state"] == "RUNNING":
            c.node_event("n1", {"event": "ended", "job_id": job["job_id"], "state": "CANCELLED",
                                "exit_code": 0, "exit_signal": 15})
    assert c.active_jobs("mallory") == [] and index_matches(c), [j["state"] for j in c.jobs.values()]
    clock.t += 60  # past MinJobAge: finished jobs leave memory and the index
    assert c.purge_old_jobs() == 3
    assert "mallory" not in c.jobs_by_user and index_matches(c)
    kept = c.submit(held(), MALLORY)
    c.journal.close()
    c = make(path, clock)  # a restarted controller rebuilds the index from the journal
    assert [j["job_id"] for j in c.active_jobs("mallory")] == [kept] and index_matches(c)
    assert array
