"""IPyParallel on BatchHub: the controller as a batch job, the engines as one MPI job step.

``ipp.Cluster(controller="batchhub", engines="batchhub", n=16, partition="debug")``
finds these launchers through IPyParallel's entry points
(``ipyparallel.controller_launchers`` / ``ipyparallel.engine_launchers``):

* :class:`BatchHubControllerLauncher` submits one job running ``ipcontroller``
  (through ``python -m kernel_ext.ipp controller``), bound to the address of the
  node it lands on, as the controller knows it (``scontrol show node``'s
  NodeAddr). When that address is loopback but nodes run on other hosts, it
  listens on all interfaces and advertises the host's address instead.
* :class:`BatchHubEngineSetLauncher` submits ONE job of ``n`` tasks whose
  script waits for its controller's connection file, checks that the
  controller answers, then runs ``srun --mpi=pmi1 python -m ipyparallel.engine
  --mpi``: one engine per MPI rank, the rank becoming the engine id.

Connection files live in the shared ("NFS") directory,
``<shared>/<user>/ipython/<cluster_id>/``, named after the controller's job id
(``ipcontroller-<cluster_id>-job<N>-engine.json``) and carrying a
``batchhub`` section with the job id and a random *instance* token drawn by
the launcher at submission. They are written temp file + fsync + rename, mode
0600, so a reader sees either no file or a whole one (also on NFS, where
rename is atomic but attributes may lag: readers never rely on size or
mtime). Engines only accept the file whose name *and* content name their
controller: a file left by a crashed earlier controller has another job id
and is never read.

Submission, state and cancellation go through :mod:`batch_backend.client`
(no CLI subprocess); the job side (``python -m kernel_ext.ipp``) needs only
this module, ipyparallel and the stdlib.
"""

import os
import secrets
import signal as signal_mod
import sys
import threading
import time

from ipyparallel.cluster.launcher import (
    ControllerLauncher, EngineLauncher, LauncherError, NotRunning, BaseLauncher)
from traitlets import Bool, Float, Integer, List, Unicode, default

from batch_backend import client as bbclient

from .ipp_connection import (  # noqa: F401  (re-exported: the public names of this module)
    ACTIVE_STATES, ConnectionFileTimeout, ControllerUnreachableError, _user, check_reachable,
    connection_file_name, controller_bind_address, read_connection_file, registration_address, shared_root,
    wait_for_connection_file, write_json_atomic)


class BatchHubLauncher(BaseLauncher):
    """What the controller and engine launchers share: submit, watch, cancel one job."""

    partition = Unicode("", config=True, help="Partition (sbatch -p); empty: the default partition.").tag(to_dict=True)
    time = Unicode("", config=True, help="Time limit (sbatch -t, e.g. '30', '1:00:00'); empty: the partition's default.").tag(to_dict=True)
    account = Unicode("", config=True, help="Account to charge (sbatch -A).").tag(to_dict=True)
    qos = Unicode("", config=True, help="Quality of service (sbatch -q).").tag(to_dict=True)
    reservation = Unicode("", config=True, help="Reservation to run in (sbatch --reservation).").tag(to_dict=True)
    sbatch_options = List(Unicode(), config=True,
                          help="Extra sbatch options, e.g. ['--mem=2G', '--constraint=fast'].").tag(to_dict=True)
    python = Unicode(sys.executable, config=True,
                     help="Python on the compute nodes (the kernel's own by default: same venv on the shared FS).")
    shared_dir = Unicode(config=True, help="""Shared directory seen by every node (the cluster's "NFS").

        Connection files and job logs go to <shared_dir>/<user>/ipython/<cluster_id>/.
        Default: $BATCHHUB_SHARED_DIR, else the BatchHub layout's shared directory.""").tag(to_dict=True)
    controller_address = Unicode("", config=True,
                                 help="BatchHub controller (socket path or host:port); empty: the client's default.")
    poll_seconds = Float(2.0, config=True,
                         help="How often (s) the launcher asks the queue whether its job is still alive.")

    job_id = Unicode("").tag(to_dict=True)
    output_file = Unicode("").tag(to_dict=True)
    job_name_prefix = "batchhub"

    @default("shared_dir")
    def _default_shared_dir(self):
        return shared_root()

    @property
    def connection_dir(self):
        """``<shared>/<user>/ipython/<cluster_id>`` (created 0700 on first use)."""
        path = os.path.join(self.shared_dir, _user(), "ipython", self.cluster_id or "default")
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def _client(self):
        return bbclient.Client(self.controller_address or None, timeout=30)

    # -- submission ----------------------------------------------------------
    def sbatch_argv(self):
        """Options common to every job (partition, time, account, ...)."""
        argv = []
        for flag, value in (("-p", self.partition), ("-t", self.time), ("-A", self.account),
                            ("-q", self.qos), ("--reservation", self.reservation)):
            if value:
                argv += [flag, value]
        return argv + list(self.sbatch_options)

    def submit(self, argv, script):
        """Submit *script* with sbatch *argv* through the client; sets job_id and output_file."""
        from batch_backend.cli.sbatch_options import UsageError, build_submission
        pattern = os.path.join(self.connection_dir, f"{self.job_name_prefix}-%j.out")
        argv = ["-o", pattern] + self.sbatch_argv() + list(argv)
        env = dict(os.environ)
        env.update(self.get_env())
        env.pop("SLURM_JOB_ID", None)  # a kernel running inside a job submits new jobs, not steps
        try:
            submission, _ = build_submission(argv, stdin_text=script, env=env, cwd=os.path.abspath(self.work_dir))
        except UsageError as e:
            raise LauncherError("sbatch options rejected: " + "; ".join(e.lines)) from None
        submission["submit_line"] = "sbatch " + " ".join(argv)
        self.log.debug("Submitting %s job:\n%s", self.name, script)
        try:
            with self._client() as c:
                answer = c.submit(submission, retries=2)
        except bbclient.ClientError as e:
            raise LauncherError(f"submitting the {self.name} job failed: {e}") from None
        self.job_id = str(answer["job_id"])
        self.output_file = pattern.replace("%j", self.job_id)
        self.log.info("%s submitted as BatchHub job %s", self.name, self.job_id)
        self.notify_start(self.job_id)
        self._start_watching()
        return self.job_id

    # -- state -----------------------------------------------------------------
    def job_state(self):
        """The job's state (e.g. 'RUNNING'), or None if the queue does not know it."""
        if not self.job_id:
            return None
        with self._client() as c:
            try:
                return c.job(self.job_id)["state"]
            except bbclient.NotFound:
                return None

    def poll(self):
        """None while the job may still run; else a dict describing how it ended.

        "Controller unreachable" is not "job gone": it counts as still running.
        """
        if not self.job_id:
            return None
        try:
            with self._client() as c:
                job = c.job(self.job_id)
        except bbclient.NotFound:
            return dict(job_id=self.job_id, state="UNKNOWN", exit_code=None)
        except bbclient.ClientError:
            return None
        if job["state"] in ACTIVE_STATES:
            return None
        return dict(job_id=self.job_id, state=job["state"], exit_code=job.get("exit_code"))

    def _start_watching(self):
        self.loop  # noqa: B018  (bind the IOLoop on the calling thread, as LocalProcessLauncher does)
        self._stop_watching = threading.Event()
        thread = threading.Thread(target=self._watch, daemon=True, name=f"watch(job={self.job_id})")
        thread.start()

    def _watch(self):
        while not self._stop_watching.wait(self.poll_seconds):
            status = self.poll()
            if status is not None:
                self.loop.add_callback(lambda: self.notify_stop(status))
                return

    async def stop(self):
        """Cancel the job and return once the queue reports it ended (or stop_timeout)."""
        if not self.job_id or self.state == "after":
            return
        try:
            with self._client() as c:
                c.cancel([self.job_id])
        except bbclient.ClientError as e:
            raise LauncherError(f"cancelling job {self.job_id} failed: {e}") from None
        deadline = time.monotonic() + self.stop_timeout
        status = None
        import asyncio
        while time.monotonic() < deadline:
            status = self.poll()
            if status is not None:
                break
            await asyncio.sleep(0.1)
        if getattr(self, "_stop_watching", None):
            self._stop_watching.set()
        self.cleanup()
        return self.notify_stop(status or dict(job_id=self.job_id, state="CANCELLED", exit_code=None))

    def cleanup(self):
        """Remove what the job left in the shared directory (overridden by the controller)."""

    def signal(self, sig):
        with self._client() as c:
            c.cancel([self.job_id], signal=int(getattr(signal_mod, f"SIG{sig}", sig)
                                              if isinstance(sig, str) else sig))

    async def join(self, timeout=None):
        import asyncio
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.job_id} still running after {timeout}s")
            await asyncio.sleep(0.2)

    def get_output(self, remove=False):
        if not self.output_file:
            return ""
        try:
            with open(self.output_file, errors="replace") as f:
                output = f.read()
        except OSError:
            return ""
        if remove:
            try:
                os.unlink(self.output_file)
            except OSError:
                pass
        return output

    @classmethod
    def from_dict(cls, d, **kwargs):
        launcher = super().from_dict(d, **kwargs)
        if launcher.poll() is not None:
            raise NotRunning(f"BatchHub job {launcher.job_id} is no longer running")
        launcher._start_watching()
        return launcher


class BatchHubControllerLauncher(BatchHubLauncher, ControllerLauncher):
    """Run ``ipcontroller`` as a BatchHub batch job (one task)."""

    ip = Unicode("", config=True, help="""Address ipcontroller listens on.

        Empty (default): decided in the job, on its node: the node's NodeAddr when
        routable, else all interfaces advertised under this host's address when
        nodes run on other hosts, else loopback (all nodes are local). An --ip in
        controller_args (Cluster.controller_ip) wins.""").tag(to_dict=True)
    cpus = Integer(1, config=True, help="CPUs for the controller job (its schedulers are processes).").tag(to_dict=True)
    instance = Unicode("").tag(to_dict=True)
    defer_engine_connection_info = Bool(True, config=True, help="""Submit the engines' job right away.

        With BatchHub engines, Cluster need not wait for the controller job to start
        before submitting the engines (its send_engines_connection_env default): the
        engines' job waits for the controller's connection file itself, so the two
        jobs queue and start in parallel.""")
    job_name_prefix = "ipcontroller"

    def find_args(self):
        return [self.python, "-m", "kernel_ext.ipp", "controller"] + self.controller_args

    def controller_script(self):
        import shlex
        args = [self.python, "-m", "kernel_ext.ipp", "controller",
                "--connection-dir", self.connection_dir, "--instance", self.instance]
        if self.ip:
            args += ["--ip", self.ip]
        args += ["--", f"--profile-dir={self.profile_dir}", f"--cluster-id={self.cluster_id}"]
        args += list(self.controller_args)
        return "#!/bin/sh\n# IPython controller for cluster %s (BatchHub)\nexec %s\n" % (
            self.cluster_id, shlex.join(args))

    async def start(self):
        from ipyparallel.cluster.cluster import Cluster
        self.instance = secrets.token_hex(8)
        parent = self.parent
        if (self.defer_engine_connection_info and isinstance(parent, Cluster)
                and isinstance(parent.engine_launcher_class, type)
                and issubclass(parent.engine_launcher_class, BatchHubEngineSetLauncher)):
            parent.send_engines_connection_env = False
        argv = ["-J", f"ipcontroller-{self.cluster_id}", "-n", "1", "-c", str(self.cpus)]
        return self.submit(argv, self.controller_script())

    @property
    def connection_files(self):
        if not self.job_id:
            return super().connection_files
        return {kind: os.path.join(self.connection_dir, connection_file_name(self.cluster_id, self.job_id, kind))
                for kind in ("client", "engine")}

    async def get_connection_info(self, timeout=None):
        """Both connection dicts, once the controller job wrote them (job id and instance checked)."""
        import asyncio
        if timeout is None:
            timeout = self.connection_info_timeout
        deadline = time.monotonic() + timeout
        info = {}
        for kind, path in self.connection_files.items():
            while True:
                found, why = read_connection_file(path, self.job_id, self.instance)
                if found is not None:
                    info[kind] = found
                    break
                status = self.poll()
                if status is not None:
                    tail = "".join(self.get_output().splitlines(True)[-20:])
                    raise LauncherError(f"controller job {self.job_id} ended ({status['state']}) "
                                        f"before writing {path}:\n{tail}")
                if time.monotonic() > deadline:
                    raise ConnectionFileTimeout(f"controller job {self.job_id} (state {self.job_state()}) "
                                                f"wrote no {kind} connection file in {timeout:.0f}s: "
                                                f"{path} ({why})")
                await asyncio.sleep(0.1)
        return info

    def cleanup(self):
        for path in self.connection_files.values():
            try:
                os.unlink(path)
            except OSError:
                pass


class BatchHubEngineSetLauncher(BatchHubLauncher, EngineLauncher):
    """Run ``n`` engines as ONE BatchHub job: one ``srun --mpi=pmi1`` step, one engine per rank."""

    cpus_per_engine = Integer(1, config=True, help="CPUs per engine (sbatch -c).").tag(to_dict=True)
    nodes = Unicode("", config=True, help="Node count (sbatch -N, e.g. '2' or '1-4'); empty: as the scheduler sees fit.").tag(to_dict=True)
    ntasks_per_node = Integer(0, config=True, help="Engines per node (sbatch --ntasks-per-node); 0: unset.").tag(to_dict=True)
    mpi = Unicode("pmi1", config=True, help="srun --mpi type; 'pmi1' gives every engine its MPI rank (engine id = rank).").tag(to_dict=True)
    connection_timeout = Float(600.0, config=True,
                               help="How long (s) the engines' job waits for its controller's connection file "
                                    "(the controller job may queue longer than the engines').")
    reach_timeout = Float(10.0, config=True,
                          help="How long (s) the engines' job retries reaching the controller's registration "
                               "port before failing with the address it tried.")
    controller_job_id = Unicode("", config=True,
                                help="Controller job whose connection file the engines use; default: the Cluster's controller.").tag(to_dict=True)
    controller_instance = Unicode("", config=True, help="Instance token of that controller (see controller_job_id).").tag(to_dict=True)
    job_name_prefix = "ipengine"

    def find_args(self):
        return ["srun", f"--mpi={self.mpi}"] + list(self.engine_cmd) + list(self.engine_args)

    def _controller_of_cluster(self):
        controller = getattr(self.parent, "controller", None)
        if isinstance(controller, BatchHubControllerLauncher) and controller.job_id:
            return controller
        return None

    def get_env(self):
        env = super().get_env()
        if self.controller_job_id:
            # engines use the file of THEIR controller, never a copy of someone's info
            env.pop("IPP_CONNECTION_INFO", None)
        return env

    def engine_script(self):
        import shlex
        engine = ["srun", f"--mpi={self.mpi}", "--cpu-bind=none"] + list(self.engine_cmd)
        engine += [f"--profile-dir={self.profile_dir}", f"--cluster-id={self.cluster_id}"]
        if self.mpi and self.mpi != "none":
            engine.append("--mpi")
        lines = ["#!/bin/sh", f"# IPython engines for cluster {self.cluster_id} (BatchHub)"]
        if self.controller_job_id:
            path = os.path.join(self.connection_dir,
                                connection_file_name(self.cluster_id, self.controller_job_id, "engine"))
            wait = [self.python, "-m", "kernel_ext.ipp", "wait-controller", "--file", path,
                    "--job-id", self.controller_job_id, "--timeout", str(self.connection_timeout),
                    "--reach-timeout", str(self.reach_timeout)]
            if self.controller_instance:
                wait += ["--instance", self.controller_instance]
            lines.append(shlex.join(wait) + " || exit 1")
            engine.append(f"--file={path}")
        engine += list(self.engine_args)
        lines.append("exec " + shlex.join(engine))
        return "\n".join(lines) + "\n"

    async def start(self, n):
        self.n = n
        controller = self._controller_of_cluster()
        if controller is not None and not self.controller_job_id:
            self.controller_job_id = controller.job_id
            self.controller_instance = controller.instance
        argv = ["-J", f"ipengine-{self.cluster_id}", "-n", str(n), "-c", str(self.cpus_per_engine)]
        if self.nodes:
            argv += ["-N", self.nodes]
        if self.ntasks_per_node:
            argv += ["--ntasks-per-node", str(self.ntasks_per_node)]
        return self.submit(argv, self.engine_script())


def cluster(n=None, *, partition="", time="", account="", qos="", reservation="",
            cpus_per_engine=1, sbatch_options=(), config=None, **cluster_kwargs):
    """``ipp.Cluster`` on BatchHub, with the launchers' traits as keyword arguments.

    ``ipp.Cluster`` does not forward unknown keywords to launchers; this puts
    them into the config (``BatchHubLauncher`` section: both launchers).
    """
    import ipyparallel as ipp
    from traitlets.config import Config
    cfg = Config(config or {})
    shared = {"partition": partition, "time": str(time), "account": account, "qos": qos,
              "reservation": reservation, "sbatch_options": list(sbatch_options)}
    for key, value in shared.items():
        if value:
            cfg.BatchHubLauncher[key] = value
    cfg.BatchHubEngineSetLauncher.cpus_per_engine = cpus_per_engine
    cluster_kwargs.setdefault("controller", "batchhub")
    cluster_kwargs.setdefault("engines", "batchhub")
    return ipp.Cluster(n=n, config=cfg, **cluster_kwargs)


def main(argv=None):
    """``python -m kernel_ext.ipp controller|wait-controller ...`` (the job side, :mod:`kernel_ext.ipp_job`)."""
    from .ipp_job import main as job_main
    return job_main(argv)


if __name__ == "__main__":
    sys.exit(main())
