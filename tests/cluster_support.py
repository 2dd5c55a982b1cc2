"""A real BatchHub cluster (controller + node daemons) in a temp dir, for tests.

Nothing is mocked: the controller and the node daemons are the real daemons,
started as processes exactly as ``batchhub up`` starts them, on a Unix socket
inside the test's temporary directory. The CLI commands are the installed
console scripts, run as subprocesses the way batchspawner or a user runs them.
"""

import json
import os
import signal
import subprocess
import sys
import time

BIN = os.path.dirname(sys.executable)

TEST_CONF = """\
ClusterName=testcluster
SlurmdParameters=config_overrides
SlurmdTimeout=30
KillWait=1
MinJobAge=300
NodeName=n[1-3] CPUs=4 RealMemory=2000 Feature=cpu,fast
NodeName=n4 CPUs=4 RealMemory=2000 Gres=gpu:2 Feature=cpu,gpu
PartitionName=debug Nodes=ALL Default=YES MaxTime=60 State=UP
PartitionName=short Nodes=n[1-2] MaxTime=5 State=UP
PartitionName=gpu Nodes=n4 MaxTime=INFINITE State=UP
"""


class LiveCluster:
    """A running cluster and helpers to drive it through the CLI like a user."""

    def __init__(self, home, conf_text=TEST_CONF):
        self.home = str(home)
        self.conf_path = os.path.join(self.home, "slurm.conf")
        with open(self.conf_path, "w") as f:
            f.write(conf_text)
        self.socket = os.path.join(self.home, "run", "controller.sock")
        self.env = dict(os.environ, BATCHHUB_HOME=self.home, BATCHHUB_SOCKET=self.socket,
                        BATCHHUB_CONF=self.conf_path, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
        self.env.pop("SLURM_JOB_ID", None)
        self.workdir = os.path.join(self.home, "work")
        os.makedirs(self.workdir, exist_ok=True)

    # -- lifecycle ---------------------------------------------------------------
    def up(self, wait_nodes=True):
        r = self.batchhub("up", "--no-link-cli", "--no-hub")
        assert r.returncode == 0, r.stderr + r.stdout
        if wait_nodes:
            self.wait_nodes_up()
        return self

    def batchhub(self, *args, timeout=60):
        return subprocess.run([os.path.join(BIN, "batchhub"), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def down(self):
        self.batchhub("down")
        # belt and braces: nothing we started may outlive the test
        run_dir = os.path.join(self.home, "run")
        for fname in os.listdir(run_dir) if os.path.isdir(run_dir) else []:
            if fname.endswith(".pid"):
                try:
                    os.kill(int(open(os.path.join(run_dir, fname)).read()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass

    def controller_pid(self):
        with open(os.path.join(self.home, "run", "controller.pid")) as f:
            return int(f.read())

    def kill_controller(self, sig=signal.SIGKILL):
        pid = self.controller_pid()
        os.kill(pid, sig)
        for _ in range(500):
            if not process_running(pid):
                break
            time.sleep(0.01)

    def start_controller(self):
        r = self.batchhub("up", "--no-link-cli", "--no-hub")
        assert r.returncode == 0, r.stderr + r.stdout

    def wait_nodes_up(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.run("sinfo", "-h", "-N", "-o", "%N %t")
            if r.returncode == 0 and r.stdout and all(
                    line.split()[1] in ("idle", "mix", "alloc") for line in r.stdout.splitlines()):
                return
            time.sleep(0.1)
        raise AssertionError(f"nodes did not come up: {r.stdout} {r.stderr}")

    # -- commands ------------------------------------------------------------------
    def run(self, *argv, input=None, env=None, cwd=None, timeout=60, user=None):
        """Run a CLI command (sbatch, squeue, ...) as a user would; returns CompletedProcess."""
        e = dict(self.env, **(env or {}))
        cmd = [os.path.join(BIN, argv[0]) if os.path.exists(os.path.join(BIN, argv[0])) else argv[0], *argv[1:]]
        preexec = None
        if user is not None:
            import pwd
            pw = pwd.getpwnam(user)
            e.update(USER=user, LOGNAME=user, HOME=pw.pw_dir or "/tmp")

            def preexec():
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
        return subprocess.run(cmd, input=input, env=e, cwd=cwd or self.workdir, capture_output=True,
                              text=True, timeout=timeout, preexec_fn=preexec)

    def sbatch(self, *args, input=None, **kw):
        """Submit with --parsable; return the job id (asserts success)."""
        r = self.run("sbatch", "--parsable", *args, input=input, **kw)
        assert r.returncode == 0, f"sbatch failed: {r.stderr}"
        assert r.stderr == ""
        return int(r.stdout.strip().split(";")[0])

    def job(self, job_id):
        """The job as `scontrol show job` reports it, parsed into a dict."""
        r = self.run("scontrol", "show", "job", str(job_id))
        assert r.returncode == 0, r.stderr
        return parse_scontrol(r.stdout)

    def acct(self, job_id, fields="JobID,State,ExitCode"):
        r = self.run("sacct", "-P", "-n", "-j", str(job_id), "-o", fields)
        assert r.returncode == 0, r.stderr
        return [line.split("|") for line in r.stdout.splitlines()]

    def state(self, job_id):
        """The state of the job's current run (a requeued job's earlier runs come first)."""
        rows = [row for row in self.acct(job_id, "JobID,State") if row[0] == str(job_id)]
        return rows[-1][1] if rows else None

    def wait_state(self, job_id, states, timeout=30):
        if isinstance(states, str):
            states = {states}
        deadline = time.time() + timeout
        state = None
        while time.time() < deadline:
            state = self.state(job_id)
            if state is not None and (state in states or state.split()[0] in states):
                return state
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} is {state}, expected {states}")

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)


def process_running(pid):
    """Alive and not a zombie (daemons are reparented to init, which reaps lazily)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def parse_scontrol(text):
    """`Key=Value` pairs of scontrol output, the way jupyterlab-slurm parses them."""
    import re
    out = {}
    for line in text.splitlines():
        for m in re.finditer(r"([\w:/]+)=(.*?)(?=\s+[\w:/]+=|$)", line.strip()):
            out[m.group(1)] = m.group(2)
    return out


def read_json(path):
    with open(path) as f:
        return json.load(f)


# -- clusters other Unix users can reach, and throwaway users ------------------------------

#: The system interpreter runs the CLI as other users: the venv's may live in root's 0700 home.
USER_PYTHON = "/usr/bin/python3"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_cluster(conf_text=TEST_CONF, prefix="batchhub-"):
    """A running cluster in a directory other users can reach (pytest's tmp dirs are 0700).

    A generator for module fixtures: ``yield from shared_cluster(CONF, "batchhub-x-")``.
    """
    import shutil
    import tempfile
    home = tempfile.mkdtemp(prefix=prefix)
    os.chmod(home, 0o755)
    c = LiveCluster(home, conf_text)
    os.chmod(c.workdir, 0o1777)
    c.up()
    try:
        yield c
    finally:
        c.down()
        shutil.rmtree(home, ignore_errors=True)


def throwaway_users(suffixes, prefix="bh", random_len=6):
    """Create Unix users ``<prefix><random hex><suffix>`` (as root), yield their names, delete them.

    A generator for fixtures: ``yield from throwaway_users("ab")``.
    """
    import uuid
    names = [f"{prefix}{uuid.uuid4().hex[:random_len]}{s}" for s in suffixes]
    for n in names:
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", n], check=True)
    try:
        yield names
    finally:
        for n in names:
            subprocess.run(["userdel", n], check=False)


def as_user(cluster, user, command, *args):
    """Run a CLI command as ``user`` with the system interpreter (see USER_PYTHON)."""
    code = f"import sys; sys.path.insert(0, {REPO!r}); from batch_backend.cli.{command} import main; sys.exit(main())"
    return cluster.run(USER_PYTHON, "-c", code, *args, user=user)
