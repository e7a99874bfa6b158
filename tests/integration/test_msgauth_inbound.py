"""Inbound message authentication on the MX, end to end: a real `hato serve`
whose resolver is a local test DNS server (fakemx.FakeDNS) with SPF, DKIM and
DMARC records; mail arrives over SMTP on port 25 from 127.0.0.1 and is read
back over IMAP.

  * Authentication-Results (RFC 8601) is added with the SPF, DKIM and DMARC
    results; forged fields claiming our host name are removed (section 5).
  * A message signed by python3-dkim (the independent implementation) passes
    DKIM in Hato, and aligned DKIM passes DMARC even where SPF fails.
  * DMARC p=reject failures get 550 5.7.1 at the end of DATA
    (dmarc_reject = "reject") or land in Junk ("junk"); p=quarantine lands in
    Junk (RFC 7489 section 6.3, 6.7).
  * A dead resolver delays a message by at most the check budget: the
    message is accepted with temperror results, never lost or hung.
  * Mail from loopback gets no checks unless check_loopback is on.
"""
import base64
import email
import imaplib
import smtplib
import socket
import subprocess
import time
import unittest

from fakemx import FakeDNS
import metrics_client
from harness import DOMAIN, PASSWORD, Server, free_port

ALICE = f"alice@{DOMAIN}"
HOSTNAME = f"mail.{DOMAIN}"

ZONE = {
    # Passes SPF from 127.0.0.1, publishes p=reject.
    "good.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
    "_dmarc.good.example": [("TXT", "v=DMARC1; p=reject")],
    # Fails SPF (only 192.0.2.1 may send), publishes p=reject.
    "bad.example": [("TXT", "v=spf1 ip4:192.0.2.1 -all")],
    "_dmarc.bad.example": [("TXT", "v=DMARC1; p=reject")],
    # Fails SPF, publishes p=quarantine.
    "quar.example": [("TXT", "v=spf1 ip4:192.0.2.1 -all")],
    "_dmarc.quar.example": [("TXT", "v=DMARC1; p=quarantine")],
    # Fails SPF, but signs with DKIM (key added in setUp), p=reject.
    "signed.example": [("TXT", "v=spf1 ip4:192.0.2.1 -all")],
    "_dmarc.signed.example": [("TXT", "v=DMARC1; p=reject")],
    # The HELO name's own SPF record.
    "client.good.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
}


def message(sender, subject, extra=""):
    return (f"From: <{sender}>\r\nTo: <{ALICE}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@test>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            f"{extra}\r\nHello {subject}\r\n")


def dkim_keypair():
    """An RSA key (PEM, from openssl) and its DKIM public-key record."""
    pem = subprocess.run(["openssl", "genrsa", "2048"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem,
                         check=True, capture_output=True).stdout
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


class Base(unittest.TestCase):
    dmarc_reject = "reject"
    check_loopback = True
    resolver = None  # None: the test DNS server

    @classmethod
    def setUpClass(cls):
        cls.key_pem, record = dkim_keypair()
        zone = dict(ZONE)
        zone["sel._domainkey.signed.example"] = [("TXT", record)]
        cls.dns = FakeDNS(zone)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def setUp(self):
        self.server = Server(users=("alice",))
        resolver = self.resolver or self.dns.address
        self.server.set_config("outbound", "resolver", f'"{resolver}"')
        self.server.set_config("msgauth", "check_loopback",
                               "true" if self.check_loopback else "false")
        self.server.set_config("msgauth", "dmarc_reject", f'"{self.dmarc_reject}"')
        self.metrics_port = free_port()
        metrics_client.enable(self.server, self.metrics_port)
        self.configure()
        self.server.start()

    def configure(self):
        pass

    def tearDown(self):
        self.server.cleanup()

    def send(self, sender, data, helo="client.good.example"):
        """Sends over port 25; returns the reply to the end of data."""
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=60) as s:
            s.ehlo(helo)
            s.mail(sender)
            code, _ = s.rcpt(ALICE)
            self.assertEqual(code, 250)
            return s.data(data.encode() if isinstance(data, str) else data)

    def mailbox(self, name):
        """The messages of one of alice's mailboxes, oldest first."""
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
        try:
            m.login(ALICE, PASSWORD)
            typ, _ = m.select(name, readonly=True)
            self.assertEqual(typ, "OK")
            typ, data = m.search(None, "ALL")
            out = []
            for num in data[0].split():
                typ, d = m.fetch(num, "(BODY.PEEK[])")
                out.append(email.message_from_bytes(d[0][1]))
            return out
        finally:
            m.logout()

    def results(self, msg):
        """Our Authentication-Results field, unfolded."""
        fields = [v for v in msg.get_all("Authentication-Results", [])
                  if v.strip().startswith(HOSTNAME)]
        self.assertEqual(len(fields), 1, msg.get_all("Authentication-Results"))
        return " ".join(fields[0].split())


class ResultsTest(Base):
    def test_spf_and_dmarc_pass(self):
        code, _ = self.send("user@good.example", message("user@good.example", "good"))
        self.assertEqual(code, 250)
        [msg] = self.mailbox("INBOX")
        ar = self.results(msg)
        self.assertIn("spf=pass", ar)
        self.assertIn("smtp.mailfrom=user@good.example", ar)
        self.assertIn("dkim=none", ar)
        self.assertIn("dmarc=pass", ar)
        self.assertIn("header.from=good.example", ar)
        # RFC 8601 section 5: above our Received field.
        names = [k.lower() for k in msg.keys()]
        self.assertLess(names.index("authentication-results"), names.index("received"))

    def test_message_signed_by_dkimpy_passes_dkim_and_dmarc(self):
        import dkim  # python3-dkim
        data = message("news@signed.example", "signed").encode()
        sig = dkim.sign(data, b"sel", b"signed.example", self.key_pem,
                        include_headers=[b"from", b"to", b"subject", b"message-id"])
        code, _ = self.send("news@signed.example", sig + data)
        self.assertEqual(code, 250)
        [msg] = self.mailbox("INBOX")
        ar = self.results(msg)
        self.assertIn("spf=fail", ar)
        self.assertIn("dkim=pass", ar)
        self.assertIn("header.d=signed.example", ar)
        self.assertIn("dmarc=pass", ar)

    def test_altered_signed_message_fails_dmarc_and_is_rejected(self):
        import dkim
        data = message("news@signed.example", "altered").encode()
        sig = dkim.sign(data, b"sel", b"signed.example", self.key_pem)
        code, reply = self.send("news@signed.example", sig + data.replace(b"Hello", b"Goodbye"))
        self.assertEqual(code, 550)
        self.assertIn(b"5.7.1", reply)
        self.assertEqual(self.mailbox("INBOX"), [])

    def test_dmarc_reject_is_refused_at_data(self):
        code, reply = self.send("user@bad.example", message("user@bad.example", "spoofed"))
        self.assertEqual(code, 550)
        self.assertIn(b"5.7.1", reply)
        self.assertIn(b"bad.example", reply)
        self.assertEqual(self.mailbox("INBOX"), [])
        self.assertEqual(self.mailbox("Junk"), [])
        m = metrics_client.scrape(self.metrics_port)
        self.assertEqual(m['hato_msgauth_dmarc_total{result="fail"}'], 1)
        self.assertEqual(m['hato_msgauth_dmarc_total{result="pass"}'], 0)
        self.assertEqual(m['hato_msgauth_dmarc_actions_total{action="rejected"}'], 1)
        self.assertEqual(m['hato_msgauth_dmarc_actions_total{action="junk"}'], 0)

    def test_dmarc_quarantine_goes_to_junk(self):
        code, _ = self.send("user@quar.example", message("user@quar.example", "quarantined"))
        self.assertEqual(code, 250)
        self.assertEqual(self.mailbox("INBOX"), [])
        [msg] = self.mailbox("Junk")
        ar = self.results(msg)
        self.assertIn("spf=fail", ar)
        self.assertIn("dmarc=fail", ar)
        self.assertIn("p=quarantine", ar)
        m = metrics_client.scrape(self.metrics_port)
        self.assertEqual(m['hato_msgauth_dmarc_actions_total{action="junk"}'], 1)
        self.assertEqual(m['hato_msgauth_dmarc_actions_total{action="rejected"}'], 0)

    def test_forged_results_are_removed(self):
        forged = (f"Authentication-Results: {HOSTNAME}; spf=pass smtp.mailfrom=user@quar.example;"
                  f" dmarc=pass header.from=quar.example\r\n"
                  "Authentication-Results: other.example; spf=none\r\n")
        code, _ = self.send("user@quar.example", message("user@quar.example", "forged", forged))
        self.assertEqual(code, 250)
        [msg] = self.mailbox("Junk")
        ar = self.results(msg)  # exactly one field with our id: ours
        self.assertIn("dmarc=fail", ar)
        others = [v for v in msg.get_all("Authentication-Results") if "other.example" in v]
        self.assertEqual(len(others), 1)

    def test_null_sender_uses_helo_identity(self):
        code, _ = self.send("", message("postmaster@good.example", "bounce"), helo="client.good.example")
        self.assertEqual(code, 250)
        [msg] = self.mailbox("INBOX")
        ar = self.results(msg)
        self.assertIn("spf=pass", ar)
        self.assertIn("smtp.helo=client.good.example", ar)


class JunkPolicyTest(Base):
    dmarc_reject = "junk"

    def test_dmarc_reject_goes_to_junk_when_configured(self):
        code, _ = self.send("user@bad.example", message("user@bad.example", "spoofed"))
        self.assertEqual(code, 250)
        self.assertEqual(self.mailbox("INBOX"), [])
        [msg] = self.mailbox("Junk")
        self.assertIn("dmarc=fail", self.results(msg))
        self.assertIn("p=reject", self.results(msg))


class DeadResolverTest(Base):
    """A resolver that never answers: the message waits at most the check
    budget, then is accepted with temperror (the sender is not at fault)."""

    # A UDP socket held open and never read: no other test running in
    # parallel can take its port and answer (a port that was merely free
    # once could be reused by another test's FakeDNS, which answers NXDOMAIN).
    _silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _silent.bind(("127.0.0.1", 0))
    resolver = f"127.0.0.1@{_silent.getsockname()[1]}"

    def configure(self):
        self.server.set_config("msgauth", "dns_timeout_seconds", "1")
        self.server.set_config("msgauth", "check_timeout_seconds", "3")

    def test_message_accepted_within_budget(self):
        start = time.monotonic()
        code, _ = self.send("user@good.example", message("user@good.example", "slow-dns"))
        elapsed = time.monotonic() - start
        self.assertEqual(code, 250)
        self.assertLess(elapsed, 15)
        [msg] = self.mailbox("INBOX")
        ar = self.results(msg)
        self.assertIn("spf=temperror", ar)
        self.assertIn("dmarc=temperror", ar)


    def test_waiting_checks_do_not_hold_logins(self):
        """Checks that wait on DNS run on their own threads: with more messages
        waiting than the blocking pool has threads (4), a POP3 login (whose
        password check runs on that pool) still answers at once."""
        import poplib
        import threading
        replies = []

        def send(i):
            replies.append(self.send("user@good.example", message("user@good.example", f"w{i}")))
        senders = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for t in senders:
            t.start()
        time.sleep(0.5)  # the messages are now waiting on the dead resolver
        start = time.monotonic()
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        p.user(ALICE)
        p.pass_(PASSWORD)
        p.stat()
        p.quit()
        login = time.monotonic() - start
        for t in senders:
            t.join()
        self.assertLess(login, 1.5)
        self.assertEqual([code for code, _ in replies], [250] * 8)


class LoopbackSkippedTest(Base):
    check_loopback = False

    def test_no_checks_for_loopback_peer(self):
        code, _ = self.send("user@bad.example", message("user@bad.example", "local"))
        self.assertEqual(code, 250)
        [msg] = self.mailbox("INBOX")
        self.assertIsNone(msg.get("Authentication-Results"))


if __name__ == "__main__":
    unittest.main()
