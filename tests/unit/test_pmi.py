"""The step launcher's PMI-1 server, driven over its real wire protocol and by real mpi4py ranks.

No mocks: the wire tests speak PMI-1 lines over TCP sockets (or a socketpair
for ``PMI_FD``) exactly as MPICH's simple PMI client does; the MPI tests start
real Python processes importing mpi4py (MPICH wheel) with ``PMI_PORT`` +
``PMI_ID`` (or ``PMI_FD``) in their environment and check what MPI computed.
"""

import os
import socket
import subprocess
import sys
import threading

import pytest

from batch_backend.cli.pmi import PMIServer, format_command, parse_command, process_mapping

PY = sys.executable


class Rank:
    """A PMI-1 client connection, one request line at a time."""

    def __init__(self, server=None, sock=None):
        if sock is None:
            host, _, port = server.address.rpartition(":")
            sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock = sock
        self.sock.settimeout(10)
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError("server closed the connection")
            self.buf += data
        raw, self.buf = self.buf.split(b"\n", 1)
        return raw.decode()

    def ask(self, line):
        self.send(line)
        return parse_command(self.line())

    def close(self):
        self.sock.close()


@pytest.fixture
def server():
    servers = []

    def make(size, **kw):
        s = PMIServer(size, **kw).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


# -- pure helpers --------------------------------------------------------------------

def test_process_mapping_block_layout_is_one_vector_block():
    assert process_mapping([0, 0, 1, 1]) == "(vector,(0,2,2))"
    assert process_mapping([0, 0, 0, 0]) == "(vector,(0,1,4))"


def test_process_mapping_uneven_and_cyclic_layouts():
    assert process_mapping([0, 0, 0, 1]) == "(vector,(0,1,3),(1,1,1))"
    assert process_mapping([0, 1, 0, 1]) == "(vector,(0,2,1),(0,2,1))"
    assert process_mapping([0, 1, 2]) == "(vector,(0,3,1))"


def test_parse_command_honours_escapes_and_keeps_spaces_in_put_values():
    assert parse_command("cmd=get kvsname=k key=a\\ b\n") == {"cmd": "get", "kvsname": "k", "key": "a b"}
    assert parse_command("cmd=put kvsname=k key=x value=hello world")["value"] == "hello world"
    assert format_command("get_result", rc=0, value="a b") == b"cmd=get_result rc=0 value=a\\ b\n"


# -- wire protocol ---------------------------------------------------------------------

def test_initack_handshake_gives_rank_size_and_debug(server):
    srv = server(3)
    r = Rank(srv)
    r.send("cmd=initack pmiid=2")
    assert [r.line() for _ in range(4)] == ["cmd=initack rc=0", "cmd=set size=3", "cmd=set rank=2",
                                             "cmd=set debug=0"]
    assert r.ask("cmd=init pmi_version=1 pmi_subversion=1") == {
        "cmd": "response_to_init", "pmi_version": "1", "pmi_subversion": "1", "rc": "0"}
    maxes = r.ask("cmd=get_maxes")
    assert maxes["cmd"] == "maxes" and int(maxes["vallen_max"]) >= 1024 and maxes["rc"] == "0"
    assert r.ask("cmd=get_appnum") == {"cmd": "appnum", "appnum": "0", "rc": "0"}
    assert r.ask("cmd=get_universe_size") == {"cmd": "universe_size", "size": "3", "rc": "0"}
    assert r.ask("cmd=get_my_kvsname") == {"cmd": "my_kvsname", "kvsname": srv.kvsname, "rc": "0"}
    assert r.ask("cmd=finalize") == {"cmd": "finalize_ack", "rc": "0"}


def test_put_get_and_missing_key(server):
    srv = server(1, rank_nodes=[0])
    r = Rank(srv)
    kvs = r.ask("cmd=get_my_kvsname")["kvsname"]
    assert r.ask(f"cmd=put kvsname={kvs} key=bc-0 value=tcp://10.0.0.1:5000$x")["rc"] == "0"
    got = r.ask(f"cmd=get kvsname={kvs} key=bc-0")
    assert (got["cmd"], got["rc"], got["value"]) == ("get_result", "0", "tcp://10.0.0.1:5000$x")
    missing = r.ask(f"cmd=get kvsname={kvs} key=nope")
    assert missing["cmd"] == "get_result" and missing["rc"] != "0"
    assert r.ask(f"cmd=get kvsname={kvs} key=PMI_process_mapping")["value"] == "(vector,(0,1,1))"


def test_barrier_waits_for_every_rank_whatever_the_connection_order(server):
    srv = server(3)
    ranks = {}
    for rank in (2, 0, 1):  # connect out of order
        ranks[rank] = Rank(srv)
        ranks[rank].send(f"cmd=initack pmiid={rank}")
        [ranks[rank].line() for _ in range(4)]
    kvs = srv.kvsname
    for rank in (1, 2, 0):
        assert ranks[rank].ask(f"cmd=put kvsname={kvs} key=card-{rank} value=addr{rank}")["rc"] == "0"
    ranks[1].send("cmd=barrier_in")
    ranks[2].send("cmd=barrier_in")
    ranks[1].sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        ranks[1].line()  # two of three arrived: nobody leaves yet
    ranks[1].sock.settimeout(10)
    ranks[0].send("cmd=barrier_in")
    for rank in (0, 1, 2):
        assert ranks[rank].line() == "cmd=barrier_out rc=0"
    for rank in (0, 1, 2):
        for other in (0, 1, 2):
            assert ranks[rank].ask(f"cmd=get kvsname={kvs} key=card-{other}")["value"] == f"addr{other}"
    # a second barrier works the same way
    for rank in (0, 1, 2):
        ranks[rank].send("cmd=barrier_in")
    assert [ranks[r].line() for r in (0, 1, 2)] == ["cmd=barrier_out rc=0"] * 3
    assert srv.barriers_done == 2


def test_requests_split_across_packets_and_batched_in_one(server):
    srv = server(1)
    r = Rank(srv)
    r.sock.sendall(b"cmd=in")
    r.sock.sendall(b"it pmi_version=1 pmi_subversion=1\ncmd=get_appnum\ncmd=get_my_kvsname\n")
    assert [parse_command(r.line())["cmd"] for _ in range(3)] == ["response_to_init", "appnum", "my_kvsname"]


def test_pmi_fd_mode_socketpair(server):
    srv = server(2)
    r = Rank(sock=srv.socketpair(0))
    assert r.ask("cmd=init pmi_version=1 pmi_subversion=1")["rc"] == "0"
    assert r.ask("cmd=get_my_kvsname")["kvsname"] == srv.kvsname


def test_abort_is_reported(server):
    seen = []
    srv = server(2, on_abort=lambda rank, code, msg: seen.append((rank, code, msg)))
    r = Rank(srv)
    r.send("cmd=initack pmiid=1")
    [r.line() for _ in range(4)]
    r.send("cmd=abort exitcode=7 message=boom")
    for _ in range(200):
        if seen:
            break
        threading.Event().wait(0.01)
    assert seen == [(1, 7, "boom")] and srv.aborted == (1, 7, "boom")


def test_spawn_is_refused_not_hung(server):
    srv = server(1)
    r = Rank(srv)
    r.sock.sendall(b"mcmd=spawn\nnprocs=1\nexecname=/bin/true\ntotspawns=1\nspawnssofar=1\nargcnt=0\nendcmd\n")
    reply = parse_command(r.line())
    assert reply["cmd"] == "spawn_result" and reply["rc"] != "0"


# -- real MPI ranks ------------------------------------------------------------------------

MPI_CODE = (
    "from mpi4py import MPI\n"
    "c = MPI.COMM_WORLD\n"
    "c.Barrier()\n"
    "print(c.rank, c.size, c.allreduce(c.rank + 1), c.allreduce(c.rank, op=MPI.MAX), flush=True)\n"
)


def _mpi_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI", "HYDRA", "SLURM_"))}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _check_ranks(outputs, n):
    rows = sorted(tuple(int(x) for x in out.split()) for out in outputs)
    assert rows == [(r, n, n * (n + 1) // 2, n - 1) for r in range(n)]


@pytest.mark.parametrize("rank_nodes", [[0, 0, 0, 0], [0, 0, 1, 1]], ids=["one-node", "two-nodes"])
def test_mpi4py_ranks_allreduce_over_pmi_port(server, rank_nodes):
    pytest.importorskip("mpi4py")
    n = len(rank_nodes)
    srv = server(n, rank_nodes=rank_nodes)
    procs = [subprocess.Popen([PY, "-c", MPI_CODE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_mpi_env(PMI_PORT=srv.address, PMI_ID=rank)) for rank in reversed(range(n))]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err for _, err in results]
    _check_ranks([out for out, _ in results], n)
    assert srv.barriers_done >= 1


def test_mpi4py_ranks_allreduce_over_pmi_fd(server):
    pytest.importorskip("mpi4py")
    n = 3
    srv = server(n, rank_nodes=[0] * n)
    procs = []
    for rank in range(n):
        theirs = srv.socketpair(rank)
        fd = theirs.fileno()
        procs.append(subprocess.Popen([PY, "-c", MPI_CODE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, pass_fds=[fd],
                                      env=_mpi_env(PMI_FD=fd, PMI_RANK=rank, PMI_SIZE=n)))
        theirs.close()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err for _, err in results]
    _check_ranks([out for out, _ in results], n)
