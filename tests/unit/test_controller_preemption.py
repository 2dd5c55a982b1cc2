"""The controller's side of preemption and gang scheduling, in process, on an injected clock.

A real :class:`Cluster` with a real journal (SQLite in a temp dir); node daemons
are replaced by reading the command queues the controller fills for them, so
the exact transitions, their order and what is journaled can be checked
without waiting for wall-clock time.
"""

from batch_backend.conf import parse_conf
from batch_backend.controller.cluster import Cluster
from batch_backend.controller.identity import Identity
from batch_backend.controller.journal import Journal

CONF = """\
SlurmdParameters=config_overrides
PreemptType=preempt/partition_prio
PreemptMode=SUSPEND,GANG
SchedulerTimeSlice=10
NodeName=p1 CPUs=2 RealMemory=1000
NodeName=g1 CPUs=2 RealMemory=1000
PartitionName=requeue Nodes=p1 Default=YES PriorityTier=1 PreemptMode=REQUEUE
PartitionName=grace Nodes=p1 PriorityTier=1 PreemptMode=CANCEL GraceTime=5
PartitionName=suspend Nodes=p1 PriorityTier=1 PreemptMode=SUSPEND
PartitionName=high Nodes=p1 PriorityTier=10
PartitionName=gang Nodes=g1 PriorityTier=1 OverSubscribe=FORCE:2
"""

ROOT = Identity(uid=0, gid=0, user="root", admin=True)
USER = Identity(uid=4242, gid=4242, user="someone", admin=False)


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def make(tmp_path):
    clock = Clock()
    c = Cluster(parse_conf(CONF), Journal(str(tmp_path / "journal.sqlite")), now=clock)
    c.recover()
    for name in c.nodes:
        c.node_register(name, {"cpus": 2, "memory_mb": 1000, "gpus": [], "running": [], "finished": []})
    return c, clock


def submit(c, partition, tasks=2, time_limit=None):
    sub = {"script": "#!/bin/sh\nsleep 100\n", "partition": partition, "num_tasks": tasks, "workdir": "/tmp"}
    if time_limit:
        sub["time_limit"] = time_limit
    job_id = c.submit(sub, ROOT)
    c.schedule_now()
    return job_id


def commands(c, node, kind=None):
    """Commands queued for ``node`` (and drop them, as a daemon acknowledging them would)."""
    out = [cmd for _, cmd in c.nodes[node].commands if kind is None or cmd["type"] == kind]
    c.nodes[node].commands = []
    return out


def journaled(c, job_id):
    return c.journal.query_jobs(job_ids=[job_id])[0]


def end(c, job_id, state="CANCELLED", code=0, sig=15):
    c.node_event(c.jobs[job_id]["batch_host"], {"event": "ended", "job_id": job_id, "state": state,
                                                 "exit_code": code, "exit_signal": sig})
    c.schedule_now()


def test_admin_suspend_extends_the_end_time_by_the_suspended_time(tmp_path):
    c, clock = make(tmp_path)
    job = submit(c, "requeue", time_limit=10)
    assert c.jobs[job]["end_time"] == 1000 + 600
    commands(c, "p1")
    clock.t = 1100
    c.job_action(str(job), "suspend", ROOT)
    assert journaled(c, job)["state"] == "SUSPENDED"
    assert commands(c, "p1") == [{"type": "suspend", "job_id": job}]
    clock.t = 1400
    c.job_action(str(job), "resume", ROOT)
    rec = journaled(c, job)
    assert rec["state"] == "RUNNING" and rec["end_time"] == 1600 + 300 and rec["suspended_seconds"] == 300
    assert rec["pre_suspend_seconds"] == 100
    assert commands(c, "p1") == [{"type": "resume", "job_id": job, "seconds_left": 500}]


def test_plain_users_may_not_suspend(tmp_path):
    import pytest
    from batch_backend.errors import PermissionDenied
    c, _ = make(tmp_path)
    job = c.submit({"script": "#!/bin/sh\n", "partition": "requeue", "workdir": "/tmp", "user": "someone"}, USER)
    c.schedule_now()
    with pytest.raises(PermissionDenied):
        c.job_action(str(job), "suspend", USER)
    assert c.jobs[job]["state"] == "RUNNING"


def test_requeue_preemption_sequence(tmp_path):
    c, clock = make(tmp_path)
    low = submit(c, "requeue")
    commands(c, "p1")
    high = submit(c, "high")
    assert c.jobs[high]["state"] == "PENDING"
    assert c.jobs[low]["state"] == "COMPLETING" and journaled(c, low)["preempt"]["by"] == high
    assert commands(c, "p1", "cancel") == [{"type": "cancel", "job_id": low, "requeue": True}]
    clock.t += 1
    end(c, low)  # the node reports the cancelled run
    assert c.jobs[low]["state"] == "PENDING" and c.jobs[low]["restarts"] == 1
    assert [r["state"] for r in c.jobs[low]["prior_runs"]] == ["PREEMPTED"]
    assert c.jobs[high]["state"] == "RUNNING"  # got the freed CPUs first
    clock.t += 1
    end(c, high, "COMPLETED", 0, 0)
    assert c.jobs[low]["state"] == "RUNNING"  # runs again after the preemptor


def test_grace_time_sigterm_then_cancel_at_the_deadline(tmp_path):
    c, clock = make(tmp_path)
    low = submit(c, "grace")
    commands(c, "p1")
    submit(c, "high")
    assert c.jobs[low]["state"] == "RUNNING" and c.jobs[low]["end_time"] == clock.t + 5
    assert commands(c, "p1") == [{"type": "signal", "job_id": low, "signal": "TERM", "full": True}]
    clock.t += 4
    c.preemption.tick(clock.t)
    assert c.jobs[low]["state"] == "RUNNING" and commands(c, "p1") == []
    clock.t += 1
    c.preemption.tick(clock.t)
    assert journaled(c, low)["state"] == "COMPLETING"
    assert commands(c, "p1", "cancel") == [{"type": "cancel", "job_id": low, "requeue": False}]
    end(c, low)
    assert journaled(c, low)["state"] == "PREEMPTED"


def test_suspend_preemption_releases_cpus_and_resumes_after_the_preemptor(tmp_path):
    c, clock = make(tmp_path)
    low = submit(c, "suspend")
    commands(c, "p1")
    high = submit(c, "high")
    c.schedule_now()  # the pass after the suspension starts the preemptor
    assert c.jobs[low]["state"] == "SUSPENDED" and c.jobs[low]["suspend_kind"] == "preempt"
    assert c.jobs[high]["state"] == "RUNNING"
    assert c.nodes["p1"].alloc_cpus == 2  # the suspended job's CPUs went to the preemptor
    clock.t += 60
    end(c, high, "COMPLETED", 0, 0)
    assert c.jobs[low]["state"] == "RUNNING" and c.nodes["p1"].alloc_cpus == 2
    assert c.jobs[low]["suspended_seconds"] == 60
    end(c, low, "COMPLETED", 0, 0)
    assert c.nodes["p1"].alloc_cpus == 0  # nothing leaked


def test_gang_jobs_take_turns_every_time_slice(tmp_path):
    c, clock = make(tmp_path)
    a = submit(c, "gang")
    b = submit(c, "gang")
    third = submit(c, "gang")
    assert c.jobs[third]["state"] == "PENDING" and c.jobs[third]["reason"] == "Resources"
    states = lambda: (c.jobs[a]["state"], c.jobs[b]["state"])  # noqa: E731
    assert states() == ("RUNNING", "SUSPENDED")
    # b was launched, then stopped: the node sees the launch before the suspend
    kinds = [(cmd["type"], cmd["job_id"]) for cmd in commands(c, "g1")]
    assert kinds.index(("launch", b)) < kinds.index(("suspend", b))
    seen = [states()]
    for _ in range(6):
        clock.t += 5
        c.preemption.tick(clock.t)
        seen.append(states())
    r, s = "RUNNING", "SUSPENDED"
    # first tick rotates at once (no rotation yet), then every 10 s
    assert seen == [(r, s), (s, r), (s, r), (r, s), (r, s), (s, r), (s, r)]
    assert c.nodes["g1"].alloc_cpus == 4  # both hold their share of the FORCE:2 node
    end(c, a, "COMPLETED", 0, 0)
    assert c.jobs[b]["state"] == "RUNNING"  # the partner runs at once, not at the next slice
    assert c.jobs[third]["state"] in ("RUNNING", "SUSPENDED")  # the freed slot admits the third job


def test_scontrol_requeue_keeps_the_ended_run_as_a_requeued_record(tmp_path):
    c, clock = make(tmp_path)
    job = submit(c, "requeue")
    clock.t += 5
    c.job_action(str(job), "requeue", ROOT)
    end(c, job)
    runs = c.jobs[job]["prior_runs"]
    assert [(r["state"], r["start_time"], r["end_time"]) for r in runs] == [("REQUEUED", 1000, 1005)]
    assert [(s["step_id"], s["state"], s["exit_signal"]) for s in runs[0]["steps"]] == [("batch", "CANCELLED", 15)]
    assert c.jobs[job]["steps"] == [] and c.jobs[job]["restarts"] == 1


QOS_CONF = """\
SlurmdParameters=config_overrides
PreemptType=preempt/qos
PreemptMode=CANCEL
NodeName=q1 CPUs=2 RealMemory=1000
PartitionName=all Nodes=q1 Default=YES
"""


def test_qos_preemption_through_the_qos_table_hook(tmp_path):
    clock = Clock()
    c = Cluster(parse_conf(QOS_CONF), Journal(str(tmp_path / "journal.sqlite")), now=clock)
    c.recover()
    c.node_register("q1", {"cpus": 2, "memory_mb": 1000, "gpus": [], "running": [], "finished": []})
    # what the accounting side installs when QOS records change
    c.preemption.set_qos_table({"urgent": {"priority": 100, "preempt": ["scavenger"]},
                                "scavenger": {"priority": 0, "preempt": [], "preempt_mode": "REQUEUE"},
                                "normal": {"priority": 10, "preempt": []}})

    def sub(qos):
        job_id = c.submit({"script": "#!/bin/sh\n", "num_tasks": 2, "workdir": "/tmp", "qos": qos}, ROOT)
        c.schedule_now()
        return job_id
    normal = sub("normal")
    urgent = sub("urgent")
    assert c.jobs[normal]["state"] == "RUNNING" and "preempt" not in c.jobs[normal]  # not in urgent's list
    end(c, normal, "COMPLETED", 0, 0)
    assert c.jobs[urgent]["state"] == "RUNNING"
    end(c, urgent, "COMPLETED", 0, 0)
    scav = sub("scavenger")
    urgent2 = sub("urgent")
    assert c.jobs[scav]["preempt"]["mode"] == "REQUEUE"  # the victim's QOS PreemptMode wins
    end(c, scav)
    assert c.jobs[scav]["state"] == "PENDING" and c.jobs[urgent2]["state"] == "RUNNING"


def test_qos_table_follows_the_clusters_qos_source(tmp_path):
    c = Cluster(parse_conf(QOS_CONF), Journal(str(tmp_path / "journal.sqlite")), now=Clock())
    rows = [{"name": "urgent", "priority": 5, "preempt": "scavenger,low"}, {"name": "scavenger", "priority": 0}]
    c.qos_source = lambda: rows
    c.preemption.tick(0)
    assert c.preemption.config.qos["urgent"]["preempt"] == ["scavenger", "low"]
    assert c.preemption.config.qos["scavenger"]["preempt"] == []


def test_a_grace_deadline_survives_a_controller_restart(tmp_path):
    c, clock = make(tmp_path)
    low = submit(c, "grace")
    submit(c, "high")
    deadline = c.jobs[low]["preempt"]["deadline"]
    c.journal.close()
    # a new controller on the same journal (kill -9 and restart)
    again = Cluster(parse_conf(CONF), Journal(str(tmp_path / "journal.sqlite")), now=clock)
    again.recover()
    assert again.jobs[low]["state"] == "RUNNING" and again.jobs[low]["preempt"]["deadline"] == deadline
    clock.t = deadline
    again.preemption.tick(clock.t)
    assert again.jobs[low]["state"] == "COMPLETING"
    assert [cmd["type"] for _, cmd in again.nodes["p1"].commands] == ["cancel"]


def test_a_new_time_limit_set_while_suspended_counts_from_the_resume(tmp_path):
    c, clock = make(tmp_path)
    job = submit(c, "requeue", time_limit=10)   # started at 1000
    clock.t = 1100
    c.job_action(str(job), "suspend", ROOT)      # ran 100 s
    c.update_job(str(job), {"time_limit": 5}, ROOT)
    commands(c, "p1")
    clock.t = 1500
    c.job_action(str(job), "resume", ROOT)       # 300 s limit - 100 s run = 200 s left
    assert commands(c, "p1") == [{"type": "resume", "job_id": job, "seconds_left": 200}]
