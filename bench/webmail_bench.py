#!/usr/bin/env python3
"""The webmail on a 100,000-message folder of a real `hato serve` (issue 13):
fills one folder over IMAP (MULTIAPPEND, not timed), then has Chromium
(bench/web/real_list.mjs) sign in, open the folder, scroll, jump to the
middle and open a message, timed with the Performance API; three runs,
medians printed as one JSON line. bench/web/list.mjs measures the browser
side alone against a mock server.

Usage: HATO_BIN=build/hato python3 bench/webmail_bench.py   (after `make build`:
the webmail must be built into build/web)
Env: WEBMAIL_BENCH_MESSAGES (100000), CHROMIUM (/usr/bin/chromium).
Target (issue 13): the folder opens in < 1 s and scrolls without loading the
whole list.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)

from harness import DOMAIN, PASSWORD, Server, wait_for  # noqa: E402
from sort_bench import Conn, messages  # noqa: E402

N = int(os.environ.get("WEBMAIL_BENCH_MESSAGES", "100000"))


def main():
    msgs = messages(N)
    server = Server(users=("alice",)).start()
    try:
        user = f"alice@{DOMAIN}"
        c = Conn(server.imap_port, user, PASSWORD)
        t0 = time.time()
        c.fill("Big", msgs)
        fill_s = time.time() - t0
        c.sock.close()
        env = dict(os.environ, HATO_URL=f"http://127.0.0.1:{server.http_port}", HATO_USER=user,
                   HATO_PASS=PASSWORD, BENCH_FOLDER="Big", BENCH_TOTAL=str(N))
        print(json.dumps({"fill_s": round(fill_s, 1)}), file=sys.stderr, flush=True)
        r = subprocess.run(["node", os.path.join(HERE, "web", "real_list.mjs")], env=env,
                           stdout=subprocess.PIPE, text=True, timeout=3600)
        if r.returncode != 0:
            print(r.stdout, file=sys.stderr)
            sys.exit(1)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["fill_s"] = round(fill_s, 1)
        print(json.dumps(out))
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
