#!/usr/bin/env python3
"""POP3 retrieval benchmark (issue 17): Hato beside Dovecot, same mail, same run.

  python3 bench/pop3_run.py BUILD_DIR

Env: POP3_BENCH_USERS (100), POP3_BENCH_MESSAGES (50 per user), POP3_BENCH_SIZE
(4096 bytes), POP3_BENCH_CLIENTS ("1,10": the client counts to run),
POP3_BENCH_PASSES (2 timed passes per client count), POP3_BENCH_KEEP (set: keep
the data dirs).

Both servers hold the same USERS x MESSAGES messages: Hato's arrive over SMTP,
Dovecot's are written into its Maildirs (neither is timed). A pass is every user
once: log in (USER/PASS), STAT, RETR every message, QUIT, the users taken in
turn by C client threads. One untimed pass first warms both (page cache;
Hato's credential cache, so that the timed passes compare retrieval, not
Argon2 against a plain-text passwd file). Reported per server and client
count: RETR/s, logins/s, and the server's CPU ms per RETR (utime+stime of its
process tree, /proc, children included), to BUILD_DIR/pop3-bench-results.json.

Dovecot runs stock settings with its fastest password scheme (PLAIN in a
passwd-file) and Maildir: a stricter comparison for Hato than equal Argon2.
The client is Python with raw sockets (one RETR in flight per connection, no
line-by-line reads), so at high rates it is the client that limits; the CPU
per RETR column is the server's own cost. Loopback only. Needs root for
Dovecot (skipped, with a note, when dovecot-pop3d is not installed).
"""
import json
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build"))
os.environ.setdefault("HATO_BIN", os.path.join(BUILD, "hato"))

from harness import DOMAIN, PASSWORD, Server, free_port  # noqa: E402

USERS = int(os.environ.get("POP3_BENCH_USERS", "100"))
MESSAGES = int(os.environ.get("POP3_BENCH_MESSAGES", "50"))
SIZE = int(os.environ.get("POP3_BENCH_SIZE", "4096"))
CLIENTS = [int(c) for c in os.environ.get("POP3_BENCH_CLIENTS", "1,10").split(",")]
PASSES = int(os.environ.get("POP3_BENCH_PASSES", "2"))
MAIL_USER = "hatobench"


def user(i):
    return f"bench{i}@{DOMAIN}"


def message(i, n):
    head = (f"From: sender@remote.example\r\nTo: {user(i)}\r\nSubject: pop3 bench {i}/{n}\r\n"
            f"Message-ID: <pop3-{i}-{n}@remote.example>\r\n"
            "Date: Wed, 02 Dec 2026 12:00:00 +0000\r\n\r\n")
    line = f"message {n} for user {i}: the quick brown fox jumps over the lazy dog. " * 2
    body = ""
    while len(head) + len(body) < SIZE:
        body += line[:76] + "\r\n"
    return (head + body).encode()


def tree_cpu_seconds(root):
    """utime+stime+cutime+cstime of `root` and its descendants."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(rest[1]), []).append(int(d))
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in rest[11:15])
        except OSError:
            pass
        todo += kids.get(p, [])
    return total / os.sysconf("SC_CLK_TCK")


class Pop3:
    """A raw POP3 client: each reply read with large recv()s."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.status()

    def _until(self, end):
        while True:
            i = self.buf.find(end)
            if i >= 0:
                out, self.buf = self.buf[:i + len(end)], self.buf[i + len(end):]
                return out
            chunk = self.s.recv(262144)
            if not chunk:
                raise EOFError("POP3 server closed the connection")
            self.buf += chunk

    def status(self):
        line = self._until(b"\r\n")
        if not line.startswith(b"+OK"):
            raise RuntimeError(line.decode(errors="replace").strip())
        return line

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.status()

    def retr(self, n):
        self.s.sendall(b"RETR %d\r\n" % n)
        first = self._until(b"\r\n")
        if not first.startswith(b"+OK"):
            raise RuntimeError(first.decode(errors="replace").strip())
        return len(self._until(b"\r\n.\r\n"))

    def close(self):
        try:
            self.cmd("QUIT")
        finally:
            self.s.close()


def one_pass(port, clients):
    """Every user once over `clients` threads; returns (seconds, retrs, errors)."""
    lock = threading.Lock()
    todo = list(range(1, USERS + 1))
    counts = {"retr": 0, "errors": 0}

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            try:
                c = Pop3(port)
                c.cmd(f"USER {user(i)}")
                c.cmd(f"PASS {PASSWORD}")
                n = int(c.cmd("STAT").split()[1])
                for k in range(1, n + 1):
                    c.retr(k)
                c.close()
                with lock:
                    counts["retr"] += n
            except (OSError, RuntimeError, EOFError) as e:
                with lock:
                    counts["errors"] += 1
                print(f"pop3-bench: {user(i)}: {e}", file=sys.stderr)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0, counts["retr"], counts["errors"]


def measure(name, port, pid):
    one_pass(port, max(CLIENTS))  # warm-up, untimed
    rows = []
    for c in CLIENTS:
        secs = retrs = errors = 0
        cpu0 = tree_cpu_seconds(pid)
        for _ in range(PASSES):
            s, r, e = one_pass(port, c)
            secs, retrs, errors = secs + s, retrs + r, errors + e
        cpu = tree_cpu_seconds(pid) - cpu0
        row = {"server": name, "clients": c, "retr": retrs, "seconds": round(secs, 3),
               "retr_per_s": round(retrs / secs, 1) if secs else 0,
               "logins_per_s": round(PASSES * USERS / secs, 1) if secs else 0,
               "cpu_ms_per_retr": round(1000 * cpu / retrs, 4) if retrs else None,
               "errors": errors}
        print(f"pop3-bench: {name} {c} client(s): {row['retr_per_s']} RETR/s, "
              f"{row['cpu_ms_per_retr']} ms CPU/RETR, {errors} errors", file=sys.stderr)
        rows.append(row)
    return rows


def run_hato():
    users = [f"bench{i}" for i in range(1, USERS + 1)]
    server = Server(users=users)
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as s:
            for i in range(1, USERS + 1):
                for n in range(1, MESSAGES + 1):
                    s.sendmail("sender@remote.example", [user(i)], message(i, n))
        deadline = time.time() + 300
        while time.time() < deadline:
            c = Pop3(server.pop3_port)
            c.cmd(f"USER {user(USERS)}")
            c.cmd(f"PASS {PASSWORD}")
            n = int(c.cmd("STAT").split()[1])
            c.close()
            if n >= MESSAGES:
                break
            time.sleep(0.2)
        return measure("Hato", server.pop3_port, server.proc.pid)
    finally:
        if os.environ.get("POP3_BENCH_KEEP"):
            print(f"pop3-bench: kept {server.data}", file=sys.stderr)
            server.stop()
        else:
            server.cleanup()


def run_dovecot():
    if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/pop3"):
        print("pop3-bench: dovecot-pop3d not installed; only Hato ran "
              "(scripts/install-deps.sh --bench)", file=sys.stderr)
        return None
    if os.geteuid() != 0:
        print("pop3-bench: Dovecot needs root; only Hato ran", file=sys.stderr)
        return None
    try:
        pw = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", MAIL_USER], check=True)
        pw = pwd.getpwnam(MAIL_USER)
    d = tempfile.mkdtemp(prefix="dovecot-pop3-bench.")
    os.chmod(d, 0o755)
    for sub in ("base", "state", "mail"):
        os.makedirs(os.path.join(d, sub))
    port = free_port()
    with open(os.path.join(d, "users"), "w") as f:
        for i in range(1, USERS + 1):
            f.write(f"{user(i)}:{{PLAIN}}{PASSWORD}:{pw.pw_uid}:{pw.pw_gid}::{d}/mail/bench{i}::\n")
    for i in range(1, USERS + 1):
        new = os.path.join(d, "mail", f"bench{i}", "Maildir", "new")
        os.makedirs(new)
        for sub in ("cur", "tmp"):
            os.makedirs(os.path.join(os.path.dirname(new), sub))
        for n in range(1, MESSAGES + 1):
            with open(os.path.join(new, f"{1796212800 + n}.M{n}P{i}.bench"), "wb") as f:
                f.write(message(i, n))
    subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", os.path.join(d, "mail")], check=True)
    limit = max(CLIENTS) * 2 + 100
    with open(os.path.join(d, "dovecot.conf"), "w") as f:
        f.write(f"""protocols = pop3
listen = 127.0.0.1
base_dir = {d}/base
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {pw.pw_uid}
mail_location = maildir:~/Maildir
default_process_limit = {limit}
default_client_limit = {limit * 4}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
protocol pop3 {{
  mail_max_userip_connections = {limit}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
""")
    conf = os.path.join(d, "dovecot.conf")
    subprocess.run(["dovecot", "-c", conf], check=True)
    try:
        pidfile, pid = os.path.join(d, "base", "master.pid"), None
        deadline = time.time() + 30
        while time.time() < deadline and pid is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                with open(pidfile) as f:
                    pid = int(f.read().strip())
            except (OSError, ValueError):
                time.sleep(0.1)
        if pid is None:
            with open(os.path.join(d, "dovecot.log"), errors="replace") as f:
                raise RuntimeError("Dovecot did not start:\n" + f.read()[-2000:])
        return measure("Dovecot", port, pid)
    finally:
        subprocess.run(["doveadm", "-c", conf, "stop"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.environ.get("POP3_BENCH_KEEP"):
            print(f"pop3-bench: kept {d}", file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


def main():
    print(f"pop3-bench: {USERS} users x {MESSAGES} messages of {SIZE} bytes, "
          f"clients {CLIENTS}, {PASSES} timed passes; load average {os.getloadavg()[0]:.1f}",
          file=sys.stderr)
    hato = run_hato()
    dovecot = run_dovecot()
    print(f"{'server':8} {'clients':>7} {'RETR/s':>9} {'logins/s':>9} {'CPU ms/RETR':>12} {'errors':>6}")
    for r in hato + (dovecot or []):
        print(f"{r['server']:8} {r['clients']:>7} {r['retr_per_s']:>9} {r['logins_per_s']:>9} "
              f"{r['cpu_ms_per_retr']:>12} {r['errors']:>6}")
    if dovecot:
        for h, v in zip(hato, dovecot):
            print(f"Hato/Dovecot at {h['clients']} client(s): RETR/s x{h['retr_per_s'] / v['retr_per_s']:.2f}, "
                  f"CPU per RETR x{h['cpu_ms_per_retr'] / v['cpu_ms_per_retr']:.2f}")
    out = {"users": USERS, "messages": MESSAGES, "size": SIZE, "passes": PASSES,
           "load_average": os.getloadavg()[0], "hato": hato, "dovecot": dovecot}
    with open(os.path.join(BUILD, "pop3-bench-results.json"), "w") as f:
        json.dump(out, f, indent=1)
    errors = sum(r["errors"] for r in hato + (dovecot or []))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
