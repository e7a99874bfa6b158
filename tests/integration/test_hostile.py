"""Hostile sessions (issue 11, isolation and bounds). Each test runs one attack
from its own client address (127.0.1.x: another /24 than the probes) against a
real `hato serve` and asserts that, while it runs, a concurrent SMTP banner,
IMAP LOGIN and POP3 RETR from another client (127.0.0.1) each answer within
1 s. The attacks are the ones of the issue:

  * LIST/LSUB patterns that made the old backtracking matcher run for a
    minute ("<60 x *>y") or for ever (runs of '%') on the event loop;
  * unauthenticated IMAP literals of 50 MB held for half an hour;
  * many connections holding IMAP literals or SMTP DATA in memory (the
    per-address memory budget answers "* BYE [UNAVAILABLE]" / 421 4.3.2);
  * SEARCH with 20 KB needles, four at once (the old code scanned on the pool
    that serves logins, RCPT and RETR);
  * a flood of password checks (the old code queued them on that pool);
  * TLS handshakes that never start (1,800 s before; now
    server.tls_handshake_timeout_seconds).

CI size by default; HATO_HOSTILE=full runs the sizes of the issue (`make torture`).
"""
import os
import poplib
import signal
import socket
import smtplib
import threading
import time
import unittest

import metrics_client
from harness import DOMAIN, PASSWORD, Server, free_port, wait_for

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"
FULL = os.environ.get("HATO_HOSTILE", "") == "full"
PROBE_LIMIT = 1.0  # seconds each probe may take while an attack runs
MIB = 1 << 20


def attacker(port, n=1, timeout=30):
    """A raw connection from 127.0.1.n (another /24 than the probes')."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((f"127.0.1.{n}", 0))
    s.connect(("127.0.0.1", port))
    return s


class Raw:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed; buffered %r" % self.buf[-200:])
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """One SMTP reply (multi-line ones too): its last line."""
        while True:
            l = self.line()
            if len(l) < 4 or l[3] != "-":
                return l

    def until_tagged(self, tag):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag + " ") or l.startswith("* BYE"):
                return lines

    def closed(self, timeout):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def imap_login(port, user, n=1):
    r = Raw(attacker(port, n))
    r.line()
    r.send(f"l LOGIN {user} {PASSWORD}\r\n")
    assert r.until_tagged("l")[-1].startswith("l OK"), "login failed"
    return r


class Probes:
    """SMTP banner, IMAP LOGIN and POP3 RETR from 127.0.0.1, in a loop, while an
    attack runs; records the slowest answer of each."""

    def __init__(self, server):
        self.server = server
        self.worst = {"smtp banner": 0.0, "imap login": 0.0, "pop3 retr": 0.0}
        self.rounds = 0
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _timed(self, name, fn):
        start = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 -- reported by check()
            self.errors.append(f"{name}: {e!r}")
        self.worst[name] = max(self.worst[name], time.monotonic() - start)

    def _smtp(self):
        with socket.create_connection(("127.0.0.1", self.server.smtp_port), timeout=30) as s:
            f = s.makefile("rb")
            line = f.readline()
            if not line.startswith(b"220"):
                raise AssertionError(line)
            s.sendall(b"QUIT\r\n")

    def _imap(self):
        with socket.create_connection(("127.0.0.1", self.server.imap_port), timeout=30) as s:
            f = s.makefile("rb")
            f.readline()
            s.sendall(f"p LOGIN {BOB} {PASSWORD}\r\n".encode())
            while True:
                line = f.readline()
                if not line:
                    raise EOFError("imap closed")
                if line.startswith(b"p "):
                    if not line.startswith(b"p OK"):
                        raise AssertionError(line)
                    break
            s.sendall(b"q LOGOUT\r\n")

    def _pop3(self):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=30)
        try:
            p.user(BOB)
            p.pass_(PASSWORD)
            resp, lines, _ = p.retr(1)
            if not resp.startswith(b"+OK") or not lines:
                raise AssertionError(resp)
        finally:
            p.quit()

    def _run(self):
        while not self._stop.is_set():
            self._timed("smtp banner", self._smtp)
            self._timed("imap login", self._imap)
            self._timed("pop3 retr", self._pop3)
            self.rounds += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        # At least one full round must have run during the attack.
        deadline = time.monotonic() + 60
        while self.rounds == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(90)

    def check(self, test):
        test.assertFalse(self.errors, self.errors)
        test.assertGreater(self.rounds, 0)
        for name, took in self.worst.items():
            test.assertLess(took, PROBE_LIMIT, f"{name} took {took:.2f}s during the attack "
                            f"({self.rounds} rounds; all: {self.worst})")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=("alice", "bob", "carol"))
        cls.server.set_config("server", "memory_budget_per_ip_bytes", str(8 * MIB))
        cls.server.set_config("server", "memory_budget_bytes", str(64 * MIB))
        cls.server.set_config("server", "tls_handshake_timeout_seconds", "2")
        cls.server.set_config("imap", "max_sessions_per_account", "12")
        cls.metrics_port = free_port()
        metrics_client.enable(cls.server, cls.metrics_port)
        cls.server.set_config("auth", "max_pending_checks", "4")
        cls.server.set_config("auth", "password_threads", "1")
        cls.server.start()
        # bob has a message for the POP3 RETR probe; alice a mailbox to search.
        with smtplib.SMTP("127.0.0.1", cls.server.smtp_port, timeout=30) as s:
            s.sendmail("probe@example.org", [BOB], f"Subject: probe\r\n\r\n{'x' * 2000}\r\n")
        cls.load_alice(400 if FULL else 60, 100_000)

    @classmethod
    def load_alice(cls, count, size):
        body = ("lorem ipsum dolor sit amet " * (size // 27)).encode()
        r = Raw(socket.create_connection(("127.0.0.1", cls.server.imap_port), timeout=60))
        r.line()
        r.send(f"l LOGIN {ALICE} {PASSWORD}\r\n")
        r.until_tagged("l")
        for i in range(count):
            msg = b"Subject: m%d\r\nFrom: x@example.org\r\n\r\n" % i + body + b"\r\n"
            r.send(b"a%d APPEND INBOX {%d+}\r\n" % (i, len(msg)) + msg + b"\r\n")
        for i in range(count):
            r.until_tagged(f"a{i}")
        r.close()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    # ---- item 1: LIST wildcards ----------------------------------------

    def test_list_wildcards_answer_promptly(self):
        r = imap_login(self.server.imap_port, ALICE)
        patterns = ["*" * 60 + "y", "%" * (600 if FULL else 200) + "y",
                    "%*" * (400 if FULL else 100) + "y", "*%a" * 300 + "y"]
        with Probes(self.server) as probes:
            for i, p in enumerate(patterns):
                start = time.monotonic()
                r.send(f'l{i} LIST "" "{p}"\r\n')
                lines = r.until_tagged(f"l{i}")
                self.assertTrue(lines[-1].startswith(f"l{i} OK"), lines[-1])
                self.assertLess(time.monotonic() - start, 2.0, p[:20])
            # A matching pattern still matches (RFC 3501 semantics kept).
            r.send('m LIST "" "*%*X"\r\n')
            lines = r.until_tagged("m")
            self.assertTrue(lines[-1].startswith("m OK"))
            r.send('n LIST "" "%"\r\n')
            lines = r.until_tagged("n")
            self.assertTrue(any('"INBOX"' in l or " INBOX" in l for l in lines), lines)
            # Past the named limit: a defined reply.
            r.send(f'o LIST "" "{"*a" * 600}"\r\n')
            self.assertTrue(r.until_tagged("o")[-1].startswith("o NO [LIMIT]"))
            r.send(f'p LSUB "" "{"%" * 300}y"\r\n')
            self.assertTrue(r.until_tagged("p")[-1].startswith("p OK"))
        r.close()
        probes.check(self)

    # ---- item 2: pre-auth literals and memory budgets -------------------

    def test_preauth_literal_is_small(self):
        size = 50_000_000
        r = Raw(attacker(self.server.imap_port))
        r.line()
        r.send(f"a LOGIN {{{size}}}\r\n")  # synchronizing: refused before "+"
        self.assertTrue(r.line().startswith("a NO [TOOBIG]"))
        r.send("b LOGIN {9000}\r\n")  # just over imap.max_preauth_literal (8 KiB)
        self.assertTrue(r.line().startswith("b NO [TOOBIG]"))
        r.send("c LOGIN {5}\r\n")  # small ones still work
        self.assertTrue(r.line().startswith("+"))
        r.close()

    def test_preauth_literal_flood_holds_no_memory(self):
        conns = 10
        per_conn = 50_000_000 if FULL else 5_000_000
        pid = self.server.proc.pid
        before = rss_mb(pid)
        chunk = b"x" * 65536
        socks = []
        closed = 0
        with Probes(self.server) as probes:
            for i in range(conns):
                r = Raw(attacker(self.server.imap_port, 2 + i % 8))
                r.line()
                r.send(f"a LOGIN {{{per_conn}+}}\r\n")
                sent = 0
                try:
                    while sent < per_conn - len(chunk):
                        r.sock.sendall(chunk)
                        sent += len(chunk)
                except OSError:
                    closed += 1  # the server gave up on us: good
                socks.append(r)
            peak = rss_mb(pid)
        for r in socks:
            if r.closed(5):
                closed += 0
            r.close()
        probes.check(self)
        # The old reader buffered every byte (~48 MB per connection).
        self.assertLess(peak - before, 40, f"RSS {before:.0f} -> {peak:.0f} MB")

    def test_imap_literals_count_against_the_address_budget(self):
        # Authenticated APPENDs announce 3 MiB each from one address whose
        # budget is 8 MiB: the third is refused at once, before "+".
        held = []
        for i in range(2):
            r = imap_login(self.server.imap_port, ALICE, n=20)
            r.send(f"a APPEND INBOX {{{3 * MIB}}}\r\n")
            self.assertTrue(r.line().startswith("+"))
            r.send(b"y" * MIB)  # part of it, and then nothing
            held.append(r)
        r = imap_login(self.server.imap_port, ALICE, n=20)
        start = time.monotonic()
        r.send(f"a APPEND INBOX {{{3 * MIB}}}\r\n")
        line = r.line()
        self.assertTrue(line.startswith("* BYE [UNAVAILABLE]"), line)
        self.assertLess(time.monotonic() - start, 2)
        # Another address is not affected.
        other = imap_login(self.server.imap_port, ALICE, n=21)
        other.send(f"a APPEND INBOX {{{3 * MIB}}}\r\n")
        self.assertTrue(other.line().startswith("+"))
        for c in held + [r, other]:
            c.close()

    def test_smtp_data_counts_against_the_address_budget(self):
        def open_data(n):
            r = Raw(attacker(self.server.smtp_port, n))
            r.line()
            r.send("EHLO a.example\r\nMAIL FROM:<x@example.org>\r\n"
                   f"RCPT TO:<{ALICE}>\r\nDATA\r\n")
            for _ in range(4):
                r.reply()
            return r
        first = open_data(30)
        first.send(b"Subject: big\r\n\r\n" + (b"z" * 78 + b"\r\n") * (5 * MIB // 80))
        time.sleep(0.5)
        second = open_data(30)
        start = time.monotonic()
        try:
            second.send((b"z" * 78 + b"\r\n") * (5 * MIB // 80))
        except OSError:
            pass
        line = second.reply()
        self.assertTrue(line.startswith("421 4.3.2"), line)
        self.assertLess(time.monotonic() - start, 5)
        first.close()
        second.close()

    # ---- item 5: SEARCH ---------------------------------------------------

    def test_search_strings_are_capped(self):
        r = imap_login(self.server.imap_port, ALICE)
        r.send("s SELECT INBOX\r\n")
        r.until_tagged("s")
        needle = "q" * 2000
        r.send(f"t SEARCH BODY {{{len(needle)}}}\r\n")
        self.assertTrue(r.line().startswith("+"))
        r.send(needle + "\r\n")
        self.assertTrue(r.until_tagged("t")[-1].startswith("t NO [LIMIT]"))
        r.send(f'u SEARCH HEADER Subject "{"q" * 1000}"\r\n')
        self.assertTrue(r.until_tagged("u")[-1].startswith("u OK"))
        r.close()

    def test_heavy_searches_do_not_stall_others(self):
        # Four users' worth of heavy searches (the issue used 20 KB needles;
        # the cap refuses those at once, so these use the largest allowed).
        needle = "lorem ipsum dolor sit amet " * 37  # ~1000 bytes, never matches as a whole
        needle = needle[:1000] + "!"
        searchers = []
        for i in range(4):
            r = imap_login(self.server.imap_port, ALICE, n=40 + i)
            r.send("s SELECT INBOX\r\n")
            r.until_tagged("s")
            searchers.append(r)
        with Probes(self.server) as probes:
            for i, r in enumerate(searchers):
                r.send(f'x{i} SEARCH TEXT "{needle}" HEADER X-None "{needle}"\r\n')
            results = [r.until_tagged(f"x{i}")[-1] for i, r in enumerate(searchers)]
        probes.check(self)
        # One scan per account at once (imap.max_searches_per_account = 1):
        # the others were refused with a defined reply, or ran after it.
        for line in results:
            self.assertTrue(" OK " in line or "NO [LIMIT]" in line, line)
        for r in searchers:
            r.close()
        # And the 20 KB needles of the issue are refused before any work.
        r = imap_login(self.server.imap_port, ALICE, n=44)
        r.send("s SELECT INBOX\r\n")
        r.until_tagged("s")
        big = "q" * 20000
        r.send(f"b SEARCH BODY {{{len(big)}}}\r\n")
        self.assertTrue(r.line().startswith("+"))
        r.send(big + "\r\n")
        self.assertTrue(r.until_tagged("b")[-1].startswith("b NO [LIMIT]"))
        r.close()

    # ---- item 11: password checks ----------------------------------------

    def test_password_flood_fails_fast_and_spares_others(self):
        n = 600 if FULL else 40
        outcomes = []
        lock = threading.Lock()

        def bad_login(i):
            try:
                r = Raw(attacker(self.server.imap_port, 50 + i % 200, timeout=60))
                r.line()
                r.send(f"l LOGIN carol{i}@{DOMAIN} wrong\r\n")
                line = r.until_tagged("l")[-1]
                r.close()
            except Exception as e:  # noqa: BLE001
                line = repr(e)
            with lock:
                outcomes.append(line)

        with Probes(self.server) as probes:
            threads = [threading.Thread(target=bad_login, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            # An SMTP RCPT (store lookup on the blocking pool) meanwhile.
            start = time.monotonic()
            with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
                s.ehlo("probe.example")
                s.mail("probe@example.org")
                code, _ = s.rcpt(BOB)
            rcpt = time.monotonic() - start
            for t in threads:
                t.join(120)
        probes.check(self)
        self.assertEqual(code, 250)
        self.assertLess(rcpt, PROBE_LIMIT)
        self.assertEqual(len(outcomes), n)
        busy = [o for o in outcomes if "NO [UNAVAILABLE]" in o]
        failed = [o for o in outcomes if "AUTHENTICATIONFAILED" in o]
        self.assertGreater(len(busy), 0, "the bounded queue never refused")
        self.assertEqual(len(busy) + len(failed), n, outcomes[:5])

    # ---- item 8: keywords and sessions per account ----------------------

    def test_keyword_limits(self):
        r = imap_login(self.server.imap_port, CAROL)
        msg = b"Subject: k\r\n\r\nk\r\n"
        r.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertTrue(r.until_tagged("a")[-1].startswith("a OK"))
        r.send("s SELECT INBOX\r\n")
        r.until_tagged("s")
        long_kw = "k" * 257  # imap.max_keyword_length = 256
        r.send(f"t STORE 1 +FLAGS ({long_kw})\r\n")
        self.assertTrue(r.until_tagged("t")[-1].startswith("t NO [LIMIT]"))
        r.send(f"u STORE 1 +FLAGS ({'k' * 256})\r\n")
        self.assertTrue(r.until_tagged("u")[-1].startswith("u OK"))
        # imap.max_keywords_per_message = 64: 63 more fit, the 65th does not.
        more = " ".join(f"w{i}" for i in range(63))
        r.send(f"v STORE 1 +FLAGS ({more})\r\n")
        self.assertTrue(r.until_tagged("v")[-1].startswith("v OK"))
        r.send("w STORE 1 +FLAGS (overflow)\r\n")
        self.assertTrue(r.until_tagged("w")[-1].startswith("w NO [LIMIT]"))
        big = "Subject: k\r\n\r\nk\r\n"
        r.send(f"x APPEND INBOX ({long_kw}) {{{len(big)}+}}\r\n{big}\r\n")
        self.assertTrue(r.until_tagged("x")[-1].startswith("x NO [LIMIT]"))
        r.close()

    def test_sessions_per_account_are_capped(self):
        held = [imap_login(self.server.imap_port, CAROL, n=70) for _ in range(11)]
        held.append(imap_login(self.server.imap_port, CAROL, n=71))  # the 12th: still fine
        r = Raw(attacker(self.server.imap_port, 72))
        r.line()
        r.send(f"l LOGIN {CAROL} {PASSWORD}\r\n")
        line = r.until_tagged("l")[-1]
        self.assertTrue(line.startswith("l NO [UNAVAILABLE]"), line)
        held.pop().close()
        r.close()
        time.sleep(0.5)
        again = imap_login(self.server.imap_port, CAROL, n=73)  # a place was freed
        for c in held + [again]:
            c.close()

    # ---- design lesson (d): the event-loop lag metric ---------------------

    def test_loop_lag_metric(self):
        time.sleep(0.3)
        m = metrics_client.scrape(self.metrics_port)
        count = m.get("hato_event_loop_lag_seconds_count")
        self.assertIsNotNone(count, sorted(k for k in m if "loop" in k))
        self.assertGreater(count, 0)
        self.assertIn("hato_event_loop_blocked_total", m)
        self.assertIn("hato_memory_budget_used_bytes", m)
        self.assertIn("hato_password_checks_refused_total", m)

    # ---- item 15: TLS handshakes -------------------------------------------

    def test_tls_handshake_times_out(self):
        for port in (self.server.imaps_port, self.server.submissions_port):
            r = Raw(attacker(port, 60))
            start = time.monotonic()
            self.assertTrue(r.closed(10), f"port {port} still open after 10 s")
            self.assertLess(time.monotonic() - start, 8)
            r.close()
        # STARTTLS, then silence.
        r = Raw(attacker(self.server.imap_port, 61))
        r.line()
        r.send("t STARTTLS\r\n")
        self.assertTrue(r.line().startswith("t OK"))
        start = time.monotonic()
        self.assertTrue(r.closed(10))
        self.assertLess(time.monotonic() - start, 8)
        r.close()


class SearchScanTest(unittest.TestCase):
    """Item 5 remainder: a user-driven scan stops at imap.search_timeout_seconds,
    and is cancelled when its client disconnects (so its per-account slot, and
    its pool thread, are free again at once). The scan is made slow by a test
    hook (HATO_TEST_SCAN_DELAY_MS: each message of a scan takes that much
    longer), so the timings do not depend on the machine."""

    DELAY_MS = 20
    MESSAGES = 200  # a whole scan takes >= 4 s

    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=("alice",))
        cls.server.set_config("imap", "max_searches_per_account", "1")
        cls.server.set_config("imap", "search_timeout_seconds", "1")
        cls.server.start(env={"HATO_TEST_SCAN_DELAY_MS": str(cls.DELAY_MS)})
        r = Raw(socket.create_connection(("127.0.0.1", cls.server.imap_port), timeout=60))
        r.line()
        r.send(f"l LOGIN {ALICE} {PASSWORD}\r\n")
        r.until_tagged("l")
        for i in range(cls.MESSAGES):
            msg = b"Subject: m%d\r\nFrom: x@example.org\r\n\r\nbody\r\n" % i
            r.send(b"a%d APPEND INBOX {%d+}\r\n" % (i, len(msg)) + msg + b"\r\n")
        for i in range(cls.MESSAGES):
            r.until_tagged(f"a{i}")
        r.close()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def reload(self, timeout):
        """Sets imap.search_timeout_seconds by SIGHUP (for sessions that start after)."""
        before = self.server.logs().count("reload: configuration")
        self.server.set_config("imap", "search_timeout_seconds", str(timeout))
        self.server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.server.logs().count("reload: configuration") > before,
                 what="the reload")

    def selected(self, n):
        r = imap_login(self.server.imap_port, ALICE, n=n)
        r.send("s SELECT INBOX\r\n")
        r.until_tagged("s")
        return r

    def test_a_scan_stops_at_its_deadline(self):
        r = self.selected(80)
        start = time.monotonic()
        r.send('x SEARCH HEADER X-None "zzz"\r\n')
        line = r.until_tagged("x")[-1]
        took = time.monotonic() - start
        self.assertTrue(line.startswith("x NO [LIMIT]") and "too long" in line, line)
        self.assertLess(took, 3.0)  # the whole scan would take >= 4 s
        r.close()

    def test_a_scan_is_cancelled_when_its_client_goes_away(self):
        self.reload(60)  # the deadline must not be what ends the scan here
        try:
            gone = self.selected(81)
            other = self.selected(82)  # the same account, ready before the first disconnects
            gone.send('x SEARCH HEADER X-None "zzz"\r\n')
            time.sleep(0.3)  # the scan is running and holds the account's one slot
            gone.close()
            # The scan notices within 32 messages (kScanProbe, 0.64 s here) and
            # frees the slot; without the cancellation it would hold it for 4 s.
            time.sleep(1.5)
            other.send('y SEARCH HEADER X-None "zzz"\r\n')
            line = other.until_tagged("y")[-1]
            self.assertTrue(line.startswith("y OK"), line)
            other.close()
            wait_for(lambda: "cancelled: the client went away" in self.server.logs(),
                     what="the cancellation in the log")
        finally:
            self.reload(1)

    def test_a_scan_waits_its_turn_then_is_told_to_try_later(self):
        # Three sessions of one account scan at once. The account runs one
        # scan at a time (max_searches_per_account = 1); the others wait for
        # the slot up to 3 s (kSearchSlotWait) instead of being refused at
        # once. Each scan stops at its 2 s deadline: the first holds the slot
        # until 2 s, the next one from 2 s to 4 s, and the third gives up
        # waiting at 3 s with the "try later" reply.
        self.reload(2)
        try:
            rs = [self.selected(90 + i) for i in range(3)]
            start = time.monotonic()
            for i, r in enumerate(rs):
                r.send(f'x{i} SEARCH HEADER X-None "zzz"\r\n')
            lines = [r.until_tagged(f"x{i}")[-1] for i, r in enumerate(rs)]
            took = time.monotonic() - start
            too_long = [x for x in lines if "NO [LIMIT]" in x and "too long" in x]
            try_later = [x for x in lines if "NO [LIMIT]" in x and "try again later" in x]
            self.assertEqual((len(too_long), len(try_later)), (2, 1), lines)
            self.assertLess(took, 8.0)
            for r in rs:
                r.close()
        finally:
            self.reload(1)


if __name__ == "__main__":
    unittest.main()
