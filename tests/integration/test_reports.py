"""Daily aggregate reports (issue 18, src/reports): TLS-RPT (RFC 8460) about
outbound TLS sessions and DMARC aggregate reports (RFC 7489 7.2) about
inbound mail, recorded as they happen and sent by a forced run (`hato
reports send --today`) to the rua of the domains' _smtp._tls and _dmarc
records, through the outbound queue to a fake MX (fakemx.py), with the
test DNS (fakemx.FakeDNS) publishing the records."""
import email
import gzip
import json
import os
import smtplib
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for

ALICE = f"alice@{DOMAIN}"


def attachment(raw):
    """The report mail's gzip attachment: (content type, filename, bytes)."""
    msg = email.message_from_bytes(raw)
    for part in msg.walk():
        if part.get_filename():
            return part.get_content_type(), part.get_filename(), gzip.decompress(
                part.get_payload(decode=True))
    raise AssertionError("no attachment in " + raw[:500].decode(errors="replace"))


class ReportsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hato-it-reports-")
        cert, key = os.path.join(cls.tmp, "cert.pem"), os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=fake.mx", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        # One MX for every remote domain (outbound.smtp_port is one port),
        # offering STARTTLS with a certificate nobody trusts.
        cls.mx = FakeMX(tls_cert=(cert, key))
        mx = [("MX", "10 mx.fake.example.")]
        cls.dns = FakeDNS({
            "mx.fake.example": [("A", "127.0.0.1")],
            # Opportunistic TLS works: sessions succeed.
            "good.example": mx,
            "_smtp._tls.good.example": [("TXT", "v=TLSRPTv1; rua=mailto:tls@reports.example")],
            # [outbound] tls_policy "verify": the untrusted certificate fails.
            "strict.example": mx,
            "_smtp._tls.strict.example": [("TXT",
                                           "v=TLSRPTv1; rua=mailto:tls@reports.example")],
            # No TLS-RPT record: nothing is sent about it.
            "quiet.example": mx,
            "reports.example": mx,
            # Inbound: sender.example passes DMARC from 127.0.0.1, forged.example fails.
            "sender.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
            "_dmarc.sender.example": [("TXT",
                                       "v=DMARC1; p=reject; rua=mailto:dmarc@reports.example")],
            # RFC 7489 7.1: reports.example agrees to get sender.example's reports...
            "sender.example._report._dmarc.reports.example": [("TXT", "v=DMARC1")],
            # ...but not forged.example's.
            "forged.example": [("TXT", "v=spf1 -all")],
            "_dmarc.forged.example": [("TXT",
                                       "v=DMARC1; p=reject; rua=mailto:dmarc@reports.example")],
        })
        cls.server = Server(users=("alice",))
        s = cls.server
        s.set_config("outbound", "resolver", f'"{cls.dns.address}"')
        s.set_config("outbound", "smtp_port", str(cls.mx.port))
        s.set_config("outbound", "retry_base_seconds", "1")
        s.set_config("outbound", "retry_max_seconds", "2")
        s.set_config("outbound", "mta_sts", "false")
        s.set_config("outbound", "tls_policy", '{ "strict.example" = "verify" }')
        s.set_config("msgauth", "check_loopback", "true")
        s.set_config("reports", "org_name", '"Hato Test"')
        s.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.mx.stop()
        cls.dns.stop()
        import shutil
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def submit(self, rcpt):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as c:
            c.ehlo()
            c.login(ALICE, PASSWORD)
            c.sendmail(ALICE, [rcpt], f"From: <{ALICE}>\r\nTo: <{rcpt}>\r\nSubject: hi\r\n\r\n"
                       "hello\r\n".encode())

    def reports_to(self, rcpt):
        return [m for m in self.mx.received_for(rcpt)]

    def test_tls_and_dmarc_reports(self):
        # Outbound: two sessions to good.example over TLS, one to quiet.example,
        # and strict.example's verification failures (the message stays queued).
        self.submit("a@good.example")
        self.submit("b@good.example")
        self.submit("c@quiet.example")
        self.submit("d@strict.example")
        wait_for(lambda: len(self.mx.received_for("a@good.example")) == 1 and
                 len(self.mx.received_for("b@good.example")) == 1 and
                 len(self.mx.received_for("c@quiet.example")) == 1, what="deliveries")
        wait_for(lambda: "4.7.5" in run_cli("queue", "list", data=self.server.data).stdout,
                 what="strict.example deferred for TLS")
        self.assertEqual(self.mx.received_for("d@strict.example"), [])

        # Inbound: one DMARC pass, one fail (rejected at DATA).
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as c:
            c.ehlo("mail.sender.example")
            c.sendmail("news@sender.example", [ALICE],
                       f"From: <news@sender.example>\r\nTo: <{ALICE}>\r\nSubject: ok\r\n\r\n"
                       "x\r\n".encode())
            with self.assertRaises(smtplib.SMTPDataError) as refused:
                c.sendmail("ceo@forged.example", [ALICE],
                           f"From: <ceo@forged.example>\r\nTo: <{ALICE}>\r\nSubject: pay\r\n\r\n"
                           "x\r\n".encode())
            self.assertEqual(refused.exception.smtp_code, 550)

        # Nothing is sent before the day ends (no forced run yet).
        r = run_cli("reports", "send", data=self.server.data)
        self.assertIn("0 reports queued", r.stdout)

        r = run_cli("reports", "send", "--today", data=self.server.data)
        self.assertIn("3 reports queued", r.stdout, r.stdout)
        self.assertIn("tls-rpt good.example: 2 sessions reported to tls@reports.example", r.stdout)
        self.assertIn("tls-rpt quiet.example: no mailto: or https: rua", r.stdout)
        self.assertIn("dmarc forged.example: <dmarc@reports.example> has no", r.stdout)

        tls = wait_for(lambda: (lambda m: m if len(m) == 2 else None)(
            self.mx.received_for("tls@reports.example")), timeout=30, what="two TLS reports")
        by_domain = {}
        for m in tls:
            msg = email.message_from_bytes(m["data"])
            self.assertEqual(msg.get_content_type(), "multipart/report")
            self.assertEqual(msg.get_param("report-type"), "tlsrpt")
            self.assertIn("DKIM-Signature", msg)
            self.assertEqual(m["mail_from"], f"postmaster@{DOMAIN}")
            ctype, filename, body = attachment(m["data"])
            self.assertEqual(ctype, "application/tlsrpt+gzip")
            domain = msg["TLS-Report-Domain"]
            self.assertTrue(filename.startswith(f"mail.{DOMAIN}!{domain}!"), filename)
            self.assertTrue(filename.endswith(".json.gz"), filename)
            self.assertIn(f"Report Domain: {domain}", msg["Subject"])
            by_domain[domain] = json.loads(body)
        self.assertEqual(sorted(by_domain), ["good.example", "strict.example"])
        good = by_domain["good.example"]
        self.assertEqual(good["organization-name"], "Hato Test")
        self.assertEqual(good["contact-info"], f"postmaster@{DOMAIN}")
        [p] = good["policies"]
        self.assertEqual(p["policy"]["policy-type"], "no-policy-found")
        self.assertEqual(p["summary"], {"total-successful-session-count": 2,
                                        "total-failure-session-count": 0})
        [p] = by_domain["strict.example"]["policies"]
        self.assertEqual(p["summary"]["total-successful-session-count"], 0)
        self.assertGreaterEqual(p["summary"]["total-failure-session-count"], 1)
        self.assertEqual(p["failure-details"][0]["result-type"], "validation-failure")
        self.assertEqual(p["failure-details"][0]["receiving-mx-hostname"], "mx.fake.example")
        self.assertEqual(p["failure-details"][0]["receiving-ip"], "127.0.0.1")

        [d] = wait_for(lambda: self.mx.received_for("dmarc@reports.example"), timeout=30,
                       what="the DMARC report")
        msg = email.message_from_bytes(d["data"])
        self.assertIn("Report Domain: sender.example Submitter: Hato Test", msg["Subject"])
        ctype, filename, body = attachment(d["data"])
        self.assertEqual(ctype, "application/gzip")
        self.assertTrue(filename.endswith(".xml.gz"), filename)
        root = ET.fromstring(body)
        self.assertEqual(root.findtext("report_metadata/org_name"), "Hato Test")
        self.assertEqual(root.findtext("policy_published/domain"), "sender.example")
        self.assertEqual(root.findtext("policy_published/p"), "reject")
        [rec] = root.findall("record")
        self.assertEqual(rec.findtext("row/source_ip"), "127.0.0.1")
        self.assertEqual(rec.findtext("row/count"), "1")
        self.assertEqual(rec.findtext("row/policy_evaluated/disposition"), "none")
        self.assertEqual(rec.findtext("row/policy_evaluated/spf"), "pass")
        self.assertEqual(rec.findtext("identifiers/header_from"), "sender.example")
        self.assertEqual(rec.findtext("auth_results/spf/result"), "pass")

        # A day is reported once: a second run sends nothing more.
        r = run_cli("reports", "send", data=self.server.data)
        self.assertIn("0 reports queued", r.stdout)
        self.assertTrue(any(n.endswith(".sent") for n in
                            os.listdir(os.path.join(self.server.data, "reports", "tls"))))


class ReportSink:
    """HTTPS on 127.0.0.1 for tlsrpt.sink.example (a self-signed certificate,
    given to Hato as outbound.tls_ca_file): POSTs are kept; /tlsrpt is
    answered 201, /moved a 307 redirect to /tlsrpt, /flaky 503 the first
    time and 201 after, anything else 500."""

    def __init__(self, tmp):
        import http.server
        import ssl
        import threading
        from harness import free_port
        self.cert = os.path.join(tmp, "sink-cert.pem")
        self.key = key = os.path.join(tmp, "sink-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=tlsrpt.sink.example",
                        "-addext", "subjectAltName=DNS:tlsrpt.sink.example",
                        "-keyout", key, "-out", self.cert], check=True, capture_output=True)
        self.posts = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                outer.posts.append({"path": self.path, "type": self.headers.get("Content-Type"),
                                    "host": self.headers.get("Host"),
                                    "body": self.rfile.read(n)})
                if self.path == "/moved":
                    self.send_response(307)
                    self.send_header("Location", "/tlsrpt")
                elif self.path == "/flaky":
                    # Fails the first attempt only.
                    flaky = [p for p in outer.posts if p["path"] == "/flaky"]
                    self.send_response(503 if len(flaky) == 1 else 201)
                else:
                    self.send_response(201 if self.path == "/tlsrpt" else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

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


def base_url(sink):
    return f"https://tlsrpt.sink.example:{sink.port}"


class HttpsRuaCase(unittest.TestCase):
    RUA = ("/tlsrpt", "/broken", "/moved")
    POST_RETRY_SECONDS = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hato-it-reports-https-")
        self.sink = ReportSink(self.tmp)
        # STARTTLS offered (opportunistic): the session is a successful one.
        self.mx = FakeMX(tls_cert=(self.sink.cert, self.sink.key))
        base = f"https://tlsrpt.sink.example:{self.sink.port}"
        mx = [("MX", "10 mx.fake.example.")]
        self.dns = FakeDNS({
            "mx.fake.example": [("A", "127.0.0.1")],
            "tlsrpt.sink.example": [("A", "127.0.0.1")],
            "posted.example": mx,
            # One URL that takes the report, one that fails (500), one that
            # redirects (not followed: the HTTPS client follows none unless asked).
            "_smtp._tls.posted.example": [
                ("TXT", "v=TLSRPTv1; rua=" + ",".join(base + p for p in self.RUA))],
        })
        self.server = Server(users=("alice",))
        s = self.server
        s.set_config("outbound", "resolver", f'"{self.dns.address}"')
        s.set_config("outbound", "smtp_port", str(self.mx.port))
        s.set_config("outbound", "mta_sts", "false")
        s.set_config("outbound", "tls_ca_file", f'"{self.sink.cert}"')
        if self.POST_RETRY_SECONDS:
            s.set_config("reports", "post_retry_seconds", str(self.POST_RETRY_SECONDS))
        s.start()

    def tearDown(self):
        self.server.cleanup()
        self.mx.stop()
        self.sink.stop()
        self.dns.stop()
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def send_one(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as c:
            c.ehlo()
            c.login(ALICE, PASSWORD)
            c.sendmail(ALICE, ["a@posted.example"],
                       f"From: <{ALICE}>\r\nTo: <a@posted.example>\r\nSubject: hi\r\n\r\n"
                       "hello\r\n".encode())
        wait_for(lambda: len(self.mx.received_for("a@posted.example")) == 1, what="delivery")


class HttpsRuaTest(HttpsRuaCase):
    """RFC 8460 5.3.2: a TLS-RPT rua of https: gets the gzipped JSON report
    POSTed as application/tlsrpt+gzip over verified TLS (src/http/client.h)."""

    def test_report_posted_to_https_rua(self):
        self.send_one()
        r = run_cli("reports", "send", "--today", data=self.server.data)
        self.assertIn("0 reports queued, 1 posted", r.stdout, r.stdout)
        self.assertIn(f"tls-rpt posted.example: 1 sessions posted to https://tlsrpt.sink.example:"
                      f"{self.sink.port}/tlsrpt", r.stdout)
        self.assertIn("not posted to", r.stdout)
        self.assertIn("HTTP 500", r.stdout)
        self.assertIn(f"not posted to {base_url(self.sink)}/moved: HTTP 307", r.stdout)
        self.assertEqual(sorted(p["path"] for p in self.sink.posts),
                         ["/broken", "/moved", "/tlsrpt"])
        ok = [p for p in self.sink.posts if p["path"] == "/tlsrpt"]
        self.assertEqual(len(ok), 1, self.sink.posts)
        self.assertEqual(ok[0]["type"], "application/tlsrpt+gzip")
        self.assertEqual(ok[0]["host"], f"tlsrpt.sink.example:{self.sink.port}")
        report = json.loads(gzip.decompress(ok[0]["body"]))
        [p] = report["policies"]
        self.assertEqual(p["policy"]["policy-domain"], "posted.example")
        self.assertEqual(p["summary"], {"total-successful-session-count": 1,
                                        "total-failure-session-count": 0})
        self.assertEqual(report["contact-info"], f"postmaster@{DOMAIN}")
        # Nothing went by mail: the rua has no mailto:.
        self.assertEqual(self.mx.received_for("tls@reports.example"), [])


class HttpsRuaRetryTest(HttpsRuaCase):
    """RFC 8460 5.3: a POST that fails for a reason that may pass (503) is
    posted again after [reports] post_retry_seconds, once; a redirect is not
    retried."""
    RUA = ("/flaky", "/moved")
    POST_RETRY_SECONDS = 2

    def test_failed_post_is_retried_after_the_backoff(self):
        self.send_one()
        r = run_cli("reports", "send", "--today", data=self.server.data)
        self.assertIn("0 reports queued, 0 posted", r.stdout, r.stdout)
        self.assertIn(f"not posted to {base_url(self.sink)}/flaky: HTTP 503", r.stdout)
        self.assertIn(f"{base_url(self.sink)}/flaky tried again in 2 s (attempt 1 of 6)",
                      r.stdout)
        self.assertNotIn("/moved tried again", r.stdout)
        first = [p["body"] for p in self.sink.posts if p["path"] == "/flaky"]
        self.assertEqual(len(first), 1)
        # Not before it is due.
        r = run_cli("reports", "send", data=self.server.data)
        self.assertIn("0 posted", r.stdout, r.stdout)
        self.assertEqual(len(self.sink.posts), 2)
        time.sleep(2.2)
        r = run_cli("reports", "send", data=self.server.data)
        self.assertIn("1 posted", r.stdout, r.stdout)
        self.assertIn(f"1 sessions posted to {base_url(self.sink)}/flaky", r.stdout)
        flaky = [p for p in self.sink.posts if p["path"] == "/flaky"]
        self.assertEqual(len(flaky), 2)
        self.assertEqual(flaky[1]["body"], first[0])
        self.assertEqual(flaky[1]["type"], "application/tlsrpt+gzip")
        # Posted once: nothing waits any more, the redirect was never retried.
        time.sleep(2.2)
        r = run_cli("reports", "send", data=self.server.data)
        self.assertIn("0 posted", r.stdout, r.stdout)
        self.assertEqual(sorted(p["path"] for p in self.sink.posts),
                         ["/flaky", "/flaky", "/moved"])
        self.assertEqual(os.listdir(os.path.join(self.server.data, "reports", "posts")), [])


class DmarcFailureTest(unittest.TestCase):
    """RFC 7489 7.3: with [reports] dmarc_failure on, a message a domain's
    fo= asks about gets one AFRF report (RFC 6591) to its ruf=, through the
    outbound queue to the fake MX; fo=0/1/d/s decide which; at most
    dmarc_failure_per_hour reports per From domain."""

    RUF = "ruf@reports.example"

    def setUp(self):
        import base64
        self.mx = FakeMX()
        mx = [("MX", "10 mx.fake.example.")]
        ruf = f"ruf=mailto:{self.RUF}"
        passes = [("TXT", "v=spf1 ip4:127.0.0.1 -all")]
        fails = [("TXT", "v=spf1 -all")]
        zone = {
            "mx.fake.example": [("A", "127.0.0.1")],
            "reports.example": mx,
            # fo absent (0): only a DMARC failure is reported.
            "fo0.example": fails,
            "_dmarc.fo0.example": [("TXT", f"v=DMARC1; p=reject; {ruf}")],
            "pass0.example": passes,
            "_dmarc.pass0.example": [("TXT", f"v=DMARC1; p=reject; {ruf}")],
            # fo=1: aligned SPF passes but there is no aligned DKIM pass.
            "fo1.example": passes,
            "_dmarc.fo1.example": [("TXT", f"v=DMARC1; p=none; {ruf}; fo=1")],
            # fo=s: SPF failed.
            "fos.example": fails,
            "_dmarc.fos.example": [("TXT", f"v=DMARC1; p=none; {ruf}; fo=s")],
            # fo=d: only a failing DKIM signature; an SPF failure alone is not.
            "fod.example": fails,
            "_dmarc.fod.example": [("TXT", f"v=DMARC1; p=none; {ruf}; fo=d")],
            "sel._domainkey.fod.example": [
                ("TXT", "v=DKIM1; k=ed25519; p=" + base64.b64encode(b"\x01" * 32).decode())],
            # No ruf: never a failure report.
            "noruf.example": fails,
            "_dmarc.noruf.example": [("TXT", "v=DMARC1; p=none; rua=mailto:x@reports.example")],
            # The hourly limit (2 here).
            "many.example": fails,
            "_dmarc.many.example": [("TXT", f"v=DMARC1; p=none; {ruf}")],
        }
        # RFC 7489 7.1: reports.example takes every one of these domains' reports.
        for d in ("fo0", "pass0", "fo1", "fos", "fod", "many"):
            zone[f"{d}.example._report._dmarc.reports.example"] = [("TXT", "v=DMARC1")]
        self.dns = FakeDNS(zone)
        self.server = Server(users=("alice",))
        s = self.server
        s.set_config("outbound", "resolver", f'"{self.dns.address}"')
        s.set_config("outbound", "smtp_port", str(self.mx.port))
        s.set_config("outbound", "mta_sts", "false")
        s.set_config("outbound", "retry_base_seconds", "1")
        s.set_config("msgauth", "check_loopback", "true")
        s.set_config("reports", "dmarc_failure", "true")
        s.set_config("reports", "dmarc_failure_per_hour", "2")
        s.start()

    def tearDown(self):
        self.server.cleanup()
        self.mx.stop()
        self.dns.stop()

    def send(self, domain, extra=""):
        sender = f"news@{domain}"
        msg = (f"{extra}From: <{sender}>\r\nTo: <{ALICE}>\r\nSubject: from {domain}\r\n"
               f"Message-ID: <{domain}.1@{domain}>\r\n\r\nbody of {domain}\r\n")
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as c:
            c.ehlo(f"mail.{domain}")
            try:
                c.sendmail(sender, [ALICE], msg.encode())
            except smtplib.SMTPDataError:
                pass  # p=reject refuses it; the report is sent all the same

    def reports(self):
        out = {}
        for m in self.mx.received_for(self.RUF):
            msg = email.message_from_bytes(m["data"])
            self.assertEqual(msg.get_content_type(), "multipart/report")
            self.assertEqual(msg.get_param("report-type"), "feedback-report")
            parts = {p.get_content_type(): p for p in msg.walk()}
            fb = parts["message/feedback-report"].get_payload()
            # Python parses message/* as a list of one message of fields.
            fields = fb[0] if isinstance(fb, list) else email.message_from_string(fb)
            headers = parts["text/rfc822-headers"].get_payload(decode=True) or \
                parts["text/rfc822-headers"].get_payload().encode()
            out.setdefault(fields["Reported-Domain"], []).append((fields, headers, msg))
        return out

    def test_fo_options_and_limit(self):
        bad_sig = ("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=fod.example;"
                   " s=sel; h=from:to:subject; bh=" + "A" * 43 + "=; b=" + "A" * 86 + "==\r\n")
        self.send("fo0.example")             # DMARC fails: reported (fo=0)
        self.send("pass0.example")           # DMARC passes: no report under fo=0
        self.send("fo1.example")             # passes by SPF, no DKIM: reported (fo=1)
        self.send("fos.example")             # SPF fails: reported (fo=s)
        self.send("fod.example")             # SPF fails, no signature: not under fo=d
        self.send("fod.example", bad_sig)    # a signature fails: reported (fo=d)
        self.send("noruf.example")           # no ruf=: nothing
        for _ in range(3):
            self.send("many.example")        # 3 failures, 2 reports (the limit)
        want = {"fo0.example": 1, "fo1.example": 1, "fos.example": 1, "fod.example": 1,
                "many.example": 2}
        got = wait_for(lambda: (lambda r: r if {d: len(v) for d, v in r.items()} == want
                                else None)(self.reports()), timeout=30,
                       what="the failure reports")
        self.assertEqual(self.mx.received_for("x@reports.example"), [])

        [(f, headers, msg)] = got["fo0.example"]
        self.assertEqual(f["Feedback-Type"], "auth-failure")
        self.assertEqual(f["Auth-Failure"], "dmarc")
        self.assertEqual(f["Version"], "1")
        self.assertEqual(f["Source-IP"], "127.0.0.1")
        self.assertEqual(f["Original-Mail-From"], "<news@fo0.example>")
        self.assertEqual(f["Identity-Alignment"], "none")
        self.assertEqual(f["Delivery-Result"], "reject")
        self.assertIn("dmarc=fail", f["Authentication-Results"])
        self.assertIn(b"Subject: from fo0.example", headers)
        self.assertNotIn(b"body of fo0.example", msg.as_bytes())  # headers only
        self.assertIn("DKIM-Signature", msg)

        [(f, _, _)] = got["fo1.example"]
        self.assertEqual(f["Auth-Failure"], "dmarc")
        self.assertEqual(f["Identity-Alignment"], "spf")
        self.assertEqual(f["Delivery-Result"], "delivered")
        [(f, _, _)] = got["fos.example"]
        self.assertEqual(f["Auth-Failure"], "spf")
        [(f, headers, _)] = got["fod.example"]
        self.assertEqual(f["Auth-Failure"], "signature")
        self.assertEqual(f["DKIM-Domain"], "fod.example")
        self.assertIn(b"DKIM-Signature", headers)

        # The hour's counts survive a restart: many.example stays at its 2,
        # fos.example (1 of 2) still gets one. Checked only within one clock hour.
        hour = int(time.time()) // 3600
        self.server.stop()
        self.server.start()
        self.send("many.example")
        self.send("fos.example")
        got = wait_for(lambda: (lambda r: r if len(r.get("fos.example", [])) == 2 else None)(
            self.reports()), timeout=30, what="the second fos.example report")
        if int(time.time()) // 3600 == hour:
            self.assertEqual(len(got["many.example"]), 2)


if __name__ == "__main__":
    unittest.main()
