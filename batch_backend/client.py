"""The one Python client of the BatchHub controller API (stdlib only).

Every tool goes through this module: the Slurm-dialect CLI, the JupyterHub
spawner, the kernel magics and dashboards, the IPyParallel launchers and the
node daemons. It imports only the standard library so that ``squeue`` starts
in a few milliseconds (pollers call it every few seconds).

Transport: HTTP/1.1 with JSON bodies over the controller's Unix socket (the
socket's peer credentials identify the caller), or over TCP when the address
is ``host:port`` / ``http://host:port``. One connection is kept alive per
client object, so a loop of calls costs one request each, not one connect.

Errors are values: :class:`ControllerUnreachable` when no controller answers
(never to be confused with "job gone"), :class:`APIError` and its subclasses
for answers the controller gave.
"""

import os

from . import fastjson, http11

API_PREFIX = "/v1"

#: Where a system-wide controller (started as root) listens by default.
SYSTEM_SOCKET = "/run/batchhub/controller.sock"


class ClientError(Exception):
    """Base class of everything this client raises."""


class ControllerUnreachable(ClientError):
    """No controller answered: connection refused, socket missing, timeout.

    ``refused`` is true when a socket exists but nobody listens on it: a
    controller that was killed (a clean stop removes its socket) and is most
    likely being restarted.
    """

    refused = False


class APIError(ClientError):
    """The controller answered with an error status."""

    def __init__(self, status, message, code=None, details=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.details = details or {}


class InvalidRequest(APIError):
    """400: the request was malformed or asked for something invalid."""


class AuthenticationError(APIError):
    """401: the caller could not be identified."""


class PermissionDenied(APIError):
    """403: the caller may not do this (e.g. cancel another user's job)."""


class NotFound(APIError):
    """404: unknown job, node, partition..."""


_STATUS_ERRORS = {400: InvalidRequest, 401: AuthenticationError, 403: PermissionDenied, 404: NotFound}


def user_socket_path():
    """The per-user default socket (a controller started by a non-root user)."""
    base = os.environ.get("BATCHHUB_HOME") or os.path.join(os.path.expanduser("~"), ".batchhub")
    return os.path.join(base, "run", "controller.sock")


def default_address():
    """Pick the controller address.

    ``$BATCHHUB_SOCKET``; else ``$BATCHHUB_HOME/run/controller.sock``; else the
    system socket when a root-run controller exists; else the user's own.
    """
    env = os.environ.get("BATCHHUB_SOCKET")
    if env:
        return env
    if os.environ.get("BATCHHUB_HOME"):
        return user_socket_path()
    if os.path.exists(SYSTEM_SOCKET):
        return SYSTEM_SOCKET
    return user_socket_path()


def _quote_id(job_id):
    return http11.quote(str(job_id), safe="[]%,_-")


def _is_tcp(address):
    return address.startswith(("http://", "https://")) or (":" in address and "/" not in address)


is_tcp_address = _is_tcp


def tcp_host_port(address):
    """``host:port`` / ``http(s)://host:port[/...]`` -> (scheme, host, port)."""
    url = address if "://" in address else "http://" + address
    scheme, _, rest = url.partition("://")
    host, _, port = rest.split("/")[0].rpartition(":")
    return scheme, host.strip("[]"), int(port)


def local_address_for(address):
    """This host's address on the route to a TCP controller, or None (Unix socket, loopback, no route).

    It is the address other hosts of the cluster reach this one at: node
    daemons report it, and srun's I/O and PMI servers listen on it. Asking the
    kernel's routing (a connected UDP socket sends nothing) needs no config.
    """
    import socket
    if not address or not _is_tcp(address):
        return None
    try:
        _, host, port = tcp_host_port(address)
        info = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        with socket.socket(info[0], socket.SOCK_DGRAM) as s:
            s.connect(info[4])
            local = s.getsockname()[0]
    except (OSError, ValueError, IndexError):
        return None
    return None if local.startswith("127.") or local == "::1" else local


class Client:
    """A connection to the controller. Not thread-safe: use one per thread.

    ``address`` is a Unix socket path (default: :func:`default_address`) or
    ``host:port`` / ``http(s)://host:port`` for TCP. ``token`` is sent as a
    bearer token (TCP auth); it defaults to ``$BATCHHUB_TOKEN``.
    """

    def __init__(self, address=None, *, timeout=30.0, token=None):
        self.address = address or default_address()
        self.timeout = timeout
        self.token = token if token is not None else os.environ.get("BATCHHUB_TOKEN")
        self._conn = None

    # -- transport ---------------------------------------------------------
    def _connect(self):
        if _is_tcp(self.address):
            scheme, host, port = tcp_host_port(self.address)
            return http11.Connection((host, port), self.timeout, tls=(scheme == "https"))
        return http11.Connection(self.address, self.timeout)

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method, path, body=None, query=None, timeout=None):
        """Send one request and return the decoded JSON answer.

        A kept-alive connection the controller closed (it restarted) is
        replaced before sending. A failure after sending raises
        :class:`ControllerUnreachable`: the request may or may not have been
        applied, so only idempotent requests should be retried by callers
        (submissions carry a ``submit_token`` that makes them idempotent).
        """
        url = API_PREFIX + path
        if query:
            items = {}
            for k, v in query.items():
                if v is None or v == [] or v == "" or v is False:
                    continue
                if isinstance(v, (list, tuple)):
                    v = ",".join(str(x) for x in v)
                elif v is True:
                    v = "1"
                items[k] = v
            if items:
                url += "?" + http11.urlencode(items)
        data = None if body is None else fastjson.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if self._conn is not None and self._conn.stale():
            self.close()
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        conn.timeout = timeout if timeout is not None else self.timeout
        try:
            status, _, payload = conn.request(method, url, body=data, headers=headers)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            self.close()
            err = ControllerUnreachable(f"connect failure ({e.strerror or e})")
            err.refused = isinstance(e, ConnectionRefusedError)
            raise err from None
        except TimeoutError:
            self.close()
            raise ControllerUnreachable("Socket timed out on send/recv operation") from None
        except (OSError, ValueError) as e:
            self.close()
            raise ControllerUnreachable(f"connect failure ({getattr(e, 'strerror', None) or e})") from None
        finally:
            conn.timeout = self.timeout
        try:
            result = fastjson.loads(payload) if payload else {}
        except ValueError:
            raise APIError(status, f"invalid response from controller (HTTP {status})") from None
        if status >= 400:
            err = result.get("error", {}) if isinstance(result, dict) else {}
            message = err.get("message") or f"HTTP {status}"
            cls = _STATUS_ERRORS.get(status, APIError)
            raise cls(status, message, err.get("code"), err.get("details"))
        return result

    # -- jobs ----------------------------------------------------------------
    def ping(self):
        """Controller identity and version: {"version", "cluster_name", "time", "user", "uid"}."""
        return self.request("GET", "/ping")

    def submit(self, submission, *, retries=0, retry_delay=0.5, restart_wait=0.0):
        """Submit a job (a submission dict as built by sbatch). Returns {"job_id": N}.

        The submission gets a random ``submit_token`` (unless it has one): the
        controller answers a repeated token with the job it already created,
        so retrying after a lost answer can never create the job twice.
        ``retries`` re-sends on :class:`ControllerUnreachable`; besides,
        while the controller's socket refuses connections (it is being
        restarted) re-sending goes on for up to ``restart_wait`` seconds, as
        Slurm's clients wait up to MessageTimeout for slurmctld.
        """
        import time
        if not submission.get("submit_token"):
            submission = dict(submission, submit_token=os.urandom(16).hex())
        deadline = time.monotonic() + restart_wait
        attempt, restarting = 0, False
        while True:
            try:
                return self.request("POST", "/jobs", submission)
            except ControllerUnreachable as e:
                # a restart also has an instant without a socket file: still the same restart
                restarting = e.refused or restarting
                if restarting and time.monotonic() < deadline:
                    time.sleep(min(retry_delay, 0.1))
                    continue
                attempt += 1
                if attempt > retries:
                    raise
                time.sleep(retry_delay)

    def submit_many(self, submissions, *, retries=0, retry_delay=0.5):
        """Submit several jobs in one request and one journal commit.

        Returns one result per submission, in order: ``{"job_id": N}`` or
        ``{"error": {"code", "message"}}`` (a bad submission is refused alone).
        Each submission gets its own ``submit_token``, so a retried request
        never creates a job twice. At most 10,000 per call.
        """
        subs = [s if s.get("submit_token") else dict(s, submit_token=os.urandom(16).hex()) for s in submissions]
        for attempt in range(retries + 1):
            try:
                return self.request("POST", "/jobs/batch", {"jobs": subs})["results"]
            except ControllerUnreachable:
                if attempt == retries:
                    raise
                import time
                time.sleep(retry_delay)

    def jobs(self, *, ids=None, users=None, partitions=None, states=None, names=None,
             include_finished=False, fields=None, hide_hidden=False):
        """Jobs as squeue sees them (unfinished only unless include_finished).

        ``ids`` are strings as users type them: 'N', 'A' (all tasks of an
        array), 'A_i'. ``states`` are long or compact names, or 'all'.
        Unknown ids are simply absent from the answer. ``fields`` limits
        each job dict to those keys (much less to send and decode: pollers
        should name the fields they show). ``hide_hidden`` leaves out jobs
        of Hidden=YES partitions (what squeue shows without -a).
        """
        q = {"ids": ids, "users": users, "partitions": partitions, "states": states,
             "names": names, "all": include_finished or None, "fields": fields,
             "hide_hidden": hide_hidden or None}
        answer = self.request("GET", "/jobs", query=q)
        if "rows" in answer:  # asked for some fields: the controller sends compact rows
            names_ = answer["fields"]
            return [dict(zip(names_, row)) for row in answer["rows"]]
        return answer["jobs"]

    def job(self, job_id):
        """One job by id ('N' or 'A_i'), including recently finished ones; NotFound otherwise."""
        return self.request("GET", f"/jobs/{_quote_id(job_id)}")["job"]

    def cancel(self, ids=None, *, signal=None, batch_only=False, full=False, users=None,
               names=None, partitions=None, states=None):
        """Cancel (or signal) jobs by id and/or filters.

        Returns {"cancelled": [ids], "signalled": [ids], "not_found": [ids],
        "denied": [ids]}: an unknown or finished id is not an error (scancel
        returns 0 for them); a job of another user is listed in "denied".
        """
        body = {"ids": list(ids or []), "signal": signal, "batch_only": batch_only, "full": full,
                "users": users, "names": names, "partitions": partitions, "states": states}
        return self.request("POST", "/jobs/cancel", body)

    def update_job(self, job_id, **fields):
        """Change a job's TimeLimit, Partition, Name, ... (scontrol update job)."""
        return self.request("POST", f"/jobs/{_quote_id(job_id)}/update", fields)

    def job_action(self, job_id, action):
        """hold, uhold, release, requeue, requeuehold, suspend, resume, top."""
        return self.request("POST", f"/jobs/{_quote_id(job_id)}/{action}", {})

    def extension_check(self, job_id, minutes):
        """Would adding ``minutes`` to a running job's limit delay another job's planned start?

        Returns {"ok": bool, "reason": str, "delays": [{"job_id", "before", "after"}]}.
        """
        return self.request("GET", f"/jobs/{_quote_id(job_id)}/extension", query={"minutes": minutes})

    def accounting(self, *, ids=None, users=None, start=None, end=None, states=None,
                   partitions=None, names=None):
        """Job records for sacct: every job (finished ones too) with its steps."""
        q = {"ids": ids, "users": users, "start": start, "end": end, "states": states,
             "partitions": partitions, "names": names}
        return self.request("GET", "/accounting/jobs", query=q)["jobs"]

    # -- accounts, users, associations, QOS (sacctmgr) -------------------------
    def accounting_records(self, kind, **where):
        """Records of ``kind`` ('clusters', 'accounts', 'users', 'qos', 'associations'),
        filtered by ``names``/``accounts``/``users``/``partitions`` lists."""
        return self.request("GET", f"/accounting/{kind}", query=where)["items"]

    def accounts(self, names=None):
        return self.accounting_records("accounts", names=names)

    def users(self, names=None):
        return self.accounting_records("users", names=names)

    def qos(self, names=None):
        return self.accounting_records("qos", names=names)

    def clusters(self, names=None):
        return self.accounting_records("clusters", names=names)

    def associations(self, *, accounts=None, users=None, partitions=None):
        """Associations as sacctmgr shows them (inherited Max limits and QOS filled in)."""
        return self.accounting_records("associations", accounts=accounts, users=users, partitions=partitions)

    def association_tree(self):
        """{"associations": [{account, parent, user, shares, partition}], "qos": [{name, priority}], "enforce": [...]}."""
        return self.request("GET", "/associations")

    def change_accounting(self, kind, action, *, names=None, where=None, settings=None, dry_run=False):
        """sacctmgr add/modify/delete of ``kind`` (admins only). Returns {"changed", "associations"}."""
        body = {"names": names or [], "where": where or {}, "set": settings or {}, "dry_run": dry_run}
        return self.request("POST", f"/accounting/{kind}/{action}", body)

    # -- nodes, partitions, config --------------------------------------------
    def nodes(self, names=None):
        return self.request("GET", "/nodes", query={"names": names})["nodes"]

    def update_node(self, names, *, state=None, reason=None):
        """scontrol update NodeName=... State=DRAIN|RESUME|DOWN Reason=..."""
        return self.request("POST", "/nodes/update", {"names": names, "state": state, "reason": reason})

    def partitions(self):
        return self.request("GET", "/partitions")["partitions"]

    def config(self):
        return self.request("GET", "/config")["config"]

    def priority_factors(self, *, ids=None, users=None, partitions=None):
        """sprio: {"priority_type", "weights", "jobs": [per pending job factors, computed now]}."""
        return self.request("GET", "/priority", query={"ids": ids, "users": users, "partitions": partitions})

    def shares(self):
        """sshare: {"priority_type", "time", "rows": [associations in tree order with usage and fairshare]}."""
        return self.request("GET", "/shares")
    # -- advance reservations --------------------------------------------------
    def reservations(self, names=None):
        """Reservations (scontrol show reservation): dicts as in ``model.RESERVATION_FIELDS``."""
        return self.request("GET", "/reservations", query={"names": names})["reservations"]

    def reservation(self, name):
        """One reservation by name; NotFound ("Requested reservation is invalid") otherwise."""
        return self.request("GET", f"/reservations/{http11.quote(name, safe='')}")["reservation"]

    def create_reservation(self, **spec):
        """scontrol create reservation (admins). ``spec``: name, start_time, end_time or duration
        (minutes), nodes or node_cnt/core_cnt, partition, users/groups/accounts, flags...
        Returns the reservation as stored (its ``name`` is generated when not given)."""
        return self.request("POST", "/reservations", spec)["reservation"]

    def update_reservation(self, name, **spec):
        """scontrol update ReservationName=... (admins); list fields accept '+a'/'-a' edits."""
        return self.request("POST", f"/reservations/{http11.quote(name, safe='')}", spec)["reservation"]

    def delete_reservation(self, name):
        """scontrol delete ReservationName=... (admins); refused while jobs run in it."""
        return self.request("DELETE", f"/reservations/{http11.quote(name, safe='')}")

    def shutdown(self):
        """Ask the controller to exit (admin only)."""
        return self.request("POST", "/shutdown", {})
