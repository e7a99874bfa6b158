"""Test harness: runs a real `hato serve` on loopback with a temporary data dir.

Used by the integration, crash and CLI tests. Servers listen on 127.0.0.1 only.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pg_cluster

HATO = os.environ.get("HATO_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "hato")
DOMAIN = "example.test"
PASSWORD = "pw-for-tests"


# HATO_EVENT_LOOPS=N runs every test server with N session event loops
# (server/event_loops.h), e.g. to run a suite with 2 loops; unset: the
# configured default.
EVENT_LOOPS_ARGS = (["--event-loops", os.environ["HATO_EVENT_LOOPS"]]
                    if os.environ.get("HATO_EVENT_LOOPS") else [])


def shots_dir():
    """Where the browser tests write screenshots and hand-off files: HATO_SHOTS, else
    build/web-screenshots/<store variant>, so the embedded, PostgreSQL and sharded runs of a
    suite (ctest -j runs them at once) never share a file such as app-password.txt."""
    if os.environ.get("HATO_SHOTS"):
        return os.environ["HATO_SHOTS"]
    variant = ("sharded" if pg_cluster.store_is_sharded() else
               "postgres" if pg_cluster.store_is_postgres() else "embedded")
    path = os.path.join(os.path.dirname(__file__), "..", "..", "build", "web-screenshots",
                        variant)
    os.makedirs(path, exist_ok=True)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, data=None, input=None, check=True):
    cmd = [HATO, *args]
    if data is not None:
        cmd += ["--data", data]
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stderr}")
    return r


def wait_port(port, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} did not open")


def wait_for(cond, timeout=20.0, what="condition"):
    """Polls cond() every 0.1 s until it returns something true, which is returned."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    """A hato data dir plus a running `hato serve` bound to free loopback ports."""

    def __init__(self, users=("alice", "bob"), config_extra="", data=None, postgres=None):
        """postgres: a PostgreSQL URL for the store (hato init --postgres); with
        HATO_STORE=postgres in the environment, a fresh database of a shared
        throw-away cluster (pg_cluster.py) when none is given."""
        self.owns_data = data is None
        self.postgres = postgres
        self.data = data or tempfile.mkdtemp(prefix="hato-it-")
        self.proc = None
        self.event_loops = None  # an int: --event-loops for this server (else HATO_EVENT_LOOPS)
        self.log_path = os.path.join(self.data, "serve.log")
        if self.owns_data:
            if postgres is None and pg_cluster.store_is_postgres():
                postgres = pg_cluster.shared_database()
            self.postgres = postgres
            init = ["init", "--domain", DOMAIN]
            if postgres:
                init += ["--postgres", postgres]
            run_cli(*init, data=self.data)
            if postgres and pg_cluster.store_is_sharded():
                self.set_config("store", "placement", '"hash"')
                self.shard = pg_cluster.shared_database()
                self.append_config(f'[store.shards]\nb = "{self.shard}"')
            for u in users:
                run_cli("user", "add", f"{u}@{DOMAIN}", "--password-stdin", data=self.data,
                        input=PASSWORD + "\n")
            if config_extra:
                self.append_config(config_extra)
        self.smtp_port = free_port()
        self.pop3_port = free_port()
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.pop3s_port = free_port()
        self.submission_port = free_port()
        self.submissions_port = free_port()
        self.http_port = free_port()
        self.managesieve_port = free_port()
        self.metrics_port = None  # set by metrics_client.enable

    def append_config(self, text):
        # Sections may be repeated only once in TOML: callers pass whole new sections
        # for sections hato.toml does not already have, or use set_config.
        with open(os.path.join(self.data, "hato.toml"), "a") as f:
            f.write("\n" + text + "\n")

    def set_config(self, section, key, value):
        """Replaces `key = ...` in [section] of hato.toml."""
        path = os.path.join(self.data, "hato.toml")
        with open(path) as f:
            lines = f.read().split("\n")
        out, cur, done = [], None, False
        for line in lines:
            s = line.split("#")[0].strip()
            if s.startswith("[") and s.endswith("]"):
                if cur == section and not done:
                    out.append(f"{key} = {value}")
                    done = True
                cur = s[1:-1]
            elif cur == section and s.split("=")[0].strip() == key:
                out.append(f"{key} = {value}")
                done = True
                continue
            out.append(line)
        if not done:
            if cur != section:
                out.append(f"[{section}]")
            out.append(f"{key} = {value}")
        with open(path, "w") as f:
            f.write("\n".join(out))

    PORT_NAMES = ("smtp_port", "pop3_port", "imap_port", "imaps_port", "submission_port",
                  "submissions_port", "http_port", "pop3s_port", "managesieve_port")

    def start(self, env=None):
        # free_port() only finds a port that was free a moment ago: another test
        # running in parallel may take it first. A server that exits before its
        # ports open is started again on fresh ports (at most three times).
        for attempt in range(3):
            self.log = open(self.log_path, "a")
            self.proc = subprocess.Popen(
                [HATO, "serve", "--data", self.data, "--smtp", f"127.0.0.1:{self.smtp_port}",
                 "--pop3", f"127.0.0.1:{self.pop3_port}", "--imap", f"127.0.0.1:{self.imap_port}",
                 "--imaps", f"127.0.0.1:{self.imaps_port}",
                 "--pop3s", f"127.0.0.1:{self.pop3s_port}",
                 "--submission", f"127.0.0.1:{self.submission_port}",
                 "--submissions", f"127.0.0.1:{self.submissions_port}",
                 "--http", f"127.0.0.1:{self.http_port}",
                 "--managesieve", f"127.0.0.1:{self.managesieve_port}",
                 "--shutdown-grace", "5"] + (
                     ["--event-loops", str(self.event_loops)] if self.event_loops is not None
                     else EVENT_LOOPS_ARGS),
                stdout=self.log, stderr=subprocess.STDOUT,
                env=None if env is None else {**os.environ, **env})
            # The metrics listener (metrics_client.enable) opens after the
            # others; a test that scrapes it must not race its bind.
            ports = [getattr(self, n) for n in self.PORT_NAMES]
            if self.metrics_port is not None:
                ports.append(self.metrics_port)
            if all(self._wait_open(p) for p in ports):
                return self
            if self.proc.poll() is None or attempt == 2:
                break
            self.log.close()
            for n in self.PORT_NAMES:
                setattr(self, n, free_port())
            if self.metrics_port is not None:
                import metrics_client
                metrics_client.move(self, free_port())
        raise AssertionError("hato serve did not open its ports; log tail:\n" +
                             self.logs()[-2000:])

    def _wait_open(self, port, timeout=15.0):
        """True once `port` accepts connections; False if the server exits first."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                if self.proc.poll() is not None:
                    return False
                time.sleep(0.05)
        return False


    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self.log.close()
        self.proc = None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def corrupt_last_body(self):
        """Damages the most recently stored body where the store keeps it: a byte
        near the end of the last blob segment, or of the last chunk row in PostgreSQL."""
        if self.postgres:
            # Sharded: the last body of each database (one of them is the one).
            for url in [self.postgres] + ([self.shard] if getattr(self, "shard", None) else []):
                subprocess.run(
                    ["psql", url, "-q", "-c",
                     "UPDATE blob_chunks SET data = overlay(data placing '\\x23'::bytea from "
                     "greatest(length(data) - 9, 1)) WHERE (blob_id, seq) = (SELECT blob_id, seq "
                     "FROM blob_chunks ORDER BY blob_id DESC, seq DESC LIMIT 1)"], check=True)
            return
        blobs = os.path.join(self.data, "blobs")
        seg = os.path.join(blobs, sorted(os.listdir(blobs))[-1])
        with open(seg, "r+b") as f:
            f.seek(-10, os.SEEK_END)
            f.write(b"#")

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def cleanup(self):
        if self.proc is not None:
            self.kill()
        if self.owns_data and not os.environ.get("HATO_KEEP"):
            shutil.rmtree(self.data, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class LineClient:
    """A raw protocol client for exchanges the stdlib clients won't produce."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """Reads one (possibly multi-line) SMTP reply; returns (code, [texts])."""
        texts = []
        while True:
            l = self.line()
            texts.append(l[4:])
            if len(l) < 4 or l[3] != "-":
                return int(l[:3]), texts

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()
