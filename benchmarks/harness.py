"""A throwaway cluster for benchmarks, and a table printer.

Benchmarks measure the real daemons and the real console scripts, started in a
temporary ``BATCHHUB_HOME`` with a config of their own, and print figures with
their targets; they never assert (speed lives here, not in the tests).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)

BENCH_CONF = """\
ClusterName=bench
SlurmdParameters=config_overrides
SlurmdTimeout=60
KillWait=2
MinJobAge=300
NodeName=n[1-4] CPUs=4 RealMemory=4000
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class BenchCluster:
    def __init__(self, conf=BENCH_CONF):
        self.home = tempfile.mkdtemp(prefix="batchhub-bench-")
        self.conf_path = os.path.join(self.home, "slurm.conf")
        with open(self.conf_path, "w") as f:
            f.write(conf)
        self.socket = os.path.join(self.home, "run", "controller.sock")
        self.env = dict(os.environ, BATCHHUB_HOME=self.home, BATCHHUB_SOCKET=self.socket,
                        BATCHHUB_CONF=self.conf_path, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
        self.workdir = os.path.join(self.home, "work")
        os.makedirs(self.workdir)

    def __enter__(self):
        subprocess.run([os.path.join(BIN, "batchhub"), "up", "--no-link-cli", "--no-hub"], env=self.env, check=True,
                       capture_output=True)
        os.environ["BATCHHUB_SOCKET"] = self.socket
        return self

    def __exit__(self, *exc):
        subprocess.run([os.path.join(BIN, "batchhub"), "down"], env=self.env, capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)

    def client(self):
        from batch_backend.client import Client
        return Client(self.socket)

    def run(self, *argv, **kw):
        return subprocess.run([os.path.join(BIN, argv[0]), *argv[1:]], env=self.env, cwd=self.workdir,
                              capture_output=True, text=True, **kw)

    def daemon_pids(self):
        """``{"controller": pid, "noded": [pid, ...]}`` from the pid files ``batchhub up`` wrote."""
        run_dir = os.path.join(self.home, "run")
        pids = {"controller": None, "noded": []}
        for name in sorted(os.listdir(run_dir)):
            if not name.endswith(".pid"):
                continue
            with open(os.path.join(run_dir, name)) as f:
                pid = int(f.read().strip())
            if name == "controller.pid":
                pids["controller"] = pid
            elif name.startswith("noded-"):
                pids["noded"].append(pid)
        return pids

    def daemon_cpu(self):
        """CPU seconds so far: ``{"controller": (own, children), "noded": (own, children)}``.

        ``own`` is utime+stime of all the process's threads; ``children`` is
        cutime+cstime of its reaped children (for a node daemon: the jobs,
        including the forked child's set-up before exec). Node daemons are summed.
        """
        pids = self.daemon_pids()
        out = {"controller": cpu_times(pids["controller"]), "noded": (0.0, 0.0)}
        for pid in pids["noded"]:
            own, kids = cpu_times(pid)
            for helper in fork_servers(pid):  # part of the daemon (noded/forkserver.py)
                own += cpu_times(helper)[0]
            out["noded"] = (out["noded"][0] + own, out["noded"][1] + kids)
        return out

    def wait_empty(self, timeout=600, poll=0.05):
        c = self.client()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not c.jobs(fields=["job_id"]):
                return time.time()
            time.sleep(poll)
        raise TimeoutError("queue did not drain")


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid):
    """``(own, children)`` CPU seconds of ``pid`` from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # after the comm: [11]=utime(14) [12]=stime(15) [13]=cutime(16) [14]=cstime(17)
    return (int(fields[11]) + int(fields[12])) / _TICK, (int(fields[13]) + int(fields[14])) / _TICK


def fork_servers(pid):
    """Pids of the fork server(s) among ``pid``'s live children."""
    found = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        for kid in kids:
            try:
                with open(f"/proc/{kid}/cmdline", "rb") as f:
                    if b"forkserver.py" in f.read():
                        found.append(kid)
            except OSError:
                pass
    return found


def submission(cmd="true", **extra):
    """A minimal submission dict, as sbatch --wrap would build it."""
    sub = {"script": f"#!/bin/sh\n{cmd}\n", "name": "bench", "workdir": "/tmp", "stdout": "/dev/null",
           "environment": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}}
    sub.update(extra)
    return sub


def median(values):
    return statistics.median(values) if values else float("nan")


def print_table(title, rows):
    """rows: (measure, value text, target text, ok: bool|None)."""
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}")
    print(f"{'measure':<{width}}  {'value':>14}  {'target':>12}  ")
    print("-" * (width + 34))
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("ok" if ok else "MISSED")
        print(f"{name:<{width}}  {value:>14}  {target:>12}  {mark}")
