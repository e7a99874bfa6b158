"""Issue 16: CONTEXT=SEARCH (RFC 5267 section 4) over a live `hato serve`:
SEARCH RETURN (UPDATE) keeps the client's result up to date with ESEARCH
ADDTO and REMOVEFROM as messages arrive, change flags and are expunged by
another session, CANCELUPDATE stops it, and searches the server will not
follow get "* NO [NOUPDATE tag]". The common exchange also runs against a
throw-away Dovecot (as in test_migrate.py), which has CONTEXT=SEARCH too."""
import re
import time
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw
from test_migrate import DovecotPeer, have_dovecot

UPDATE = re.compile(r'^\* ESEARCH \(TAG "([^"]+)"\)( UID)? (ADDTO|REMOVEFROM) \((\d+) ([0-9:,]+)\)$')


def expand(seqset):
    out = []
    for part in seqset.split(","):
        a, _, b = part.partition(":")
        lo, hi = sorted((int(a), int(b or a)))
        out.extend(range(lo, hi + 1))
    return out


def updates(lines, tag):
    """[(kind, [numbers])] of the ADDTO/REMOVEFROM updates for `tag`, in order."""
    out = []
    for l in lines:
        m = UPDATE.match(l)
        if m and m.group(1) == tag:
            out.append((m.group(3), expand(m.group(5))))
    return out


def append(r, box, n, tag="ap"):
    for i in range(n):
        msg = f"From: u{i}@x.test\r\nSubject: c{i}\r\n\r\nbody {i}\r\n".encode()
        r.sock.sendall(f"{tag}{i} APPEND {box} {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
        lines = r.until(f"{tag}{i}")
        assert " OK" in lines[-1], lines


class ContextChecks:
    def raw(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        return r

    def ok(self, r, command, tag="t"):
        lines = r.cmd(f"{tag} {command}", tag)
        self.assertTrue(lines[-1].startswith(f"{tag} OK"), (command, lines))
        return lines[:-1]

    def two_sessions(self):
        """A reader with C selected (UIDs 1-4, 2 seen) and a writer on C."""
        w = self.raw()
        self.ok(w, "CREATE C")
        append(w, "C", 4)
        self.ok(w, "SELECT C", "s")
        self.ok(w, "UID STORE 2 +FLAGS.SILENT (\\Seen)")
        r = self.raw()
        self.ok(r, "SELECT C", "s")
        return r, w

    def test_updates_follow_the_mailbox(self):
        r, w = self.two_sessions()
        self.assertIn("CONTEXT=SEARCH", r.cmd("k CAPABILITY", "k")[0].split())
        # UPDATE alone returns no result, as Dovecot reads RFC 4731 section
        # 3.1 (only an empty RETURN list means ALL).
        self.assertEqual(self.ok(r, "UID SEARCH RETURN (UPDATE) UNSEEN", "u0"),
                         ['* ESEARCH (TAG "u0") UID'])
        self.ok(r, 'CANCELUPDATE "u0"', "cu0")
        lines = self.ok(r, "UID SEARCH RETURN (UPDATE ALL) UNSEEN", "u1")
        self.assertIn('* ESEARCH (TAG "u1") UID ALL 1,3:4', lines)
        # A new unseen message: ADDTO, after the EXISTS (section 4.3.3).
        append(w, "C", 1)
        lines = self.ok(r, "NOOP", "n1")
        self.assertEqual(updates(lines, "u1"), [("ADDTO", [5])], lines)
        self.assertLess(lines.index("* 5 EXISTS"),
                        [i for i, l in enumerate(lines) if "ADDTO" in l][0], lines)
        # Flags set and cleared elsewhere.
        self.ok(w, "UID STORE 3 +FLAGS.SILENT (\\Seen)")
        self.assertEqual(updates(self.ok(r, "NOOP", "n2"), "u1"), [("REMOVEFROM", [3])])
        self.ok(w, "UID STORE 2 -FLAGS.SILENT (\\Seen)")
        self.assertEqual(updates(self.ok(r, "NOOP", "n3"), "u1"), [("ADDTO", [2])])
        # An expunge: REMOVEFROM before the EXPUNGE (section 4.3.4).
        self.ok(w, "UID STORE 4 +FLAGS.SILENT (\\Deleted)")
        self.ok(w, "EXPUNGE", "x")
        lines = self.ok(r, "NOOP", "n4")
        self.assertIn("* 4 EXPUNGE", lines)
        self.assertEqual(updates(lines, "u1"), [("REMOVEFROM", [4])], lines)
        self.assertLess([i for i, l in enumerate(lines) if "REMOVEFROM" in l][0],
                        lines.index("* 4 EXPUNGE"), lines)
        # Changes outside the result say nothing.
        self.ok(w, "UID STORE 3 +FLAGS.SILENT (\\Flagged)")
        self.assertEqual(updates(self.ok(r, "NOOP", "n5"), "u1"), [])
        # CANCELUPDATE ends it (section 4.3.5).
        self.ok(r, 'CANCELUPDATE "u1"', "cu")
        append(w, "C", 1, tag="ap2")
        lines = self.ok(r, "NOOP", "n6")
        self.assertIn("* 5 EXISTS", lines)
        self.assertEqual(updates(lines, "u1"), [])

    def test_updates_end_with_the_selection(self):
        r, w = self.two_sessions()
        self.ok(r, "UID SEARCH RETURN (UPDATE) UNSEEN", "u2")
        self.ok(r, "SELECT C", "s2")
        append(w, "C", 1)
        self.assertEqual(updates(self.ok(r, "NOOP", "n"), "u2"), [])


class HatoContextTest(ContextChecks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, f"alice@{DOMAIN}", PASSWORD

    def test_wire_form(self):
        """Position 0 (SEARCH results are in mailbox order), one ESEARCH per
        change; sequence numbers for a SEARCH without UID (section 4.3.2)."""
        r, w = self.two_sessions()
        self.assertEqual(self.ok(r, "SEARCH RETURN (UPDATE COUNT) UNSEEN", "q1"),
                         ['* ESEARCH (TAG "q1") COUNT 3'])
        self.ok(r, "UID SEARCH RETURN (CONTEXT UPDATE) UNSEEN", "q2")
        append(w, "C", 2)
        lines = self.ok(r, "NOOP", "n")
        self.assertIn('* ESEARCH (TAG "q1") ADDTO (0 5:6)', lines)
        self.assertIn('* ESEARCH (TAG "q2") UID ADDTO (0 5:6)', lines)
        self.ok(w, "UID STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(w, "EXPUNGE", "x")
        lines = self.ok(r, "NOOP", "n2")
        self.assertEqual(lines[:3], ['* ESEARCH (TAG "q1") REMOVEFROM (0 1)',
                                     '* ESEARCH (TAG "q2") UID REMOVEFROM (0 1)', "* 1 EXPUNGE"])
        # Sequence numbers are those after the expunge: UID 3 is now 2.
        self.ok(w, "UID STORE 3 +FLAGS.SILENT (\\Seen)")
        lines = self.ok(r, "NOOP", "n3")
        self.assertIn('* ESEARCH (TAG "q1") REMOVEFROM (0 2)', lines)
        self.assertIn('* ESEARCH (TAG "q2") UID REMOVEFROM (0 3)', lines)

    def test_own_changes_and_idle(self):
        r, w = self.two_sessions()
        self.ok(r, "UID SEARCH RETURN (UPDATE) FLAGGED", "f")
        # The session's own STORE changes its result too.
        lines = self.ok(r, "UID STORE 1 +FLAGS (\\Flagged)", "st")
        self.assertIn('* ESEARCH (TAG "f") UID ADDTO (0 1)', lines)
        # In IDLE (section 4.3.2: at any time), past the view's nap.
        r.sock.sendall(b"i IDLE\r\n")
        self.assertTrue(r.line().startswith("+"))
        time.sleep(1.5)
        self.ok(w, "UID STORE 4 +FLAGS.SILENT (\\Flagged)")
        r.sock.settimeout(10)
        self.assertEqual([r.line(), r.line()],
                         ["* 4 FETCH (FLAGS (\\Flagged))", '* ESEARCH (TAG "f") UID ADDTO (0 4)'])
        r.sock.sendall(b"DONE\r\n")
        self.assertTrue(r.until("i")[-1].startswith("i OK"))

    def test_sort_updates(self):
        """CONTEXT=SORT: positions in the sort order; messages that go are
        removed at their positions, those that come inserted at theirs."""
        r, w = self.two_sessions()
        self.assertIn("CONTEXT=SORT", r.cmd("k CAPABILITY", "k")[0].split())
        # Unseen UIDs 1, 3, 4 (subjects c0, c2, c3), by subject descending.
        self.assertEqual(self.ok(r, "UID SORT RETURN (UPDATE ALL) (REVERSE SUBJECT) UTF-8 UNSEEN",
                                 "s1"), ['* ESEARCH (TAG "s1") UID ALL 4,3,1'])
        self.assertEqual(self.ok(r, "SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 UNSEEN", "s2"),
                         ['* ESEARCH (TAG "s2") COUNT 3'])
        msg = b"From: z@x.test\r\nSubject: b\r\n\r\nlast\r\n"
        w.sock.sendall(b"ap APPEND C {%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertIn(" OK", w.until("ap")[-1])
        lines = self.ok(r, "NOOP", "n1")
        self.assertIn('* ESEARCH (TAG "s1") UID ADDTO (4 5)', lines)  # 4,3,1,5
        self.assertIn('* ESEARCH (TAG "s2") ADDTO (1 5)', lines)      # 5,1,3,4
        self.ok(w, "UID STORE 3 +FLAGS.SILENT (\\Seen)")
        lines = self.ok(r, "NOOP", "n2")
        self.assertIn('* ESEARCH (TAG "s1") UID REMOVEFROM (2 3)', lines)  # 4,1,5
        self.assertIn('* ESEARCH (TAG "s2") REMOVEFROM (3 3)', lines)      # 5,1,4
        self.ok(w, "UID STORE 2 -FLAGS.SILENT (\\Seen)")
        lines = self.ok(r, "NOOP", "n3")
        self.assertIn('* ESEARCH (TAG "s1") UID ADDTO (2 2)', lines)  # 4,2,1,5
        self.assertIn('* ESEARCH (TAG "s2") ADDTO (3 2)', lines)      # 5,1,2,4
        # An expunge: REMOVEFROM at its position, before the EXPUNGE.
        self.ok(w, "UID STORE 4 +FLAGS.SILENT (\\Deleted)")
        self.ok(w, "EXPUNGE", "x")
        lines = self.ok(r, "NOOP", "n4")
        self.assertEqual(lines[:3], ['* ESEARCH (TAG "s1") UID REMOVEFROM (1 4)',
                                     '* ESEARCH (TAG "s2") REMOVEFROM (4 4)', "* 4 EXPUNGE"])
        # What the client now holds is what a new SORT answers.
        self.assertEqual(self.ok(r, "UID SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 UNSEEN", "c1"),
                         ['* ESEARCH (TAG "c1") UID ALL 2,1,5'])
        self.assertEqual(self.ok(r, "SORT (SUBJECT) UTF-8 UNSEEN", "c2"), ["* SORT 4 1 2"])

    def test_refusals(self):
        r, _ = self.two_sessions()
        # Searches that are not followed are answered, after NOUPDATE (4.3.1).
        self.assertEqual(self.ok(r, "UID SEARCH RETURN (UPDATE ALL) BODY body", "b1"),
                         ['* NO [NOUPDATE "b1"] only searches on flags, sizes, dates and UIDs '
                          'are updated', '* ESEARCH (TAG "b1") UID ALL 1:4'])
        self.assertEqual(self.ok(r, "UID SEARCH RETURN (UPDATE) 1:2", "b2")[0][:22],
                         '* NO [NOUPDATE "b2"] s')
        lines = self.ok(r, "UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 BODY x", "b3")
        self.assertTrue(lines[0].startswith('* NO [NOUPDATE "b3"]'), lines)
        # The tag of a live updating search (section 4.3).
        self.ok(r, "UID SEARCH RETURN (UPDATE) SEEN", "dup")
        self.assertRegex(r.cmd("dup UID SEARCH RETURN (UPDATE) SEEN", "dup")[-1], "^dup BAD")
        # At most kMaxUpdateContexts (8): the ninth is not followed.
        for i in range(7):
            self.assertFalse([l for l in self.ok(r, "UID SEARCH RETURN (UPDATE) SEEN", f"m{i}")
                              if "NOUPDATE" in l])
        lines = self.ok(r, "UID SEARCH RETURN (UPDATE) SEEN", "m7")
        self.assertTrue(lines[0].startswith('* NO [NOUPDATE "m7"] at most 8'), lines)
        # CANCELUPDATE of a tag that names no updating search is BAD.
        self.assertRegex(r.cmd('c CANCELUPDATE "m7"', "c")[-1], "^c BAD")
        self.ok(r, 'CANCELUPDATE "m0" "m1"', "c2")
        self.assertFalse([l for l in self.ok(r, "UID SEARCH RETURN (UPDATE) SEEN", "m8")
                          if "NOUPDATE" in l])
        # Not in the authenticated state.
        self.ok(r, "UNSELECT", "un")
        self.assertRegex(r.cmd('c3 CANCELUPDATE "m8"', "c3")[-1], "^c3 BAD")


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotContextTest(DovecotPeer, ContextChecks, unittest.TestCase):
    """The same updates from Dovecot (CONTEXT=SEARCH)."""


if __name__ == "__main__":
    unittest.main()
