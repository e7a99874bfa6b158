"""Outbound TLS policy ([outbound] tls_policy, src/outbound/tls_policy.h), end
to end: a sending Hato delivers to remote.example through a test DNS server.

  * "encrypt" for a domain whose MX offers no STARTTLS: nothing is sent in the
    clear, the recipient stays queued with 4.7.5; another domain on the same
    MX without a policy is delivered (opportunistic, the default).
  * "verify" against a second Hato as the MX (STARTTLS with its self-signed
    certificate for mx.remote.example): delivered when that certificate is
    trusted (outbound.tls_ca_file), deferred with 4.7.5 when it is not, or
    when it names another host.
"""
import os
import poplib
import smtplib
import unittest

from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for

ALICE = f"alice@{DOMAIN}"
MSG = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nHello %s\r\n"


def submit(server, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as s:
        s.ehlo()
        s.login(ALICE, PASSWORD)
        s.sendmail(ALICE, [rcpt], MSG % (ALICE, rcpt, subject, subject))


class Sender:
    """The sending Hato, whose DNS says remote.example and plain.example have
    their MX at 127.0.0.1 (the port given)."""

    def __init__(self, mx_port, mx_host, policy, ca_file=None):
        self.dns = FakeDNS({"remote.example": [("MX", f"10 {mx_host}.")],
                            "plain.example": [("MX", f"10 {mx_host}.")],
                            mx_host: [("A", "127.0.0.1")]})
        self.server = Server(users=("alice",))
        s = self.server
        s.set_config("outbound", "resolver", f'"{self.dns.address}"')
        s.set_config("outbound", "smtp_port", str(mx_port))
        s.set_config("outbound", "retry_base_seconds", "1")
        s.set_config("outbound", "retry_max_seconds", "2")
        s.set_config("outbound", "tls_policy", policy)
        if ca_file:
            s.set_config("outbound", "tls_ca_file", f'"{ca_file}"')
        s.start()

    def queue(self):
        return run_cli("queue", "list", data=self.server.data).stdout

    def stop(self):
        self.server.cleanup()
        self.dns.stop()


class EncryptTest(unittest.TestCase):
    def setUp(self):
        self.mx = FakeMX()  # offers no STARTTLS
        self.sender = Sender(self.mx.port, "mx.remote.example",
                             '{ "remote.example" = "encrypt" }')

    def tearDown(self):
        self.sender.stop()
        self.mx.stop()

    def test_no_mail_in_the_clear_when_tls_is_required(self):
        submit(self.sender.server, "carol@remote.example", "secret")
        submit(self.sender.server, "dave@plain.example", "plain")
        # The domain without a policy goes out in the clear, opportunistically.
        wait_for(lambda: self.mx.received_for("dave@plain.example"), what="plain delivery")
        wait_for(lambda: "4.7.5" in self.sender.queue(), what="4.7.5 deferral")
        self.assertEqual(self.mx.received_for("carol@remote.example"), [])
        self.assertIn("carol@remote.example", self.sender.queue())
        self.assertIn("does not offer STARTTLS", self.sender.queue())
        self.assertEqual(self.mx.received_for("carol@remote.example"), [])


class VerifyTest(unittest.TestCase):
    """A second Hato, for remote.example with host name mx.remote.example, is the MX."""

    mx_host = "mx.remote.example"
    trust = True

    def setUp(self):
        import tempfile
        self.remote_data = tempfile.mkdtemp(prefix="hato-it-remote-")
        run_cli("init", "--domain", "remote.example", "--hostname", "mx.remote.example",
                data=self.remote_data)
        run_cli("user", "add", "carol@remote.example", "--password-stdin",
                data=self.remote_data, input=PASSWORD + "\n")
        self.remote = Server(data=self.remote_data)
        self.remote.start()
        ca = os.path.join(self.remote_data, "tls", "cert.pem") if self.trust else None
        self.sender = Sender(self.remote.smtp_port, self.mx_host,
                             '{ "remote.example" = "verify" }', ca)

    def tearDown(self):
        self.sender.stop()
        self.remote.owns_data = True
        self.remote.cleanup()

    def carol_messages(self):
        p = poplib.POP3("127.0.0.1", self.remote.pop3_port, timeout=10)
        try:
            p.user("carol@remote.example")
            p.pass_(PASSWORD)
            return [b"\r\n".join(p.retr(i + 1)[1]) for i in range(len(p.list()[1]))]
        finally:
            p.quit()

    def test_verified_delivery(self):
        submit(self.sender.server, "carol@remote.example", "verified")
        [msg] = wait_for(self.carol_messages, what="verified delivery")
        self.assertIn(b"Hello verified", msg)
        # The receiving Hato records TLS in its Received field (RFC 3848 ESMTPS).
        self.assertIn(b"ESMTPS", msg)
        wait_for(lambda: "carol@remote.example" not in self.sender.queue(), what="queue empty")


class UntrustedTest(VerifyTest):
    trust = False

    def test_verified_delivery(self):
        submit(self.sender.server, "carol@remote.example", "untrusted")
        wait_for(lambda: "4.7.5" in self.sender.queue(), what="4.7.5 deferral")
        self.assertEqual(self.carol_messages(), [])


class WrongNameTest(VerifyTest):
    """The MX host name in DNS is not the one the certificate names."""

    mx_host = "other.remote.example"

    def test_verified_delivery(self):
        submit(self.sender.server, "carol@remote.example", "wrong-name")
        wait_for(lambda: "4.7.5" in self.sender.queue(), what="4.7.5 deferral")
        self.assertEqual(self.carol_messages(), [])


if __name__ == "__main__":
    unittest.main()
