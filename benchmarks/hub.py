"""`batchhub bench hub`: JupyterHub on the queue versus JupyterHub's own LocalProcessSpawner.

A real cluster (4 virtual nodes x 16 CPUs, config_overrides) and real JupyterHub
subprocesses (hub_config/jupyterhub_config.py + configurable-http-proxy on loopback)
driven over the REST API with a service token, as a script would:

(a) spawn latency, POST /users/NAME/server -> server ready, median and p95 over
    sequential spawns, QueueSpawner versus LocalProcessSpawner in the same run;
(b) N users (default 50, `--users N`; `--quick`: 10) spawning at once on the idle
    cluster: all ready, failures counted, p95 versus LocalProcessSpawner;
(c) hub restart with 20 running servers (`--quick`: 5): time from the hub's launch
    until all are running again through the REST API, none lost (same job ids).

The LocalProcessSpawner hub is the same config with ``spawner_class`` replaced (a
subclass that runs every user as the hub's own account, since the bench users are
not Unix accounts) and its own database. Figures and targets are printed, never
asserted.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from .harness import BenchCluster, print_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUB_CONFIG = os.path.join(ROOT, "hub_config", "jupyterhub_config.py")
TOKEN = "bench-hub-service-token-0123456789"

HUB_BENCH_CONF = """\
ClusterName=benchhub
SlurmdParameters=config_overrides
SlurmdTimeout=60
KillWait=1
MinJobAge=300
NodeName=n[1-4] CPUs=16 RealMemory=16000
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""

COMMON_CONFIG = """\
import os
c = get_config()
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
c.JupyterHub.concurrent_spawn_limit = 500
c.JupyterHub.active_server_limit = 0
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 240
if os.getuid() == 0:
    c.Spawner.args = ["--allow-root"]
"""

QUEUE_CONFIG = COMMON_CONFIG + """\
c.QueueSpawner.profiles = [
    {"name": "bench", "display_name": "Bench: 1 CPU, 1 GB", "cpus": 1, "memory": "1G", "time": 120},
]
"""

LOCAL_CONFIG = COMMON_CONFIG + """\
from jupyterhub.spawner import LocalProcessSpawner

HUB_DIR = {hub_dir!r}


class BenchLocalProcessSpawner(LocalProcessSpawner):
    \"\"\"LocalProcessSpawner with every user run as the hub's account (bench users have no Unix
    account), each in a directory of their own.\"\"\"

    def _home(self):
        path = os.path.join(HUB_DIR, "users", self.user.name)
        os.makedirs(path, exist_ok=True)
        return path

    def make_preexec_fn(self, name):
        home = self._home()
        return lambda: os.chdir(home)

    def user_env(self, env):
        env["USER"] = self.user.name
        env["HOME"] = self._home()
        return env


c.JupyterHub.spawner_class = BenchLocalProcessSpawner
# a database, cookie secret and proxy pid file of its own (the queue hub's stay untouched)
c.JupyterHub.db_url = "sqlite:///" + os.path.join(HUB_DIR, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(HUB_DIR, "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = os.path.join(HUB_DIR, "jupyterhub-proxy.pid")
"""


def _free_base_port():
    """A port P with P, P+1 and P+81 free (proxy, proxy API, hub)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 81 > 65000:
            continue
        ok = True
        for p in (base, base + 1, base + 81):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port triple")


def percentile(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class BenchHub:
    """A JupyterHub subprocess on loopback, driven over its REST API (a small copy of the hub
    tests' LiveHub: benchmarks do not import tests/)."""

    def __init__(self, cluster, name, extra_config):
        self.cluster = cluster
        self.dir = os.path.join(cluster.home, "bench-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = _free_base_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra = os.path.join(self.dir, "bench_config.py")
        with open(extra, "w") as f:
            f.write(extra_config.replace("{hub_dir!r}", repr(self.dir)))
        self.env = dict(cluster.env, BATCHHUB_HUB_PORT=str(self.port), BATCHHUB_HUB_SERVICE_TOKEN=TOKEN,
                        BATCHHUB_HUB_PASSWORD="bench-password", BATCHHUB_HUB_ADMIN_PASSWORD="b" * 40,
                        BATCHHUB_HUB_CULL_TIMEOUT="0", BATCHHUB_HUB_EXTRA_CONFIG=extra)
        self.log_path = os.path.join(self.dir, "hub.log")
        self.proc = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {TOKEN}"
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=128)
        self.session.mount("http://", adapter)

    def start(self, timeout=90):
        for attempt in range(2):  # JupyterHub gives its proxy a hard 10 s: one retry on a slow box
            try:
                return self._start_once(timeout)
            except RuntimeError as e:
                if attempt == 1 or "Failed to start proxy" not in str(e):
                    raise

    def _start_once(self, timeout):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", HUB_CONFIG], cwd=self.dir,
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if self.session.get(self.url + "/hub/api/", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hub did not answer in {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout=60):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        try:  # its proxy
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait(5)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def api(self, method, path, **kw):
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.url + "/hub/api" + path, **kw)

    def ensure_user(self, name):
        r = self.api("GET", f"/users/{name}")
        if r.status_code == 404:
            r = self.api("POST", f"/users/{name}")
            if r.status_code not in (201, 409):
                raise RuntimeError(f"cannot create user {name}: {r.status_code} {r.text}")

    def server(self, name):
        r = self.api("GET", f"/users/{name}")
        r.raise_for_status()
        return r.json().get("servers", {}).get("")

    def active_servers(self):
        """{user: server model} of every user with a pending or running server (one request)."""
        r = self.api("GET", "/users", params={"state": "active", "limit": 1000})
        r.raise_for_status()
        data = r.json()
        users = data["items"] if isinstance(data, dict) and "items" in data else data
        return {u["name"]: u.get("servers", {}).get("") for u in users if u.get("servers", {}).get("")}

    def stop_all(self, timeout=120):
        names = list(self.active_servers())
        for name in names:
            self.api("DELETE", f"/users/{name}/server")
        deadline = time.time() + timeout
        while time.time() < deadline and self.active_servers():
            time.sleep(0.5)


def spawn_sequential(hub, prefix, n, options):
    """n spawns one after the other: seconds from POST to ready; failures."""
    latencies, failures = [], 0
    for i in range(n):
        name = f"{prefix}{i}"
        hub.ensure_user(name)
        t0 = time.perf_counter()
        r = hub.api("POST", f"/users/{name}/server", json=options)
        if r.status_code not in (201, 202):
            failures += 1
            continue
        deadline = time.time() + 300
        while time.time() < deadline:
            server = hub.server(name)
            if server is None:
                break
            if server.get("ready"):
                latencies.append(time.perf_counter() - t0)
                break
            time.sleep(0.05)
        else:
            server = None
        if not (server and server.get("ready")):
            failures += 1
    hub.stop_all()
    return latencies, failures


def spawn_burst(hub, prefix, n, options, timeout=600):
    """n users POST at once; one poller lists the active servers. Returns (latencies, failures)."""
    names = [f"{prefix}{i}" for i in range(n)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(hub.ensure_user, names))
    posted, ready, failed = {}, {}, set()
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def post(name):
        barrier.wait()
        t0 = time.perf_counter()
        try:
            r = hub.api("POST", f"/users/{name}/server", json=options, timeout=300)
            ok = r.status_code in (201, 202)
        except requests.RequestException:
            ok = False
        with lock:
            if ok:
                posted[name] = t0
            else:
                failed.add(name)

    threads = [threading.Thread(target=post, args=(name,), daemon=True) for name in names]
    for t in threads:
        t.start()
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            active = hub.active_servers()
        except requests.RequestException:
            time.sleep(0.25)
            continue
        now = time.perf_counter()
        with lock:
            for name, t0 in posted.items():
                if name in ready or name in failed:
                    continue
                server = active.get(name)
                if server is None:
                    if now - t0 > 1.0:  # posted, then gone: the spawn failed
                        failed.add(name)
                elif server.get("ready"):
                    ready[name] = now - t0
            if len(ready) + len(failed) == n:
                break
        time.sleep(0.25)
    for t in threads:
        t.join(5)
    failures = n - len(ready)
    return list(ready.values()), failures


def recover_after_restart(hub, prefix, n, options):
    """n running servers; restart the hub; seconds from relaunch until all are ready again."""
    lat, failures = spawn_burst(hub, prefix, n, options)
    before = {name: (s.get("state") or {}).get("job_id") for name, s in hub.active_servers().items()
              if name.startswith(prefix) and s.get("ready")}
    hub.stop()
    t0 = time.perf_counter()
    hub.start()
    api_up = time.perf_counter() - t0
    deadline = time.time() + 300
    recovered = {}
    while time.time() < deadline:
        try:
            active = hub.active_servers()
        except requests.RequestException:
            time.sleep(0.2)
            continue
        recovered = {name: (s.get("state") or {}).get("job_id") for name, s in active.items()
                     if name in before and s.get("ready")}
        if len(recovered) == len(before):
            break
        time.sleep(0.2)
    all_back = time.perf_counter() - t0
    squeue = hub.cluster.run("squeue", "-h", "-o", "%i %T").stdout.split("\n")
    running_jobs = {line.split()[0] for line in squeue if line.strip() and line.split()[1] == "RUNNING"}
    lost = [name for name, job in before.items()
            if recovered.get(name) != job or str(job) not in running_jobs]
    return len(before), n - len(before), api_up, all_back, lost


def _wait_nodes(cluster, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = cluster.run("sinfo", "-h", "-N", "-o", "%N %t")
        lines = r.stdout.splitlines()
        if r.returncode == 0 and len(lines) >= 4 and all(line.split()[1] in ("idle", "mix", "alloc")
                                                           for line in lines):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nodes did not come up: {r.stdout} {r.stderr}")


def _fmt(seconds):
    return f"{seconds:.2f} s" if seconds == seconds else "n/a"


def _ratio_row(label, q, l, target):
    if q == q and l == l and l > 0:
        ratio = q / l
        return (label, f"{ratio:.2f}x", f"<= {target}x", ratio <= target)
    return (label, "n/a", f"<= {target}x", False)


def main(args=()):
    args = list(args)
    quick = "--quick" in args
    users = 10 if quick else 50
    if "--users" in args:
        users = int(args[args.index("--users") + 1])
    seq = 5
    restart_n = 5 if quick else 20
    queue_opts = {"profile": "bench"}
    rows = []
    with BenchCluster(HUB_BENCH_CONF) as c:
        _wait_nodes(c)
        t0 = time.perf_counter()
        qhub = BenchHub(c, "queue", QUEUE_CONFIG).start()
        cold_start = time.perf_counter() - t0
        lhub = BenchHub(c, "local", LOCAL_CONFIG)
        try:
            lhub.start()
            # (a) alternating one QueueSpawner and one LocalProcessSpawner spawn, so that any
            # background load of the machine hits both alike; the first of each is a warm-up
            spawn_sequential(qhub, "warmq", 1, queue_opts)
            spawn_sequential(lhub, "warml", 1, {})
            q_seq, l_seq, q_seq_fail, l_seq_fail = [], [], 0, 0
            for i in range(seq):
                lat, fail = spawn_sequential(qhub, f"seqq{i}-", 1, queue_opts)
                q_seq += lat
                q_seq_fail += fail
                lat, fail = spawn_sequential(lhub, f"seql{i}-", 1, {})
                l_seq += lat
                l_seq_fail += fail
            # (b) one burst on each hub, the other one idle
            q_burst, q_burst_fail = spawn_burst(qhub, "burstq", users, queue_opts)
            qhub.stop_all(300)
            l_burst, l_burst_fail = spawn_burst(lhub, "burstl", users, {})
            lhub.stop_all(300)
            # (c) QueueSpawner only: LocalProcessSpawner servers do not survive a hub restart
            r_n, r_spawn_fail, r_api, r_all, r_lost = recover_after_restart(qhub, "restartq", restart_n, queue_opts)
            qhub.stop_all(300)
        except Exception:
            print(qhub.log_tail(), lhub.log_tail(), file=sys.stderr)
            raise
        finally:
            qhub.stop()
            lhub.stop()

    qm, lm = statistics.median(q_seq) if q_seq else float("nan"), statistics.median(l_seq) if l_seq else float("nan")
    qp, lp = percentile(q_seq, 95), percentile(l_seq, 95)
    rows.append((f"(a) spawn POST->ready, QueueSpawner median ({seq} alternating)", _fmt(qm), "", None))
    rows.append(("(a) ... QueueSpawner p95", _fmt(qp), "", None))
    rows.append(("(a) ... LocalProcessSpawner median", _fmt(lm), "", None))
    rows.append(("(a) ... LocalProcessSpawner p95", _fmt(lp), "", None))
    rows.append(_ratio_row("(a) median ratio Queue/Local", qm, lm, 1.2))
    rows.append(_ratio_row("(a) p95 ratio Queue/Local", qp, lp, 1.2))
    rows.append(("(a) failures Queue / Local", f"{q_seq_fail} / {l_seq_fail}", "0 / 0",
                 q_seq_fail == 0 and l_seq_fail == 0))
    qbp, lbp = percentile(q_burst, 95), percentile(l_burst, 95)
    rows.append((f"(b) {users} at once: QueueSpawner ready", f"{len(q_burst)}/{users}", f"{users}/{users}",
                 len(q_burst) == users))
    rows.append(("(b) ... QueueSpawner failures", str(q_burst_fail), "0", q_burst_fail == 0))
    rows.append(("(b) ... QueueSpawner median / p95",
                 f"{percentile(q_burst, 50):.1f}/{qbp:.1f} s" if q_burst else "n/a", "", None))
    rows.append(("(b) ... LocalProcessSpawner ready", f"{len(l_burst)}/{users}", "", None))
    rows.append(("(b) ... LocalProcessSpawner median / p95",
                 f"{percentile(l_burst, 50):.1f}/{lbp:.1f} s" if l_burst else "n/a", "", None))
    rows.append(_ratio_row("(b) p95 ratio Queue/Local", qbp, lbp, 1.5))
    rows.append((f"(c) hub restart, {restart_n} running: servers before", f"{r_n}/{restart_n}", "", None))
    rows.append(("(c) ... hub API answering after", _fmt(r_api), "", None))
    rows.append(("(c) (first hub start, no servers, for scale)", _fmt(cold_start), "", None))
    rows.append(("(c) ... all recovered as running after", _fmt(r_all), "", None))
    rows.append(("(c) ... servers lost", str(len(r_lost)), "0", not r_lost and r_n == restart_n))
    print_table(f"batchhub bench hub (4 virtual nodes x 16 CPUs; {os.cpu_count()} host CPUs)", rows)
    if r_lost:
        print(f"lost in restart: {', '.join(r_lost)}")
    return 0
