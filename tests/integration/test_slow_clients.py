"""Slow clients and per-session memory (issue 4). A client sending one byte
every second cannot hold a session for ever: an SMTP DATA must be complete
within smtp.data_timeout_seconds (421 4.4.2), an IMAP command with its
literals within imap.command_timeout_seconds (* BYE), a POP3 or SMTP command
line within the idle timeout. A client that stops reading its output is cut
off after the idle timeout (io::Connection write timeout). A line far longer
than its limit is discarded as it arrives (500 5.5.2): the session's memory
does not grow with it."""
import socket
import smtplib
import threading
import time
import unittest

import metrics_client
from harness import DOMAIN, PASSWORD, LineClient, Server, free_port

ALICE = f"alice@{DOMAIN}"


def trickle(client, data, every=1.0, limit=30):
    """Sends `data` a byte at a time; returns seconds until the server closed or replied."""
    start = time.time()
    client.sock.settimeout(every)
    for b in data:
        try:
            client.sock.sendall(bytes([b]))
        except OSError:
            return time.time() - start
        try:
            got = client.sock.recv(4096)
            client.buf += got
            return time.time() - start  # a reply (or EOF) before the data was complete
        except socket.timeout:
            pass
        if time.time() - start > limit:
            break
    return time.time() - start


class SlowClientTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",))
        self.metrics_port = free_port()
        metrics_client.enable(self.server, self.metrics_port)
        self.server.set_config("smtp", "idle_timeout_seconds", 2)
        self.server.set_config("smtp", "data_timeout_seconds", 4)
        self.server.set_config("pop3", "idle_timeout_seconds", 3)
        self.server.set_config("imap", "command_timeout_seconds", 4)
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def test_smtp_data_trickle_is_cut_off(self):
        c = LineClient(self.server.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        c.send(f"EHLO slow.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(4)], [250, 250, 250, 354])
        took = trickle(c, b"Subject: slow\r\n\r\n" + b"x" * 100)  # one byte per second
        self.assertLess(took, 8)
        self.assertEqual(c.reply()[0], 421)
        self.assertTrue(c.closed())
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("x@remote.test", [ALICE], b"Subject: fast\r\n\r\nx\r\n")

    def test_smtp_command_line_trickle_is_cut_off(self):
        c = LineClient(self.server.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        took = trickle(c, b"EHLO " + b"a" * 100)
        self.assertLess(took, 5)
        self.assertEqual(c.reply()[0], 421)

    def test_pop3_line_trickle_is_cut_off(self):
        c = LineClient(self.server.pop3_port)
        self.assertTrue(c.line().startswith("+OK"))
        took = trickle(c, f"USER {ALICE}".encode() * 5)
        self.assertLess(took, 6)
        self.assertTrue(c.closed())

    def test_imap_literal_trickle_is_cut_off(self):
        c = LineClient(self.server.imap_port)
        self.assertTrue(c.line().startswith("* OK"))
        c.send(f'a LOGIN {ALICE} "{PASSWORD}"\r\n')
        self.assertTrue(c.line().startswith("a OK"))
        c.send("b APPEND INBOX {200}\r\n")
        self.assertTrue(c.line().startswith("+"))
        took = trickle(c, b"Subject: slow\r\n\r\n" + b"x" * 183)
        self.assertLess(took, 8)
        self.assertTrue(c.line().startswith("* BYE"))
        self.assertTrue(c.closed())

    def test_client_that_does_not_read_is_cut_off(self):
        body = ("x" * 998 + "\r\n") * 4000  # 4 MB: more than the socket buffers hold
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
            s.sendmail("x@remote.test", [ALICE], ("Subject: big\r\n\r\n" + body).encode())
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", self.server.pop3_port))
        sock.sendall(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nRETR 1\r\n".encode())
        deadline = time.time() + 15
        time.sleep(1)
        self.assertEqual(metrics_client.scrape(self.metrics_port)['hato_sessions{protocol="pop3"}'], 1)
        while True:  # pop3 idle timeout 3 s: the blocked write gives up
            m = metrics_client.scrape(self.metrics_port)
            if m['hato_sessions{protocol="pop3"}'] == 0:
                break
            self.assertLess(time.time(), deadline, "a client that does not read held its session")
            time.sleep(0.3)
        sock.close()

    def test_huge_line_does_not_grow_memory(self):
        before = metrics_client.scrape(self.metrics_port)["hato_resident_memory_bytes"]
        c = LineClient(self.server.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        chunk = b"a" * (1 << 20)
        for _ in range(32):  # 32 MiB without a line end
            c.send(chunk)
        c.send(b"\r\nNOOP\r\n")
        self.assertEqual(c.reply()[0], 500)
        self.assertEqual(c.reply()[0], 250)  # the session goes on
        after = metrics_client.scrape(self.metrics_port)["hato_resident_memory_bytes"]
        self.assertLess(after - before, 8 << 20)


class IdleAutologoutTest(unittest.TestCase):
    """An IMAP session in IDLE (plaintext: the lean wait of io::Connection::
    WaitIdle, its view asleep after kViewSleepAfter) is still logged out at
    imap.idle_timeout_seconds (60, the smallest allowed), with
    `* BYE Autologout`, and a change in the mailbox still wakes it before."""

    def setUp(self):
        self.server = Server(users=("alice",))
        self.server.set_config("imap", "idle_timeout_seconds", 60)
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def test_idle_session_is_logged_out_at_the_idle_timeout(self):
        c = LineClient(self.server.imap_port, timeout=90)
        c.line()
        c.send(f"l LOGIN {ALICE} {PASSWORD}\r\ns SELECT INBOX\r\ni IDLE\r\n")
        while not c.line().startswith("+"):
            pass
        start = time.time()
        time.sleep(3)  # the view is asleep now
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("x@remote.test", [ALICE], b"Subject: wake\r\n\r\nhello\r\n")
        self.assertRegex(c.line(), r"^\* 1 EXISTS")
        while True:
            line = c.line()
            if line.startswith("* BYE"):
                break
        took = time.time() - start
        self.assertIn("Autologout", line)
        self.assertGreater(took, 55)
        self.assertLess(took, 80)


if __name__ == "__main__":
    unittest.main()
