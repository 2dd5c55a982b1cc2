"""``%ipcluster start|stop|status``: an IPyParallel cluster on the batch queue from a notebook.

``%ipcluster start -n N [--partition P] [--time T] [--account A] [--timeout S]``
    Starts an ``ipp.Cluster`` on the BatchHub launchers of :mod:`kernel_ext.ipp`
    (the controller as one job, the N engines as one MPI job step), waits for
    the engines, and binds ``rc`` (the ``ipp.Client``) and ``view`` (a
    load-balanced view) in the user namespace.
``%ipcluster stop``
    Closes the client and cancels both jobs; ``rc`` and ``view`` are removed.
``%ipcluster status``
    The cluster id, the jobs and their states, and the engines registered.

Every failure prints one ``ipcluster: error: ...`` line, never a traceback.
"""

import argparse
import logging
import os
import sys
import time

from IPython.core.magic import Magics, line_magic, magics_class

from .backend import QueueError

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise QueueError(message)

    def exit(self, status=0, message=None):
        raise QueueError((message or "").strip() or "invalid arguments")


def _parser():
    p = _Parser(prog="%ipcluster", add_help=False)
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("-n", "--n", type=int, dest="n", default=None)
    p.add_argument("-p", "--partition", default="")
    p.add_argument("-t", "--time", default="")
    p.add_argument("-A", "--account", default="")
    p.add_argument("--timeout", type=float, default=120.0)
    return p


@magics_class
class IPClusterMagics(Magics):
    """``%ipcluster start -n N`` / ``stop`` / ``status``."""

    #: The running ``ipp.Cluster`` (None when stopped) and its client.
    cluster = None
    client = None

    def error(self, message):
        print(f"ipcluster: error: {message}", file=sys.stderr, flush=True)

    @line_magic
    def ipcluster(self, line):
        """%ipcluster start -n N [--partition P] [--time T] | stop | status"""
        try:
            opts = _parser().parse_args(line.split())
            return getattr(self, "_" + opts.action)(opts)
        except QueueError as e:
            self.error(str(e))
        except Exception as e:  # noqa: BLE001 - one line, never a traceback
            log.debug("%%ipcluster failed", exc_info=True)
            self.error(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))
        return None

    # -- actions ------------------------------------------------------------------
    def _start(self, opts):
        if self.cluster is not None:
            raise QueueError(f"a cluster is already running ({self.cluster.cluster_id}); "
                             "%ipcluster stop it first")
        if opts.n is None or opts.n < 1:
            raise QueueError("start needs -n N (the number of engines, at least 1)")
        from . import ipp as bhipp
        cluster_id = f"nb{os.getpid()}-{int(time.time()) % 100000}"
        c = bhipp.cluster(opts.n, partition=opts.partition, time=opts.time, account=opts.account,
                          cluster_id=cluster_id, delay=0, engine_timeout=int(opts.timeout),
                          shutdown_atexit=True, log_level=logging.WARNING)
        t0 = time.monotonic()
        try:
            rc = c.start_and_connect_sync()
            rc.wait_for_engines(opts.n, timeout=opts.timeout)
        except BaseException as e:
            try:
                c.stop_cluster_sync()
            except Exception:  # noqa: BLE001
                log.debug("stopping a failed cluster", exc_info=True)
            if isinstance(e, KeyboardInterrupt):
                raise QueueError("interrupted; the cluster's jobs were cancelled") from None
            raise
        self.cluster, self.client = c, rc
        view = rc.load_balanced_view()
        self.shell.user_ns.update(rc=rc, view=view)
        print(f"IPython cluster {cluster_id}: {len(rc.ids)} engines ready in "
              f"{time.monotonic() - t0:.1f} s (controller job {self.controller_job()}, "
              f"engines job {self.engine_job()}); `rc` and `view` are bound.", flush=True)
        return None

    def _stop(self, opts):
        if self.cluster is None:
            raise QueueError("no cluster is running (%ipcluster start -n N starts one)")
        c, rc = self.cluster, self.client
        jobs = [j for j in (self.controller_job(), self.engine_job()) if j]
        self.cluster = self.client = None
        for name in ("rc", "view"):
            self.shell.user_ns.pop(name, None)
        try:
            rc.close()
        finally:
            c.stop_cluster_sync()
        print(f"IPython cluster {c.cluster_id} stopped; jobs {', '.join(jobs)} cancelled.", flush=True)

    def _status(self, opts):
        if self.cluster is None:
            print("No IPython cluster running.")
            return None
        from .backend import select_backend
        backend = select_backend()
        lines = [f"IPython cluster {self.cluster.cluster_id}: {len(self.client.ids)} engines registered"]
        for role, job in (("controller", self.controller_job()), ("engines", self.engine_job())):
            if not job:
                continue
            try:
                state = backend.show_job(job).get("state", "?")
            except QueueError as e:
                state = f"unknown ({e})"
            lines.append(f"  {role}: job {job} {state}")
        print("\n".join(lines))
        return None

    # -- helpers --------------------------------------------------------------------
    def controller_job(self):
        c = self.cluster
        return getattr(c.controller, "job_id", "") if c is not None and c.controller else ""

    def engine_job(self):
        c = self.cluster
        if c is None or not c.engines:
            return ""
        return getattr(next(iter(c.engines.values())), "job_id", "")
