"""``batchhub``: the admin entry point (up, down, status, controller, noded, bench, config).

``batchhub up`` is the one command that brings a cluster up on this machine:
it writes the embedded default config if there is none, starts the controller
and one node daemon per configured node (as background processes with logs in
``$BATCHHUB_HOME/log``), waits until the nodes have registered, starts
JupyterHub on the platform's config (``hub_config/jupyterhub_config.py``; skip
it with ``--no-hub``), and is idempotent: what already runs is left alone.
"""

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

from . import paths


def _load_conf(layout, path=None):
    from . import conf as confmod
    path = path or layout.conf_path
    if os.path.exists(path):
        return confmod.load_conf(path), path
    return confmod.parse_conf(confmod.default_conf_text(layout.state_dir), path="(embedded default)"), None


def _setup_logging(verbose):
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def cmd_controller(args, layout):
    from .controller.daemon import run_controller
    layout.ensure()
    conf, conf_path = _load_conf(layout, args.conf)
    run_controller(conf, conf_path, args.socket or layout.socket, layout.state_dir)


def cmd_noded(args, layout):
    from .noded.daemon import run_noded
    from .noded.remote import controller_address, read_node_token
    layout.ensure()
    conf = None
    if not args.socket and not args.controller:
        conf, _ = _load_conf(layout)
    address = args.socket or controller_address(args.controller, conf) or layout.socket
    token_path = args.token_file or _conf_option(conf, "BatchHubNodeTokenFile")
    token = read_node_token(token_path, address)
    # the job's CLI reaches the controller the way this daemon does (TCP from another host,
    # trusting the same TLS certificates)
    # the directory every host mounts (NFS): slurm.conf's BatchHubSharedDir on multi-host clusters
    shared_dir = _conf_option(conf, "BatchHubSharedDir") or layout.shared_dir
    extra_env = {"BATCHHUB_SOCKET": address, "BATCHHUB_SHARED_DIR": shared_dir}
    if os.environ.get("SSL_CERT_FILE") and address.startswith("https://"):
        extra_env["SSL_CERT_FILE"] = os.environ["SSL_CERT_FILE"]
    run_noded(args.name, address, layout.spool_dir, token=token, extra_env=extra_env, token_path=token_path)


def _conf_option(conf, key):
    from .conf import get_option
    return get_option(conf, key) if conf else None


def cmd_node_token(args, layout):
    """Mint a node credential with the cluster key (run where the key is: the controller's host)."""
    from . import hostlist
    from .auth.authority import Authority, AuthConfigError
    from .auth.jwt import KeyFileError
    conf, _ = _load_conf(layout, args.conf)
    try:
        hostlist.expand(args.nodes)
        if args.lifespan is not None and args.lifespan <= 0:
            raise ValueError
    except Exception:  # noqa: BLE001 -- one line for the admin, never a traceback
        print(f"batchhub: error: invalid node list {args.nodes!r} or lifespan", file=sys.stderr)
        return 1
    try:
        authority = Authority(conf, layout.state_dir, required=True)
        token = authority.mint_node(args.nodes, *([args.lifespan] if args.lifespan else []))
    except (AuthConfigError, KeyFileError) as e:
        print(f"batchhub: error: {e}", file=sys.stderr)
        return 1
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(token + "\n")
        print(f"node credential for {args.nodes} written to {args.output}")
    else:
        print(token)
    return 0


def _pid_alive(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if _running(pid) else None


def _spawn(argv, logfile, pidfile, env):
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, close_fds=True)
    with open(pidfile, "w") as f:
        f.write(str(proc.pid))
    return proc


def _last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        return lines[-1][-200:] if lines else "no log output"
    except OSError:
        return "no log"


def _ping(socket_path):
    from .client import Client, ClientError
    try:
        with Client(socket_path, timeout=2) as c:
            return c.ping()
    except ClientError:
        return None


def cmd_up(args, layout):
    from .client import Client
    layout.ensure()
    conf_path = args.conf or layout.conf_path
    if not os.path.exists(conf_path):
        from .conf import default_conf_text
        os.makedirs(os.path.dirname(conf_path), exist_ok=True)
        with open(conf_path, "w") as f:
            f.write(default_conf_text(layout.state_dir))
        print(f"wrote default configuration for this machine to {conf_path}")
    conf, _ = _load_conf(layout, conf_path)
    socket_path = args.socket or layout.socket
    env = dict(os.environ, BATCHHUB_HOME=layout.home, BATCHHUB_SOCKET=socket_path, BATCHHUB_CONF=conf_path)
    exe = [sys.executable, "-m", "batch_backend.admin"]
    ctl_pid = os.path.join(layout.run_dir, "controller.pid")
    if _ping(socket_path):
        print(f"controller already running on {socket_path}")
    else:
        proc = _spawn(exe + ["controller", "--conf", conf_path, "--socket", socket_path],
                      os.path.join(layout.log_dir, "controller.log"), ctl_pid, env)
        deadline = time.time() + 30
        while not _ping(socket_path):
            if proc.poll() is not None or time.time() > deadline:
                why = _last_line(os.path.join(layout.log_dir, "controller.log"))
                print(f"batchhub: error: controller did not start ({why}); see {layout.log_dir}/controller.log",
                      file=sys.stderr)
                return 1
            time.sleep(0.05)
        print(f"controller started on {socket_path}")
    names = [n["name"] for n in conf["nodes"]]
    for name in names:
        pidfile = os.path.join(layout.run_dir, f"noded-{name}.pid")
        if _pid_alive(pidfile):
            continue
        _spawn(exe + ["noded", "--name", name, "--socket", socket_path],
               os.path.join(layout.log_dir, f"noded-{name}.log"), pidfile, env)
    deadline = time.time() + 30
    with Client(socket_path) as c:
        while True:
            nodes = c.nodes()
            if all(n["state"] != "UNKNOWN" for n in nodes) or time.time() > deadline:
                break
            time.sleep(0.05)
    states = ", ".join(f"{n['name']}:{n['state'].lower()}" for n in nodes)
    print(f"{len(names)} node daemons up ({states})")
    if args.link_cli:
        _link_cli()
    rc = 0
    if args.hub:
        rc = _start_hub(layout, env, args.hub_config)
    print(f"export BATCHHUB_SOCKET={socket_path}   # for shells that should use this cluster")
    return rc


# -- JupyterHub ------------------------------------------------------------------------------
def _hub_config_path(explicit=None):
    return explicit or os.environ.get("BATCHHUB_HUB_CONFIG") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hub_config", "jupyterhub_config.py")


def _hub_address():
    return os.environ.get("BATCHHUB_HUB_IP", "127.0.0.1"), int(os.environ.get("BATCHHUB_HUB_PORT", "8000"))


def _hub_answers(ip, port, timeout=2.0):
    """True if a JupyterHub answers its API on ip:port."""
    import http.client
    try:
        conn = http.client.HTTPConnection(ip, port, timeout=timeout)
        conn.request("GET", "/hub/api/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


def _start_hub(layout, env, config=None):
    """Start JupyterHub in the background (idempotent); print its URL and the first login."""
    ip, port = _hub_address()
    url = f"http://{ip}:{port}/"
    pidfile = os.path.join(layout.run_dir, "hub.pid")
    hub_dir = os.path.join(layout.home, "hub")
    if _pid_alive(pidfile):
        print(f"JupyterHub already running at {url}")
        return 0
    if _hub_answers(ip, port):
        print(f"batchhub: error: another JupyterHub already answers at {url}; set BATCHHUB_HUB_PORT "
              "or use --no-hub", file=sys.stderr)
        return 1
    config = _hub_config_path(config)
    if not os.path.exists(config):
        print(f"batchhub: error: hub config {config} not found (set BATCHHUB_HUB_CONFIG)", file=sys.stderr)
        return 1
    os.makedirs(hub_dir, exist_ok=True)
    hub_env = dict(env, PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    print(f"starting JupyterHub ({config})", end="", flush=True)
    logfile = os.path.join(layout.log_dir, "hub.log")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", config],
                            stdout=open(logfile, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=hub_env, cwd=hub_dir, close_fds=True)
    with open(pidfile, "w") as f:
        f.write(str(proc.pid))
    deadline = time.time() + 90
    while not _hub_answers(ip, port, timeout=1.0):
        if proc.poll() is not None or time.time() > deadline:
            print()
            print(f"batchhub: error: JupyterHub did not start; see {logfile}", file=sys.stderr)
            if proc.poll() is None:
                proc.terminate()
            return 1
        print(".", end="", flush=True)
        time.sleep(0.5)
    print(" up")
    print(f"JupyterHub: {url}")
    def secret(env_name, file_name):
        value = os.environ.get(env_name)
        path = os.path.join(hub_dir, file_name)
        if not value and os.path.exists(path):
            with open(path) as f:
                value = f.read().strip()
        return value
    admin = os.environ.get("BATCHHUB_HUB_ADMINS", "admin").split(",")[0].strip()
    if os.environ.get("BATCHHUB_HUB_AUTH", "shared") == "pam":
        print("first login: a Unix account of this host (admins: BATCHHUB_HUB_ADMINS)")
    else:
        print(f"first login: user {admin} with password {secret('BATCHHUB_HUB_ADMIN_PASSWORD', 'admin_password')}"
              f" (admin); anyone else: any user name with password {secret('BATCHHUB_HUB_PASSWORD', 'password')}")
    return 0


def _stop_hub(layout):
    """Stop JupyterHub (servers are left to the node daemons: their jobs end with them)."""
    pid = _pid_alive(os.path.join(layout.run_dir, "hub.pid"))
    if not pid:
        return False
    os.kill(pid, signal.SIGTERM)  # the hub stops its proxy and services itself
    _wait_gone([pid], 40)
    try:  # whatever of its process group outlived it (proxy, culler)
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    return True


CLI_COMMANDS = ("sbatch", "squeue", "scancel", "sinfo", "sacct", "scontrol", "srun", "salloc",
                "sacctmgr", "sprio", "sshare", "batchhub")


def _link_cli(target_dir="/usr/local/bin"):
    """Put the CLI on the default system PATH (batchspawner runs sbatch with no PATH)."""
    if os.getuid() != 0:
        return
    bindir = os.path.dirname(sys.executable)
    linked = []
    for name in CLI_COMMANDS:
        src = os.path.join(bindir, name)
        dst = os.path.join(target_dir, name)
        if not os.path.exists(src):
            continue
        if os.path.islink(dst) and os.readlink(dst) == src:
            continue
        if os.path.exists(dst) and not os.path.islink(dst):
            print(f"left {dst} alone (not a link of ours)")
            continue
        if os.path.islink(dst):
            os.unlink(dst)
        os.symlink(src, dst)
        linked.append(name)
    if linked:
        print(f"linked {', '.join(linked)} into {target_dir}")


def cmd_down(args, layout):
    socket_path = args.socket or layout.socket
    hub = args.hub and _stop_hub(layout)
    stopped = []
    for fname in sorted(os.listdir(layout.run_dir)) if os.path.isdir(layout.run_dir) else []:
        if fname.startswith("noded-") and fname.endswith(".pid"):
            pid = _pid_alive(os.path.join(layout.run_dir, fname))
            if pid:
                os.kill(pid, signal.SIGTERM)
                stopped.append(pid)
    _wait_gone(stopped, 10)
    ctl = _pid_alive(os.path.join(layout.run_dir, "controller.pid"))
    if ctl:
        os.kill(ctl, signal.SIGTERM)
        _wait_gone([ctl], 10)
    print(("stopped JupyterHub, " if hub else "") + f"stopped {len(stopped)} node daemons"
          + (" and the controller" if ctl else ""))
    return 0


def _running(pid):
    """Alive and not a zombie (our daemons are reparented to init, which reaps lazily)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids, timeout):
    deadline = time.time() + timeout
    for pid in pids:
        while time.time() < deadline:
            if not _running(pid):
                break
            time.sleep(0.02)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def cmd_status(args, layout):
    socket_path = args.socket or layout.socket
    info = _ping(socket_path)
    if not info:
        print(f"controller: not running ({socket_path})")
        return 1
    from .client import Client
    with Client(socket_path) as c:
        nodes = c.nodes()
        jobs = c.jobs()
    print(f"controller: up on {socket_path} (cluster {info['cluster_name']}, version {info['version']})")
    for n in nodes:
        print(f"  {n['name']:8} {n['state'].lower():10} cpus {n['alloc_cpus']}/{n['cpus']}  mem {n['real_memory']} MB")
    print(f"jobs: {len(jobs)} active")
    return 0


def cmd_config(args, layout):
    from .conf import default_conf_text
    sys.stdout.write(default_conf_text(layout.state_dir))
    return 0


def cmd_bench(args, layout):
    from benchmarks import run as bench_run
    return bench_run.main(args.suite, args.extra)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sim"]:  # its own option parser (argparse REMAINDER cannot start with an option)
        from .sim.cli import main as sim_main
        return sim_main(argv[1:], prog="batchhub sim")
    parser = argparse.ArgumentParser(prog="batchhub", description="BatchHub admin commands")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start controller, node daemons and JupyterHub on this machine (idempotent)")
    p.add_argument("--conf")
    p.add_argument("--socket")
    p.add_argument("--no-hub", dest="hub", action="store_false",
                   help="start only the queue (controller and node daemons), not JupyterHub")
    p.add_argument("--hub-config", help="JupyterHub config file (default: the platform's hub_config/)")
    p.add_argument("--no-link-cli", dest="link_cli", action="store_false",
                   help="do not link the Slurm commands into /usr/local/bin (done by default as root)")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop JupyterHub, node daemons (ending their jobs) and the controller")
    p.add_argument("--socket")
    p.add_argument("--no-hub", dest="hub", action="store_false", help="leave JupyterHub running")
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("status", help="is the cluster up? nodes and job count")
    p.add_argument("--socket")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("controller", help="run the controller in the foreground")
    p.add_argument("--conf")
    p.add_argument("--socket")
    p.set_defaults(func=cmd_controller)
    p = sub.add_parser("noded", help="run one node daemon in the foreground")
    p.add_argument("--name", required=True)
    p.add_argument("--socket", help="the controller's Unix socket (a node on the controller's host)")
    p.add_argument("--controller", metavar="HOST:PORT",
                   help="the controller's TCP address (default: SlurmctldHost and the BatchHubTCPAddress port "
                        "of slurm.conf, else the local socket)")
    p.add_argument("--token-file", metavar="PATH",
                   help="node credential for TCP (default: BatchHubNodeTokenFile of slurm.conf); "
                        "make one with 'batchhub node-token'")
    p.set_defaults(func=cmd_noded)
    p = sub.add_parser("node-token", help="mint a node credential (run on the controller's host)")
    p.add_argument("--nodes", required=True, help="the nodes it is valid for (hostlist expression)")
    p.add_argument("--lifespan", type=int, help="seconds (default: one year)")
    p.add_argument("--output", "-o", help="write it to this file (mode 0600) instead of stdout")
    p.add_argument("--conf")
    p.set_defaults(func=cmd_node_token)
    p = sub.add_parser("config", help="print the embedded default slurm.conf for this machine")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("bench", help="run a benchmark suite and print a table")
    p.add_argument("suite", choices=["core", "parallel", "hub", "sched", "memory", "priority", "crash",
                                     "restart", "flood"])
    p.add_argument("extra", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("sim", help="replay a workload (SWF trace or Lublin-Feitelson model) through the "
                                   "scheduler on a virtual clock; `batchhub sim -h` for options",
                       add_help=False)
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    layout = paths.layout()
    try:
        return args.func(args, layout) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one line, never a traceback, for admins too
        from .conf import ConfError
        if isinstance(e, (ConfError, OSError)):
            print(f"batchhub: error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
