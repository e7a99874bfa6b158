"""Several event loops (issue 11, design lesson (c); server/event_loops.h).

`hato serve --event-loops 2`: connections of every protocol are handed
round-robin to two session loops, so that a client whose work blocks its
loop holds up only the sessions of that loop. The blocking is simulated by a
test hook (HATO_TEST_STALL_LOOP=1: IMAP `ID ("x-hato-stall-ms" "N")` sleeps
on the session's loop), standing for a bug or a runaway computation.
With one loop (the old design) the same stall holds every session: the last
test shows it, so the first ones are known to test something.
"""
import smtplib
import socket
import threading
import time
import unittest

import metrics_client
from harness import DOMAIN, PASSWORD, Server, free_port, wait_for

ALICE = f"alice@{DOMAIN}"
STALL_MS = 3000


class Line:
    def __init__(self, port, timeout=20):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def until_tagged(self, tag):
        lines = []
        while True:
            lines.append(self.line())
            if lines[-1].startswith(tag + " "):
                return lines

    def close(self):
        self.sock.close()


def start_server(loops):
    server = Server(users=("alice",))
    server.event_loops = loops
    port = free_port()
    metrics_client.enable(server, port)
    server.start(env={"HATO_TEST_STALL_LOOP": "1"})
    return server, port


def stall_and_probe(server):
    """Opens two IMAP connections one after the other (so they land on
    consecutive loops), blocks the first one's loop for STALL_MS and returns
    how long a NOOP on the second took meanwhile."""
    a = Line(server.imap_port)
    a.line()
    b = Line(server.imap_port)
    b.line()
    try:
        a.send(f's ID ("x-hato-stall-ms" "{STALL_MS}")\r\n')
        time.sleep(0.3)  # the stall has begun
        start = time.monotonic()
        b.send("n NOOP\r\n")
        b.until_tagged("n")
        took = time.monotonic() - start
        stalled_start = time.monotonic()
        a.until_tagged("s")
        return took, time.monotonic() - stalled_start
    finally:
        a.close()
        b.close()


class TwoLoopsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.metrics_port = start_server(2)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_sessions_land_on_both_loops(self):
        conns = []
        for _ in range(4):
            c = Line(self.server.imap_port)
            c.line()
            conns.append(c)
        s = smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10)
        m = metrics_client.scrape(self.metrics_port)
        s.quit()
        for c in conns:
            c.close()
        self.assertEqual(m.get("hato_event_loops"), 2)
        for loop in ("0", "1"):
            self.assertGreaterEqual(m.get(f'hato_event_loop_sessions{{loop="{loop}"}}', 0), 2,
                                    {k: v for k, v in m.items() if "event_loop" in k})
            self.assertGreater(m.get(f'hato_event_loop_sessions_total{{loop="{loop}"}}', 0), 0)

    def test_a_blocked_loop_does_not_stall_the_other(self):
        took, stalled = stall_and_probe(self.server)
        self.assertLess(took, 1.0, "the other loop's session waited for the blocked loop")
        self.assertGreater(stalled, 1.5)  # the hook did block its own loop
        # New connections are still accepted (on the control loop) and the
        # ones handed to the free loop are served at once.
        banners = []

        def banner():
            start = time.monotonic()
            with socket.create_connection(("127.0.0.1", self.server.smtp_port), timeout=10) as s:
                s.recv(512)
            banners.append(time.monotonic() - start)

        a = Line(self.server.imap_port)
        a.line()
        a.send(f's ID ("x-hato-stall-ms" "{STALL_MS}")\r\n')
        time.sleep(0.3)
        threads = [threading.Thread(target=banner) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        a.until_tagged("s")
        a.close()
        self.assertGreaterEqual(sum(1 for t in banners if t < 1.0), 2, banners)
        # The per-loop watchdog saw it (lesson d, now per loop).
        wait_for(lambda: "event loop" in self.server.logs() and "blocked" in self.server.logs(),
                 what="the watchdog line")
        m = metrics_client.scrape(self.metrics_port)
        self.assertGreaterEqual(m.get("hato_event_loop_blocked_total", 0), 1)

    def test_changes_reach_sessions_on_other_loops(self):
        # An IDLE session on one loop hears of mail delivered by an SMTP
        # session on another (the IMAP hub posts to each session's own loop).
        idlers = []
        for i in range(2):
            c = Line(self.server.imap_port)
            c.line()
            c.send(f"l LOGIN {ALICE} {PASSWORD}\r\n")
            c.until_tagged("l")
            c.send("s SELECT INBOX\r\n")
            c.until_tagged("s")
            c.send("i IDLE\r\n")
            self.assertTrue(c.line().startswith("+"))
            idlers.append(c)
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("x@example.org", [ALICE], "Subject: loops\r\n\r\nhello\r\n")
        for c in idlers:
            c.sock.settimeout(10)
            line = c.line()
            self.assertRegex(line, r"^\* \d+ EXISTS")
            c.send("DONE\r\n")
            c.until_tagged("i")
            c.close()


class OneLoopTest(unittest.TestCase):
    """The control experiment: with one loop, the stall holds every session."""

    def test_one_blocked_loop_stalls_everyone(self):
        server, _ = start_server(1)
        try:
            took, _ = stall_and_probe(server)
            self.assertGreater(took, 1.5)
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
