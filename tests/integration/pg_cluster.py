"""Throw-away PostgreSQL 15 clusters for the tests (issue 15).

initdb/pg_ctl from Debian's postgresql-15 in a temporary folder, on a free
loopback port. PostgreSQL refuses to run as root, so as root the cluster runs
as the system user hato-pgtest (scripts/install-deps.sh creates it).

HATO_STORE=postgres makes harness.Server put every test server's store in a
fresh database of one shared cluster (stopped when the test process exits);
HATO_STORE=sharded in two databases, accounts spread over them by hash.
"""
import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = "hato-pgtest"


def installed():
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return False
    return True


NOT_INSTALLED = ("PostgreSQL 15 IS NOT INSTALLED (or the user hato-pgtest is missing): "
                 "the PostgreSQL tests did NOT run. Install with scripts/install-deps.sh")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg(cmd, check=True, **kw):
    """Runs cmd (a list) as the cluster's user."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", PG_USER, "--"] + cmd
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class Cluster:
    """One PostgreSQL server: a primary, or a streaming standby of one."""

    def __init__(self, base=None, port=None, settings=None):
        self.base = base or tempfile.mkdtemp(prefix="hato-pg-")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.base, "data")
        self.port = port or _free_port()
        self.settings = {"listen_addresses": "127.0.0.1", "max_connections": "300",
                         **(settings or {})}
        self.running = False

    def init(self):
        _as_pg([f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-N",
                "-E", "UTF8", "--locale=C"])
        return self

    def init_standby_of(self, primary, slot="standby1"):
        """A streaming standby (pg_basebackup -R) of a running primary."""
        _as_pg([f"{PG_BIN}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port),
                "-U", "postgres", "-D", self.data, "-R", "-X", "stream", "-C", "-S", slot])
        return self

    def start(self):
        opts = f"-p {self.port} -k {self.base} " + " ".join(
            f"-c {k}={v}" for k, v in self.settings.items())
        r = _as_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.base, "log"),
                    "-w", "-t", "60", "-o", opts, "start"], check=False)
        if r.returncode != 0:
            raise AssertionError("pg_ctl start failed: " + r.stderr + self.log()[-2000:])
        self.running = True
        return self

    def stop(self, mode="fast"):
        if self.running:
            _as_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"], check=False)
            self.running = False

    def postmaster_pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def kill9(self):
        """SIGKILL the postmaster (its backends exit when they notice)."""
        os.kill(self.postmaster_pid(), 9)
        self.running = False

    def promote(self):
        _as_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "promote"])

    def psql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-At", "-c", sql], capture_output=True, text=True,
                           check=True)
        return r.stdout.strip()

    def create_database(self, name):
        self.psql(f"CREATE DATABASE {name}")
        return self.conninfo(name)

    def conninfo(self, db):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def log(self):
        try:
            with open(os.path.join(self.base, "log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        if self.running:
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


_shared = None
_databases = 0


def shared_database():
    """A new database on the process-wide cluster; returns its connection URL."""
    global _shared, _databases
    if _shared is None:
        if not installed():
            raise AssertionError(NOT_INSTALLED)
        _shared = Cluster().init().start()
        atexit.register(_shared.cleanup)
    _databases += 1
    return _shared.create_database(f"hato{os.getpid()}_{_databases}")


def store_is_postgres():
    return os.environ.get("HATO_STORE") in ("postgres", "sharded")


def store_is_sharded():
    """HATO_STORE=sharded: as postgres, plus a second database as the shard "b"
    with accounts placed by hash (store/postgres/sharded.h)."""
    return os.environ.get("HATO_STORE") == "sharded"
