"""The OpenAPI 3.1 document of the controller API, built from the wire model.

Generated from :mod:`batch_backend.model` and the submission field table so
the document cannot drift from what the controller actually accepts.
"""

from .. import __version__
from ..model import JOB_FIELDS, NODE_FIELDS, PARTITION_FIELDS


def _schema_for(type_text):
    nullable = type_text.endswith("|null")
    base = type_text.split("|")[0]
    if base.startswith("list"):
        schema = {"type": "array"}
    elif base.startswith("dict"):
        schema = {"type": "object"}
    else:
        schema = {"type": base}
    if nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


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


ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

#: Who may call an operation (``x-batchhub-access``); the controller enforces it (api.py, cluster.py).
ACCESS = {
    "user": "any authenticated user",
    "owner": "the job's owner, or an operator/admin",
    "admin": "operators and admins only (root, SlurmUser, AdminLevel, token admins)",
    "node": "node daemons only (root on the Unix socket; an admin token, the node credential, over TCP)",
}

BEARER = {
    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
    "description": "Over TCP (BatchHubTCPAddress) every request, reads included, needs "
                   "'Authorization: Bearer <token>': an HS256 JWT with claims sun (user name), iat and exp, "
                   "signed with the cluster key (state/jwt_hs256.key, readable by the service account only), "
                   "as Slurm's auth/jwt. Get one with 'scontrol token [lifespan=SECONDS] [username=NAME]' or "
                   "POST /v1/tokens; a missing, malformed, forged, expired or wrong-key token is a 401 with "
                   "WWW-Authenticate: Bearer, and an audit log line. On the Unix socket no token is sent: the "
                   "caller is the kernel-verified peer uid of the connection (SO_PEERCRED).",
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
    id_param = [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "N, A (array) or A_i"}]
    step_param = [{"name": "step_id", "in": "path", "required": True, "schema": {"type": "string"},
                   "description": "step number (or 'batch' for GET)"}]
    node_param = [{"name": "node", "in": "path", "required": True, "schema": {"type": "string"},
                   "description": "node name"}]
    paths = {
        "/v1/ping": {"get": _op("Controller identity, version and the caller's identity")},
        "/v1/jobs": {
            "get": _op("List jobs (squeue)", {"type": "object", "properties": {"jobs": {"type": "array", "items": job_ref}}},
                       params=("ids", "users", "partitions", "states", "names", "all", "fields")),
            "post": _op("Submit a batch job (sbatch); submitting as another user is for admins",
                        {"type": "object", "properties": {"job_id": {"type": "integer"}}},
                        body={"$ref": "#/components/schemas/Submission"}, status="201"),
        },
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
    }
    for action in ("update", "hold", "uhold", "release", "requeue", "requeuehold", "suspend", "resume", "top"):
        access = "admin" if action in ("suspend", "resume") else "owner"
        paths[f"/v1/jobs/{{job_id}}/{action}"] = {"post": _with(_op(f"{action} a job (scontrol {action})",
                                                                    body={"type": "object"}, access=access),
                                                                id_param)}
    for path in ("/openapi.json", "/v1/openapi.json"):
        paths[path] = {"get": _op("This document")}
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
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}}},
            }},
    }
