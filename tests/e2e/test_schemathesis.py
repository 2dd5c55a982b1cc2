"""Schemathesis against the live controller's /openapi.json (over TCP, with an admin token).

Schemathesis reads the document the controller serves and generates, per
operation, requests that follow the schemas and requests that break them. Checks:
no 5xx, only documented status codes, JSON where JSON is documented, responses
that match their documented schemas, and a 401 when the token is left out.

Left out (covered by test_fuzz_api.py, which keeps what runs safe): POST /v1/jobs
(a valid fuzzed job would run as root), /v1/shutdown, and the node daemon's long
poll. Skipped when schemathesis is not installed.
"""

import os
import shutil
import socket
import tempfile

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, ignored_auth, response_schema_conformance, status_code_conformance)

from cluster_support import TEST_CONF, LiveCluster  # noqa: E402

EXAMPLES = int(os.environ.get("BATCHHUB_FUZZ_EXAMPLES", 10))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tcp_live():
    home = tempfile.mkdtemp(prefix="batchhub-schemathesis-")
    port = free_port()
    c = LiveCluster(home, TEST_CONF + f"BatchHubTCPAddress=127.0.0.1:{port}\n")
    c.up()
    c.base_url = f"http://127.0.0.1:{port}"
    r = c.run("scontrol", "token", "lifespan=3600")
    assert r.returncode == 0, r.stderr
    c.token = r.stdout.strip().partition("=")[2]
    c.anchor = c.sbatch("--hold", "--wrap", "true")
    yield c
    c.down()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def served_schema(tcp_live):
    import requests
    doc = requests.get(tcp_live.base_url + "/openapi.json", timeout=10,
                       headers={"Authorization": "Bearer " + tcp_live.token}).json()
    schema = schemathesis.openapi.from_dict(doc)
    return (schema.exclude(path="/v1/jobs", method="POST").exclude(path="/v1/shutdown")
            .exclude(path="/v1/noded/{node}/commands"))


def test_served_openapi_document_holds_for_generated_requests(tcp_live, served_schema):
    """One hypothesis run per operation (schemathesis' own pytest plugin does not run on pytest 9 yet).

    Half of the cases aim at real objects (the held anchor job, node n1) instead of random ids,
    so the job actions and node endpoints get past their 404s.
    """
    from hypothesis import given
    from hypothesis import strategies as st
    headers = {"Authorization": "Bearer " + tcp_live.token}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance, ignored_auth]
    failures = []
    operations = [result.ok() for result in served_schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        @given(case=operation.as_strategy(), real=st.booleans())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def run(case, real):
            params = case.path_parameters or {}
            if real and "job_id" in params:
                params["job_id"] = str(tcp_live.anchor)
            if real and "node" in params:
                params["node"] = "n1"
            case.call_and_validate(base_url=tcp_live.base_url, headers=headers, checks=checks, timeout=30)
        try:
            run()
        except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {str(e)[:1500]}")
    assert not failures, "\n\n".join(failures)
    status = tcp_live.run("sinfo", "-h", "-o", "%a")
    assert status.returncode == 0, status.stderr  # still serving
