"""JupyterHub on the controller's host, a user's server as a batch job on another host.

The hub and its proxy listen on the controller host's own address; the server
job on a node host reports the address that faces the hub (its node's, never
loopback), and the proxy routes the user's requests there. A driver script in
the controller's namespace plays the browser (the test process cannot reach
the namespaces' network).
"""

import json
import os
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(300)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB_CONFIG = os.path.join(ROOT, "hub_config", "jupyterhub_config.py")
TOKEN = "netns-hub-service-token-0123456789"
PORT = 18000
NODE_ADDRS = {"10.77.0.11", "10.77.0.12", "10.77.0.13"}

EXTRA_CONFIG = """\
c = get_config()
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
c.Spawner.http_timeout = 60
c.QueueSpawner.start_timeout = 120
c.QueueSpawner.watch_interval = 1.0
c.QueueSpawner.profiles = [
    {"name": "tiny", "display_name": "Tiny", "cpus": 1, "memory": "450M", "time": 20},
]
"""

DRIVER = """\
import json, sys, time
import requests

url, token = sys.argv[1], sys.argv[2]
s = requests.Session()
s.headers["Authorization"] = f"token {token}"
for _ in range(300):  # the hub's API answers once the hub runs
    try:
        if s.get(url + "/hub/api/", timeout=2).status_code == 200:
            break
    except requests.RequestException:
        pass
    time.sleep(0.2)
assert s.post(url + "/hub/api/users/alice", timeout=30).status_code in (201, 409)
r = s.post(url + "/hub/api/users/alice/server", json={"profile": "tiny"}, timeout=30)
assert r.status_code in (201, 202), r.text
events = []
with s.get(url + "/hub/api/users/alice/server/progress", stream=True, timeout=150) as r:
    for line in r.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            events.append(json.loads(line[5:]))
            if events[-1].get("ready") or events[-1].get("failed"):
                break
server = s.get(url + "/hub/api/users/alice", timeout=30).json()["servers"].get("")
status = s.get(url + "/user/alice/api/status", timeout=30).status_code
stopped = s.delete(url + "/hub/api/users/alice/server", timeout=60).status_code
for _ in range(300):
    if not s.get(url + "/hub/api/users/alice", timeout=30).json()["servers"]:
        break
    time.sleep(0.2)
print(json.dumps({"messages": [e.get("message", "") for e in events], "ready": events[-1].get("ready"),
                  "server": server, "status": status, "stopped": stopped}))
"""


@pytest.fixture
def remote_hub(netns_cluster, tmp_path):
    """JupyterHub (and its proxy) inside the controller's namespace, on its address."""
    c = netns_cluster
    extra = tmp_path / "hub_test_config.py"
    extra.write_text(EXTRA_CONFIG)
    env = c.env("ctl", BATCHHUB_SOCKET=c.socket, BATCHHUB_HUB_IP=c.hosts["ctl"], BATCHHUB_HUB_PORT=str(PORT),
                BATCHHUB_HUB_SERVICE_TOKEN=TOKEN, BATCHHUB_HUB_PASSWORD="classroom",
                BATCHHUB_HUB_CULL_TIMEOUT="0", BATCHHUB_HUB_EXTRA_CONFIG=str(extra))
    log_path = tmp_path / "hub.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(c.in_host("ctl", [sys.executable, "-m", "jupyterhub", "-f", HUB_CONFIG]),
                                cwd=str(tmp_path), env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    proc.log_path = log_path
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        try:  # the proxy of this hub
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait(5)


def test_a_server_job_on_another_host_is_reached_through_the_proxy(netns_cluster, remote_hub, tmp_path):
    c = netns_cluster
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    r = c.run(sys.executable, str(driver), f"http://{c.hosts['ctl']}:{PORT}", TOKEN, timeout=240)
    hub_log = remote_hub.log_path.read_text(errors="replace")[-4000:]
    assert r.returncode == 0, r.stderr[-3000:] + hub_log
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    text = "\n".join(seen["messages"])
    assert seen["ready"], text + hub_log
    reported = [m for m in seen["messages"] if "reported " in m]
    assert reported and any(f"reported {addr}:" in reported[0] for addr in NODE_ADDRS), text
    job_id = seen["server"]["state"]["job_id"]
    node = c.job(job_id)["NodeList"]
    assert node in ("n1", "n2", "n3") and f"reported {c.hosts[node]}:" in reported[0], (node, text)
    assert seen["status"] == 200, seen  # the proxy on the controller host reaches the node's server
    assert seen["stopped"] in (202, 204), seen
    assert c.wait_state(job_id, ("CANCELLED", "COMPLETED"), timeout=60).startswith(("CANCELLED", "COMPLETED"))
