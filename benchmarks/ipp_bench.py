"""IPyParallel on BatchHub versus a local MPI cluster (issue 5's IPyParallel benchmarks).

In one run, on a throwaway cluster of 4 virtual nodes x 5 CPUs (room for 16
engines and the controller):

(1) engines ready: wall time from ``Cluster(...)`` to ``n`` engines registered
    (``start_and_connect`` + ``wait_for_engines``), for the batchhub launchers
    (controller job + one engines job running ``srun --mpi=pmi1``) and for a
    local ``ipp.Cluster(engines="mpi")`` (local controller + ``mpiexec``),
    both with ``delay=0`` and ``--HeartMonitor.period=500``; target: batchhub
    <= 1.3x local;
(2) load-balanced throughput: 2000 tiny tasks (``lambda x: x``) through a
    LoadBalancedView on each cluster with n=4.

Prints a table; never asserts. ``python -m benchmarks.ipp_bench [--quick]``
(--quick: n=4 only, one repetition).
"""

import logging
import os
import sys
import time

from .harness import BenchCluster, median, print_table

CONF = """\
ClusterName=ippbench
SlurmdParameters=config_overrides
SlurmdTimeout=60
KillWait=2
MinJobAge=300
NodeName=n[1-4] CPUs=5 RealMemory=4000
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""

FAST = ["--HeartMonitor.period=500"]
TASKS = 2000


def _make(kind, n, profile_dir):
    import ipyparallel as ipp
    common = dict(n=n, delay=0, controller_args=FAST, profile_dir=profile_dir, engine_timeout=120,
                  shutdown_atexit=False, log_level=logging.WARNING)
    if kind == "batchhub":
        return ipp.Cluster(controller="batchhub", engines="batchhub", **common)
    return ipp.Cluster(engines="mpi", **common)


def run_once(kind, n, profile_dir, tasks=0):
    """(seconds until n engines are ready, tasks/s or None)."""
    from ipyparallel import interactive
    cluster = _make(kind, n, profile_dir)
    t0 = time.perf_counter()
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(n, timeout=120)
        ready = time.perf_counter() - t0
        rate = None
        if tasks:
            view = rc.load_balanced_view()
            noop = interactive(lambda x: x)
            view.map_sync(noop, range(50))  # warm-up
            t1 = time.perf_counter()
            view.map_sync(noop, range(tasks))
            rate = tasks / (time.perf_counter() - t1)
        return ready, rate
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    sizes = [4] if quick else [4, 16]
    reps = 1 if quick else 3
    rows = []
    with BenchCluster(CONF) as bench:
        os.environ.update(BATCHHUB_HOME=bench.home, BATCHHUB_CONF=bench.conf_path, PATH=bench.env["PATH"])
        os.environ.pop("SLURM_JOB_ID", None)
        os.chdir(bench.workdir)
        profile = os.path.join(bench.home, "profile")
        for n in sizes:
            ready = {"batchhub": [], "mpi": []}
            rates = {"batchhub": [], "mpi": []}
            for rep in range(reps):
                for kind in ("batchhub", "mpi"):  # interleaved: both see the same machine load
                    try:
                        t, rate = run_once(kind, n, profile, tasks=TASKS if n == 4 and rep == 0 else 0)
                    except Exception as e:  # a benchmark reports, it does not stop half-way
                        print(f"{kind} n={n}: failed: {e}", file=sys.stderr)
                        continue
                    ready[kind].append(t)
                    if rate is not None:
                        rates[kind].append(rate)
            b, m = median(ready["batchhub"]), median(ready["mpi"])
            rows.append((f"engines ready n={n}, batchhub (median of {len(ready['batchhub'])})", f"{b:.2f} s",
                         f"<= {1.3 * m:.2f} s", b <= 1.3 * m))
            rows.append((f"engines ready n={n}, local mpi (median of {len(ready['mpi'])})", f"{m:.2f} s", "", None))
            rows.append((f"  ratio batchhub / local, n={n}", f"{b / m:.2f}x", "<= 1.30x", b <= 1.3 * m))
            if n == 4:
                for kind in ("batchhub", "mpi"):
                    if rates[kind]:
                        rows.append((f"load-balanced {TASKS} tiny tasks/s, n=4, {kind}",
                                     f"{rates[kind][0]:.0f}/s", "", None))
    print_table("IPyParallel on BatchHub vs local mpiexec (delay=0, HeartMonitor.period=500 ms)", rows)


if __name__ == "__main__":
    main()
