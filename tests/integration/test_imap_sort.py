"""Issue 16: SORT (RFC 5256, RFC 5957 SORT=DISPLAY, RFC 5267 ESORT) and
THREAD (RFC 5256 ORDEREDSUBJECT and REFERENCES, with the base subject of
section 2.1) over a live `hato serve`. The same mailbox goes to a
throw-away Dovecot (as in test_migrate.py) and both must give the answers
below, which are Dovecot's (the REFERENCES threads were also checked by
hand against the steps of RFC 5256 section 3)."""
import os
import re
import sqlite3
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw
from test_migrate import DovecotPeer, have_dovecot

# (INTERNALDATE, message): subjects with Re:/Fwd:/[blob]/(fwd)/[fwd: ...],
# a missing Date, a duplicate Message-ID, a lost common parent, encoded words.
MSGS = [
 ("01-Feb-2024 00:00:01 +0000", b"From: Zed <zed@x.test>\r\nTo: bob@x.test\r\nSubject: Hello world\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@x.test>\r\n\r\nbody one\r\n"),
 ("01-Feb-2024 00:00:02 +0000", b"From: alice@x.test\r\nTo: Zed <zed@x.test>\r\nCc: carol@x.test\r\nSubject: Re: Hello world\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <2@x.test>\r\nIn-Reply-To: <1@x.test>\r\nReferences: <1@x.test>\r\n\r\nreply\r\n"),
 ("01-Feb-2024 00:00:03 +0000", b"From: \"Bob B\" <bob@x.test>\r\nTo: alice@x.test\r\nSubject: [list] Fwd: Another\r\nDate: Sun, 31 Dec 2023 23:30:00 +0100\r\nMessage-ID: <3@x.test>\r\n\r\nfwd body that is longer than the others\r\n"),
 ("01-Feb-2024 00:00:04 +0000", b"From: carol@x.test\r\nTo: dave@x.test\r\nSubject: another (fwd)\r\nMessage-ID: <4@x.test>\r\n\r\nno date\r\n"),
 ("01-Feb-2024 00:00:05 +0000", b"From: dave@x.test\r\nTo: alice@x.test\r\nSubject: Re: Re: hello world\r\nDate: Wed, 03 Jan 2024 10:00:00 -0500\r\nMessage-ID: <5@x.test>\r\nReferences: <1@x.test>\r\n <2@x.test>\r\n\r\nr2\r\n"),
 ("01-Feb-2024 00:00:06 +0000", b"From: =?UTF-8?Q?=C3=89mile?= <emile@x.test>\r\nTo: =?UTF-8?Q?Z=C3=A9?= <ze@x.test>\r\nCc: bob@x.test\r\nSubject: =?UTF-8?B?w4ljb2xl?=\r\nDate: Thu, 04 Jan 2024 10:00:00 +0000\r\nMessage-ID: <6@x.test>\r\n\r\nutf8\r\n"),
 ("01-Feb-2024 00:00:07 +0000", b"From: eve@x.test\r\nTo: bob@x.test\r\nSubject: Lost parent\r\nDate: Fri, 05 Jan 2024 10:00:00 +0000\r\nMessage-ID: <7@x.test>\r\nReferences: <missing@x.test>\r\n\r\nlost\r\n"),
 ("01-Feb-2024 00:00:08 +0000", b"From: frank@x.test\r\nTo: bob@x.test\r\nSubject: Re: Lost parent\r\nDate: Sat, 06 Jan 2024 10:00:00 +0000\r\nMessage-ID: <8@x.test>\r\nReferences: <missing@x.test>\r\n\r\nlost too\r\n"),
 ("01-Feb-2024 00:00:09 +0000", b"From: gina@x.test\r\nTo: bob@x.test\r\nSubject: dup\r\nDate: Sun, 07 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@x.test>\r\n\r\nduplicate id\r\n"),
 ("01-Feb-2024 00:00:10 +0000", b"X-Nothing: here\r\n\r\nno headers\r\n"),
 ("01-Feb-2024 00:00:11 +0000", b"From: hank@x.test\r\nTo: bob@x.test\r\nSubject: [fwd: Hello world]\r\nDate: Mon, 08 Jan 2024 10:00:00 +0000\r\nMessage-ID: <11@x.test>\r\n\r\nwrapped\r\n"),
 ("01-Feb-2024 00:00:12 +0000", b"From: ivan@x.test\r\nTo: bob@x.test\r\nSubject: Another\r\nDate: Tue, 09 Jan 2024 10:00:00 +0000\r\nMessage-ID: <12@x.test>\r\n\r\nsame subject, not a reply\r\n"),
 ("01-Feb-2024 00:00:13 +0000", b"From: Jo <jo@x.test>\r\nTo: bob@x.test\r\nSubject: Re: [list] Lost parent\r\nDate: Tue, 09 Jan 2024 10:00:00 +0000\r\nMessage-ID: <13@x.test>\r\nIn-Reply-To: <8@x.test>\r\n\r\nin-reply-to only\r\n"),
]
EXPECTED = [
    ("SORT (DATE) UTF-8 ALL", "* SORT 3 1 2 5 6 7 8 9 11 12 13 4 10"),
    ("SORT (REVERSE DATE) UTF-8 ALL", "* SORT 10 4 12 13 11 9 8 7 6 5 2 1 3"),
    ("SORT (ARRIVAL) UTF-8 ALL", "* SORT 1 2 3 4 5 6 7 8 9 10 11 12 13"),
    ("SORT (REVERSE ARRIVAL) UTF-8 ALL", "* SORT 13 12 11 10 9 8 7 6 5 4 3 2 1"),
    ("SORT (SUBJECT) UTF-8 ALL", "* SORT 10 3 4 12 9 6 1 2 5 11 7 8 13"),
    ("SORT (FROM) UTF-8 ALL", "* SORT 10 2 3 4 5 6 7 8 9 11 12 13 1"),
    ("SORT (TO) UTF-8 ALL", "* SORT 10 3 5 1 7 8 9 11 12 13 4 6 2"),
    ("SORT (CC) UTF-8 ALL", "* SORT 1 3 4 5 7 8 9 10 11 12 13 6 2"),
    ("SORT (SIZE) UTF-8 ALL", "* SORT 10 4 9 1 11 12 7 8 5 13 3 6 2"),
    ("SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 10 2 3 4 5 7 6 8 9 11 12 13 1"),
    ("SORT (DISPLAYTO) UTF-8 ALL", "* SORT 10 3 5 1 7 8 9 11 12 13 4 2 6"),
    ("SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "* SORT 10 4 12 3 9 6 11 5 2 1 13 8 7"),
    ("UID SORT (FROM) UTF-8 NOT FROM bob", "* SORT 10 2 4 5 6 7 8 9 11 12 13 1"),
    ("SORT (SUBJECT) US-ASCII 2:9", "* SORT 3 4 9 6 2 5 7 8"),
    # ESORT (RFC 5267 section 3): MIN/MAX are the first/last in sort order.
    ("SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL",
     '* ESEARCH (TAG "{tag}") MIN 3 MAX 10 COUNT 13'),
    ("SORT RETURN (ALL) (ARRIVAL) UTF-8 ALL", '* ESEARCH (TAG "{tag}") ALL 1:13'),
    ("UID SORT RETURN () (REVERSE SUBJECT) UTF-8 ALL",
     '* ESEARCH (TAG "{tag}") UID ALL 7:8,13,1:2,5,11,6,9,3:4,12,10'),
    ("THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (3 (12)(4))(1 (2)(5)(11))(6)(7 (8)(13))(9)(10)"),
    ("THREAD REFERENCES UTF-8 ALL", "* THREAD (1 (2 5)(11))(6)((7)(8 13))(9)(12 (3)(4))(10)"),
    ("UID THREAD REFERENCES UTF-8 ALL", "* THREAD (1 (2 5)(11))(6)((7)(8 13))(9)(12 (3)(4))(10)"),
    ("THREAD REFERENCES UTF-8 2:8", "* THREAD ((3)(4))(2 5)(6)((7)(8))"),
    # Nothing matches (Dovecot sends "* THREAD " with a space the grammar does not have).
    ("THREAD REFERENCES UTF-8 UID 9999", "* THREAD"),
    ("SORT (DATE) UTF-8 UID 9999", "* SORT"),
    ("SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 UID 9999", '* ESEARCH (TAG "{tag}") COUNT 0'),
]


class SortChecks:
    def fill(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        r.cmd("c CREATE S", "c")
        for date, msg in MSGS:
            r.sock.sendall(f'ap APPEND S "{date}" {{{len(msg)}+}}\r\n'.encode() + msg + b"\r\n")
            self.assertTrue(r.until("ap")[-1].startswith("ap OK"))
        r.cmd("s SELECT S", "s")
        return r

    def test_sort_and_thread_answers(self):
        r = self.fill()
        caps = r.cmd("k CAPABILITY", "k")[0].split()
        for cap in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"):
            self.assertIn(cap, caps)
        for i, (command, want) in enumerate(EXPECTED):
            tag = f"t{i}"
            lines = r.cmd(f"{tag} {command}", tag)
            self.assertTrue(lines[-1].startswith(f"{tag} OK"), (command, lines))
            self.assertEqual([l.rstrip() for l in lines[:-1]], [want.format(tag=tag)], command)

    def test_modseq_in_sort(self):
        """RFC 7162 section 3.1.5 and section 7 (sort-data): a MODSEQ
        criterion gives the highest mod-sequence of the messages returned,
        "(MODSEQ n)" after SORT's numbers and "MODSEQ n" in ESORT's ESEARCH."""
        r = self.fill()
        modseqs = {}
        for l in r.cmd("f FETCH 1:* (MODSEQ)", "f")[:-1]:
            m = re.match(r"\* (\d+) FETCH \(MODSEQ \((\d+)\)\)", l)
            if m:
                modseqs[int(m.group(1))] = int(m.group(2))
        self.assertEqual(len(modseqs), len(MSGS))
        top = max(modseqs[n] for n in (1, 2, 3))
        lines = r.cmd("m1 SORT (REVERSE ARRIVAL) UTF-8 MODSEQ 1 1:3", "m1")
        self.assertTrue(lines[-1].startswith("m1 OK"), lines)
        self.assertIn(f"* SORT 3 2 1 (MODSEQ {top})", lines)
        lines = r.cmd("m2 SORT RETURN (MIN COUNT) (REVERSE ARRIVAL) UTF-8 MODSEQ 1 1:3", "m2")
        self.assertIn(f'* ESEARCH (TAG "m2") MIN 3 COUNT 3 MODSEQ {top}', lines)
        # Nothing returned: no MODSEQ.
        lines = r.cmd("m3 SORT (DATE) UTF-8 MODSEQ 999999999", "m3")
        self.assertIn("* SORT", lines)

    def test_errors(self):
        r = self.fill()
        self.assertIn(" BAD", r.cmd("b1 SORT (NOSUCH) UTF-8 ALL", "b1")[-1])
        self.assertIn(" BAD", r.cmd("b2 SORT (DATE) ALL", "b2")[-1])
        self.assertIn(" BAD", r.cmd("b3 THREAD NOSUCH UTF-8 ALL", "b3")[-1])
        self.assertIn("BADCHARSET", r.cmd("b4 SORT (DATE) X-NO-SUCH-CHARSET ALL", "b4")[-1])


class HatoSortTest(SortChecks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, f"alice@{DOMAIN}", PASSWORD

    def test_keys_stored_at_delivery_answer_after_restart(self):
        """Issue 16: each body's SORT keys record is stored with it (SORT on
        a cold server reads the records, not every tree); after a restart
        the answers are still Dovecot's."""
        r = self.fill()
        r.close()
        db = sqlite3.connect(os.path.join(self.server.data, "meta.db"))
        try:
            n = db.execute("SELECT count(*) FROM blobs WHERE sort_keys IS NOT NULL").fetchone()[0]
        finally:
            db.close()
        self.assertEqual(n, len(MSGS))
        self.server.stop()
        self.server.start()
        r = Raw(self.server.imap_port, self.user, self.password)
        self.addCleanup(r.close)
        r.cmd("s SELECT S", "s")
        for i, (command, want) in enumerate(EXPECTED):
            tag = f"t{i}"
            lines = r.cmd(f"{tag} {command}", tag)
            self.assertTrue(lines[-1].startswith(f"{tag} OK"), (command, lines))
            self.assertEqual([l.rstrip() for l in lines[:-1]], [want.format(tag=tag)], command)

    def test_sort_not_allowed_unselected(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        self.assertIn(" BAD", r.cmd("x SORT (DATE) UTF-8 ALL", "x")[-1])


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotSortTest(DovecotPeer, SortChecks, unittest.TestCase):
    """The same exchanges against Dovecot: the expected answers are its own."""


if __name__ == "__main__":
    unittest.main()
