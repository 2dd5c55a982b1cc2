"""The OpenAPI 3.1 document of the controller API, built from the wire model.

Generated from :mod:`batch_backend.model` and the submission field table so
the document cannot drift from what the controller actually accepts.
"""

from .. import __version__
from ..model import JOB_FIELDS, NODE_FIELDS, PARTITION_FIELDS, PRIORITY_FACTOR_FIELDS, RESERVATION_FIELDS, SHARE_FIELDS


def _schema_for(type_text):
    """``"integer|null"`` -> ``{"anyOf": [{"type": "integer"}, {"type": "null"}]}``; ``list[...]`` is an array."""
    def one(base):
        if base.startswith("list"):
            return {"type": "array"}
        if base.startswith("dict"):
            return {"type": "object"}
        return {"type": base}
    schemas = [one(part) for part in type_text.split("|")]
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def _object(fields):
    return {"type": "object",
            "properties": {k: dict(_schema_for(t), description=d) for k, (t, d) in fields.items()}}


def _submission_schema():
    from ..controller.jobs import SUBMISSION_FIELDS
    names = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}
    props = {}
    for key, types in SUBMISSION_FIELDS.items():
        kinds = [{"type": names[t]} if t is not type(None) else {"type": "null"} for t in types]
        props[key] = kinds[0] if len(kinds) == 1 else {"anyOf": kinds}
    return {"type": "object", "properties": props, "required": ["script"], "additionalProperties": False}


def _reservation_request_schema():
    listish = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    return {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string", "description": "ReservationName (default: <first account/user/group>_N)"},
        "start_time": {"type": "number", "description": "epoch seconds"},
        "end_time": {"type": "number", "description": "epoch seconds"},
        "duration": {"type": "integer", "description": "minutes; -1 = UNLIMITED"},
        "duration_delta": {"type": "integer", "description": "update only: minutes added (Duration+=)"},
        "nodes": {"type": "string", "description": "hostlist or ALL"},
        "node_cnt": {"type": "integer"}, "core_cnt": {"type": "integer"},
        "partition": {"type": "string"}, "features": {"type": "string"},
        "users": listish, "groups": listish, "accounts": listish,
        "flags": listish, "comment": {"type": "string"}, "licenses": {"type": "string"}}}

ACCOUNTING_CHANGE = {"type": "object", "properties": {
    "names": {"type": "array", "items": {"type": "string"}, "description": "records to add"},
    "where": {"type": "object", "description": "names, accounts, users, partitions (lists) selecting records"},
    "set": {"type": "object", "description": "settings: description, organization, parent, fairshare, qos, "
            "qos_add, qos_remove, default_qos, default_account, admin_level, accounts, partition, max_jobs, "
            "max_submit, max_wall (minutes), max_tres_per_job, grp_tres, grp_jobs, grp_submit, priority, "
            "max_jobs_pu, max_submit_pu, max_tres_pu, preempt, preempt_mode, flags, usage_factor; "
            "TRES as {'cpu': 4, 'mem': 2048, 'node': 1, 'gres/gpu': 1}; null clears"},
    "dry_run": {"type": "boolean", "description": "validate and report without changing anything"}}}

ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

#: Who may call an operation (``x-batchhub-access``); the controller enforces it (api.py, cluster.py).
ACCESS = {
    "any": "any authenticated caller: users, and node daemons with their node credential",
    "user": "any authenticated user",
    "owner": "the job's owner, or an operator/admin",
    "admin": "operators and admins only (root, SlurmUser, AdminLevel, token admins)",
    "node": "node daemons only (root on the Unix socket; over TCP a node credential: a bearer token whose "
            "node claim names this node, from 'batchhub node-token')",
}

BEARER = {
    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
    "description": "Over TCP (BatchHubTCPAddress) every request, reads included, needs "
                   "'Authorization: Bearer <token>': an HS256 JWT with claims sun (user name), iat and exp, "
                   "signed with the cluster key (state/jwt_hs256.key, readable by the service account only), "
                   "as Slurm's auth/jwt. Get one with 'scontrol token [lifespan=SECONDS] [username=NAME]' or "
                   "POST /v1/tokens; a missing, malformed, forged, expired or wrong-key token is a 401 with "
                   "WWW-Authenticate: Bearer, and an audit log line. Node daemons on other hosts send a node "
                   "credential the same way (a token with a node claim: node endpoints only, 403 elsewhere). "
                   "On the Unix socket no token is sent: the caller is the kernel-verified peer uid of the "
                   "connection (SO_PEERCRED).",
}
SECURITY = [{"bearerAuth": []}]


def _op(summary, response_schema=None, body=None, params=(), status="200", access="user"):
    op = {"summary": summary,
          "description": f"Access: {ACCESS[access]}.",
          "security": SECURITY,
          "x-batchhub-access": access,
          "responses": {
              status: {"description": "success",
                       "content": {"application/json": {"schema": response_schema or {"type": "object"}}}},
              "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR, "409": ERROR}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = [{"name": p, "in": "query", "required": False, "schema": {"type": "string"}}
                            for p in params]
    return op


def _with(op, parameters):
    return dict(op, parameters=parameters + op.get("parameters", []))


def openapi_document():
    job_ref = {"$ref": "#/components/schemas/Job"}
    resv_ref = {"$ref": "#/components/schemas/Reservation"}
    resv_param = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    id_param = [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "N, A (array) or A_i"}]
    step_param = [{"name": "step_id", "in": "path", "required": True, "schema": {"type": "string"},
                   "description": "step number (or 'batch' for GET)"}]
    node_param = [{"name": "node", "in": "path", "required": True, "schema": {"type": "string"},
                   "description": "node name"}]
    paths = {
        "/v1/ping": {"get": _op("Controller identity, version and the caller's identity", access="any")},
        "/v1/jobs": {
            "get": _op("List jobs (squeue)", {"type": "object", "properties": {"jobs": {"type": "array", "items": job_ref}}},
                       params=("ids", "users", "partitions", "states", "names", "all", "fields")),
            "post": _op("Submit a batch job (sbatch); submitting as another user is for admins",
                        {"type": "object", "properties": {"job_id": {"type": "integer"}}},
                        body={"$ref": "#/components/schemas/Submission"}, status="201"),
        },
        "/v1/jobs/batch": {"post": _op(
            "Submit up to 10,000 jobs in one request and one commit; one result per submission, in order",
            {"type": "object", "properties": {"results": {"type": "array", "items": {"type": "object", "properties": {
                "job_id": {"type": "integer"}, "error": {"type": "object"}}}}}},
            body={"type": "object", "required": ["jobs"], "properties": {
                "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Submission"}}}}, status="201")},
        "/v1/jobs/cancel": {"post": _op("Cancel or signal jobs (scancel); others' jobs are reported as denied",
                                        body={"type": "object", "properties": {
            "ids": {"type": "array", "items": {"type": "string"}}, "signal": {"type": "string"},
            "batch_only": {"type": "boolean"}, "full": {"type": "boolean"},
            "users": {"type": "array", "items": {"type": "string"}},
            "names": {"type": "array", "items": {"type": "string"}},
            "partitions": {"type": "array", "items": {"type": "string"}},
            "states": {"type": "array", "items": {"type": "string"}}}}, access="owner")},
        "/v1/jobs/{job_id}": {"get": _with(_op("One job (scontrol show job)",
                                               {"type": "object", "properties": {"job": job_ref}}), id_param)},
        "/v1/jobs/{job_id}/steps": {"post": _with(_op("Create a step in a running allocation (srun)",
                                                      body={"type": "object"}, status="201", access="owner"),
                                                  id_param)},
        "/v1/jobs/{job_id}/steps/{step_id}": {"get": _with(_op("One step", access="owner"), id_param + step_param)},
        "/v1/jobs/{job_id}/steps/{step_id}/cancel": {"post": _with(_op("Signal or cancel a step",
                                                                       body={"type": "object"}, access="owner"),
                                                                   id_param + step_param)},
        "/v1/jobs/{job_id}/complete": {"post": _with(_op("End an srun/salloc allocation",
                                                         body={"type": "object"}, access="owner"), id_param)},
        "/v1/jobs/{job_id}/extension": {"get": _with(_op("Would a longer time limit delay anyone?",
                                                         params=("minutes",), access="owner"), id_param)},
        "/v1/accounting/jobs": {"get": _op("Accounting records, finished jobs included (sacct)",
                                           params=("ids", "users", "start", "end", "states", "partitions", "names"))},
        "/v1/nodes": {"get": _op("Nodes (sinfo, scontrol show node)", {"type": "object", "properties": {
            "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}, params=("names",))},
        "/v1/nodes/update": {"post": _op("Drain, resume or down nodes", body={"type": "object", "properties": {
            "names": {"type": "array", "items": {"type": "string"}}, "state": {"type": "string"},
            "reason": {"type": "string"}}, "required": ["names"]}, access="admin")},
        "/v1/partitions": {"get": _op("Partitions", {"type": "object", "properties": {
            "partitions": {"type": "array", "items": {"$ref": "#/components/schemas/Partition"}}}})},
        "/v1/config": {"get": _op("Live configuration (scontrol show config)")},
        "/v1/tokens": {"post": _op("Mint a token (scontrol token); for another user: admins only",
                                   {"type": "object", "properties": {"token": {"type": "string"},
                                                                     "username": {"type": "string"},
                                                                     "lifespan": {"type": "integer"},
                                                                     "expires": {"type": "integer"}}},
                                   body={"type": "object", "properties": {"username": {"type": "string"},
                                                                          "lifespan": {"type": "integer"}}},
                                   status="201")},
        "/v1/shutdown": {"post": _op("Stop the controller (scontrol shutdown)", access="admin")},
        "/v1/noded/{node}/register": {"post": _with(_op("A node daemon (re)registers", body={"type": "object"},
                                                        access="node"), node_param)},
        "/v1/noded/{node}/commands": {"get": _with(_op("A node daemon's long poll for commands",
                                                       params=("epoch", "after", "wait"), access="node"),
                                                   node_param)},
        "/v1/noded/{node}/events": {"post": _with(_op("A node daemon reports job and task events",
                                                      body={"type": "object"}, access="node"), node_param)},
        "/v1/priority": {"get": _op(
            "Pending jobs' multifactor priority factors, computed now (sprio)",
            {"type": "object", "properties": {
                "priority_type": {"type": "string", "description": "priority/basic or priority/multifactor"},
                "weights": {"type": "object", "description": "PriorityWeight* and the other priority settings"},
                "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/PriorityFactors"}}}},
            params=("ids", "users", "partitions"))},
        "/v1/shares": {"get": _op(
            "Associations with shares, decayed usage and classic fairshare (sshare)",
            {"type": "object", "properties": {
                "priority_type": {"type": "string"}, "time": {"type": "number"},
                "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Share"}}}})},
        "/v1/reservations": {
            "get": _op("Advance reservations (scontrol show reservation)", {"type": "object", "properties": {
                "reservations": {"type": "array", "items": resv_ref}}}, params=("names",)),
            "post": _op("Create a reservation (scontrol create reservation; admins)",
                        {"type": "object", "properties": {"reservation": resv_ref}},
                        body={"$ref": "#/components/schemas/ReservationRequest"}, status="201", access="admin"),
        },
        "/v1/reservations/{name}": {
            "get": dict(_op("One reservation", {"type": "object", "properties": {"reservation": resv_ref}}),
                        parameters=resv_param),
            "post": dict(_op("Update a reservation (scontrol update ReservationName=...; admins)",
                             {"type": "object", "properties": {"reservation": resv_ref}},
                             body={"$ref": "#/components/schemas/ReservationRequest"}, access="admin"),
                         parameters=resv_param),
            "delete": dict(_op("Delete a reservation (scontrol delete ReservationName=...; admins)", access="admin"),
                           parameters=resv_param),
        },
    }
    kinds = ("clusters", "accounts", "users", "qos", "associations")
    for kind in kinds:
        paths[f"/v1/accounting/{kind}"] = {"get": _op(
            f"List {kind} (sacctmgr show)", {"type": "object", "properties": {"items": {"type": "array"}}},
            params=("names", "accounts", "users", "partitions"))}
        for action in ("add", "modify", "delete"):
            if kind == "associations" and action == "add":
                continue
            paths[f"/v1/accounting/{kind}/{action}"] = {"post": _op(
                f"{action} {kind} (sacctmgr {action}; admins only)", body=ACCOUNTING_CHANGE, access="admin")}
    paths["/v1/associations"] = {"get": _op(
        "Association tree (account, parent, user, shares, partition), QOS priorities and AccountingStorageEnforce")}
    for action in ("update", "hold", "uhold", "release", "requeue", "requeuehold", "suspend", "resume", "top"):
        access = "admin" if action in ("suspend", "resume") else "owner"
        paths[f"/v1/jobs/{{job_id}}/{action}"] = {"post": _with(_op(f"{action} a job (scontrol {action})",
                                                                    body={"type": "object"}, access=access),
                                                                id_param)}
    for path in ("/openapi.json", "/v1/openapi.json"):
        paths[path] = {"get": _op("This document")}
    paths.update(_metrics_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "BatchHub controller API", "version": __version__,
                 "description": "JSON over HTTP. On the controller's Unix socket (the local default) callers "
                                "are identified by the socket's peer credentials (SO_PEERCRED: the kernel-"
                                "verified uid, like MUNGE on one host) and send no token. On the optional TCP "
                                "listener every request needs a bearer JWT (security scheme bearerAuth). "
                                "Each operation's x-batchhub-access says who may call it."},
        "security": SECURITY,
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": BEARER},
            "schemas": {
                "Job": _object(JOB_FIELDS), "Node": _object(NODE_FIELDS), "Partition": _object(PARTITION_FIELDS),
                "Submission": _submission_schema(),
                "PriorityFactors": _object(PRIORITY_FACTOR_FIELDS),
                "Share": _object(SHARE_FIELDS),
                "Reservation": _object(RESERVATION_FIELDS),
                "ReservationRequest": _reservation_request_schema(),
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}}},
            }},
    }


def _metrics_paths():
    """``/metrics`` and its groups: Prometheus text, not JSON (see controller/metrics.py)."""
    text = {"description": "Prometheus text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}}}

    def op(summary, parameters=()):
        o = _op(summary + " (over TCP without a token too when the controller serves metrics openly)")
        o["responses"]["200"] = text
        if parameters:
            o["parameters"] = list(parameters)
        return o
    return {
        "/metrics": {"get": op("Metrics in Prometheus text format")},
        "/metrics/{group}": {"get": op(
            "A group of the metrics, like Slurm's /metrics/<group> endpoints",
            [{"name": "group", "in": "path", "required": True,
              "schema": {"type": "string", "enum": ["jobs", "nodes", "partitions", "scheduler"]}}])},
    }