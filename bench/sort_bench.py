#!/usr/bin/env python3
"""SORT/THREAD benchmark (issue 16): one large mailbox in Hato and in Dovecot,
filled identically over IMAP (MULTIAPPEND batches with LITERAL+, not timed),
then SORT (DATE), SORT (SUBJECT), SORT (FROM), SORT (REVERSE ARRIVAL) and
THREAD=REFERENCES / ORDEREDSUBJECT timed from the command's last byte sent to
its tagged OK received: the first run (cold: Hato derives the sort keys from
the stored MIME trees) and the median of the next five (warm).

Usage: HATO_BIN=build/hato python3 bench/sort_bench.py
Env: SORT_BENCH_MESSAGES (100000), SORT_BENCH_DOVECOT (1; 0 skips Dovecot,
which needs root and dovecot-imapd). Prints a table and one JSON line.
SORT_BENCH_RESTARTS=N (0) also restarts Hato N times after the fill and
times the first SORT (DATE) and THREAD REFERENCES of a fresh process: with
the keys records stored at delivery (blobs.sort_keys), then with them
removed (the keys derived from every stored tree, as before the records),
alternately, so both see the same machine load.
Target (issue 16): SORT < 200 ms and THREAD REFERENCES < 500 ms at 100,000.
"""
import json
import os
import random
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from harness import DOMAIN, PASSWORD, Server  # noqa: E402
from test_migrate import DV_PASS, DV_USER, Dovecot, have_dovecot  # noqa: E402

N = int(os.environ.get("SORT_BENCH_MESSAGES", "100000"))
COMMANDS = [
    "SORT (DATE) UTF-8 ALL",
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL",
    "SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def messages(n):
    """Threads of 1 to 8 messages, replies referencing their parents."""
    rnd = random.Random(16)
    out, i = [], 0
    while i < n:
        topic = f"Topic {rnd.randrange(n // 3 + 1)} about {rnd.choice(['cats', 'build', 'lunch'])}"
        parent_refs = []
        for depth in range(rnd.randrange(1, 9)):
            if i >= n:
                break
            mid = f"<m{i}@bench.test>"
            day = 1 + rnd.randrange(28)
            date = f"{day:02d} {rnd.choice(MONTHS)} {2020 + rnd.randrange(5)} " \
                   f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:00 +0000"
            subject = ("Re: " * min(depth, 2)) + topic
            head = (f"From: User {rnd.randrange(500)} <u{rnd.randrange(500)}@bench.test>\r\n"
                    f"To: list@bench.test\r\nSubject: {subject}\r\nDate: {date}\r\n"
                    f"Message-ID: {mid}\r\n")
            if parent_refs:
                head += f"In-Reply-To: {parent_refs[-1]}\r\nReferences: {' '.join(parent_refs)}\r\n"
            out.append((head + "\r\n" + "body line\r\n" * rnd.randrange(1, 20)).encode())
            parent_refs.append(mid)
            i += 1
    return out


class Conn:
    def __init__(self, port, user, password):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=600)
        self.buf = b""
        self.line()
        self.cmd(f'a LOGIN "{user}" "{password}"', "a")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until(self, tag):
        t = tag.encode() + b" "
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(t):
                return lines

    def cmd(self, text, tag):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.until(tag)

    def fill(self, box, msgs):
        """MULTIAPPEND (RFC 3502) batches of 50, pipelined 4 deep."""
        self.cmd(f"c CREATE {box}", "c")
        batch, depth = 50, 4
        tags = []
        for n, start in enumerate(range(0, len(msgs), batch)):
            data = b"p%d APPEND %s" % (n, box.encode())
            for m in msgs[start:start + batch]:
                data += b" {%d+}\r\n%s" % (len(m), m)
            self.sock.sendall(data + b"\r\n")
            tags.append(f"p{n}")
            if len(tags) >= depth:
                last = self.until(tags.pop(0))[-1]
                if b" OK" not in last:
                    raise RuntimeError(last)
        for t in tags:
            last = self.until(t)[-1]
            if b" OK" not in last:
                raise RuntimeError(last)


def measure(port, user, password, msgs):
    c = Conn(port, user, password)
    t0 = time.time()
    c.fill("Big", msgs)
    fill_s = time.time() - t0
    c.cmd("s SELECT Big", "s")
    out = {"fill_s": round(fill_s, 1)}
    for i, command in enumerate(COMMANDS):
        times = []
        for run in range(6):
            tag = f"t{i}x{run}"
            start = time.perf_counter()
            lines = c.cmd(f"{tag} {command}", tag)
            times.append((time.perf_counter() - start) * 1000)
            if b" OK" not in lines[-1]:
                raise RuntimeError((command, lines[-1]))
        out[command] = {"cold_ms": round(times[0], 1), "warm_ms": round(statistics.median(times[1:]), 1)}
    return out


def first_runs(server):
    """The first SORT (DATE) and THREAD REFERENCES of a fresh process, in ms."""
    server.stop()
    server.start()
    c = Conn(server.imap_port, f"alice@{DOMAIN}", PASSWORD)
    c.cmd("s SELECT Big", "s")
    out = {}
    for tag, command in (("d", "SORT (DATE) UTF-8 ALL"), ("r", "THREAD REFERENCES UTF-8 ALL")):
        start = time.perf_counter()
        lines = c.cmd(f"{tag} {command}", tag)
        out[command] = round((time.perf_counter() - start) * 1000, 1)
        if b" OK" not in lines[-1]:
            raise RuntimeError((command, lines[-1]))
    return out


def restarts(server, n):
    """Cold runs with the stored records, then without (set to NULL), n times."""
    import sqlite3
    db = os.path.join(server.data, "meta.db")
    runs = {"records": [], "trees": []}
    for _ in range(n):
        runs["records"].append(first_runs(server))
        print("records", runs["records"][-1], flush=True)
        server.stop()
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE IF NOT EXISTS bench_keys(id INTEGER PRIMARY KEY, k BLOB)")
        con.execute("INSERT OR IGNORE INTO bench_keys SELECT id, sort_keys FROM blobs")
        con.execute("UPDATE blobs SET sort_keys = NULL")
        con.commit()
        runs["trees"].append(first_runs(server))
        print("trees", runs["trees"][-1], flush=True)
        server.stop()
        con.execute("UPDATE blobs SET sort_keys = (SELECT b.k FROM bench_keys b WHERE b.id = blobs.id)")
        con.commit()
        con.close()
        server.start()
    return {k: {c: round(statistics.median(r[c] for r in v), 1) for c in v[0]}
            for k, v in runs.items()}


def main():
    msgs = messages(N)
    results = {"messages": N}
    server = Server(users=("alice",)).start()
    try:
        results["hato"] = measure(server.imap_port, f"alice@{DOMAIN}", PASSWORD, msgs)
        n = int(os.environ.get("SORT_BENCH_RESTARTS", "0"))
        if n > 0:
            results["hato_first_run_after_restart"] = restarts(server, n)
    finally:
        server.cleanup()
    if os.environ.get("SORT_BENCH_DOVECOT", "1") != "0" and have_dovecot():
        dv = Dovecot(extra_conf="mail_max_userip_connections = 100\n")
        try:
            results["dovecot"] = measure(dv.port, DV_USER, DV_PASS, msgs)
        finally:
            dv.stop()
    print(f"{'command':36} {'hato cold':>10} {'hato warm':>10} {'dovecot cold':>13} {'dovecot warm':>13}")
    for command in COMMANDS:
        h = results["hato"][command]
        d = results.get("dovecot", {}).get(command, {"cold_ms": "-", "warm_ms": "-"})
        print(f"{command:36} {h['cold_ms']:>10} {h['warm_ms']:>10} {d['cold_ms']:>13} {d['warm_ms']:>13}")
    for k, v in results.get("hato_first_run_after_restart", {}).items():
        print(f"first run after a restart, keys from {k}: {v}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
