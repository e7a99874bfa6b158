"""Sieve at delivery (issue 19, src/sieve), end to end: scripts stored with
`hato sieve`, mail in over SMTP, the outcome read over IMAP (filing, flags)
and at a fake remote MX (redirect, vacation replies)."""
import base64
import http.client
import imaplib
import json
import os
import smtplib
import tempfile
import time
import unittest

from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = "carol@remote.example"


def message(subject, sender=CAROL, to=ALICE, extra=""):
    return (f"From: Carol <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.time()}@remote.example>\r\n"
            f"{extra}\r\nHello.\r\n")


class SieveTest(unittest.TestCase):
    def setUp(self):
        self.mx = FakeMX()
        self.dns = FakeDNS({"remote.example": [("MX", "10 mx.remote.example.")],
                            "mx.remote.example": [("A", "127.0.0.1")]})
        self.server = Server(users=("alice", "bob"))
        self.server.set_config("outbound", "resolver", f'"{self.dns.address}"')
        self.server.set_config("outbound", "smtp_port", str(self.mx.port))
        self.server.set_config("outbound", "retry_base_seconds", "1")
        self.server.set_config("outbound", "retry_max_seconds", "2")
        self.server.start()

    def tearDown(self):
        self.server.cleanup()
        self.mx.stop()
        self.dns.stop()

    def put_script(self, user, text, name="main", activate=True):
        with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
            f.write(text)
        try:
            r = run_cli("sieve", "put", user, name, f.name, data=self.server.data, check=False)
        finally:
            os.unlink(f.name)
        if r.returncode == 0 and activate:
            run_cli("sieve", "activate", user, name, data=self.server.data)
        return r

    def send(self, msg, rcpts=(ALICE,), sender=CAROL):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            return s.sendmail(sender, list(rcpts), msg)

    def mailbox(self, user, name):
        """[(flags, raw message)] of a mailbox, or None when it does not exist."""
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=10)
        try:
            m.login(user, PASSWORD)
            typ, _ = m.select(f'"{name}"', readonly=True)
            if typ != "OK":
                return None
            typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[])")
            out = []
            if typ == "OK" and data and data[0] is not None:
                for item in data:
                    if isinstance(item, tuple):
                        out.append((item[0].decode(), item[1].decode(errors="replace")))
            return out
        finally:
            m.logout()

    def test_fileinto_create_and_addflag(self):
        r = self.put_script(ALICE, 'require ["fileinto", "mailbox", "imap4flags"];\n'
                                   'if header :contains "subject" "hato" {\n'
                                   '  addflag "\\\\Flagged";\n'
                                   '  addflag "$Hato";\n'
                                   '  fileinto :create "Lists/Hato";\n'
                                   '}\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.send(message("about hato"))
        self.send(message("something else"))
        filed = self.mailbox(ALICE, "Lists/Hato")
        self.assertIsNotNone(filed, "fileinto :create made the mailbox")
        self.assertEqual(len(filed), 1)
        self.assertIn("\\Flagged", filed[0][0])
        self.assertIn("$Hato", filed[0][0])
        self.assertIn("Subject: about hato", filed[0][1])
        inbox = self.mailbox(ALICE, "INBOX")
        self.assertEqual(len(inbox), 1)
        self.assertIn("Subject: something else", inbox[0][1])

    def test_fileinto_missing_mailbox_without_create_falls_back_and_reports(self):
        self.put_script(ALICE, 'require "fileinto";\nfileinto "Nowhere";\n')
        self.send(message("lost?"))
        self.assertEqual(len(self.mailbox(ALICE, "INBOX")), 1)
        self.assertIsNone(self.mailbox(ALICE, "Nowhere"))
        listing = run_cli("sieve", "list", ALICE, data=self.server.data).stdout
        self.assertIn("main\tactive", listing)
        self.assertIn("last error: fileinto \"Nowhere\"", listing)

    def test_editheader_changes_the_stored_copy_only(self):
        # RFC 5293 section 5: keep and fileinto store the edited message; the
        # other recipient (no script) gets the message as it came.
        self.put_script(ALICE, 'require ["editheader", "fileinto", "mailbox"];\n'
                               'addheader "X-Filed-By" "hato sieve";\n'
                               'deleteheader "X-Remove-Me";\n'
                               'fileinto :create "Edited";\n')
        self.send(message("edit me", extra="X-Remove-Me: secret\r\n"), rcpts=(ALICE, BOB))
        edited = self.mailbox(ALICE, "Edited")
        self.assertEqual(len(edited), 1)
        raw = edited[0][1]
        head, _, body = raw.partition("\r\n\r\n")
        self.assertIn("X-Filed-By: hato sieve", head)
        self.assertNotIn("X-Remove-Me", head)
        self.assertIn("Subject: edit me", head)
        self.assertEqual(body, "Hello.\r\n")
        # The size the server reports is the edited copy's.
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=10)
        m.login(ALICE, PASSWORD)
        m.select('"Edited"', readonly=True)
        typ, data = m.fetch("1", "(RFC822.SIZE)")
        m.logout()
        self.assertIn(f"RFC822.SIZE {len(raw.encode())}".encode(), data[0])
        original = self.mailbox(BOB, "INBOX")
        self.assertEqual(len(original), 1)
        self.assertIn("X-Remove-Me: secret", original[0][1])
        self.assertNotIn("X-Filed-By", original[0][1])

    def test_failing_script_keeps_in_inbox_and_records_error(self):
        self.put_script(ALICE, 'require "variables";\nset "x" "not an address";\n'
                               'redirect "${x}";\n')
        self.send(message("runtime error"))
        self.assertEqual(len(self.mailbox(ALICE, "INBOX")), 1)
        listing = run_cli("sieve", "list", ALICE, data=self.server.data).stdout
        self.assertIn("last error:", listing)
        self.assertIn("invalid address", listing)

    def test_reject_refused_at_smtp_time_when_every_recipient_rejects(self):
        self.put_script(ALICE, 'require "reject";\nif header :contains "subject" "spam" '
                               '{ reject "No spam here"; }\n')
        with self.assertRaises(smtplib.SMTPDataError) as ctx:
            self.send(message("spam offer"))
        self.assertEqual(ctx.exception.smtp_code, 550)
        self.assertIn(b"No spam here", ctx.exception.smtp_error)
        self.assertEqual(self.mailbox(ALICE, "INBOX"), [])
        # With another recipient that accepts: 250, Bob gets it, Carol gets a bounce.
        self.send(message("spam again", to=BOB), rcpts=(ALICE, BOB))
        self.assertEqual(len(self.mailbox(BOB, "INBOX")), 1)
        self.assertEqual(self.mailbox(ALICE, "INBOX"), [])
        bounce = wait_for(lambda: self.mx.received_for(CAROL), what="reject bounce")
        self.assertEqual(bounce[0]["mail_from"], "")
        self.assertIn(b"No spam here", bounce[0]["data"])

    def test_vacation_once_per_period_never_to_lists(self):
        r = self.put_script(ALICE, 'require "vacation";\n'
                                   'vacation :days 1 :subject "Away" "I am away until Monday.";\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.send(message("first"))
        replies = wait_for(lambda: self.mx.received_for(CAROL), what="vacation reply")
        self.assertEqual(len(replies), 1)
        reply = replies[0]
        self.assertEqual(reply["mail_from"], "")  # RFC 5230 section 5.1: null sender
        data = reply["data"].decode()
        self.assertIn("Subject: Away", data)
        self.assertIn("Auto-Submitted: auto-replied", data)
        self.assertIn("In-Reply-To: <first.", data)
        self.assertIn("I am away until Monday.", data)
        # A second message from the same sender within the period: no reply.
        self.send(message("second"))
        # From a list, or bulk: never (RFC 5230 section 4.5, RFC 3834 section 2).
        dave = "dave@remote.example"
        self.send(message("list post", sender=dave, extra="List-Id: <x.remote.example>\r\n"),
                  sender=dave)
        self.send(message("bulk", sender=dave, extra="Precedence: bulk\r\n"), sender=dave)
        # An ordinary message from someone else gets its reply (proves the queue ran).
        erin = "erin@remote.example"
        self.send(message("from erin", sender=erin), sender=erin)
        wait_for(lambda: self.mx.received_for(erin), what="reply to erin")
        time.sleep(1)
        self.assertEqual(len(self.mx.received_for(CAROL)), 1)
        self.assertEqual(self.mx.received_for(dave), [])
        self.assertEqual(len(self.mailbox(ALICE, "INBOX")), 5)  # every message kept

    def test_redirect_and_redirect_copy(self):
        self.put_script(ALICE, 'redirect "carol@remote.example";\n')
        self.send(message("forward me", sender="zed@remote.example"), sender="zed@remote.example")
        got = wait_for(lambda: self.mx.received_for(CAROL), what="redirected message")
        # SRS: the forwarded copy's envelope sender is in our domain.
        self.assertRegex(got[0]["mail_from"], r"^SRS0=[^=]{4}=[A-Z2-7]{2}=remote\.example=zed@"
                         + DOMAIN.replace(".", r"\.") + "$")
        self.assertIn(b"Subject: forward me", got[0]["data"])
        self.assertIn(b"X-Hato-Redirected-By: alice@example.test", got[0]["data"])
        self.assertEqual(self.mailbox(ALICE, "INBOX"), [])
        self.put_script(BOB, 'require "copy";\nredirect :copy "carol@remote.example";\n')
        self.send(message("copy me", to=BOB, sender="zed@remote.example"), rcpts=(BOB,),
                  sender="zed@remote.example")
        wait_for(lambda: len(self.mx.received_for(CAROL)) == 2, what="second redirect")
        self.assertEqual(len(self.mailbox(BOB, "INBOX")), 1)

    def test_srs_bounce_goes_back_to_the_original_sender(self):
        self.put_script(ALICE, 'redirect "carol@remote.example";\n')
        self.send(message("forward me", sender="zed@remote.example"), sender="zed@remote.example")
        got = wait_for(lambda: self.mx.received_for(CAROL), what="redirected message")
        srs = got[0]["mail_from"]
        # The destination bounces to the SRS address: Hato checks it and
        # sends the bounce on to zed.
        bounce = (f"From: MAILER-DAEMON@remote.example\r\nTo: <{srs}>\r\n"
                  "Subject: Undelivered Mail\r\n\r\nbounced\r\n")
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo()
            self.assertEqual(s.mail("<>")[0], 250)
            self.assertEqual(s.rcpt(srs)[0], 250)
            # A forged or retargeted SRS address is refused.
            local, _, domain = srs.rpartition("@")
            code, msg = s.rcpt(local.rsplit("=", 1)[0] + "=mallory@" + domain)
            self.assertEqual(code, 550, msg)
            code, _ = s.rcpt(f"SRS0=abcd=AA=remote.example=zed@{DOMAIN}")
            self.assertEqual(code, 550)
            code, _ = s.data(bounce.encode())
            self.assertEqual(code, 250)
        back = wait_for(lambda: self.mx.received_for("zed@remote.example"), what="bounce")
        self.assertEqual(back[0]["mail_from"], "")
        self.assertIn(b"Subject: Undelivered Mail", back[0]["data"])
        # The secret survives in the data dir (and in backups): mode 0600.
        key = os.path.join(self.server.data, "srs.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)

    def test_redirect_loop_is_refused_and_message_kept(self):
        self.put_script(ALICE, 'redirect "carol@remote.example";\n')
        self.send(message("looped", extra="X-Hato-Redirected-By: alice@example.test\r\n"))
        self.assertEqual(len(self.mailbox(ALICE, "INBOX")), 1)
        listing = run_cli("sieve", "list", ALICE, data=self.server.data).stdout
        self.assertIn("loop", listing)


    def jmap(self, calls):
        c = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=10)
        body = json.dumps({"using": ["urn:ietf:params:jmap:core",
                                     "urn:ietf:params:jmap:vacationresponse"],
                           "methodCalls": calls})
        token = base64.b64encode(f"{ALICE}:{PASSWORD}".encode()).decode()
        c.request("POST", "/jmap/api/", body, {"Content-Type": "application/json",
                                               "Authorization": "Basic " + token})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        return json.loads(r.read())["methodResponses"]

    def test_jmap_vacation_response_replies_once(self):
        got = self.jmap([["VacationResponse/get", {"ids": None}, "0"]])
        self.assertEqual(got[0][0], "VacationResponse/get")
        self.assertEqual(got[0][1]["list"][0]["id"], "singleton")
        self.assertFalse(got[0][1]["list"][0]["isEnabled"])
        got = self.jmap([["VacationResponse/set", {"update": {"singleton": {
            "isEnabled": True, "subject": "Out of office", "textBody": "Back on Monday.",
            "fromDate": "2000-01-01T00:00:00Z"}}}, "0"],
            ["VacationResponse/set", {"create": {"x": {}}}, "1"]])
        self.assertEqual(got[0][1]["updated"], {"singleton": None})
        self.assertEqual(got[1][1]["notCreated"]["x"]["type"], "singleton")
        got = self.jmap([["VacationResponse/get", {}, "0"]])
        self.assertTrue(got[0][1]["list"][0]["isEnabled"])
        self.assertEqual(got[0][1]["list"][0]["subject"], "Out of office")
        self.send(message("one"))
        self.send(message("two"))
        replies = wait_for(lambda: self.mx.received_for(CAROL), what="JMAP vacation reply")
        time.sleep(1)
        self.assertEqual(len(self.mx.received_for(CAROL)), 1)
        self.assertIn(b"Subject: Out of office", replies[0]["data"])
        self.assertIn(b"Back on Monday.", replies[0]["data"])
        # Disabled: no more replies (to a new sender either).
        self.jmap([["VacationResponse/set", {"update": {"singleton": {"isEnabled": False}}}, "0"]])
        erin = "erin@remote.example"
        self.send(message("three", sender=erin), sender=erin)
        self.assertEqual(len(self.mailbox(ALICE, "INBOX")), 3)
        time.sleep(1)
        self.assertEqual(self.mx.received_for(erin), [])


class SieveCliTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",))

    def tearDown(self):
        self.server.cleanup()

    def test_put_check_get_list_activate_delete(self):
        d = self.server.data
        with tempfile.TemporaryDirectory() as tmp:
            good = os.path.join(tmp, "good.sieve")
            bad = os.path.join(tmp, "bad.sieve")
            open(good, "w").write('require "fileinto";\nfileinto "x";\n')
            open(bad, "w").write('fileinto "x";\n')
            self.assertEqual(run_cli("sieve", "check", good, data=d).stdout, "ok\n")
            r = run_cli("sieve", "check", bad, data=d, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn('line 1: fileinto needs require "fileinto"', r.stderr)
            r = run_cli("sieve", "put", ALICE, "bad", bad, data=d, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("not stored", r.stderr)
            run_cli("sieve", "put", ALICE, "good", good, data=d)
            run_cli("sieve", "put", ALICE, "other", good, data=d)
        self.assertEqual(run_cli("sieve", "get", ALICE, "good", data=d).stdout,
                         'require "fileinto";\nfileinto "x";\n')
        self.assertEqual(run_cli("sieve", "check", ALICE, "good", data=d).stdout, "ok\n")
        run_cli("sieve", "activate", ALICE, "good", data=d)
        listing = run_cli("sieve", "list", ALICE, data=d).stdout.splitlines()
        self.assertTrue(listing[0].startswith("good\tactive"), listing)
        self.assertTrue(listing[1].startswith("other\t\t"), listing)
        r = run_cli("sieve", "delete", ALICE, "good", data=d, check=False)
        self.assertEqual(r.returncode, 1)  # the active script stays
        run_cli("sieve", "activate", ALICE, "other", data=d)
        run_cli("sieve", "delete", ALICE, "good", data=d)
        run_cli("sieve", "deactivate", ALICE, data=d)
        self.assertEqual(run_cli("sieve", "list", ALICE, data=d).stdout.splitlines(),
                         ["other\t\t34 bytes"])
        r = run_cli("sieve", "get", ALICE, "nope", data=d, check=False)
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main()
