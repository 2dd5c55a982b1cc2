"""Who is calling: kernel-verified peer credentials on the Unix socket.

``SO_PEERCRED`` gives the uid/gid of the process at the other end of a Unix
socket, checked by the kernel: the single-host equivalent of MUNGE. Admins are
root and the controller's own account (Slurm's SlurmUser).
"""

import grp
import os
import pwd
import socket
import struct
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    user: str
    admin: bool
    node: bool = False  # a node daemon (same privileges as the controller)
    #: a node credential (TCP): the node names it speaks for; None for every other caller.
    #: Such a caller is a node daemon and nothing else: no user endpoint accepts it.
    nodes: frozenset = None

    def speaks_for(self, node_name):
        """May this caller act as the node daemon of ``node_name``?"""
        return self.node and (self.nodes is None or node_name in self.nodes)


@lru_cache(maxsize=4096)
def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=4096)
def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


@lru_cache(maxsize=4096)
def lookup_user(name):
    """(uid, gid) of a user name or numeric string; KeyError if unknown."""
    if (name.isascii() and name.isdigit()):
        uid = int(name)
        try:
            return uid, pwd.getpwuid(uid).pw_gid
        except KeyError:
            return uid, uid
    try:
        pw = pwd.getpwnam(name)
    except ValueError:  # a NUL in the name: no such user
        raise KeyError(name) from None
    return pw.pw_uid, pw.pw_gid


def peer_credentials(sock):
    """(pid, uid, gid) of the peer of a connected Unix socket, or None for TCP."""
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", data)


def identity_for_uid(uid, gid):
    me = os.getuid()
    return Identity(uid=uid, gid=gid, user=user_name(uid), admin=(uid == 0 or uid == me),
                    node=(uid == 0 or uid == me))
