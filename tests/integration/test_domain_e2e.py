"""From `hato init` to a working domain, end to end (issue 18): two Hato
instances are initialised for a.example and b.example, the DNS records each
`hato init` printed are loaded into a local test DNS server (fakemx.FakeDNS,
as in test_msgauth_inbound), `hato dns check` agrees with it, and a message
submitted on b.example reaches a.example through an MX lookup, signed with the DKIM
key init generated, passing SPF, DKIM and DMARC at a.example, and under
a.example's MTA-STS policy (fetched by b.example from a.example's own HTTPS
listener through the printed mta-sts CNAME; the delivery's TLS-RPT record at
b.example says policy "sts", result "success")."""
import glob
import imaplib
import json
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import unittest

from fakemx import FakeDNS
from harness import PASSWORD, Server, free_port, run_cli, wait_for
from test_ops import zone_records


def init(tmp, domain):
    data = os.path.join(tmp, domain)
    out = run_cli("init", "--domain", domain, "--hostname", f"mx.{domain}", "--ip", "127.0.0.1",
                  data=data).stdout
    run_cli("user", "add", f"admin@{domain}", "--password-stdin", data=data,
            input=PASSWORD + "\n")
    return data, out


def load_zone(zone, printed):
    """The records `hato init` printed, in FakeDNS form (MX, A, TXT, CNAME)."""
    for name, rtype, value in zone_records(printed):
        if rtype in ("MX", "A", "TXT", "CNAME") and not value.startswith("<"):
            zone.setdefault(name, []).append((rtype, value))


class DomainEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hato-e2e-")
        cls.a_data, cls.a_out = init(cls.tmp, "a.example")
        cls.b_data, cls.b_out = init(cls.tmp, "b.example")
        cls.zone = {}
        cls.dns = FakeDNS(cls.zone)
        cls.a = Server(data=cls.a_data)
        cls.b = Server(data=cls.b_data)
        for s in (cls.a, cls.b):
            s.set_config("outbound", "resolver", f'"{cls.dns.address}"')
            s.set_config("msgauth", "check_loopback", "true")
        # a.example's certificate names its MX and its MTA-STS host (as `[acme]
        # domains` would); b.example trusts it and fetches the policy from
        # a.example's HTTPS listener.
        cert = os.path.join(cls.a_data, "tls", "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                        "-keyout", os.path.join(cls.a_data, "tls", "key.pem"), "-out", cert,
                        "-subj", "/CN=mx.a.example",
                        "-addext", "subjectAltName=DNS:mx.a.example,DNS:mta-sts.a.example"],
                       check=True, capture_output=True)
        cls.a_https = free_port()
        cls.a.set_config("listen", "https", f'"127.0.0.1:{cls.a_https}"')
        cls.b.set_config("outbound", "tls_ca_file", f'"{cert}"')
        cls.b.set_config("outbound", "mta_sts_port", str(cls.a_https))
        # b.example's MX lookup for a.example finds mx.a.example = 127.0.0.1, on A's port.
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
        r = self.dns_check(self.a_data, "a.example")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"MISSING\tMX\ta\.example")
        load_zone(self.zone, self.a_out)
        load_zone(self.zone, self.b_out)
        for data, domain in ((self.a_data, "a.example"), (self.b_data, "b.example")):
            r = self.dns_check(data, domain)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for rtype, name in (("MX", domain), ("A", f"mx.{domain}"), ("TXT", domain),
                                ("TXT", f"hato._domainkey.{domain}"), ("TXT", f"_dmarc.{domain}")):
                self.assertIn(f"OK\t{rtype}\t{name}", r.stdout)

        with smtplib.SMTP("127.0.0.1", self.b.submission_port, timeout=10) as s:
            s.ehlo()
            s.starttls()
            s.ehlo()
            s.login("admin@b.example", PASSWORD)
            s.sendmail("admin@b.example", ["admin@a.example"],
                       b"From: Admin B <admin@b.example>\r\nTo: <admin@a.example>\r\n"
                       b"Subject: across\r\nMessage-ID: <e2e@b.example>\r\n\r\nHello a.example\r\n")

        def fetch():
            m = imaplib.IMAP4("127.0.0.1", self.a.imap_port)
            try:
                m.login("admin@a.example", PASSWORD)
                m.select("INBOX")
                _, ids = m.search(None, "ALL")
                if not ids[0]:
                    return None
                _, data = m.fetch(ids[0].split()[-1], "(RFC822)")
                return data[0][1]
            finally:
                m.logout()

        msg = wait_for(fetch, timeout=60, what="delivery from b.example to a.example")
        self.assertIn(b"Hello a.example", msg)
        self.assertIn(b"DKIM-Signature:", msg)
        self.assertIn(b"s=hato", msg)
        header = msg.split(b"\r\n\r\n")[0].decode()
        results = re.search(r"Authentication-Results: [^\r]*(\r\n\s[^\r]*)*", header).group(0)
        self.assertIn("spf=pass", results)
        self.assertIn("dkim=pass", results)
        self.assertIn("dmarc=pass", results)
        # The MX lookup went through the test DNS.
        self.assertIn(("a.example", "MX"), self.dns.queries)
        # MTA-STS: the policy a.example serves was fetched and the delivery
        # met it (verified TLS to a named MX host).
        self.assertIn(("_mta-sts.a.example", "TXT"), self.dns.queries)
        def sessions():
            out = []
            for f in glob.glob(os.path.join(self.b_data, "reports", "tls", "*.jsonl")):
                with open(f) as fh:
                    out += [json.loads(line) for line in fh if line.strip()]
            return [x for x in out if x["domain"] == "a.example"] or None

        to_a = wait_for(sessions, what="b.example's TLS-RPT record of the delivery")
        self.assertEqual(len(to_a), 1, to_a)
        self.assertEqual(to_a[0]["type"], "sts", to_a[0])
        self.assertEqual(to_a[0]["result"], "success", to_a[0])
        self.assertIn("mx: mx.a.example", to_a[0]["policy"])
        # b.example's queue is empty again.
        self.assertIn("queue is empty", run_cli("queue", "list", data=self.b_data).stdout)


if __name__ == "__main__":
    unittest.main()
