#!/usr/bin/env python3
"""JMAP benchmark (issue 12): a webmail's list view over JMAP beside the same work
over IMAP, against one `hato serve` on 127.0.0.1, then the memory cost of
EventSource push connections.

  python3 bench/jmap_run.py BUILD_DIR     (run by `make bench`)

Env: JMAP_BENCH_MESSAGES (2000; the issue's goal is stated for 100000),
JMAP_BENCH_CLIENTS (50), JMAP_BENCH_SECONDS (20), EVENTSOURCE_CONNECTIONS
(10000; 0 skips), JMAP_BENCH_KEEP (set: keep the data dir).

The mailbox is filled over SMTP (not timed). Then, for JMAP_BENCH_SECONDS each,
JMAP_BENCH_CLIENTS threads with one keep-alive connection each run:
  JMAP: one request, Email/query (inMailbox INBOX, sort receivedAt desc,
        limit 50) + Email/get of "#ids" (from, subject, receivedAt, preview).
  IMAP: UID SEARCH ALL, then UID FETCH of the 50 highest UIDs (ENVELOPE).
Latency per operation (p50, p99) and operations/s are printed and written to
BUILD_DIR/jmap-bench-results.json. The load generator is Python (threads): at
high rates it is the client, not the server, that limits; the server's CPU
seconds over each run are printed so the two mixes can be compared per CPU.

EventSource: N streams are opened (HTTP Basic, loopback) and the RSS of the
server (VmRSS from /proc) is read before and with all open; the difference / N
is the memory per connection (the issue's goal: <= 32 kB).
"""
import base64
import imaplib
import json
import os
import resource
import shutil
import smtplib
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build"))
os.environ.setdefault("HATO_BIN", os.path.join(BUILD, "hato"))

from harness import DOMAIN, PASSWORD, Server  # noqa: E402

MESSAGES = int(os.environ.get("JMAP_BENCH_MESSAGES", "2000"))
CLIENTS = int(os.environ.get("JMAP_BENCH_CLIENTS", "50"))
SECONDS = float(os.environ.get("JMAP_BENCH_SECONDS", "20"))
ES_CONNECTIONS = int(os.environ.get("EVENTSOURCE_CONNECTIONS", "10000"))
USER = f"bench@{DOMAIN}"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / tick


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fill(server):
    body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 40 + "\r\n") * 2
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as s:
        for i in range(MESSAGES):
            s.sendmail("sender@remote.test", [USER],
                       f"From: Sender {i % 97} <s{i % 97}@remote.test>\r\nTo: {USER}\r\n"
                       f"Subject: bench message {i}\r\nMessage-ID: <b{i}@remote.test>\r\n"
                       f"Date: Mon, 1 Dec 2025 10:00:00 +0000\r\n\r\n{body}")


class Http:
    """One keep-alive HTTP/1.1 connection (Content-Length bodies only)."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""

    def post(self, path, body):
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.buf = b""
        data = body.encode()
        self.sock.sendall(f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {AUTH}\r\n"
                          f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                          .encode() + data)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(self.buf) < length:
            self.buf += self._recv()
        out, self.buf = self.buf[:length], self.buf[length:]
        return status, out

    def _recv(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise OSError("connection closed")
        return d


def run_clients(name, make_op):
    latencies, errors = [], [0]
    stop = time.time() + SECONDS
    lock = threading.Lock()

    def worker():
        op = None
        mine = []
        while time.time() < stop:
            try:
                if op is None:  # (re)connect and log in; not timed
                    op = make_op()
                t0 = time.perf_counter()
                op()
            except Exception:  # noqa: BLE001 - counted, the run goes on
                errors[0] += 1
                op = None
                time.sleep(0.05)
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - start
    latencies.sort()
    n = len(latencies)
    pct = (lambda p: latencies[min(n - 1, int(p * n))] * 1000) if n else (lambda p: 0.0)
    return {"name": name, "ops": n, "errors": errors[0], "seconds": round(elapsed, 2),
            "ops_per_s": round(n / elapsed, 1), "p50_ms": round(pct(0.50), 2),
            "p99_ms": round(pct(0.99), 2)}


def jmap_op(server, account, inbox):
    body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                       "methodCalls": [
        ["Email/query", {"accountId": account, "filter": {"inMailbox": inbox},
                         "sort": [{"property": "receivedAt", "isAscending": False}],
                         "limit": 50}, "q"],
        ["Email/get", {"accountId": account,
                       "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                       "properties": ["from", "subject", "receivedAt", "preview"]}, "g"]]})

    def make():
        h = Http(server.http_port)

        def op():
            status, data = h.post("/jmap/api/", body)
            r = json.loads(data)["methodResponses"]
            if status != 200 or len(r[1][1]["list"]) != min(50, MESSAGES):
                raise RuntimeError(f"bad JMAP answer {status}")
        return op
    return make


def imap_op(server):
    def make():
        m = imaplib.IMAP4("127.0.0.1", server.imap_port)
        m.login(USER, PASSWORD)
        m.select("INBOX", readonly=True)

        def op():
            _, data = m.uid("SEARCH", None, "ALL")
            uids = data[0].split()[-50:]
            _, got = m.uid("FETCH", b",".join(uids).decode(), "(ENVELOPE)")
            if len([g for g in got if isinstance(g, bytes) or isinstance(g, tuple)]) < len(uids):
                raise RuntimeError("short FETCH")
        return op
    return make


def eventsource_memory(server):
    want = ES_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want + 200:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want + 500), hard))
        except (ValueError, OSError):
            pass
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(want, soft - 200)
    pid = server.proc.pid
    time.sleep(1)
    before = rss_kb(pid)
    socks = []
    req = (f"GET /jmap/eventsource/?types=*&closeafter=no&ping=0 HTTP/1.1\r\nHost: bench\r\n"
           f"Authorization: {AUTH}\r\n\r\n").encode()
    t0 = time.time()
    opened = 0
    while len(socks) < want:
        batch = []
        for _ in range(min(500, want - len(socks))):
            s = socket.create_connection(("127.0.0.1", server.http_port), timeout=60)
            s.sendall(req)
            batch.append(s)
        # Each stream's first bytes (": hato") before the next batch is opened.
        for s in batch:
            if b"200" in s.recv(4096):
                opened += 1
        socks.extend(batch)
    time.sleep(2)
    with_all = rss_kb(pid)
    result = {"connections": opened, "rss_before_kb": before, "rss_with_all_kb": with_all,
              "per_connection_kb": round((with_all - before) / max(1, opened), 2),
              "open_seconds": round(time.time() - t0, 1)}
    for s in socks:
        s.close()
    return result


def main():
    # The server may hold many connections: raise our limit, which it inherits.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, ES_CONNECTIONS + 1000)),
                                                    hard))
    except (ValueError, OSError):
        pass
    server = Server(users=("bench",))
    server.set_config("http", "max_connections", ES_CONNECTIONS + 1000)
    server.set_config("http", "max_connections_per_ip", ES_CONNECTIONS + 1000)
    server.set_config("http", "max_requests", ES_CONNECTIONS + 1000)
    server.set_config("http", "max_requests_per_ip", ES_CONNECTIONS + 1000)
    server.set_config("imap", "max_connections_per_ip", CLIENTS + 10)
    server.set_config("jmap", "max_concurrent_requests", CLIENTS + 10)
    server.start()
    results = {"messages": MESSAGES, "clients": CLIENTS, "seconds": SECONDS}
    try:
        t0 = time.time()
        fill(server)
        results["fill_seconds"] = round(time.time() - t0, 1)
        h = Http(server.http_port)
        _, data = h.post("/jmap/api/", json.dumps({
            "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
            "methodCalls": [["Mailbox/query", {"filter": {"role": "inbox"}}, "m"]]}))
        r = json.loads(data)["methodResponses"][0][1]
        account, inbox = r["accountId"], r["ids"][0]
        runs = []
        for name, make in (("jmap query+get", jmap_op(server, account, inbox)),
                           ("imap search+fetch", imap_op(server))):
            cpu0 = cpu_seconds(server.proc.pid)
            res = run_clients(name, make)
            res["server_cpu_s"] = round(cpu_seconds(server.proc.pid) - cpu0, 2)
            runs.append(res)
            print(json.dumps(res))
        results["runs"] = runs
        if ES_CONNECTIONS > 0:
            results["eventsource"] = eventsource_memory(server)
            print(json.dumps({"eventsource": results["eventsource"]}))
    finally:
        try:
            server.stop(timeout=60)
        except Exception:  # noqa: BLE001 - never leave the server running
            server.proc.kill()
            server.proc.wait()
        if os.environ.get("JMAP_BENCH_KEEP"):
            print("data kept in", server.data)
        else:
            shutil.rmtree(server.data, ignore_errors=True)
    print(f"{'mix':<20} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'cpu s':>6}")
    for r in results["runs"]:
        print(f"{r['name']:<20} {r['ops_per_s']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['errors']:>7} {r['server_cpu_s']:>6}")
    with open(os.path.join(BUILD, "jmap-bench-results.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
