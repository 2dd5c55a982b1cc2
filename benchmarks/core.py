"""`batchhub bench core`: the queue manager's throughput and latency figures.

On 4 virtual nodes x 4 CPUs (config_overrides on this small machine):
(1) 500 x `sbatch --wrap=true` from a shell loop, and one `sbatch --array=1-500`;
(2) sbatch return -> job start, median of 20 submits 1-4 s apart;
(3) 1000 trivial jobs, first submit -> queue empty;
(4) `squeue` wall time, idle and with 1000 held jobs;
(5) 10,000 trivial jobs through `batch_backend.client` from one process:
    accepted/s and completed/s, one `submit` per job (held: the API's own rate;
    then running, with 1 and 4 threads) and with `submit_many` (500 submissions
    per request, one journal commit each);
(6) CPU milliseconds per trivial job spent by the controller and by the node
    daemons (their own threads, and their reaped children: the jobs), from
    ``/proc/PID/stat`` before and after 1000 jobs. Other agents' load barely
    moves these, unlike the wall-clock rates above.

``--cpu-only [N]`` runs (6) alone (N jobs, default 1000).
"""

import os
import random
import subprocess
import time

from .harness import BIN, BenchCluster, median, print_table, submission


def bench_sbatch_loop(c, n=500):
    script = f'for i in $(seq {n}); do {BIN}/sbatch --wrap=true -o /dev/null >/dev/null || exit 1; done'
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", script], env=c.env, cwd=c.workdir, check=True)
    dt = time.perf_counter() - t0
    c.wait_empty()
    t0 = time.perf_counter()
    c.run("sbatch", "--array=1-500", "--wrap=true", "-o", "/dev/null", check=True)
    array_call = time.perf_counter() - t0
    t_arr = time.perf_counter()
    c.wait_empty()
    array_drain = time.perf_counter() - t_arr
    return n / dt, array_call, 500 / array_drain


def bench_start_latency(c, n=20, spacing=(1.0, 4.0)):
    lat = []
    for i in range(n):
        marker = os.path.join(c.workdir, f"start-{i}")
        t_return = None
        p = subprocess.run([f"{BIN}/sbatch", "--parsable", "-o", "/dev/null",
                            f"--wrap=date +%s.%N > {marker}"], env=c.env, cwd=c.workdir,
                           capture_output=True, text=True, check=True)
        t_return = time.time()
        deadline = time.time() + 10
        while not os.path.exists(marker) or os.path.getsize(marker) == 0:
            if time.time() > deadline:
                raise TimeoutError(f"job {p.stdout.strip()} did not start")
            time.sleep(0.002)
        with open(marker) as f:
            started = float(f.read().strip())
        lat.append(started - t_return)
        time.sleep(random.uniform(*spacing))
    return median(lat), max(lat)


def bench_drain(c, n=1000):
    client = c.client()
    t0 = time.time()
    for _ in range(n):
        client.submit(submission())
    t_end = c.wait_empty(poll=0.02)
    return n / (t_end - t0)


def bench_squeue(c, reps=30):
    def timed():
        runs = []
        for _ in range(reps):
            t0 = time.perf_counter()
            subprocess.run([f"{BIN}/squeue"], env=c.env, stdout=subprocess.DEVNULL, check=True)
            runs.append(time.perf_counter() - t0)
        return median(runs)
    idle = timed()
    client = c.client()
    for _ in range(1000):
        client.submit(submission(hold=True))
    loaded = timed()
    client.cancel(users=[client.ping()["user"]])
    c.wait_empty()
    return idle, loaded


def bench_client_submits(c, n, threads):
    """n trivial jobs from one process (``threads`` clients in it); (accepted/s, completed/s).

    The jobs run while they are submitted: on this machine the same two cores
    serve the submitting client, the controller, the node daemons and the jobs.
    """
    import threading
    per = n // threads
    t0 = time.time()

    def submit_some():
        client = c.client()
        for _ in range(per):
            client.submit(submission())
    workers = [threading.Thread(target=submit_some) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    t_acc = time.time()
    t_end = c.wait_empty(timeout=1800, poll=0.1)
    return per * threads / (t_acc - t0), per * threads / (t_end - t0)


def bench_client_held(c, n):
    """n held jobs, one ``submit`` each: what the API accepts when no job runs meanwhile; then cancelled."""
    client = c.client()
    t0 = time.time()
    ids = [client.submit(submission(hold=True))["job_id"] for _ in range(n)]
    rate = n / (time.time() - t0)
    client.cancel(ids)
    c.wait_empty(timeout=600, poll=0.1)
    return rate


def bench_client_bulk(c, n, chunk=500):
    """n trivial jobs from one process with ``Client.submit_many`` (one commit per chunk)."""
    client = c.client()
    t0 = time.time()
    for start in range(0, n, chunk):
        results = client.submit_many([submission() for _ in range(min(chunk, n - start))])
        assert all("job_id" in r for r in results), results[:3]
    t_acc = time.time()
    t_end = c.wait_empty(timeout=1800, poll=0.1)
    return n / (t_acc - t0), n / (t_end - t0)


def bench_cpu_per_job(c, n=1000):
    """CPU ms per trivial job: {"controller": (own, children), "noded": (own, children), "wall": s}.

    One ``submit`` per job from this process (the client's own CPU is not counted);
    the queue is polled every 0.2 s until empty, which costs the controller little.
    """
    client = c.client()
    c.wait_empty()
    before = c.daemon_cpu()
    t0 = time.time()
    for _ in range(n):
        client.submit(submission())
    t_end = c.wait_empty(poll=0.2)
    time.sleep(0.3)  # let the last end events' bookkeeping finish
    after = c.daemon_cpu()
    out = {"wall": t_end - t0}
    for who in ("controller", "noded"):
        out[who] = tuple((a - b) * 1000 / n for a, b in zip(after[who], before[who]))
    return out


def cpu_rows(cost, n):
    return [
        (f"(6) controller CPU per job ({n} jobs)", f"{cost['controller'][0]:.2f} ms", "", None),
        ("(6) node daemons CPU per job (own)", f"{cost['noded'][0]:.2f} ms", "", None),
        ("(6) node daemons' children (the jobs) per job", f"{cost['noded'][1]:.2f} ms", "", None),
        ("(6) ... wall, submit -> empty", f"{n / cost['wall']:.0f} jobs/s", "", None),
        ("(6) load average (1 min) at the end", f"{os.getloadavg()[0]:.2f}", "", None),
    ]


def main(args=()):
    quick = "--quick" in args
    if "--cpu-only" in args:
        rest = args[args.index("--cpu-only") + 1:]
        n = int(rest[0]) if rest and rest[0].isdigit() else 1000
        with BenchCluster() as c:
            rows = cpu_rows(bench_cpu_per_job(c, n), n)
        print_table("batchhub bench core: CPU per trivial job (4 virtual nodes x 4 CPUs)", rows)
        return 0
    with BenchCluster() as c:
        rows = []
        rate, array_call, array_rate = bench_sbatch_loop(c, 100 if quick else 500)
        rows.append(("(1) sbatch --wrap=true shell loop", f"{rate:.0f} jobs/s", ">= 60", rate >= 60))
        rows.append(("(1) sbatch --array=1-500 call time", f"{array_call * 1000:.0f} ms", "", None))
        rows.append(("(1) array of 500 tasks drained", f"{array_rate:.0f} tasks/s", "", None))
        med, worst = bench_start_latency(c, 5 if quick else 20, (0.2, 0.5) if quick else (1.0, 4.0))
        rows.append(("(2) sbatch return -> job start, median", f"{med * 1000:.1f} ms", "<= 100 ms", med <= 0.1))
        rows.append(("(2) ... worst", f"{worst * 1000:.1f} ms", "", None))
        rate = bench_drain(c, 200 if quick else 1000)
        rows.append(("(3) 1000 trivial jobs, submit -> empty", f"{rate:.0f} jobs/s", ">= 50", rate >= 50))
        idle, loaded = bench_squeue(c)
        rows.append(("(4) squeue idle", f"{idle * 1000:.1f} ms", "<= 15 ms", idle <= 0.015))
        rows.append(("(4) squeue, 1000 pending", f"{loaded * 1000:.1f} ms", "<= 36 ms", loaded <= 0.036))
        n = 2000 if quick else 10000
        # one call a job: the API's own rate (held, so no job runs meanwhile), then with the
        # jobs running on the same two cores (the per-job execution cost sets that pace)
        acc = bench_client_held(c, n)
        rows.append((f"(5) {n} held jobs via client.submit, one thread: accepted", f"{acc:.0f} jobs/s", ">= 500",
                     acc >= 500))
        for threads in (1, 4):
            acc, done = bench_client_submits(c, n, threads)
            label = "one thread" if threads == 1 else f"{threads} threads"
            rows.append((f"(5) {n} running jobs via client.submit, {label}: accepted", f"{acc:.0f} jobs/s", "",
                         None))
            rows.append((f"(5) {n} running jobs via client.submit, {label}: completed", f"{done:.0f} jobs/s", "",
                         None))
        acc, done = bench_client_bulk(c, n)
        rows.append((f"(5) {n} jobs via client.submit_many, 500 a call: accepted", f"{acc:.0f} jobs/s", ">= 500",
                     acc >= 500))
        rows.append((f"(5) {n} jobs via client.submit_many: completed", f"{done:.0f} jobs/s", "", None))
        n = 200 if quick else 1000
        rows.extend(cpu_rows(bench_cpu_per_job(c, n), n))
    print_table("batchhub bench core (4 virtual nodes x 4 CPUs)", rows)
    return 0
