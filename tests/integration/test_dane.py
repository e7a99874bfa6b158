"""DANE for outbound SMTP (RFC 7672; [outbound] dane, src/outbound/queue.cc), end
to end: a sending Hato delivers to remote.example, whose MX is a FakeMX with a
certificate, through the test DNS (fakemx.FakeDNS), which plays a validating
resolver on loopback by setting the AD bit and serves TLSA records at
_PORT._tcp.mx.remote.example.

  * a DANE-EE (3 1 1) record of the MX's key, validated: delivered over TLS;
  * a DANE-EE record of another key, validated: nothing is sent, the
    recipient is deferred with 4.7.5 (and TLS-RPT records "tlsa-invalid");
  * a DANE-TA (2 0 1) record of the CA that issued the MX's certificate:
    delivered; the same record for a certificate naming another host: deferred;
  * validated answers without TLSA records, and a server without STARTTLS:
    delivered in the clear (opportunistic TLS, RFC 7435);
  * a mismatching record in answers without the AD bit: DANE does not apply,
    delivered (only validated records count, RFC 7672 2.2);
  * only unusable records (PKIX-EE, usage 1): TLS required, unauthenticated;
  * outbound.dane with a resolver that is not on loopback: `hato serve` refuses
    to start.
The hato_outbound_dane_total metric counts each outcome.
"""
import hashlib
import json
import os
import shutil
import smtplib
import subprocess
import tempfile
import unittest

import metrics_client
from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, HATO, PASSWORD, Server, free_port, run_cli, wait_for

ALICE = f"alice@{DOMAIN}"
MX = "mx.remote.example"


def openssl(*args, input=None):
    return subprocess.run(["openssl", *args], input=input, capture_output=True,
                          check=True).stdout


class Certs:
    """A CA and certificates it issues, and self-signed ones, in a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hato-dane-")
        self.ca_key, self.ca_cert = self.path("ca.key"), self.path("ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2",
                "-subj", "/CN=Test DANE CA")

    def path(self, name):
        return os.path.join(self.dir, name)

    def self_signed(self, name, cn):
        key, cert = self.path(name + ".key"), self.path(name + ".pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
                "-addext", f"subjectAltName=DNS:{cn}")
        return cert, key

    def issued(self, name, cn):
        """A certificate for `cn` by the CA; the PEM holds it and the CA (the chain)."""
        key, csr, cert = self.path(name + ".key"), self.path(name + ".csr"), self.path(name + ".crt")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{cn}\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        chain = self.path(name + ".pem")
        with open(chain, "w") as f:
            f.write(open(cert).read() + open(self.ca_cert).read())
        return chain, key

    @staticmethod
    def spki_sha256(cert):
        """TLSA 3 1 1 data: SHA-256 of the SubjectPublicKeyInfo (RFC 6698 2.1)."""
        pub = openssl("x509", "-noout", "-pubkey", "-in", cert)
        der = openssl("pkey", "-pubin", "-outform", "DER", input=pub)
        return hashlib.sha256(der).hexdigest()

    @staticmethod
    def cert_sha256(cert):
        """TLSA x 0 1 data: SHA-256 of the whole certificate (DER)."""
        return hashlib.sha256(openssl("x509", "-outform", "DER", "-in", cert)).hexdigest()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def submit(server, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as s:
        s.ehlo()
        s.login(ALICE, PASSWORD)
        s.sendmail(ALICE, [rcpt], f"From: <{ALICE}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
                                  f"\r\nHello {subject}\r\n")


class DaneCase(unittest.TestCase):
    """Subclasses set `tlsa` (a function of the Certs and the MX's cert path, giving
    the TLSA values), `secure`, `mx_cert` ("self" | "issued" | None: no STARTTLS)."""

    tlsa = None
    secure = True
    insecure = ()       # (name, type) answered without AD all the same
    mx_cert = "self"
    cert_name = MX
    mx_name = MX        # what the MX record names (an alias of MX in the CNAME cases)

    def setUp(self):
        self.certs = Certs()
        tls_cert = None
        if self.mx_cert == "self":
            tls_cert = self.certs.self_signed("mx", self.cert_name)
        elif self.mx_cert == "issued":
            tls_cert = self.certs.issued("mx", self.cert_name)
        self.mx = FakeMX(tls_cert=tls_cert)
        self.tls_cert = tls_cert
        zone = {"remote.example": [("MX", f"10 {self.mx_name}.")], MX: [("A", "127.0.0.1")]}
        if self.mx_name != MX:
            zone[self.mx_name] = [("CNAME", f"{MX}.")]
        if self.tlsa:
            zone[f"_{self.mx.port}._tcp.{MX}"] = [("TLSA", v) for v in self.tlsa()]
        self.dns = FakeDNS(zone, secure=self.secure, insecure=self.insecure)
        self.server = Server(users=("alice",))
        s = self.server
        s.set_config("outbound", "resolver", f'"{self.dns.address}"')
        s.set_config("outbound", "smtp_port", str(self.mx.port))
        s.set_config("outbound", "retry_base_seconds", "1")
        s.set_config("outbound", "retry_max_seconds", "2")
        s.set_config("outbound", "dane", "true")
        self.metrics_port = free_port()
        metrics_client.enable(s, self.metrics_port)
        s.start()

    def tearDown(self):
        self.server.cleanup()
        self.dns.stop()
        self.mx.stop()
        self.certs.cleanup()

    def queue(self):
        return run_cli("queue", "list", data=self.server.data).stdout

    def dane_count(self, result):
        m = metrics_client.scrape(self.metrics_port)
        return m.get(f'hato_outbound_dane_total{{result="{result}"}}', 0)

    def tls_sessions(self):
        """The TLS-RPT sessions recorded so far (DATA/reports/tls/DAY.jsonl)."""
        folder = os.path.join(self.server.data, "reports", "tls")
        out = []
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            with open(os.path.join(folder, name)) as f:
                out += [json.loads(line) for line in f if line.strip()]
        return out

    def assert_delivered(self, subject, tls):
        submit(self.server, "carol@remote.example", subject)
        wait_for(lambda: self.mx.received_for("carol@remote.example"), what="delivery")
        self.assertEqual(self.mx.tls_sessions > 0, tls)
        wait_for(lambda: "carol@remote.example" not in self.queue(), what="queue empty")

    def assert_deferred(self, subject, reason):
        submit(self.server, "carol@remote.example", subject)
        wait_for(lambda: reason in self.queue(), what=f"deferral with {reason!r}")
        self.assertEqual(self.mx.received_for("carol@remote.example"), [])
        self.assertIn("4.7.5", self.queue())


class MatchTest(DaneCase):
    def tlsa(self):
        return [f"3 1 1 {Certs.spki_sha256(self.tls_cert[0])}"]

    def test_matching_dane_ee_record_delivers_over_tls(self):
        self.assert_delivered("dane-ee", tls=True)
        self.assertEqual(self.dane_count("match"), 1)
        self.assertEqual(self.dane_count("mismatch"), 0)
        # TLS-RPT (RFC 8460 4.3): a successful session under the TLSA policy.
        [session] = wait_for(self.tls_sessions, what="TLS-RPT session")
        self.assertEqual(session["type"], "tlsa")
        self.assertEqual(session["result"], "success")
        self.assertEqual(session["policy"], self.tlsa())


class MismatchTest(DaneCase):
    def tlsa(self):
        other, _ = self.certs.self_signed("other", MX)
        return [f"3 1 1 {Certs.spki_sha256(other)}"]

    def test_mismatching_record_defers(self):
        self.assert_deferred("dane-mismatch", "matches none of its TLSA records")
        # The handshake took place; nothing was sent after it.
        self.assertGreater(self.mx.tls_sessions, 0)
        wait_for(lambda: self.dane_count("mismatch") >= 1, what="mismatch counted")
        self.assertEqual(self.dane_count("match"), 0)
        sessions = wait_for(self.tls_sessions, what="TLS-RPT session")
        self.assertEqual({(x["type"], x["result"]) for x in sessions}, {("tlsa", "tlsa-invalid")})


class DaneTaTest(DaneCase):
    mx_cert = "issued"

    def tlsa(self):
        return [f"2 0 1 {Certs.cert_sha256(self.certs.ca_cert)}"]

    def test_certificate_issued_by_the_published_ca_delivers(self):
        self.assert_delivered("dane-ta", tls=True)
        self.assertEqual(self.dane_count("match"), 1)


class DaneTaWrongNameTest(DaneTaTest):
    """DANE-TA checks the name (RFC 7672 3.2.2): the CA's certificate for another host."""

    cert_name = "other.remote.example"

    def test_certificate_issued_by_the_published_ca_delivers(self):
        self.assert_deferred("dane-ta-name", "matches none of its TLSA records")


class NoTlsaTest(DaneCase):
    """Validated answers, no TLSA record, an MX without STARTTLS: opportunistic."""

    mx_cert = None

    def test_no_tlsa_is_opportunistic(self):
        self.assert_delivered("no-tlsa", tls=False)
        self.assertEqual(self.dane_count("no_tlsa"), 1)


class InsecureTest(MismatchTest):
    """The same mismatching record without the AD bit: not validated, not used."""

    secure = False

    def test_mismatching_record_defers(self):
        self.assert_delivered("insecure", tls=True)
        self.assertEqual(self.dane_count("insecure"), 1)
        self.assertEqual(self.dane_count("mismatch"), 0)


class UnusableTest(DaneCase):
    """Only a PKIX-EE record (usage 1, unusable for SMTP, RFC 7672 3.1.3) and an
    MX without STARTTLS: TLS is still required, so nothing goes in the clear."""

    mx_cert = None

    def tlsa(self):
        return ["1 1 1 " + "00" * 32]

    def test_unusable_records_require_tls(self):
        self.assert_deferred("unusable", "does not offer STARTTLS")
        self.assertGreaterEqual(self.dane_count("unusable"), 1)


class CnameMatchTest(MatchTest):
    """RFC 7672 2.2.2: the MX host is an alias (secure CNAME) of MX; the TLSA
    records are found at the expanded name, the TLSA base domain."""

    mx_name = "alias.remote.example"


class CnameMismatchTest(MismatchTest):
    """The same alias with a record the certificate does not match: deferred
    (the TLSA records of the CNAME target apply, RFC 7672 2.2.2)."""

    mx_name = "alias.remote.example"


class CnameDaneTaTest(DaneTaTest):
    """DANE-TA through the alias: the certificate names the expanded name, the
    TLSA base domain, which is a reference identifier (RFC 7672 3.2.2)."""

    mx_name = "alias.remote.example"


class InsecureAaaaTest(MismatchTest):
    """RFC 7672 2.2.2: the MX host's AAAA answer is not validated (an attacker
    could forge it), so DANE does not apply to the host even though its A and
    TLSA answers are secure: the mismatching record is not used."""

    insecure = ((MX, "AAAA"),)

    def test_mismatching_record_defers(self):
        self.assert_delivered("insecure-aaaa", tls=True)
        self.assertEqual(self.dane_count("insecure"), 1)
        self.assertEqual(self.dane_count("mismatch"), 0)


class ResolverNotOnLoopbackTest(unittest.TestCase):
    def test_serve_refuses_to_start(self):
        s = Server(users=())
        try:
            s.set_config("outbound", "resolver", '"192.0.2.53"')
            s.set_config("outbound", "dane", "true")
            flags = ("--smtp", "--pop3", "--imap", "--imaps", "--pop3s", "--submission",
                     "--submissions", "--http", "--managesieve")
            args = [HATO, "serve", "--data", s.data]
            for flag in flags:
                args += [flag, f"127.0.0.1:{free_port()}"]
            p = subprocess.run(args, capture_output=True, text=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("outbound.dane", p.stdout + p.stderr)
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
