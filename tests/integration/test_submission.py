"""Submission (RFC 6409, RFC 8314) and outbound delivery, end to end on loopback.

A real `hato serve` takes mail from smtplib on its submission ports and
delivers it to a fake MX found through a fake DNS server (fakemx.py), or to a
relay host; failures come back to the sender as DSNs (RFC 3464) in her INBOX.
"""
import email
import imaplib
import poplib
import re
import smtplib
import ssl
import threading
import time
import unittest

from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, PASSWORD, Server, free_port, run_cli, wait_for

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
MSG = "From: Alice <%s>\r\nTo: carol@remote.example\r\nSubject: %s\r\n\r\nHello %s.\r\n"


def inbox(server, user):
    """Every message in the user's INBOX, as email.message.Message."""
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
    try:
        p.user(user)
        p.pass_(PASSWORD)
        n = len(p.list()[1])
        return [email.message_from_bytes(b"\r\n".join(p.retr(i + 1)[1])) for i in range(n)]
    finally:
        p.quit()


def dsn_fields(msg):
    """The per-recipient fields of a DSN's message/delivery-status part, lower-cased keys."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            out = {}
            for block in part.get_payload():
                for k, v in block.items():
                    out[k.lower()] = v
            return out
    raise AssertionError("no message/delivery-status part")


def dsn_recipients(msg):
    """One dict (lower-cased keys) per recipient block of a DSN."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()[1:]
            return [{k.lower(): v for k, v in b.items()} for b in blocks]
    raise AssertionError("no message/delivery-status part")


def submit(server, rcpts, subject="test", sender=ALICE, port=None, login=None, **kw):
    with smtplib.SMTP("127.0.0.1", port or server.submission_port, timeout=10) as s:
        s.ehlo()
        s.login(login or sender, PASSWORD)
        return s.sendmail(sender, rcpts, MSG % (sender, subject, subject), **kw)


class Base(unittest.TestCase):
    """A server whose remote destinations are remote.example (MX on the fake MX)."""

    zone_extra = {}

    def setUp(self):
        self.mx = FakeMX()
        zone = {"remote.example": [("MX", "10 mx.remote.example.")],
                "mx.remote.example": [("A", "127.0.0.1")]}
        zone.update(self.zone_extra)
        self.dns = FakeDNS(zone)
        self.server = Server(users=("alice", "bob"))
        self.server.set_config("outbound", "resolver", f'"{self.dns.address}"')
        self.server.set_config("outbound", "smtp_port", str(self.mx.port))
        self.server.set_config("outbound", "retry_base_seconds", "1")
        self.server.set_config("outbound", "retry_max_seconds", "2")
        self.configure()
        self.server.start()

    def configure(self):
        pass

    def tearDown(self):
        self.server.cleanup()
        self.mx.stop()
        self.dns.stop()

    def queue_list(self):
        return run_cli("queue", "list", data=self.server.data).stdout


class SubmissionTest(Base):
    def test_auth_required_before_mail(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            self.assertIn("PLAIN", s.esmtp_features["auth"])  # loopback: allowed without TLS
            self.assertIn("dsn", s.esmtp_features)
            code, text = s.mail(ALICE)
            self.assertEqual(code, 530)
            with self.assertRaises(smtplib.SMTPAuthenticationError) as ctx:
                s.login(ALICE, "wrong password")
            self.assertEqual(ctx.exception.smtp_code, 535)
            s.login(ALICE, PASSWORD)
            self.assertEqual(s.mail(ALICE)[0], 250)

    def test_auth_login_mechanism(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.user, s.password = ALICE, PASSWORD
            code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
            self.assertEqual(code, 235)

    def test_mx_port_has_no_auth_and_no_relay(self):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo()
            self.assertNotIn("auth", s.esmtp_features)
            self.assertEqual(s.docmd("AUTH PLAIN AGFsaWNlAHB3")[0], 503)
            s.mail("x@remote.example")
            self.assertEqual(s.rcpt("carol@remote.example")[0], 554)
            s.rset()
            self.assertEqual(s.mail("x@remote.example", ["RET=HDRS"])[0], 555)

    def test_sender_must_be_owned(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.login(ALICE, PASSWORD)
            code, text = s.mail(BOB)
            self.assertEqual(code, 550)
            self.assertIn(b"5.7.1", text)
            self.assertEqual(s.mail("<>".strip("<>"))[0], 550)
            self.assertEqual(s.mail(ALICE.upper())[0], 250)  # case-insensitive ownership

    def test_implicit_tls_and_local_delivery_adds_message_id_and_date(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP_SSL("127.0.0.1", self.server.submissions_port, timeout=10,
                              context=ctx) as s:
            s.login(ALICE, PASSWORD)
            s.sendmail(ALICE, [BOB], "Subject: local\r\n\r\nfor bob\r\n")
        msgs = inbox(self.server, BOB)
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertEqual(m["Subject"], "local")
        self.assertTrue(m["Message-ID"].endswith("@mail.example.test>"), m["Message-ID"])
        self.assertTrue(m["Date"])
        self.assertIn("ESMTPSA", m["Received"])  # RFC 3848: TLS and authenticated
        self.assertIn("queue is empty", self.queue_list())  # nothing remote was queued

    def test_plaintext_auth_needs_tls_when_not_allowed_on_loopback(self):
        self.server.set_config("auth", "allow_plaintext_on_loopback", "false")
        self.server.stop()
        self.server.start()
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            self.assertNotIn("auth", s.esmtp_features)
            self.assertEqual(s.docmd("AUTH PLAIN AGFsaWNlAHB3")[0], 538)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s.starttls(context=ctx)
            s.ehlo()
            self.assertIn("PLAIN", s.esmtp_features["auth"])
            s.login(ALICE, PASSWORD)
            self.assertEqual(s.mail(ALICE)[0], 250)

    def test_sending_limit_per_hour(self):
        self.server.set_config("submission", "max_messages_per_hour", "2")
        self.server.stop()
        self.server.start()
        submit(self.server, [BOB], "one")
        submit(self.server, [BOB], "two")
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.login(ALICE, PASSWORD)
            code, text = s.mail(ALICE)
            self.assertEqual(code, 451)
            self.assertIn(b"4.7.1", text)
        # Bob has his own allowance.
        submit(self.server, [ALICE], "from bob", sender=BOB)
        self.assertEqual(len(inbox(self.server, BOB)), 2)


class AliasTest(Base):
    """Aliases (hato alias): mail to an alias reaches its account, which may send as it."""

    def configure(self):
        run_cli("domain", "add", "other.test", data=self.server.data)
        run_cli("alias", "add", "sales@example.test", ALICE, data=self.server.data)
        run_cli("alias", "add", "help@example.test", BOB, data=self.server.data)

    def test_mail_to_alias_arrives_in_target_inbox(self):
        # Added while the server runs: no restart needed.
        run_cli("alias", "add", "Alice.Smith@Other.test", ALICE, data=self.server.data)
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo()
            s.mail("zoe@remote.example")
            self.assertEqual(s.rcpt("SALES@example.test")[0], 250)
            self.assertEqual(s.rcpt("alice.smith@other.test")[0], 250)
            code, text = s.rcpt("nobody@example.test")
            self.assertEqual(code, 550)
            self.assertIn(b"5.1.1", text)
            s.data("From: zoe@remote.example\r\nSubject: to an alias\r\n\r\nhi\r\n")
        msgs = inbox(self.server, ALICE)
        # Two aliases of one account in one transaction: one copy.
        self.assertEqual([m["Subject"] for m in msgs], ["to an alias"])
        self.assertEqual(inbox(self.server, BOB), [])
        # IMAP sees it too.
        im = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=10)
        try:
            im.login(ALICE, PASSWORD)
            im.select("INBOX")
            typ, data = im.search(None, "SUBJECT", '"to an alias"')
            self.assertEqual(typ, "OK")
            self.assertEqual(len(data[0].split()), 1)
        finally:
            im.logout()
        # Aliases do not log in.
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        p.user("sales@example.test")
        with self.assertRaises(poplib.error_proto):
            p.pass_(PASSWORD)
        p.close()
        # Once removed, the alias is unknown again.
        run_cli("alias", "remove", "sales@example.test", data=self.server.data)
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo()
            s.mail("zoe@remote.example")
            self.assertEqual(s.rcpt("sales@example.test")[0], 550)

    def test_submission_as_own_alias_only(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.login(ALICE, PASSWORD)
            self.assertEqual(s.mail("Sales@Example.test")[0], 250)
            s.rset()
            for other in ("help@example.test", BOB, "nobody@example.test", "x@remote.example"):
                code, text = s.mail(other)
                self.assertEqual(code, 550, other)
                self.assertIn(b"5.7.1", text)
        submit(self.server, ["carol@remote.example", BOB], "as alias", sender="sales@example.test",
               login=ALICE)
        got = wait_for(lambda: self.mx.received_for("carol@remote.example"), what="delivery")
        self.assertEqual(got[0]["mail_from"], "sales@example.test")
        self.assertEqual([m["Subject"] for m in inbox(self.server, BOB)], ["as alias"])
        self.assertIn("<sales@example.test>", inbox(self.server, BOB)[0]["Return-Path"])

    def test_report_to_an_alias_sender_reaches_its_account(self):
        self.mx.rcpt_replies["nobody@remote.example"] = "550 5.1.1 no such user"
        submit(self.server, ["nobody@remote.example"], "bounce", sender="sales@example.test",
               login=ALICE)
        msgs = wait_for(lambda: inbox(self.server, ALICE), what="DSN")
        self.assertEqual(msgs[0].get_content_type(), "multipart/report")
        self.assertEqual(dsn_fields(msgs[0])["action"], "failed")

    def test_removed_account_disables_its_aliases(self):
        run_cli("user", "remove", BOB, data=self.server.data)
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo()
            s.mail("zoe@remote.example")
            self.assertEqual(s.rcpt("help@example.test")[0], 550)
        run_cli("user", "restore", BOB, data=self.server.data)
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo()
            s.mail("zoe@remote.example")
            self.assertEqual(s.rcpt("help@example.test")[0], 250)


class DeliveryTest(Base):
    zone_extra = {
        "xn--bcher-kva.example": [("MX", "10 mx.remote.example.")],
        "nomx.example": [("A", "127.0.0.1")],  # no MX: implicit MX (RFC 5321 5.1)
        "nullmx.example": [("MX", "0 .")],      # RFC 7505
    }

    def test_remote_and_local_recipients_in_one_submission(self):
        submit(self.server, ["carol@remote.example", BOB], "mixed")
        got = wait_for(lambda: self.mx.received_for("carol@remote.example"), what="delivery")
        self.assertEqual(got[0]["mail_from"], ALICE)
        self.assertIn(b"Subject: mixed", got[0]["data"])
        self.assertIn(b"Message-ID: <", got[0]["data"])
        self.assertNotIn(b"Return-Path", got[0]["data"])
        self.assertEqual(len(inbox(self.server, BOB)), 1)
        wait_for(lambda: "queue is empty" in self.queue_list(), what="empty queue")
        self.assertIn(("remote.example", "MX"), self.dns.queries)

    def test_implicit_mx_and_idna_domain(self):
        submit(self.server, ["dave@nomx.example"], "implicit")
        wait_for(lambda: self.mx.received_for("dave@nomx.example"), what="implicit MX delivery")
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.login(ALICE, PASSWORD)
            s.mail(ALICE, ["SMTPUTF8"])
            self.assertEqual(s.rcpt("erin@bücher.example")[0], 250)
            self.assertEqual(s.data(b"Subject: idna\r\n\r\nx\r\n")[0], 250)
        # The envelope carries the A-label (RFC 5890); DNS was asked for it.
        wait_for(lambda: self.mx.received_for("erin@xn--bcher-kva.example"), what="IDNA delivery")
        self.assertIn(("xn--bcher-kva.example", "MX"), self.dns.queries)

    def test_permanent_failure_returns_a_dsn(self):
        self.mx.rcpt_replies["nobody@remote.example"] = "550 5.1.1 <nobody@remote.example>: no such user"
        submit(self.server, ["nobody@remote.example", "carol@remote.example"], "bounce me")
        wait_for(lambda: self.mx.received_for("carol@remote.example"), what="delivery")
        msgs = wait_for(lambda: inbox(self.server, ALICE), what="DSN")
        self.assertEqual(len(msgs), 1)
        dsn = msgs[0]
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        f = dsn_fields(dsn)
        self.assertEqual(f["action"], "failed")
        self.assertEqual(f["status"], "5.1.1")
        self.assertIn("nobody@remote.example", f["final-recipient"])
        self.assertIn("550 5.1.1", f["diagnostic-code"])
        original = [p for p in dsn.walk() if p.get_content_type() == "message/rfc822"]
        self.assertEqual(len(original), 1)
        self.assertIn("bounce me", original[0].as_string())
        wait_for(lambda: "queue is empty" in self.queue_list(), what="empty queue")
        # Only the failed recipient was reported.
        self.assertNotIn("carol@remote.example", str(f))

    def test_null_mx_and_unknown_domain_fail_at_once(self):
        submit(self.server, ["x@nullmx.example", "y@nxdomain.example"], "nowhere")
        # Reported as soon as each lookup failed (in one report or two).
        def reported():
            return [r for m in inbox(self.server, ALICE) for r in dsn_recipients(m)]
        rcpts = wait_for(lambda: len(reported()) == 2 and reported(), what="DSNs")
        statuses = sorted(r["status"] for r in rcpts)
        self.assertEqual(statuses, ["5.1.10", "5.1.2"])
        self.assertEqual(self.mx.connections, 0)

    def test_dead_mx_is_retried_then_delivered(self):
        # "Kill the MX": nothing listens on its port; later it comes back.
        port = self.mx.port
        self.mx.stop()
        submit(self.server, ["carol@remote.example"], "retry")
        wait_for(lambda: "attempts 2" in self.queue_list() or "attempts 3" in self.queue_list(),
                 what="retries")
        self.assertIn("cannot connect", self.queue_list())
        self.mx = FakeMX()
        self.assertNotEqual(self.mx.port, port)
        self.server.set_config("outbound", "smtp_port", str(self.mx.port))
        self.server.proc.send_signal(1)  # SIGHUP: reload (the port is read per attempt)
        wait_for(lambda: self.mx.received_for("carol@remote.example"), timeout=30,
                 what="delivery after the MX came back")
        wait_for(lambda: "queue is empty" in self.queue_list(), what="empty queue")

    def test_temporary_rejection_is_retried(self):
        self.mx.data_reply = "451 4.3.0 try later"
        submit(self.server, ["carol@remote.example"], "later")
        wait_for(lambda: self.mx.transactions >= 2, what="a second attempt")
        self.assertIn("451 4.3.0", self.queue_list())
        self.mx.data_reply = "250 2.0.0 Ok"
        wait_for(lambda: self.mx.received_for("carol@remote.example"), timeout=30,
                 what="delivery")
        self.assertEqual(len(self.mx.messages), 1)  # never sent twice after the 250

    def test_dsn_parameters_are_passed_on(self):
        self.mx.ehlo_extra.append("DSN")
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.login(ALICE, PASSWORD)
            s.sendmail(ALICE, ["carol@remote.example"], MSG % (ALICE, "dsn", "dsn"),
                       mail_options=["RET=HDRS", "ENVID=abc+2Bdef"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;carol@remote.example"])
        got = wait_for(lambda: self.mx.received_for("carol@remote.example"), what="delivery")[0]
        self.assertIn("RET=HDRS", got["mail_line"])
        self.assertIn("ENVID=abc+2Bdef", got["mail_line"])
        self.assertIn("NOTIFY=SUCCESS,FAILURE", got["rcpt_lines"][0])
        self.assertIn("ORCPT=rfc822;carol@remote.example", got["rcpt_lines"][0])
        # The remote MX offered DSN, so it reports success itself: no "relayed" from us.
        time.sleep(1.5)
        self.assertEqual(inbox(self.server, ALICE), [])

    def test_success_notify_to_server_without_dsn_gives_relayed_report(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.login(ALICE, PASSWORD)
            s.sendmail(ALICE, ["carol@remote.example"], MSG % (ALICE, "relayed", "x"),
                       mail_options=["ENVID=env-1"], rcpt_options=["NOTIFY=SUCCESS"])
        self.assertNotIn("NOTIFY", wait_for(
            lambda: self.mx.received_for("carol@remote.example"), what="delivery")[0]["rcpt_lines"][0])
        msgs = wait_for(lambda: inbox(self.server, ALICE), what="relayed DSN")
        f = dsn_fields(msgs[0])
        self.assertEqual(f["action"], "relayed")
        self.assertEqual(f["original-envelope-id"], "env-1")

    def test_notify_never_suppresses_the_failure_report(self):
        self.mx.rcpt_replies["nobody@remote.example"] = "550 5.1.1 no such user"
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.login(ALICE, PASSWORD)
            s.sendmail(ALICE, ["nobody@remote.example"], MSG % (ALICE, "never", "x"),
                       rcpt_options=["NOTIFY=NEVER"])
        wait_for(lambda: "queue is empty" in self.queue_list(), what="empty queue")
        self.assertEqual(inbox(self.server, ALICE), [])


class ManyDestinationsTest(Base):
    """Many messages to many domains: each delivered exactly once, none spuriously deferred
    (a deferral would wait an hour here, so the test would time out)."""
    zone_extra = {f"d{i}.example": [("MX", "10 mx.remote.example.")] for i in range(20)}

    def configure(self):
        self.server.set_config("outbound", "retry_base_seconds", "3600")
        self.server.set_config("outbound", "retry_max_seconds", "3600")
        self.server.set_config("outbound", "max_connections_per_destination", "2")

    def test_all_delivered_once(self):
        n = 200
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.login(ALICE, PASSWORD)
            for i in range(n):
                s.sendmail(ALICE, [f"u{i}@d{i % 20}.example"], MSG % (ALICE, f"m{i}", i))
        wait_for(lambda: len(self.mx.messages) >= n, timeout=60, what="all deliveries")
        wait_for(lambda: "queue is empty" in self.queue_list(), what="empty queue")
        subjects = sorted(m["data"].split(b"Subject: ")[1].split(b"\r\n")[0]
                          for m in self.mx.messages)
        self.assertEqual(subjects, sorted(f"m{i}".encode() for i in range(n)))


class DkimSigningTest(Base):
    """Submitted mail from a domain with a key (`hato dkim generate`) leaves
    DKIM-signed (RFC 6376); the signature verifies with python3-dkim."""

    def configure(self):
        out = run_cli("dkim", "generate", DOMAIN, "--selector", "s2026",
                      data=self.server.data).stdout
        line = [l for l in out.splitlines() if " IN TXT " in l][0]
        self.record_name = line.split()[0].rstrip(".")
        self.record = "".join(re.findall(r'"([^"]*)"', line))

    def dnsfunc(self, name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return self.record.encode() if name.rstrip(".") == self.record_name else b""

    def test_outbound_mail_is_signed_and_verifies(self):
        import dkim  # python3-dkim, the independent verifier
        submit(self.server, ["carol@remote.example"], "signed")
        got = wait_for(lambda: self.mx.received_for("carol@remote.example"), what="delivery")
        data = got[0]["data"]
        self.assertIn(b"DKIM-Signature:", data)
        self.assertIn(b"s=s2026", data)
        self.assertTrue(dkim.verify(data, dnsfunc=self.dnsfunc))
        self.assertFalse(dkim.verify(data.replace(b"Hello signed", b"Hello forged"),
                                     dnsfunc=self.dnsfunc))


class RateLimitTest(Base):
    def configure(self):
        self.server.set_config("outbound", "max_messages_per_minute_per_destination", "3")

    def test_per_destination_rate(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.ehlo()
            s.login(ALICE, PASSWORD)
            for i in range(5):
                s.sendmail(ALICE, ["carol@remote.example"], MSG % (ALICE, f"r{i}", i))
            s.sendmail(ALICE, ["dave@nomx.example"], MSG % (ALICE, "other", "x"))
        # Three to remote.example this minute; another destination is not held up.
        wait_for(lambda: len(self.mx.messages) >= 4, what="deliveries within the rate")
        time.sleep(3)
        self.assertEqual(len(self.mx.received_for("carol@remote.example")), 3)
        self.assertEqual(len(self.mx.received_for("dave@nomx.example")), 1)
        self.assertEqual(self.queue_list().count("<carol@remote.example>"), 2)
    zone_extra = {"nomx.example": [("A", "127.0.0.1")]}


class ExpiryTest(Base):
    def configure(self):
        # The lifetime leaves the queue (scanned every second) ample time to
        # send the delay warning first, even on a loaded CI machine.
        self.server.set_config("outbound", "delay_warning_seconds", "1")
        self.server.set_config("outbound", "max_lifetime_seconds", "10")

    def test_delay_warning_then_expiry_report(self):
        self.mx.stop()
        submit(self.server, ["carol@remote.example"], "doomed", )
        msgs = wait_for(lambda: len(inbox(self.server, ALICE)) >= 2 and inbox(self.server, ALICE),
                        timeout=60, what="delay and failure DSNs")
        actions = [dsn_fields(m)["action"] for m in msgs]
        self.assertEqual(actions, ["delayed", "failed"])
        self.assertEqual(dsn_fields(msgs[1])["status"], "4.4.7")
        self.assertIn("Will-Retry-Until", msgs[0].as_string())
        wait_for(lambda: "queue is empty" in self.queue_list(), what="empty queue")


class RelayHostTest(Base):
    def configure(self):
        # Smarthost: every remote recipient goes there, whatever DNS says.
        self.server.set_config("outbound", "relay_host", f'"127.0.0.1:{self.mx.port}"')
        self.server.set_config("outbound", "resolver", '"127.0.0.1@1"')  # unusable on purpose

    def test_relay_host_gets_all_remote_mail(self):
        submit(self.server, ["someone@elsewhere.example", "carol@remote.example"], "relay")
        # One transaction per recipient domain, on connections of their own:
        # they end in either order, moments apart, so both are waited for.
        wanted = ["carol@remote.example", "someone@elsewhere.example"]
        received = lambda: sorted(r for m in list(self.mx.messages) for r in m["rcpts"])
        wait_for(lambda: received() == wanted, what="relay delivery of both recipients")
        self.assertEqual(len(self.mx.messages), 2)


class PipelinedReuseTest(Base):
    """A pooled session stays in step after pipelined transactions (RFC 2920
    section 3.1) whose RCPTs the MX refused, one of two or all: the next
    message goes over the same connection, and the replies read are its own."""

    def configure(self):
        self.mx.stop()
        self.mx = FakeMX(pipelining_probe=True)
        self.server.set_config("outbound", "smtp_port", str(self.mx.port))

    def test_session_after_refused_rcpts_is_reused(self):
        self.mx.rcpt_replies["gone@remote.example"] = "550 5.1.1 no such user"
        self.mx.rcpt_replies["nobody@remote.example"] = "550 5.1.1 no such user"
        submit(self.server, ["carol@remote.example", "gone@remote.example"], "first")
        wait_for(lambda: self.mx.received_for("carol@remote.example"), what="the first message")
        # Every RCPT refused: the pipelined DATA's refusal is read, then RSET's reply.
        submit(self.server, ["nobody@remote.example"], "second")
        wait_for(lambda: self.mx.rsets == 1, what="the refused transaction's RSET")
        submit(self.server, ["dave@remote.example"], "third")
        got = wait_for(lambda: self.mx.received_for("dave@remote.example"),
                       what="the third message")
        self.assertEqual(got[0]["rcpts"], ["dave@remote.example"])
        self.assertIn(b"Subject: third", got[0]["data"])
        with self.mx.lock:
            self.assertEqual((self.mx.connections, self.mx.per_connection), (1, [3]))
            self.assertEqual((self.mx.pipelined, self.mx.unpipelined), (3, 0))
        self.assertEqual(len(self.mx.messages), 2)


class QueueTest(Base):
    def configure(self):
        self.server.set_config("outbound", "retry_base_seconds", "3600")
        self.server.set_config("outbound", "retry_max_seconds", "3600")

    def test_survives_restart_and_admin_commands(self):
        self.mx.stop()
        submit(self.server, ["carol@remote.example"], "durable")
        wait_for(lambda: "attempts 1" in self.queue_list(), what="first attempt")
        # SIGKILL: the queue is in the store, committed before the 250.
        self.server.kill()
        listing = self.queue_list()
        self.assertIn("<alice@example.test>", listing)
        qid = listing.splitlines()[1].split("\t")[0]
        show = run_cli("queue", "show", qid, data=self.server.data).stdout
        self.assertIn("recipient: <carol@remote.example> queued, 1 attempts", show)
        self.assertIn("Subject: durable", show)
        self.assertIn("held", run_cli("queue", "hold", qid, data=self.server.data).stdout)
        self.assertIn("\theld\t<carol@remote.example>", self.queue_list())
        self.mx = FakeMX()
        self.server.set_config("outbound", "smtp_port", str(self.mx.port))
        self.server.start()
        time.sleep(2)
        self.assertEqual(self.mx.messages, [])  # held: not attempted
        run_cli("queue", "release", qid, data=self.server.data)
        wait_for(lambda: self.mx.received_for("carol@remote.example"), what="delivery after release")
        wait_for(lambda: "queue is empty" in self.queue_list(), what="empty queue")
        r = run_cli("queue", "show", qid, data=self.server.data, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no queued message", r.stderr)

    def test_retry_during_an_attempt_is_kept(self):
        # An admin retry asked while an attempt is in flight (the MX holds its
        # reply to RCPT) is not swallowed when that attempt ends deferred: the
        # next attempt follows at once, not after retry_base_seconds (an hour).
        self.mx.rcpt_replies["carol@remote.example"] = "451 4.3.0 busy"
        self.mx.rcpt_gate = threading.Event()
        submit(self.server, ["carol@remote.example"], "gated")
        wait_for(lambda: self.mx.rcpts_waiting == 1, what="the attempt at the MX")
        qid = self.queue_list().splitlines()[1].split("\t")[0]
        run_cli("queue", "retry", qid, data=self.server.data)
        del self.mx.rcpt_replies["carol@remote.example"]
        self.mx.rcpt_gate.set()
        wait_for(lambda: self.mx.received_for("carol@remote.example"), timeout=10,
                 what="the retried delivery")
        self.assertEqual(self.mx.rcpts_waiting, 2)  # the held attempt, then the retry

    def test_retry_and_delete(self):
        self.mx.data_reply = "451 4.3.0 busy"
        submit(self.server, ["carol@remote.example"], "one")
        wait_for(lambda: "attempts 1" in self.queue_list(), what="first attempt")
        qid = self.queue_list().splitlines()[1].split("\t")[0]
        run_cli("queue", "retry", qid, data=self.server.data)  # the next attempt is an hour away
        wait_for(lambda: "attempts 2" in self.queue_list(), what="retried attempt")
        self.assertIn("deleted", run_cli("queue", "delete", qid, data=self.server.data).stdout)
        self.assertIn("queue is empty", self.queue_list())
        self.assertEqual(inbox(self.server, ALICE), [])  # deleting sends no report


if __name__ == "__main__":
    unittest.main()
