"""Spam and virus checks on port 25 and Junk training (issue 19), against Debian's
rspamd (with redis-server for Bayes) and clamd, started here in temporary
folders on loopback ports (scanners.py):

  - GTUBE is rejected at SMTP time (550) or filed into Junk, as [scan] on_reject says;
  - clean mail is delivered with X-Hato-Scan and X-Spam-Status, and a sender's
    forged copies of those fields are removed;
  - the EICAR test string is refused (554) by clamd's verdict;
  - moving a message into Junk (IMAP MOVE, JMAP Email/set mailboxIds) learns it
    as spam, out of Junk as ham, verified in rspamd's statistics;
  - rspamd killed mid-test: mail is still accepted, marked unscanned, and counted.

ScannerDownTest needs no scanner: a closed port and a server that never answers
stand for rspamd and clamd being down or slow.
"""
import base64
import email
import imaplib
import json
import os
import signal
import smtplib
import socket
import threading
import time
import unittest
import urllib.request

import metrics_client
import scanners
from harness import DOMAIN, PASSWORD, Server, free_port, wait_for

ALICE = f"alice@{DOMAIN}"
_rspamd = None
_clamd = None


def message(subject, body, extra=""):
    words = " ".join(f"word{i} text{i % 13} sample{i % 7}" for i in range(40))
    return (f"From: Sender <sender@remote.test>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.time_ns()}@remote.test>\r\n"
            f"Date: Wed, 02 Dec 2026 08:00:00 +0000\r\n{extra}\r\n{body}\r\n{words}\r\n")


def send(server, msg):
    """Sends on port 25; returns (code, text) of the reply to the data."""
    s = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60)
    try:
        s.ehlo("client.remote.test")
        s.mail("sender@remote.test")
        s.rcpt(ALICE)
        code, text = s.data(msg.encode() if isinstance(msg, str) else msg)
        return code, text.decode(errors="replace")
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            pass


def imap(server):
    m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=30)
    m.login(ALICE, PASSWORD)
    return m


def fetch_all(server, mailbox):
    """[(uid, email.message.Message)] of a mailbox."""
    m = imap(server)
    try:
        typ, _ = m.select(f'"{mailbox}"')
        assert typ == "OK", mailbox
        _, data = m.uid("SEARCH", None, "ALL")
        out = []
        for uid in data[0].split():
            _, d = m.uid("FETCH", uid, "(BODY.PEEK[])")
            out.append((uid.decode(), email.message_from_bytes(d[0][1])))
        return out
    finally:
        m.logout()


def by_subject(server, mailbox, subject):
    return [msg for _, msg in fetch_all(server, mailbox) if msg["Subject"] == subject]


def reload(server):
    n = server.logs().count("reload: configuration")
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: server.logs().count("reload: configuration") > n, 20, "reload")


class Jmap:
    def __init__(self, server):
        self.port = server.http_port
        self.auth = "Basic " + base64.b64encode(f"{ALICE}:{PASSWORD}".encode()).decode()
        s = self.get("/.well-known/jmap")
        self.api_url = s["apiUrl"]
        self.account = s["primaryAccounts"]["urn:ietf:params:jmap:mail"]

    def get(self, path):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     headers={"Authorization": self.auth})
        with urllib.request.urlopen(req, timeout=20) as r:
            return json.loads(r.read())

    def call(self, calls):
        body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                           "methodCalls": calls}).encode()
        url = self.api_url
        if url.startswith("/"):
            url = f"http://127.0.0.1:{self.port}{url}"
        req = urllib.request.Request(url, data=body, headers={
            "Authorization": self.auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=20) as r:
            return json.loads(r.read())["methodResponses"]


@unittest.skipIf(scanners.missing(), scanners.missing() or "")
class ScanTest(unittest.TestCase):
    """One hato server, one rspamd and one clamd for the class; the policy
    changes by SIGHUP. The last test kills rspamd."""

    @classmethod
    def setUpClass(cls):
        global _rspamd, _clamd
        _clamd = scanners.Clamd().start()
        _rspamd = scanners.Rspamd().start()
        cls.metrics_port = free_port()
        cls.server = Server(users=("alice",))
        metrics_client.enable(cls.server, cls.metrics_port)
        for k, v in (("rspamd_url", f'"{_rspamd.url}"'),
                     ("rspamd_controller_url", f'"{_rspamd.controller_url}"'),
                     ("rspamd_password", f'"{scanners.CONTROLLER_PASSWORD}"'),
                     ("clamd", f'"{_clamd.address}"'), ("timeout_ms", "20000"),
                     ("on_reject", '"reject"')):
            cls.server.set_config("scan", k, v)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        for s in (_rspamd, _clamd):
            if s is not None:
                s.stop()

    def set_policy(self, key, value):
        self.server.set_config("scan", key, f'"{value}"')
        reload(self.server)

    def test_start_log_says_which_checks_are_on(self):
        logs = self.server.logs()
        self.assertIn("scan: spam checks on: rspamd at " + _rspamd.url, logs)
        self.assertIn("scan: virus checks on: clamd at " + _clamd.address, logs)
        self.assertIn("scan: Junk training on", logs)

    def test_gtube_rejected(self):
        self.set_policy("on_reject", "reject")
        code, text = send(self.server, message("gtube reject", scanners.GTUBE))
        self.assertEqual(code, 550, text)
        self.assertIn("5.7.1", text)
        self.assertEqual(by_subject(self.server, "INBOX", "gtube reject"), [])
        self.assertEqual(by_subject(self.server, "Junk", "gtube reject"), [])
        m = metrics_client.scrape(self.metrics_port)
        self.assertGreaterEqual(m['hato_scan_messages_total{result="spam_rejected"}'], 1)

    def test_gtube_filed_into_junk(self):
        self.set_policy("on_reject", "junk")
        try:
            code, text = send(self.server, message("gtube junk", scanners.GTUBE))
            self.assertEqual(code, 250, text)
            self.assertEqual(by_subject(self.server, "INBOX", "gtube junk"), [])
            [msg] = by_subject(self.server, "Junk", "gtube junk")
            self.assertEqual(msg["X-Spam-Flag"], "YES")
            self.assertTrue(msg["X-Spam-Status"].startswith("Yes, score="), msg["X-Spam-Status"])
            self.assertEqual(msg["X-Hato-Scan"], "spam=ok; virus=ok")
        finally:
            self.set_policy("on_reject", "reject")

    def test_gtube_marked(self):
        self.set_policy("on_reject", "mark")
        try:
            code, text = send(self.server, message("gtube mark", scanners.GTUBE))
            self.assertEqual(code, 250, text)
            [msg] = by_subject(self.server, "INBOX", "gtube mark")
            self.assertEqual(msg["X-Spam-Flag"], "YES")
        finally:
            self.set_policy("on_reject", "reject")

    def test_clean_mail_scanned_and_forged_fields_removed(self):
        forged = ("X-Spam-Flag: NO\r\nX-Hato-Scan: spam=ok; virus=ok\r\n"
                  "X-Spam-Status: No, score=-100\r\n\tcontinued\r\n")
        code, text = send(self.server, message("clean mail", "Hello there, lunch?", forged))
        self.assertEqual(code, 250, text)
        [msg] = by_subject(self.server, "INBOX", "clean mail")
        self.assertEqual(msg.get_all("X-Hato-Scan"), ["spam=ok; virus=ok"])
        self.assertEqual(len(msg.get_all("X-Spam-Status")), 1)
        self.assertTrue(msg["X-Spam-Status"].startswith("No, score="), msg["X-Spam-Status"])
        self.assertNotIn("-100", msg["X-Spam-Status"])
        self.assertIsNone(msg["X-Spam-Flag"])

    def test_eicar_refused(self):
        body = base64.b64encode(scanners.EICAR).decode()
        msg = (f"From: <sender@remote.test>\r\nTo: {ALICE}\r\nSubject: eicar\r\n"
               "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
               "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
               "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
               f"Content-Disposition: attachment; filename=eicar.com\r\n\r\n{body}\r\n--b--\r\n")
        code, text = send(self.server, msg)
        self.assertEqual(code, 554, text)
        self.assertIn("Hato.Test.EICAR", text)
        self.assertEqual(by_subject(self.server, "INBOX", "eicar"), [])
        m = metrics_client.scrape(self.metrics_port)
        self.assertGreaterEqual(m['hato_scan_messages_total{result="virus_refused"}'], 1)

    def test_junk_moves_train_rspamd(self):
        before = _rspamd.stat()
        for i in range(3):
            code, text = send(self.server, message(f"train {i}", "Buy cheap watches today " * 5))
            self.assertEqual(code, 250, text)
        # IMAP MOVE into Junk: learned as spam.
        m = imap(self.server)
        try:
            m.select("INBOX")
            _, data = m.uid("SEARCH", None, 'SUBJECT "train 0"')
            typ, _ = m.uid("MOVE", data[0].split()[0], "Junk")
            self.assertEqual(typ, "OK")
        finally:
            m.logout()
        wait_for(lambda: _rspamd.stat()["learns_spam"] >= before["learns_spam"] + 1, 30,
                 "learnspam after IMAP MOVE")
        # JMAP Email/set mailboxIds: INBOX -> Junk (spam), then Junk -> INBOX
        # (ham). The PostgreSQL store has no JMAP yet: IMAP MOVE there.
        jmap = os.environ.get("HATO_STORE") != "postgres"
        self.move("train 1", "INBOX", "Junk", jmap)
        wait_for(lambda: _rspamd.stat()["learns_spam"] >= before["learns_spam"] + 2, 30,
                 "learnspam after JMAP Email/set")
        self.move("train 1", "Junk", "INBOX", jmap)
        wait_for(lambda: _rspamd.stat()["learns_ham"] >= before["learns_ham"] + 1, 30,
                 "learnham after JMAP Email/set out of Junk")
        # Moving within ordinary folders trains nothing.
        m = imap(self.server)
        try:
            m.create("Work")
            m.select("INBOX")
            _, data = m.uid("SEARCH", None, 'SUBJECT "train 2"')
            m.uid("MOVE", data[0].split()[0], "Work")
        finally:
            m.logout()
        time.sleep(1)
        after = _rspamd.stat()
        # rspamd may relearn: the message taken out of Junk can move from the
        # spam count to the ham count, so spam is +1 or +2.
        self.assertIn(after["learns_spam"] - before["learns_spam"], (1, 2))
        self.assertEqual(after["learns_ham"], before["learns_ham"] + 1)
        self.assertGreaterEqual(after["learned"], before["learned"] + 3)
        # Exactly three requests: the move to Work trained nothing.
        logs = self.server.logs()
        self.assertEqual(logs.count("scan: learned spam"), 2)
        self.assertEqual(logs.count("scan: learned ham"), 1)
        mt = metrics_client.scrape(self.metrics_port)
        self.assertEqual(mt['hato_scan_learn_total{result="sent"}'], 3)
        self.assertEqual(mt['hato_scan_learn_total{result="failed"}'], 0)

    def move(self, subject, src, dst, jmap):
        if not jmap:
            m = imap(self.server)
            try:
                m.select(src)
                _, data = m.uid("SEARCH", None, f'SUBJECT "{subject}"')
                typ, _ = m.uid("MOVE", data[0].split()[0], dst)
                self.assertEqual(typ, "OK")
            finally:
                m.logout()
            return
        j = Jmap(self.server)
        got = j.call([["Mailbox/get", {"accountId": j.account}, "0"]])
        self.assertEqual(got[0][0], "Mailbox/get", got)
        ids = {b["name"]: b["id"] for b in got[0][1]["list"]}
        found = j.call([["Email/query", {"accountId": j.account,
                                         "filter": {"inMailbox": ids[src],
                                                    "subject": subject}}, "0"]])
        [email_id] = found[0][1]["ids"]
        r = j.call([["Email/set", {"accountId": j.account, "update": {
            email_id: {"mailboxIds": {ids[dst]: True}}}}, "0"]])
        self.assertIn(email_id, r[0][1].get("updated", {}), r)

    def test_zz_rspamd_killed_mail_accepted_unscanned(self):
        # Runs last (names sort): rspamd is gone for good after it.
        _rspamd.kill()
        code, text = send(self.server, message("while rspamd is down", "Are you there?"))
        self.assertEqual(code, 250, text)
        [msg] = by_subject(self.server, "INBOX", "while rspamd is down")
        self.assertTrue(msg["X-Hato-Scan"].startswith("spam=unscanned ("), msg["X-Hato-Scan"])
        self.assertIn("virus=ok", msg["X-Hato-Scan"])
        self.assertIsNone(msg["X-Spam-Status"])
        m = metrics_client.scrape(self.metrics_port)
        self.assertGreaterEqual(m['hato_scan_messages_total{result="spam_unscanned"}'], 1)


class ScannerDownTest(unittest.TestCase):
    """No scanner binaries needed: rspamd's address is a server that accepts and
    never answers (slow), clamd's a closed port (down). Mail is never held."""

    @classmethod
    def setUpClass(cls):
        cls.silent = socket.socket()
        cls.silent.bind(("127.0.0.1", 0))
        cls.silent.listen(16)
        cls.held = []
        cls.stop = False

        def accept():
            while not cls.stop:
                try:
                    c, _ = cls.silent.accept()
                    cls.held.append(c)
                except OSError:
                    return
        threading.Thread(target=accept, daemon=True).start()
        closed = free_port()
        cls.metrics_port = free_port()
        cls.server = Server(users=("alice",))
        metrics_client.enable(cls.server, cls.metrics_port)
        cls.server.set_config("scan", "rspamd_url",
                              f'"http://127.0.0.1:{cls.silent.getsockname()[1]}"')
        cls.server.set_config("scan", "clamd", f'"127.0.0.1:{closed}"')
        cls.server.set_config("scan", "timeout_ms", "500")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.stop = True
        cls.silent.close()
        for c in cls.held:
            c.close()
        cls.server.cleanup()

    def test_down_or_slow_scanners_accept_unscanned(self):
        t0 = time.time()
        code, text = send(self.server, message("unscanned", "hello",
                                               "X-Hato-Scan: spam=ok; virus=ok\r\n"))
        took = time.time() - t0
        self.assertEqual(code, 250, text)
        self.assertLess(took, 10)
        [msg] = by_subject(self.server, "INBOX", "unscanned")
        scan = msg.get_all("X-Hato-Scan")
        self.assertEqual(len(scan), 1, scan)
        self.assertIn("spam=unscanned (", scan[0])
        self.assertIn("timed out", scan[0])
        self.assertIn("virus=unscanned (", scan[0])
        # Within the backoff the scanners are not asked again: no second
        # timeout, the message passes at once.
        code, text = send(self.server, message("not asked", "hello again"))
        self.assertEqual(code, 250, text)
        [msg] = by_subject(self.server, "INBOX", "not asked")
        self.assertEqual(msg["X-Hato-Scan"],
                         "spam=unscanned (not asked: failed in the last 10 s); "
                         "virus=unscanned (not asked: failed in the last 10 s)")
        m = metrics_client.scrape(self.metrics_port)
        self.assertEqual(m['hato_scan_messages_total{result="spam_unscanned"}'], 2)
        self.assertEqual(m['hato_scan_messages_total{result="virus_unscanned"}'], 2)

    def test_submission_is_not_scanned(self):
        s = smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=30)
        try:
            s.login(ALICE, PASSWORD)
            s.sendmail(ALICE, [ALICE], message("submitted", "from me").replace(
                "From: Sender <sender@remote.test>", f"From: <{ALICE}>"))
        finally:
            s.quit()
        [msg] = by_subject(self.server, "INBOX", "submitted")
        self.assertIsNone(msg["X-Hato-Scan"])

    def test_start_log_says_training_off(self):
        logs = self.server.logs()
        self.assertIn("scan: spam checks on", logs)
        self.assertIn("scan: Junk training off", logs)


class ScanOffTest(unittest.TestCase):
    def test_off_when_absent(self):
        with Server(users=("alice",)) as server:
            logs = wait_for(lambda: "scan: spam checks off" in server.logs() and server.logs(),
                            10, "start log")
            self.assertIn("scan: virus checks off", logs)
            code, text = send(server, message("plain", "hello", "X-Spam-Flag: YES\r\n"))
            self.assertEqual(code, 250, text)
            [msg] = by_subject(server, "INBOX", "plain")
            self.assertIsNone(msg["X-Hato-Scan"])


if __name__ == "__main__":
    unittest.main()
