"""`batchhub bench memory [--jobs N]`: the controller's RSS as the queue grows to 100,000 jobs.

Issue 4's target: controller memory with 100,000 known jobs <= 300 MB RSS.
The jobs are real submissions through ``batch_backend.client`` (held, so they
stay known and pending: the worst case, since pending jobs are never purged),
each carrying the submitter's whole environment as ``sbatch --export=ALL``
sends it. The RSS is read from /proc at checkpoints; nothing is asserted.
"""

import os
import sys
import threading
import time

from .harness import BenchCluster, print_table, submission

THREADS = 4


def controller_rss_mb(home):
    with open(os.path.join(home, "run", "controller.pid")) as f:
        pid = int(f.read())
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def submit_batch(bc, count, env):
    client = bc.client()
    sub = submission(environment=env, hold=True)
    for _ in range(count):
        client.submit(dict(sub))


def main(argv=()):
    argv = list(argv)
    total = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 100000
    checkpoints = sorted({c for c in (1000, 10000, 50000, total) if c <= total})
    env = dict(os.environ)
    rows = []
    with BenchCluster() as bc:
        base = controller_rss_mb(bc.home)
        rows.append(("controller RSS, empty queue", f"{base:.0f} MB", "", None))
        done, t0 = 0, time.time()
        for mark in checkpoints:
            per_thread = (mark - done) // THREADS
            threads = [threading.Thread(target=submit_batch, args=(bc, per_thread, env)) for _ in range(THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            done += per_thread * THREADS
            rss = controller_rss_mb(bc.home)
            target = "<= 300 MB" if mark == 100000 else ""
            ok = rss <= 300 if mark == 100000 else None
            rows.append((f"controller RSS, {done} held jobs", f"{rss:.0f} MB", target, ok))
            print(f"  {done} jobs submitted in {time.time() - t0:.0f} s", file=sys.stderr)
        per_job = (rss - base) * 1024 / max(done, 1)
        rows.append(("controller memory per known job", f"{per_job:.2f} KB", "", None))
        rows.append(("environment sent with each job", f"{len(repr(env)) / 1024:.1f} KB", "", None))
        t = time.perf_counter()
        bc.run("squeue", "-h", "-u", "nobody")
        rows.append((f"squeue -u nobody with {done} jobs known", f"{(time.perf_counter() - t) * 1000:.0f} ms", "",
                     None))
    print_table(f"Controller memory ({done} pending jobs)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
