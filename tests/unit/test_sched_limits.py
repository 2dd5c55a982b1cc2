"""Association and QOS limits in the pure scheduling pass: who starts, and Slurm's reason for the rest."""

from batch_backend import hostlist
from batch_backend.sched import backfill, fifo
from batch_backend.sched.limits import Limits
from batch_backend.sched.placement import NodeView


def views(n=2, cpus=4, mem=4000, gpus=0):
    return {f"n{i}": NodeView(f"n{i}", cpus, mem, gpus, frozenset()) for i in range(1, n + 1)}


def job(job_id, **kw):
    j = {"job_id": job_id, "partition": "p", "num_tasks": 1, "cpus_per_task": 1, "num_nodes_req": None,
         "reason": "None", "time_limit": 10, "gres": "", "features": "", "held": "", "priority": 100 - job_id,
         "account": "phys", "user": "ana", "qos": "normal"}
    j.update(kw)
    return j


def assoc(parent=None, **limits):
    rec = {"parent": parent, "max_jobs": None, "max_submit": None, "max_wall": None, "max_tres_per_job": {},
           "grp_tres": {}, "grp_jobs": None, "grp_submit": None}
    rec.update(limits)
    return rec


def qos(**limits):
    rec = {"max_jobs_pu": None, "max_submit_pu": None, "max_wall": None, "max_tres_pu": {},
           "max_tres_per_job": {}, "grp_tres": {}, "grp_jobs": None, "flags": []}
    rec.update(limits)
    return rec


def tree(phys=None, ana=None, bob=None, normal=None):
    """root <- phys <- (ana, bob); QOS normal."""
    assocs = {("root", "", ""): assoc(),
              ("phys", "", ""): assoc(("root", "", ""), **(phys or {})),
              ("phys", "ana", ""): assoc(("phys", "", ""), **(ana or {})),
              ("phys", "bob", ""): assoc(("phys", "", ""), **(bob or {}))}
    return assocs, {"normal": qos(**(normal or {}))}


def run(pending, limits, policy=fifo, nodes=None, running=()):
    p = {"name": "p", "nodes": ["n1", "n2"], "state": "UP", "max_time": None, "max_nodes": None, "min_nodes": 0}
    assocs, q = limits
    cls = backfill.BackfillState if policy is backfill else fifo.SchedState
    kw = {"running": list(running)} if policy is backfill else {}
    s = cls(nodes=nodes or views(), partitions={"p": p}, pending=pending, expand_hostlist=hostlist.expand,
            limits=Limits(assocs, q, running), **kw)
    return [(x.job_id, getattr(x, "reason", "start")) for x in policy.schedule(s, now=0)
            if not isinstance(x, backfill.Estimate)]


def test_assoc_max_jobs_starts_only_that_many_and_names_the_reason():
    out = run([job(1), job(2), job(3)], tree(ana={"max_jobs": 2}))
    assert out == [(1, "start"), (2, "start"), (3, "AssocMaxJobsLimit")]


def test_max_jobs_set_on_the_account_applies_to_each_user():
    out = run([job(1), job(2), job(3, user="bob"), job(4, user="bob")], tree(phys={"max_jobs": 1}))
    assert out == [(1, "start"), (2, "AssocMaxJobsLimit"), (3, "start"), (4, "AssocMaxJobsLimit")]


def test_running_jobs_count_against_max_jobs():
    running = [dict(job(9), nodes=["n1"], cpus_per_node={"n1": 1}, mem_alloc_per_node={"n1": 0})]
    out = run([job(1)], tree(ana={"max_jobs": 1}), running=running)
    assert out == [(1, "AssocMaxJobsLimit")]


def test_grp_cpu_limit_on_the_account_bounds_all_its_users_and_never_blocks_smaller_jobs():
    out = run([job(1, num_tasks=2), job(2, user="bob", num_tasks=2), job(3, num_tasks=1)],
              tree(phys={"grp_tres": {"cpu": 3}}))
    assert out == [(1, "start"), (2, "AssocGrpCpuLimit"), (3, "start")]


def test_grp_mem_and_gpu_reasons():
    assert run([job(1, mem_per_node=3000), job(2, mem_per_node=2000)],
               tree(phys={"grp_tres": {"mem": 4000}})) == [(1, "start"), (2, "AssocGrpMemLimit")]
    nodes = views(gpus=2)
    assert run([job(1, gres="gpu:2"), job(2, gres="gpu:1")], tree(phys={"grp_tres": {"gres/gpu": 2}}),
               nodes=nodes) == [(1, "start"), (2, "AssocGrpGRES")]


def test_assoc_max_wall_keeps_a_longer_job_pending():
    out = run([job(1, time_limit=120), job(2, time_limit=30)], tree(phys={"max_wall": 60}))
    assert out == [(1, "AssocMaxWallDurationPerJobLimit"), (2, "start")]


def test_assoc_max_tres_per_job():
    out = run([job(1, num_tasks=3), job(2, num_tasks=2)], tree(ana={"max_tres_per_job": {"cpu": 2}}))
    assert out == [(1, "AssocMaxCpuPerJobLimit"), (2, "start")]


def test_qos_max_jobs_per_user_is_per_user():
    out = run([job(1), job(2), job(3, user="bob")], tree(normal={"max_jobs_pu": 1}))
    assert out == [(1, "start"), (2, "QOSMaxJobsPerUserLimit"), (3, "start")]


def test_qos_limits_are_checked_before_association_limits():
    out = run([job(1, time_limit=120)], tree(phys={"max_wall": 60}, normal={"max_wall": 60}))
    assert out == [(1, "QOSMaxWallDurationPerJobLimit")]


def test_qos_max_tres_per_user_and_grp_tres():
    assert run([job(1, num_tasks=2), job(2, num_tasks=2), job(3, user="bob", num_tasks=2)],
               tree(normal={"max_tres_pu": {"cpu": 3}})) == [(1, "start"), (2, "QOSMaxCpuPerUserLimit"), (3, "start")]
    assert run([job(1, num_tasks=2), job(2, user="bob", num_tasks=2)],
               tree(normal={"grp_tres": {"cpu": 3}})) == [(1, "start"), (2, "QOSGrpCpuLimit")]


def test_unlimited_jobs_and_unknown_associations_are_not_limited():
    out = run([job(1, account="other"), job(2, account="other")], tree(phys={"max_jobs": 0}))
    assert out == [(1, "start"), (2, "start")]


def test_array_tasks_stop_at_the_limit():
    master = job(1, array_spec="0-3", array_pending=[0, 1, 2, 3], array_job_id=1)
    out = run([master], tree(ana={"max_jobs": 2}))
    assert out == [(1, "start"), (1, "start"), (1, "AssocMaxJobsLimit")]


def test_backfill_applies_the_same_limits():
    out = run([job(1), job(2), job(3, user="bob")], tree(ana={"max_jobs": 1}), policy=backfill)
    assert out == [(1, "start"), (2, "AssocMaxJobsLimit"), (3, "start")]


def test_partition_allow_accounts_and_drain_state():
    p = {"name": "p", "nodes": ["n1"], "state": "UP", "max_time": None, "max_nodes": None, "min_nodes": 0,
         "allow_accounts": "chem"}
    s = fifo.SchedState(nodes=views(1), partitions={"p": p}, pending=[job(1)], expand_hostlist=hostlist.expand)
    assert [x.reason for x in fifo.schedule(s, now=0)] == ["AccountNotAllowed"]
    p.update(allow_accounts="ALL", state="DRAIN")  # a draining partition still runs its queue
    s = fifo.SchedState(nodes=views(1), partitions={"p": p}, pending=[job(1)], expand_hostlist=hostlist.expand)
    assert [type(x).__name__ for x in fifo.schedule(s, now=0)] == ["Start"]
    p.update(state="INACTIVE")
    s = fifo.SchedState(nodes=views(1), partitions={"p": p}, pending=[job(1)], expand_hostlist=hostlist.expand)
    assert [x.reason for x in fifo.schedule(s, now=0)] == ["PartitionInactive"]


def test_the_simulator_replays_under_the_same_limits():
    from batch_backend.sim import Simulator, jobs_from_swf, parse_swf
    lines = [f"{i} 0 -1 100 1 -1 -1 1 100 -1 1 1 1 -1 1 1 -1 -1" for i in (1, 2, 3)]
    jobs, _ = jobs_from_swf(parse_swf(lines)[1], total_cpus=8)
    free = Simulator(jobs, nodes=2, cpus=4).run()
    limited = Simulator(jobs, nodes=2, cpus=4, limits=(
        {("sim", "", ""): assoc(), ("sim", "u1", ""): assoc(("sim", "", ""), max_jobs=1)},
        {"normal": qos()})).run()
    assert free["makespan"] == 100 and limited["makespan"] == 300


def test_a_qos_max_limit_replaces_the_association_limit_of_the_same_kind():
    # Slurm's hierarchy: QOS MaxJobsPerUser=3 is used instead of the association's MaxJobs=1
    out = run([job(1), job(2), job(3), job(4)], tree(ana={"max_jobs": 1}, normal={"max_jobs_pu": 3}))
    assert out == [(1, "start"), (2, "start"), (3, "start"), (4, "QOSMaxJobsPerUserLimit")]
    out = run([job(1, time_limit=90)], tree(phys={"max_wall": 60}, normal={"max_wall": 120}))
    assert out == [(1, "start")]
