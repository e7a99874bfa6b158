"""Issue 16, defects found when Hato's IMAP server was tried as a strict client
would: each test drives a live `hato serve` over a real connection, and
where the RFC leaves the exact form open the same exchange runs against a
throw-away Dovecot (as in test_migrate.py) and the answers are compared."""
import base64
import imaplib
import re
import time
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw
from test_migrate import DovecotPeer, have_dovecot

ALICE = f"alice@{DOMAIN}"

SINGLE_B64 = (b"From: a@example.test\r\nSubject: b64\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
              b"\r\n" + base64.encodebytes(b"\x00\x01binary\xffdata") .replace(b"\n", b"\r\n"))
MULTIPART = (b"From: a@example.test\r\nSubject: multi\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
             b"--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n")
COMMENT_FROM = (b"From: taro@example.test (Taro Yamada)\r\nTo: alice@example.test\r\n"
                b"Subject: old style\r\n\r\nbody\r\n")


def unquote(lines):
    """Mailbox names in STATUS are quoted by some servers, atoms by others."""
    return [re.sub(r'^\* STATUS "([^"]*)"', r"* STATUS \1", l) for l in lines]


class Checks:
    """The exchanges; self.port/user/password name the server under test."""

    def raw(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        return r

    def append(self, box, data, flags=None):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=15)
        m.login(self.user, self.password)
        typ, resp = m.append(box, flags, None, data)
        self.assertEqual(typ, "OK", resp)
        m.logout()

    def fresh_box(self, name):
        r = self.raw()
        r.cmd(f"c CREATE {name}", "c")
        return r

    def literal_of(self, lines_bytes, item):
        m = re.search(re.escape(item).encode() + rb" ~?\{(\d+)\}\r\n", lines_bytes)
        self.assertIsNotNone(m, lines_bytes[:500])
        start = m.end()
        return lines_bytes[start:start + int(m.group(1))]

    def raw_fetch(self, r, command, tag):
        r.sock.sendall(command.encode() + b"\r\n")
        data = b""
        while not re.search(rb"(^|\r\n)" + tag.encode() + rb" (OK|NO|BAD)[^\r\n]*\r\n", data):
            chunk = r.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    # Defect 1 (RFC 3516): literal8 APPEND, BINARY[] of the whole message.
    def binary_exchange(self):
        r = self.fresh_box("Bin")
        payload = b"Subject: nul\r\n\r\nA\x00B\r\n"
        r.sock.sendall(b"a APPEND Bin ~{%d+}\r\n" % len(payload) + payload + b"\r\n")
        reply = r.until("a")[-1]
        self.assertTrue(reply.startswith("a OK"), reply)
        self.append("Bin", SINGLE_B64)
        self.append("Bin", MULTIPART)
        r.cmd("s SELECT Bin", "s")
        out = {}
        for n in (1, 2, 3):
            data = self.raw_fetch(r, f"f{n} FETCH {n} (BINARY.PEEK[] BINARY.SIZE[])", f"f{n}")
            self.assertIn(f"f{n} OK".encode(), data)
            body = self.literal_of(data, "BINARY[]")
            size = int(re.search(rb"BINARY\.SIZE\[\] (\d+)", data).group(1))
            self.assertEqual(size, len(body))
            out[n] = body
        return out

    def test_binary_literal8_and_whole_message(self):
        out = self.binary_exchange()
        self.assertEqual(out[1], b"Subject: nul\r\n\r\nA\x00B\r\n")
        self.assertTrue(out[2].endswith(b"\r\n\r\n\x00\x01binary\xffdata"), out[2])
        self.assertTrue(out[2].startswith(b"From: a@example.test\r\n"))
        self.assertEqual(out[3], MULTIPART)

    # Defect 2 (RFC 7162 section 3.1): CONDSTORE enabled by use.
    def test_condstore_enabled_by_fetch_modseq(self):
        self.fresh_box("Cs")
        self.append("Cs", MULTIPART)
        self.append("Cs", MULTIPART)
        r = self.raw()
        r.cmd("s SELECT Cs", "s")
        lines = r.cmd("f FETCH 1 (FLAGS MODSEQ)", "f")
        self.assertTrue(any(l.startswith("* OK [HIGHESTMODSEQ ") for l in lines), lines)
        self.assertRegex(" ".join(lines), r"\* 1 FETCH \(.*MODSEQ \(\d+\)")
        # From now on flag changes by others carry MODSEQ.
        other = self.raw()
        other.cmd("s SELECT Cs", "s")
        other.cmd("t STORE 2 +FLAGS (\\Flagged)", "t")
        time.sleep(0.3)
        lines = r.cmd("n NOOP", "n")
        self.assertRegex(" ".join(lines), r"\* 2 FETCH \(.*MODSEQ \(\d+\)")
        # ESEARCH with a MODSEQ criterion carries MODSEQ (RFC 7162 section 3.1.5).
        lines = r.cmd("e SEARCH RETURN (MIN MAX) MODSEQ 1", "e")
        esearch = [l for l in lines if l.startswith("* ESEARCH")]
        self.assertEqual(len(esearch), 1, lines)
        self.assertRegex(esearch[0], r"MIN 1 MAX 2 MODSEQ \d+$")

    def test_condstore_enabled_by_search_modseq(self):
        self.fresh_box("Cs2")
        self.append("Cs2", MULTIPART)
        r = self.raw()
        r.cmd("s SELECT Cs2", "s")
        lines = r.cmd("e SEARCH MODSEQ 1", "e")
        self.assertTrue(any(l.startswith("* OK [HIGHESTMODSEQ ") for l in lines), lines)
        self.assertTrue(any(re.match(r"\* SEARCH 1 \(MODSEQ \d+\)", l) for l in lines), lines)

    # Defect 4 (RFC 3501 section 7.2.6): keywords in FLAGS.
    def test_keywords_in_flags(self):
        self.fresh_box("Kw")
        self.append("Kw", MULTIPART, flags="($Old)")
        self.append("Kw", MULTIPART)
        a, b = self.raw(), self.raw()
        lines = a.cmd("s SELECT Kw", "s")
        flags = [l for l in lines if l.startswith("* FLAGS")]
        self.assertIn("$Old", flags[0])
        perm = [l for l in lines if "PERMANENTFLAGS" in l][0]
        self.assertIn("$Old", perm)
        self.assertIn("\\*", perm)
        b.cmd("s SELECT Kw", "s")
        b.cmd("t STORE 2 +FLAGS ($New)", "t")
        time.sleep(0.3)
        lines = a.cmd("n NOOP", "n")
        flag_lines = [i for i, l in enumerate(lines) if l.startswith("* FLAGS")]
        self.assertEqual(len(flag_lines), 1, lines)
        self.assertIn("$New", lines[flag_lines[0]])
        self.assertIn("$Old", lines[flag_lines[0]])
        fetch = [i for i, l in enumerate(lines) if "FETCH" in l and "$New" in l]
        self.assertTrue(fetch and flag_lines[0] < fetch[0], lines)

    # Defect 6: "user@domain (Real Name)".
    def test_display_name_in_comment(self):
        self.fresh_box("Cm")
        self.append("Cm", COMMENT_FROM)
        r = self.raw()
        r.cmd("s SELECT Cm", "s")
        lines = r.cmd("f FETCH 1 ENVELOPE", "f")
        self.assertIn('(("Taro Yamada" NIL "taro" "example.test"))', lines[0])
        lines = r.cmd('q SEARCH FROM "Taro Yamada"', "q")
        self.assertIn("* SEARCH 1", lines)

    # Defect 7: MOVE within one mailbox.
    def test_move_within_mailbox_expunge_before_exists(self):
        self.fresh_box("Mv")
        for _ in range(3):
            self.append("Mv", MULTIPART)
        r = self.raw()
        r.cmd("s SELECT Mv", "s")
        lines = r.cmd("m MOVE 1 Mv", "m")
        self.assertTrue(lines[-1].startswith("m OK"), lines)
        exp = [i for i, l in enumerate(lines) if l == "* 1 EXPUNGE"]
        exists = [i for i, l in enumerate(lines) if l == "* 3 EXISTS"]
        self.assertEqual(len(exp), 1, lines)
        self.assertEqual(len(exists), 1, lines)
        self.assertLess(exp[0], exists[0], lines)


    # STATUS=SIZE (RFC 8438): the octets of the mailbox's messages.
    def test_status_size(self):
        r = self.fresh_box("Sz")
        caps = " ".join(r.cmd("k CAPABILITY", "k"))
        self.assertIn("STATUS=SIZE", caps)
        self.append("Sz", MULTIPART)
        self.append("Sz", COMMENT_FROM)
        lines = unquote(r.cmd("t STATUS Sz (MESSAGES SIZE)", "t"))
        self.assertIn(f"* STATUS Sz (MESSAGES 2 SIZE {len(MULTIPART) + len(COMMENT_FROM)})", lines)

    # Defect 3 (RFC 3501 6.3.6 and 6.3.9, RFC 5258): subscriptions are names.
    def listed(self, r, command, tag):
        """{name: set of attributes} of the LIST/LSUB lines of a command."""
        out = {}
        for l in r.cmd(command, tag):
            m = re.match(r'^\* (?:LIST|LSUB) \(([^)]*)\) "/" "?([^"\s]*)"?', l)
            if m:
                out[m.group(2)] = set(m.group(1).split())
        return out

    def test_subscriptions_are_names(self):
        r = self.raw()
        r.cmd("c1 CREATE Plain", "c1")
        # CREATE does not subscribe.
        self.assertEqual(self.listed(r, 'l1 LSUB "" "Plain"', "l1"), {})
        self.assertNotIn("\\Subscribed",
                         self.listed(r, 'l2 LIST "" "Plain" RETURN (SUBSCRIBED)', "l2")["Plain"])
        # RFC 3501 6.3.9: "%" returns the unsubscribed parent, \Noselect.
        r.cmd("c2 CREATE Par", "c2")
        r.cmd("c3 CREATE Par/Kid", "c3")
        self.assertTrue(r.cmd("s1 SUBSCRIBE Par/Kid", "s1")[-1].startswith("s1 OK"))
        self.assertEqual(self.listed(r, 'l3 LSUB "" "P%"', "l3"), {"Par": {"\\Noselect"}})
        self.assertEqual(self.listed(r, 'l4 LSUB "" "Par*"', "l4"), {"Par/Kid": set()})
        self.assertEqual(self.listed(r, 'l5 LSUB "" "Par/%"', "l5"), {"Par/Kid": set()})
        # DELETE keeps the subscription: \NonExistent in LIST (SUBSCRIBED).
        r.cmd("c4 CREATE Gone", "c4")
        r.cmd("s2 SUBSCRIBE Gone", "s2")
        self.assertTrue(r.cmd("d1 DELETE Gone", "d1")[-1].startswith("d1 OK"))
        got = self.listed(r, 'l6 LIST (SUBSCRIBED) "" "G*"', "l6")
        self.assertEqual(got, {"Gone": {"\\Subscribed", "\\NonExistent"}})
        self.assertEqual(self.listed(r, 'l7 LSUB "" "G*"', "l7"), {"Gone": set()})
        self.assertEqual(self.listed(r, 'l8 LIST "" "G*"', "l8"), {})
        # Created again, the name is subscribed again; UNSUBSCRIBE of a
        # name without a mailbox succeeds.
        r.cmd("c5 CREATE Gone", "c5")
        self.assertIn("\\Subscribed",
                      self.listed(r, 'l9 LIST "" "Gone" RETURN (SUBSCRIBED)', "l9")["Gone"])
        r.cmd("d2 DELETE Gone", "d2")
        self.assertTrue(r.cmd("u1 UNSUBSCRIBE Gone", "u1")[-1].startswith("u1 OK"))
        self.assertTrue(r.cmd("u2 UNSUBSCRIBE Never", "u2")[-1].startswith("u2 OK"))
        self.assertEqual(self.listed(r, 'l10 LIST (SUBSCRIBED) "" "G*"', "l10"), {})


class HatoDefectsTest(Checks, unittest.TestCase):
    # Defect 3: the default folders are subscribed when the account is made.
    def test_default_folders_subscribed(self):
        r = self.raw()
        got = self.listed(r, 'l LSUB "" "*"', "l")
        for name in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertIn(name, got)

    # PREVIEW (RFC 8970).
    def test_preview(self):
        r = self.fresh_box("Pv")
        self.assertIn("PREVIEW", " ".join(r.cmd("k CAPABILITY", "k")).split())
        html = (b"Subject: h\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; "
                b"boundary=B\r\n\r\n--B\r\nContent-Type: text/html\r\n\r\n"
                b"<p>Hello <b>there</b></p>\r\n--B--\r\n")
        long_text = b"Subject: l\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + (
            "\u3042" * 300).encode() + b"\r\n"
        self.append("Pv", COMMENT_FROM)
        self.append("Pv", html)
        self.append("Pv", long_text)
        self.append("Pv", b"Subject: empty\r\n\r\n")
        r.cmd("s SELECT Pv", "s")
        data = self.raw_fetch(r, "f FETCH 1:4 (PREVIEW)", "f")
        self.assertIn(b'* 1 FETCH (PREVIEW "body")', data)
        self.assertIn(b'* 2 FETCH (PREVIEW "Hello there")', data)
        text = self.literal_of(data, "* 3 FETCH (PREVIEW").decode()
        self.assertEqual(text, "\u3042" * 256)
        self.assertIn(b'* 4 FETCH (PREVIEW "")', data)
        lines = r.cmd("g FETCH 1 (UID PREVIEW (LAZY))", "g")
        self.assertIn('* 1 FETCH (UID 1 PREVIEW "body")', lines)
        # PREVIEW does not set \Seen.
        self.assertNotIn("\\Seen", " ".join(r.cmd("h FETCH 1 FLAGS", "h")))

    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, ALICE, PASSWORD

    # Defect 5: STATUS RECENT sees \Recent claims at once.
    def test_status_recent_reflects_claims(self):
        self.fresh_box("Rc")
        for _ in range(3):
            self.append("Rc", MULTIPART)
        a, b = self.raw(), self.raw()
        self.assertIn("* 3 RECENT", a.cmd("s SELECT Rc", "s"))
        self.assertIn('* STATUS Rc (RECENT 0 MESSAGES 3)',
                      unquote(b.cmd("t STATUS Rc (RECENT MESSAGES)", "t")))
        self.append("Rc", MULTIPART)  # seen by A's session at its next command
        a.cmd("n NOOP", "n")
        self.assertIn('* STATUS Rc (RECENT 0)', unquote(b.cmd("t2 STATUS Rc (RECENT)", "t2")))
        a.cmd("c CLOSE", "c")
        self.assertIn('* STATUS Rc (RECENT 0)', unquote(b.cmd("t3 STATUS Rc (RECENT)", "t3")))
        self.append("Rc", MULTIPART)  # nobody has seen this one
        self.assertIn('* STATUS Rc (RECENT 1)', unquote(b.cmd("t4 STATUS Rc (RECENT)", "t4")))


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotDefectsTest(DovecotPeer, Checks, unittest.TestCase):
    """The same exchanges against Dovecot: what the RFC leaves open is answered alike."""


if __name__ == "__main__":
    unittest.main()
