"""Debian's rspamd (with redis-server for its Bayes statistics) and clamd, run
by the tests in temporary folders on free loopback ports with their own
configurations (issue 19). No network is assumed: rspamd's DNS points at a
closed port, and clamd's database is one signature written here that matches
the EICAR test string (freshclam cannot download anything).

rspamd starts slowly (it compiles its regular expressions; the compiled
hyperscan database is kept in a per-user cache folder so later starts are
quicker): share one instance per test class.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

from harness import free_port

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CONTROLLER_PASSWORD = "hato-test-controller"

RSPAMD = shutil.which("rspamd")
REDIS = shutil.which("redis-server")
CLAMD = shutil.which("clamd") or ("/usr/sbin/clamd" if os.path.exists("/usr/sbin/clamd") else None)


def missing():
    """The reason to skip, or None when rspamd, redis-server and clamd are installed."""
    absent = [n for n, p in (("rspamd", RSPAMD), ("redis-server", REDIS), ("clamd", CLAMD))
              if not p]
    if absent:
        return ("not installed: " + ", ".join(absent) +
                " (scripts/install-deps.sh installs rspamd, redis-server, clamav-daemon)")
    return None


def _wait(cond, timeout, what, proc=None, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = ""
    if log and os.path.exists(log):
        tail = open(log, errors="replace").read()[-3000:]
    raise AssertionError(f"{what} did not start\n{tail}")


class Rspamd:
    """rspamd's normal and controller workers plus a redis-server for Bayes."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hato-rspamd-")
        self.normal_port = free_port()
        self.controller_port = free_port()
        self.proxy_port = free_port()
        self.redis_port = free_port()
        self.proc = None
        self.redis = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.normal_port}"

    @property
    def controller_url(self):
        return f"http://127.0.0.1:{self.controller_port}"

    def _write(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def start(self, timeout=300):
        for d in ("db", "run", "log"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        cache = os.path.join(tempfile.gettempdir(), f"hato-rspamd-hs-{os.getuid()}")
        os.makedirs(cache, exist_ok=True)
        self._write("local/override.d/worker-normal.inc",
                    f'bind_socket = "127.0.0.1:{self.normal_port}";\ncount = 1;\n')
        self._write("local/override.d/worker-controller.inc",
                    f'bind_socket = "127.0.0.1:{self.controller_port}";\ncount = 1;\n'
                    f'password = "{CONTROLLER_PASSWORD}";\nsecure_ip = "192.0.2.1";\n')
        self._write("local/override.d/worker-proxy.inc",
                    f'bind_socket = "127.0.0.1:{self.proxy_port}";\nenabled = false;\n')
        self._write("local/override.d/logging.inc",
                    f'type = "file";\nfilename = "{self.dir}/log/rspamd.log";\nlevel = "info";\n')
        # No network: DNS goes to a closed port (fails at once), a tiny
        # suffix list keeps start-up short, network modules are off.
        self._write("tld.dat", "test\ncom\nnet\norg\n")
        self._write("local/local.d/options.inc",
                    f'dns {{\n  nameserver = ["127.0.0.1:9"];\n  timeout = 0.2s;\n'
                    f'  retransmits = 1;\n}}\nurl_tld = "{self.dir}/tld.dat";\n'
                    f'hs_cache_dir = "{cache}/";\n')
        self._write("local/local.d/redis.conf", f'servers = "127.0.0.1:{self.redis_port}";\n')
        for module in ("greylist", "rbl", "asn", "fuzzy_check", "neural", "ratelimit",
                       "phishing", "replies", "mx_check", "reputation", "url_redirector"):
            self._write(f"local/local.d/{module}.conf", "enabled = false;\n")
        self.redis = subprocess.Popen(
            [REDIS, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", os.path.join(self.dir, "db")],
            stdout=open(os.path.join(self.dir, "log", "redis.log"), "w"),
            stderr=subprocess.STDOUT)
        log = os.path.join(self.dir, "log", "stdout.log")
        args = [RSPAMD, "-f", "-c", "/etc/rspamd/rspamd.conf",
                f"--var=LOCAL_CONFDIR={self.dir}/local", f"--var=DBDIR={self.dir}/db",
                f"--var=RUNDIR={self.dir}/run", f"--var=LOGDIR={self.dir}/log"]
        if os.getuid() == 0:
            args += ["-i", "-u", "root", "-g", "root"]
        self.proc = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _wait(self.ready, timeout, "rspamd", self.proc, os.path.join(self.dir, "log",
                                                                     "rspamd.log"))
        return self

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                if r.read().strip() != b"pong":
                    return False
            with urllib.request.urlopen(self.controller_url + "/ping", timeout=1) as r:
                return r.read().strip() == b"pong"
        except OSError:
            return False

    def stat(self):
        """The controller's /stat, plus redis's Bayes learn counters."""
        req = urllib.request.Request(self.controller_url + "/stat",
                                     headers={"Password": CONTROLLER_PASSWORD})
        with urllib.request.urlopen(req, timeout=5) as r:
            stat = json.loads(r.read())
        out = subprocess.run(["redis-cli", "-p", str(self.redis_port), "HGETALL", "RS"],
                             capture_output=True, text=True, timeout=10).stdout.split()
        learns = dict(zip(out[::2], out[1::2]))
        stat["learns_spam"] = int(learns.get("learns_spam", 0))
        stat["learns_ham"] = int(learns.get("learns_ham", 0))
        return stat

    def kill(self):
        """Kills rspamd's whole process group (main and workers) at once."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(timeout=20)
        if not os.environ.get("HATO_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


class Clamd:
    """clamd on a loopback port with one signature: the EICAR test string."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hato-clamd-")
        self.port = free_port()
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=120):
        db = os.path.join(self.dir, "db")
        os.makedirs(db)
        # An extended body signature (.ndb): any file type, anywhere.
        with open(os.path.join(db, "hato-test.ndb"), "w") as f:
            f.write("Hato.Test.EICAR:0:*:" + EICAR.hex() + "\n")
        conf = os.path.join(self.dir, "clamd.conf")
        with open(conf, "w") as f:
            f.write(f"Foreground yes\nTCPSocket {self.port}\nTCPAddr 127.0.0.1\n"
                    f"DatabaseDirectory {db}\nLogFile {self.dir}/clamd.log\n"
                    f"PidFile {self.dir}/clamd.pid\nTemporaryDirectory {self.dir}\n"
                    f"User {os.environ.get('USER') or 'root'}\n")
        log = os.path.join(self.dir, "out.log")
        self.proc = subprocess.Popen([CLAMD, "-c", conf], stdout=open(log, "w"),
                                     stderr=subprocess.STDOUT)
        _wait(self.ready, timeout, "clamd", self.proc, log)
        return self

    def ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"zPING\0")
                return s.recv(16).startswith(b"PONG")
        except OSError:
            return False

    def scan(self, data):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"zINSTREAM\0" + struct.pack(">I", len(data)) + data + b"\0\0\0\0")
            return s.recv(1000)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        if not os.environ.get("HATO_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
