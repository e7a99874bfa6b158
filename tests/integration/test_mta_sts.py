"""MTA-STS (RFC 8461; src/outbound/mta_sts.h), end to end: a sending Hato
delivers to remote.example, whose MX is a second Hato (STARTTLS with a
certificate for mx.remote.example) and whose policy is served over HTTPS by
a small server here (certificate for mta-sts.remote.example); the test DNS
publishes _mta-sts.remote.example. Both certificates are trusted through
outbound.tls_ca_file.

  * enforce, MX named by the policy: delivered over verified TLS;
  * enforce, the DNS answers an MX the policy does not name (an attacker's):
    nothing is sent, the message stays queued with 4.7.5 MTA-STS;
  * enforce, the MX certificate is not trusted: 4.7.5, nothing sent, although
    without a policy the same delivery would go out opportunistically;
  * testing: the unnamed MX still gets the mail (and the log says so);
  * a policy served with a redirect is ignored (no policy).
"""
import http.server
import os
import poplib
import smtplib
import ssl
import subprocess
import tempfile
import threading
import unittest

from fakemx import FakeDNS
from harness import DOMAIN, PASSWORD, Server, free_port, run_cli, wait_for

ALICE = f"alice@{DOMAIN}"
CAROL = "carol@remote.example"
MSG = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nHello %s\r\n"


class PolicyServer:
    """HTTPS on 127.0.0.1 for mta-sts.remote.example, answering `policy` (or a
    redirect) at /.well-known/mta-sts.txt."""

    def __init__(self, policy, redirect=False):
        self.dir = tempfile.mkdtemp(prefix="hato-it-sts-")
        self.cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=mta-sts.remote.example",
                        "-addext", "subjectAltName=DNS:mta-sts.remote.example",
                        "-keyout", key, "-out", self.cert], check=True, capture_output=True)
        self.fetches = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                if redirect:
                    self.send_response(301)
                    self.send_header("Location", "https://elsewhere.example/mta-sts.txt")
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    return
                if self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                    return
                body = policy.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class StsCase(unittest.TestCase):
    mode = "enforce"
    dns_mx = "mx.remote.example"   # what the (possibly forged) DNS answers
    trust_mx = True
    redirect = False

    def setUp(self):
        self.remote_data = tempfile.mkdtemp(prefix="hato-it-remote-")
        run_cli("init", "--domain", "remote.example", "--hostname", "mx.remote.example",
                data=self.remote_data)
        run_cli("user", "add", CAROL, "--password-stdin", data=self.remote_data,
                input=PASSWORD + "\n")
        self.remote = Server(data=self.remote_data)
        self.remote.start()
        self.policy = PolicyServer(
            f"version: STSv1\nmode: {self.mode}\nmx: mx.remote.example\nmax_age: 86400\n",
            redirect=self.redirect)
        self.dns = FakeDNS({
            "remote.example": [("MX", f"10 {self.dns_mx}.")],
            self.dns_mx: [("A", "127.0.0.1")],
            "mx.remote.example": [("A", "127.0.0.1")],
            "mta-sts.remote.example": [("A", "127.0.0.1")],
            "_mta-sts.remote.example": [("TXT", "v=STSv1; id=20261202T1;")],
        })
        ca = os.path.join(self.remote_data, "ca.pem")
        with open(ca, "w") as f:
            f.write(open(self.policy.cert).read())
            if self.trust_mx:
                f.write(open(os.path.join(self.remote_data, "tls", "cert.pem")).read())
        self.sender = Server(users=("alice",))
        s = self.sender
        s.set_config("outbound", "resolver", f'"{self.dns.address}"')
        s.set_config("outbound", "smtp_port", str(self.remote.smtp_port))
        s.set_config("outbound", "mta_sts_port", str(self.policy.port))
        s.set_config("outbound", "tls_ca_file", f'"{ca}"')
        s.set_config("outbound", "retry_base_seconds", "1")
        s.set_config("outbound", "retry_max_seconds", "2")
        s.start()

    def tearDown(self):
        self.sender.cleanup()
        self.remote.owns_data = True
        self.remote.cleanup()
        self.policy.stop()
        self.dns.stop()

    def submit(self, subject):
        with smtplib.SMTP("127.0.0.1", self.sender.submission_port, timeout=10) as c:
            c.ehlo()
            c.login(ALICE, PASSWORD)
            c.sendmail(ALICE, [CAROL], MSG % (ALICE, CAROL, subject, subject))

    def queue(self):
        return run_cli("queue", "list", data=self.sender.data).stdout

    def carol_messages(self):
        p = poplib.POP3("127.0.0.1", self.remote.pop3_port, timeout=10)
        try:
            p.user(CAROL)
            p.pass_(PASSWORD)
            return [b"\r\n".join(p.retr(i + 1)[1]) for i in range(len(p.list()[1]))]
        finally:
            p.quit()


class EnforceTest(StsCase):
    def test_delivered_over_verified_tls(self):
        self.submit("enforced")
        [msg] = wait_for(self.carol_messages, what="delivery")
        self.assertIn(b"ESMTPS", msg)
        self.assertGreaterEqual(self.policy.fetches, 1)
        self.assertIn("MTA-STS policy of remote.example", self.sender.logs())


class ForgedMxTest(StsCase):
    dns_mx = "evil.remote.example"

    def test_unnamed_mx_gets_nothing(self):
        self.submit("forged-mx")
        wait_for(lambda: "MTA-STS" in self.queue(), what="MTA-STS deferral")
        self.assertIn("4.7.5", self.queue())
        self.assertEqual(self.carol_messages(), [])


class UntrustedMxTest(StsCase):
    trust_mx = False

    def test_untrusted_certificate_gets_nothing(self):
        self.submit("untrusted")
        wait_for(lambda: "4.7.5" in self.queue(), what="4.7.5 deferral")
        self.assertEqual(self.carol_messages(), [])


class TestingModeTest(StsCase):
    mode = "testing"
    dns_mx = "evil.remote.example"

    def test_testing_mode_only_logs(self):
        self.submit("testing")
        wait_for(self.carol_messages, what="delivery")
        self.assertIn("does not name 1 of its 1 MX targets", self.sender.logs())


class RedirectTest(StsCase):
    redirect = True
    dns_mx = "evil.remote.example"

    def test_redirected_policy_is_no_policy(self):
        self.submit("redirect")
        wait_for(self.carol_messages, what="delivery")
        self.assertIn("not fetched", self.sender.logs())


if __name__ == "__main__":
    unittest.main()
