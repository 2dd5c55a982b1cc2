"""What runs inside the batch job: pick a port on the node, tell the hub, exec the server.

``python -m spawner.singleuser jupyterhub-singleuser [args...]``

The hub cannot guess where a queued job will land, and nodes share no
filesystem with it, so the job reports its own address: it picks the address
this node uses to reach the hub (the route back is the route in; on one host
with several virtual nodes that is 127.0.0.1), binds a free port there, POSTs
``{host, port, job_id, server_name}`` to the hub's ``/hub/api/batchhub/report``
with the server's own API token, and then ``exec``\\ s the single-user server
on that address. Stdlib only: it must start fast on a busy node.
"""

import json
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REPORT_ATTEMPTS = 20


def address_towards(url):
    """The local IP address this host uses to reach ``url``'s host."""
    override = os.environ.get("BATCHHUB_SERVER_IP")
    if override:
        return override
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    try:
        info = socket.getaddrinfo(host, parts.port or 80, socket.AF_INET, socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(info[0][4])  # UDP connect sends nothing; it only picks the route
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def free_port(ip):
    """A port nobody listens on at ``ip`` right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def report(api_url, token, payload):
    """POST the address to the hub, retrying while the hub is briefly unreachable."""
    url = api_url.rstrip("/") + "/batchhub/report"
    data = json.dumps(payload).encode()
    last = None
    for attempt in range(REPORT_ATTEMPTS):
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "Authorization": f"token {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")
            if e.code < 500:
                raise SystemExit(f"batchhub-singleuser: the hub refused the address report "
                                 f"(HTTP {e.code}): {body}") from None
            last = f"HTTP {e.code}: {body}"
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(min(0.2 * 2 ** attempt, 3))
    raise SystemExit(f"batchhub-singleuser: could not reach the hub at {url}: {last}")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit("usage: python -m spawner.singleuser COMMAND [ARGS...]")
    api_url = os.environ["JUPYTERHUB_API_URL"]
    ip = address_towards(api_url)
    port = free_port(ip)
    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL", "")
    if service_url:
        parts = urllib.parse.urlsplit(service_url)
        os.environ["JUPYTERHUB_SERVICE_URL"] = urllib.parse.urlunsplit(
            parts._replace(netloc=f"{ip}:{port}"))
    else:
        argv += [f"--ip={ip}", f"--port={port}"]
    report(api_url, os.environ["JUPYTERHUB_API_TOKEN"], {
        "server_name": os.environ.get("JUPYTERHUB_SERVER_NAME", ""),
        "job_id": os.environ.get("SLURM_JOB_ID", ""),
        "node": os.environ.get("SLURMD_NODENAME", ""),
        "host": ip,
        "port": port,
    })
    print(f"batchhub-singleuser: serving on {ip}:{port} (job {os.environ.get('SLURM_JOB_ID', '?')}, "
          f"node {os.environ.get('SLURMD_NODENAME', '?')})", flush=True)
    os.environ["BATCHHUB_SERVER_STARTED"] = str(time.time())
    exe = argv[0] if os.path.isabs(argv[0]) else (shutil.which(argv[0]) or argv[0])
    os.execv(exe, argv)


if __name__ == "__main__":
    main()
