"""HS256 JSON Web Tokens with the standard library only (Slurm's auth/jwt, in spirit).

A token is ``base64url(header).base64url(claims).base64url(HMAC-SHA256)``, the
header ``{"alg":"HS256","typ":"JWT"}`` and the claims Slurm uses: ``sun`` (the
user name), ``iat`` (issued at) and ``exp`` (expiry), both epoch seconds. The
key is the cluster's key file (``AuthAltParameters=jwt_key=PATH``, default
``<StateSaveLocation>/jwt_hs256.key``), readable only by the service account.

:func:`verify` raises :class:`TokenError` whose ``reason`` says precisely why
a token was refused (missing, malformed, unsupported algorithm, bad
signature, expired, ...): the controller answers 401 with it and audits it.
No third-party import: the CLI and the controller both use this module.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import stat
import time

#: Slurm's default token lifespan (``scontrol token`` without ``lifespan=``).
DEFAULT_LIFESPAN = 1800
KEY_FILE_NAME = "jwt_hs256.key"
_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(Exception):
    """A token was refused; ``reason`` is a short machine-friendly code, str(e) the sentence."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


class KeyFileError(Exception):
    """The key file is missing, unreadable, too short or readable by others."""


# -- encoding -----------------------------------------------------------------------------
def _b64encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text):
    if not text or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def _json_part(obj):
    return _b64encode(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


def _sign(key, signing_input):
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()


def encode(key, claims, header=None):
    """Sign ``claims`` (a dict) with HS256; returns the compact token string."""
    signing_input = _json_part(header or _HEADER) + "." + _json_part(claims)
    return signing_input + "." + _b64encode(_sign(key, signing_input))


def make_token(key, username, lifespan=DEFAULT_LIFESPAN, now=None):
    """A token for ``username`` valid ``lifespan`` seconds from ``now``."""
    if not isinstance(username, str) or not username:
        raise ValueError("username must be a non-empty string")
    if isinstance(lifespan, bool) or not isinstance(lifespan, int) or lifespan <= 0:
        raise ValueError("lifespan must be a positive number of seconds")
    now = int(time.time() if now is None else now)
    return encode(key, {"sun": username, "iat": now, "exp": now + lifespan})


#: Node credentials live long (a node daemon restarts with the same file); rotate by re-minting.
NODE_TOKEN_LIFESPAN = 365 * 24 * 3600


def make_node_token(key, nodes, lifespan=NODE_TOKEN_LIFESPAN, now=None):
    """A node credential: a token for the node daemons of ``nodes`` (a hostlist expression).

    Its ``node`` claim makes it a node credential and nothing else: the
    controller lets it register, poll and report for those nodes only, and
    refuses it on every user endpoint. ``sun`` (``node:<nodes>``) names the
    holder in audit lines; no Unix user of that name is looked up.
    """
    if not isinstance(nodes, str) or not nodes.strip():
        raise ValueError("nodes must be a non-empty hostlist expression")
    if isinstance(lifespan, bool) or not isinstance(lifespan, int) or lifespan <= 0:
        raise ValueError("lifespan must be a positive number of seconds")
    now = int(time.time() if now is None else now)
    nodes = nodes.strip()
    return encode(key, {"sun": f"node:{nodes}", "node": nodes, "iat": now, "exp": now + lifespan})


# -- verification ---------------------------------------------------------------------------
def _decode_part(text, what):
    try:
        obj = json.loads(_b64decode(text))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed", f"malformed token: {what} is not base64url-encoded JSON") from None
    if not isinstance(obj, dict):
        raise TokenError("malformed", f"malformed token: {what} is not a JSON object")
    return obj


def unverified_claims(token):
    """The claims without checking anything (for audit lines only: never trust them)."""
    try:
        return _decode_part(token.split(".")[1], "claims")
    except (TokenError, IndexError, AttributeError):
        return {}


def verify(key, token, now=None, leeway=0):
    """Check ``token`` against ``key``; return its claims or raise :class:`TokenError`.

    The order matters for security: the algorithm is checked before anything
    else (``alg: none`` and any other algorithm are refused outright), the
    signature before the claims are believed, the expiry last.
    """
    if token is None or (isinstance(token, str) and not token.strip()):
        raise TokenError("missing", "missing token")
    if not isinstance(token, str):
        raise TokenError("malformed", "malformed token: not a string")
    token = token.strip()
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed", f"malformed token: expected 3 dot-separated parts, got {len(parts)}")
    header = _decode_part(parts[0], "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise TokenError("malformed", "malformed token: header has no 'alg'")
    if alg.lower() == "none":
        raise TokenError("alg_none", "unsigned token refused (alg 'none')")
    if alg != "HS256":
        raise TokenError("bad_alg", f"unsupported token algorithm {alg!r} (only HS256)")
    if header.get("typ") not in (None, "JWT"):
        raise TokenError("malformed", f"malformed token: unexpected type {header.get('typ')!r}")
    if not parts[2]:
        raise TokenError("unsigned", "unsigned token refused (empty signature)")
    try:
        signature = _b64decode(parts[2])
    except ValueError:
        raise TokenError("malformed", "malformed token: signature is not base64url") from None
    if not hmac.compare_digest(signature, _sign(key, parts[0] + "." + parts[1])):
        raise TokenError("bad_signature", "invalid token signature (forged, or signed with another key)")
    claims = _decode_part(parts[1], "claims")
    sun = claims.get("sun")
    if not isinstance(sun, str) or not sun:
        raise TokenError("no_user", "token has no user name ('sun' claim)")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise TokenError("no_expiry", "token has no expiry ('exp' claim)")
    iat = claims.get("iat")
    if iat is not None and (isinstance(iat, bool) or not isinstance(iat, (int, float))):
        raise TokenError("malformed", "malformed token: 'iat' is not a number")
    now = time.time() if now is None else now
    if now > exp + leeway:
        raise TokenError("expired", f"token expired {int(now - exp)} s ago")
    if iat is not None and iat > now + 60 + leeway:
        raise TokenError("not_yet_valid", "token issued in the future (check the clocks)")
    return claims


def bearer_token(header_value):
    """The token of an ``Authorization: Bearer <token>`` header value, or None if absent.

    A header with another scheme raises :class:`TokenError` (``malformed``).
    """
    if header_value is None or not header_value.strip():
        return None
    scheme, _, value = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenError("malformed", f"unsupported authorization scheme {scheme!r} (use 'Bearer <token>')")
    if not value.strip():
        raise TokenError("missing", "missing token after 'Bearer'")
    return value.strip()


# -- key file ---------------------------------------------------------------------------------
def key_path_from_conf(auth_alt_parameters, state_dir):
    """``AuthAltParameters=jwt_key=PATH[,...]`` -> PATH; else ``<state_dir>/jwt_hs256.key``."""
    for item in (auth_alt_parameters or "").split(","):
        name, eq, value = item.strip().partition("=")
        if eq and name.strip().lower() == "jwt_key" and value.strip():
            return os.path.expanduser(value.strip())
    return os.path.join(state_dir, KEY_FILE_NAME)


def check_key_file(path):
    """Refuse a key file anyone but its owner (the service account) could read or change."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"JWT key {path} is not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(f"JWT key {path} is accessible by group/others (mode {stat.S_IMODE(st.st_mode):o}); "
                           f"run: chmod 600 {path}")
    if st.st_uid != os.geteuid():
        raise KeyFileError(f"JWT key {path} is owned by uid {st.st_uid}, not by the service account "
                           f"(uid {os.geteuid()})")


def load_key(path, create=False):
    """The key bytes of ``path`` (created 0600 with 32 random bytes if missing and ``create``)."""
    if create and not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # someone else created it just now: read theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
    try:
        check_key_file(path)
        with open(path, "rb") as f:
            key = f.read()
    except FileNotFoundError:
        raise KeyFileError(f"JWT key {path} does not exist") from None
    except PermissionError:
        raise KeyFileError(f"JWT key {path} is not readable") from None
    if len(key) < 16:
        raise KeyFileError(f"JWT key {path} is too short ({len(key)} bytes; at least 16)")
    return key
