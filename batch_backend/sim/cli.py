"""``batchhub sim`` / ``python -m batch_backend.sim``: replay a workload, print a comparison table.

The workload is an SWF trace file or the Lublin-Feitelson model
(``--model lublin --jobs N --seed S``); by default the three policies admins
choose between are compared in one table: FCFS, FCFS with EASY backfill, and
multifactor priority (fairshare + age) with backfill.
"""

import argparse
import sys

from .simulator import POLICIES, format_table, simulate

COMPARE = "fifo/fcfs,backfill/fcfs,backfill/multifactor"


def build_parser(prog="batchhub sim"):
    ap = argparse.ArgumentParser(prog=prog, description="Replay a workload through BatchHub's scheduler "
                                 "on a virtual clock and compare policies.")
    ap.add_argument("trace", nargs="?", help="Standard Workload Format file (or use --model)")
    ap.add_argument("--model", choices=("lublin",), help="generate the workload from a published model")
    ap.add_argument("--jobs", type=int, default=10000, help="jobs to generate with --model (default 10000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed for --model (default 1)")
    ap.add_argument("--load", type=float, default=None,
                    help="offered load 0-1 for --model: rescales arrivals (default: the model's own rate)")
    ap.add_argument("--nodes", type=int, required=True, help="nodes in the simulated cluster")
    ap.add_argument("--cpus", type=int, required=True, help="CPUs per node")
    ap.add_argument("--runs", default=COMPARE,
                    help=f"comma list of POLICY/PRIORITY runs, policy fifo|backfill, priority fcfs|multifactor "
                         f"(default {COMPARE})")
    ap.add_argument("--bf-window", type=int, default=1440, help="planning horizon, minutes (default 1440)")
    ap.add_argument("--bf-max-job-test", type=int, default=500, help="jobs planned per pass (default 500)")
    ap.add_argument("--bf-resolution", type=int, default=60, help="planner time resolution, s (default 60)")
    ap.add_argument("--bf-interval", type=int, default=0,
                    help="backfill at most every this many virtual seconds, FIFO passes in between "
                         "(Slurm's bf_interval; default 0: backfill on every event, like the controller)")
    ap.add_argument("--max-jobs", type=int, default=None, help="replay only the first N jobs of a trace")
    ap.add_argument("--estimates", action="store_true",
                    help="plan every backfill pass in full, start estimates included, as the controller does "
                         "(slower; the same starts: by default a pass plans only as far as a job could start)")
    return ap


def load_workload(args, ap):
    """SWF records from the trace file or the model; exits with a one-line error on bad input."""
    from .swf import SwfError, load_swf

    if args.nodes < 1 or args.cpus < 1:
        ap.error("--nodes and --cpus must be at least 1")
    if args.model:
        if args.trace:
            ap.error("give a trace file or --model, not both")
        if args.jobs < 1 or (args.load is not None and not 0 < args.load <= 1):
            ap.error("--jobs must be >= 1 and --load in (0, 1]")
        from .lublin import generate

        records = generate(args.jobs, procs=args.nodes * args.cpus, seed=args.seed, load=args.load)
        return f"Lublin-Feitelson model, {args.jobs} jobs, seed {args.seed}", records
    if not args.trace:
        ap.error("give a trace file or --model lublin")
    try:
        _, records = load_swf(args.trace)
    except (OSError, SwfError) as exc:
        ap.exit(1, f"{ap.prog}: error: {exc}\n")
    if args.max_jobs:
        records = records[:args.max_jobs]
    return args.trace, records


def parse_runs(text, ap):
    runs = []
    for item in text.split(","):
        policy, _, priority = item.strip().partition("/")
        priority = priority or "fcfs"
        if policy not in POLICIES or priority not in ("fcfs", "multifactor"):
            ap.error(f"unknown run {item!r}: expected POLICY/PRIORITY with policy fifo|backfill "
                     f"and priority fcfs|multifactor")
        runs.append((policy, priority))
    return runs


def main(argv=None, prog="batchhub sim"):
    ap = build_parser(prog)
    args = ap.parse_args(argv)
    runs = parse_runs(args.runs, ap)
    what, records = load_workload(args, ap)
    results = [simulate(records, nodes=args.nodes, cpus=args.cpus, policy=policy, priority=priority,
                        bf_window=args.bf_window, bf_max_job_test=args.bf_max_job_test,
                        bf_resolution=args.bf_resolution, bf_interval=args.bf_interval,
                        estimates=args.estimates)
               for policy, priority in runs]
    print(f"{what}: {len(records)} records, {args.nodes} nodes x {args.cpus} CPUs")
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m batch_backend.sim"))
