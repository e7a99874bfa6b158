"""POP3 against a live `hato serve` (RFC 1939, 2449, 2595, 5034, 3206)."""
import base64
import os
import poplib
import smtplib
import socket
import ssl
import time
import unittest

from harness import DOMAIN, PASSWORD, LineClient, Server, run_cli

ALICE = f"alice@{DOMAIN}"


def send(server, to, subject, body="hello\r\n"):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
        s.sendmail("sender@remote.test", [to], f"Subject: {subject}\r\n\r\n{body}".encode())


def login(server, user=ALICE, password=PASSWORD):
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=15)
    p.user(user)
    p.pass_(password)
    return p


class Pop3Test(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob"))
        self.server.set_config("auth", "penalty_base_ms", 200)
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def test_capa_advertises_extensions(self):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        caps = p.capa()
        for c in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "STLS", "SASL"):
            self.assertIn(c, caps)
        self.assertIn("PLAIN", caps["SASL"])
        p.quit()

    def test_stat_list_retr_top(self):
        send(self.server, ALICE, "one", "first line\r\nsecond line\r\n.dot line\r\n")
        send(self.server, ALICE, "two")
        p = login(self.server)
        count, size = p.stat()
        self.assertEqual(count, 2)
        listing = p.list()[1]
        self.assertEqual(len(listing), 2)
        self.assertEqual(sum(int(l.split()[1]) for l in listing), size)
        resp, lines, octets = p.retr(1)
        self.assertTrue(resp.startswith(b"+OK"))
        self.assertIn(b"Subject: one", lines)
        self.assertIn(b".dot line", lines)  # byte-stuffing undone by poplib
        self.assertEqual(octets, int(listing[0].split()[1]))  # LIST size = octets retrieved
        top = p.top(1, 1)[1]
        self.assertIn(b"Subject: one", top)
        self.assertIn(b"first line", top)
        self.assertNotIn(b"second line", top)
        p.quit()

    def test_uidl_stable_across_restart(self):
        send(self.server, ALICE, "a")
        send(self.server, ALICE, "b")
        p = login(self.server)
        before = p.uidl()[1]
        p.quit()
        self.server.stop()
        self.server.start()
        p = login(self.server)
        self.assertEqual(p.uidl()[1], before)
        self.assertEqual(len(set(u.split()[1] for u in before)), 2)
        p.quit()

    def test_dele_applies_only_at_quit_and_rset_undoes(self):
        for s in ("a", "b", "c"):
            send(self.server, ALICE, s)
        p = login(self.server)
        p.dele(1)
        with self.assertRaises(poplib.error_proto):
            p.retr(1)  # marked deleted
        self.assertEqual(p.stat()[0], 2)
        p.rset()
        self.assertEqual(p.stat()[0], 3)
        p.dele(1)
        p.sock.shutdown(socket.SHUT_RDWR)  # vanish without QUIT: nothing is deleted
        p.close()
        time.sleep(0.3)
        p = login(self.server)
        self.assertEqual(p.stat()[0], 3)
        p.dele(1)
        p.dele(2)
        self.assertIn(b"2 messages deleted", p.quit())
        p = login(self.server)
        self.assertEqual(p.stat()[0], 1)
        self.assertIn(b"Subject: c", p.retr(1)[1])
        p.quit()
        # Deleted mail stays in the retention area: its bodies are still stored.
        r = run_cli("verify", data=self.server.data)
        self.assertIn("3 bodies checked, 0 problems", r.stdout)

    def test_second_session_gets_in_use(self):
        p = login(self.server)
        q = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        q.user(ALICE)
        with self.assertRaises(poplib.error_proto) as cm:
            q.pass_(PASSWORD)
        self.assertIn(b"[IN-USE]", cm.exception.args[0])
        p.quit()
        q.close()
        p = login(self.server)  # the lock was released by QUIT
        p.quit()

    def test_bad_password_is_delayed_and_coded(self):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=30)
        p.user(ALICE)
        start = time.time()
        with self.assertRaises(poplib.error_proto) as cm:
            p.pass_("wrong")
        first = time.time() - start
        self.assertIn(b"[AUTH]", cm.exception.args[0])
        p.user(ALICE)
        start = time.time()
        with self.assertRaises(poplib.error_proto):
            p.pass_("wrong again")
        second = time.time() - start
        self.assertGreaterEqual(first, 0.18)
        self.assertGreater(second, first)  # the penalty grows
        p.user("nobody@example.test")
        with self.assertRaises(poplib.error_proto) as cm:
            p.pass_("x")
        self.assertIn(b"[AUTH]", cm.exception.args[0])  # same answer for unknown users
        p.close()

    def test_auth_plain_with_and_without_initial_response(self):
        token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        c = LineClient(self.server.pop3_port)
        c.line()
        c.send(f"AUTH PLAIN {token}\r\n")
        self.assertTrue(c.line().startswith("+OK"))
        c.send("QUIT\r\n")
        c.line()
        c = LineClient(self.server.pop3_port)
        c.line()
        c.send("AUTH PLAIN\r\n")
        self.assertTrue(c.line().startswith("+"))
        c.send(token + "\r\n")
        self.assertTrue(c.line().startswith("+OK"))
        c.send("QUIT\r\n")
        c.line()

    def test_stls_and_retr_over_tls(self):
        send(self.server, ALICE, "tls")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        p.stls(context=ctx)
        self.assertNotIn("STLS", p.capa())
        p.user(ALICE)
        p.pass_(PASSWORD)
        self.assertIn(b"Subject: tls", p.retr(1)[1])
        p.quit()

    def test_corrupt_message_is_reported_not_served(self):
        send(self.server, ALICE, "precious", "x" * 100 + "\r\n")
        self.server.stop()
        self.server.corrupt_last_body()
        self.server.start()
        p = login(self.server)
        with self.assertRaises(poplib.error_proto) as cm:
            p.retr(1)
        self.assertIn(b"[SYS/PERM]", cm.exception.args[0])
        p.quit()
        self.assertIn("integrity", self.server.logs())
        r = run_cli("verify", data=self.server.data, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("checksum mismatch", r.stdout)

    def test_plaintext_login_needs_tls_when_loopback_is_not_trusted(self):
        self.server.stop()
        self.server.set_config("auth", "allow_plaintext_on_loopback", "false")
        self.server.start()
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        self.assertNotIn("USER", p.capa())
        with self.assertRaises(poplib.error_proto) as cm:
            p.user(ALICE)
            p.pass_(PASSWORD)
        self.assertIn(b"TLS", cm.exception.args[0])
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        p.stls(context=ctx)
        p.user(ALICE)
        p.pass_(PASSWORD)
        p.quit()

    def test_wrong_state_and_unknown_commands(self):
        c = LineClient(self.server.pop3_port)
        c.line()
        c.send("STAT\r\n")
        self.assertTrue(c.line().startswith("-ERR"))
        c.send("XYZZY\r\n")
        self.assertTrue(c.line().startswith("-ERR"))
        c.send("QUIT\r\n")
        self.assertTrue(c.line().startswith("+OK"))


if __name__ == "__main__":
    unittest.main()
