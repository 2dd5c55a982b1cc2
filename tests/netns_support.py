"""A cluster spread over Linux network namespaces: one controller and node "hosts" on one machine.

Each host is a network namespace of its own (plus a UTS namespace, so
``hostname`` says which host a process runs on). A further namespace holds a
bridge, the "switch": every host is wired to it by a veth pair, its end
inside the host called ``eth0`` with a private address ``10.77.0.N/24``.
Nothing is added to the root namespace: the addresses exist only inside the
namespaces, and other clusters on this machine never see them.

The controller runs in its namespace with ``BatchHubTCPAddress=10.77.0.1:PORT``;
node daemons run in theirs and know nothing but the TCP address and their node
credential (from slurm.conf: ``SlurmctldHost`` and ``BatchHubNodeTokenFile``).
The file system is shared (like an NFS home), which is why nodes are never
given the controller's Unix socket: all of their traffic is TCP over the veths.
The CLI runs in the controller's namespace, over TCP with a user token.

Cutting a host's link (``cut``/``restore``) sets its switch port down: a real
partition, no FIN or RST reaches either side.

Everything this module creates is named ``bhmh<pid>-*`` and removed by
:meth:`NetnsCluster.destroy` (processes in the namespaces killed first), also
after a failure; namespaces left by a crashed earlier run (dead pid) are swept
at the next start.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

from cluster_support import BIN, parse_scontrol

PREFIX = "bhmh"
SUBNET = "10.77.0"
TCP_PORT = 6817


def unavailable_reason():
    """Why namespace tests cannot run here, or None."""
    if os.getuid() != 0:
        return "network namespace tests need root (ip netns add)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"'ip netns add' does not work here: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def _namespaces():
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_namespace(ns):
    """SIGKILL every process in ``ns``, then delete it."""
    for _ in range(50):
        pids = [int(p) for p in _ip("netns", "pids", ns, check=False).stdout.split() if p.isdigit()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    _ip("netns", "del", ns, check=False)


def sweep_stale():
    """Remove namespaces of earlier runs whose process is gone (a crashed test run)."""
    for ns in _namespaces():
        m = re.fullmatch(rf"{PREFIX}(\d+)-.*", ns)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            _kill_namespace(ns)


class NetnsCluster:
    """Controller in namespace ``ctl`` (10.77.0.1), nodes ``n1..nN`` (10.77.0.11...), one switch."""

    def __init__(self, home, conf_extra="", nodes=("n1", "n2", "n3"), slurmd_timeout=5, env=None):
        self.home = str(home)
        self.extra_env = dict(env or {})
        self.tag = f"{PREFIX}{os.getpid()}"
        self.node_names = list(nodes)
        self.hosts = {"ctl": f"{SUBNET}.1"}
        for i, name in enumerate(self.node_names):
            self.hosts[name] = f"{SUBNET}.{11 + i}"
        self.switch = f"{self.tag}-sw"
        self.created = []          # namespaces, in creation order
        self.procs = {}            # host -> Popen of its daemon
        tls = "BatchHubTLSCert" in conf_extra
        self.address = f"{'https://' if tls else ''}{self.hosts['ctl']}:{TCP_PORT}"
        self.token_path = os.path.join(self.home, "node.token")
        self.conf_path = os.path.join(self.home, "slurm.conf")
        self.workdir = os.path.join(self.home, "work")
        os.makedirs(self.workdir, exist_ok=True)
        os.chmod(self.home, 0o755)
        os.chmod(self.workdir, 0o1777)
        names = f"{self.node_names[0][:-1]}[1-{len(self.node_names)}]" if len(self.node_names) > 1 else nodes[0]
        with open(self.conf_path, "w") as f:
            f.write(f"ClusterName=netns\nSlurmctldHost=ctl({self.hosts['ctl']})\n"
                    f"BatchHubTCPAddress={self.hosts['ctl']}:{TCP_PORT}\nBatchHubNodeTokenFile={self.token_path}\n"
                    f"SlurmdParameters=config_overrides\nSlurmdTimeout={slurmd_timeout}\nKillWait=1\n"
                    f"MinJobAge=300\nNodeName={names} CPUs=2 RealMemory=500\n"
                    f"PartitionName=debug Nodes=ALL Default=YES MaxTime=60 State=UP\n{conf_extra}")
        self.socket = os.path.join(self.home, "ctl", "run", "controller.sock")
        self.token = None  # the test user's token (root): minted once the controller runs

    # -- namespaces -----------------------------------------------------------------------
    def _ns(self, host):
        return f"{self.tag}-{host}"

    def build_network(self):
        sweep_stale()
        _ip("netns", "add", self.switch)
        self.created.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for host, addr in self.hosts.items():
            ns = self._ns(host)
            _ip("netns", "add", ns)
            self.created.append(ns)
            port = f"p-{host}"
            _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def cut(self, host):
        """Pull the host's cable at the switch: nothing gets through either way."""
        _ip("-n", self.switch, "link", "set", f"p-{host}", "down")

    def restore(self, host):
        _ip("-n", self.switch, "link", "set", f"p-{host}", "up")

    def destroy(self):
        for host in list(self.procs):
            self.stop(host, sig=signal.SIGKILL)
        for ns in reversed(self.created):
            _kill_namespace(ns)
        self.created = []

    # -- processes --------------------------------------------------------------------------
    def env(self, host, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SLURM_", "BATCHHUB_"))}
        env.update(BATCHHUB_HOME=os.path.join(self.home, host), BATCHHUB_CONF=self.conf_path,
                   PATH=BIN + os.pathsep + env.get("PATH", ""))
        env.update(self.extra_env)
        env.update(extra)
        return env

    def in_host(self, host, argv):
        """argv run inside ``host``'s network namespace, with the host's own name."""
        script = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self._ns(host), "unshare", "--uts", "--", "sh", "-c", script, host, *argv]

    def _daemon(self, host, argv):
        os.makedirs(os.path.join(self.home, host, "log"), exist_ok=True)
        log = open(os.path.join(self.home, host, "log", f"{host}.log"), "ab")
        proc = subprocess.Popen(self.in_host(host, argv), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=self.env(host), start_new_session=True)
        log.close()
        self.procs[host] = proc
        return proc

    def start_controller(self):
        exe = [sys.executable, "-m", "batch_backend.admin"]
        if not os.path.exists(self.token_path):
            # minted where the key is (the controller's host), copied to the nodes (shared fs here)
            r = subprocess.run(exe + ["node-token", "--nodes", ",".join(self.node_names), "-o", self.token_path],
                               env=self.env("ctl"), capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        self._daemon("ctl", exe + ["controller", "--socket", self.socket])
        self._wait(lambda: os.path.exists(self.socket) and self.local("scontrol", "ping").returncode == 0,
                   "controller did not start", host="ctl")
        if self.token is None:
            r = self.local("scontrol", "token", "lifespan=7200")
            assert r.returncode == 0, r.stderr
            self.token = r.stdout.strip().partition("=")[2]

    def start_node(self, name):
        self._daemon(name, [sys.executable, "-m", "batch_backend.admin", "noded", "--name", name])

    def up(self):
        self.build_network()
        self.start_controller()
        for name in self.node_names:
            self.start_node(name)
        self.wait_nodes(self.node_names, ("idle",))
        return self

    def stop(self, host, sig=signal.SIGTERM):
        proc = self.procs.pop(host, None)
        if proc is None:
            return
        try:
            os.kill(proc.pid, sig)
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def _wait(self, check, what, timeout=30, host=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if check():
                return
            if host is not None and host in self.procs and self.procs[host].poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{what}; log tail:\n{self.log_tail(host or 'ctl')}")

    def log_tail(self, host, n=3000):
        try:
            with open(os.path.join(self.home, host, "log", f"{host}.log"), errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return "(no log)"

    # -- the CLI --------------------------------------------------------------------------------
    def run(self, *argv, host="ctl", input=None, timeout=60, env=None):
        """A CLI command in ``host``'s namespace, reaching the controller over TCP with a token."""
        e = self.env(host, **dict({"BATCHHUB_SOCKET": self.address, "BATCHHUB_TOKEN": self.token or ""},
                                  **(env or {})))
        exe = os.path.join(BIN, argv[0])
        cmd = self.in_host(host, [exe if os.path.exists(exe) else argv[0], *argv[1:]])
        return subprocess.run(cmd, input=input, env=e, cwd=self.workdir, capture_output=True, text=True,
                              timeout=timeout)

    def local(self, *argv, timeout=30):
        """A CLI command on the controller's Unix socket (admin on the controller host)."""
        e = self.env("ctl", BATCHHUB_SOCKET=self.socket)
        return subprocess.run([os.path.join(BIN, argv[0]), *argv[1:]], env=e, cwd=self.workdir,
                              capture_output=True, text=True, timeout=timeout)

    def sbatch(self, *args, **kw):
        r = self.run("sbatch", "--parsable", *args, **kw)
        assert r.returncode == 0 and r.stderr == "", f"sbatch failed: {r.stderr}"
        return int(r.stdout.strip().split(";")[0])

    def job(self, job_id):
        r = self.run("scontrol", "show", "job", str(job_id))
        assert r.returncode == 0, r.stderr
        return parse_scontrol(r.stdout)

    def node(self, name):
        r = self.run("scontrol", "show", "node", name)
        assert r.returncode == 0, r.stderr
        return parse_scontrol(r.stdout)

    def state(self, job_id):
        """The state of the job's current run (sacct lists a requeued job's earlier runs first)."""
        r = self.run("sacct", "-P", "-n", "-X", "-j", str(job_id), "-o", "JobID,State")
        states = [state.split()[0] for jid, _, state in (line.partition("|") for line in r.stdout.splitlines())
                  if jid == str(job_id)]
        return states[-1] if states else None

    def wait_state(self, job_id, states, timeout=30):
        states = {states} if isinstance(states, str) else set(states)
        deadline = time.time() + timeout
        state = None
        while time.time() < deadline:
            state = self.state(job_id)
            if state in states:
                return state
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} is {state}, expected {states}\n{self.log_tail('ctl')}")

    def node_states(self):
        r = self.run("sinfo", "-h", "-N", "-o", "%N %t")
        return dict(line.split() for line in r.stdout.splitlines()) if r.returncode == 0 else {}

    def wait_nodes(self, names, states, timeout=30):
        self._wait(lambda: all(self.node_states().get(n) in states for n in names),
                   f"nodes {names} not in {states}: {self.node_states()}", timeout=timeout)

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def processes(self, host, marker):
        """pids in ``host``'s namespace whose command line contains ``marker``."""
        found = []
        for pid in _ip("netns", "pids", self._ns(host), check=False).stdout.split():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
        return found
