"""A throwaway PostgreSQL server for tests: Debian's binaries, a temp dir, a free loopback port.

``PostgresServer.start()`` runs ``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` as a non-root user (PostgreSQL refuses to run as
root: as root the server runs as the ``postgres`` account the Debian package
creates), on 127.0.0.1 and a free port, with its socket in its own directory.
When it cannot (no binaries, no such account, psycopg missing, initdb fails)
it raises :class:`Unavailable` with the reason, which tests turn into a skip.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile


class Unavailable(Exception):
    """PostgreSQL cannot be started here; ``str()`` says why."""


def _bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2].split(".")[0]))
    for d in reversed(dirs):
        if os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    raise Unavailable("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin "
                      "(apt-get install postgresql, or run scripts/setup as root)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self):
        self.dir = None
        self.port = None
        self.bindir = None
        self.user = None
        self._pw = None

    # -- as the server's account ----------------------------------------------
    def _run(self, *argv, check=True, timeout=60):
        pw = self._pw

        def demote():
            if pw is not None:
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
        env = dict(os.environ, LC_ALL="C", LANG="C")
        if pw is not None:
            env.update(HOME=self.dir, USER=pw.pw_name, LOGNAME=pw.pw_name)
        r = subprocess.run(argv, preexec_fn=demote, env=env, capture_output=True, text=True, timeout=timeout,
                           cwd=self.dir)
        if check and r.returncode != 0:
            raise Unavailable(f"{os.path.basename(argv[0])} failed: {(r.stderr or r.stdout).strip()[-300:]}")
        return r

    def start(self):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise Unavailable("psycopg is not installed (pip install 'batchhub[postgres]')") from None
        self.bindir = _bindir()
        if os.getuid() == 0:
            try:
                self._pw = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no 'postgres' account to run the server as") from None
            self.user = "postgres"
        else:
            self.user = pwd.getpwuid(os.getuid()).pw_name
        self.dir = tempfile.mkdtemp(prefix="batchhub-pg-")
        if self._pw is not None:
            os.chown(self.dir, self._pw.pw_uid, self._pw.pw_gid)
        self.port = _free_port()
        data = os.path.join(self.dir, "data")
        self._run(os.path.join(self.bindir, "initdb"), "-D", data, "-A", "trust", "-U", self.user, "-E", "UTF8")
        self._run(os.path.join(self.bindir, "pg_ctl"), "-D", data, "-l", os.path.join(self.dir, "server.log"),
                  "-o", f"-k {self.dir} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off", "-w",
                  "-t", "60", "start")
        self.create_database("batchhub")
        return self

    def url(self, db="batchhub"):
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def create_database(self, name):
        import psycopg
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def query(self, sql, args=(), db="batchhub"):
        import psycopg
        with psycopg.connect(self.url(db)) as conn:
            return conn.execute(sql, args).fetchall()

    def stop(self, mode="fast"):
        if self.dir and os.path.exists(os.path.join(self.dir, "data", "postmaster.pid")):
            self._run(os.path.join(self.bindir, "pg_ctl"), "-D", os.path.join(self.dir, "data"), "-m", mode,
                      "-w", "stop", check=False)

    def restart(self):
        """Start again after stop() (same port and data)."""
        data = os.path.join(self.dir, "data")
        self._run(os.path.join(self.bindir, "pg_ctl"), "-D", data, "-l", os.path.join(self.dir, "server.log"),
                  "-o", f"-k {self.dir} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off", "-w",
                  "-t", "60", "start")

    def cleanup(self):
        self.stop("immediate")
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
