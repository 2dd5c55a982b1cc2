"""The controller's HTTP API (tornado): routing, identity, errors, JSON.

Handlers are thin: parse, identify the caller, call one :class:`Cluster`
method, answer JSON. Errors map once: a :class:`BatchError` becomes its HTTP
status with ``{"error": {"code", "message", "details"}}``; malformed JSON is a
400; anything unexpected is a 500 that changes no state (mutations journal only
after validation succeeded).
"""

import json
import logging
import os
import pwd
import socket
import time

import tornado.web

from .. import __version__
from ..errors import AuthenticationFailed, BatchError, InvalidRequest, NotFound, PermissionDenied
from ..api.openapi import openapi_document
from ..model import ACTIVE_STATES
from ..auth import jwt
from .identity import Identity, identity_for_uid, peer_credentials
from .nodes import check_node_events

log = logging.getLogger("batchhub.api")
audit = logging.getLogger("batchhub.audit")

ID_RE = r"([0-9][0-9_\[\]%,\-]*)"


class BaseHandler(tornado.web.RequestHandler):
    """Identity from the socket's peer credentials; JSON in and out."""

    def initialize(self, controller, route="(unmatched)"):
        self.controller = controller
        self.cluster = controller.cluster
        self.route = route  # the route pattern: /metrics labels latency by it

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json")

    #: endpoints a node credential may call (node daemons only need these)
    node_credential_ok = False

    def prepare(self):
        # TCP has no kernel-verified identity: every request there (reads too) needs a valid token
        sock = getattr(self.request.connection.stream, "socket", None)
        if sock is None or sock.family != socket.AF_UNIX:
            if self.caller.nodes is not None and not self.node_credential_ok:
                raise PermissionDenied("Access/permission denied: a node credential is for node daemons only")

    @property
    def caller(self):
        """Who is calling: SO_PEERCRED on the Unix socket; a verified bearer JWT on TCP."""
        ident = getattr(self, "_caller", None)
        if ident is None:
            stream = self.request.connection.stream
            creds = peer_credentials(getattr(stream, "socket", None))
            if creds is None:
                ident = self._token_identity()
            else:
                _, uid, gid = creds
                ident = identity_for_uid(uid, gid)
                authority = getattr(self.controller, "authority", None)
                if not ident.admin and authority is not None and authority.is_admin(uid, ident.user):
                    ident = Identity(uid=ident.uid, gid=ident.gid, user=ident.user, admin=True, node=ident.node)
            if not ident.admin and self.cluster.assoc.has_admin_level(ident.user):
                # sacctmgr's AdminLevel=Operator/Administrator makes a user a Slurm administrator
                ident = Identity(uid=ident.uid, gid=ident.gid, user=ident.user, admin=True, node=ident.node)
            self._caller = ident
        return ident

    def _token_identity(self):
        """TCP: the identity is the ``sun`` of a valid ``Authorization: Bearer <jwt>``."""
        self._transport = "tcp"
        authority = getattr(self.controller, "authority", None)
        try:
            token = jwt.bearer_token(self.request.headers.get("Authorization"))
            if token is None:
                raise jwt.TokenError("missing", "missing token (send 'Authorization: Bearer <token>'; "
                                                "get one with 'scontrol token')")
            if authority is None:
                raise jwt.TokenError("no_key", "token authentication is not enabled on this controller")
            claims = authority.verify(token)
        except jwt.TokenError as e:
            raise AuthenticationFailed(f"Authentication failure: {e.message}", reason=e.reason) from None
        user = claims["sun"]
        if "node" in claims:
            return self._node_identity(claims)
        jid = claims.get("jid")
        if jid is not None:
            # a job's token (see Authority.mint_job_token): valid while its job lives
            job = self.cluster.jobs.get(jid) if isinstance(jid, int) else None
            if job is None or job["state"] not in ACTIVE_STATES or job.get("user") != user:
                raise AuthenticationFailed(f"Authentication failure: token of job {jid}, which has ended",
                                           reason="job_ended")
        try:
            pw = pwd.getpwnam(user)
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            raise AuthenticationFailed(f"Authentication failure: token user {user!r} does not exist on this host",
                                       reason="unknown_user") from None
        admin = authority.is_admin(pw.pw_uid, user)
        # a user token never makes a node daemon, an admin's neither: nodes hold node credentials
        return Identity(uid=pw.pw_uid, gid=pw.pw_gid, user=user, admin=admin, node=False)

    def _node_identity(self, claims):
        """A node credential (``node`` claim, see :func:`jwt.make_node_token`): a node daemon, no user."""
        from .. import hostlist
        expr = claims["node"]
        try:
            names = frozenset(hostlist.expand(expr)) if isinstance(expr, str) and expr.strip() else None
        except Exception:  # noqa: BLE001 -- any unparsable expression is a malformed token
            names = None
        if not names:
            raise AuthenticationFailed("Authentication failure: malformed token: bad 'node' claim",
                                       reason="malformed")
        return Identity(uid=-1, gid=-1, user=claims["sun"], admin=False, node=True, nodes=names)

    def who(self):
        """The caller as the audit log names it (never raises)."""
        transport = getattr(self, "_transport", "unix")
        peer = self.request.remote_ip if transport == "tcp" else "socket"
        ident = getattr(self, "_caller", None)
        if ident is not None:
            return f"user={ident.user} uid={ident.uid} via={transport}:{peer}"
        if transport == "tcp":
            header = self.request.headers.get("Authorization") or ""
            claimed = jwt.unverified_claims(header.partition(" ")[2].strip()).get("sun")
            claimed = f" claimed_user={claimed!r}" if claimed else ""
            return f"user=(unauthenticated){claimed} via=tcp:{peer}"
        return f"user=(unknown) via={transport}:{peer}"

    def body(self):
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidRequest(f"malformed JSON body: {e}") from None
        except RecursionError:
            raise InvalidRequest("malformed JSON body: nested too deeply") from None
        if not isinstance(data, dict):
            raise InvalidRequest("request body must be a JSON object")
        return data

    def list_arg(self, name):
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return None
        return [v for v in value.split(",") if v]

    def reply(self, obj, status=200):
        self.set_status(status)
        self.finish(json.dumps(obj, separators=(",", ":")))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, BatchError):
            status, code, message, details = exc.status, exc.code, exc.message, exc.details
        elif isinstance(exc, tornado.web.HTTPError):
            status, code, message, details = exc.status_code, "http_error", exc.log_message or self._reason, {}
        else:
            status, code, message, details = 500, "internal_error", "internal error (see controller log)", {}
        self.set_status(status)
        if status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="batchhub"')  # RFC 6750
        self.finish(json.dumps({"error": {"code": code, "message": message, "details": details}}))

    def log_exception(self, typ, value, tb):
        if isinstance(value, (AuthenticationFailed, PermissionDenied)):
            status = 401 if isinstance(value, AuthenticationFailed) else 403
            reason = value.details.get("reason")
            audit.warning("%d denied %s %s %s: %s%s", status, self.who(), self.request.method, self.request.path,
                          value, f" [reason={reason}]" if reason else "")
        elif isinstance(value, BatchError):
            log.debug("%s %s: %s", self.request.method, self.request.uri, value)
        else:
            super().log_exception(typ, value, tb)


class PingHandler(BaseHandler):
    node_credential_ok = True

    def get(self):
        c = self.caller
        self.reply({"version": __version__, "cluster_name": self.cluster.cluster_name, "time": time.time(),
                    "user": c.user, "uid": c.uid, "admin": c.admin, "epoch": self.cluster.epoch})


class JobsHandler(BaseHandler):
    def get(self):
        states = self.list_arg("states")
        if states:
            states = [_long_state(s) for s in states]
        jobs = self.cluster.query(ids=self.list_arg("ids"), users=self.list_arg("users"),
                                  partitions=self.list_arg("partitions"), states=states,
                                  names=self.list_arg("names"),
                                  include_finished=self.get_query_argument("all", "") == "1")
        if self.get_query_argument("hide_hidden", "") == "1":
            hidden = {n for n, p in self.cluster.partitions.items() if p.get("hidden")}
            if hidden:
                jobs = [j for j in jobs if j["partition"] not in hidden]
        fields = self.list_arg("fields")
        if fields:
            # compact rows: what a poller like squeue needs, without 70 keys per job
            rows = [[j.get(f) for f in fields] for j in jobs]
            self.reply({"fields": fields, "rows": rows})
        else:
            job_json = self.cluster.job_json
            self.set_status(200)
            self.finish('{"jobs":[' + ",".join(job_json(j) for j in jobs) + "]}")

    def post(self):
        sub = self.body()
        job_id = self.cluster.submit(sub, self.caller)
        self.reply({"job_id": job_id, "test_only": job_id is None}, status=201)


class JobBatchHandler(BaseHandler):
    """POST /v1/jobs/batch {"jobs": [submission, ...]}: many submissions, one commit."""

    MAX_JOBS = 10000

    def post(self):
        subs = self.body().get("jobs")
        if not isinstance(subs, list) or not subs or not all(isinstance(s, dict) for s in subs):
            raise InvalidRequest("field 'jobs' must be a non-empty list of submissions")
        if len(subs) > self.MAX_JOBS:
            raise InvalidRequest(f"at most {self.MAX_JOBS} submissions per request, got {len(subs)}")
        self.reply({"results": self.cluster.submit_many(subs, self.caller)}, status=201)


class JobHandler(BaseHandler):
    def get(self, id_text):
        jobs = self.cluster.find(id_text)
        if not jobs:
            raise NotFound("Invalid job id specified")
        self.reply({"job": self.cluster.public(jobs[0]), "jobs": [self.cluster.public(j) for j in jobs]})


class CancelHandler(BaseHandler):
    def post(self):
        b = self.body()
        ids = b.get("ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, (str, int)) for i in ids):
            raise InvalidRequest("field 'ids' must be a list of job ids")
        for key in ("users", "names", "partitions", "states"):
            if b.get(key) is not None and not isinstance(b[key], list):
                raise InvalidRequest(f"field {key!r} must be a list")
        signal = b.get("signal")
        if signal is not None and not isinstance(signal, (str, int)):
            raise InvalidRequest("field 'signal' must be a signal name or number")
        states = [_long_state(s) for s in b.get("states") or []] or None
        result = self.cluster.cancel([str(i) for i in ids], self.caller, signal=signal,
                                     batch_only=bool(b.get("batch_only")), full=bool(b.get("full")),
                                     users=b.get("users"), names=b.get("names"),
                                     partitions=b.get("partitions"), states=states)
        if result["denied"]:
            audit.warning("403 denied %s POST %s: cancel of jobs %s: Access/permission denied",
                          self.who(), self.request.path, ",".join(str(i) for i in result["denied"]))
        self.reply(result)


class JobActionHandler(BaseHandler):
    def post(self, id_text, action):
        if action == "update":
            fields = self.body()
            self.reply({"updated": self.cluster.update_job(id_text, fields, self.caller)})
        else:
            self.reply({"jobs": self.cluster.job_action(id_text, action, self.caller)})


class StepsHandler(BaseHandler):
    def post(self, id_text):
        self.reply(self.controller.cluster.steps.create(id_text, self.body(), self.caller), status=201)


class StepHandler(BaseHandler):
    def get(self, id_text, step_id):
        self.reply(self.cluster.steps.get(id_text, step_id, self.caller))


class StepCancelHandler(BaseHandler):
    def post(self, id_text, step_id):
        signal = self.body().get("signal")
        if signal is not None and not isinstance(signal, (str, int)):
            raise InvalidRequest("field 'signal' must be a signal name or number")
        self.reply({"step": self.cluster.steps.cancel(id_text, step_id, self.caller,
                                                      signal=None if signal is None else str(signal))})


class ExtensionHandler(BaseHandler):
    def get(self, id_text):
        try:
            minutes = int(self.get_query_argument("minutes", ""))
        except ValueError:
            raise InvalidRequest("query argument 'minutes' must be an integer") from None
        self.reply(self.cluster.extension_check(id_text, minutes, self.caller))


class CompleteHandler(BaseHandler):
    def post(self, id_text):
        code = self.body().get("exit_code", 0)
        if not isinstance(code, int):
            raise InvalidRequest("field 'exit_code' must be an integer")
        job = self.cluster.complete_job(id_text, code, self.caller)
        self.reply({"job_id": job["job_id"], "state": job["state"]})


class AccountingHandler(BaseHandler):
    async def get(self):
        ids = self.list_arg("ids") or []
        job_ids, array_ids = [], []
        for i in ids:
            i = i.split(".")[0]
            if "_" in i:
                base, _, idx = i.partition("_")
                if (base.isascii() and base.isdigit()):
                    array_ids.append(int(base))
            elif (i.isascii() and i.isdigit()):
                job_ids.append(int(i))
                array_ids.append(int(i))
            else:
                raise InvalidRequest(f"Invalid job id: {i}")

        def num(name):
            v = self.get_query_argument(name, None)
            if v in (None, ""):
                return None
            try:
                return float(v)
            except ValueError:
                raise InvalidRequest(f"query argument {name!r} must be a number (epoch seconds)") from None
        states = self.list_arg("states")
        rows = await self.controller.accounting.query_jobs(
            job_ids=job_ids or None, array_ids=array_ids or None, users=self.list_arg("users"),
            start=num("start"), end=num("end"), states=[_long_state(s) for s in states] if states else None,
            partitions=self.list_arg("partitions"), names=self.list_arg("names"))
        if ids:
            wanted_tasks = {i for i in ids if "_" in i}
            if wanted_tasks:
                rows = [r for r in rows if r["job_id"] in job_ids or r.get("array_job_id") in job_ids
                        or f"{r.get('array_job_id')}_{r.get('array_task_id')}" in wanted_tasks]
        # the in-memory record is fresher for live jobs (estimates, steps)
        live = self.cluster.jobs
        rows = [self.cluster.public(live.get(r["job_id"], r)) for r in rows]
        self.reply({"jobs": rows})


_KINDS = {"clusters": "cluster", "accounts": "account", "users": "user", "qos": "qos",
          "associations": "association"}


class AccountingRecordsHandler(BaseHandler):
    """sacctmgr show: clusters, accounts, users, QOS and associations (readable by everyone)."""

    def get(self, kind):
        where = {k: self.list_arg(k) for k in ("names", "accounts", "users", "partitions")}
        self.reply({"items": self.cluster.assoc.list(_KINDS[kind], where)})


class AccountingChangeHandler(BaseHandler):
    """sacctmgr add/modify/delete (admins only); ``dry_run`` validates without changing."""

    def post(self, kind, action):
        from ..model import ACTIVE_STATES
        jobs = self.cluster.jobs
        self.reply(self.cluster.assoc.change(
            _KINDS[kind], action, self.body(), self.caller,
            active_jobs=lambda: [j for j in jobs.values() if j["state"] in ACTIVE_STATES]))
        if not self.body().get("dry_run"):
            # new shares or QOS priorities count at once, not at the next PriorityCalcPeriod
            self.cluster.priority.associations_changed(self.cluster.now())
            self.cluster.request_schedule()  # a raised limit may let jobs start


class AssociationTreeHandler(BaseHandler):
    """The association tree and QOS priorities (fairshare, sshare), and what is enforced."""

    def get(self):
        store = self.cluster.assoc
        self.reply({"associations": store.tree(), "qos": store.qos_priorities(),
                    "enforce": sorted(store.enforce)})


class NodesHandler(BaseHandler):
    def get(self):
        names = self.list_arg("names")
        nodes = self.cluster.nodes
        if names:
            from .. import hostlist
            wanted = []
            for expr in names:
                try:
                    wanted.extend(hostlist.expand(expr))
                except ValueError as e:
                    raise InvalidRequest(f"Invalid node name specified: {e}") from None
            missing = [n for n in wanted if n not in nodes]
            if missing:
                raise NotFound(f"Node {missing[0]} not found")
            records = [nodes[n] for n in wanted]
        else:
            records = list(nodes.values())
        reserved = self.cluster.reservations.node_flags()
        out = []
        for r in records:
            d = r.to_dict()
            if r.name in reserved:  # in an active reservation: sinfo's resv / maint
                d["state_flags"] = d["state_flags"] + [reserved[r.name]]
            out.append(d)
        self.reply({"nodes": out})


class NodeUpdateHandler(BaseHandler):
    def post(self):
        if not self.caller.admin:  # before looking at the body: a non-admin learns nothing from it
            raise PermissionDenied("Access/permission denied: only an administrator may change node state")
        b = self.body()
        names = b.get("names")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise InvalidRequest("field 'names' must be a non-empty list of node names")
        for key in ("state", "reason"):
            if b.get(key) is not None and not isinstance(b[key], str):
                raise InvalidRequest(f"field {key!r} must be a string")
        self.reply({"nodes": self.cluster.update_nodes(names, b.get("state"), b.get("reason"), self.caller)})


class PartitionsHandler(BaseHandler):
    def get(self):
        from .. import hostlist
        out = []
        for p in self.cluster.partitions.values():
            d = dict(p)
            d["nodelist"] = hostlist.compress(p["nodes"]) if p["nodes"] else ""
            d["total_cpus"] = sum(self.cluster.nodes[n].cpus for n in p["nodes"])
            out.append(d)
        self.reply({"partitions": out})


class PriorityHandler(BaseHandler):
    """sprio: each pending job's priority factors (computed now), and the weights."""

    def get(self):
        cluster = self.cluster
        ids = self.list_arg("ids")
        if ids:
            seen, jobs = set(), []
            for id_text in ids:
                for j in cluster.find(id_text):
                    if j["job_id"] not in seen:
                        seen.add(j["job_id"])
                        jobs.append(j)
        else:
            jobs = list(cluster.pending.values())
        users, partitions = self.list_arg("users"), self.list_arg("partitions")
        jobs = [j for j in jobs if (not users or j["user"] in users)
                and (not partitions or j["partition"] in partitions)]
        jobs.sort(key=lambda j: j["job_id"])
        service = cluster.priority
        self.reply({"priority_type": service.type, "weights": service.weights_dict(),
                    "jobs": service.report(jobs, cluster.now())})


class SharesHandler(BaseHandler):
    """sshare: the association tree with shares, decayed usage and classic fairshare."""

    def get(self):
        service = self.cluster.priority
        now = self.cluster.now()
        self.reply({"priority_type": service.type, "time": now, "rows": service.fairshare_rows(now)})
class ReservationsHandler(BaseHandler):
    """``scontrol show reservation`` (GET, anyone) and ``scontrol create reservation`` (POST, admins)."""

    def get(self):
        book = self.cluster.reservations
        names = self.list_arg("names")
        records = book.list() if not names else [book.get(n) for n in names]
        self.reply({"reservations": [book.public(r) for r in records]})

    def post(self):
        book = self.cluster.reservations
        self.reply({"reservation": book.public(book.create(self.body(), self.caller))}, status=201)


class ReservationHandler(BaseHandler):
    """One reservation: GET it, POST changes to it (``scontrol update``), DELETE it."""

    def get(self, name):
        book = self.cluster.reservations
        self.reply({"reservation": book.public(book.get(name))})

    def post(self, name):
        book = self.cluster.reservations
        self.reply({"reservation": book.public(book.update(name, self.body(), self.caller))})

    def delete(self, name):
        self.cluster.reservations.delete(name, self.caller)
        self.reply({"deleted": name})


class ConfigHandler(BaseHandler):
    def get(self):
        self.reply({"config": self.controller.config_dict()})


class TokensHandler(BaseHandler):
    """``scontrol token``: mint an HS256 JWT; users for themselves, admins for anyone."""

    def post(self):
        b = self.body()
        caller = self.caller
        username = b.get("username")
        if username in (None, ""):
            username = caller.user
        if not isinstance(username, str):
            raise InvalidRequest("field 'username' must be a user name")
        lifespan = b.get("lifespan")
        if lifespan is None:
            lifespan = jwt.DEFAULT_LIFESPAN
        if isinstance(lifespan, bool) or not isinstance(lifespan, int) or lifespan <= 0:
            raise InvalidRequest("Invalid lifespan: must be a positive number of seconds")
        if username != caller.user and not caller.admin:
            raise PermissionDenied(f"Access/permission denied: only admins may create tokens for other users "
                                   f"(asked for {username!r})")
        authority = getattr(self.controller, "authority", None)
        if authority is not None and not caller.admin:
            if authority.disable_token_creation:
                raise PermissionDenied("Access/permission denied: token creation is disabled for users "
                                       "(AuthAltParameters=disable_token_creation)")
            if authority.max_token_lifespan and lifespan > authority.max_token_lifespan:
                raise InvalidRequest(f"Invalid lifespan: {lifespan} s exceeds "
                                     f"max_token_lifespan={authority.max_token_lifespan}")
        try:
            pwd.getpwnam(username)
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            raise InvalidRequest(f"Invalid user: {username}") from None
        try:
            if authority is None:
                raise jwt.KeyFileError("token authentication is not enabled on this controller")
            token = authority.mint(username, lifespan)
        except jwt.KeyFileError as e:
            raise BatchError(f"Token creation failed: {e}") from None
        audit.info("token issued for user=%s lifespan=%ds to %s", username, lifespan, self.who())
        self.reply({"token": token, "username": username, "lifespan": lifespan,
                    "expires": int(time.time()) + lifespan}, status=201)


class ShutdownHandler(BaseHandler):
    def post(self):
        if not self.caller.admin:
            raise PermissionDenied("Access/permission denied")
        self.reply({"ok": True})
        self.controller.request_shutdown()


# -- node daemon endpoints ---------------------------------------------------------------
class NodeDaemonHandler(BaseHandler):
    node_credential_ok = True

    def check_node(self, name):
        if not self.caller.node:
            raise PermissionDenied("node endpoints are for node daemons only")
        if not self.caller.speaks_for(name):
            raise PermissionDenied(f"Access/permission denied: this node credential is not valid for node {name}")


class NodeRegisterHandler(NodeDaemonHandler):
    def post(self, name):
        self.check_node(name)
        info = self.body()
        # the controller, not the daemon, says how the daemon reached it (jobs there need a token)
        info["via_tcp"] = getattr(self, "_transport", "unix") == "tcp"
        self.reply(self.cluster.node_register(name, info))


class NodeCommandsHandler(NodeDaemonHandler):
    async def get(self, name):
        self.check_node(name)
        epoch = self.get_query_argument("epoch", "")
        node = self.cluster.node_seen(name)
        if node is None:
            raise NotFound(f"Node {name} not found")
        if epoch != self.cluster.epoch or not node.registered:
            self.reply({"epoch": self.cluster.epoch, "reregister": True, "commands": []})
            return
        try:
            after = int(self.get_query_argument("after", "0"))
            wait = min(float(self.get_query_argument("wait", "0")), 60.0, poll_wait_cap(self.cluster))
        except ValueError:
            raise InvalidRequest("after and wait must be numbers") from None
        self._node = node
        # a held poll proves nothing (a cut link leaves it open): it ends within poll_wait_cap(),
        # and a node is seen again only by polling again
        commands = await node.wait_commands(after, wait)
        if self.request.connection.stream.closed():
            return
        self.cluster.node_seen(name)
        self.reply({"epoch": self.cluster.epoch, "commands": commands})

    def on_connection_close(self):
        # the daemon went away mid-poll (killed, link cut): wake the waiter so the
        # poll ends and the node's liveness clock starts running
        node = getattr(self, "_node", None)
        if node is not None and node.waiter is not None:
            node.waiter.set()


class NodeEventsHandler(NodeDaemonHandler):
    def post(self, name):
        self.check_node(name)
        events = self.body().get("events", [])
        try:
            check_node_events(events)
        except ValueError as e:
            raise InvalidRequest(str(e)) from None
        self.cluster.node_seen(name)
        for ev in events:
            self.cluster.node_event(name, ev)
        self.reply({"ok": True})


class MetricsHandler(BaseHandler):
    """Prometheus text format; who may scrape is documented in controller/metrics.py."""

    def prepare(self):
        sock = getattr(self.request.connection.stream, "socket", None)
        if sock is not None and sock.family == socket.AF_UNIX:
            return
        if self.controller.metrics_open:
            return  # like Slurm's openmetrics endpoints: aggregates only, no token
        super().prepare()

    def get(self, group=None):
        from .metrics import GROUPS, render
        if group is not None and group not in GROUPS:
            raise NotFound(f"no such metrics group: {group} (one of {', '.join(GROUPS)})")
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(render(self.controller, group))


class OpenAPIHandler(BaseHandler):
    def get(self):
        self.reply(openapi_document())


def poll_wait_cap(cluster):
    """How long a node's long poll may be held: a third of SlurmdTimeout (at least 1 s).

    Every answered poll is a sign of life, so a node that polls keeps being seen
    well within SlurmdTimeout; a poll held on a connection whose peer vanished
    without a FIN (a cut link) ends soon enough for the node to be declared
    NOT_RESPONDING in time.
    """
    return max(1.0, cluster.slurmd_timeout / 3.0)


def _long_state(s):
    from ..model import JOB_STATE_CODES
    s = s.upper()
    if s == "ALL":
        return "ALL"
    for long, short in JOB_STATE_CODES.items():
        if s == short:
            return long
    if s == "CANCELED":
        return "CANCELLED"
    return s


def make_app(controller):
    args = {"controller": controller}
    routes = [
        (r"/openapi.json", OpenAPIHandler),
        (r"/v1/openapi.json", OpenAPIHandler),
        (r"/v1/ping", PingHandler),
        (r"/v1/jobs", JobsHandler),
        (r"/v1/jobs/cancel", CancelHandler),
        (r"/v1/jobs/batch", JobBatchHandler),
        (rf"/v1/jobs/{ID_RE}", JobHandler),
        (rf"/v1/jobs/{ID_RE}/(update|hold|uhold|release|requeue|requeuehold|suspend|resume|top)", JobActionHandler),
        (rf"/v1/jobs/{ID_RE}/steps", StepsHandler),
        (rf"/v1/jobs/{ID_RE}/steps/([0-9]+|batch)", StepHandler),
        (rf"/v1/jobs/{ID_RE}/steps/([0-9]+)/cancel", StepCancelHandler),
        (rf"/v1/jobs/{ID_RE}/complete", CompleteHandler),
        (rf"/v1/jobs/{ID_RE}/extension", ExtensionHandler),
        (r"/v1/accounting/jobs", AccountingHandler),
        (r"/v1/accounting/(clusters|accounts|users|qos|associations)", AccountingRecordsHandler),
        (r"/v1/accounting/(clusters|accounts|users|qos|associations)/(add|modify|delete)", AccountingChangeHandler),
        (r"/v1/associations", AssociationTreeHandler),
        (r"/v1/nodes", NodesHandler),
        (r"/v1/nodes/update", NodeUpdateHandler),
        (r"/v1/partitions", PartitionsHandler),
        (r"/v1/reservations", ReservationsHandler),
        (r"/v1/reservations/([^/]+)", ReservationHandler),
        (r"/v1/config", ConfigHandler),
        (r"/v1/priority", PriorityHandler),
        (r"/v1/shares", SharesHandler),
        (r"/v1/shutdown", ShutdownHandler),
        (r"/v1/tokens", TokensHandler),
        (r"/metrics", MetricsHandler),
        (r"/metrics/([a-z]+)", MetricsHandler),
        (r"/v1/noded/([A-Za-z0-9_.\-]+)/register", NodeRegisterHandler),
        (r"/v1/noded/([A-Za-z0-9_.\-]+)/commands", NodeCommandsHandler),
        (r"/v1/noded/([A-Za-z0-9_.\-]+)/events", NodeEventsHandler),
    ]
    return tornado.web.Application([(r, h, dict(args, route=r)) for r, h in routes],
                                   default_handler_class=NotFoundHandler,
                                   default_handler_args=args, log_function=_log_request,
                                   debug=bool(os.environ.get("BATCHHUB_DEBUG")))


class NotFoundHandler(BaseHandler):
    def prepare(self):
        super().prepare()
        raise NotFound(f"no such endpoint: {self.request.method} {self.request.path}")


def _log_request(handler):
    controller = getattr(handler, "controller", None)
    if controller is not None:
        controller.request_times.observe((getattr(handler, "route", "(unmatched)"), handler.request.method),
                                         handler.request.request_time())
    if handler.get_status() >= 500:
        log.error("%d %s %s", handler.get_status(), handler.request.method, handler.request.uri)
