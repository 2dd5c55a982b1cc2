"""A real JupyterHub with the QueueSpawner on a real BatchHub cluster: helpers of the hub tests.

Nothing is mocked: the cluster is :class:`LiveCluster` (controller + node
daemons), the hub is ``jupyterhub -f hub_config/jupyterhub_config.py`` run as a
subprocess on loopback with configurable-http-proxy, and each server is a real
``jupyterhub-singleuser`` in a real batch job. Tests drive the hub's REST API
with an admin service token, the way a script or the browser would.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


from cluster_support import LiveCluster  # noqa: E402
HUB_CONFIG = os.path.join(ROOT, "hub_config", "jupyterhub_config.py")
TOKEN = "hubtest-service-token-0123456789"
ADMIN_PASSWORD = "hubtest-admin-password-0123456789abcdef"

HUB_CONF = """\
ClusterName=hubtest
SlurmdParameters=config_overrides
SlurmdTimeout=30
KillWait=1
MinJobAge=300
NodeName=n[1-2] CPUs=2 RealMemory=2000
NodeName=n3 CPUs=2 RealMemory=2000
PartitionName=debug Nodes=n[1-2] Default=YES MaxTime=60 State=UP
PartitionName=solo Nodes=n3 MaxTime=30 State=UP
"""

# Settings for tests: fast watcher, short timeouts, a job that fails on purpose for user "crash".
EXTRA_CONFIG = """\
c = get_config()
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
c.Spawner.http_timeout = 60
c.QueueSpawner.start_timeout = 90
c.QueueSpawner.server_start_timeout = 60
c.QueueSpawner.watch_interval = 1.0
c.QueueSpawner.poll_interval = 2
c.QueueSpawner.prologue = (
    'if [ "$JUPYTERHUB_USER" = crash ]; then echo "crash: the module foo is not installed" >&2; exit 3; fi')
c.QueueSpawner.profiles = [
    {"name": "tiny", "display_name": "Tiny: 1 CPU, 512 MB, 20 min", "cpus": 1, "memory": "512M", "time": 20},
    {"name": "solo", "display_name": "Solo node", "partition": "solo", "cpus": 1, "memory": "512M", "time": 20},
    {"name": "class101", "display_name": "Class 101", "cpus": 1, "memory": "512M", "time": 20,
     "account": "class101", "groups": ["class101"], "users": ["teacher"]},
    {"name": "big", "display_name": "Big: 8 CPUs", "cpus": 8, "memory": "1G", "time": 20},
]
"""


def free_base_port():
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


class LiveHub:
    """A JupyterHub subprocess on loopback, driven over its REST API."""

    def __init__(self, cluster, workdir):
        self.cluster = cluster
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_base_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra = os.path.join(self.dir, "test_config.py")
        with open(extra, "w") as f:
            f.write(EXTRA_CONFIG)
        self.env = dict(cluster.env, BATCHHUB_HUB_PORT=str(self.port), BATCHHUB_HUB_SERVICE_TOKEN=TOKEN,
                        BATCHHUB_HUB_PASSWORD="classroom", BATCHHUB_HUB_ADMIN_PASSWORD=ADMIN_PASSWORD,
                        BATCHHUB_HUB_CULL_TIMEOUT="0",
                        BATCHHUB_HUB_EXTRA_CONFIG=extra)
        self.log_path = os.path.join(self.dir, "hub.log")
        self.proc = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {TOKEN}"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout=60, attempts=2):
        """Start the hub; JupyterHub gives its proxy a hard-coded 10 s to come up, which a
        loaded 2-core machine can miss, so that one failure is retried once."""
        for attempt in range(attempts):
            try:
                return self._start_once(timeout)
            except AssertionError as e:
                if attempt + 1 == attempts or "Failed to start proxy" not in str(e):
                    raise
                self._kill_leftover_proxy()

    def _kill_leftover_proxy(self):
        try:
            with open(os.path.join(self.cluster.home, "hub", "jupyterhub-proxy.pid")) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def _start_once(self, timeout):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", HUB_CONFIG], cwd=self.dir,
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"hub exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if self.session.get(self.url + "/hub/api/", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"hub did not answer in {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout=40):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        try:  # proxy and services of this hub
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait(5)

    def restart(self):
        self.stop()
        return self.start()

    def log_tail(self, n=60):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- REST API ----------------------------------------------------------------------------
    def api(self, method, path, **kw):
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.url + "/hub/api" + path, **kw)

    def user(self, name):
        r = self.api("GET", f"/users/{name}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def ensure_user(self, name):
        if self.user(name) is None:
            assert self.api("POST", f"/users/{name}").status_code == 201

    def spawn(self, name, options):
        """POST the spawn request; returns the response (202 at once: slow_spawn_timeout=0)."""
        self.ensure_user(name)
        return self.api("POST", f"/users/{name}/server", json=options)

    def progress(self, name, timeout=90, events=None):
        """All events of the progress stream until ready or failed (appended to ``events``)."""
        events = [] if events is None else events
        try:
            self._read_progress(name, timeout, events)
        except requests.RequestException:  # the hub went away (a restart test): what we have
            pass
        return events

    def _read_progress(self, name, timeout, events):
        with self.session.get(f"{self.url}/hub/api/users/{name}/server/progress", stream=True,
                              timeout=timeout) as r:
            r.raise_for_status()
            deadline = time.time() + timeout
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    events.append(event)
                    if event.get("ready") or event.get("failed"):
                        break
                if time.time() > deadline:
                    break

    def progress_in_background(self, name, timeout=90):
        """Start collecting progress events in a thread; returns (thread, events list)."""
        events = []

        def run():
            self.progress(name, timeout, events)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, events

    def server(self, name):
        user = self.user(name)
        return (user or {}).get("servers", {}).get("")

    def wait_server(self, name, predicate, timeout=60):
        deadline = time.time() + timeout
        server = None
        while time.time() < deadline:
            server = self.server(name)
            if predicate(server):
                return server
            time.sleep(0.3)
        raise AssertionError(f"server of {name}: {server}\n{self.log_tail()}")

    def stop_server(self, name, timeout=60):
        r = self.api("DELETE", f"/users/{name}/server")
        assert r.status_code in (202, 204), r.text
        self.wait_server(name, lambda s: s is None, timeout)

    def browser_session(self, name, password="classroom"):
        """A requests session logged in through the login form (cookies, like a browser)."""
        s = requests.Session()
        s.get(self.url + "/hub/login", timeout=30)
        r = s.post(self.url + "/hub/login", data={"username": name, "password": password,
                                                  "_xsrf": s.cookies.get("_xsrf")},
                   allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text[-500:]
        return s

    def through_proxy(self, name, path="api/status"):
        """A request to the user's server through the proxy (service token has access:servers)."""
        return self.session.get(f"{self.url}/user/{name}/{path}", timeout=10)


def make_hub_cluster(home):
    c = LiveCluster(home, HUB_CONF)
    r = c.batchhub("up", "--no-link-cli", "--no-hub")
    assert r.returncode == 0, r.stderr + r.stdout
    c.wait_nodes_up()
    return c


def squeue_ids(cluster):
    r = cluster.run("squeue", "-h", "-o", "%i %T %j")
    assert r.returncode == 0, r.stderr
    return {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()}


def messages(events):
    """The progress events' messages, one per line (what the spawn page shows)."""
    return "\n".join(e.get("message", "") for e in events)
