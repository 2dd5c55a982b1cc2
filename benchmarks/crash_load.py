"""`batchhub bench crash`: submissions under load while the controller is ``kill -9``-ed.

N submissions come from C concurrent client processes (``batch_backend.client``,
which gives every submission a ``submit_token`` and re-sends it after a lost
answer); meanwhile the controller is killed with SIGKILL K times at random
moments and restarted each time. Afterwards, from the accounting records:

* every acknowledged job id exists exactly once,
* every submission (each has a unique job name) made exactly one job: a retry
  after a lost answer never created a second one,
* every job ends in a final state (the jobs are ``true``: COMPLETED).

The same function drives the benchmark (1000 submissions, 4 clients, 5 kills,
figures printed) and the shorter end-to-end test (tests/e2e/test_crash_load.py).
Usage: ``batchhub bench crash [--submissions N] [--clients C] [--kills K] [--seed S]
[--accounting-url URL]`` (e.g. ``sqlite:////tmp/acct.sqlite`` or ``postgresql://...``: the
records then travel through the journal's outbox, which the kills must not lose).
"""

import argparse
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from batch_backend.model import FINAL_STATES


def _client_worker(address, client_no, count, result_path, workdir, progress, cli=False):
    """One client process: ``count`` submissions.

    API mode: each retried until acknowledged. CLI mode: ``sbatch`` as a user
    runs it (it waits for a restarting controller by itself); a submission it
    reports as failed is not acknowledged, and must then not appear twice.
    """
    from batch_backend.client import Client
    acked, latencies, failed = [], [], []
    client = Client(address, timeout=30)
    sbatch = os.path.join(os.path.dirname(sys.executable), "sbatch")
    env = dict(os.environ, BATCHHUB_SOCKET=address)
    for i in range(count):
        name = f"crash-{client_no}-{i}"
        t0 = time.monotonic()
        try:
            job_id = _submit_one(client, sbatch, env, name, workdir, cli)
        except Exception as e:  # noqa: BLE001 - recorded and reported: the run goes on
            failed.append((name, repr(e)))
            continue
        latencies.append(time.monotonic() - t0)
        acked.append((name, job_id))
        with progress.get_lock():
            progress.value += 1
    client.close()
    with open(result_path + ".tmp", "w") as f:
        json.dump({"acked": acked, "latencies": latencies, "failed": failed}, f)
    os.replace(result_path + ".tmp", result_path)


def _submit_one(client, sbatch, env, name, workdir, cli):
    """Submit one job; returns its id (raises when not acknowledged)."""
    import subprocess
    if cli:
        r = subprocess.run([sbatch, "--parsable", "-J", name, "-o", "/dev/null", "--wrap=true"], env=env,
                           cwd=workdir, capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout.strip().isdigit():
            raise RuntimeError(f"sbatch rc={r.returncode} stdout={r.stdout.strip()!r} "
                               f"stderr={r.stderr.strip()!r}")
        return int(r.stdout.strip())
    sub = {"script": "#!/bin/sh\ntrue\n", "name": name, "workdir": workdir, "stdout": "/dev/null",
           "environment": {"PATH": "/usr/bin:/bin"}}
    # Client.submit adds the submit token once and re-sends it on every retry
    return client.submit(sub, retries=2400, retry_delay=0.05)["job_id"]


def _serving(address):
    from batch_backend.client import Client, ClientError
    try:
        with Client(address, timeout=1) as c:
            c.ping()
        return True
    except ClientError:
        return False


def run_crash_load(address, kill_controller, start_controller, *, submissions=1000, clients=4, kills=5,
                   seed=None, workdir="/tmp", settle_timeout=600, log=print, cli=False):
    """Run the scenario against a live cluster; returns a report dict (nothing is asserted here).

    ``kill_controller()`` SIGKILLs the controller; ``start_controller()`` starts
    it again and returns without waiting (this function waits until it serves).
    """
    from batch_backend.client import Client
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="crash-load-")
    per_client = [submissions // clients + (1 if i < submissions % clients else 0) for i in range(clients)]
    ctx = multiprocessing.get_context("spawn")
    progress = ctx.Value("i", 0)
    procs = []
    t_start = time.monotonic()
    for i, n in enumerate(per_client):
        p = ctx.Process(target=_client_worker,
                        args=(address, i, n, os.path.join(tmp, f"client-{i}.json"), workdir, progress, cli))
        p.start()
        procs.append(p)
    restarts, kills_during_submit = [], 0
    # Random moments while submissions flow: each kill waits for a random number of
    # acknowledged submissions, then a random few milliseconds more (so it can land
    # anywhere: mid-request, mid-commit, mid-scheduling pass, mid-launch).
    thresholds = sorted(rng.sample(range(1, max(2, submissions)), min(kills, max(1, submissions - 1))))
    thresholds += [submissions] * (kills - len(thresholds))
    for k in range(kills):
        while progress.value < thresholds[k] and any(p.is_alive() for p in procs):
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.05))
        if any(p.is_alive() for p in procs):
            kills_during_submit += 1
        kill_controller()
        t_kill = time.monotonic()
        start_controller()
        deadline = t_kill + 60
        while not _serving(address):
            if time.monotonic() > deadline:
                raise RuntimeError("controller did not come back within 60 s")
            time.sleep(0.01)
        restarts.append(time.monotonic() - t_kill)
        log(f"kill {k + 1}/{kills}: controller serving again after {restarts[-1]:.2f} s")
    for p in procs:
        p.join(timeout=settle_timeout)
    t_submitted = time.monotonic()
    acked, latencies, refused = [], [], []
    failed_clients = 0
    for i in range(clients):
        path = os.path.join(tmp, f"client-{i}.json")
        if not os.path.exists(path):
            failed_clients += 1
            continue
        with open(path) as f:
            data = json.load(f)
        acked.extend(tuple(a) for a in data["acked"])
        latencies.extend(data["latencies"])
        refused.extend(tuple(a) for a in data.get("failed", []))
    # wait until every job is final (or the timeout): the accounting records decide
    client = Client(address, timeout=60)
    deadline = time.monotonic() + settle_timeout
    while True:
        try:
            records = client.accounting(start=0)
        except Exception:  # noqa: BLE001 - a restart in progress; ask again
            records = None
        if records is not None and len(records) >= len(acked) and records and \
                all(r["state"] in FINAL_STATES for r in records):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    t_final = time.monotonic()
    client.close()
    records = records or []
    by_id = {}
    for r in records:
        by_id.setdefault(r["job_id"], []).append(r)
    by_name = {}
    for r in records:
        by_name.setdefault(r["name"], []).append(r["job_id"])
    acked_ids = [job_id for _, job_id in acked]
    report = {
        "submissions": submissions, "clients": clients, "kills": kills,
        "kills_during_submit": kills_during_submit,
        "failed_clients": failed_clients,
        "client_exit_codes": [p.exitcode for p in procs],
        "acknowledged": len(acked),
        "refused": len(refused),
        "refused_examples": refused[:3],
        "acked_ids_distinct": len(set(acked_ids)),
        "job_records": len(records),
        "lost": sorted(set(acked_ids) - set(by_id)),
        "duplicate_ids": sorted(i for i, rs in by_id.items() if len(rs) > 1),
        "duplicate_submissions": sorted(n for n, ids in by_name.items() if len(ids) > 1),
        "ack_mismatch": sorted(n for n, i in acked if by_name.get(n) != [i]),
        "not_final": sorted(r["job_id"] for r in records if r["state"] not in FINAL_STATES),
        "states": _count(r["state"] for r in records),
        "restart_s": restarts,
        "submit_s": t_submitted - t_start,
        "settle_s": t_final - t_submitted,
        "submit_latency_max_s": max(latencies) if latencies else None,
        "submit_latency_median_s": sorted(latencies)[len(latencies) // 2] if latencies else None,
    }
    # every acknowledged submission: one job; a refused one (CLI mode): at most one
    report["ok"] = (not failed_clients and report["acknowledged"] + report["refused"] == submissions
                    and report["acked_ids_distinct"] == len(acked)
                    and len(acked) <= report["job_records"] <= submissions
                    and not report["lost"] and not report["duplicate_ids"]
                    and not report["duplicate_submissions"] and not report["ack_mismatch"]
                    and not report["not_final"])
    return report


def _count(values):
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def main(argv=()):
    from .harness import BIN, BenchCluster, print_table
    ap = argparse.ArgumentParser(prog="batchhub bench crash")
    ap.add_argument("--submissions", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="200 submissions, 2 kills")
    ap.add_argument("--cli", action="store_true", help="clients run the sbatch command instead of the API client")
    ap.add_argument("--accounting-url", default="",
                    help="AccountingStorageURL for the run (default: the journal is the accounting store)")
    args = ap.parse_args(list(argv))
    if args.quick:
        args.submissions, args.kills = 200, 2
    from .harness import BENCH_CONF
    conf = BENCH_CONF + (f"AccountingStorageURL={args.accounting_url}\n" if args.accounting_url else "")
    with BenchCluster(conf) as c:
        pidfile = os.path.join(c.home, "run", "controller.pid")

        def kill_controller():
            with open(pidfile) as f:
                os.kill(int(f.read()), signal.SIGKILL)

        def start_controller():
            subprocess.Popen([os.path.join(BIN, "batchhub"), "up", "--no-link-cli", "--no-hub"], env=c.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        rep = run_crash_load(c.socket, kill_controller, start_controller, submissions=args.submissions,
                             clients=args.clients, kills=args.kills, seed=args.seed, workdir=c.workdir,
                             cli=args.cli)
    restarts = rep["restart_s"]
    print_table(f"crash under load: {args.submissions} submissions, {args.clients} clients, "
                f"{args.kills} x kill -9 ({rep['kills_during_submit']} while submitting)", [
                    ("acknowledged submissions", str(rep["acknowledged"]), str(args.submissions),
                     rep["acknowledged"] == args.submissions),
                    ("not acknowledged (errors)", str(rep["refused"]), "0", rep["refused"] == 0),
                    ("job records in accounting", str(rep["job_records"]), str(args.submissions),
                     rep["job_records"] == args.submissions),
                    ("acknowledged jobs lost", str(len(rep["lost"])), "0", not rep["lost"]),
                    ("job ids recorded twice", str(len(rep["duplicate_ids"])), "0", not rep["duplicate_ids"]),
                    ("submissions that made 2+ jobs", str(len(rep["duplicate_submissions"])), "0",
                     not rep["duplicate_submissions"]),
                    ("ack differs from record", str(len(rep["ack_mismatch"])), "0", not rep["ack_mismatch"]),
                    ("jobs not in a final state", str(len(rep["not_final"])), "0", not rep["not_final"]),
                    ("kill -> serving, max (s)", f"{max(restarts):.2f}" if restarts else "-", "< 2",
                     bool(restarts) and max(restarts) < 2),
                    ("kill -> serving, mean (s)", f"{sum(restarts) / len(restarts):.2f}" if restarts else "-", "",
                     None),
                    ("submit phase (s)", f"{rep['submit_s']:.1f}", "", None),
                    ("submit -> all final (s)", f"{rep['settle_s']:.1f}", "", None),
                    ("slowest submit incl. retries (s)", "-" if rep["submit_latency_max_s"] is None
                     else f"{rep['submit_latency_max_s']:.2f}", "", None),
                ])
    print(f"final states: {rep['states']}")
    if rep["refused_examples"]:
        print(f"not acknowledged, e.g.: {rep['refused_examples']}")
    if rep["failed_clients"]:
        print(f"{rep['failed_clients']} client process(es) died (exit codes {rep['client_exit_codes']})")
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
