"""`batchhub bench flood`: one user floods the controller with submissions under limits.

The flooding user's association has ``MaxSubmitJobs`` and ``MaxJobs`` set with
sacctmgr (``AccountingStorageEnforce=associations,limits,qos``); the flooder
sends RATE submissions a second for SECONDS seconds. Meanwhile another user
runs ``squeue`` every 0.5 s and we time it. Printed: the squeue latency
(p50/p95/p99) without and during the flood (target p99 <= 100 ms during it),
accepted vs rejected submissions, whether every rejection carried Slurm's text
(``Job violates accounting/QOS policy ...``), the most flooder jobs seen
running at once (never above MaxJobs) and whether the accounting records hold
exactly the accepted jobs (a refused submission leaves nothing behind).

The flooder is a throwaway Unix user the benchmark creates (``useradd``) when
run as root, so the limits hit one user while ``squeue`` runs as another, as on
a real cluster. Not root: single-account mode - the flooder and the observer
are the same Unix user, the limits still apply to the flood's own account
(``-A flood``), the observer's ``squeue`` lists the same jobs.

Two ways to flood (``--via``):

* ``sbatch``: a shell loop that starts an ``sbatch`` process every 1/RATE s,
  each in the background (``for ...; do sbatch ... & sleep 0.01; done``) -
  what an abusive user types. Every sbatch is a Python start-up (~30-60 ms
  of CPU), so on a small machine the loop itself eats the cores the controller
  and the observer need: the achieved rate is printed.
* ``client`` (default): one process of the flooding user sends the
  submissions over the same API sbatch uses, paced to RATE per second - the
  controller sees the same requests without the cost of starting Python 100
  times a second, so the figure measures the controller, not the machine.

Reading the squeue figures: the command's wall time is a Python start-up
(~35 ms of CPU for squeue itself) plus the controller's answer; on a machine
whose cores are already busy, the start-up waits for a core and the wall time
follows the machine's load, not the flood. The controller's part (the same
``GET /v1/jobs`` timed on its own) and the CPU rows (controller, node daemons,
flooder, squeue's own) tell the two apart.

Usage: ``batchhub bench flood [--quick] [--via client|sbatch] [--rate N] [--seconds S]
[--max-submit N] [--max-jobs N] [--job-seconds N] [--background N]``. ``--quick`` floods
for 10 s; ``--background N`` first queues N held jobs of the observing user (a refused
submission must stay cheap with a big queue).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import resource
import threading
import time
import uuid

from .harness import BENCH_CONF, BIN, BenchCluster, print_table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_PYTHON = "/usr/bin/python3"  # the venv's interpreter may sit where a plain user cannot read
FLOOD_CONF = BENCH_CONF + "AccountingStorageEnforce=associations,limits,qos\n"
POLICY_TEXT = "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)"
ACCOUNT = "flood"

# The client-mode flooder, run by the flooding user's own Python: argv = socket rate seconds account
CLIENT_FLOODER = r"""
import json, os, sys, time
sys.path.insert(0, REPO)
from batch_backend.client import APIError, Client
socket, rate, seconds, account, job_seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
sub = {"script": "#!/bin/sh\nsleep " + job_seconds + "\n", "name": "flood", "workdir": "/tmp",
       "stdout": "/dev/null", "account": account, "environment": {"PATH": "/usr/bin:/bin"}}
c = Client(socket)
accepted, texts, latencies = 0, {}, []
n = int(rate * seconds)
t0 = time.monotonic()
for i in range(n):
    delay = t0 + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    s = time.monotonic()
    try:
        c.submit(sub)
        accepted += 1
    except APIError as e:
        texts[e.message] = texts.get(e.message, 0) + 1
    latencies.append(time.monotonic() - s)
print(json.dumps({"sent": n, "accepted": accepted, "rejections": texts, "elapsed": time.monotonic() - t0,
                  "latencies": latencies}))
""".replace("REPO", repr(REPO))

# The sbatch-mode flooder: a shell loop of background sbatch processes.
SBATCH_FLOODER = """\
i=0
while [ $i -lt {n} ]; do
  {python} -m batch_backend.cli.sbatch -A {account} -D /tmp -o /dev/null --wrap='sleep {job_seconds}' \
>>{out} 2>>{err} &
  i=$((i+1))
  sleep {interval}
done
wait
"""


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


class FloodUser:
    """A throwaway Unix user (root only), removed afterwards; None means single-account mode."""

    def __init__(self):
        self.name = None

    def __enter__(self):
        if os.getuid() == 0 and shutil.which("useradd") and os.access(USER_PYTHON, os.X_OK):
            name = f"bhflood{uuid.uuid4().hex[:5]}"
            if subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], capture_output=True).returncode == 0:
                self.name = name
        return self

    def __exit__(self, *exc):
        if not self.name:
            return
        # the user's last jobs may still be exiting after the cluster went down: userdel
        # refuses a user with processes, so wait a little, then remove it anyway
        for _ in range(50):
            if subprocess.run(["userdel", self.name], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        subprocess.run(["userdel", "-f", self.name], capture_output=True)

    def preexec(self):
        if self.name is None:
            return None
        import pwd
        pw = pwd.getpwnam(self.name)

        def drop():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        return drop

    def env(self, base):
        env = dict(base, PYTHONPATH=REPO)
        if self.name:
            env.update(USER=self.name, LOGNAME=self.name, HOME="/tmp")
        return env


def squeue_default_fields():
    """The job fields plain ``squeue`` asks the controller for."""
    from batch_backend.cli import formats_squeue
    columns, _ = formats_squeue.parse_squeue_format(formats_squeue.SQUEUE_DEFAULT)
    return formats_squeue.squeue_fields(columns, [])


class SqueueSampler(threading.Thread):
    """Another user's ``squeue``, timed every ``interval`` s; also the flooder's most running jobs.

    Two figures per sample: the ``squeue`` command's wall time (what the user
    waits for: Python start-up included, which a busy machine stretches) and
    the controller's part of it, the same ``GET /v1/jobs`` on a new connection.
    """

    def __init__(self, cluster, flooder, interval=0.5):
        super().__init__(daemon=True)
        self.cluster, self.flooder, self.interval = cluster, flooder, interval
        self.latencies, self.api_latencies, self.max_running, self.errors = [], [], 0, 0
        self.cpu = []  # the squeue process's own CPU time (user + sys): wall time minus this is waiting
        self.fields = squeue_default_fields()
        self.stop = threading.Event()

    def run(self):
        client = self.cluster.client()
        next_at = time.monotonic()
        while not self.stop.is_set():
            t0 = time.monotonic()
            proc = subprocess.Popen([os.path.join(BIN, "squeue")], env=self.cluster.env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            self.latencies.append(time.monotonic() - t0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            self.cpu.append(usage.ru_utime + usage.ru_stime)
            self.errors += proc.returncode != 0
            from batch_backend.client import Client
            t0 = time.monotonic()
            with Client(self.cluster.socket) as fresh:
                fresh.jobs(fields=self.fields, hide_hidden=True)
            self.api_latencies.append(time.monotonic() - t0)
            running = client.jobs(users=[self.flooder], states=["RUNNING"], fields=["job_id", "account"])
            self.max_running = max(self.max_running, sum(1 for j in running if j.get("account") == ACCOUNT))
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def sample_squeue(cluster, flooder, seconds):
    sampler = SqueueSampler(cluster, flooder)
    sampler.start()
    time.sleep(seconds)
    sampler.stop.set()
    sampler.join()
    return sampler


def setup_limits(cluster, user, max_submit, max_jobs):
    def sacctmgr(*args):
        r = cluster.run("sacctmgr", "-i", *args)
        if r.returncode != 0:
            raise RuntimeError(f"sacctmgr {' '.join(args)}: {r.stderr.strip()}")
    sacctmgr("add", "account", ACCOUNT, f"MaxSubmitJobs={max_submit}", f"MaxJobs={max_jobs}")
    sacctmgr("add", "user", user, f"account={ACCOUNT}")


def process_cpu_seconds(pid):
    """user + system CPU seconds a process used so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def controller_pid(cluster):
    with open(os.path.join(cluster.home, "run", "controller.pid")) as f:
        return int(f.read().strip())


def noded_pids(cluster):
    run_dir = os.path.join(cluster.home, "run")
    pids = []
    for name in os.listdir(run_dir):
        if name.startswith("noded-") and name.endswith(".pid"):
            with open(os.path.join(run_dir, name)) as f:
                pids.append(int(f.read().strip()))
    return pids




def flood_client(cluster, fuser, rate, seconds, job_seconds):
    r = subprocess.run([USER_PYTHON if fuser.name else sys.executable, "-c", CLIENT_FLOODER, cluster.socket,
                        str(rate), str(seconds), ACCOUNT, str(job_seconds)],
                       env=fuser.env(cluster.env), cwd="/tmp", capture_output=True, text=True,
                       preexec_fn=fuser.preexec())
    if r.returncode != 0:
        raise RuntimeError(f"flooder failed: {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout)


def flood_sbatch(cluster, fuser, rate, seconds, job_seconds):
    out, err = os.path.join(cluster.home, "flood.out"), os.path.join(cluster.home, "flood.err")
    for path in (out, err):
        open(path, "w").close()
        os.chmod(path, 0o666)
    n = int(rate * seconds)
    script = SBATCH_FLOODER.format(n=n, python=USER_PYTHON if fuser.name else sys.executable, account=ACCOUNT,
                                   job_seconds=job_seconds, out=out, err=err, interval=1 / rate)
    t0 = time.monotonic()
    r = subprocess.run(["/bin/sh", "-c", script], env=fuser.env(cluster.env), cwd="/tmp", capture_output=True,
                       text=True, preexec_fn=fuser.preexec())
    elapsed = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"sbatch loop failed: {r.stderr.strip()[-2000:]}")
    with open(out) as f:
        accepted = sum(1 for line in f if line.startswith("Submitted batch job "))
    texts = {}
    with open(err) as f:
        for line in f:
            text = line.strip().removeprefix("sbatch: error: Batch job submission failed: ")
            texts[text] = texts.get(text, 0) + 1
    return {"sent": n, "accepted": accepted, "rejections": texts, "elapsed": elapsed, "latencies": []}


def flooder_records(cluster):
    """The flooder's jobs in accounting (every job ever accepted), as sacct sees them."""
    r = cluster.run("sacct", "-n", "-P", "-X", "-a", "-A", ACCOUNT, "-S", "2000-01-01", "-o", "JobID")
    return len(r.stdout.split()) if r.returncode == 0 else -1


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def queue_background(cluster, count, chunk=500):
    """``count`` held jobs of the observing user: a cluster with a queue, not an empty one."""
    from .harness import submission
    client = cluster.client()
    for start in range(0, count, chunk):
        client.submit_many([submission(hold=True) for _ in range(min(chunk, count - start))])


def run(rate=100.0, seconds=60.0, via="client", max_submit=20, max_jobs=4, job_seconds=2, baseline=10.0,
        background=0):
    with FloodUser() as fuser, BenchCluster(FLOOD_CONF) as c:
        os.chmod(c.home, 0o755)
        import pwd
        user = fuser.name or pwd.getpwuid(os.getuid()).pw_name
        setup_limits(c, user, max_submit, max_jobs)
        queue_background(c, background)
        quiet = sample_squeue(c, user, baseline)
        sampler = SqueueSampler(c, user)
        pid = controller_pid(c)
        nodeds = noded_pids(c)
        cpu0, t0 = process_cpu_seconds(pid), time.monotonic()
        noded0 = sum(process_cpu_seconds(p) for p in nodeds)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        sampler.start()
        flood = (flood_sbatch if via == "sbatch" else flood_client)(c, fuser, rate, seconds, job_seconds)
        elapsed = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # every reaped child: the flooder (with its sbatch processes) and the sampler's squeue runs
        flood["flooder_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        controller_cpu = (process_cpu_seconds(pid) - cpu0) / elapsed
        noded_cpu = (sum(process_cpu_seconds(p) for p in nodeds) - noded0) / elapsed
        sampler.stop.set()
        sampler.join()
        records = flooder_records(c)
        return {"user": fuser.name, "via": via, "rate": rate, "seconds": seconds, "max_submit": max_submit,
                "max_jobs": max_jobs, "background": background, "quiet": quiet.latencies, "loaded": sampler.latencies,
                "quiet_api": quiet.api_latencies, "loaded_api": sampler.api_latencies,
                "quiet_cpu": quiet.cpu, "loaded_cpu": sampler.cpu, "controller_cpu": controller_cpu,
                "noded_cpu": noded_cpu, "flood_elapsed": elapsed,
                "squeue_errors": quiet.errors + sampler.errors, "max_running": sampler.max_running,
                "records": records, **flood}


def main(args=()):
    p = argparse.ArgumentParser(prog="batchhub bench flood")
    p.add_argument("--quick", action="store_true", help="flood for 10 s (baseline 5 s)")
    p.add_argument("--via", choices=["client", "sbatch"], default="client")
    p.add_argument("--rate", type=float, default=100.0, help="submissions per second (100)")
    p.add_argument("--seconds", type=float, help="flood duration (60; 10 with --quick)")
    p.add_argument("--max-submit", type=int, default=20, help="the flooder's MaxSubmitJobs (20)")
    p.add_argument("--max-jobs", type=int, default=4, help="the flooder's MaxJobs (4)")
    p.add_argument("--job-seconds", type=int, default=2, help="each flood job sleeps this long (2)")
    p.add_argument("--background", type=int, default=0,
                   help="held jobs of the observing user queued before the flood (0)")
    opts = p.parse_args(list(args))
    seconds = opts.seconds or (10.0 if opts.quick else 60.0)
    res = run(opts.rate, seconds, opts.via, opts.max_submit, opts.max_jobs, opts.job_seconds,
              baseline=5.0 if opts.quick else 10.0, background=opts.background)
    rejected = sum(res["rejections"].values())
    policy = res["rejections"].get(POLICY_TEXT, 0)
    quiet, loaded = res["quiet"], res["loaded"]
    p99 = percentile(loaded, 99)
    mode = f"user {res['user']}" if res["user"] else "single-account mode (not root)"
    rows = [
        ("flood: submissions sent", str(res["sent"]), f"{res['rate'] * res['seconds']:.0f}", None),
        ("flood: achieved rate", f"{res['sent'] / res['elapsed']:.1f}/s", f">= {res['rate'] * 0.95:.0f}/s",
         res["sent"] / res["elapsed"] >= res["rate"] * 0.95),
        ("flood: accepted", str(res["accepted"]), "", None),
        ("flood: rejected", str(rejected), "", None),
        ("rejections with Slurm's policy text", f"{policy}/{rejected}", "all", policy == rejected),
        (f"flooder max running (MaxJobs={res['max_jobs']})", str(res["max_running"]), f"<= {res['max_jobs']}",
         res["max_running"] <= res["max_jobs"]),
        ("accounting records == accepted", f"{res['records']}/{res['accepted']}", "equal",
         res["records"] == res["accepted"]),
    ]
    if res.get("flooder_cpu") is not None:
        share = (res["flooder_cpu"] - sum(res["loaded_cpu"])) / res["flood_elapsed"]
        label = "flooder's CPU" + (" (its sbatch processes included)" if res["via"] == "sbatch" else "")
        rows.append((label, f"{share * 100:.0f}% of a core", "", None))
    if res["latencies"]:
        rows.append(("flooder submit latency p50/p99", f"{ms(percentile(res['latencies'], 50))}/"
                     f"{ms(percentile(res['latencies'], 99))}", "", None))
    rows += [
        (f"squeue quiet p50/p95 (n={len(quiet)})", f"{ms(percentile(quiet, 50))}/{ms(percentile(quiet, 95))}", "",
         None),
        ("squeue quiet p99", ms(percentile(quiet, 99)), "", None),
        ("squeue's own CPU time quiet p50", ms(percentile(res["quiet_cpu"], 50)), "", None),
        (f"squeue during flood p50/p95 (n={len(loaded)})",
         f"{ms(percentile(loaded, 50))}/{ms(percentile(loaded, 95))}", "", None),
        ("squeue during flood p99", ms(p99), "<= 100 ms", p99 <= 0.1),
        ("squeue's own CPU time flood p50", ms(percentile(res["loaded_cpu"], 50)), "", None),
        ("squeue's API request quiet p50/p99",
         f"{ms(percentile(res['quiet_api'], 50))}/{ms(percentile(res['quiet_api'], 99))}", "", None),
        ("squeue's API request flood p50/p95",
         f"{ms(percentile(res['loaded_api'], 50))}/{ms(percentile(res['loaded_api'], 95))}", "", None),
        ("squeue's API request flood p99", ms(percentile(res['loaded_api'], 99)), "<= 100 ms",
         percentile(res['loaded_api'], 99) <= 0.1),
        ("squeue errors", str(res["squeue_errors"]), "0", res["squeue_errors"] == 0),
        ("controller CPU during flood", f"{res['controller_cpu'] * 100:.0f}% of a core", "", None),
        ("node daemons' CPU during flood", f"{res['noded_cpu'] * 100:.0f}% of a core", "", None),
    ]
    print_table(f"Flood: {res['rate']:.0f} submits/s for {res['seconds']:.0f} s via {res['via']}, {mode}, "
                f"MaxSubmitJobs={res['max_submit']} MaxJobs={res['max_jobs']}, {res['background']} other jobs queued "
                f"(load average {os.getloadavg()[0]:.2f})", rows)
    others = {t: n for t, n in res["rejections"].items() if t != POLICY_TEXT}
    if others:
        print("other rejections:", json.dumps(others)[:500])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
