"""`batchhub bench restart`: controller restart to serving with a large journal.

Fills the journal with real jobs (submitted through ``batch_backend.client`` and
run by the node daemons), then ``kill -9``s the controller and starts it again
the way ``batchhub up`` does, timing:

* kill -> the API answers (``ping``): the controller serves again;
* kill -> ``squeue`` lists every job in memory (the first full query);
* the controller's own recovery time (journal -> memory), from its log.

Scenarios: 10,000 finished jobs (all within MinJobAge, so all loaded), then
10,000 held pending jobs on top (20,000 in the journal, 10,000 of them active).
Target: serving again < 2 s with 10,000 jobs in the journal.
Usage: ``batchhub bench restart [--jobs N] [--repeat R]``.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

from .harness import BIN, BenchCluster, median, print_table, submission


def _restart(c, repeat):
    """kill -9 + start ``repeat`` times; returns (to_ping, to_squeue, recovery_ms) lists."""
    from batch_backend.client import Client, ClientError
    pidfile = os.path.join(c.home, "run", "controller.pid")
    log_path = os.path.join(c.home, "log", "controller.log")
    to_ping, to_squeue, recovery = [], [], []
    for _ in range(repeat):
        with open(pidfile) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        t_kill = time.monotonic()
        # the same command line `batchhub up` uses, without the CLI's own start-up in the figure
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "batch_backend.admin", "controller", "--conf",
                                     c.conf_path, "--socket", c.socket], env=c.env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        with open(pidfile, "w") as f:
            f.write(str(proc.pid))
        while True:
            try:
                with Client(c.socket, timeout=5) as cl:
                    cl.ping()
                break
            except ClientError:
                time.sleep(0.005)
        to_ping.append(time.monotonic() - t_kill)
        with Client(c.socket, timeout=30) as cl:
            n = len(cl.jobs(include_finished=True, fields=["job_id"]))
        to_squeue.append(time.monotonic() - t_kill)
        with open(log_path, errors="replace") as f:
            found = re.findall(r"recovered (\d+) jobs in (\d+) ms", f.read())
        recovery.append((int(found[-1][0]), int(found[-1][1])) if found else (n, -1))
        time.sleep(0.5)
    return to_ping, to_squeue, recovery


def _fill(c, n, **extra):
    client = c.client()
    t0 = time.monotonic()
    for _ in range(n):
        client.submit(submission(**extra))
    client.close()
    return time.monotonic() - t0


def main(argv=()):
    ap = argparse.ArgumentParser(prog="batchhub bench restart")
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="2,000 jobs, 2 restarts")
    args = ap.parse_args(list(argv))
    if args.quick:
        args.jobs, args.repeat = 2000, 2
    rows = []
    with BenchCluster() as c:
        print(f"running {args.jobs} trivial jobs to fill the journal ...", flush=True)
        _fill(c, args.jobs)
        c.wait_empty(timeout=3600)
        for label, (ping, squeue, rec) in [
                (f"{args.jobs} finished", _restart(c, args.repeat))]:
            rows += _rows(label, ping, squeue, rec)
        print(f"submitting {args.jobs} held jobs ...", flush=True)
        _fill(c, args.jobs, hold=True)
        ping, squeue, rec = _restart(c, args.repeat)
        rows += _rows(f"+{args.jobs} pending", ping, squeue, rec)
        subprocess.run([os.path.join(BIN, "scancel"), "--state=PENDING", "-u", os.environ.get("USER", "root")],
                       env=c.env, capture_output=True)
    print_table(f"controller restart (kill -9 -> serving), median of {args.repeat}", rows)
    return 0


def _rows(label, ping, squeue, rec):
    loaded, ms = rec[-1]
    return [
        (f"{label}: kill -> ping answers (s)", f"{median(ping):.2f}", "< 2", median(ping) < 2),
        (f"{label}: kill -> squeue lists all (s)", f"{median(squeue):.2f}", "", None),
        (f"{label}: recovery of {loaded} jobs (ms)", str(ms), "", None),
    ]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
