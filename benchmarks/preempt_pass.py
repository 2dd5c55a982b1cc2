"""Cost of one preemption pass (``sched.preemption.decide``) on a full cluster.

``python -m benchmarks.preempt_pass [nodes] [jobs_per_node] [pending]``: every node
is full of small low-tier jobs (random priorities, so the cheapest victims are
scattered), and high-tier jobs of 16 CPUs wait. A pass examines at most
``max_preemptors`` (20) of them, as the controller does after each scheduling pass.
"""

import random
import sys
import time

from batch_backend import hostlist
from batch_backend.sched import preemption
from batch_backend.sched.placement import NodeView


def full_cluster(n_nodes=1000, per_node=4, n_pending=1000, seed=1):
    rng = random.Random(seed)
    nodes = {f"n{i}": NodeView(f"n{i}", 8, 32000, 0, frozenset()) for i in range(n_nodes)}
    running, job_id = [], 1
    for name, view in nodes.items():
        for _ in range(per_node):
            cpus = 8 // per_node
            running.append({"job_id": job_id, "partition": "low", "state": "RUNNING", "nodes": [name],
                            "cpus_per_node": {name: cpus}, "mem_alloc_per_node": {name: 0}, "gpus_per_node": {},
                            "start_time": job_id, "priority": rng.randint(1, 1000)})
            view.alloc_cpus += cpus
            view.busy_jobs += 1
            job_id += 1
    parts = {p: {"name": p, "nodes": list(nodes)} for p in ("low", "high")}
    config = preemption.config_from_options(
        {"PreemptType": "preempt/partition_prio", "PreemptMode": "REQUEUE"},
        [{"name": "low", "priority_tier": 1}, {"name": "high", "priority_tier": 2}])
    pending = [{"job_id": 10**6 + i, "partition": "high", "num_tasks": 16, "cpus_per_task": 1, "num_nodes_req": None,
                "gres": "", "features": "", "priority": 1, "state": "PENDING", "reason": "Resources"}
               for i in range(n_pending)]
    return preemption.PreemptionState(nodes=nodes, partitions=parts, pending=pending, running=running,
                                      config=config, expand_hostlist=hostlist.expand)


def main(argv=()):
    args = [int(a) for a in argv] + [1000, 4, 1000][len(argv):]
    state = full_cluster(*args)
    t0 = time.perf_counter()
    decisions = preemption.decide(state, now=0)
    ms = (time.perf_counter() - t0) * 1000
    print(f"preemption pass: {args[0]} nodes, {len(state.running)} running, {len(state.pending)} pending: "
          f"{len(decisions)} victims for {len({d.preemptor_id for d in decisions})} jobs in {ms:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
