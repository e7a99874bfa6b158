"""IMAP against a live `hato serve`, driven by Python's imaplib and raw sockets."""
import imaplib
import re
import smtplib
import socket
import ssl
import threading
import time
import unittest

from harness import DOMAIN, PASSWORD, LineClient, Server

ALICE = f"alice@{DOMAIN}"

MULTIPART = (b"From: Taro <taro@remote.test>\r\nTo: alice@example.test\r\n"
             b"Subject: =?UTF-8?B?44GT44KT44Gr44Gh44Gv?=\r\nMessage-ID: <m1@remote.test>\r\n"
             b"Date: Sun, 22 Nov 2026 09:00:00 +0900\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
             b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello searchable world\r\n"
             b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
             b"\r\nAAECAw==\r\n--XX--\r\n")


def deliver(server, body, to=ALICE):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
        s.sendmail("taro@remote.test", [to], body)


class ImapTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob")).start()

    def tearDown(self):
        self.server.cleanup()

    def login(self):
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=15)
        m.login(ALICE, PASSWORD)
        return m

    def test_login_list_select_fetch(self):
        deliver(self.server, MULTIPART)
        m = self.login()
        typ, boxes = m.list()
        self.assertEqual(typ, "OK")
        names = b"\n".join(boxes)
        for special in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive"):
            self.assertIn(special, names)
        typ, data = m.select("INBOX")
        self.assertEqual(data, [b"1"])
        typ, data = m.fetch("1", "(FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE)")
        text = data[0].decode()
        self.assertIn('"=?UTF-8?B?44GT44KT44Gr44Gh44Gv?="', text)
        self.assertIn('("Taro" NIL "taro" "remote.test")', text)
        self.assertIn('"MIXED" ("BOUNDARY" "XX")', text)
        typ, data = m.fetch("1", "(BODY.PEEK[1] BINARY.PEEK[2] BODY.PEEK[HEADER.FIELDS (Message-ID)])")
        self.assertEqual(data[0][1], b"hello searchable world")
        self.assertEqual(data[1][1], b"\x00\x01\x02\x03")
        self.assertEqual(data[2][1], b"Message-ID: <m1@remote.test>\r\n\r\n")
        self.assertNotIn(b"\\Seen", m.fetch("1", "FLAGS")[1][0])  # PEEK kept it unseen
        typ, data = m.fetch("1", "(BODY[])")
        self.assertTrue(data[0][1].endswith(MULTIPART))
        self.assertIn(b"\\Seen", m.fetch("1", "FLAGS")[1][0])
        m.logout()

    def test_search(self):
        deliver(self.server, MULTIPART)
        deliver(self.server, b"Subject: other\r\n\r\nnothing here\r\n")
        m = self.login()
        m.select("INBOX")
        self.assertEqual(m.search(None, "BODY", "searchable")[1], [b"1"])
        self.assertEqual(m.search(None, "FROM", "taro")[1], [b"1"])
        self.assertEqual(m.search(None, "SUBJECT", "other")[1], [b"2"])
        self.assertEqual(m.search(None, "NOT", "SUBJECT", "other")[1], [b"1"])
        self.assertEqual(m.search(None, "LARGER", "300")[1], [b"1"])
        self.assertEqual(m.uid("SEARCH", "ALL")[1], [b"1 2"])
        self.assertEqual(m.search(None, "TEXT", "HELLO")[1], [b"1"])  # case-insensitive
        m.logout()
        # Encoded-word subjects are searched decoded (a UTF-8 literal, LITERAL+).
        c = LineClient(self.server.imap_port)
        c.line()
        c.send(f"a LOGIN {ALICE} {PASSWORD}\r\nb SELECT INBOX\r\n")
        while not c.line().startswith("b OK"):
            pass
        word = "こんに".encode()
        c.send(b"c SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n%s\r\n" % (len(word), word))
        self.assertEqual(c.line(), "* SEARCH 1")
        self.assertTrue(c.line().startswith("c OK"))
        c.send("d UID SEARCH RETURN (MIN MAX COUNT) ALL\r\n")
        self.assertEqual(c.line(), '* ESEARCH (TAG "d") UID MIN 1 MAX 2 COUNT 2')
        c.close()

    def test_store_append_copy_move_expunge(self):
        deliver(self.server, b"Subject: a\r\n\r\none\r\n")
        deliver(self.server, b"Subject: b\r\n\r\ntwo\r\n")
        m = self.login()
        m.select("INBOX")
        typ, data = m.store("1", "+FLAGS", "(\\Flagged $Work)")
        self.assertIn(b"\\Flagged", data[0])
        self.assertIn(b"$Work", data[0])
        typ, data = m.append("Drafts", "(\\Draft)", None, b"Subject: draft\r\n\r\nbody\r\n")
        self.assertRegex(data[0].decode(), r"\[APPENDUID \d+ 1\]")
        typ, data = m.copy("1", "Archive")
        self.assertRegex(data[0].decode(), r"\[COPYUID \d+ 1 1\]")
        typ, data = m._simple_command("MOVE", "2", "Trash")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.select("INBOX")[1], [b"1"])
        m.store("1", "+FLAGS", "\\Deleted")
        typ, data = m.expunge()
        self.assertEqual(data, [b"1"])
        self.assertEqual(m.select("INBOX")[1], [b"0"])
        self.assertEqual(m.select("Trash")[1], [b"1"])
        self.assertEqual(m.select("Archive")[1], [b"1"])
        self.assertIn(b"$Work", m.fetch("1", "FLAGS")[1][0])
        m.logout()

    def test_mailbox_management(self):
        m = self.login()
        self.assertEqual(m.create("Projects/Hato")[0], "OK")
        self.assertEqual(m.create("Projects/Hato")[0], "NO")
        self.assertEqual(m.rename("Projects", "Work")[0], "OK")
        names = b"\n".join(m.list('""', "Work*")[1])
        self.assertIn(b'"Work/Hato"', names)
        self.assertIn(b"\\HasChildren", names)
        self.assertEqual(m.delete("Work/Hato")[0], "OK")
        self.assertEqual(m.select("Work/Hato")[0], "NO")
        self.assertEqual(m.create("Caf&AOk-")[0], "OK")  # modified UTF-7 "Café"
        self.assertIn(b"Caf&AOk-", b"\n".join(m.list()[1]))
        typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
        self.assertRegex(data[0].decode(), r"MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0")
        m.logout()

    def idling_client(self):
        """A raw client logged in as alice, INBOX selected, in IDLE (tag c)."""
        c = LineClient(self.server.imap_port)
        c.line()
        c.send(f"a LOGIN {ALICE} {PASSWORD}\r\n")
        while not c.line().startswith("a OK"):
            pass
        c.send("b SELECT INBOX\r\n")
        while not c.line().startswith("b OK"):
            pass
        c.send("c IDLE\r\n")
        self.assertTrue(c.line().startswith("+"))
        return c

    def test_idle_pushes_new_mail_within_a_second(self):
        c = self.idling_client()
        start = time.time()
        deliver(self.server, b"Subject: pushed\r\n\r\nnew\r\n")
        self.assertEqual(c.line(), "* 1 EXISTS")
        self.assertLess(time.time() - start, 1.5)
        self.assertEqual(c.line(), "* 1 RECENT")  # this session saw it first (RFC 3501 2.3.2)
        c.send("DONE\r\n")
        self.assertTrue(c.line().startswith("c OK"))
        c.close()

    def test_idle_session_stays_in_step_while_its_view_sleeps(self):
        # The IDLE session keeps only UIDs (view.h); updates pushed during IDLE
        # and the metadata reloaded after it must match the mailbox exactly.
        for i in range(6):
            deliver(self.server, f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode())
        c = self.idling_client()
        time.sleep(1.5)  # past kViewSleepAfter: the view keeps only UIDs now
        other = self.login()
        other.select("INBOX")
        other.store("2", "+FLAGS", "\\Flagged")
        # \\Recent: this session selected first; it survives the view's sleep.
        self.assertEqual(c.line(), "* 2 FETCH (FLAGS (\\Flagged \\Recent))")
        other.store("3,5", "+FLAGS", "\\Deleted")
        other.expunge()
        # The \\Deleted flags may or may not be pushed before the expunges
        # (depending on timing); the expunges come highest first, each number
        # valid when sent.
        pushed = []
        while not pushed or pushed[-1] != "* 3 EXPUNGE":
            pushed.append(c.line())
        expunges = [l for l in pushed if l.endswith("EXPUNGE")]
        self.assertEqual(expunges, ["* 5 EXPUNGE", "* 3 EXPUNGE"])
        for l in pushed:
            if not l.endswith("EXPUNGE"):
                self.assertIn(l, ["* 3 FETCH (FLAGS (\\Deleted \\Recent))",
                                  "* 5 FETCH (FLAGS (\\Deleted \\Recent))"])
        deliver(self.server, b"Subject: late\r\n\r\nnew\r\n")
        self.assertEqual(c.line(), "* 5 EXISTS")
        time.sleep(1.5)  # past kViewSleepAfter: the view is asleep now
        c.send("DONE\r\n")
        line = c.line()
        while re.match(r"^\* \d+ RECENT$", line):  # if this session claimed the new message
            line = c.line()
        self.assertTrue(line.startswith("c OK"), line)
        # A change between IDLE and the next command is still reported.
        other.store("1", "+FLAGS", "\\Answered")
        c.send("d FETCH 1:* (UID FLAGS)\r\n")
        lines = []
        while True:
            line = c.line()
            if line.startswith("d "):
                self.assertTrue(line.startswith("d OK"), line)
                break
            lines.append(line)
        fetched = [l for l in lines if "UID" in l]
        self.assertEqual(len(fetched), 5, lines)
        # The \\Answered may come in the FETCH itself or in an update after it.
        last = {}
        for l in lines:
            m = re.match(r"^\* (\d+) FETCH \(.*FLAGS \(([^)]*)\)", l)
            if m:
                last[m.group(1)] = m.group(2)
        # Every message is \\Recent here: this session was the first to see them.
        self.assertEqual(last["1"], "\\Answered \\Recent", lines)
        self.assertEqual(last["2"], "\\Flagged \\Recent", lines)
        self.assertEqual([re.search(r"UID (\d+)", l).group(1) for l in fetched],
                         ["1", "2", "4", "6", "7"])
        c.send("e LOGOUT\r\n")
        c.close()
        other.logout()

    def test_two_sessions_see_each_others_changes(self):
        deliver(self.server, b"Subject: shared\r\n\r\nx\r\n")
        a, b = self.login(), self.login()
        a.select("INBOX")
        b.select("INBOX")
        a.store("1", "+FLAGS", "\\Seen")
        typ, data = b.noop()
        self.assertIn(b"\\Seen", b"\n".join(x for x in b.untagged_responses.get("FETCH", [])))
        a.store("1", "+FLAGS", "\\Deleted")
        a.expunge()
        b.noop()
        self.assertEqual(b.untagged_responses.get("EXPUNGE"), [b"1"])
        a.logout()
        b.logout()

    def test_uids_stable_across_restart(self):
        deliver(self.server, b"Subject: one\r\n\r\n1\r\n")
        deliver(self.server, b"Subject: two\r\n\r\n2\r\n")
        m = self.login()
        m.select("INBOX")
        before = m.uid("FETCH", "1:*", "(UID)")[1]
        validity = m.response("UIDVALIDITY")
        m.logout()
        self.server.stop()
        self.server.start()
        m = self.login()
        m.select("INBOX")
        self.assertEqual(m.uid("FETCH", "1:*", "(UID)")[1], before)
        m.logout()

    def test_condstore_and_starttls(self):
        deliver(self.server, b"Subject: c\r\n\r\nc\r\n")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=15)
        m.starttls(ssl_context=ctx)
        m.login(ALICE, PASSWORD)
        m._simple_command("ENABLE", "CONDSTORE")
        m.select("INBOX")
        typ, data = m.fetch("1", "(MODSEQ)")
        modseq = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))
        m.store("1", "+FLAGS", "\\Answered")
        typ, data = m.fetch("1", f"(FLAGS) (CHANGEDSINCE {modseq})")
        self.assertIn(b"\\Answered", data[0])
        m.logout()

    def test_qresync_uid_fetch_vanished(self):
        # RFC 7162 section 3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED).
        for i in range(4):
            deliver(self.server, f"Subject: q{i}\r\n\r\n{i}\r\n".encode())
        c = LineClient(self.server.imap_port)
        c.line()

        def run(tag, command):
            c.send(f"{tag} {command}\r\n")
            lines = []
            while True:
                line = c.line()
                if line.startswith(tag + " "):
                    return lines, line
                lines.append(line)

        run("a", f"LOGIN {ALICE} {PASSWORD}")
        _, done = run("b", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        self.assertTrue(done.startswith("b BAD"), done)  # QRESYNC not enabled
        run("c", "ENABLE QRESYNC")
        lines, _ = run("d", "SELECT INBOX")
        modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(lines)).group(1))
        other = self.login()
        other.select("INBOX")
        other.store("2,4", "+FLAGS", "\\Deleted")
        other.expunge()
        other.store("1", "+FLAGS", "\\Seen")
        other.logout()
        lines, done = run("e", f"UID FETCH 1:3 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
        self.assertTrue(done.startswith("e OK"), done)
        self.assertIn("* VANISHED (EARLIER) 2", lines)  # 4 is outside the set
        self.assertTrue(any("UID 1" in l and "\\Seen" in l for l in lines), lines)
        c.close()

    def test_bad_commands_and_limits(self):
        c = LineClient(self.server.imap_port)
        c.line()
        c.send("a FETCH 1 FLAGS\r\n")
        self.assertTrue(c.line().startswith("a BAD"))  # not selected
        c.send("b NOSUCH\r\n")
        self.assertTrue(c.line().startswith("b BAD"))
        c.send("c LOGIN alice@example.test wrong\r\n")
        self.assertTrue(c.line().startswith("c NO [AUTHENTICATIONFAILED]"))
        c.send("d APPEND INBOX {999999999999}\r\n")
        self.assertTrue(c.line().startswith("d "))  # refused, never "+"
        c.send("e LOGOUT\r\n")
        self.assertTrue(c.line().startswith("* BYE"))
        c.close()


if __name__ == "__main__":
    unittest.main()
