"""Issue 16: PARTIAL results (RFC 5267 section 4.4, RFC 9394) of SEARCH,
SORT and UID FETCH over a live `hato serve`. The positive ranges of SEARCH
are checked against a throw-away Dovecot (CONTEXT=SEARCH) too; negative
ranges, SORT's order and the FETCH modifier are RFC 9394's, which Dovecot
2.3 lacks."""
import re
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw
from test_migrate import DovecotPeer, have_dovecot

COUNT = 10


def esearch(line):
    """The return data of an ESEARCH line as a dict (order is free, RFC 4731)."""
    m = re.match(r'^\* ESEARCH \(TAG "[^"]*"\)( UID)?(.*)$', line)
    assert m, line
    out = {"UID": bool(m.group(1))}
    rest = m.group(2)
    for name, value in re.findall(r" (MIN|MAX|COUNT|ALL|MODSEQ|PARTIAL) (\([^)]*\)|\S+)", rest):
        out[name] = value
    return out


class PartialChecks:
    def fill(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        r.cmd("c CREATE P", "c")
        for i in range(COUNT):
            msg = f"From: u{i}@x.test\r\nSubject: m{i}\r\nMessage-ID: <p{i}@x.test>\r\n\r\nbody {i}\r\n".encode()
            date = f"{i + 1:02d}-Jan-2024 00:00:00 +0000"  # distinct arrival times
            r.sock.sendall(f'ap APPEND P "{date}" {{{len(msg)}+}}\r\n'.encode() + msg + b"\r\n")
            self.assertTrue(r.until("ap")[-1].startswith("ap OK"))
        r.cmd("s SELECT P", "s")
        r.cmd("st STORE 2,4,6,8,10 +FLAGS.SILENT (\\Seen)", "st")
        return r

    def one(self, r, command, tag="t"):
        lines = r.cmd(f"{tag} {command}", tag)
        self.assertTrue(lines[-1].startswith(f"{tag} OK"), (command, lines))
        self.assertEqual(len(lines), 2, (command, lines))
        return esearch(lines[0])

    def test_search_partial(self):
        r = self.fill()
        # Unseen: 1 3 5 7 9.
        self.assertEqual(self.one(r, "SEARCH RETURN (PARTIAL 1:3) UNSEEN"),
                         {"UID": False, "PARTIAL": "(1:3 1,3,5)"})
        self.assertEqual(self.one(r, "SEARCH RETURN (PARTIAL 4:10) UNSEEN"),
                         {"UID": False, "PARTIAL": "(4:10 7,9)"})
        self.assertEqual(self.one(r, "SEARCH RETURN (PARTIAL 6:10) UNSEEN"),
                         {"UID": False, "PARTIAL": "(6:10 NIL)"})
        self.assertEqual(self.one(r, "UID SEARCH RETURN (COUNT PARTIAL 2:3) ALL"),
                         {"UID": True, "COUNT": "10", "PARTIAL": "(2:3 2:3)"})
        # Either order names the same range, echoed smaller first.
        self.assertEqual(self.one(r, "SEARCH RETURN (PARTIAL 3:2) SEEN"),
                         {"UID": False, "PARTIAL": "(2:3 4,6)"})
        # Nothing matched: MIN left out, PARTIAL NIL.
        self.assertEqual(self.one(r, "SEARCH RETURN (MIN PARTIAL 1:2) UID 100"),
                         {"UID": False, "PARTIAL": "(1:2 NIL)"})
        for bad in ("SEARCH RETURN (ALL PARTIAL 1:2) ALL",       # RFC 9394 section 3.1
                    "SEARCH RETURN (PARTIAL 1:2 PARTIAL 1:2) ALL",
                    "SEARCH RETURN (PARTIAL 0:2) ALL",
                    "SEARCH RETURN (PARTIAL 1) ALL"):
            self.assertIn(" BAD", r.cmd(f"b {bad}", "b")[-1], bad)


class HatoPartialTest(PartialChecks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, f"alice@{DOMAIN}", PASSWORD

    def test_capability(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        self.assertIn("PARTIAL", r.cmd("k CAPABILITY", "k")[0].split())

    def test_negative_ranges(self):
        """RFC 9394 section 3.1: -1 is the last result."""
        r = self.fill()
        self.assertEqual(self.one(r, "SEARCH RETURN (PARTIAL -1:-2) ALL"),
                         {"UID": False, "PARTIAL": "(-1:-2 9:10)"})
        self.assertEqual(self.one(r, "SEARCH RETURN (PARTIAL -5:-3) UNSEEN"),
                         {"UID": False, "PARTIAL": "(-3:-5 1,3,5)"})
        self.assertEqual(self.one(r, "UID SEARCH RETURN (PARTIAL -1:-100) SEEN"),
                         {"UID": True, "PARTIAL": "(-1:-100 2,4,6,8,10)"})
        self.assertEqual(self.one(r, "SEARCH RETURN (PARTIAL -11:-20) ALL"),
                         {"UID": False, "PARTIAL": "(-11:-20 NIL)"})

    def test_sort_partial_in_sort_order(self):
        """RFC 5267 section 4.4: for SORT the positions are in sort order."""
        r = self.fill()
        self.assertEqual(self.one(r, "SORT RETURN (PARTIAL 1:3) (REVERSE ARRIVAL) UTF-8 ALL"),
                         {"UID": False, "PARTIAL": "(1:3 10,9,8)"})
        self.assertEqual(self.one(r, "UID SORT RETURN (COUNT PARTIAL -1:-2) (REVERSE SUBJECT) UTF-8 UNSEEN"),
                         {"UID": True, "COUNT": "5", "PARTIAL": "(-1:-2 3,1)"})
        self.assertEqual(self.one(r, "SORT RETURN (MIN PARTIAL 2:4) (SUBJECT) UTF-8 ALL"),
                         {"UID": False, "MIN": "1", "PARTIAL": "(2:4 2:4)"})

    def test_uid_fetch_partial(self):
        """RFC 9394 section 3.2: the FETCH modifier takes the positions of
        the messages the set (and CHANGEDSINCE) leave, in UID order."""
        r = self.fill()
        lines = r.cmd("f UID FETCH 1:* (FLAGS) (PARTIAL -1:-3)", "f")
        self.assertTrue(lines[-1].startswith("f OK"), lines)
        self.assertEqual([int(re.match(r"\* (\d+) FETCH", l).group(1)) for l in lines[:-1]], [8, 9, 10])
        lines = r.cmd("f2 UID FETCH 3:* (UID) (PARTIAL 2:3)", "f2")
        self.assertEqual(lines[:-1], ["* 4 FETCH (UID 4)", "* 5 FETCH (UID 5)"])
        lines = r.cmd("f3 FETCH 1:* (UID) (PARTIAL 20:30)", "f3")
        self.assertEqual(lines[:-1], [])
        self.assertTrue(lines[-1].startswith("f3 OK"), lines)


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotPartialTest(DovecotPeer, PartialChecks, unittest.TestCase):
    """The SEARCH exchanges against Dovecot (CONTEXT=SEARCH, RFC 5267)."""


if __name__ == "__main__":
    unittest.main()
