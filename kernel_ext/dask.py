"""Dask on BatchHub: ``BatchHubCluster``, a dask-jobqueue cluster whose workers are BatchHub jobs.

    from kernel_ext.dask import BatchHubCluster
    cluster = BatchHubCluster(cores=2, memory="1GB", walltime="00:30:00", partition="debug")
    cluster.scale(jobs=2)          # or cluster.adapt(minimum=0, maximum=2)
    client = distributed.Client(cluster)

It is dask-jobqueue's ``SLURMCluster`` (same job script, same keywords:
cores, memory, processes, walltime, account, job_extra_directives, ...) with
three differences:

* jobs are submitted and cancelled through :mod:`batch_backend.client`
  (no ``sbatch``/``scancel`` subprocess per worker, and a clear error when
  the controller is unreachable);
* workers retire before their time limit: ``--lifetime`` defaults to the
  walltime minus a margin (10 %, at least one minute, at most half of it),
  with a small stagger, so an adaptive cluster replaces them instead of
  losing their tasks to a time-limit kill;
* the scheduler listens on an address the nodes can reach: the local
  address that routes to the nodes' NodeAddr, or loopback when every node
  of the cluster runs on this host. Pass ``scheduler_options={"host": ...}``
  (or ``interface=``) to choose yourself; tests pass a loopback host.

``partition`` is accepted as Slurm's name for dask-jobqueue's ``queue``.
Unmodified ``dask_jobqueue.SLURMCluster`` also works against BatchHub's CLI
(it only runs ``sbatch``, ``squeue`` and ``scancel``).
"""

import asyncio
import copy
import logging
import os
import socket

import dask
from dask_jobqueue.core import JobQueueCluster
from dask_jobqueue.slurm import SLURMJob

from batch_backend import client as bbclient

logger = logging.getLogger(__name__)

CONFIG_NAME = "batchhub"


def _register_config_defaults():
    """``jobqueue.batchhub``: dask-jobqueue's Slurm defaults plus ours (lifetime)."""
    slurm = {}
    for defaults in dask.config.defaults:
        slurm = defaults.get("jobqueue", {}).get("slurm", slurm)
    section = copy.deepcopy(slurm)
    section.update({"name": "dask-worker", "lifetime": None, "lifetime-stagger": None,
                    "partition": None, "reservation": None, "qos": None})
    dask.config.update_defaults({"jobqueue": {CONFIG_NAME: section}})


_register_config_defaults()


def lifetime_for(walltime):
    """Worker ``--lifetime`` (seconds) for a Slurm *walltime*, or None for no limit.

    The margin (10 %, at least 60 s, at most half the walltime) leaves time to
    hand tasks and data over before the queue's time-limit kill.
    """
    from batch_backend.timespec import parse_time_limit
    if not walltime:
        return None
    minutes = parse_time_limit(walltime)
    if not minutes:
        return None
    seconds = minutes * 60
    margin = min(max(60, seconds // 10), seconds // 2)
    return seconds - margin


def reachable_scheduler_host(client=None):
    """An address of this machine the nodes can reach, or None to let dask decide.

    Loopback when every node runs on this host with a loopback NodeAddr
    (virtual nodes); else the local address routing to the first routable
    NodeAddr (a UDP connect sends no packet).
    """
    try:
        nodes = (client or bbclient.Client(timeout=10)).nodes()
    except bbclient.ClientError:
        return None
    host = socket.gethostname().split(".")[0]
    routable = [n["address"] for n in nodes if n.get("address") and not n["address"].startswith("127.")]
    if routable:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((routable[0], 9))
                return s.getsockname()[0]
        except OSError:
            return None
    if nodes and all((n.get("hostname") or host).split(".")[0] == host for n in nodes):
        return "127.0.0.1"
    return None


class BatchHubJob(SLURMJob):
    """One dask worker job (``processes`` worker processes) on BatchHub."""

    config_name = CONFIG_NAME

    def __init__(self, scheduler=None, name=None, partition=None, queue=None, walltime=None,
                 lifetime=None, lifetime_stagger=None, reservation=None, qos=None,
                 controller_address=None, worker_extra_args=None, job_extra_directives=None,
                 config_name=None, **kwargs):
        config_name = config_name or self.config_name
        get = lambda key: dask.config.get(f"jobqueue.{config_name}.{key}", None)  # noqa: E731
        queue = queue or partition or get("partition")
        if walltime is None:
            walltime = get("walltime")
        if lifetime is None:
            lifetime = get("lifetime")
        if lifetime is None:
            lifetime = lifetime_for(walltime)
        if lifetime_stagger is None:
            lifetime_stagger = get("lifetime-stagger")
        if lifetime_stagger is None and lifetime:
            lifetime_stagger = min(60, max(1, int(_seconds(lifetime) // 20)))
        worker_extra_args = list(worker_extra_args if worker_extra_args is not None
                                 else get("worker-extra-args") or [])
        if lifetime and "--lifetime" not in worker_extra_args:
            worker_extra_args += ["--lifetime", _duration(lifetime)]
            if lifetime_stagger:
                worker_extra_args += ["--lifetime-stagger", _duration(lifetime_stagger)]
        directives = list(job_extra_directives if job_extra_directives is not None
                          else get("job-extra-directives") or [])
        reservation = reservation or get("reservation")
        qos = qos or get("qos")
        if reservation:
            directives.append(f"--reservation={reservation}")
        if qos:
            directives.append(f"--qos={qos}")
        super().__init__(scheduler=scheduler, name=name, queue=queue, walltime=walltime,
                         worker_extra_args=worker_extra_args, job_extra_directives=directives,
                         config_name=config_name, **kwargs)
        self.lifetime = lifetime
        self.controller_address = controller_address

    async def _submit_job(self, script_filename):
        """Submit the script through the client; answer like sbatch so the id regexp applies."""
        with open(script_filename) as f:
            script = f.read()
        address = self.controller_address

        def submit():
            from batch_backend.cli.sbatch_options import UsageError, build_submission
            env = dict(os.environ)
            env.pop("SLURM_JOB_ID", None)
            try:
                submission, _ = build_submission([], stdin_text=script, env=env, cwd=os.getcwd())
            except UsageError as e:
                raise RuntimeError("sbatch rejected the worker script: " + "; ".join(e.lines)) from None
            submission["submit_line"] = "sbatch (kernel_ext.dask)"
            with bbclient.Client(address) as c:
                return c.submit(submission, retries=2)["job_id"]

        try:
            job_id = await asyncio.to_thread(submit)
        except bbclient.ClientError as e:
            raise RuntimeError(f"submitting dask worker job failed: {e}") from None
        return f"Submitted batch job {job_id}\n"

    async def close(self):
        logger.debug("Stopping worker: %s job: %s", self.name, self.job_id)
        await self._cancel(self.job_id, self.controller_address)

    @classmethod
    async def _close_job(cls, job_id, cancel_command):
        await cls._cancel(job_id, None)

    @staticmethod
    async def _cancel(job_id, address):
        if not job_id:
            return

        def cancel():
            with bbclient.Client(address) as c:
                c.cancel([str(job_id)])

        try:
            await asyncio.to_thread(cancel)
        except bbclient.ClientError as e:  # the job may already be gone; never raise on close
            logger.warning("cancelling dask worker job %s failed: %s", job_id, e)


class BatchHubCluster(JobQueueCluster):
    __doc__ = __doc__
    job_cls = BatchHubJob

    def __init__(self, *args, scheduler_options=None, interface=None, **kwargs):
        scheduler_options = dict(scheduler_options if scheduler_options is not None
                                 else dask.config.get(f"jobqueue.{CONFIG_NAME}.scheduler-options", {}) or {})
        if interface is None:
            interface = dask.config.get(f"jobqueue.{CONFIG_NAME}.interface", None)
        if "host" not in scheduler_options and "interface" not in scheduler_options and interface is None:
            host = reachable_scheduler_host()
            if host:
                scheduler_options["host"] = host
        super().__init__(*args, scheduler_options=scheduler_options, interface=interface, **kwargs)


def _seconds(value):
    if isinstance(value, (int, float)):
        return float(value)
    from dask.utils import parse_timedelta
    return parse_timedelta(value)


def _duration(value):
    """dask-worker's duration syntax: plain seconds become '<n>s'."""
    return f"{int(value)}s" if isinstance(value, (int, float)) else str(value)
