"""Before/after figures for the attacks of issue 11 (isolation and bounds).

    HATO_BIN=path/to/hato python3 hostile_measure.py [attack ...]

Runs each attack against a fresh `hato serve` with its default configuration
(so an old binary can be measured too) and prints seconds and MB. Attacks:
list_star, list_percent, preauth_literal, search, password_flood, tls.
Every wait is capped (CAP seconds), so a server that never answers shows as
">CAP". Not a unit test: the numbers are for the report and docs.
"""
import os
import smtplib
import socket
import sys
import threading
import time

from harness import DOMAIN, PASSWORD, Server
from test_hostile import ALICE, BOB, Raw, attacker, imap_login, rss_mb

CAP = float(os.environ.get("HATO_MEASURE_CAP", "30"))


def timed_reply(r, tag):
    start = time.monotonic()
    r.sock.settimeout(CAP)
    try:
        line = r.until_tagged(tag)[-1]
    except (socket.timeout, EOFError) as e:
        return f">{CAP:.0f}s ({type(e).__name__})"
    return f"{time.monotonic() - start:.2f}s ({line[:40]})"


def banner_latency(server):
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=CAP) as s:
            s.makefile("rb").readline()
    except OSError:
        return f">{CAP:.0f}s"
    return f"{time.monotonic() - start:.2f}s"


def list_attack(server, pattern):
    r = imap_login(server.imap_port, ALICE)
    r.send(f'l LIST "" "{pattern}"\r\n')
    out = {}
    t = threading.Thread(target=lambda: out.update(banner=banner_latency(server)))
    time.sleep(0.2)
    t.start()
    out["list"] = timed_reply(r, "l")
    t.join()
    r.close()
    return f"LIST answered in {out['list']}; SMTP banner meanwhile {out.get('banner')}"


def preauth_literal(server):
    pid = server.proc.pid
    before = rss_mb(pid)
    socks = []
    chunk = b"x" * 65536
    for i in range(10):
        r = Raw(attacker(server.imap_port, 2 + i))
        r.line()
        r.send("a LOGIN {50000000+}\r\n")
        sent = 0
        try:
            while sent < 48_000_000:
                r.sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        socks.append((r, sent))
    time.sleep(1)
    after = rss_mb(pid)
    accepted = sum(s for _, s in socks)
    for r, _ in socks:
        r.close()
    return (f"RSS {before:.0f} MB -> {after:.0f} MB with 10 connections "
            f"(client managed to send {accepted / 1e6:.0f} MB in all)")


def search_attack(server):
    # 60 messages of 100 KB; four sessions search with 20 KB needles.
    from test_hostile import HostileTest
    HostileTest.server = server
    HostileTest.load_alice(60, 100_000)
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as s:
        s.sendmail("probe@example.org", [BOB], "Subject: probe\r\n\r\nx\r\n")
    needle = "q" * 20000
    conns = []
    for i in range(4):
        r = imap_login(server.imap_port, ALICE, n=40 + i)
        r.send("s SELECT INBOX\r\n")
        r.until_tagged("s")
        r.send(f"x SEARCH BODY {{{len(needle)}+}}\r\n{needle}\r\n")
        conns.append(r)
    time.sleep(0.3)
    start = time.monotonic()
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=CAP * 4) as s:
        s.ehlo("p.example")
        s.mail("p@example.org")
        s.rcpt(BOB)
    rcpt = time.monotonic() - start
    start = time.monotonic()
    r = Raw(socket.create_connection(("127.0.0.1", server.imap_port), timeout=CAP * 4))
    r.line()
    r.send(f"l LOGIN {BOB} {PASSWORD}\r\n")
    r.until_tagged("l")
    login = time.monotonic() - start
    r.close()
    answers = [timed_reply(c, "x") for c in conns]
    for c in conns:
        c.close()
    return f"RCPT {rcpt:.2f}s, LOGIN {login:.2f}s during 4 searches; searches: {answers}"


def password_flood(server, n=600):
    def bad(i):
        try:
            r = Raw(attacker(server.imap_port, 1 + i % 250, timeout=120))
            r.line()
            r.send(f"l LOGIN nobody{i}@{DOMAIN} wrong\r\n")
            r.until_tagged("l")
            r.close()
        except Exception:  # noqa: BLE001
            pass
    threads = [threading.Thread(target=bad, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    start = time.monotonic()
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=120) as s:
        s.ehlo("p.example")
        s.mail("p@example.org")
        s.rcpt(BOB)
    rcpt = time.monotonic() - start
    for t in threads:
        t.join(180)
    return f"RCPT {rcpt:.2f}s during {n} failed logins from 250 addresses"


def tls(server):
    r = Raw(attacker(server.imaps_port))
    start = time.monotonic()
    closed = r.closed(CAP)
    took = time.monotonic() - start
    r.close()
    return f"silent client on 993 closed after {took:.1f}s" if closed else f"still open after {CAP:.0f}s"


ATTACKS = {
    "list_star": lambda s: list_attack(s, "*" * 60 + "y"),
    "list_percent": lambda s: list_attack(s, "%" * 200 + "y"),
    "preauth_literal": preauth_literal,
    "search": search_attack,
    "password_flood": password_flood,
    "tls": tls,
}


def main():
    names = sys.argv[1:] or list(ATTACKS)
    for name in names:
        server = Server(users=("alice", "bob", "carol"))
        server.start()
        try:
            print(f"{name}: {ATTACKS[name](server)}", flush=True)
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
