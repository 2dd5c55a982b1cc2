"""Where a node daemon on another host finds the controller, and its node credential.

A node on the controller's host talks over the Unix socket; one on another
host talks TCP: the controller's address comes from ``--controller`` or from
slurm.conf (``SlurmctldHost=NAME[(ADDR)]`` plus the port of
``BatchHubTCPAddress``; TLS when ``BatchHubTLSCert`` is set), the credential from ``--token-file`` or
``BatchHubNodeTokenFile=PATH`` (a token minted by ``batchhub node-token``).
"""

import os
import stat

from .. import conf as confmod
from ..client import is_tcp_address


class NodeConfigError(OSError):
    """The controller address or the node credential is unusable: the daemon does not start."""


def controller_address(flag, conf):
    """``HOST:PORT`` of the controller over TCP, or None to use the local socket."""
    if flag:
        return flag if is_tcp_address(flag) else f"{flag}:{_tcp_port(conf) or 6817}"
    if not conf:
        return None
    host = confmod.get_option(conf, "SlurmctldHost") or confmod.get_option(conf, "ControlMachine")
    port = _tcp_port(conf)
    if not host or not port:
        return None
    # SlurmctldHost=name(address): the address is how other hosts reach it
    name, _, addr = str(host).split(",")[0].partition("(")
    host = (addr.rstrip(")") or name).strip()
    # a controller serving TLS (BatchHubTLSCert) is spoken to over TLS; the node trusts its
    # certificate through the system's CAs or $SSL_CERT_FILE
    scheme = "https://" if confmod.get_option(conf, "BatchHubTLSCert") else ""
    return scheme + (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


def _tcp_port(conf):
    from ..auth.authority import parse_tcp_address
    try:
        tcp = parse_tcp_address(confmod.get_option(conf, "BatchHubTCPAddress")) if conf else None
    except Exception:  # noqa: BLE001 -- the controller reports a bad setting; here it just has no port
        return None
    return tcp[1] if tcp else None


def read_node_token(path, address):
    """The node credential in ``path`` (None when talking over the socket and no path is set)."""
    if not path:
        if is_tcp_address(address):
            raise NodeConfigError(f"a node daemon talking TCP to {address} needs a node credential: "
                                  "--token-file PATH or BatchHubNodeTokenFile=PATH (see 'batchhub node-token')")
        return None
    try:
        st = os.stat(path)
        if st.st_mode & 0o077 or not stat.S_ISREG(st.st_mode):
            raise NodeConfigError(f"node credential {path} must be a regular file readable by its owner only "
                                  f"(mode {stat.S_IMODE(st.st_mode):o}); run: chmod 600 {path}")
        with open(path) as f:
            token = f.read().strip()
    except FileNotFoundError:
        raise NodeConfigError(f"node credential {path} does not exist") from None
    except PermissionError:
        raise NodeConfigError(f"node credential {path} is not readable") from None
    if not token:
        raise NodeConfigError(f"node credential {path} is empty")
    return token
