#!/usr/bin/env python3
"""Full-text search benchmark (issue 17 item 2): IMAP SEARCH TEXT and BODY on
one large mailbox in Hato (Xapian, format 4: tokens with positions, search/terms.h) beside
Dovecot on the same mail, without FTS (its default: a scan) and with the
fts-xapian plugin (package dovecot-fts-xapian, words and prefixes).

Usage: HATO_BIN=build/hato python3 bench/search_bench.py
Env: SEARCH_BENCH_MESSAGES (100000), SEARCH_BENCH_RUNS (7 timed runs per
search; p50 and max reported), SEARCH_BENCH_DOVECOT (1; 0 skips Dovecot,
which needs root and dovecot-imapd; fts-xapian is used when installed).

The mailbox is filled over IMAP (MULTIAPPEND, sort_bench.Conn.fill; not
timed), identically in every server. Hato's index is built in the background
after delivery: the bench waits until the index's watermark reaches the
highest stored body (python3-xapian reads it), and Dovecot's plugin index is built with `doveadm index`
first; each index's build time and size per GB of mail are reported. Each
search is timed from its last byte sent to its tagged OK, on a selected
mailbox. Goal (issue 17): p50 < 50 ms at 100,000 messages.
"""
import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)

from harness import DOMAIN, PASSWORD, Server  # noqa: E402
from sort_bench import Conn  # noqa: E402
from test_migrate import DV_PASS, DV_USER, Dovecot, have_dovecot  # noqa: E402

N = int(os.environ.get("SEARCH_BENCH_MESSAGES", "100000"))
RUNS = int(os.environ.get("SEARCH_BENCH_RUNS", "7"))
WORDS = ("meeting budget invoice delivery schedule project report network server backup "
         "storage customer contract review release update holiday travel lunch weather "
         "printer license renewal security password account mailbox folder filter").split()
JAPANESE = ["会議の資料を送ります", "請求書をご確認ください", "明日の予定について",
            "サーバーの保守作業のお知らせ", "お疲れ様です"]
SEARCHES = [
    ("BODY rare word", 'SEARCH BODY "zebracorn"'),
    ("BODY common word", 'SEARCH BODY "invoice"'),
    ("TEXT two words", 'SEARCH TEXT "budget" TEXT "renewal"'),
    ("BODY mid-word substring", 'SEARCH BODY "ackup stor"'),
    ("BODY Japanese", "SEARCH CHARSET UTF-8 BODY {%d+}\r\n保守作業" % len("保守作業".encode())),
    ("TEXT no match", 'SEARCH TEXT "qqxxzzyy"'),
]


def messages(n):
    rnd = random.Random(17)
    out = []
    for i in range(n):
        words = [rnd.choice(WORDS) for _ in range(rnd.randrange(40, 400))]
        if i % 997 == 0:
            words.insert(rnd.randrange(len(words)), "zebracorn")
        body = ""
        for k in range(0, len(words), 10):
            body += " ".join(words[k:k + 10]) + "\r\n"
        if i % 5 == 0:
            body += rnd.choice(JAPANESE) + "\r\n"
        head = (f"From: User {i % 500} <u{i % 500}@bench.test>\r\nTo: alice@bench.test\r\n"
                f"Subject: {rnd.choice(WORDS)} {rnd.choice(WORDS)} {i}\r\n"
                f"Date: 02 Dec 2026 12:00:00 +0000\r\nMessage-ID: <s{i}@bench.test>\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n")
        out.append((head + "\r\n" + body).encode())
    return out


def wait_indexed(data, limit_s=3600):
    """Until the text index's watermark (DATA/index, metadata "watermark":
    search/text_index.cc) reaches the highest body id in meta.db; returns the
    wait in seconds. The indexer runs at the lowest CPU priority, so on a busy
    machine this is long; until then a search scans what is not indexed."""
    import sqlite3
    if "/usr/lib/python3/dist-packages" not in sys.path:
        sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-xapian
    import xapian
    con = sqlite3.connect(f"file:{os.path.join(data, 'meta.db')}?mode=ro", uri=True)
    top = con.execute("SELECT max(id) FROM blobs").fetchone()[0] or 0
    con.close()
    t0 = time.time()
    while time.time() - t0 < limit_s:
        try:
            mark = int(xapian.Database(os.path.join(data, "index")).get_metadata("watermark") or 0)
        except (xapian.Error, ValueError):
            mark = 0
        if mark >= top:
            break
        time.sleep(0.5)
    return time.time() - t0


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def timed_searches(port, user, password):
    c = Conn(port, user, password)
    c.cmd("s SELECT Big", "s")
    out = {}
    for i, (name, command) in enumerate(SEARCHES):
        times, hits = [], None
        for run in range(RUNS):
            tag = f"q{i}x{run}"
            start = time.perf_counter()
            lines = c.cmd(f"{tag} {command}", tag)
            times.append((time.perf_counter() - start) * 1000)
            if b" OK" not in lines[-1]:
                raise RuntimeError((command, lines[-1]))
            found = [l for l in lines if l.startswith(b"* SEARCH")]
            hits = len(found[0].split()) - 2 if found else 0
        out[name] = {"p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
                     "first_ms": round(times[0], 1), "hits": hits}
    return out


def run_hato(msgs, mail_bytes):
    server = Server(users=("alice",)).start()
    try:
        t0 = time.time()
        Conn(server.imap_port, f"alice@{DOMAIN}", PASSWORD).fill("Big", msgs)
        fill_s = time.time() - t0
        index_s = wait_indexed(server.data)
        size = du(os.path.join(server.data, "index"))
        res = {"fill_s": round(fill_s, 1), "index_wait_s": round(index_s, 1),
               "index_bytes": size, "index_mb_per_gb": round(size / mail_bytes * 1024, 1)}
        res["searches"] = timed_searches(server.imap_port, f"alice@{DOMAIN}", PASSWORD)
        return res
    finally:
        server.cleanup()


def have_fts_xapian():
    return any(os.path.exists(os.path.join(d, "lib21_fts_xapian_plugin.so"))
               for d in ("/usr/lib/dovecot/modules",))


FTS_CONF = """mail_plugins = $mail_plugins fts fts_xapian
plugin {
  fts = xapian
  fts_xapian = partial=3 full=20 verbose=0
  fts_autoindex = no
  fts_enforced = yes
}
"""


def run_dovecot(msgs, mail_bytes, fts):
    dv = Dovecot(extra_conf="mail_max_userip_connections = 100\n" + (FTS_CONF if fts else ""))
    try:
        t0 = time.time()
        Conn(dv.port, DV_USER, DV_PASS).fill("Big", msgs)
        res = {"fill_s": round(time.time() - t0, 1)}
        if fts:
            conf = os.path.join(dv.dir, "dovecot.conf")
            t0 = time.time()
            subprocess.run(["doveadm", "-c", conf, "index", "-u", DV_USER, "Big"], check=True,
                           capture_output=True)
            res["index_s"] = round(time.time() - t0, 1)
            size = sum(du(os.path.join(root, d)) for root, dirs, _ in os.walk(dv.dir)
                       for d in dirs if d.startswith("xapian-indexes"))
            res["index_bytes"] = size
            res["index_mb_per_gb"] = round(size / mail_bytes * 1024, 1)
        res["searches"] = timed_searches(dv.port, DV_USER, DV_PASS)
        return res
    finally:
        dv.stop()


def main():
    msgs = messages(N)
    mail_bytes = sum(len(m) for m in msgs)
    results = {"messages": N, "mail_mb": round(mail_bytes / 2**20, 1),
               "load_average": round(os.getloadavg()[0], 1)}
    results["hato"] = run_hato(msgs, mail_bytes)
    if os.environ.get("SEARCH_BENCH_DOVECOT", "1") != "0" and have_dovecot():
        results["dovecot"] = run_dovecot(msgs, mail_bytes, fts=False)
        if have_fts_xapian():
            results["dovecot_fts_xapian"] = run_dovecot(msgs, mail_bytes, fts=True)
    servers = [k for k in ("hato", "dovecot", "dovecot_fts_xapian") if k in results]
    print(f"{N} messages, {results['mail_mb']} MB of mail, load average {results['load_average']}")
    print(f"{'search':26}" + "".join(f"{s + ' p50/max ms':>30}" for s in servers) + "   hits")
    for name, _ in SEARCHES:
        row = f"{name:26}"
        for s in servers:
            r = results[s]["searches"][name]
            row += f"{str(r['p50_ms']) + ' / ' + str(r['max_ms']):>30}"
        row += "   " + "/".join(str(results[s]["searches"][name]["hits"]) for s in servers)
        print(row)
    for s in servers:
        if "index_bytes" in results[s]:
            print(f"{s}: index {results[s]['index_mb_per_gb']} MB per GB of mail")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
