"""The controller's side of token authentication: key, admins, TCP listener settings.

Settings (slurm.conf):

* ``AuthAltParameters=jwt_key=PATH`` (Slurm's name): the HS256 key file;
  default ``<StateSaveLocation>/jwt_hs256.key``, created 0600 when missing.
* ``BatchHubTCPAddress=[HOST:]PORT``: also serve the API on TCP (off unless
  set; HOST defaults to 127.0.0.1). Callers there authenticate with
  ``Authorization: Bearer <jwt>``.
* ``BatchHubTLSCert=PATH`` / ``BatchHubTLSKey=PATH``: serve TCP over TLS.
* ``BatchHubAdmins=user1,user2``: admins besides root and the service account.
"""

import logging
import os
import time

from .. import conf as confmod
from . import jwt

log = logging.getLogger("batchhub.auth")

DEFAULT_TCP_HOST = "127.0.0.1"
#: job tokens: the job's time limit plus this grace (steps may still report after the limit)
JOB_TOKEN_GRACE = 3600
#: job tokens of jobs without a time limit (the ``jid`` claim ends them with the job anyway)
JOB_TOKEN_LIFESPAN = 30 * 24 * 3600


class AuthConfigError(Exception):
    """A TCP/TLS/token setting is unusable: the controller refuses to start with it."""


def parse_tcp_address(value):
    """``'127.0.0.1:6820'``, ``'[::1]:6820'``, ``':6820'``, ``'6820'`` -> (host, port); None if unset/off."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text.lower() in ("no", "off", "none", "0"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or DEFAULT_TCP_HOST
    if not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise AuthConfigError(f"BatchHubTCPAddress={value}: expected [HOST:]PORT")
    return host, int(port)


def ssl_context(conf):
    """An ``ssl.SSLContext`` when BatchHubTLSCert/BatchHubTLSKey are set, else None."""
    cert = confmod.get_option(conf, "BatchHubTLSCert")
    key = confmod.get_option(conf, "BatchHubTLSKey")
    if not cert and not key:
        return None
    if not cert or not key:
        raise AuthConfigError("BatchHubTLSCert and BatchHubTLSKey must be set together")
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise AuthConfigError(f"cannot load TLS certificate {cert} / key {key}: {e}") from None
    return ctx


class Authority:
    """Verifies and mints tokens; decides who is an admin."""

    def __init__(self, conf, state_dir, required=False):
        alt = confmod.get_option(conf, "AuthAltParameters")
        self.key_path = jwt.key_path_from_conf(alt, state_dir)
        params = {}
        for item in (alt or "").split(","):
            name, _, value = item.strip().partition("=")
            params[name.strip().lower()] = value.strip()
        # Slurm's names: only admins mint tokens / users' tokens live at most N seconds
        self.disable_token_creation = "disable_token_creation" in params
        max_life = params.get("max_token_lifespan")
        if max_life is not None and not ((max_life.isascii() and max_life.isdigit()) and int(max_life) > 0):
            raise AuthConfigError(f"AuthAltParameters: bad max_token_lifespan={max_life!r}")
        self.max_token_lifespan = int(max_life) if max_life else None
        self.admins = {a.strip() for a in (confmod.get_option(conf, "BatchHubAdmins", "") or "").split(",")
                       if a.strip()}
        self.key = None
        self.key_error = None
        try:
            self.key = jwt.load_key(self.key_path, create=True)
        except (jwt.KeyFileError, OSError) as e:
            self.key_error = str(e)
            if required:
                raise AuthConfigError(str(e)) from None
            log.warning("token authentication unavailable: %s", e)

    def is_admin(self, uid, user):
        return uid == 0 or uid == os.getuid() or user in self.admins

    def verify(self, token):
        """Claims of a valid token, else :class:`jwt.TokenError`."""
        if self.key is None:
            raise jwt.TokenError("no_key", f"token authentication unavailable ({self.key_error})")
        return jwt.verify(self.key, token)

    def mint(self, username, lifespan=jwt.DEFAULT_LIFESPAN, **claims):
        if self.key is None:
            raise jwt.KeyFileError(f"token creation unavailable ({self.key_error})")
        if not claims:
            return jwt.make_token(self.key, username, lifespan)
        now = int(time.time())
        return jwt.encode(self.key, dict(claims, sun=username, iat=now, exp=now + lifespan))

    def mint_node(self, nodes, lifespan=jwt.NODE_TOKEN_LIFESPAN):
        """A node credential for the daemons of ``nodes`` (see :func:`jwt.make_node_token`)."""
        if self.key is None:
            raise jwt.KeyFileError(f"token creation unavailable ({self.key_error})")
        return jwt.make_node_token(self.key, nodes, lifespan)

    def mint_job_token(self, job):
        """The token a job's processes use to reach the controller over TCP (srun, squeue in a job).

        It is the job owner's own token, bound to the job by a ``jid`` claim: the
        controller refuses it once the job has ended, whatever its expiry says.
        """
        limit = job.get("time_limit")
        lifespan = JOB_TOKEN_LIFESPAN if limit is None else int(limit * 60) + JOB_TOKEN_GRACE
        return self.mint(job["user"], lifespan, jid=job["job_id"])
