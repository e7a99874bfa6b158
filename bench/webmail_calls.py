#!/usr/bin/env python3
"""The webmail's JMAP calls on a large folder, timed from a plain client
(issue 13's 100,000-message goal, the server side alone): fills one folder
over IMAP (MULTIAPPEND, not timed), then times the requests the webmail
(web/src/jmap.ts) makes:

  mailboxes  Mailbox/get of every mailbox (the folder list with its counts)
  open       Email/query (inMailbox, receivedAt desc, position 0, limit 50,
             calculateTotal) + Email/get of "#ids" (LIST_PROPERTIES)
  scroll     the same at positions 50, 100, ... 250 (five screens)
  jump       the same at position N/2 (a jump to the middle)
  jump_end   the same at position N-50

Each is run RUNS times (the first run reads cold bodies: Email/get parses the
50 messages, later runs hit the summary cache); min/median/max ms printed as
one JSON line. bench/webmail_bench.py measures the same in Chromium.

Usage: HATO_BIN=build/hato python3 bench/webmail_calls.py
Env: WEBMAIL_BENCH_MESSAGES (100000), WEBMAIL_BENCH_RUNS (5).
"""
import base64
import json
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)

from harness import DOMAIN, PASSWORD, Server  # noqa: E402
from sort_bench import Conn, messages  # noqa: E402

N = int(os.environ.get("WEBMAIL_BENCH_MESSAGES", "100000"))
RUNS = int(os.environ.get("WEBMAIL_BENCH_RUNS", "5"))
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
LIST_PROPERTIES = ["id", "threadId", "blobId", "mailboxIds", "keywords", "from", "to", "subject",
                   "receivedAt", "sentAt", "size", "preview", "hasAttachment"]


class Api:
    """One keep-alive HTTP connection to /jmap/api/."""

    def __init__(self, port, user):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=600)
        self.auth = "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        self.buf = b""

    def call(self, calls):
        body = json.dumps({"using": USING, "methodCalls": calls}).encode()
        self.sock.sendall((f"POST /jmap/api/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Authorization: {self.auth}\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(1 << 20)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(self.buf) < length:
            self.buf += self.sock.recv(1 << 20)
        out, self.buf = self.buf[:length], self.buf[length:]
        if b" 200 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(head)
        return json.loads(out)["methodResponses"]


def page(api, box, position):
    r = api.call([
        ["Email/query", {"filter": {"inMailbox": box},
                         "sort": [{"property": "receivedAt", "isAscending": False}],
                         "position": position, "limit": 50, "calculateTotal": True}, "q"],
        ["Email/get", {"#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                       "properties": LIST_PROPERTIES}, "g"]])
    assert r[0][0] == "Email/query", r[0]
    assert r[0][1]["total"] == N, r[0][1].get("total")
    assert len(r[1][1]["list"]) == min(50, N - position), len(r[1][1]["list"])
    return r


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main():
    server = Server(users=("alice",)).start()
    try:
        user = f"alice@{DOMAIN}"
        c = Conn(server.imap_port, user, PASSWORD)
        t0 = time.time()
        c.fill("Big", messages(N))
        fill_s = time.time() - t0
        c.sock.close()
        api = Api(server.http_port, user)
        boxes = api.call([["Mailbox/get", {}, "m"]])[0][1]["list"]
        box = [b["id"] for b in boxes if b["name"] == "Big"][0]
        ops = {
            "mailboxes": lambda: api.call([["Mailbox/get", {}, "m"]]),
            "open": lambda: page(api, box, 0),
            "scroll": lambda: [page(api, box, 50 * i) for i in range(1, 6)],
            "jump": lambda: page(api, box, N // 2),
            "jump_end": lambda: page(api, box, max(0, N - 50)),
        }
        out = {"messages": N, "fill_s": round(fill_s, 1)}
        for name, fn in ops.items():
            ms = [timed(fn) for _ in range(RUNS)]
            out[name] = {"first_ms": round(ms[0], 1), "median_ms": round(statistics.median(ms), 1),
                         "max_ms": round(max(ms), 1)}
            print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
        out["loadavg"] = open("/proc/loadavg").read().split()[:3]
        print(json.dumps(out))
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
