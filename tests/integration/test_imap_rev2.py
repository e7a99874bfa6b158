"""Issue 16: IMAP4rev2 (RFC 9051) beside IMAP4rev1 over a live `hato
serve`: ENABLE IMAP4rev2 and what changes with it (no \\Recent, ESEARCH
answers to SEARCH, UTF-8 mailbox names), and SEARCHRES (RFC 5182, part of
IMAP4rev2), whose exchanges are also run against a throw-away Dovecot."""
import re
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw
from test_migrate import DovecotPeer, have_dovecot


def append(r, mailbox, n, tag="ap"):
    for i in range(n):
        msg = f"From: u{i}@x.test\r\nSubject: r{i}\r\n\r\nbody {i}\r\n".encode()
        r.sock.sendall(f"{tag} APPEND {mailbox} {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
        lines = r.until(tag)
        assert lines[-1].startswith(f"{tag} OK"), lines


class SearchResChecks:
    def fill(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        r.cmd("c CREATE R", "c")
        append(r, "R", 6)
        r.cmd("s SELECT R", "s")
        r.cmd("st STORE 2,4 +FLAGS.SILENT (\\Seen)", "st")
        return r

    def ok(self, r, command, tag="t"):
        lines = r.cmd(f"{tag} {command}", tag)
        self.assertTrue(lines[-1].startswith(f"{tag} OK"), (command, lines))
        return lines[:-1]

    def test_saved_result(self):
        r = self.fill()
        self.assertIn("SEARCHRES", r.cmd("k CAPABILITY", "k")[0].split())
        # SAVE alone: no ESEARCH (RFC 5182 section 2.1).
        self.assertEqual(self.ok(r, "SEARCH RETURN (SAVE) UNSEEN"), [])
        self.assertEqual(self.ok(r, "FETCH $ (UID)"),
                         ["* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)", "* 5 FETCH (UID 5)",
                          "* 6 FETCH (UID 6)"])
        self.assertEqual(self.ok(r, "SEARCH $ 4:6"), ["* SEARCH 5 6"])
        self.assertEqual(self.ok(r, "UID SEARCH UID $ NOT 1"), ["* SEARCH 3 5 6"])
        self.ok(r, "STORE $ +FLAGS.SILENT (\\Flagged)")
        self.assertEqual(self.ok(r, "SEARCH FLAGGED"), ["* SEARCH 1 3 5 6"])
        # With MIN and MAX only those are saved.
        self.assertEqual(self.ok(r, "SEARCH RETURN (MIN MAX SAVE) UNSEEN"),
                         ['* ESEARCH (TAG "t") MIN 1 MAX 6'])
        self.assertEqual(self.ok(r, "UID FETCH $ (UID)"),
                         ["* 1 FETCH (UID 1)", "* 6 FETCH (UID 6)"])
        # A search that matched nothing saves the empty set.
        self.assertEqual(self.ok(r, "SEARCH RETURN (SAVE) UID 1000"), [])
        self.assertEqual(self.ok(r, "FETCH $ (UID)"), [])
        # SORT saves too (RFC 5267 with RFC 5182); MIN alone saves the first in sort order.
        if "SORT" in r.cmd("k2 CAPABILITY", "k2")[0].split():
            self.assertEqual(self.ok(r, "SORT RETURN (SAVE) (REVERSE SUBJECT) UTF-8 SEEN"), [])
            self.assertEqual(self.ok(r, "FETCH $ (UID)"), ["* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)"])
            self.assertEqual(self.ok(r, "SORT RETURN (MIN SAVE) (REVERSE SUBJECT) UTF-8 SEEN"),
                             ['* ESEARCH (TAG "t") MIN 4'])
            self.assertEqual(self.ok(r, "FETCH $ (UID)"), ["* 4 FETCH (UID 4)"])
        # SELECT forgets the saved result.
        self.ok(r, "SEARCH RETURN (SAVE) ALL")
        self.ok(r, "SELECT R", "s2")
        self.assertEqual(self.ok(r, "FETCH $ (UID)"), [])


class HatoRev2Test(SearchResChecks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, f"alice@{DOMAIN}", PASSWORD

    def test_enable_and_differences(self):
        rev1 = Raw(self.port, self.user, self.password)
        self.addCleanup(rev1.close)
        append(rev1, "INBOX", 2)
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        self.assertIn("IMAP4rev2", r.cmd("k CAPABILITY", "k")[0].split())
        self.assertEqual(self.ok(r, "ENABLE IMAP4rev2"), ["* ENABLED IMAP4rev2"])
        # No RECENT and no [UNSEEN] (RFC 9051 appendix E); the session still
        # takes the \Recent claim, so a later IMAP4rev1 session sees none.
        lines = self.ok(r, "SELECT INBOX", "s")
        self.assertIn("* 2 EXISTS", lines)
        self.assertFalse([l for l in lines if "RECENT" in l or "UNSEEN" in l], lines)
        for l in self.ok(r, "FETCH 1:* (FLAGS)"):
            self.assertNotIn("\\Recent", l)
        # SEARCH answers ESEARCH (section 7.3.4).
        self.assertEqual(self.ok(r, "SEARCH ALL"), ['* ESEARCH (TAG "t") ALL 1:2'])
        self.assertEqual(self.ok(r, "UID SEARCH ALL"), ['* ESEARCH (TAG "t") UID ALL 1:2'])
        self.assertEqual(self.ok(r, "SEARCH UID 99"), ['* ESEARCH (TAG "t")'])
        # New mail: EXISTS, no RECENT.
        append(rev1, "INBOX", 1)
        lines = self.ok(r, "NOOP")
        self.assertIn("* 3 EXISTS", lines)
        self.assertFalse([l for l in lines if "RECENT" in l], lines)
        lines = rev1.cmd("st STATUS INBOX (RECENT)", "st")
        self.assertIn('* STATUS "INBOX" (RECENT 0)', lines)

    def test_removed_recent_items(self):
        """RFC 9051 appendix E: IMAP4rev2 has no RECENT status item and no
        NEW, OLD or RECENT search keys (section 9 grammar): BAD once it is
        enabled, as before for an IMAP4rev1 session."""
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        append(r, "INBOX", 1)
        self.ok(r, "SELECT INBOX", "s")
        self.assertRegex(r.cmd("a STATUS INBOX (MESSAGES RECENT)", "a")[-1], "^a OK")
        self.assertEqual(self.ok(r, "SEARCH NEW"), ["* SEARCH 1"])
        self.ok(r, "ENABLE IMAP4rev2", "e")
        self.assertRegex(r.cmd("b STATUS INBOX (MESSAGES RECENT)", "b")[-1], "^b BAD")
        self.assertRegex(r.cmd('b2 LIST "" INBOX RETURN (STATUS (RECENT))', "b2")[-1], "^b2 BAD")
        for i, key in enumerate(["NEW", "OLD", "RECENT", "NOT NEW", "OR SEEN (UNSEEN RECENT)"]):
            self.assertRegex(r.cmd(f"c{i} SEARCH {key}", f"c{i}")[-1], f"^c{i} BAD", key)
        self.assertRegex(r.cmd("d SORT (ARRIVAL) UTF-8 NEW", "d")[-1], "^d BAD")
        self.assertIn('* STATUS "INBOX" (MESSAGES 1)', self.ok(r, "STATUS INBOX (MESSAGES)"))
        self.assertEqual(self.ok(r, "SEARCH UNSEEN"), ['* ESEARCH (TAG "t") ALL 1'])

    def test_utf8_mailbox_names(self):
        """RFC 9051 section 5.1: with IMAP4rev2, names are UTF-8, not
        modified UTF-7; an IMAP4rev1 session still sees modified UTF-7."""
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        self.ok(r, "ENABLE IMAP4rev2")
        r.sock.sendall('c CREATE "Café/Ünï"\r\n'.encode())
        self.assertTrue(r.until("c")[-1].startswith("c OK"))
        lines = self.ok(r, 'LIST "" "Caf*"')
        self.assertIn('* LIST (\\HasChildren) "/" "Café"', lines)
        self.assertIn('* LIST (\\HasNoChildren) "/" "Café/Ünï"', lines)
        r.sock.sendall('s SELECT "Café/Ünï"\r\n'.encode())
        self.assertTrue(r.until("s")[-1].startswith("s OK"))
        # "&" is an ordinary character in IMAP4rev2.
        self.ok(r, 'CREATE "R&D"', "c2")
        rev1 = Raw(self.port, self.user, self.password)
        self.addCleanup(rev1.close)
        lines = rev1.cmd('l LIST "" "*"', "l")
        self.assertIn('* LIST (\\HasChildren) "/" "Caf&AOk-"', lines)
        self.assertIn('* LIST (\\HasNoChildren) "/" "R&-D"', lines)

    def test_oldname(self):
        """RFC 9051 sections 6.3.6 and 7.3.1: after a RENAME an IMAP4rev2
        session is told each renamed mailbox, inferiors included, by an
        untagged LIST with an OLDNAME extended data item; INBOX's inferiors
        stay where they are. A CREATE whose name the server normalized
        ("inbox/x" is "INBOX/x") is told the same way (section 6.3.4); an
        IMAP4rev1 session gets no such LIST."""
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        self.ok(r, "ENABLE IMAP4rev2")
        self.ok(r, "CREATE a/b/c")
        self.assertEqual(self.ok(r, "RENAME a/b x"), [
            '* LIST (\\HasChildren) "/" "x" ("OLDNAME" ("a/b"))',
            '* LIST (\\HasNoChildren) "/" "x/c" ("OLDNAME" ("a/b/c"))'])
        self.assertEqual(self.ok(r, 'LIST "" "x*"'), [
            '* LIST (\\HasChildren) "/" "x"', '* LIST (\\HasNoChildren) "/" "x/c"'])
        # UTF-8 names both ways (section 5.1).
        r.sock.sendall('u RENAME x/c "Ünï"\r\n'.encode())
        lines = r.until("u")
        self.assertEqual(lines, ['* LIST (\\HasNoChildren) "/" "Ünï" ("OLDNAME" ("x/c"))',
                                 "u OK RENAME completed"])
        # INBOX: its messages move, its children stay (section 6.3.6).
        self.ok(r, "CREATE INBOX/kid")
        self.assertEqual(self.ok(r, "RENAME INBOX old-inbox"),
                         ['* LIST (\\HasNoChildren) "/" "old-inbox" ("OLDNAME" ("INBOX"))'])
        # A normalized CREATE.
        self.assertEqual(self.ok(r, "CREATE inbox/Sub")[:1],
                         ['* LIST (\\HasNoChildren) "/" "INBOX/Sub" ("OLDNAME" ("inbox/Sub"))'])
        self.assertEqual(self.ok(r, "CREATE Plain")[:1], [])
        # A failed RENAME says nothing.
        lines = r.cmd("f RENAME nosuch y", "f")
        self.assertEqual(len(lines), 1)
        self.assertRegex(lines[0], r"^f NO \[NONEXISTENT\]")
        rev1 = Raw(self.port, self.user, self.password)
        self.addCleanup(rev1.close)
        self.assertEqual(self.ok(rev1, "RENAME Plain Plain2"), [])
        self.assertEqual(self.ok(rev1, "CREATE inbox/Sub2")[:1], [])


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotSearchResTest(DovecotPeer, SearchResChecks, unittest.TestCase):
    """SEARCHRES against Dovecot (IMAP4rev1 with SEARCHRES)."""


if __name__ == "__main__":
    unittest.main()
