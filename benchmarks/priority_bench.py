"""`python -m benchmarks.priority_bench [--quick]`: cost of multifactor priority in the controller.

In-process (no daemons): a Cluster of 1,000 nodes with 10,000 pending jobs of
50 users, classic fairshare over the default tree with usage for every user.
Measures what the controller pays: one job's priority at submit (cached
fairshare table), the PriorityCalcPeriod pass over every pending job, the
re-sort it triggers, the fairshare table itself, and the sprio answer for the
whole queue. Figures are printed, never asserted.
"""

import os
import sys
import tempfile
import time

from batch_backend.conf import parse_conf
from batch_backend.controller.cluster import Cluster
from batch_backend.controller.journal import Journal

from .harness import print_table

CONF = """NodeName=c[0001-1000] CPUs=32 RealMemory=128000
PartitionName=batch Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PriorityType=priority/multifactor
PriorityWeightAge=1000
PriorityWeightFairshare=10000
PriorityWeightJobSize=100
PriorityWeightPartition=1000
"""


def build(n_pending, n_users=50):
    home = tempfile.mkdtemp(prefix="prio-bench-")
    cluster = Cluster(parse_conf(CONF), Journal(os.path.join(home, "journal.sqlite")))
    cluster.recover()
    now = cluster.now()
    for i in range(n_pending):
        user = f"u{i % n_users:02d}"
        job = {"job_id": i + 1, "display_id": str(i + 1), "user": user, "uid": 7000 + i % n_users, "account": "",
               "qos": "normal", "partition": "batch", "state": "PENDING", "held": "", "nice": 0,
               "num_tasks": 1 + i % 32, "cpus_per_task": 1, "num_nodes_req": None, "gres": "",
               "submit_time": now - n_pending + i, "eligible_time": now - n_pending + i, "begin_time": None,
               "priority": 1, "priority_set": None}
        cluster.jobs[job["job_id"]] = job
        cluster.pending[job["job_id"]] = job
        cluster.priority.note_user(user)
    for u in range(n_users):
        cluster.priority.usage.charge("root", f"u{u:02d}", 3600.0 * (u + 1), now)
    cluster.priority.associations_changed(now)
    return cluster


def timed(fn, reps):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(args=()):
    quick = "--quick" in args
    n = 2000 if quick else 10000
    cluster = build(n)
    svc, now = cluster.priority, cluster.now()
    job = next(iter(cluster.pending.values()))
    svc._generation += 1
    table = timed(lambda: svc._cached_table(now) and setattr(svc, "_table", None), 5)
    svc._cached_table(now)
    one = timed(lambda: svc.priority_of(job, now), 200)
    calc = timed(lambda: svc.recompute_all(now + 60), 3)
    resort = timed(lambda: sorted(cluster.pending.values(), key=lambda j: (-j["priority"], j["submit_time"],
                                                                           j["job_id"])), 3)
    sprio = timed(lambda: svc.report(list(cluster.pending.values()), now), 2)
    print_table(f"multifactor priority, {n} pending jobs, 1,000 nodes, 50 users", [
        ("one job's priority (submit, release)", f"{one * 1e6:.0f} us", "", None),
        ("fairshare table (50 users)", f"{table * 1e3:.2f} ms", "", None),
        ("PriorityCalcPeriod pass (all pending)", f"{calc * 1e3:.0f} ms", "", None),
        ("queue re-sort after it", f"{resort * 1e3:.0f} ms", "", None),
        ("sprio answer (all pending)", f"{sprio * 1e3:.0f} ms", "", None),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
