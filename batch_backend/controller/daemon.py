"""``batchhub controller``: start the controller daemon.

Start-up order matters for durability: open the journal, recover every job,
and only then bind the socket, so no client is answered by a controller that
does not yet know its jobs.
"""

import asyncio
import logging
import os
import signal
import socket
import time

import tornado.httpserver
import tornado.netutil

from .. import conf as confmod
from .. import __version__
from ..accounting import AccountingConfigError, open_store, parse_purge_age
from ..accounting.agent import AccountingAgent
from ..auth.authority import Authority, AuthConfigError, parse_tcp_address, ssl_context
from .api import make_app
from .cluster import Cluster
from .journal import Journal
from .metrics import LabeledHistograms, metrics_open
from .steps import StepManager, credential_key

log = logging.getLogger("batchhub.controller")


class Controller:
    """The running daemon: configuration, cluster state, HTTP server, timers."""

    def __init__(self, conf, conf_path, socket_path, state_dir):
        self.conf = conf
        self.conf_path = conf_path
        self.socket_path = socket_path
        self.state_dir = state_dir
        os.makedirs(state_dir, exist_ok=True)
        # opt-in TCP listener: callers there authenticate with HS256 JWTs (a bad setting stops the start)
        self.tcp_address = parse_tcp_address(confmod.get_option(conf, "BatchHubTCPAddress"))
        self.tls = ssl_context(conf) if self.tcp_address else None
        self.authority = Authority(conf, state_dir, required=self.tcp_address is not None)
        sync = confmod.get_option(conf, "JournalSync", "NORMAL")
        self.journal = Journal(os.path.join(state_dir, "journal.sqlite"), sync=sync)
        self.cluster = Cluster(conf, self.journal)
        self.cluster.steps = StepManager(self.cluster, credential_key(state_dir))
        if self.tcp_address and self.authority.key is not None:
            # jobs on nodes that reach us over TCP get a token of their own (see Authority.mint_job_token)
            self.cluster.mint_job_token = self.authority.mint_job_token
        # accounting records: the journal itself, or an external store (see batch_backend.accounting)
        self.accounting_url = confmod.get_option(conf, "AccountingStorageURL") or ""
        store = open_store(self.accounting_url, self.cluster.cluster_name)
        self.accounting = AccountingAgent(self.journal, store, min_job_age=self.cluster.min_job_age,
                                          purge_job_after=parse_purge_age(confmod.get_option(conf, "PurgeJobAfter")))
        target = self.journal.accounting_target()
        if store is not None and target != store.label:
            self.journal.queue_all_for_accounting()  # a new store gets every record the journal holds
            self.journal.set_accounting_target(store.label)
        elif store is None and target:
            self.journal.set_accounting_target("")  # changes made now are not queued: resend all next time
        self.started = time.time()
        self.request_times = LabeledHistograms(("route", "method"))  # /metrics: API latency
        self.metrics_open = metrics_open(conf)
        self.recovery_seconds = 0.0
        self._stop = None

    def config_dict(self):
        """`scontrol show config`: the live settings, Slurm's key names."""
        out = {k: str(v) for k, v in self.conf.get("options", {}).items()}
        out.update({
            "ClusterName": self.cluster.cluster_name,
            "SLURM_VERSION": f"22.05.11 (BatchHub {__version__})",
            "SLURM_CONF": self.conf_path or "(embedded default)",
            "StateSaveLocation": self.state_dir,
            "BatchHubSocket": self.socket_path,
            "KillWait": f"{self.cluster.kill_wait:g} sec",
            "MinJobAge": f"{self.cluster.min_job_age:g} sec",
            "SlurmdTimeout": f"{self.cluster.slurmd_timeout:g} sec",
            "SchedulerType": "sched/backfill" if self.cluster.policy.__name__.endswith("backfill") else "sched/builtin",
            "SelectType": "select/cons_tres",
            "SlurmctldPid": str(os.getpid()),
            "BOOT_TIME": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
            "NEXT_JOB_ID": str(self.cluster.next_job_id),
            "JobCount": str(len(self.cluster.jobs)),
            "AccountingStorageEnforce": ",".join(
                f for f in ("associations", "limits", "qos", "safe") if f in self.cluster.assoc.enforce) or "none",
        })
        prio = self.cluster.priority
        w = prio.weights
        live = {
            "PriorityType": prio.type,
            "PriorityCalcPeriod": f"{w.calc_period:g} sec",
            "PriorityDecayHalfLife": f"{w.decay_half_life:g} sec",
            "PriorityMaxAge": f"{w.max_age:g} sec",
            "PriorityFavorSmall": "Yes" if w.favor_small else "No",
            "PriorityUsageResetPeriod": w.usage_reset_period,
            "PriorityWeightAge": str(w.age), "PriorityWeightFairShare": str(w.fairshare),
            "PriorityWeightJobSize": str(w.job_size), "PriorityWeightPartition": str(w.partition),
            "PriorityWeightQOS": str(w.qos),
            "PriorityWeightTRES": ",".join(f"{k.upper() if '/' not in k else k}={v}" for k, v in w.tres.items())
                                  or "(null)",
        }
        for key in [k for k in out if k.lower() in {x.lower() for x in live}]:
            del out[key]  # the live value under Slurm's spelling replaces the file's
        out.update(live)
        out.update(self.cluster.preemption.config_entries())
        out.update(self._durability_config())
        for key in [k for k in out if k.lower() in {x.lower() for x in self._live_keys} and k not in self._live_keys]:
            del out[key]
        return out

    _live_keys = frozenset({"ClusterName", "SLURM_VERSION", "SLURM_CONF", "StateSaveLocation", "BatchHubSocket",
                            "KillWait", "MinJobAge", "SlurmdTimeout", "SchedulerType", "SelectType", "SlurmctldPid",
                            "BOOT_TIME", "NEXT_JOB_ID", "JobCount", "AccountingStorageType",
                            "AccountingStorageURL", "PurgeJobAfter", "JournalSync", "MetricsType", "PrivateData"})

    def _durability_config(self):
        """Accounting, purge, journal and metrics settings as in effect (passwords hidden)."""
        from ..accounting import redact
        store = self.accounting.store
        kind = "accounting_storage/journal" if store is None else (
            "accounting_storage/sqlite" if store.label.startswith("sqlite:") else "accounting_storage/postgresql")
        purge = confmod.get_option(self.conf, "PurgeJobAfter")
        return {
            "AccountingStorageType": kind,
            "AccountingStorageURL": redact(self.accounting_url) or None,
            "PurgeJobAfter": str(purge) if purge not in (None, "") else "NONE",
            "JournalSync": "FULL" if str(confmod.get_option(self.conf, "JournalSync", "")).upper() == "FULL"
            else "NORMAL",
            "MetricsType": confmod.get_option(self.conf, "MetricsType") or None,
            "PrivateData": confmod.get_option(self.conf, "PrivateData") or "none",
        }

    def request_shutdown(self):
        if self._stop is not None:
            asyncio.get_event_loop().call_later(0.05, self._stop.set)

    async def run(self):
        t0 = time.perf_counter()
        n = self.cluster.recover()
        self.recovery_seconds = time.perf_counter() - t0
        log.info("recovered %d jobs in %.0f ms", n, self.recovery_seconds * 1000)
        app = make_app(self)
        server = tornado.httpserver.HTTPServer(app, xheaders=False, idle_connection_timeout=3600)
        tcp_server = None
        if self.tcp_address:
            # bound before the Unix socket: a listener that cannot start stops the controller
            host, port = self.tcp_address
            try:
                tcp_socks = tornado.netutil.bind_sockets(port, host, backlog=1024)
            except OSError as e:
                log.error("cannot start: BatchHubTCPAddress=%s:%d: %s", host, port, e.strerror or e)
                self.journal.close()
                raise SystemExit(1) from None
            tcp_server = tornado.httpserver.HTTPServer(app, xheaders=False, idle_connection_timeout=3600,
                                                      ssl_options=self.tls)
            tcp_server.add_sockets(tcp_socks)
            bound = tcp_socks[0].getsockname()
            log.info("listening on TCP %s:%d (%s, token authentication)", bound[0], bound[1],
                     "TLS" if self.tls else "plain HTTP")
        os.makedirs(os.path.dirname(self.socket_path) or ".", exist_ok=True)
        sock = tornado.netutil.bind_unix_socket(self.socket_path, mode=0o666, backlog=1024)
        server.add_socket(sock)
        log.info("BatchHub controller %s listening on %s (pid %d)", __version__, self.socket_path, os.getpid())
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        self.cluster.request_schedule()
        ticker = asyncio.ensure_future(self._tick())
        shipper = asyncio.ensure_future(self.accounting.run())
        await self._stop.wait()
        ticker.cancel()
        shipper.cancel()
        try:  # a clean stop ships what is queued (a crash leaves it queued in the journal)
            await asyncio.wait_for(self.accounting.flush(), 5)
        except Exception:  # noqa: BLE001 - still queued on disk; shipped at the next start
            pass
        self.accounting.close()
        server.stop()
        if tcp_server is not None:
            tcp_server.stop()
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass
        self.journal.close()
        log.info("controller stopped")
        # Everything acknowledged is committed and the journal is closed; held long
        # polls and keep-alive connections need no goodbye (clients reconnect).
        logging.shutdown()
        os._exit(0)

    async def _tick(self):
        """Slow housekeeping: node liveness, begin times, MinJobAge. Scheduling itself is event-driven."""
        while True:
            await asyncio.sleep(1.0)
            try:
                self.cluster.check_node_timeouts()
                self.cluster.enforce_interactive_limits()
                self.cluster.preemption.tick(self.cluster.now())
                self.cluster.purge_old_jobs()
                self.cluster.priority_tick()
                if self.cluster.reservations.tick():
                    self.cluster.request_schedule()
                if self.cluster.backfill_due() or any(
                        j.get("begin_time") or j.get("dependency") for j in self.cluster.pending.values()):
                    self.cluster.request_schedule()
            except Exception:  # keep the controller alive; the log says what broke
                log.exception("housekeeping failed")


def run_controller(conf, conf_path, socket_path, state_dir):
    from ..sched.preemption import PreemptConfigError
    try:
        controller = Controller(conf, conf_path, socket_path, state_dir)
    except (AuthConfigError, AccountingConfigError, confmod.ConfError, PreemptConfigError) as e:
        log.error("cannot start: %s", e)
        raise SystemExit(1) from None
    asyncio.run(controller.run())
