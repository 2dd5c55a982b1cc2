"""The API over TCP with HS256 tokens: who gets in, who is turned away, and the audit trail.

A real controller listens on a free 127.0.0.1 port besides its Unix socket;
the CLI reaches it with ``BATCHHUB_SOCKET=127.0.0.1:PORT`` and
``BATCHHUB_TOKEN``; raw HTTP checks the exact statuses. Tests that need two
real users create throwaway Unix users (as root) like test_users.py does.
"""

import base64
import http.client
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from cluster_support import TEST_CONF, LiveCluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from batch_backend.auth import jwt  # noqa: E402

USER_PYTHON = "/usr/bin/python3"
ME = pwd.getpwuid(os.getuid()).pw_name
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="needs root to create throwaway Unix users")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(obj):
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def tcp_cluster():
    """A cluster with a TCP listener, in a directory other users can reach."""
    home = tempfile.mkdtemp(prefix="batchhub-tokens-")
    os.chmod(home, 0o755)
    port = free_port()
    c = LiveCluster(home, TEST_CONF + f"BatchHubTCPAddress=127.0.0.1:{port}\n")
    os.chmod(c.workdir, 0o1777)
    c.port = port
    c.up()
    yield c
    c.down()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def key(tcp_cluster):
    with open(os.path.join(tcp_cluster.home, "state", "jwt_hs256.key"), "rb") as f:
        return f.read()


def mint(cluster, *args, env=None):
    r = cluster.run("scontrol", "token", *args, env=env)
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"SLURM_JWT=([\w-]+\.[\w-]+\.[\w-]+)\n", r.stdout)
    assert m, r.stdout
    return m.group(1)


def tcp_env(cluster, token):
    return {"BATCHHUB_SOCKET": f"127.0.0.1:{cluster.port}", "BATCHHUB_TOKEN": token}


def raw(cluster, method, path, token=None, body=None, auth=None):
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    elif token is not None:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else {}


def controller_log(cluster):
    with open(os.path.join(cluster.home, "log", "controller.log")) as f:
        return f.read()


def wait_log(cluster, pattern, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = controller_log(cluster)
        if re.search(pattern, text):
            return text
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in controller.log:\n{controller_log(cluster)[-3000:]}")


# -- tokens -----------------------------------------------------------------------------------
def test_key_file_is_private_to_the_service_account(tcp_cluster):
    st = os.stat(os.path.join(tcp_cluster.home, "state", "jwt_hs256.key"))
    assert st.st_mode & 0o777 == 0o600
    assert st.st_uid == os.getuid()


def test_scontrol_token_prints_slurm_jwt(tcp_cluster, key):
    token = mint(tcp_cluster)
    claims = jwt.verify(key, token)
    assert claims["sun"] == ME
    assert claims["exp"] - claims["iat"] == 1800  # Slurm's default lifespan
    assert abs(claims["iat"] - time.time()) < 60
    claims = jwt.verify(key, mint(tcp_cluster, "lifespan=60"))
    assert claims["exp"] - claims["iat"] == 60
    r = tcp_cluster.run("scontrol", "token", "lifespan=soon")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "scontrol: error: Invalid lifespan value: soon\n")
    r = tcp_cluster.run("scontrol", "token", "colour=red")
    assert (r.returncode, r.stderr) == (1, "scontrol: error: Invalid token option: colour=red\n")


def test_jobs_submitted_listed_and_cancelled_over_tcp(tcp_cluster):
    env = tcp_env(tcp_cluster, mint(tcp_cluster))
    r = tcp_cluster.run("sbatch", "--parsable", "-J", "viatcp", "--wrap=sleep 30", env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    job_id = int(r.stdout)
    r = tcp_cluster.run("squeue", "-h", "-j", str(job_id), "-o", "%i %j %u", env=env)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.split() == [str(job_id), "viatcp", ME]
    r = tcp_cluster.run("scontrol", "show", "job", str(job_id), env=env)
    assert r.returncode == 0 and f"UserId={ME}(" in r.stdout
    r = tcp_cluster.run("scontrol", "ping", env=env)
    assert r.returncode == 0 and "is UP" in r.stdout
    assert tcp_cluster.run("scancel", str(job_id), env=env).returncode == 0
    assert tcp_cluster.wait_state(job_id, "CANCELLED").startswith("CANCELLED")
    # the same controller still answers its Unix socket without any token (unchanged behaviour)
    r = tcp_cluster.run("squeue", "-h", "-o", "%i", env={"BATCHHUB_TOKEN": "garbage"})
    assert (r.returncode, r.stderr) == (0, "")


def test_401_names_the_bearer_scheme(tcp_cluster):
    conn = http.client.HTTPConnection("127.0.0.1", tcp_cluster.port, timeout=10)
    conn.request("GET", "/v1/jobs")
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 401 and resp.getheader("WWW-Authenticate") == 'Bearer realm="batchhub"'


def _bad_tokens(key):
    now = int(time.time())
    good = jwt.make_token(key, ME)
    h, c, s = good.split(".")
    root_claims = b64({"sun": "root", "iat": now, "exp": now + 600})
    return {
        "missing": (None, "missing", "missing token"),
        "empty_bearer": ("Bearer ", "missing", "missing token"),
        "malformed": ("Bearer not-a-jwt", "malformed", "malformed token"),
        "garbage_parts": ("Bearer a.b.c", "malformed", "malformed token"),
        "basic_auth": ("Basic dXNlcjpwdw==", "malformed", "authorization scheme"),
        "forged": (f"Bearer {h}.{root_claims}.{s}", "bad_signature", "invalid token signature"),
        "wrong_key": ("Bearer " + jwt.make_token(os.urandom(32), ME), "bad_signature", "invalid token signature"),
        "expired": ("Bearer " + jwt.make_token(key, ME, lifespan=10, now=now - 100), "expired", "token expired"),
        "alg_none": (f"Bearer {b64({'alg': 'none', 'typ': 'JWT'})}.{root_claims}.", "alg_none", "alg 'none'"),
        "unknown_user": ("Bearer " + jwt.make_token(key, "nosuchuser" + uuid.uuid4().hex[:6]), "unknown_user",
                         "does not exist on this host"),
    }


BAD = ["missing", "empty_bearer", "malformed", "garbage_parts", "basic_auth", "forged", "wrong_key", "expired",
       "alg_none", "unknown_user"]


@pytest.mark.parametrize("case", BAD)
def test_bad_tokens_get_401_over_raw_http(tcp_cluster, key, case):
    auth, reason, phrase = _bad_tokens(key)[case]
    for method, path, body in [("GET", "/v1/jobs", None), ("POST", "/v1/jobs", {"script": "#!/bin/sh\ntrue\n"}),
                               ("GET", "/v1/nodes", None), ("GET", "/v1/config", None),
                               ("GET", "/openapi.json", None), ("POST", "/v1/tokens", {})]:
        status, answer = raw(tcp_cluster, method, path, body=body, auth=auth or "")
        assert status == 401, (method, path, answer)
        assert answer["error"]["code"] == "unauthenticated"
        assert answer["error"]["details"]["reason"] == reason
        assert phrase in answer["error"]["message"]
        assert answer["error"]["message"].startswith("Authentication failure: ")
    wait_log(tcp_cluster, rf"batchhub\.audit WARNING 401 denied user=\(unauthenticated\).* via=tcp:127\.0\.0\.1 "
                          rf"GET /v1/jobs: .*\[reason={reason}\]")


@pytest.mark.parametrize("case", ["missing", "malformed", "forged", "wrong_key", "expired", "alg_none"])
def test_bad_tokens_give_a_one_line_cli_error(tcp_cluster, key, case):
    auth, reason, phrase = _bad_tokens(key)[case]
    token = (auth or "").partition(" ")[2]
    before = tcp_cluster.run("squeue", "-h", "-o", "%i").stdout
    for argv, prefix in [(["squeue"], "squeue: error: "),
                         (["sbatch", "--wrap=true"], "sbatch: error: Batch job submission failed: "),
                         (["scontrol", "show", "job"], "scontrol: error: "),
                         (["sinfo"], "sinfo: error: "), (["sacct"], "sacct: error: "),
                         (["scontrol", "token"], "scontrol: error: ")]:
        r = tcp_cluster.run(*argv, env=tcp_env(tcp_cluster, token))
        assert (r.returncode, r.stdout) == (1, ""), r
        assert re.fullmatch(re.escape(prefix + "Authentication failure: ") + rf"[^\n]*{re.escape(phrase)}[^\n]*\n",
                            r.stderr), r.stderr
    assert tcp_cluster.run("squeue", "-h", "-o", "%i").stdout == before  # nothing was submitted


def test_node_endpoints_over_tcp_need_a_node_credential(tcp_cluster):
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this host")
    nobody = mint(tcp_cluster, "username=nobody")
    status, answer = raw(tcp_cluster, "GET", "/v1/jobs", nobody)
    assert status == 200  # a valid user token reads the queue
    for method, path in [("POST", "/v1/noded/n1/register"), ("GET", "/v1/noded/n1/commands?epoch=x"),
                         ("POST", "/v1/noded/n1/events")]:
        status, answer = raw(tcp_cluster, method, path, nobody, body={} if method == "POST" else None)
        assert status == 403, (path, answer)
        assert "node daemons only" in answer["error"]["message"]
    wait_log(tcp_cluster, r"batchhub\.audit WARNING 403 denied user=nobody uid=\d+ via=tcp:127\.0\.0\.1 "
                          r"POST /v1/noded/n1/register")
    # not even an admin's user token makes a node daemon: nodes hold node credentials
    status, answer = raw(tcp_cluster, "GET", "/v1/noded/n1/commands?epoch=stale", mint(tcp_cluster))
    assert status == 403 and "node daemons only" in answer["error"]["message"]
    node_token = mint_node_token(tcp_cluster, "n[1-2]")
    status, answer = raw(tcp_cluster, "GET", "/v1/noded/n1/commands?epoch=stale", node_token)
    assert status == 200 and answer["reregister"] is True
    # ... for the nodes it names only
    status, answer = raw(tcp_cluster, "GET", "/v1/noded/n3/commands?epoch=stale", node_token)
    assert status == 403 and "not valid for node n3" in answer["error"]["message"], answer
    # admin-only actions stay admin-only over TCP
    status, answer = raw(tcp_cluster, "POST", "/v1/nodes/update", nobody,
                          body={"names": ["n1"], "state": "DRAIN", "reason": "evil"})
    assert status == 403
    status, answer = raw(tcp_cluster, "POST", "/v1/shutdown", nobody, body={})
    assert status == 403
    assert "drain" not in tcp_cluster.run("sinfo", "-h", "-N", "-n", "n1", "-o", "%t").stdout


def mint_node_token(cluster, nodes):
    r = cluster.batchhub("node-token", "--nodes", nodes)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_a_node_credential_is_no_user(tcp_cluster):
    node_token = mint_node_token(tcp_cluster, "n1")
    before = tcp_cluster.run("squeue", "-h", "-o", "%i").stdout
    job = tcp_cluster.sbatch("-o", "/dev/null", "--wrap=sleep 30")
    try:
        for method, path, body in [("GET", "/v1/jobs", None), ("POST", "/v1/jobs", {"script": "#!/bin/sh\n"}),
                                   ("POST", "/v1/jobs/cancel", {"ids": [str(job)]}),
                                   ("POST", "/v1/tokens", {}),
                                   ("POST", "/v1/nodes/update", {"names": ["n1"], "state": "DRAIN", "reason": "x"})]:
            status, answer = raw(tcp_cluster, method, path, node_token, body=body)
            assert status == 403, (path, answer)
            assert answer["error"]["message"] == "Access/permission denied: a node credential is for node daemons only"
        wait_log(tcp_cluster, r"batchhub\.audit WARNING 403 denied user=node:n1 uid=-1 via=tcp:127\.0\.0\.1 "
                              r"POST /v1/jobs/cancel")
        assert tcp_cluster.wait_state(job, "RUNNING") == "RUNNING"  # not cancelled
        assert tcp_cluster.run("squeue", "-h", "-o", "%i").stdout.split() == before.split() + [str(job)]
        # the CLI with a node credential gets Slurm's one-line refusal, no traceback
        r = tcp_cluster.run("scancel", str(job), env=tcp_env(tcp_cluster, node_token))
        assert r.returncode != 0 and "Traceback" not in r.stderr and "node credential" in r.stderr, r
    finally:
        tcp_cluster.run("scancel", str(job))


def test_node_token_command_refuses_bad_input(tcp_cluster):
    r = tcp_cluster.batchhub("node-token", "--nodes", "n[1-")
    assert (r.returncode, r.stdout) == (1, "") and r.stderr.startswith("batchhub: error: invalid node list")


# -- two real users ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_users():
    if os.getuid() != 0:
        pytest.skip("needs root to create throwaway Unix users")
    names = [f"bh{uuid.uuid4().hex[:6]}a", f"bh{uuid.uuid4().hex[:6]}b"]
    for n in names:
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", n], check=True)
    yield names
    for n in names:
        subprocess.run(["userdel", n], check=False)


def as_user(cluster, user, command, *args, env=None):
    """Run a CLI command as ``user`` over the Unix socket (the venv may live in root's home)."""
    if not os.access(USER_PYTHON, os.X_OK):
        pytest.skip(f"{USER_PYTHON} is needed to run the CLI as another user")
    code = f"import sys; sys.path.insert(0, {REPO!r}); from batch_backend.cli.{command} import main; sys.exit(main())"
    return cluster.run(USER_PYTHON, "-c", code, *args, user=user, env=env)


@needs_root
def test_user_cannot_touch_another_users_job_over_tcp(tcp_cluster, two_users, key):
    alice, bob = two_users
    a_tok, b_tok = mint(tcp_cluster, f"username={alice}"), mint(tcp_cluster, f"username={bob}")
    assert jwt.verify(key, a_tok)["sun"] == alice
    r = tcp_cluster.run("sbatch", "--parsable", "--hold", "-o", "/dev/null", "--wrap=true",
                        env=tcp_env(tcp_cluster, a_tok))
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    assert tcp_cluster.job(job_id)["UserId"].startswith(f"{alice}(")  # the token's user, not the process's
    bob_env = tcp_env(tcp_cluster, b_tok)
    r = tcp_cluster.run("scancel", job_id, env=bob_env)
    assert (r.returncode, r.stderr) == (1, f"scancel: error: Kill job error on job id {job_id}: "
                                           f"Access/permission denied\n")
    for argv in (["scontrol", "release", job_id], ["scontrol", "hold", job_id],
                 ["scontrol", "update", f"JobId={job_id}", "JobName=stolen"]):
        r = tcp_cluster.run(*argv, env=bob_env)
        assert r.returncode == 1 and "permission denied" in r.stderr.lower() and "Traceback" not in r.stderr
    for action, body in [("hold", {}), ("release", {}), ("update", {"name": "stolen"}), ("requeue", {})]:
        status, answer = raw(tcp_cluster, "POST", f"/v1/jobs/{job_id}/{action}", b_tok, body=body)
        assert status == 403, (action, answer)
        assert answer["error"]["code"] == "permission_denied"
    status, answer = raw(tcp_cluster, "POST", "/v1/jobs/cancel", b_tok, body={"ids": [job_id]})
    assert status == 200 and answer["denied"] == [job_id] and answer["cancelled"] == [], answer
    assert tcp_cluster.state(job_id) == "PENDING"
    assert tcp_cluster.job(job_id)["JobName"] == "wrap"
    log = wait_log(tcp_cluster, rf"403 denied user={bob} uid=\d+ via=tcp:127\.0\.0\.1 POST /v1/jobs/{job_id}/update")
    assert re.search(rf"403 denied user={bob} uid=\d+ via=tcp:\S+ POST /v1/jobs/{job_id}/hold", log)
    assert re.search(rf"403 denied user={bob} uid=\d+ via=tcp:\S+ POST /v1/jobs/cancel: cancel of jobs {job_id}", log)
    # the owner may
    r = tcp_cluster.run("scancel", job_id, env=tcp_env(tcp_cluster, a_tok))
    assert r.returncode == 0, r.stderr
    assert tcp_cluster.wait_state(job_id, "CANCELLED").startswith("CANCELLED")


@needs_root
def test_only_admins_mint_other_users_tokens(tcp_cluster, two_users, key):
    alice, bob = two_users
    # over the Unix socket, as the real user alice
    r = as_user(tcp_cluster, alice, "scontrol", "token", "lifespan=120")
    assert r.returncode == 0, r.stderr
    claims = jwt.verify(key, r.stdout.strip().partition("=")[2])
    assert claims["sun"] == alice and claims["exp"] - claims["iat"] == 120
    r = as_user(tcp_cluster, alice, "scontrol", "token", f"username={bob}")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("scontrol: error: Access/permission denied") and r.stderr.count("\n") == 1
    # over TCP with alice's token: her own yes, bob's no, whatever uid the client process has
    a_tok = mint(tcp_cluster, f"username={alice}")
    assert jwt.verify(key, mint(tcp_cluster, env=tcp_env(tcp_cluster, a_tok)))["sun"] == alice
    status, answer = raw(tcp_cluster, "POST", "/v1/tokens", a_tok, body={"username": bob})
    assert status == 403 and "only admins" in answer["error"]["message"]
    status, answer = raw(tcp_cluster, "POST", "/v1/tokens", a_tok, body={"username": "root", "lifespan": 60})
    assert status == 403
    status, answer = raw(tcp_cluster, "POST", "/v1/tokens", a_tok, body={"lifespan": -5})
    assert status == 400
    wait_log(tcp_cluster, rf"403 denied user={alice} uid=\d+ via=unix:socket POST /v1/tokens")
    wait_log(tcp_cluster, rf"403 denied user={alice} uid=\d+ via=tcp:127\.0\.0\.1 POST /v1/tokens")
    # an admin may mint anyone's
    assert jwt.verify(key, mint(tcp_cluster, f"username={bob}"))["sun"] == bob


# -- TLS ---------------------------------------------------------------------------------------------
def test_tls_listener(make_cluster, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, keyfile = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", keyfile, "-out", cert], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {r.stderr.strip()}")
    port = free_port()
    jwt_key = tmp_path / "custom.key"
    c = make_cluster(TEST_CONF + f"BatchHubTCPAddress={port}\nBatchHubTLSCert={cert}\n"
                     f"BatchHubTLSKey={keyfile}\nAuthAltParameters=jwt_key={jwt_key}\n", wait_nodes=False)
    assert jwt_key.exists() and jwt_key.stat().st_mode & 0o777 == 0o600  # Slurm's jwt_key= is honoured
    token = mint(c)
    jwt.verify(jwt_key.read_bytes(), token)
    env = {"BATCHHUB_SOCKET": f"https://127.0.0.1:{port}", "BATCHHUB_TOKEN": token, "SSL_CERT_FILE": cert}
    r = c.run("scontrol", "ping", env=env)
    assert r.returncode == 0 and "is UP" in r.stdout, r.stderr
    # plain HTTP to the TLS port does not get an answer with data
    r = c.run("squeue", env=dict(env, BATCHHUB_SOCKET=f"127.0.0.1:{port}"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    # a client that does not trust the certificate is refused by TLS itself
    ctx = ssl.create_default_context()
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            ctx.wrap_socket(s, server_hostname="127.0.0.1")


def start_controller_foreground(cluster):
    """``batchhub controller`` in the foreground: a refused start exits at once (logs on stderr)."""
    return cluster.batchhub("controller", "--conf", cluster.conf_path, "--socket", cluster.socket, timeout=30)


def test_bad_tls_setting_stops_the_controller(tmp_path):
    c = LiveCluster(tmp_path, TEST_CONF + f"BatchHubTCPAddress={free_port()}\nBatchHubTLSCert=/nonexistent.pem\n")
    try:
        r = start_controller_foreground(c)
        assert r.returncode == 1
        assert "cannot start: BatchHubTLSCert and BatchHubTLSKey must be set together" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        c.down()


def test_unsafe_key_or_busy_port_stops_the_controller(tmp_path):
    open_key = tmp_path / "open.key"
    open_key.write_bytes(os.urandom(32))
    os.chmod(open_key, 0o644)
    (tmp_path / "a").mkdir()
    c = LiveCluster(tmp_path / "a", TEST_CONF + f"BatchHubTCPAddress={free_port()}\n"
                    f"AuthAltParameters=jwt_key={open_key}\n")
    try:
        r = start_controller_foreground(c)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"cannot start: JWT key {open_key} is accessible by group/others" in r.stderr
    finally:
        c.down()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (tmp_path / "b").mkdir()
        c = LiveCluster(tmp_path / "b", TEST_CONF + f"BatchHubTCPAddress=127.0.0.1:{port}\n")
        try:
            r = start_controller_foreground(c)
            assert r.returncode == 1 and "Traceback" not in r.stderr
            assert f"cannot start: BatchHubTCPAddress=127.0.0.1:{port}: Address already in use" in r.stderr
            assert not os.path.exists(c.socket)  # no half-started controller answers the socket
        finally:
            c.down()


@pytest.mark.parametrize("params", ["max_token_lifespan=600", "disable_token_creation"])
def test_slurm_token_limits(make_cluster, params):
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this host")
    port = free_port()
    c = make_cluster(TEST_CONF + f"BatchHubTCPAddress={port}\nAuthAltParameters={params}\n", wait_nodes=False)
    c.port = port
    nobody = mint(c, "username=nobody", "lifespan=7200")  # admins are not limited
    status, answer = raw(c, "POST", "/v1/tokens", nobody, body={"lifespan": 601})
    if params.startswith("max"):
        assert status == 400 and "exceeds max_token_lifespan=600" in answer["error"]["message"]
        status, answer = raw(c, "POST", "/v1/tokens", nobody, body={"lifespan": 600})
        assert status == 201 and answer["username"] == "nobody" and answer["lifespan"] == 600
    else:
        assert status == 403 and "token creation is disabled" in answer["error"]["message"]
        wait_log(c, r"403 denied user=nobody uid=\d+ via=tcp:127\.0\.0\.1 POST /v1/tokens")
