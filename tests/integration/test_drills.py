"""The incident drills of issue 4, each a test runnable by name:

  python3 -m unittest test_drills.SlowStorageSurge   # fsync 100x slower + 3x SMTP load
  python3 -m unittest test_drills.StorageStall       # fsync hangs (60 s in the long form)
  python3 -m unittest test_drills.SessionSurge       # 10x the normal connections at once
  python3 -m unittest test_disk_full                 # drill 4: the data volume fills

`make test` runs the short forms (seconds each); HATO_DRILL_LONG=1 (`make
torture`) the long ones. Each prints one line of figures (messages acked,
lost, refused; peak RSS; time to drain) for the closing note. Faults come from
HATO_FAULTS_FILE (io/fault_fs.h); the backlog and RSS are read from the
metrics endpoint (docs/operations.md) and /proc.
"""
import imaplib
import os
import poplib
import smtplib
import socket
import threading
import time
import unittest

import metrics_client
from harness import DOMAIN, PASSWORD, LineClient, Server, free_port

LONG = os.environ.get("HATO_DRILL_LONG") == "1"
USERS = ("alice", "bob", "carol")


def peak_rss_bytes(pid):
    """VmHWM: the process's peak resident set size."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def figures(name, **kv):
    text = " ".join(f"{k}={v}" for k, v in kv.items())
    print(f"\nDRILL {name}{' (long)' if LONG else ''}: {text}", flush=True)


class Load:
    """SMTP senders, POP3/IMAP readers and a metrics sampler, on threads."""

    def __init__(self, server, metrics_port):
        self.server, self.metrics_port = server, metrics_port
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.acked = {}  # subject -> recipient
        self.codes = {}  # reply code -> count (refusals and 250s)
        self.slowest_reply = 0.0
        self.errors = []  # unexpected failures (connection errors, 5xx)
        self.logins = 0
        self.login_failures = []
        self.slowest_login = 0.0
        self.samples = []  # metrics snapshots
        self.threads = []
        self.seq = 0

    def _count(self, code, took):
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1
            self.slowest_reply = max(self.slowest_reply, took)

    def sender(self, idx):
        while not self.stop.is_set():
            with self.lock:
                self.seq += 1
                subject = f"drill-{idx}-{self.seq}"
            rcpt = f"{USERS[self.seq % len(USERS)]}@{DOMAIN}"
            start = time.time()
            try:
                with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=90) as s:
                    s.sendmail("load@remote.test", [rcpt],
                               f"Subject: {subject}\r\n\r\nbody {subject}\r\n".encode())
                with self.lock:
                    self.acked[subject] = rcpt
                self._count(250, time.time() - start)
            except smtplib.SMTPResponseException as e:
                self._count(e.smtp_code, time.time() - start)
            except smtplib.SMTPSenderRefused as e:
                self._count(e.smtp_code, time.time() - start)
            except smtplib.SMTPRecipientsRefused as e:
                self._count(list(e.recipients.values())[0][0], time.time() - start)
            except (OSError, smtplib.SMTPException) as e:
                with self.lock:
                    self.errors.append(f"smtp: {e!r}")
                time.sleep(0.1)

    def pop3_reader(self, user):
        while not self.stop.is_set():
            start = time.time()
            try:
                p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=30)
                p.user(f"{user}@{DOMAIN}")
                p.pass_(PASSWORD)
                n = p.stat()[0]
                if n:
                    p.retr(n)
                p.quit()
                self._login_ok(time.time() - start)
            except (OSError, poplib.error_proto) as e:
                with self.lock:
                    self.login_failures.append(f"pop3: {e!r}")
            time.sleep(0.2)

    def imap_reader(self, user):
        while not self.stop.is_set():
            start = time.time()
            try:
                m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
                m.login(f"{user}@{DOMAIN}", PASSWORD)
                typ, data = m.select("INBOX", readonly=True)
                n = int(data[0]) if typ == "OK" else 0
                if n:
                    m.fetch(str(n), "(BODY.PEEK[])")
                m.logout()
                self._login_ok(time.time() - start)
            except (OSError, imaplib.IMAP4.error) as e:
                with self.lock:
                    self.login_failures.append(f"imap: {e!r}")
            time.sleep(0.2)

    def _login_ok(self, took):
        with self.lock:
            self.logins += 1
            self.slowest_login = max(self.slowest_login, took)

    def sampler(self):
        while not self.stop.is_set():
            try:
                m = metrics_client.scrape(self.metrics_port)
                m["t"] = time.time()
                with self.lock:
                    self.samples.append(m)
            except OSError as e:
                with self.lock:
                    self.errors.append(f"metrics: {e!r}")
            time.sleep(0.2)

    def start(self, senders, readers=True):
        targets = [(self.sender, (i,)) for i in range(senders)]
        if readers:
            targets += [(self.pop3_reader, ("alice",)), (self.imap_reader, ("bob",))]
        targets.append((self.sampler, ()))
        for fn, args in targets:
            t = threading.Thread(target=fn, args=args, daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)
        self.threads = []
        self.stop.clear()

    def refused(self):
        return sum(n for c, n in self.codes.items() if c != 250)

    def max_sample(self, key):
        return max((s.get(key, 0) for s in self.samples), default=0)


def stored_subjects(server):
    out = []
    for u in USERS:
        p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=60)
        p.user(f"{u}@{DOMAIN}")
        p.pass_(PASSWORD)
        for i in range(p.stat()[0]):
            for line in p.top(i + 1, 0)[1]:
                if line.startswith(b"Subject: "):
                    out.append(line[9:].decode())
        p.quit()
    return out


class DrillBase(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=USERS)
        self.metrics_port = free_port()
        metrics_client.enable(self.server, self.metrics_port)
        self.faults = os.path.join(self.server.data, "faults")
        self.set_faults("")

    def start(self):
        self.server.start(env={"HATO_FAULTS_FILE": self.faults})
        self.load = Load(self.server, self.metrics_port)

    def tearDown(self):
        self.server.cleanup()

    def set_faults(self, text):
        with open(self.faults + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.faults + ".tmp", self.faults)

    def metrics(self):
        return metrics_client.scrape(self.metrics_port)

    def check_no_acked_lost(self):
        stored = stored_subjects(self.server)
        counts = {}
        for s in stored:
            counts[s] = counts.get(s, 0) + 1
        lost = [s for s in self.load.acked if counts.get(s, 0) == 0]
        twice = [s for s, n in counts.items() if n > 1]
        self.assertEqual(lost, [], "acknowledged messages lost")
        self.assertEqual(twice, [], "messages stored twice")
        return len(lost)

    def check_refusals_temporary(self):
        bad = {c: n for c, n in self.load.codes.items() if c != 250 and not 400 <= c < 500}
        self.assertEqual(bad, {}, "refusals that are not 4xx")
        self.assertEqual(self.load.errors, [], "connection errors")

    def wait_drained(self, limit):
        """Seconds until the store's queue is empty and new mail gets 250 again."""
        start = time.time()
        while True:
            m = self.metrics()
            if m["hato_store_pending_writes"] == 0 and m["hato_store_commit_in_flight_seconds"] == 0:
                try:
                    with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
                        s.sendmail("probe@remote.test", [f"alice@{DOMAIN}"],
                                   b"Subject: drained-probe\r\n\r\nx\r\n")
                    self.load.acked["drained-probe"] = "alice"
                    return time.time() - start
                except smtplib.SMTPException:
                    pass
            self.assertLess(time.time() - start, limit, "the backlog did not drain")
            time.sleep(0.1)


class SlowStorageSurge(DrillBase):
    """Drill 1: fsync 100x slower while 3x the normal SMTP load arrives and
    POP3/IMAP users keep reading. Pass: nothing acknowledged lost; refusals
    are 4xx; logins work throughout; the backlog shows in the metrics and
    drains within a minute of the delay ending."""

    NORMAL_SENDERS = 2
    SECONDS = 60 if LONG else 6

    def test_slow_storage_and_monday_surge(self):
        self.start()
        # Normal load first, to measure the normal commit latency.
        self.load.start(self.NORMAL_SENDERS)
        time.sleep(2)
        m = self.metrics()
        normal_ms = 1000 * m["hato_store_commit_seconds_sum"] / max(
            1, m["hato_store_commit_seconds_count"])
        delay_ms = int(min(1000, max(100, 100 * normal_ms)))
        self.load.finish()
        # 100x slower fsync (on both halves of the commit) and 3x the senders.
        self.set_faults(f"fsync delay_ms={delay_ms}\n")
        self.load.start(3 * self.NORMAL_SENDERS)
        time.sleep(self.SECONDS)
        self.set_faults("")
        ended = time.time()
        self.load.finish()
        self.wait_drained(60)
        drain = time.time() - ended  # from the end of the delay to a 250 on an empty queue
        self.assertLess(drain, 60)
        self.check_refusals_temporary()
        self.assertEqual(self.load.login_failures, [], "logins failed during the drill")
        self.assertGreater(self.load.logins, 0)
        # The slowdown is visible in the metrics: slow commits, queued writes or refusals.
        slow = max((s.get("hato_store_commit_in_flight_seconds", 0) for s in self.load.samples),
                   default=0)
        pending = self.load.max_sample("hato_store_pending_writes")
        self.assertTrue(slow > 0 or pending > 0, "backlog never visible in /metrics")
        lost = self.check_no_acked_lost()
        figures("slow-storage-surge", fsync_delay_ms=delay_ms, normal_commit_ms=round(normal_ms, 1),
                acked=len(self.load.acked), lost=lost, refused_4xx=self.load.refused(),
                max_pending=int(pending), max_commit_in_flight_s=round(slow, 2),
                logins=self.load.logins, slowest_login_s=round(self.load.slowest_login, 2),
                peak_rss_mb=round(peak_rss_bytes(self.server.proc.pid) / 2**20, 1),
                drain_s=round(drain, 2))


class StorageStall(DrillBase):
    """Drill 2: fsync hangs (60 s long form, 4 s short). Pass: pending work and
    memory bounded; clients get a 4xx in time; logins and reads work; no
    crash; full recovery after."""

    STALL = 60 if LONG else 4
    COMMIT_TIMEOUT = 5 if LONG else 2
    RSS_BOUND = 256 << 20

    def test_storage_stall(self):
        self.server.set_config("smtp", "commit_timeout_seconds", self.COMMIT_TIMEOUT)
        self.server.set_config("store", "max_pending_writes", 200)
        self.start()
        self.set_faults(f"fsync delay_ms={self.STALL * 1000}\n")
        time.sleep(0.2)
        self.load.start(6)
        time.sleep(self.STALL)
        self.set_faults("")
        self.load.finish()
        ended = time.time()
        self.assertIsNone(self.server.proc.poll(), "the server died")
        drain = self.wait_drained(60)
        self.check_refusals_temporary()
        # Timely: no reply waited much beyond the commit deadline (plus one stalled fsync
        # for transactions already committing when the stall began).
        self.assertLess(self.load.slowest_reply, self.COMMIT_TIMEOUT + 3)
        self.assertEqual(self.load.login_failures, [], "logins failed during the stall")
        self.assertGreater(self.load.logins, 0)
        pending = self.load.max_sample("hato_store_pending_writes")
        self.assertLessEqual(pending, 200)
        peak = peak_rss_bytes(self.server.proc.pid)
        self.assertLess(peak, self.RSS_BOUND)
        lost = self.check_no_acked_lost()
        figures("storage-stall", stall_s=self.STALL, acked=len(self.load.acked), lost=lost,
                refused_4xx=self.load.refused(), slowest_reply_s=round(self.load.slowest_reply, 2),
                max_pending=int(pending), logins=self.load.logins,
                slowest_login_s=round(self.load.slowest_login, 2),
                peak_rss_mb=round(peak / 2**20, 1), recovery_s=round(drain, 2),
                since_stall_end_s=round(time.time() - ended, 2))


class SessionSurge(DrillBase):
    """Drill 3: 10x the normal number of connections within a few seconds.
    Pass: no crash; RSS under the bound; the excess refused politely (SMTP
    421, IMAP * BYE [UNAVAILABLE], POP3 -ERR [SYS/TEMP]); sessions that were
    open keep working."""

    NORMAL = 40 if LONG else 10  # per protocol
    LIMIT = 5 * NORMAL  # max_connections per protocol: half the surge fits
    RSS_BOUND = 256 << 20

    def test_session_surge(self):
        for proto in ("smtp", "pop3", "imap"):
            self.server.set_config(proto, "max_connections", self.LIMIT)
        self.start()
        ports = {"smtp": self.server.smtp_port, "pop3": self.server.pop3_port,
                 "imap": self.server.imap_port}
        greeting_ok = {"smtp": "220", "pop3": "+OK", "imap": "* OK"}
        refusal = {"smtp": "421", "pop3": "-ERR [SYS/TEMP]", "imap": "* BYE [UNAVAILABLE]"}
        # Normal sessions, open before the surge.
        existing = {p: [LineClient(ports[p]) for _ in range(2)] for p in ports}
        for p, cs in existing.items():
            for c in cs:
                self.assertTrue(c.line().startswith(greeting_ok[p]))
        rss_before = peak_rss_bytes(self.server.proc.pid)
        start = time.time()
        opened = {p: [] for p in ports}
        for i in range(10 * self.NORMAL):
            for p in ports:
                try:
                    opened[p].append(LineClient(ports[p], timeout=20))
                except OSError as e:
                    self.fail(f"{p}: connect failed in the surge: {e!r}")
        surge_s = time.time() - start
        admitted, refused = {p: 0 for p in ports}, {p: 0 for p in ports}
        for p, cs in opened.items():
            for c in cs:
                line = c.line()
                if line.startswith(greeting_ok[p]):
                    admitted[p] += 1
                else:
                    self.assertTrue(line.startswith(refusal[p]), f"{p}: {line!r}")
                    self.assertTrue(c.closed(), f"{p}: refused but left open")
                    refused[p] += 1
        for p in ports:
            self.assertEqual(admitted[p], self.LIMIT - 2, p)  # 2 existing sessions count too
            self.assertEqual(refused[p], 10 * self.NORMAL - (self.LIMIT - 2), p)
        # The sessions that were there keep working.
        smtp = existing["smtp"][0]
        smtp.send("EHLO drill.test\r\n")
        self.assertEqual(smtp.reply()[0], 250)
        smtp.send(f"MAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@{DOMAIN}>\r\nDATA\r\n")
        self.assertEqual([smtp.reply()[0] for _ in range(3)], [250, 250, 354])
        smtp.send("Subject: during-surge\r\n\r\nx\r\n.\r\n")
        self.assertEqual(smtp.reply()[0], 250)
        pop = existing["pop3"][0]
        pop.send(f"USER alice@{DOMAIN}\r\nPASS {PASSWORD}\r\nSTAT\r\n")
        self.assertEqual([pop.line()[:3] for _ in range(3)], ["+OK"] * 3)
        imap = existing["imap"][0]
        imap.send(f'a LOGIN alice@{DOMAIN} "{PASSWORD}"\r\na2 SELECT INBOX\r\n')
        lines = []
        while not lines or not lines[-1].startswith("a2 "):
            lines.append(imap.line())
        self.assertTrue(lines[-1].startswith("a2 OK"), lines)
        m = self.metrics()
        peak = peak_rss_bytes(self.server.proc.pid)
        self.assertLess(peak, self.RSS_BOUND)
        self.assertIsNone(self.server.proc.poll())
        for p in ports:
            self.assertEqual(
                m[f'hato_connections_refused_total{{protocol="{p}",reason="too_many"}}'], refused[p])
        for cs in list(opened.values()) + list(existing.values()):
            for c in cs:
                c.close()
        figures("session-surge", attempted=30 * self.NORMAL, surge_s=round(surge_s, 2),
                admitted=sum(admitted.values()), refused=sum(refused.values()),
                rss_before_mb=round(rss_before / 2**20, 1), peak_rss_mb=round(peak / 2**20, 1))


if __name__ == "__main__":
    unittest.main()
