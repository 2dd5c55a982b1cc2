"""`batchhub bench parallel`: job steps and MPI figures (issue 5's benchmarks, srun part).

On 4 virtual nodes x 4 CPUs of this machine:
(1) `srun -n 4 hostname` wall time, median, inside an allocation (the step
    path: create, launch on the nodes, I/O, exit codes) and, for reference,
    outside any job (srun makes and releases its own allocation);
(2) MPI start-up: `srun --mpi=pmi1 -n 4 -N 2 python` running MPI_Init + a
    barrier, versus `mpiexec -n 4` (hydra) on one node;
(3) mpi4py allreduce latency (8 bytes, 4 ranks): ranks spread over virtual
    nodes by srun (PMI says they are on different nodes, so MPICH uses its
    network module between them) versus plain `mpiexec -n 4` on one node
    (shared memory).

Prints a table; never asserts. Run with ``python -m benchmarks.parallel [--quick]``.
"""

import os
import subprocess
import sys
import time

from .harness import BIN, BenchCluster, median, print_table

ALLREDUCE = """
import sys, time
from array import array
from mpi4py import MPI
c = MPI.COMM_WORLD
n = int(sys.argv[1])
x, y = array('d', [1.0]), array('d', [0.0])
for _ in range(200):
    c.Allreduce(x, y)
c.Barrier()
t0 = MPI.Wtime()
for _ in range(n):
    c.Allreduce(x, y)
dt = MPI.Wtime() - t0
worst = c.allreduce(dt, op=MPI.MAX)
if c.rank == 0:
    assert y[0] == c.size
    print(f"{worst / n * 1e6:.2f}")
"""

INIT = "from mpi4py import MPI; MPI.COMM_WORLD.Barrier()"


def timed(argv, env, cwd, reps):
    """Median wall time of ``reps`` runs of ``argv`` (stdin /dev/null, output discarded)."""
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        r = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        runs.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr}")
    return median(runs)


def allocation(c, nodes=4, tasks=8):
    """An interactive allocation (what salloc makes): its job id, for SLURM_JOB_ID.

    Half of each node, so that srun's own allocations (outside any job) still fit."""
    client = c.client()
    job_id = client.submit({"interactive": True, "name": "bench", "num_nodes": nodes, "num_tasks": tasks,
                            "workdir": c.workdir, "environment": {}})["job_id"]
    deadline = time.time() + 30
    while client.job(job_id)["state"] != "RUNNING":
        if time.time() > deadline:
            raise TimeoutError("allocation not granted")
        time.sleep(0.01)
    return job_id


def release(c, job_id):
    c.client().request("POST", f"/jobs/{job_id}/complete", {"exit_code": 0})


def allreduce_us(argv, env, cwd, iterations):
    r = subprocess.run(argv + [sys.executable, "-c", ALLREDUCE, str(iterations)], env=env, cwd=cwd,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr}")
    return float(r.stdout.split()[-1])


def main(args=()):
    quick = "--quick" in args
    reps = 10 if quick else 30
    iterations = 2000 if quick else 20000
    rows = []
    plain_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PMI_"))}
    plain_env["PATH"] = BIN + os.pathsep + plain_env.get("PATH", "")
    with BenchCluster() as c:
        job_id = allocation(c)
        env = dict(c.env, SLURM_JOB_ID=str(job_id))
        try:
            srun = os.path.join(BIN, "srun")
            timed([srun, "-n", "4", "hostname"], env, c.workdir, 3)  # warm caches
            t = timed([srun, "-n", "4", "hostname"], env, c.workdir, reps)
            rows.append(("(1) srun -n 4 hostname, in an allocation", f"{t * 1000:.0f} ms", "<= 140 ms", t <= 0.14))
            t = timed([srun, "-n", "4", "-N", "4", "hostname"], env, c.workdir, reps)
            rows.append(("(1) srun -n 4 -N 4 hostname, in an allocation", f"{t * 1000:.0f} ms", "", None))
            out_env = {k: v for k, v in c.env.items() if not k.startswith("SLURM_")}
            t = timed([srun, "-n", "4", "hostname"], out_env, c.workdir, reps)
            rows.append(("(1) srun -n 4 hostname, own allocation", f"{t * 1000:.0f} ms", "", None))
            mpi_reps = max(3, reps // 3)
            t_step = timed([srun, "--mpi=pmi1", "-n", "4", "-N", "2", sys.executable, "-c", INIT], env, c.workdir,
                           mpi_reps)
            t_hydra = timed([os.path.join(BIN, "mpiexec"), "-n", "4", sys.executable, "-c", INIT], plain_env,
                            c.workdir, mpi_reps)
            rows.append(("(2) MPI init+barrier, srun --mpi=pmi1 -n 4 -N 2", f"{t_step * 1000:.0f} ms", "", None))
            rows.append(("(2) MPI init+barrier, mpiexec -n 4 (one node)", f"{t_hydra * 1000:.0f} ms", "", None))
            for nodes in ("2", "4"):
                us = allreduce_us([srun, "--mpi=pmi1", "-n", "4", "-N", nodes], env, c.workdir, iterations)
                rows.append((f"(3) allreduce 8 B, 4 ranks on {nodes} virtual nodes", f"{us:.1f} us", "", None))
            us = allreduce_us([os.path.join(BIN, "mpiexec"), "-n", "4"], plain_env, c.workdir, iterations)
            rows.append(("(3) allreduce 8 B, mpiexec -n 4, one node", f"{us:.1f} us", "", None))
        finally:
            release(c, job_id)
    print_table("batchhub bench parallel (4 virtual nodes x 4 CPUs)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
