#!/usr/bin/env python3
"""Broadcast benchmark (issue 14): one post to N members on D domains.

Runs a real `hato serve` on loopback with a fresh data dir, a fake DNS that
sends every member domain to one local sink MX (tests/integration/fakemx.py),
imports N members, posts once on port 25, and measures:

  accept_s        DATA sent -> 250 (the post and every recipient row committed)
  queued_s        DATA sent -> the report shows every recipient queued
  delivered_s     DATA sent -> every recipient delivered at the sink
  rate            recipients delivered per second
  p2p_p50/p99_s   person-to-person mail submitted during the broadcast: time
                  from the submission's 250 until the sink has it

The full size is 100,000 members on 1,000 domains; the machine is shared, so
run it reduced:

  BENCH_LIST_MEMBERS=5000 BENCH_LIST_DOMAINS=100 python3 bench/list_broadcast.py build/hato

The sink is a Python threaded SMTP server: at large sizes it, not Hato, is
the bottleneck of the delivery rate. Prints JSON.
"""
import email
import json
import os
import smtplib
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
if len(sys.argv) > 1:
    os.environ["HATO_BIN"] = os.path.abspath(sys.argv[1])

import socketserver  # noqa: E402

from fakemx import FakeDNS, FakeMX  # noqa: E402

socketserver.TCPServer.request_queue_size = 512  # bursts of connections to the sink
from harness import DOMAIN, PASSWORD, Server, run_cli  # noqa: E402

MEMBERS = int(os.environ.get("BENCH_LIST_MEMBERS", "5000"))
DOMAINS = int(os.environ.get("BENCH_LIST_DOMAINS", "100"))
P2P_INTERVAL = float(os.environ.get("BENCH_P2P_INTERVAL", "0.5"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "1800"))
LIST = f"all@{DOMAIN}"


def main():
    mx = FakeMX()
    zone = {f"d{i}.example": [("MX", "10 mx.sink.example.")] for i in range(DOMAINS)}
    zone["p2p.example"] = [("MX", "10 mx.sink.example.")]
    zone["mx.sink.example"] = [("A", "127.0.0.1")]
    dns = FakeDNS(zone, ttl=3600)
    server = Server(users=("alice",))
    try:
        server.set_config("outbound", "resolver", f'"{dns.address}"')
        server.set_config("outbound", "smtp_port", str(mx.port))
        run_cli("list", "create", LIST, data=server.data)
        path = os.path.join(server.data, "members.csv")
        with open(path, "w") as f:
            for i in range(MEMBERS):
                f.write(f"m{i}@d{i % DOMAINS}.example\n")
        t = time.time()
        run_cli("list", "members", "import", LIST, path, data=server.data)
        import_s = time.time() - t
        server.start()

        latencies = []
        stop = threading.Event()

        def p2p():
            n = 0
            while not stop.is_set():
                subject = f"p2p {n}"
                with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=30) as s:
                    s.login(f"alice@{DOMAIN}", PASSWORD)
                    s.sendmail(f"alice@{DOMAIN}", ["bob@p2p.example"],
                               f"From: alice@{DOMAIN}\r\nSubject: {subject}\r\n\r\nhi\r\n")
                sent = time.time()
                while time.time() - sent < 120:
                    with mx.lock:
                        if any(b"Subject: " + subject.encode() + b"\r" in m["data"]
                               for m in mx.messages[-200:] if "bob@p2p.example" in m["rcpts"]):
                            break
                    time.sleep(0.02)
                latencies.append(time.time() - sent)
                n += 1
                stop.wait(P2P_INTERVAL)

        t0 = time.time()
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=600) as s:
            s.sendmail("m0@d0.example", [LIST],
                       f"From: m0@d0.example\r\nTo: {LIST}\r\nSubject: broadcast\r\n\r\n"
                       + "news\r\n" * 50)
        accept_s = time.time() - t0
        poster = threading.Thread(target=p2p, daemon=True)
        poster.start()
        rep = json.loads(run_cli("list", "report", LIST, "--json", data=server.data).stdout)
        queued_s = time.time() - t0
        while time.time() - t0 < TIMEOUT:
            rep = json.loads(run_cli("list", "report", LIST, "--json", data=server.data).stdout)
            if rep["delivered"] + rep["failed"] >= MEMBERS:
                break
            time.sleep(0.5)
        delivered_s = time.time() - t0
        stop.set()
        poster.join(timeout=150)
        lat = sorted(latencies) or [0.0]
        out = {
            "members": MEMBERS, "domains": DOMAINS, "import_s": round(import_s, 3),
            "accept_s": round(accept_s, 3), "queued_s": round(queued_s, 3),
            "recipients_in_report": rep["recipients"], "delivered": rep["delivered"],
            "failed": rep["failed"], "delivered_s": round(delivered_s, 3),
            "rate_per_s": round(rep["delivered"] / delivered_s, 1),
            "p2p_samples": len(latencies),
            "p2p_p50_s": round(lat[len(lat) // 2], 3),
            "p2p_p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3),
            "p2p_max_s": round(lat[-1], 3),
        }
        print(json.dumps(out, indent=2))
    finally:
        server.cleanup()
        mx.stop()
        dns.stop()


if __name__ == "__main__":
    main()
