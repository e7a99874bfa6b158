"""SMTP inbound against a live `hato serve`: RFC 5321 behaviour, limits, smuggling, TLS."""
import os
import poplib
import smtplib
import ssl
import subprocess
import shutil
import time
import unittest

import pg_cluster

from harness import DOMAIN, PASSWORD, LineClient, Server, run_cli

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


def pop3_messages(server, user=ALICE):
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
    p.user(user)
    p.pass_(PASSWORD)
    count, _ = p.stat()
    msgs = [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n" for i in range(count)]
    p.quit()
    return msgs


def body_of(stored):
    """Strips the Return-Path and Received headers Hato prepends."""
    assert stored.startswith(b"Return-Path: <"), stored[:80]
    rest = stored.split(b"\r\n", 1)[1]
    assert rest.startswith(b"Received: "), rest[:80]
    # The Received header is folded over three lines (continuations start with a tab).
    lines = rest.split(b"\r\n")
    i = 1
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


class SmtpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=("alice", "bob", "carol", "dave"))
        cls.server.set_config("smtp", "max_message_size", 200000)
        cls.server.set_config("smtp", "max_errors", 8)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10)

    def test_ehlo_advertises_extensions(self):
        with self.smtp() as s:
            code, _ = s.ehlo("client.test")
            self.assertEqual(code, 250)
            for ext in ("pipelining", "8bitmime", "size", "enhancedstatuscodes", "smtputf8",
                        "chunking", "starttls"):
                self.assertTrue(s.has_extn(ext), ext)
            self.assertEqual(s.esmtp_features["size"], "200000")

    def test_delivery_round_trip_is_byte_identical(self):
        msg = (b"From: sender@remote.test\r\nTo: carol@example.test\r\nSubject: round trip\r\n"
               b"Message-ID: <rt-1@remote.test>\r\n\r\n" +
               b"".join(b"line %d with .dots and \xe2\x9c\x93 utf8\r\n" % i for i in range(300)) +
               b".starts with a dot\r\n")
        with self.smtp() as s:
            s.sendmail("sender@remote.test", [f"carol@{DOMAIN}"], msg,
                       mail_options=["BODY=8BITMIME"])
        stored = pop3_messages(self.server, f"carol@{DOMAIN}")
        self.assertEqual(len(stored), 1)
        self.assertEqual(body_of(stored[0]), msg)
        self.assertTrue(stored[0].startswith(b"Return-Path: <sender@remote.test>\r\n"))

    def test_unknown_user_and_relay_are_refused(self):
        with self.smtp() as s:
            s.ehlo()
            s.mail("x@remote.test")
            code, text = s.rcpt(f"nobody@{DOMAIN}")
            self.assertEqual(code, 550)
            self.assertIn(b"5.1.1", text)
            code, text = s.rcpt("someone@elsewhere.test")
            self.assertEqual(code, 554)
            self.assertIn(b"5.7.1", text)
            code, _ = s.rcpt(ALICE)
            self.assertEqual(code, 250)

    def test_sequence_errors(self):
        with self.smtp() as s:
            code, _ = s.docmd("MAIL FROM:<a@b.test>")
            self.assertEqual(code, 503)  # no EHLO yet
            s.ehlo()
            code, _ = s.docmd("RCPT TO:<alice@example.test>")
            self.assertEqual(code, 503)
            code, _ = s.docmd("DATA")
            self.assertEqual(code, 503)
            code, _ = s.docmd("MAIL FROM:<a@b.test> XYZZY=1")
            self.assertEqual(code, 555)
            code, _ = s.docmd("NOSUCH")
            self.assertEqual(code, 500)

    def test_size_limits(self):
        with self.smtp() as s:
            s.ehlo()
            code, text = s.docmd("MAIL FROM:<a@b.test> SIZE=999999999")
            self.assertEqual(code, 552)
            self.assertIn(b"5.3.4", text)
            # Without SIZE= the limit is enforced while DATA is read.
            self.assertEqual(s.mail("a@b.test")[0], 250)
            self.assertEqual(s.rcpt(ALICE)[0], 250)
            code, text = s.data(b"Subject: big\r\n\r\n" + b"x" * 300000)
            self.assertEqual(code, 552)
            self.assertIn(b"5.3.4", text)
            # The session is still usable after the refusal.
            s.sendmail("a@b.test", [f"dave@{DOMAIN}"], b"Subject: small\r\n\r\nok\r\n")
        self.assertEqual(len(pop3_messages(self.server, f"dave@{DOMAIN}")), 1)

    def test_too_many_recipients(self):
        with self.smtp() as s:
            s.ehlo()
            s.mail("a@b.test")
            for _ in range(100):  # max_recipients defaults to 100
                self.assertEqual(s.rcpt(ALICE)[0], 250)
            code, text = s.rcpt(BOB)
            self.assertEqual(code, 452)
            self.assertIn(b"4.5.3", text)
            code, _ = s.data(b"Subject: hundred\r\n\r\nonce\r\n")
            self.assertEqual(code, 250)
        # Duplicate recipients get one copy.
        copies = [m for m in pop3_messages(self.server) if b"Subject: hundred" in m]
        self.assertEqual(len(copies), 1)

    def test_many_recipients_stored_once(self):
        msg = b"Subject: to both\r\n\r\nshared body\r\n"
        before = verify_count(self.server)
        with self.smtp() as s:
            s.sendmail("a@b.test", [ALICE, BOB], msg)
        if pg_cluster.store_is_sharded():
            # One body per shard that holds a recipient (each cluster has its own).
            self.assertIn(verify_count(self.server), (before + 1, before + 2))
        else:
            self.assertEqual(verify_count(self.server), before + 1)
        self.assertTrue(any(body_of(m) == msg for m in pop3_messages(self.server, ALICE)))
        self.assertTrue(any(body_of(m) == msg for m in pop3_messages(self.server, BOB)))

    def test_smuggling_bare_lf_dot_does_not_end_data(self):
        c = LineClient(self.server.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        c.send("EHLO x.test\r\n")
        self.assertEqual(c.reply()[0], 250)
        c.send(f"MAIL FROM:<a@b.test>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 354)
        # <LF>.<LF> and <CR>.<CR> followed by a smuggled transaction.
        c.send("Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@b.test>\r\n"
               f"RCPT TO:<{BOB}>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r.\r"
               "still content\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250)
        c.send("QUIT\r\n")
        self.assertEqual(c.reply()[0], 221)
        msgs = [m for m in pop3_messages(self.server, ALICE) if b"Subject: smuggle\r\n" in m]
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"MAIL FROM:<evil@b.test>", msgs[0])  # kept as content
        self.assertFalse(any(b"Subject: smuggled" in m and b"Return-Path: <evil" in m
                             for m in pop3_messages(self.server, BOB)))

    def test_bdat_chunking(self):
        c = LineClient(self.server.smtp_port)
        c.reply()
        c.send("EHLO x.test\r\n")
        c.reply()
        part1 = b"Subject: chunked\r\n\r\nfirst "
        part2 = b"second\r\n"
        c.send(f"MAIL FROM:<a@b.test>\r\nRCPT TO:<{ALICE}>\r\n".encode() +
               b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2)
        self.assertEqual([c.reply()[0] for _ in range(4)], [250, 250, 250, 250])
        c.send("QUIT\r\n")
        c.reply()
        self.assertTrue(any(body_of(m) == part1 + part2 for m in pop3_messages(self.server)))

    def test_long_line_and_error_limit(self):
        c = LineClient(self.server.smtp_port)
        c.reply()
        c.send("EHLO " + "x" * 5000 + "\r\n")
        code, text = c.reply()
        self.assertEqual(code, 500)
        self.assertIn("5.5.2", text[0])
        for _ in range(7):  # errors 2..8
            c.send("BOGUS\r\n")
            self.assertEqual(c.reply()[0], 500)
        code, text = c.reply()  # max_errors = 8 reached: 421 follows the 500, then close
        self.assertEqual(code, 421)
        self.assertIn("4.7.0", text[0])
        self.assertTrue(c.closed())

    def test_starttls_then_delivery_and_injection_discarded(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with self.smtp() as s:
            s.starttls(context=ctx)
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("a@b.test", [ALICE], b"Subject: over tls\r\n\r\nsecret\r\n")
        stored = [m for m in pop3_messages(self.server) if b"Subject: over tls" in m]
        self.assertEqual(len(stored), 1)
        self.assertIn(b"with ESMTPS", stored[0])
        # Plaintext pipelined behind STARTTLS must not be executed inside TLS.
        c = LineClient(self.server.smtp_port)
        c.reply()
        c.send("EHLO x.test\r\n")
        c.reply()
        c.send("STARTTLS\r\nNOOP\r\n")
        self.assertEqual(c.reply()[0], 220)
        tls = ctx.wrap_socket(c.sock, server_hostname="mail.example.test")
        tls.sendall(b"EHLO y.test\r\n")
        first = tls.recv(4096).decode()
        self.assertTrue(first.startswith("250"), first)  # the EHLO reply, not NOOP's
        self.assertIn("ENHANCEDSTATUSCODES", first)
        tls.close()

    def test_swaks_delivers(self):
        swaks = shutil.which("swaks")
        self.assertIsNotNone(swaks, "swaks is installed by scripts/install-deps.sh")
        r = subprocess.run([swaks, "--server", f"127.0.0.1:{self.server.smtp_port}", "--to", BOB,
                            "--from", "swaks@remote.test", "--header", "Subject: via swaks",
                            "--body", "hello from swaks"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(any(b"Subject: via swaks" in m and b"hello from swaks" in m
                            for m in pop3_messages(self.server, BOB)))


def verify_count(server):
    r = run_cli("verify", data=server.data)
    return int(r.stdout.strip().split("\n")[-1].split()[0])


class SmtpTimeoutTest(unittest.TestCase):
    def test_idle_timeout_gets_421(self):
        server = Server()
        server.set_config("smtp", "idle_timeout_seconds", 1)
        with server:
            c = LineClient(server.smtp_port)
            c.reply()
            start = time.time()
            code, text = c.reply()
            self.assertEqual(code, 421)
            self.assertIn("4.4.2", text[0])
            self.assertLess(time.time() - start, 5)
            self.assertTrue(c.closed())


if __name__ == "__main__":
    unittest.main()
