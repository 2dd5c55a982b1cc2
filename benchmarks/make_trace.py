"""Generate a synthetic, seeded SWF trace: ``python -m benchmarks.make_trace OUT.swf``.

Why synthetic: archive traces are large and carry their own licences; a small
seeded trace in the repository lets anyone reproduce the simulator's figures.
The model is deliberately simple, *not* Lublin-Feitelson, but keeps the traits
that make backfill matter: many serial and power-of-two jobs, a few wide ones,
run times spread over three orders of magnitude, users who overestimate their
time limits (requested time rounded up to familiar limits), a daily arrival
cycle, and a load chosen relative to the target cluster.
"""

import argparse
import math
import random
import sys

from batch_backend.sim.swf import SwfJob, write_swf

LIMITS = (300, 600, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400)  # familiar --time values, s


def generate(n_jobs, *, procs, load=0.9, seed=1, users=16, max_width=None):
    """``n_jobs`` SwfJob for a machine of ``procs`` processors offered ``load`` (0-1) of its capacity."""
    rng = random.Random(seed)
    max_width = max_width or procs // 2
    log_max = math.log2(max(max_width, 1))
    user_weights = [1 / (i + 1) for i in range(users)]  # Zipf-like: a few users submit most jobs
    shapes = []
    for _ in range(n_jobs):
        u = rng.random()
        if u < 0.3:
            width = 1
        elif u < 0.8:
            width = 2 ** rng.randint(1, max(1, int(log_max)))
        else:  # log-uniform, as sizes are in real workloads (Lublin-Feitelson): wide jobs are rare
            width = int(2 ** rng.uniform(1, max(1.0, log_max)))
        width = min(width, max_width)
        run = int(math.exp(rng.uniform(math.log(30), math.log(8 * 3600))))
        if width > max_width // 4:
            run = max(30, run // 2)  # wide jobs tend to be shorter
        want = run * rng.uniform(1.0, 4.0)
        limit = next((lim for lim in LIMITS if lim >= want), LIMITS[-1])
        shapes.append((width, min(run, limit), limit))
    work = sum(w * r for w, r, _ in shapes)
    span = work / (load * procs)  # seconds over which arrivals spread to offer `load`
    mean_gap = span / n_jobs
    t, jobs = 0.0, []
    for i, (width, run, limit) in enumerate(shapes, 1):
        # Daily cycle: arrivals twice as dense by day as by night.
        day_phase = math.sin(2 * math.pi * (t % 86400) / 86400)
        t += rng.expovariate(1.0 / (mean_gap * (1 - 0.5 * day_phase) / 1.0))
        user = rng.choices(range(1, users + 1), weights=user_weights)[0]
        jobs.append(SwfJob(i, int(t), None, run, width, None, None, width, limit, None, 1, user, 1,
                           None, 1, 1, None, None))
    return jobs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=512, help="processors of the target machine")
    ap.add_argument("--load", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    jobs = generate(args.jobs, procs=args.procs, load=args.load, seed=args.seed)
    header = {"Version": "2.2", "Computer": f"synthetic, {args.procs} processors",
              "Note": f"benchmarks/make_trace.py --jobs {args.jobs} --procs {args.procs} "
                      f"--load {args.load} --seed {args.seed}",
              "MaxJobs": str(len(jobs)), "MaxRecords": str(len(jobs)), "MaxProcs": str(args.procs),
              "UnixStartTime": "0"}
    with (sys.stdout if args.out == "-" else open(args.out, "w")) as handle:
        write_swf(handle, jobs, header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
