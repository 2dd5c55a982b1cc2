"""/openapi.json documents how callers authenticate and who may call what, and the controller agrees.

The document declares one security scheme, ``bearerAuth`` (HTTP bearer, JWT),
required on every operation as slurmrestd does, explains that the Unix socket
identifies callers by peer credentials instead, and tags each operation with
``x-batchhub-access`` (user, owner, admin, node). The live checks hold the
controller to it over TCP: no token is a 401 naming the Bearer scheme, an
ordinary user's token is a 403 on every admin and node operation and is let in
on the user ones.
"""

import http.client
import json
import os
import pwd
import re
import shutil
import socket
import tempfile

import pytest

from batch_backend.api.openapi import ACCESS, openapi_document
from cluster_support import TEST_CONF, LiveCluster

PLAIN_USER = "nobody"  # exists on Debian; tokens for it are minted by root (an admin)


def documented_operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def route_templates():
    """The controller's tornado routes as OpenAPI path templates (so the two cannot drift apart)."""
    from batch_backend.controller import api
    from batch_backend.controller.api import ID_RE

    class FakeController:
        cluster = None
    app = api.make_app(FakeController())
    out = set()
    for rule in app.wildcard_router.rules:
        pattern = rule.matcher.regex.pattern.rstrip("$")
        pattern = pattern.replace(ID_RE, "{job_id}").replace("([0-9]+|batch)", "{step_id}")
        pattern = pattern.replace("([0-9]+)", "{step_id}").replace(r"([A-Za-z0-9_.\-]+)", "{node}")
        pattern = pattern.replace("([^/]+)", "{name}").replace("/metrics/([a-z]+)", "/metrics/{group}")
        paths = [pattern]
        while any(re.search(r"\(([a-z|]+)\)", p) for p in paths):  # expand each (a|b|c) group
            expanded = []
            for p in paths:
                group = re.search(r"\(([a-z|]+)\)", p)
                if group is None:
                    expanded.append(p)
                    continue
                expanded += [p.replace(group.group(0), word, 1) for word in group.group(1).split("|")]
            paths = expanded
        out.update(paths)
    return out


# -- the document --------------------------------------------------------------------------------
def test_bearer_jwt_scheme_is_declared_and_explains_the_socket():
    doc = openapi_document()
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    for word in ("sun", "exp", "iat", "scontrol token", "401", "SO_PEERCRED"):
        assert word in scheme["description"], word
    assert "SO_PEERCRED" in doc["info"]["description"] and "peer credentials" in doc["info"]["description"]
    assert doc["security"] == [{"bearerAuth": []}]


def test_every_operation_requires_the_scheme_and_names_who_may_call_it():
    for path, method, op in documented_operations(openapi_document()):
        assert op["security"] == [{"bearerAuth": []}], (method, path)
        assert op["x-batchhub-access"] in ACCESS, (method, path)
        assert {"401", "403"} <= set(op["responses"]), (method, path)
        assert ACCESS[op["x-batchhub-access"]] in op["description"], (method, path)


def test_every_route_of_the_controller_is_documented():
    served, documented = route_templates(), set(openapi_document()["paths"])
    assert documented <= served
    # the route pattern also matches 'add' for associations, which the handler refuses (sacctmgr has no such verb)
    assert served - documented == {"/v1/accounting/associations/add"}


def test_access_levels_of_the_sensitive_operations():
    paths = openapi_document()["paths"]
    assert paths["/v1/nodes/update"]["post"]["x-batchhub-access"] == "admin"
    assert paths["/v1/shutdown"]["post"]["x-batchhub-access"] == "admin"
    assert paths["/v1/jobs/{job_id}/suspend"]["post"]["x-batchhub-access"] == "admin"
    assert paths["/v1/jobs/{job_id}/hold"]["post"]["x-batchhub-access"] == "owner"
    assert all(paths[p][m]["x-batchhub-access"] == "node" for p in paths if p.startswith("/v1/noded/")
               for m in paths[p])


# -- the controller agrees (over TCP) ---------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tcp_cluster():
    home = tempfile.mkdtemp(prefix="batchhub-openapi-")
    port = free_port()
    c = LiveCluster(home, TEST_CONF + f"BatchHubTCPAddress=127.0.0.1:{port}\n")
    c.port = port
    c.up()
    yield c
    c.down()
    shutil.rmtree(home, ignore_errors=True)


def token_for(cluster, *args):
    r = cluster.run("scontrol", "token", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().partition("=")[2]


def tcp(cluster, method, path, token=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        answer = json.loads(data) if data else {}
    except ValueError:
        answer = data.decode(errors="replace")[:200]  # /metrics answers Prometheus text
    return resp.status, resp.getheader("WWW-Authenticate"), answer


def concrete(path, job_id):
    return path.replace("{job_id}", str(job_id)).replace("{step_id}", "0").replace("{node}", "n1")


def test_the_served_document_is_the_documented_one_and_needs_a_token_over_tcp(tcp_cluster):
    status, challenge, _ = tcp(tcp_cluster, "GET", "/openapi.json")
    assert status == 401 and challenge == 'Bearer realm="batchhub"'
    status, _, doc = tcp(tcp_cluster, "GET", "/openapi.json", token_for(tcp_cluster))
    assert status == 200
    assert doc["components"]["securitySchemes"] == openapi_document()["components"]["securitySchemes"]


def test_every_documented_operation_refuses_a_missing_token(tcp_cluster):
    for path, method, _ in documented_operations(openapi_document()):
        status, challenge, answer = tcp(tcp_cluster, method.upper(), concrete(path, 1),
                                        body={} if method == "post" else None)
        assert status == 401 and challenge.startswith("Bearer"), (method, path, status, answer)


@pytest.mark.skipif(os.getuid() != 0, reason="root mints a token for another user")
def test_a_plain_users_token_is_refused_exactly_where_the_document_says(tcp_cluster):
    pwd.getpwnam(PLAIN_USER)
    token = token_for(tcp_cluster, f"username={PLAIN_USER}")
    job_id = tcp_cluster.sbatch("--hold", "--wrap", "true")  # root's job: not the plain user's
    try:
        for path, method, op in documented_operations(openapi_document()):
            if method == "post" and path in ("/v1/jobs", "/v1/tokens", "/v1/jobs/cancel"):
                continue  # allowed for users with side effects; covered by test_tokens.py
            status, _, answer = tcp(tcp_cluster, method.upper(), concrete(path, job_id), token,
                                    body={} if method == "post" else None)
            access = op["x-batchhub-access"]
            if access in ("admin", "node"):
                assert status == 403, (method, path, status, answer)
            elif access == "owner":  # another user's job: refused (403, or a 4xx for the empty body first)
                assert status in (400, 403, 404, 409), (method, path, status, answer)
            else:
                assert status not in (401, 403), (method, path, status, answer)
        # and root's held job is still held, untouched by the plain user's attempts
        assert tcp_cluster.job(job_id)["JobState"] == "PENDING"
        assert tcp_cluster.job(job_id)["Reason"] == "JobHeldUser"
    finally:
        tcp_cluster.run("scancel", str(job_id))


def test_a_node_credential_is_let_in_only_where_the_document_says_node(tcp_cluster):
    r = tcp_cluster.batchhub("node-token", "--nodes", "n1", "--conf", tcp_cluster.conf_path)
    assert r.returncode == 0, r.stderr
    credential = r.stdout.strip().splitlines()[-1].partition("=")[2] or r.stdout.strip().splitlines()[-1]
    for path, method, op in documented_operations(openapi_document()):
        if path == "/v1/noded/{node}/commands":
            path += "?wait=0"
        status, _, answer = tcp(tcp_cluster, method.upper(), concrete(path, 1), credential,
                                body={} if method in ("post", "delete") else None)
        if op["x-batchhub-access"] in ("node", "any"):
            assert status not in (401, 403), (method, path, status, answer)
        else:
            assert status == 403, (method, path, status, answer)
