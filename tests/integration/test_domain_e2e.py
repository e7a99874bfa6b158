"""From `hato init` to a working domain, end to end (issue 18): two Hato
instances are initialised for a.test and b.test, the DNS records each
`hato init` printed are loaded into a local test DNS server (fakemx.FakeDNS,
as in test_msgauth_inbound), `hato dns check` agrees with it, and a message
submitted on b.test reaches a.test through an MX lookup, signed with the DKIM
key init generated, passing SPF, DKIM and DMARC at a.test."""
import imaplib
import os
import re
import shutil
import smtplib
import tempfile
import unittest

from fakemx import FakeDNS
from harness import PASSWORD, Server, run_cli, wait_for
from test_ops import zone_records


def init(tmp, domain):
    data = os.path.join(tmp, domain)
    out = run_cli("init", "--domain", domain, "--hostname", f"mx.{domain}", "--ip", "127.0.0.1",
                  data=data).stdout
    run_cli("user", "add", f"admin@{domain}", "--password-stdin", data=data,
            input=PASSWORD + "\n")
    return data, out


def load_zone(zone, printed):
    """The records `hato init` printed, in FakeDNS form (MX, A, TXT)."""
    for name, rtype, value in zone_records(printed):
        if rtype in ("MX", "A", "TXT") and not value.startswith("<"):
            zone.setdefault(name, []).append((rtype, value))


class DomainEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hato-e2e-")
        cls.a_data, cls.a_out = init(cls.tmp, "a.test")
        cls.b_data, cls.b_out = init(cls.tmp, "b.test")
        cls.zone = {}
        cls.dns = FakeDNS(cls.zone)
        cls.a = Server(data=cls.a_data)
        cls.b = Server(data=cls.b_data)
        for s in (cls.a, cls.b):
            s.set_config("outbound", "resolver", f'"{cls.dns.address}"')
            s.set_config("msgauth", "check_loopback", "true")
        # b.test's MX lookup for a.test finds mx.a.test = 127.0.0.1, on A's port.
        cls.b.set_config("outbound", "smtp_port", str(cls.a.smtp_port))
        cls.b.set_config("outbound", "retry_base_seconds", "1")
        cls.a.start()
        cls.b.start()

    @classmethod
    def tearDownClass(cls):
        cls.a.cleanup()
        cls.b.cleanup()
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def dns_check(self, data, domain):
        return run_cli("dns", "check", domain, "--resolver", self.dns.address, data=data,
                       check=False)

    def test_1_records_then_mail_passes_every_check(self):
        # Before the records are published: required records are missing.
        r = self.dns_check(self.a_data, "a.test")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"MISSING\tMX\ta\.test")
        load_zone(self.zone, self.a_out)
        load_zone(self.zone, self.b_out)
        for data, domain in ((self.a_data, "a.test"), (self.b_data, "b.test")):
            r = self.dns_check(data, domain)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for rtype, name in (("MX", domain), ("A", f"mx.{domain}"), ("TXT", domain),
                                ("TXT", f"hato._domainkey.{domain}"), ("TXT", f"_dmarc.{domain}")):
                self.assertIn(f"OK\t{rtype}\t{name}", r.stdout)

        with smtplib.SMTP("127.0.0.1", self.b.submission_port, timeout=10) as s:
            s.ehlo()
            s.starttls()
            s.ehlo()
            s.login("admin@b.test", PASSWORD)
            s.sendmail("admin@b.test", ["admin@a.test"],
                       b"From: Admin B <admin@b.test>\r\nTo: <admin@a.test>\r\n"
                       b"Subject: across\r\nMessage-ID: <e2e@b.test>\r\n\r\nHello a.test\r\n")

        def fetch():
            m = imaplib.IMAP4("127.0.0.1", self.a.imap_port)
            try:
                m.login("admin@a.test", PASSWORD)
                m.select("INBOX")
                _, ids = m.search(None, "ALL")
                if not ids[0]:
                    return None
                _, data = m.fetch(ids[0].split()[-1], "(RFC822)")
                return data[0][1]
            finally:
                m.logout()

        msg = wait_for(fetch, timeout=60, what="delivery from b.test to a.test")
        self.assertIn(b"Hello a.test", msg)
        self.assertIn(b"DKIM-Signature:", msg)
        self.assertIn(b"s=hato", msg)
        header = msg.split(b"\r\n\r\n")[0].decode()
        results = re.search(r"Authentication-Results: [^\r]*(\r\n\s[^\r]*)*", header).group(0)
        self.assertIn("spf=pass", results)
        self.assertIn("dkim=pass", results)
        self.assertIn("dmarc=pass", results)
        # The MX lookup went through the test DNS.
        self.assertIn(("a.test", "MX"), self.dns.queries)
        # b.test's queue is empty again.
        self.assertIn("queue is empty", run_cli("queue", "list", data=self.b_data).stdout)


if __name__ == "__main__":
    unittest.main()
