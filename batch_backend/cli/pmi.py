"""The PMI-1 process-manager side of a job step (srun ``--mpi=pmi1|pmi2``).

MPI libraries bootstrap through PMI: each rank asks the process manager for
its rank and the world size, publishes its network address ("business
card") in a key-value space (KVS), meets the other ranks in a barrier, then
reads theirs. The MPICH wheel speaks only the PMI-1 wire protocol (STACK_NOTES
"MPI: mpich wheel + mpi4py"; MPICH's ``src/pmi/maint/pmi-1.1.txt``), so this
server speaks PMI-1 whatever ``--mpi`` says.

A rank finds the server one of two ways:

* ``PMI_PORT=host:port`` + ``PMI_ID=<rank>``: the rank connects and sends
  ``cmd=initack pmiid=R``; the server answers ``cmd=initack rc=0`` followed by
  ``cmd=set size=N``, ``cmd=set rank=R``, ``cmd=set debug=0``. This is what
  srun's steps use (tasks run under node daemons, possibly on other hosts).
* ``PMI_FD=<fd>`` (+ ``PMI_RANK``, ``PMI_SIZE``): an inherited socket end,
  see :meth:`PMIServer.socketpair`; for ranks forked by the server's owner.

Requests are one line of space-separated ``key=value`` words, ``cmd=`` first;
values escape spaces with backslashes. One KVS per step (``kvsname``), seeded
with ``PMI_process_mapping`` so ranks know which of them share a node.
``barrier_in`` is answered (``barrier_out``) once every one of the ``size``
ranks has entered it; puts are visible to every get after the barrier (and
in practice at once). Ranks may connect in any order and at any time;
commands on one connection are answered in order.

Stdlib only (srun imports it): one selector thread serves every connection.
"""

import os
import selectors
import socket
import threading

__all__ = ["PMIServer", "process_mapping", "parse_command", "format_command"]

#: Limits announced by ``get_maxes`` (those of hydra; MPICH sizes its buffers by them).
KVSNAME_MAX = 256
KEYLEN_MAX = 64
VALLEN_MAX = 1024


def process_mapping(rank_nodes):
    """``PMI_process_mapping`` for a list giving each rank's node index.

    MPICH's vector format: ``(vector,(first_node,node_count,ranks_per_node),...)``,
    one block per run of consecutive nodes holding the same number of
    consecutive ranks. ``[0, 0, 1, 1]`` -> ``(vector,(0,2,2))``;
    ``[0, 0, 0, 1]`` -> ``(vector,(0,1,3),(1,1,1))``; cyclic ``[0, 1, 0, 1]``
    -> ``(vector,(0,2,1),(0,2,1))``.
    """
    runs = []  # [node, ranks] for each run of equal node ids, in rank order
    for node in rank_nodes:
        if runs and runs[-1][0] == node:
            runs[-1][1] += 1
        else:
            runs.append([node, 1])
    blocks = []  # [first_node, node_count, ranks_per_node]
    for node, count in runs:
        last = blocks[-1] if blocks else None
        if last and last[2] == count and last[0] + last[1] == node:
            last[1] += 1
        else:
            blocks.append([node, 1, count])
    return "(vector," + ",".join(f"({a},{b},{c})" for a, b, c in blocks) + ")"


def _unescape(value):
    if "\\" not in value:
        return value
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _escape(value):
    return str(value).replace("\\", "\\\\").replace(" ", "\\ ")


def parse_command(line):
    """One PMI-1 request line -> dict (``cmd`` included). Backslash escapes are honoured.

    The value of ``put``'s last attribute ``value=`` runs to the end of the line,
    so an (unescaped) space inside a value from an old client is kept.
    """
    line = line.rstrip("\r\n")
    fields = {}
    if line.startswith("cmd=put ") and " value=" in line:
        head, _, value = line.partition(" value=")
        fields["value"] = _unescape(value)
        line = head
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and line[i] != " ":
            i += 2 if line[i] == "\\" and i + 1 < n else 1
        word = line[start:i]
        key, eq, value = word.partition("=")
        fields.setdefault(key, _unescape(value) if eq else "")
    return fields


def format_command(cmd, **fields):
    """``cmd=<cmd> k=v ...\\n`` with spaces escaped in values."""
    words = [f"cmd={cmd}"] + [f"{k}={_escape(v)}" for k, v in fields.items()]
    return (" ".join(words) + "\n").encode()


class _Conn:
    __slots__ = ("sock", "rank", "inbuf", "outbuf", "mcmd", "finalized")

    def __init__(self, sock, rank=None):
        self.sock = sock
        self.rank = rank
        self.inbuf = b""
        self.outbuf = bytearray()
        self.mcmd = None  # lines of a multi-line ``mcmd=spawn`` request being read
        self.finalized = False


class PMIServer:
    """The PMI-1 server of one step: ``size`` ranks, one KVS.

    ``rank_nodes`` (each rank's node index) seeds ``PMI_process_mapping``.
    ``host`` is the address to listen on (``""`` = every interface) and
    ``advertise`` the host put in :attr:`address` (default: ``host``, or
    127.0.0.1 for every interface). ``on_abort(rank, exit_code, message)`` is
    called (from the server thread) when a rank sends ``cmd=abort``.

    Use: ``server = PMIServer(4, rank_nodes=[0, 0, 1, 1]).start()``, give the
    tasks ``PMI_PORT=server.address`` and ``PMI_ID=<rank>``, ``server.close()``.
    """

    def __init__(self, size=None, *, rank_nodes=None, kvsname=None, appnum=0, universe_size=None,
                 host="127.0.0.1", advertise=None, on_abort=None):
        self.size = None
        self.kvsname = kvsname or f"kvs_{os.getpid()}_{os.urandom(4).hex()}"
        self.appnum = appnum
        self.universe_size = universe_size
        self.on_abort = on_abort
        self.kvs = {}
        if size is not None:
            self.configure(size, rank_nodes)
        self.barrier_waiting = []   # connections inside the current barrier
        self.barriers_done = 0
        self.aborted = None         # (rank, exit_code, message) of the first abort
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._conns = {}
        self._thread = None
        self._closed = False
        self._listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(4096)
        self._listener.setblocking(False)
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        port = self._listener.getsockname()[1]
        shown = advertise or (host if host not in ("", "0.0.0.0", "::") else "127.0.0.1")
        self.address = f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"

    def configure(self, size, rank_nodes=None):
        """Set the world size (and layout) once it is known.

        A server may be started before (srun must announce its address before the
        controller lays the step out); requests of ranks that connect meanwhile
        wait, unanswered, until this is called.
        """
        if int(size) < 1:
            raise ValueError("a PMI world has at least one rank")
        if rank_nodes is not None:
            if len(rank_nodes) != int(size):
                raise ValueError("rank_nodes must give one node per rank")
            self.kvs["PMI_process_mapping"] = process_mapping(rank_nodes)
        self.universe_size = self.universe_size or int(size)
        self.size = int(size)
        self._wake()

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except (OSError, AttributeError):
            pass

    # -- lifecycle -------------------------------------------------------------
    def start(self):
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._serve, name="pmi-server", daemon=True)
        self._thread.start()
        return self

    def close(self):
        """Stop serving and close every connection (ranks still connected see EOF)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        for conn in list(self._conns.values()):
            try:
                conn.sock.close()
            except OSError:
                pass
        self._conns.clear()
        for s in (self._listener, self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass
        try:
            self._sel.close()
        except (OSError, ValueError, RuntimeError):
            pass

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc):
        self.close()

    def socketpair(self, rank):
        """A connected socket end for ``PMI_FD`` mode: give the returned socket's fd to
        the rank (with ``PMI_RANK``/``PMI_SIZE``); the server keeps the other end."""
        mine, theirs = socket.socketpair()
        self._add(mine, rank)
        return theirs

    # -- the loop ----------------------------------------------------------------------
    def _add(self, sock, rank=None):
        sock.setblocking(False)
        conn = _Conn(sock, rank)
        with self._lock:
            self._conns[sock.fileno()] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn)
        if self._thread is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        return conn

    def _serve(self):
        while not self._closed:
            try:
                events = self._sel.select(1.0)
            except (OSError, ValueError):
                return
            for key, mask in events:
                if self._closed:
                    return
                if key.data is None:
                    self._accept()
                elif key.data == "wake":
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                    if self.size is not None:  # configured: answer what waited for it
                        for conn in list(self._conns.values()):
                            if conn.inbuf:
                                self._process(conn)
                else:
                    conn = key.data
                    if mask & selectors.EVENT_READ:
                        self._read(conn)
                    if mask & selectors.EVENT_WRITE and conn.sock.fileno() >= 0:
                        self._flush(conn)

    def _accept(self):
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            sock.setblocking(False)
            conn = _Conn(sock)
            self._conns[sock.fileno()] = conn
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn):
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.inbuf += data
        if self.size is not None:
            self._process(conn)

    def _process(self, conn):
        while b"\n" in conn.inbuf:
            raw, conn.inbuf = conn.inbuf.split(b"\n", 1)
            line = raw.decode("utf-8", "surrogateescape")
            if conn.mcmd is not None:
                conn.mcmd.append(line)
                if line.strip() == "endcmd":
                    self._spawn(conn)
                continue
            if line.startswith("mcmd="):
                conn.mcmd = [line]
                continue
            if not line.strip():
                continue
            self._handle(conn, parse_command(line))
        if conn.outbuf:
            self._flush(conn)

    def _drop(self, conn):
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self._conns.pop(conn.sock.fileno(), None)
        if conn in self.barrier_waiting:
            self.barrier_waiting.remove(conn)
        try:
            conn.sock.close()
        except OSError:
            pass

    def _send(self, conn, data):
        conn.outbuf += data

    def _flush(self, conn):
        try:
            while conn.outbuf:
                n = conn.sock.send(conn.outbuf)
                del conn.outbuf[:n]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            conn.outbuf.clear()
            self._drop(conn)
            return
        try:
            self._sel.modify(conn.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0), conn)
        except (KeyError, ValueError, OSError):
            pass

    # -- the protocol --------------------------------------------------------------------
    def _handle(self, conn, req):
        cmd = req.get("cmd", "")
        send = self._send
        if cmd == "initack":
            try:
                conn.rank = int(req.get("pmiid", ""))
            except ValueError:
                send(conn, format_command("initack", rc=-1, msg="bad_pmiid"))
                return
            send(conn, format_command("initack", rc=0) + format_command("set", size=self.size)
                 + format_command("set", rank=conn.rank) + format_command("set", debug=0))
        elif cmd == "init":
            send(conn, format_command("response_to_init", pmi_version=1, pmi_subversion=1, rc=0))
        elif cmd == "get_maxes":
            send(conn, format_command("maxes", kvsname_max=KVSNAME_MAX, keylen_max=KEYLEN_MAX,
                                      vallen_max=VALLEN_MAX, rc=0))
        elif cmd == "get_appnum":
            send(conn, format_command("appnum", appnum=self.appnum, rc=0))
        elif cmd == "get_universe_size":
            send(conn, format_command("universe_size", size=self.universe_size, rc=0))
        elif cmd == "get_my_kvsname":
            send(conn, format_command("my_kvsname", kvsname=self.kvsname, rc=0))
        elif cmd == "put":
            key = req.get("key", "")
            if not key:
                send(conn, format_command("put_result", rc=-1, msg="no_key_given"))
            elif req.get("kvsname", self.kvsname) != self.kvsname:
                send(conn, format_command("put_result", rc=-1, msg="kvs_not_found"))
            else:
                with self._lock:
                    self.kvs[key] = req.get("value", "")
                send(conn, format_command("put_result", rc=0))
        elif cmd == "get":
            key = req.get("key", "")
            value = self.kvs.get(key)
            if value is None:
                send(conn, format_command("get_result", rc=-1, found="FALSE", msg="key_not_found"))
            else:
                send(conn, format_command("get_result", rc=0, found="TRUE", value=value))
        elif cmd == "barrier_in":
            if conn not in self.barrier_waiting:
                self.barrier_waiting.append(conn)
            self._maybe_release_barrier()
        elif cmd == "finalize":
            conn.finalized = True
            send(conn, format_command("finalize_ack", rc=0))
        elif cmd == "abort":
            try:
                code = int(req.get("exitcode", "1"))
            except ValueError:
                code = 1
            message = req.get("message", "")
            if self.aborted is None:
                self.aborted = (conn.rank, code, message)
            if self.on_abort is not None:
                try:
                    self.on_abort(conn.rank, code, message)
                except Exception:  # noqa: BLE001 -- a callback bug must not stop the server
                    pass
        elif cmd in ("publish_name", "unpublish_name", "lookup_name"):
            reply = {"publish_name": "publish_result", "unpublish_name": "unpublish_result",
                     "lookup_name": "lookup_result"}[cmd]
            send(conn, self._names(cmd, reply, req))
        else:
            send(conn, format_command(cmd or "unknown", rc=-1, msg="unknown_command"))

    def _names(self, cmd, reply, req):
        service = req.get("service", "")
        key = f"\0service:{service}"
        if cmd == "publish_name":
            with self._lock:
                self.kvs[key] = req.get("port", "")
            return format_command(reply, rc=0)
        if cmd == "unpublish_name":
            with self._lock:
                found = self.kvs.pop(key, None) is not None
            return format_command(reply, rc=0) if found else format_command(reply, rc=-1, msg="service_not_found")
        port = self.kvs.get(key)
        if port is None:
            return format_command(reply, rc=-1, msg="service_not_found")
        return format_command(reply, rc=0, port=port)

    def _maybe_release_barrier(self):
        if len(self.barrier_waiting) < self.size:
            return
        waiting, self.barrier_waiting = self.barrier_waiting, []
        self.barriers_done += 1
        for c in waiting:
            self._send(c, format_command("barrier_out", rc=0))
            self._flush(c)

    def _spawn(self, conn):
        """MPI_Comm_spawn is not supported by steps: refuse cleanly instead of hanging."""
        conn.mcmd = None
        self._send(conn, format_command("spawn_result", rc=-1, msg="spawn_not_supported"))
