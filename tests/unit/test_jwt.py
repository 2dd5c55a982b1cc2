"""HS256 tokens: what verifies, and a distinct reason for everything that does not."""

import base64
import hashlib
import hmac
import json
import os

import pytest

from batch_backend.auth import jwt

KEY = b"k" * 32
NOW = 1_700_000_000


def b64(obj):
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def reason(token, key=KEY, now=NOW + 10):
    with pytest.raises(jwt.TokenError) as e:
        jwt.verify(key, token, now=now)
    return e.value.reason


def test_round_trip_has_slurm_claims():
    token = jwt.make_token(KEY, "alice", lifespan=60, now=NOW)
    claims = jwt.verify(KEY, token, now=NOW + 59)
    assert claims == {"sun": "alice", "iat": NOW, "exp": NOW + 60}
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}


def test_matches_an_independent_hs256_signature():
    # the signature is HMAC-SHA256 over "header.claims" exactly as RFC 7519 says
    token = jwt.make_token(KEY, "bob", now=NOW)
    h, c, s = token.split(".")
    want = base64.urlsafe_b64encode(hmac.new(KEY, f"{h}.{c}".encode(), hashlib.sha256).digest()).rstrip(b"=")
    assert s == want.decode()
    assert jwt.DEFAULT_LIFESPAN == 1800
    assert jwt.verify(KEY, token, now=NOW)["exp"] == NOW + 1800


def test_pyjwt_style_token_verifies():
    # a token made by any HS256 library (different key order, no typ) is accepted
    h = b64({"typ": "JWT", "alg": "HS256"})
    c = b64({"exp": NOW + 100, "sun": "carol", "iat": NOW})
    sig = base64.urlsafe_b64encode(hmac.new(KEY, f"{h}.{c}".encode(), hashlib.sha256).digest()).rstrip(b"=")
    assert jwt.verify(KEY, f"{h}.{c}.{sig.decode()}", now=NOW)["sun"] == "carol"


@pytest.mark.parametrize("token", [None, "", "   "])
def test_missing(token):
    assert reason(token) == "missing"


@pytest.mark.parametrize("token", ["abc", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.sig",
                                   b64([1]) + ".e30.x", b64(b"\xff\xfe") + ".e30.x"])
def test_malformed(token):
    assert reason(token) == "malformed"


def test_forged_claims_are_refused():
    token = jwt.make_token(KEY, "alice", now=NOW)
    h, c, s = token.split(".")
    forged = b64({"sun": "root", "iat": NOW, "exp": NOW + 1800})
    assert reason(f"{h}.{forged}.{s}") == "bad_signature"


def test_wrong_key():
    assert reason(jwt.make_token(b"x" * 32, "alice", now=NOW)) == "bad_signature"


def test_expired():
    token = jwt.make_token(KEY, "alice", lifespan=5, now=NOW)
    assert reason(token, now=NOW + 6) == "expired"
    assert "expired" in str(pytest.raises(jwt.TokenError, jwt.verify, KEY, token, now=NOW + 6).value)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none(alg):
    claims = b64({"sun": "root", "iat": NOW, "exp": NOW + 100})
    assert reason(f"{b64({'alg': alg, 'typ': 'JWT'})}.{claims}.") == "alg_none"
    assert reason(f"{b64({'alg': alg})}.{claims}.c2ln") == "alg_none"


def test_other_algorithms_and_empty_signature():
    claims = b64({"sun": "root", "iat": NOW, "exp": NOW + 100})
    assert reason(f"{b64({'alg': 'HS512'})}.{claims}.c2ln") == "bad_alg"
    assert reason(f"{b64({'alg': 'RS256'})}.{claims}.c2ln") == "bad_alg"
    assert reason(f"{b64({'typ': 'JWT'})}.{claims}.c2ln") == "malformed"  # no alg at all
    assert reason(f"{b64({'alg': 'HS256'})}.{claims}.") == "unsigned"


def test_claims_required():
    assert reason(jwt.encode(KEY, {"iat": NOW, "exp": NOW + 100})) == "no_user"
    assert reason(jwt.encode(KEY, {"sun": "", "exp": NOW + 100})) == "no_user"
    assert reason(jwt.encode(KEY, {"sun": "a", "iat": NOW})) == "no_expiry"
    assert reason(jwt.encode(KEY, {"sun": "a", "exp": "soon"})) == "no_expiry"
    assert reason(jwt.encode(KEY, {"sun": "a", "exp": NOW + 100, "iat": NOW + 3600})) == "not_yet_valid"


def test_make_token_rejects_bad_arguments():
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValueError):
            jwt.make_token(KEY, "a", lifespan=bad)
    with pytest.raises(ValueError):
        jwt.make_token(KEY, "")


def test_bearer_header():
    assert jwt.bearer_token(None) is None
    assert jwt.bearer_token("") is None
    assert jwt.bearer_token("Bearer abc") == "abc"
    assert jwt.bearer_token("bearer  abc ") == "abc"
    with pytest.raises(jwt.TokenError) as e:
        jwt.bearer_token("Basic dXNlcjpwdw==")
    assert e.value.reason == "malformed"
    with pytest.raises(jwt.TokenError) as e:
        jwt.bearer_token("Bearer ")
    assert e.value.reason == "missing"


def test_key_path_from_conf(tmp_path):
    assert jwt.key_path_from_conf(None, "/s") == "/s/jwt_hs256.key"
    assert jwt.key_path_from_conf("disable_token_creation,jwt_key=/etc/k.key", "/s") == "/etc/k.key"


def test_key_file_created_private_and_reused(tmp_path):
    path = str(tmp_path / "state" / "jwt_hs256.key")
    key = jwt.load_key(path, create=True)
    assert len(key) == 32
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert jwt.load_key(path) == key


def test_key_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "k"
    path.write_bytes(os.urandom(32))
    os.chmod(path, 0o640)
    with pytest.raises(jwt.KeyFileError, match="chmod 600"):
        jwt.load_key(str(path))
    os.chmod(path, 0o600)
    assert jwt.load_key(str(path))
    with pytest.raises(jwt.KeyFileError, match="does not exist"):
        jwt.load_key(str(tmp_path / "nope"))
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    os.chmod(short, 0o600)
    with pytest.raises(jwt.KeyFileError, match="too short"):
        jwt.load_key(str(short))


# -- the controller's settings ------------------------------------------------------------------
from batch_backend import conf as confmod  # noqa: E402
from batch_backend.auth import authority  # noqa: E402


def test_parse_tcp_address():
    p = authority.parse_tcp_address
    assert p(None) is None and p("") is None and p("no") is None
    assert p("6820") == ("127.0.0.1", 6820)  # loopback unless told otherwise
    assert p(":6820") == ("127.0.0.1", 6820)
    assert p("0.0.0.0:6820") == ("0.0.0.0", 6820)
    assert p("[::1]:6820") == ("::1", 6820)
    for bad in ("host:", "host:port", "1:99999"):
        with pytest.raises(authority.AuthConfigError):
            p(bad)


def test_authority_settings(tmp_path):
    conf = confmod.parse_conf("NodeName=n1 CPUs=1\nPartitionName=p Nodes=ALL\n"
                              f"AuthAltParameters=jwt_key={tmp_path}/k.key,disable_token_creation,"
                              "max_token_lifespan=600\nBatchHubAdmins=alice,bob\n")
    a = authority.Authority(conf, str(tmp_path / "state"))
    assert a.key_path == f"{tmp_path}/k.key" and os.path.exists(a.key_path)
    assert a.disable_token_creation and a.max_token_lifespan == 600
    assert a.is_admin(0, "root") and a.is_admin(os.getuid(), "x") and a.is_admin(12345, "bob")
    assert not a.is_admin(12345, "carol")
    assert a.verify(a.mint("carol", 60))["sun"] == "carol"


def test_authority_refuses_an_open_key_only_when_tcp_needs_it(tmp_path):
    path = tmp_path / "open.key"
    path.write_bytes(os.urandom(32))
    os.chmod(path, 0o644)
    conf = confmod.parse_conf(f"NodeName=n1 CPUs=1\nPartitionName=p Nodes=ALL\nAuthAltParameters=jwt_key={path}\n")
    with pytest.raises(authority.AuthConfigError, match="chmod 600"):
        authority.Authority(conf, str(tmp_path), required=True)
    a = authority.Authority(conf, str(tmp_path))  # no TCP listener: the socket keeps working
    with pytest.raises(jwt.TokenError) as e:
        a.verify("x.y.z")
    assert e.value.reason == "no_key"
    with pytest.raises(jwt.KeyFileError):
        a.mint("alice")
