"""``QueueSpawner``: each user's notebook server is a BatchHub batch job.

The life of a server:

1. ``start`` checks the user's options (:mod:`spawner.options`), builds the job
   the way ``sbatch`` would (:func:`build_submission`) and submits it through
   :mod:`batch_backend.client`. The job id goes into the spawner state at once,
   so a hub restart finds the job whatever phase it is in.
2. While the job pends, the shared :class:`~spawner.watcher.JobWatcher` tells
   its position, reason and estimated start; ``progress`` turns each change
   into an event on the spawn page.
3. On the node, :mod:`spawner.singleuser` picks a port and reports the address
   to the hub (:mod:`spawner.api`); ``start`` returns it.
4. ``poll`` reads the watcher: only a *final* job state ends a server - an
   unreachable controller never does. ``stop`` cancels and waits until the job
   has left the queue.

A job that ends before its server reported fails the spawn at once with the
job's end state and the tail of its output; a start that runs out of time
says whether the job was still queued or had started and failed to come up.
"""

import asyncio
import os
import pwd
import shlex
import sys
import time

from jupyterhub.spawner import Spawner
from jupyterhub.utils import maybe_future
from sqlalchemy.orm import object_session
from tornado import web
from traitlets import Any, Bool, CaselessStrEnum, Dict, Float, Integer, List, Unicode, default

from batch_backend.cli.sbatch_options import UsageError, build_submission
from batch_backend.client import ClientError, ControllerUnreachable, default_address
from batch_backend.model import ACTIVE_STATES

from . import api  # noqa: F401  (registers the hub endpoints)
from . import jobops
from . import options as opts
from .access import Access
from .reasons import clock, duration, end_text, pending_text
from .watcher import JobWatcher, call

FINAL_OK = {"COMPLETED", "CANCELLED"}


class QueueError(web.HTTPError):
    """A spawn that failed because of the queue; the message is for the user."""

    def __init__(self, message, status=500):
        super().__init__(status, message.replace("%", "%%"))
        self.message = message
        self.jupyterhub_message = message

    def __str__(self):
        return self.message


class QueueSpawner(Spawner):
    """Runs each single-user server as a job on the BatchHub queue."""

    # -- where the queue is -----------------------------------------------------------------
    controller_address = Unicode(
        help="""Controller address: a Unix socket path or host:port. Default: what the
        Slurm-dialect CLI uses ($BATCHHUB_SOCKET, $BATCHHUB_HOME/run/controller.sock, the
        system socket), so the hub talks to the cluster `batchhub up` started.""",
    ).tag(config=True)

    @default("controller_address")
    def _default_controller_address(self):
        return default_address()

    # -- what users may ask for --------------------------------------------------------------
    profiles = List(
        Dict(),
        help="""Admin-defined choices shown on the spawn form. Each profile is a dict:
        name (id), display_name, partition, cpus, memory ("2G"), gpus, time ("2:00:00" or
        minutes), and optionally account, qos, reservation, sbatch_args (extra sbatch options)
        and users / groups (hub user and group names allowed to pick it; empty = everyone),
        e.g. {"name": "class101", "display_name": "Class 101 (reservation)", "cpus": 1,
        "memory": "2G", "time": 90, "reservation": "class101", "groups": ["class101"]}.
        A profile whose account, QOS or reservation the user may not use (sacctmgr
        associations, the reservation's Users/Groups/Accounts) is shown disabled with why.
        Custom requests may pick only the user's own accounts, QOS and reservations.""",
    ).tag(config=True)

    @default("profiles")
    def _default_profiles(self):
        return [
            {"name": "small", "display_name": "Small: 1 CPU, 1 GB, 1 h", "cpus": 1, "memory": "1G", "time": "1:00:00"},
            {"name": "medium", "display_name": "Medium: 2 CPUs, 4 GB, 4 h", "cpus": 2, "memory": "4G", "time": "4:00:00"},
        ]

    allow_custom = Bool(
        True,
        help="""Let users choose partition, CPUs, memory, GPUs and time themselves (within the
        live partition limits) in addition to the profiles.""",
    ).tag(config=True)

    default_profile = Unicode(
        "",
        help="Profile used when a spawn request names none (default: the first allowed one).",
    ).tag(config=True)

    # -- how the job runs -----------------------------------------------------------------------
    user_mode = CaselessStrEnum(
        ["auto", "multi", "single"], "auto",
        help="""multi: the job runs as the user's Unix account (the hub runs as root or as the
        controller's admin account and submits on the user's behalf). single: every job runs as
        the hub's service account, each user in their own working directory (a laptop or a
        classroom container). auto: multi when the hub runs as root and the user exists as a
        Unix account, else single.""",
    ).tag(config=True)

    single_account_root = Unicode(
        help="""Single-account mode: each user's working directory is this/<username>
        (default $BATCHHUB_HOME/hub/users or ~/.batchhub/hub/users).""",
    ).tag(config=True)

    @default("single_account_root")
    def _default_single_account_root(self):
        base = os.environ.get("BATCHHUB_HOME") or os.path.join(os.path.expanduser("~"), ".batchhub")
        return os.path.join(base, "hub", "users")

    job_name = Unicode(
        "jupyterhub-{username}",
        help="Job name ({username}, {servername} expanded); admins find servers in squeue by it.",
    ).tag(config=True)

    output_path = Unicode(
        ".batchhub/jupyterhub-%j.log",
        help="""Job output file, relative to the working directory (Slurm % patterns allowed).
        Its tail is shown when a server fails to start.""",
    ).tag(config=True)

    python = Unicode(
        sys.executable,
        help="Python interpreter on the nodes that runs the reporting wrapper (spawner.singleuser).",
    ).tag(config=True)

    path_prefix = Unicode(
        os.path.dirname(sys.executable),
        help="Directory put first on the job's PATH so that jupyterhub-singleuser is found.",
    ).tag(config=True)

    extra_sbatch_args = List(
        Unicode(),
        help="Extra sbatch options added to every server job (e.g. --constraint=cpu).",
    ).tag(config=True)

    prologue = Unicode(
        "",
        help="Shell lines run in the job before the server starts (module load, conda activate...).",
    ).tag(config=True)

    # -- timing ------------------------------------------------------------------------------------
    queue_timeout = Float(
        0,
        help="""Seconds a server job may wait in the queue before the spawn gives up and
        cancels it, saying it was still queued. 0 = until start_timeout.""",
    ).tag(config=True)

    server_start_timeout = Float(
        120,
        help="""Seconds from the job starting on a node until its server reports its address.
        Past it the spawn fails with "the job started but the server did not come up", distinct
        from a job that was still queued.""",
    ).tag(config=True)

    @default("start_timeout")
    def _default_start_timeout(self):
        # queued time counts: a batch spawn legitimately waits longer than a local process
        return 900

    @default("poll_interval")
    def _default_poll_interval(self):
        return 10  # reads the shared watcher's cache: no controller query per spawner

    watch_interval = Float(
        5.0,
        help="""Seconds between the shared watcher's queries for all of this hub's jobs
        (0.5 s while some server is starting).""",
    ).tag(config=True)

    stop_timeout = Float(
        60,
        help="Seconds stop() waits for the cancelled job to leave the queue.",
    ).tag(config=True)

    walltime_warnings = List(
        Integer(), [600, 120],
        help="""Seconds before the job's time limit at which the server warns the user (passed to
        the server as BATCHHUB_WALLTIME_WARNINGS; the hub's progress/stop messages say it too).""",
    ).tag(config=True)

    walltime_extension = Bool(
        True,
        help="""Load spawner.walltime (server extension) and the batchhub-walltime JupyterLab
        plugin in each server: a warning notification before the time limit, with an "Extend"
        action.""",
    ).tag(config=True)

    # -- state -------------------------------------------------------------------------------------
    job_id = Unicode("", help="Current job id (state).")
    job_host = Unicode("", help="Address the server reported (state).")
    job_port = Integer(0, help="Port the server reported (state).")
    job_node = Unicode("", help="Node the job runs on (state).")
    _events = List()
    _event_signal = Any()
    _reported = Any()
    _end_message = Unicode("")
    _request = Any()
    _followed = Unicode("")
    _resv_starts = Dict()

    @default("_event_signal")
    def _default_event_signal(self):
        return asyncio.Event()

    @default("args")
    def _default_args(self):
        return ["--allow-root"] if os.getuid() == 0 else []

    @default("default_url")
    def _default_default_url(self):
        return "/lab"

    # -- state -------------------------------------------------------------------------------------
    def load_state(self, state):
        super().load_state(state)
        self.job_id = str(state.get("job_id", "") or "")
        self.job_host = state.get("job_host", "") or ""
        self.job_port = int(state.get("job_port", 0) or 0)
        self.job_node = state.get("job_node", "") or ""
        self._end_message = state.get("last_end", "") or ""
        if self.job_id:
            self._follow(self.job_id)

    def get_state(self):
        state = super().get_state()
        if self._end_message:
            state["last_end"] = self._end_message  # kept after stop: the form says why
        if self.job_id:
            state.update(job_id=self.job_id, job_host=self.job_host, job_port=self.job_port,
                         job_node=self.job_node)
        return state

    def clear_state(self):
        super().clear_state()
        self._unfollow()
        self.job_id, self.job_host, self.job_port, self.job_node = "", "", 0, ""
        self._reported = None

    def _save_state_now(self):
        """Persist the job id at once (JupyterHub itself only saves after start returns)."""
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is None:
            return
        orm_spawner.state = self.get_state()
        session = object_session(orm_spawner)
        if session is not None:
            session.commit()

    def _follow(self, job_id):
        """Register this spawner's job with the shared watcher (once per job)."""
        if self._followed != job_id:
            self._unfollow()
            self.watcher.watch(job_id)
            self._followed = job_id

    def _unfollow(self):
        if self._followed:
            self.watcher.unwatch(self._followed)
            self._followed = ""

    @property
    def watcher(self):
        w = JobWatcher.get(self.controller_address, self.log)
        w.interval = self.watch_interval
        return w

    # -- options -------------------------------------------------------------------------------------
    async def _live_limits(self):
        """(usable partitions, Access) as the controller reports them now."""
        partitions = await call(self.controller_address, "partitions")
        nodes = await call(self.controller_address, "nodes")
        access = await self._access()
        accounts = access.accounts() if access is not None else None
        return opts.usable_partitions(partitions, nodes, self._unix_groups(), accounts), access

    async def _access(self):
        """The user's accounts, QOS and reservations (:class:`spawner.access.Access`).

        For the identity the controller checks: in multi-user mode the user's Unix
        account and groups; in single-account mode every job is the service account's,
        so its associations and reservations are what a hub user may use (profile
        ``users``/``groups`` then decide which hub users see which choice).
        """
        name, groups = self._accounting_identity()
        addr = self.controller_address
        try:
            assocs = await call(addr, "associations", users=[name])
            users = await call(addr, "users", [name])
            qos = await call(addr, "qos")
            reservations = await call(addr, "reservations")
            enforce = (await call(addr, "association_tree")).get("enforce") or []
        except ControllerUnreachable:
            raise
        except ClientError as e:  # a controller without accounting: profiles only
            self.log.warning("%s: no accounting data (%s); accounts come from profiles only", self._log_name, e)
            return None
        return Access(name, associations=assocs, user_record=users[0] if users else None, qos=qos,
                      reservations=reservations, enforce=enforce, groups=groups or [])

    def _accounting_identity(self):
        """(Unix user, its groups) the controller checks the server job's account, QOS and
        reservation against."""
        if self._mode() == "multi":
            return self.user.name, self._unix_groups()
        import grp
        pw = pwd.getpwuid(os.getuid())
        try:
            gids = os.getgrouplist(pw.pw_name, pw.pw_gid)
        except OSError:
            gids = [pw.pw_gid]
        names = []
        for gid in gids:
            try:
                names.append(grp.getgrgid(gid).gr_name)
            except KeyError:
                pass
        return pw.pw_name, names

    def _unix_groups(self):
        """The user's Unix groups in multi-user mode; None (unchecked) in single-account mode."""
        if self._mode() != "multi":
            return None
        import grp
        pw = pwd.getpwnam(self.user.name)
        return [g.gr_name for g in grp.getgrall() if self.user.name in g.gr_mem] + [grp.getgrgid(pw.pw_gid).gr_name]

    def _hub_groups(self):
        return [g.name for g in getattr(self.user, "groups", [])]

    @default("options_form")
    def _default_options_form(self):
        return self._render_options_form

    async def _render_options_form(self, spawner):
        try:
            usable, access = await self._live_limits()
        except ControllerUnreachable:
            return ('<p class="text-warning">The cluster controller is not answering right now; '
                    'the default profile will be used.</p>')
        notice = ""
        if self._end_message:
            import html
            notice = f'<div class="alert alert-warning">{html.escape(self._end_message)}</div>'
        return notice + opts.render_form(profiles=self.profiles, usable=usable, allow_custom=self.allow_custom,
                                user_name=self.user.name, hub_groups=self._hub_groups(), access=access,
                                previous=self.orm_spawner.user_options if self.orm_spawner else None,
                                clock=clock)

    @default("options_from_form")
    def _default_options_from_form(self):
        return _options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _apply_user_options

    async def resolve_request(self):
        """The user's options checked against profiles and live limits (OptionsError if bad)."""
        try:
            usable, access = await self._live_limits()
        except ControllerUnreachable as e:
            raise QueueError(f"The cluster controller is not answering ({e}); try again in a moment.",
                             status=503) from None
        return opts.resolve(self.user_options, profiles=self.profiles, usable=usable,
                            allow_custom=self.allow_custom, user_name=self.user.name,
                            hub_groups=self._hub_groups(), default_profile=self.default_profile or None,
                            access=access)

    # -- the job ----------------------------------------------------------------------------------------
    def _mode(self):
        if self.user_mode != "auto":
            return self.user_mode
        if os.getuid() != 0:
            return "single"
        try:
            pwd.getpwnam(self.user.name)
            return "multi"
        except KeyError:
            return "single"

    def workdir(self):
        if self.notebook_dir:
            return self.format_string(self.notebook_dir)
        if self._mode() == "multi":
            return pwd.getpwnam(self.user.name).pw_dir
        name = self.user.name
        if name in (".", "..") or os.sep in name or "\0" in name:
            name = "_" + name.encode().hex()  # never a path outside the users' root
        return os.path.join(self.single_account_root, name)

    def get_args(self):
        args = super().get_args()
        if self.walltime_extension:
            args += ["--ServerApp.jpserver_extensions=spawner.walltime=True",
                     f"--LabApp.extra_labextensions_path={os.path.join(os.path.dirname(__file__), 'labextension')}"]
        return args

    def job_script(self):
        cmd = [self.python, "-m", "spawner.singleuser", *self.cmd, *self.get_args()]
        lines = ["#!/bin/sh", "# JupyterHub single-user server started by BatchHub's QueueSpawner"]
        if self.prologue:
            lines.append(self.prologue)
        lines.append("exec " + " ".join(shlex.quote(c) for c in cmd))
        return "\n".join(lines) + "\n"

    def job_environment(self, workdir):
        env = self.get_env()
        env["PATH"] = os.pathsep.join(filter(None, [self.path_prefix, "/usr/local/bin:/usr/bin:/bin"]))
        env.setdefault("LANG", os.environ.get("LANG", "C.UTF-8"))
        if self._mode() == "multi":
            pw = pwd.getpwnam(self.user.name)
            env.update(USER=pw.pw_name, LOGNAME=pw.pw_name, HOME=pw.pw_dir, SHELL=pw.pw_shell or "/bin/sh")
        else:
            env.update(HOME=workdir, USER=pwd.getpwuid(os.getuid()).pw_name)
        env["BATCHHUB_SOCKET"] = self.controller_address
        env["BATCHHUB_WALLTIME_WARNINGS"] = ",".join(str(s) for s in self.walltime_warnings)
        return env

    def build_job(self, request):
        """The submission dict for ``request`` (sbatch's own option handling)."""
        workdir = self.workdir()
        env = self.job_environment(workdir)
        env["BATCHHUB_TIME_LIMIT"] = str(request.time_minutes)
        name = self.job_name.format(username=self.user.name, servername=self.name or "")
        argv = [f"--job-name={name}", f"--chdir={workdir}", f"--output={self.output_path}",
                "--export=ALL", f"--comment=jupyterhub user={self.user.name} server={self.name or ''}",
                *request.sbatch_args(), *self.extra_sbatch_args]
        try:
            submission, _ = build_submission(argv, stdin_text=self.job_script(),
                                             env=env, cwd=workdir)
        except UsageError as e:
            raise QueueError(f"The server job could not be built: {e}", status=400) from None
        if self._mode() == "multi":
            submission["user"] = self.user.name
        return submission

    # -- progress events ----------------------------------------------------------------------------------
    def _emit(self, progress, message):
        if self._events and self._events[-1]["message"] == message:
            return
        self.log.info("%s: %s", self._log_name, message)
        event = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self._events.append(event)
        signal, self._event_signal = self._event_signal, asyncio.Event()
        signal.set()

    async def progress(self):
        i = 0
        while True:
            while i < len(self._events):
                yield self._events[i]
                i += 1
            if not (self._spawn_pending or self._start_pending):
                break
            signal = self._event_signal
            try:
                await asyncio.wait_for(signal.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    # -- start --------------------------------------------------------------------------------------------
    async def start(self):
        self._events = []
        self._resv_starts = {}
        self._end_message = ""
        self._reported = asyncio.Event()
        self.job_host, self.job_port, self.job_node = "", 0, ""
        request = self._request or await self.resolve_request()
        self._request = None
        workdir = self.workdir()
        if self._mode() == "single":
            os.makedirs(workdir, exist_ok=True)
        submission = self.build_job(request)
        try:
            answer = await call(self.controller_address, "submit", submission, retries=3)
        except ControllerUnreachable as e:
            raise QueueError(f"The cluster controller is not answering ({e}); try again shortly.",
                             status=503) from None
        except ClientError as e:
            raise QueueError(f"The queue refused the server job: {e}", status=400) from None
        self.job_id = str(answer["job_id"])
        self._save_state_now()
        self._emit(10, f"Submitted job {self.job_id}: {request.describe()}.")
        watcher = self.watcher
        self._follow(self.job_id)
        watcher.hurry(self.job_id)
        try:
            return await self._wait_for_server(watcher, request)
        finally:
            watcher.relax(self.job_id)

    async def _wait_for_server(self, watcher, request):
        began = time.monotonic()
        margin = 3.0
        deadline = began + max(self.start_timeout - margin, 1.0)
        queue_deadline = began + self.queue_timeout if self.queue_timeout else deadline
        running_since = None
        while not self._reported.is_set():
            job = watcher.job(self.job_id)
            now = time.monotonic()
            if not watcher.reachable:
                self._emit(None, "The cluster controller is not answering; still waiting for job "
                                 f"{self.job_id} (it is not lost)...")
            elif job is not None:
                state = job["state"]
                if state == "PENDING":
                    resv_start = await self._reservation_start(job)
                    self._emit(20, pending_text(job, watcher.positions.get(int(self.job_id)),
                                                reservation_start=resv_start))
                    if now > queue_deadline:
                        await self._cancel_quietly()
                        raise QueueError(
                            f"Your server is still waiting in the queue after {duration(now - began)} "
                            f"({pending_text(job, watcher.positions.get(int(self.job_id)))}) "
                            "The job was cancelled; try a smaller request or another partition.")
                elif state in ("CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"):
                    if running_since is None:
                        running_since = now
                        self.job_node = job.get("batch_host") or ",".join(job.get("nodes") or [])
                        limit = ""
                        if job.get("time_limit") and job.get("end_time"):
                            limit = (f" (time limit {duration(job['time_limit'] * 60)}: until "
                                     f"{clock(job['end_time'])})")
                        self._emit(50, f"Job {self.job_id} is running on node {self.job_node}{limit}.")
                        self._emit(60, "Server starting on the node: waiting for it to report its address...")
                    if now - running_since > self.server_start_timeout:
                        await self._cancel_quietly()
                        raise QueueError(
                            f"Job {self.job_id} started on {self.job_node} but its server did not report its "
                            f"address within {duration(self.server_start_timeout)}. {self._output_tail(job)}")
                else:  # final: ended before the server reported
                    if self._reported.is_set():
                        break
                    raise QueueError(
                        f"Job {self.job_id} ended before the server started: {end_text(job)}. "
                        f"{self._output_tail(job)}")
            if now > deadline:
                await self._cancel_quietly()
                phase = ("was still waiting in the queue" if running_since is None
                         else f"had started on {self.job_node} but its server never reported")
                raise QueueError(f"Gave up after {duration(now - began)}: job {self.job_id} {phase}. "
                                 "The job was cancelled.")
            reported = asyncio.ensure_future(self._reported.wait())
            changed = asyncio.ensure_future(watcher.changed(2.0))
            await asyncio.wait([reported, changed], return_when=asyncio.FIRST_COMPLETED)
            for f in (reported, changed):
                f.cancel()
        self._emit(70, f"Server on {self.job_node or self.job_host} reported {self.job_host}:{self.job_port}; "
                       "waiting for it to listen...")
        self._save_state_now()
        await self._wait_listening(watcher)
        self._emit(90, f"Server is listening on {self.job_node or self.job_host}; connecting...")
        return self.job_host, self.job_port

    async def _wait_listening(self, watcher):
        """Until the reported port accepts connections; fail at once if the job ends first.

        JupyterHub's own wait (http_timeout) cannot see the job: a server that dies while
        starting (e.g. out of memory) would keep the user waiting for nothing.
        """
        deadline = time.monotonic() + self.http_timeout
        while True:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(self.job_host, self.job_port), 1.0)
                writer.close()
                return
            except (OSError, asyncio.TimeoutError):
                pass
            job = watcher.job(self.job_id)
            if job is not None and watcher.reachable and job["state"] not in ACTIVE_STATES:
                raise QueueError(f"Job {self.job_id} ended while its server was starting: {end_text(job)}. "
                                 f"{self._output_tail(job)}")
            if time.monotonic() > deadline:
                await self._cancel_quietly()
                raise QueueError(f"The server of job {self.job_id} on {self.job_node} reported "
                                 f"{self.job_host}:{self.job_port} but is not listening after "
                                 f"{duration(self.http_timeout)}. {self._output_tail(job)} The job was cancelled.")
            await asyncio.sleep(0.25)

    async def _reservation_start(self, job):
        """Start of the reservation a job waits for (reason Reservation), looked up once."""
        name = job.get("reservation")
        if job.get("reason") != "Reservation" or not name:
            return None
        if name not in self._resv_starts:
            try:
                resv = await call(self.controller_address, "reservation", name)
                self._resv_starts[name] = resv.get("start_time")
            except ClientError:
                return None
        return self._resv_starts[name]

    def address_reported(self, job_id, host, port, node=""):
        """Called by the hub API when the job's wrapper reports its address."""
        if not self.job_id or (job_id and job_id != self.job_id):
            return False
        self.job_host, self.job_port = host, int(port)
        if node:
            self.job_node = node
        if self._reported is None:
            self._reported = asyncio.Event()
        self._reported.set()
        return True

    def _output_tail(self, job, lines=15):
        return jobops.output_tail((job or {}).get("stdout_path") or "", lines)

    async def _cancel_quietly(self):
        try:
            await call(self.controller_address, "cancel", [self.job_id])
        except ClientError as e:
            self.log.warning("could not cancel job %s: %s", self.job_id, e)

    # -- restart recovery -----------------------------------------------------------------------------
    async def get_url(self):
        """After a hub restart: wait for a still-starting server to report, then its URL."""
        if self.job_id and not self.job_port:
            watcher = self.watcher
            if self._reported is None:
                self._reported = asyncio.Event()
            deadline = time.monotonic() + self.start_timeout
            while not self._reported.is_set() and time.monotonic() < deadline:
                job = watcher.job(self.job_id)
                if job is not None and job["state"] not in ACTIVE_STATES:
                    break
                try:
                    await asyncio.wait_for(self._reported.wait(), 2.0)
                except asyncio.TimeoutError:
                    pass
            if self.job_port:
                self._save_state_now()
        if self.job_port:
            return f"http://{self.job_host}:{self.job_port}{self.server.base_url if self.server else '/'}"
        return await maybe_future(super().get_url())

    # -- poll / stop -------------------------------------------------------------------------------------
    async def poll(self):
        if not self.job_id:
            # a start still checking options or submitting is "running" for JupyterHub
            return None if (self._spawn_pending or self._start_pending) else 0
        watcher = self.watcher
        job = watcher.job(self.job_id)
        if job is None:
            await watcher.refresh()
            job = watcher.job(self.job_id)
        if job is None:
            # never answered (controller unreachable since before the first query): keep it
            return None
        if job["state"] in ACTIVE_STATES:
            return None
        self._end_message = (f"Your last server (job {self.job_id}) ended at {clock(time.time())}: "
                             f"{end_text(job)}.")
        self.log.warning("%s: %s", self._log_name, self._end_message)
        return 0 if job["state"] in FINAL_OK else (job.get("exit_code") or 1)

    async def stop(self, now=False):
        if not self.job_id:
            return
        job_id = self.job_id
        deadline = time.monotonic() + self.stop_timeout
        while True:
            try:
                await call(self.controller_address, "cancel", [job_id])
                break
            except ControllerUnreachable as e:
                if time.monotonic() > deadline:
                    raise QueueError(f"Could not cancel job {job_id}: controller unreachable ({e}).") from None
                await asyncio.sleep(1.0)
        watcher = self.watcher
        while time.monotonic() < deadline:
            await watcher.refresh()
            job = watcher.job(job_id)
            if job is not None and job["state"] not in ACTIVE_STATES:
                return
            await asyncio.sleep(0.2)
        self.log.warning("%s: job %s still in the queue %d s after cancel", self._log_name, job_id,
                         self.stop_timeout)

    # -- admin view and time extension (spawner/jobops.py) -----------------------------------------------
    def describe_job(self):
        """Job id, node, state and time left, for the admin view."""
        job = self.watcher.job(self.job_id) if self.job_id else None
        return jobops.describe(self.job_id, self.job_node, self.job_host, self.job_port, job)

    async def extend_time(self, minutes):
        """Add ``minutes`` to the running job's limit within its partition's MaxTime.

        Returns (ok, message, new_limit_minutes).
        """
        return await jobops.extend_time(self.controller_address, self.job_id, minutes)


async def _apply_user_options(spawner, user_options):
    """JupyterHub's hook before start: check the options (HTTP 400 with the reason if bad)."""
    spawner._request = await spawner.resolve_request()


async def _options_from_form(form_data, spawner):
    """Form -> user_options, checked against live limits so the form can show the error."""
    user_options = opts.form_to_options(form_data)
    spawner.user_options = user_options
    await spawner.resolve_request()
    return user_options
