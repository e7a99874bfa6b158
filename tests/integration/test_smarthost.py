"""Outbound through an authenticated smarthost ([outbound] relay_host,
relay_auth_file, relay_tls; src/outbound/relay_auth.h, RFC 4954 AUTH in
src/smtp/client.cc), end to end against a second Hato as the relay: its
submission port (STARTTLS, AUTH PLAIN/LOGIN) or its submissions port
(implicit TLS, RFC 8314), with a certificate for smtp.relay.example that the
sender trusts through outbound.tls_ca_file.

  * the right credentials: the message reaches carol@relay.example, and the
    relay's Received field says it came authenticated over TLS (ESMTPSA);
  * a wrong password: the relay answers 535, the message stays queued with
    that reason, nothing is delivered;
  * a relay without TLS: the credentials are never sent (4.7.5), the
    message stays queued;
  * a credentials file others may read: `hato serve` refuses to start.
"""
import os
import poplib
import shutil
import smtplib
import tempfile
import unittest

from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for

ALICE = f"alice@{DOMAIN}"
CAROL = "carol@relay.example"
RELAY_HOST = "smtp.relay.example"
RELAY_PASSWORD = "relay-secret:with-colon"
MSG = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nHello %s\r\n"


class Relay:
    """The smarthost: a Hato for relay.example where alice@example.test also
    has an account (the identity the sender relays as)."""

    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="hato-it-relay-")
        run_cli("init", "--domain", "relay.example", "--hostname", RELAY_HOST, data=self.data)
        run_cli("domain", "add", DOMAIN, data=self.data)
        run_cli("user", "add", CAROL, "--password-stdin", data=self.data, input=PASSWORD + "\n")
        run_cli("user", "add", ALICE, "--password-stdin", data=self.data,
                input=RELAY_PASSWORD + "\n")
        self.server = Server(data=self.data)
        self.server.start()
        self.ca_file = os.path.join(self.data, "tls", "cert.pem")

    def carol_messages(self):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        try:
            p.user(CAROL)
            p.pass_(PASSWORD)
            return [b"\r\n".join(p.retr(i + 1)[1]) for i in range(len(p.list()[1]))]
        finally:
            p.quit()

    def stop(self):
        self.server.cleanup()
        shutil.rmtree(self.data, ignore_errors=True)


class Sender:
    """The sending Hato, relaying all remote mail through `port` as alice."""

    def __init__(self, port, ca_file, password=RELAY_PASSWORD, relay_tls="starttls",
                 mode=0o600, start=True):
        self.dns = FakeDNS({RELAY_HOST: [("A", "127.0.0.1")]})
        self.server = Server(users=("alice",))
        s = self.server
        self.auth_file = os.path.join(s.data, "relay-credentials")
        fd = os.open(self.auth_file, os.O_WRONLY | os.O_CREAT, mode)
        os.write(fd, f"{ALICE}:{password}\n".encode())
        os.close(fd)
        os.chmod(self.auth_file, mode)
        s.set_config("outbound", "resolver", f'"{self.dns.address}"')
        s.set_config("outbound", "relay_host", f'"{RELAY_HOST}:{port}"')
        s.set_config("outbound", "relay_auth_file", f'"{self.auth_file}"')
        s.set_config("outbound", "relay_tls", f'"{relay_tls}"')
        s.set_config("outbound", "retry_base_seconds", "1")
        s.set_config("outbound", "retry_max_seconds", "2")
        if ca_file:
            s.set_config("outbound", "tls_ca_file", f'"{ca_file}"')
        if start:
            s.start()

    def submit(self, subject):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as c:
            c.ehlo()
            c.login(ALICE, PASSWORD)
            c.sendmail(ALICE, [CAROL], MSG % (ALICE, CAROL, subject, subject))

    def queue(self):
        return run_cli("queue", "list", data=self.server.data).stdout

    def stop(self):
        self.server.cleanup()
        self.dns.stop()


class SmarthostTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.relay = Relay()

    @classmethod
    def tearDownClass(cls):
        cls.relay.stop()

    def setUp(self):
        self.sender = None

    def tearDown(self):
        if self.sender:
            self.sender.stop()

    def delivered(self, subject):
        return [m for m in self.relay.carol_messages() if f"Hello {subject}".encode() in m]

    def test_starttls_and_auth(self):
        self.sender = Sender(self.relay.server.submission_port, self.relay.ca_file)
        self.sender.submit("via-starttls")
        [msg] = wait_for(lambda: self.delivered("via-starttls"), what="relayed delivery")
        # RFC 3848: the relay took it authenticated, over TLS.
        self.assertIn(b"ESMTPSA", msg)
        wait_for(lambda: CAROL not in self.sender.queue(), what="queue empty")
        self.assertIn(f"relaying through {RELAY_HOST}", self.sender.server.logs())

    def test_implicit_tls(self):
        self.sender = Sender(self.relay.server.submissions_port, self.relay.ca_file,
                             relay_tls="implicit")
        self.sender.submit("via-implicit")
        [msg] = wait_for(lambda: self.delivered("via-implicit"), what="relayed delivery")
        self.assertIn(b"ESMTPSA", msg)

    def test_wrong_password_defers(self):
        self.sender = Sender(self.relay.server.submission_port, self.relay.ca_file,
                             password="not-the-password")
        self.sender.submit("wrong-password")
        wait_for(lambda: "535" in self.sender.queue(), what="535 deferral")
        self.assertIn(CAROL, self.sender.queue())
        self.assertEqual(self.delivered("wrong-password"), [])

    def test_untrusted_certificate_gets_no_credentials(self):
        # The relay's certificate is not trusted: nothing is sent, 4.7.5.
        self.sender = Sender(self.relay.server.submission_port, None)
        self.sender.submit("untrusted")
        wait_for(lambda: "4.7.5" in self.sender.queue(), what="4.7.5 deferral")
        self.assertEqual(self.delivered("untrusted"), [])

    def test_world_readable_credentials_refused(self):
        self.sender = Sender(self.relay.server.submission_port, self.relay.ca_file,
                             mode=0o644, start=False)
        with self.assertRaises(AssertionError):
            self.sender.server.start()
        self.assertIn("chmod 600", self.sender.server.logs())


class NoTlsRelayTest(unittest.TestCase):
    """A relay that offers no STARTTLS never sees the credentials."""

    def test_no_credentials_in_the_clear(self):
        mx = FakeMX(ehlo_extra=["AUTH PLAIN LOGIN"])
        sender = Sender(mx.port, None)
        try:
            sender.submit("clear")
            wait_for(lambda: "4.7.5" in sender.queue(), what="4.7.5 deferral")
            self.assertIn("STARTTLS", sender.queue())
            self.assertEqual(mx.received_for(CAROL), [])
        finally:
            sender.stop()
            mx.stop()


if __name__ == "__main__":
    unittest.main()
