"""Remote node daemons over TLS: the node credential, the step-credential key and job tokens never
cross the network in clear text (BatchHubTLSCert/BatchHubTLSKey on the controller)."""

import shutil
import subprocess
import sys

import pytest


def NETNS_CONF(home):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = str(home / "cert.pem"), str(home / "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=ctl", "-addext", "subjectAltName=IP:10.77.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {r.stderr.strip()}")
    return f"BatchHubTLSCert={cert}\nBatchHubTLSKey={key}\n", {"SSL_CERT_FILE": cert}


def test_jobs_and_steps_across_hosts_over_tls(netns_cluster):
    c = netns_cluster
    assert c.address.startswith("https://")
    out = c.path("tls.out")
    job = c.sbatch("-N3", "-o", out, input="#!/bin/sh\nsrun -l hostname | sort\necho $BATCHHUB_SOCKET\n")
    assert c.wait_state(job, ("COMPLETED", "FAILED"), timeout=60) == "COMPLETED", open(out).read()
    with open(out) as f:
        assert f.read() == "0: n1\n1: n2\n2: n3\nhttps://10.77.0.1:6817\n"


def test_plain_http_to_the_tls_port_gets_no_answer(netns_cluster):
    c = netns_cluster
    probe = ("import http.client\nc = http.client.HTTPConnection('10.77.0.1', 6817, timeout=5)\n"
             "try:\n    c.request('GET', '/v1/ping'); print(c.getresponse().status)\n"
             "except Exception as e:\n    print('refused', type(e).__name__)\n")
    r = c.run(sys.executable, "-c", probe, host="n1")
    assert r.stdout.startswith("refused"), r.stdout + r.stderr
