"""SCRAM-SHA-256 (RFC 5802, RFC 7677) on submission, IMAP and POP3, end to end.

Two independent clients: GNU SASL's `gsasl` CLI (SMTP and IMAP; it has no
POP3 mode) and a small SCRAM client written here from RFC 5802 section 3,
which also drives the failure cases (wrong password, unknown account, an
account whose password predates the SCRAM verifier, malformed messages).
"""
import base64
import hashlib
import hmac
import os
import shutil
import sqlite3
import subprocess
import time
import unittest

from harness import DOMAIN, PASSWORD, LineClient, Server, run_cli

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
PENALTY_MS = 300


def b64(b):
    return base64.b64encode(b).decode()


class ScramClient:
    """The client side of RFC 5802 section 3 (SHA-256, no channel binding)."""

    def __init__(self, user, password, authzid="", flag="n"):
        self.user, self.password = user, password
        self.nonce = b64(os.urandom(18))
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.gs2 = flag + "," + (f"a={authzid}" if authzid else "") + ","
        self.bare = f"n={name},r={self.nonce}"
        self.server_signature = None

    def first(self):
        return (self.gs2 + self.bare).encode()

    def final(self, server_first, proof_override=None):
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        assert attrs["r"].startswith(self.nonce), server_first
        assert len(attrs["r"]) >= len(self.nonce) + 32, "server nonce of 24+ random bytes"
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c={b64(self.gs2.encode())},r={attrs['r']}"
        auth_message = f"{self.bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.server_signature = hmac.new(server_key, auth_message, "sha256").digest()
        return f"{without_proof},p={proof_override or b64(proof)}".encode()

    def check_server_final(self, server_final):
        assert server_final == f"v={b64(self.server_signature)}", server_final


def decode(line):
    return base64.b64decode(line).decode()


class Protocol:
    """Runs the exchange over one protocol's SASL framing with a LineClient."""

    def __init__(self, test, kind):
        self.test, self.kind = test, kind

    def connect(self):
        s = self.test.server
        if self.kind == "smtp":
            c = LineClient(s.submission_port)
            self.test.assertEqual(c.reply()[0], 220)
            c.send("EHLO client.test\r\n")
            self.test.assertEqual(c.reply()[0], 250)
        elif self.kind == "imap":
            c = LineClient(s.imap_port)
            self.test.assertTrue(c.line().startswith("* OK"))
        else:
            c = LineClient(s.pop3_port)
            self.test.assertTrue(c.line().startswith("+OK"))
        self.test.conns.append(c)
        return c

    def start(self, c, initial):
        """Sends AUTHENTICATE/AUTH with `initial` (bytes or None); returns the next line."""
        ir = "" if initial is None else " " + b64(initial)
        if self.kind == "smtp":
            c.send(f"AUTH SCRAM-SHA-256{ir}\r\n")
        elif self.kind == "imap":
            c.send(f"a1 AUTHENTICATE SCRAM-SHA-256{ir}\r\n")
        else:
            c.send(f"AUTH SCRAM-SHA-256{ir}\r\n")
        return c.line()

    def challenge(self, line):
        """The decoded challenge of a continuation line, or None for a final reply."""
        if self.kind == "smtp":
            return decode(line[4:]) if line.startswith("334 ") else None
        return decode(line[2:]) if line.startswith("+ ") else None

    def is_success(self, line):
        return {"smtp": line.startswith("235 "), "imap": line.startswith("a1 OK"),
                "pop3": line.startswith("+OK")}[self.kind]

    def login(self, user, password, initial_response=True, proof_override=None, authzid="",
              flag="n"):
        """Runs one exchange; returns (final line, connection)."""
        c = self.connect()
        client = ScramClient(user, password, authzid, flag)
        if initial_response:
            line = self.start(c, client.first())
        else:
            line = self.start(c, None)
            self.test.assertEqual(self.challenge(line), "", line)
            c.send(b64(client.first()) + "\r\n")
            line = c.line()
        server_first = self.challenge(line)
        if server_first is None:
            return line, c
        c.send(b64(client.final(server_first, proof_override)) + "\r\n")
        line = c.line()
        server_final = self.challenge(line)
        if server_final is None:
            return line, c
        client.check_server_final(server_final)
        c.send("\r\n")
        return c.line(), c


class ScramTest(unittest.TestCase):
    def setUp(self):
        self.conns = []
        self.server = Server(users=("alice", "bob"))
        self.server.set_config("auth", "penalty_base_ms", PENALTY_MS)
        # The penalty doubles per failure from this address: capped so that
        # the six failures of one test stay well inside the clients' 10 s
        # read timeout on a loaded CI machine (the 9.6 s sixth delay did not).
        self.server.set_config("auth", "penalty_max_ms", 4 * PENALTY_MS)
        self.server.start()

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.server.cleanup()

    def test_offered_next_to_plain(self):
        c = Protocol(self, "smtp").connect()
        c.send("EHLO again.test\r\n")
        code, lines = c.reply()
        self.assertIn("AUTH SCRAM-SHA-256 PLAIN LOGIN", lines)
        c = Protocol(self, "imap").connect()
        c.send("a CAPABILITY\r\n")
        caps = c.line()
        self.assertIn(" AUTH=SCRAM-SHA-256 ", caps)
        self.assertIn(" AUTH=PLAIN", caps)
        c = Protocol(self, "pop3").connect()
        c.send("CAPA\r\n")
        capa = []
        while (l := c.line()) != ".":
            capa.append(l)
        self.assertIn("SASL SCRAM-SHA-256 PLAIN", capa)

    def test_python_client_logs_in_on_every_protocol(self):
        for kind in ("smtp", "imap", "pop3"):
            for initial in (True, False):
                with self.subTest(kind=kind, initial_response=initial):
                    p = Protocol(self, kind)
                    line, c = p.login(ALICE, PASSWORD, initial_response=initial)
                    self.assertTrue(p.is_success(line), line)
                    if kind == "imap":  # the session is authenticated
                        c.send("a2 SELECT INBOX\r\n")
                        while not (l := c.line()).startswith("a2 "):
                            pass
                        self.assertTrue(l.startswith("a2 OK"), l)
                    elif kind == "pop3":
                        c.send("STAT\r\n")
                        self.assertTrue(c.line().startswith("+OK 0 "))
                        c.send("QUIT\r\n")
                        c.line()
                    c.close()
        # An authorization identity equal to the user is accepted, another is not.
        line, _ = Protocol(self, "smtp").login(ALICE, PASSWORD, authzid=ALICE)
        self.assertTrue(line.startswith("235 "), line)
        line, _ = Protocol(self, "smtp").login(ALICE, PASSWORD, authzid=BOB)
        self.assertTrue(line.startswith("535 "), line)
        # GS2 flag "y" (client could bind, thinks we cannot): c= is then "eSws".
        line, _ = Protocol(self, "imap").login(ALICE, PASSWORD, flag="y")
        self.assertTrue(line.startswith("a1 OK"), line)
        self.assertIn("authenticated with SCRAM-SHA-256", self.server.logs())

    def test_wrong_password_and_unknown_user_fail_with_the_penalty(self):
        for kind in ("smtp", "imap", "pop3"):
            with self.subTest(kind=kind):
                p = Protocol(self, kind)
                t0 = time.monotonic()
                line, _ = p.login(ALICE, "not-the-password")
                elapsed = time.monotonic() - t0
                self.assertFalse(p.is_success(line), line)
                expected = {"smtp": "535 5.7.8", "imap": "a1 NO [AUTHENTICATIONFAILED]",
                            "pop3": "-ERR [AUTH]"}[kind]
                self.assertTrue(line.startswith(expected), line)
                self.assertGreaterEqual(elapsed, PENALTY_MS / 1000 * 0.9)
                line, _ = p.login(f"nobody@{DOMAIN}", PASSWORD)
                self.assertTrue(line.startswith(expected), line)
        logs = self.server.logs()
        self.assertIn(f"failed login for {ALICE} from 127.0.0.1 (SCRAM-SHA-256)", logs)
        self.assertIn(f"failed login for nobody@{DOMAIN} from 127.0.0.1", logs)
        # A tampered proof fails like a wrong password.
        p = Protocol(self, "smtp")
        line, _ = p.login(ALICE, PASSWORD, proof_override=b64(b"\0" * 32))
        self.assertTrue(line.startswith("535 "), line)

    def test_account_without_verifier_cannot_use_scram_until_password_reset(self):
        # An account whose password was set before schema 9 has no verifier.
        self.server.stop()
        db = sqlite3.connect(os.path.join(self.server.data, "meta.db"))
        with db:
            db.execute("UPDATE accounts SET scram_sha256 = NULL WHERE address = ?", (ALICE,))
        db.close()
        self.server.start()
        for kind in ("smtp", "imap", "pop3"):
            with self.subTest(kind=kind):
                p = Protocol(self, kind)
                t0 = time.monotonic()
                line, _ = p.login(ALICE, PASSWORD)
                self.assertFalse(p.is_success(line), line)
                self.assertGreaterEqual(time.monotonic() - t0, PENALTY_MS / 1000 * 0.9)
        self.assertIn("has no SCRAM verifier; set its password again with `hato user passwd`",
                      self.server.logs())
        # PLAIN still works for that account.
        c = Protocol(self, "smtp").connect()
        plain = b64(b"\0" + ALICE.encode() + b"\0" + PASSWORD.encode())
        c.send(f"AUTH PLAIN {plain}\r\n")
        self.assertEqual(c.reply()[0], 235)
        # Setting the password again stores a verifier: SCRAM now works.
        run_cli("user", "passwd", ALICE, "--password-stdin", data=self.server.data,
                input="new-password\n")
        line, _ = Protocol(self, "imap").login(ALICE, "new-password")
        self.assertTrue(line.startswith("a1 OK"), line)
        line, _ = Protocol(self, "imap").login(ALICE, PASSWORD)
        self.assertTrue(line.startswith("a1 NO"), line)

    def test_malformed_and_cancelled_exchanges(self):
        p = Protocol(self, "smtp")
        c = p.connect()
        # Channel binding ("p=") is refused: -PLUS is not offered.
        line = p.start(c, b"p=tls-unique,,n=alice,r=abc")
        self.assertTrue(line.startswith("501 "), line)
        line = p.start(c, b"n,,m=x,n=alice,r=abc")  # reserved mandatory extension
        self.assertTrue(line.startswith("501 "), line)
        line = p.start(c, b"n,,n=ali=ce,r=abc")  # bad saslname escape
        self.assertTrue(line.startswith("501 "), line)
        # A wrong c= (GS2 header) or nonce in client-final is a protocol error.
        client = ScramClient(ALICE, PASSWORD)
        server_first = p.challenge(p.start(c, client.first()))
        final = client.final(server_first).decode().replace("c=biws", "c=eSws")
        c.send(b64(final.encode()) + "\r\n")
        self.assertTrue(c.line().startswith("501 "))
        # "*" cancels.
        client = ScramClient(ALICE, PASSWORD)
        self.assertIsNotNone(p.challenge(p.start(c, client.first())))
        c.send("*\r\n")
        self.assertTrue(c.line().startswith("501 5.0.0"))
        p = Protocol(self, "imap")
        c = p.connect()
        c.send("a1 AUTHENTICATE SCRAM-SHA-256 " + b64(b"n,,n=alice") + "\r\n")
        self.assertTrue(c.line().startswith("a1 BAD"))

    @unittest.skipUnless(shutil.which("gsasl"), "gsasl (GNU SASL) not installed")
    def test_gsasl_client(self):
        # gsasl 2.2 over TLS 1.3 fails on its own side (before sending anything)
        # unless told not to look for channel-binding data: --no-cb.
        tls = ["--starttls", "--x509-ca-file=", "--no-cb"]
        for mode, port, extra in (
                ("--smtp", self.server.submission_port, ["--no-starttls"]),
                ("--imap", self.server.imap_port, ["--no-starttls", "--no-client-first"]),
                ("--smtp", self.server.submission_port, tls),
                ("--imap", self.server.imap_port, tls)):
            with self.subTest(mode=mode, extra=extra):
                r = subprocess.run(
                    ["gsasl", "--client", mode, "--connect", f"127.0.0.1:{port}",
                     "--mechanism", "SCRAM-SHA-256", "--authentication-id", ALICE,
                     "--password", PASSWORD, "--verbose", *extra],
                    input="", capture_output=True, text=True, timeout=60)
                out = r.stdout + r.stderr
                self.assertEqual(r.returncode, 0, out)
                self.assertIn("AUTH SCRAM-SHA-256" if mode == "--smtp"
                              else "AUTHENTICATE SCRAM-SHA-256", out)
                self.assertIn("235 2.7.0" if mode == "--smtp" else "] logged in", out)
                r = subprocess.run(
                    ["gsasl", "--client", mode, "--connect", f"127.0.0.1:{port}",
                     "--mechanism", "SCRAM-SHA-256", "--authentication-id", ALICE,
                     "--password", "wrong", *extra],
                    input="", capture_output=True, text=True, timeout=60)
                self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        logs = self.server.logs()
        self.assertIn(f"imap: {ALICE} logged in from 127.0.0.1 with SCRAM-SHA-256", logs)
        self.assertIn(f"imap: {ALICE} logged in from 127.0.0.1 with TLS with SCRAM-SHA-256", logs)
        self.assertIn(f"submission: {ALICE} authenticated with SCRAM-SHA-256", logs)
        self.assertIn(f"failed login for {ALICE} from 127.0.0.1 (SCRAM-SHA-256)", logs)

    @unittest.skipUnless(shutil.which("gsasl"), "gsasl (GNU SASL) not installed")
    def test_verifier_matches_gnu_sasl(self):
        # The stored verifier is what GNU SASL derives from the same password,
        # salt and iteration count (RFC 5803 form in the accounts table).
        db = sqlite3.connect(os.path.join(self.server.data, "meta.db"))
        (stored,) = db.execute("SELECT scram_sha256 FROM accounts WHERE address = ?",
                               (BOB,)).fetchone()
        db.close()
        head, keys = stored[len("SCRAM-SHA-256$"):].split("$")
        iters, salt = head.split(":")
        self.assertGreaterEqual(int(iters), 4096)
        r = subprocess.run(["gsasl", "--mkpasswd", "--mechanism", "SCRAM-SHA-256",
                            "--password", PASSWORD, "--salt", salt, "--iteration-count", iters],
                           capture_output=True, text=True, timeout=60, check=True)
        _, _, stored_key, server_key = r.stdout.strip().split("}", 1)[1].split(",")
        self.assertEqual(keys, f"{stored_key}:{server_key}")


if __name__ == "__main__":
    unittest.main()
