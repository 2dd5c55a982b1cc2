"""BatchHub's JupyterHub: every user's server is a job on the BatchHub queue.

Started by ``batchhub up`` (or ``jupyterhub -f hub_config/jupyterhub_config.py``)
next to the controller and node daemons. Everything here can be tuned through
environment variables, so one file serves a laptop, a classroom and the tests:

=============================  ================================================================
BATCHHUB_HOME                  cluster home; the hub keeps its database, cookie secret and
                               shared password in ``$BATCHHUB_HOME/hub``
BATCHHUB_HUB_IP / _PORT        public address (default 127.0.0.1:8000); the proxy API listens on
                               PORT+1 and the hub on PORT+81, all on the same IP (loopback wiring)
BATCHHUB_HUB_AUTH              ``shared`` (default): any user name + the shared password, suited to
                               a classroom; ``pam``: the host's Unix accounts (real hosts, with
                               the hub run as root so that servers run as those accounts)
BATCHHUB_HUB_PASSWORD          the users' shared password (default: generated once, stored in
                               ``$BATCHHUB_HOME/hub/password``, printed by ``batchhub up``)
BATCHHUB_HUB_ADMIN_PASSWORD    the admins' password, 32+ characters (default: generated, in
                               ``$BATCHHUB_HOME/hub/admin_password``)
BATCHHUB_HUB_ADMINS            comma-separated admin user names (default ``admin``)
BATCHHUB_HUB_SERVICE_TOKEN     if set: a ``batchhub-admin`` service with this API token and admin
                               scopes (scripts, tests, dashboards)
BATCHHUB_HUB_CULL_TIMEOUT      idle seconds before jupyterhub-idle-culler stops a server and so
                               cancels its job, freeing the node (default 3600; 0 = no culler)
BATCHHUB_HUB_EXTRA_CONFIG      a further config file loaded last (site profiles, test settings)
=============================  ================================================================

The queue controller itself is started by ``batchhub up`` (it must outlive hub
restarts: servers keep running while the hub restarts).
"""

import os
import secrets
import sys

from batch_backend import paths

c = get_config()  # noqa: F821  (injected by JupyterHub)

layout = paths.layout()
hub_dir = os.path.join(layout.home, "hub")
os.makedirs(hub_dir, exist_ok=True)
bindir = os.path.dirname(sys.executable)

# -- network: loopback wiring (proxy public P, proxy API P+1, hub P+81) -------------------------
ip = os.environ.get("BATCHHUB_HUB_IP", "127.0.0.1")
port = int(os.environ.get("BATCHHUB_HUB_PORT", "8000"))
c.JupyterHub.ip = ip
c.JupyterHub.port = port
c.ConfigurableHTTPProxy.api_url = f"http://{ip}:{port + 1}"
c.JupyterHub.hub_ip = ip
c.JupyterHub.hub_port = port + 81


def _proxy_command():
    """configurable-http-proxy: the npm one if installed (it streams the spawn page's progress
    events; the PyPI port buffers whole responses and cuts them after 20 s), else the PyPI port."""
    explicit = os.environ.get("BATCHHUB_HUB_PROXY")
    if explicit:
        return [explicit]
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/local/bin", "/usr/bin"]:
        exe = os.path.join(d, "configurable-http-proxy")
        if os.path.isfile(exe) and "node_modules" in os.path.realpath(exe):
            return [exe]
    return [os.path.join(bindir, "configurable-http-proxy"), "--timeout", "3600000"]


c.ConfigurableHTTPProxy.command = _proxy_command()

# -- the hub's own files -----------------------------------------------------------------------------
c.JupyterHub.db_url = "sqlite:///" + os.path.join(hub_dir, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(hub_dir, "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = os.path.join(hub_dir, "jupyterhub-proxy.pid")
# servers are batch jobs: a hub restart must leave them running and find them again
c.JupyterHub.cleanup_servers = False

# -- authentication ----------------------------------------------------------------------------------
admins = {u.strip() for u in os.environ.get("BATCHHUB_HUB_ADMINS", "admin").split(",") if u.strip()}
c.Authenticator.admin_users = admins
auth = os.environ.get("BATCHHUB_HUB_AUTH", "shared")
if auth == "pam":
    c.JupyterHub.authenticator_class = "pam"
    c.Authenticator.allow_existing_users = True
else:
    def _secret(env_name, file_name, nbytes):
        """From the environment, else generated once and kept (0600) in the hub directory."""
        value = os.environ.get(env_name)
        path = os.path.join(hub_dir, file_name)
        if not value and os.path.exists(path):
            with open(path) as f:
                value = f.read().strip()
        if not value:
            value = secrets.token_urlsafe(nbytes)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(value + "\n")
        return value

    # classroom / laptop: any user name with the shared password creates the user at first
    # login; admins log in with their own (long) admin password
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = _secret("BATCHHUB_HUB_PASSWORD", "password", 9)
    c.SharedPasswordAuthenticator.admin_password = _secret("BATCHHUB_HUB_ADMIN_PASSWORD", "admin_password", 24)
    c.Authenticator.allow_all = True

# -- the spawner: servers are batch jobs ----------------------------------------------------------
c.JupyterHub.spawner_class = "batchhub"
c.Spawner.default_url = "/lab"
c.QueueSpawner.controller_address = layout.socket
# Profiles (site config via BATCHHUB_HUB_EXTRA_CONFIG) may name an account, QOS and
# reservation; the form offers each user only what sacctmgr and the reservation admit, e.g.
#   c.QueueSpawner.profiles = [..., {"name": "class101", "display_name": "Class 101 (reservation)",
#       "cpus": 1, "memory": "2G", "time": 90, "reservation": "class101", "groups": ["class101"]}]

# -- services ------------------------------------------------------------------------------------------
services, roles = [], []
token = os.environ.get("BATCHHUB_HUB_SERVICE_TOKEN")
if token:
    services.append({"name": "batchhub-admin", "api_token": token})
    roles.append({"name": "batchhub-admin", "services": ["batchhub-admin"],
                  "scopes": ["admin:users", "admin:servers", "list:users", "read:users",
                             "access:servers", "read:servers", "delete:servers", "servers"]})
cull = int(os.environ.get("BATCHHUB_HUB_CULL_TIMEOUT", "3600"))
if cull > 0:
    services.append({"name": "idle-culler",
                     "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={cull}",
                                 f"--cull-every={max(10, min(300, cull // 2))}"]})
    roles.append({"name": "idle-culler", "services": ["idle-culler"],
                  "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})
c.JupyterHub.services = services
c.JupyterHub.load_roles = roles

extra = os.environ.get("BATCHHUB_HUB_EXTRA_CONFIG")
if extra:
    load_subconfig(extra)  # noqa: F821
