"""Issue 16: APPEND with CATENATE (RFC 4469) over a live `hato serve`, and the
same exchanges against a throw-away Dovecot (as in test_migrate.py), which
has CATENATE too: messages built from TEXT literals and IMAP URLs (RFC 5092)
naming messages, sections and partial ranges in the user's own mailboxes,
NO [BADURL] for URLs that name nothing readable (nothing is stored, even in
a MULTIAPPEND), and NO [TOOBIG] past APPENDLIMIT."""
import imaplib
import re
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw
from test_migrate import DovecotPeer, have_dovecot

ALICE = f"alice@{DOMAIN}"
SRC = (b"From: a@example.test\r\nSubject: source\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"bnd\"\r\n\r\n"
       b"--bnd\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
       b"--bnd\r\nContent-Type: text/plain\r\n\r\npart two\r\n--bnd--\r\n")
OTHER = b"From: b@example.test\r\nSubject: other\r\n\r\nsecond message\r\n"


class Checks:
    def raw(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        return r

    def fetch(self, box, uid, section):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=15)
        self.addCleanup(m.logout)
        m.login(self.user, self.password)
        m.select(box, readonly=True)
        typ, data = m.uid("FETCH", str(uid), f"BODY.PEEK[{section}]")
        self.assertEqual(typ, "OK", data)
        return data[0][1]

    def fill(self, r):
        """Src with SRC (UID 1) and OTHER (UID 2); returns Src's UIDVALIDITY."""
        r.cmd("c CREATE Src", "c")
        r.cmd("c2 CREATE Dst", "c2")
        for i, msg in enumerate((SRC, OTHER)):
            r.sock.sendall(b"p%d APPEND Src {%d+}\r\n" % (i, len(msg)) + msg + b"\r\n")
            self.assertIn(" OK", r.until(f"p{i}")[-1])
        status = " ".join(r.cmd("st STATUS Src (UIDVALIDITY)", "st"))
        return int(re.search(r"UIDVALIDITY (\d+)", status).group(1))

    def catenate(self, r, tag, box, *parts, more=()):
        """APPEND box CATENATE (...) [CATENATE (...) ...] with LITERAL+ TEXT
        literals; parts are ("TEXT", bytes) or ("URL", str)."""
        def data(ps):
            out = b" CATENATE ("
            for i, (kind, value) in enumerate(ps):
                out += b" " if i else b""
                if kind == "TEXT":
                    out += b"TEXT {%d+}\r\n" % len(value) + value
                else:
                    out += b'URL "' + value.encode() + b'"'
            return out + b")"
        line = b"%s APPEND %s" % (tag.encode(), box.encode()) + data(parts)
        for ps in more:
            line += data(ps)
        r.sock.sendall(line + b"\r\n")
        return r.until(tag)

    def count(self, r, box):
        status = " ".join(r.cmd(f"n STATUS {box} (MESSAGES)", "n"))
        return int(re.search(r"MESSAGES (\d+)", status).group(1))

    # RFC 4469 section 3: the new message is the parts in order; URLs name a
    # whole message, a section (RFC 3501 section 6.4.5) or a partial range.
    def test_text_and_urls(self):
        r = self.raw()
        self.assertIn("CATENATE", r.cmd("k CAPABILITY", "k")[0].split())
        v = self.fill(r)
        head = b"From: c@example.test\r\nSubject: built\r\n"
        parts = [("TEXT", head),
                 ("URL", f"/Src;UIDVALIDITY={v}/;UID=1/;SECTION=1.MIME"),
                 ("URL", "/Src/;UID=1/;SECTION=1"),
                 ("TEXT", b"\r\n--- quoted ---\r\n"),
                 ("URL", "/Src/;UID=1/;section=TEXT/;PARTIAL=2.10"),
                 ("URL", "/Src/;UID=2")]
        lines = self.catenate(r, "a", "Dst", *parts)
        self.assertRegex(lines[-1], r"^a OK \[APPENDUID \d+ 1\]")
        want = (head + self.fetch("Src", 1, "1.MIME") + self.fetch("Src", 1, "1") +
                b"\r\n--- quoted ---\r\n" + self.fetch("Src", 1, "TEXT")[2:12] + OTHER)
        self.assertEqual(self.fetch("Dst", 1, ""), want)
        # A synchronizing TEXT literal gets its continuation; a relative URL
        # is read in the selected mailbox.
        r.cmd("s SELECT Src", "s")
        r.sock.sendall(b'b APPEND Dst (\\Seen) CATENATE (URL ";UID=2/;SECTION=HEADER" TEXT {6}\r\n')
        self.assertTrue(r.line().startswith("+"))
        r.sock.sendall(b"hello!)\r\n")
        self.assertRegex(r.until("b")[-1], r"^b OK \[APPENDUID \d+ 2\]")
        self.assertEqual(self.fetch("Dst", 2, ""), self.fetch("Src", 2, "HEADER") + b"hello!")

    # RFC 4469 section 3: a URL that names nothing fails the APPEND with NO
    # [BADURL], and nothing is appended (in a MULTIAPPEND, no message).
    def test_bad_urls(self):
        r = self.raw()
        v = self.fill(r)
        text = ("TEXT", b"Subject: x\r\n\r\nbody\r\n")
        for i, url in enumerate(["/Nowhere/;UID=1", f"/Src;UIDVALIDITY={v + 1}/;UID=1",
                                 "/Src/;UID=99"]):
            lines = self.catenate(r, f"b{i}", "Dst", text, ("URL", url))
            self.assertRegex(lines[-1], rf"^b{i} NO \[BADURL", url)
        lines = self.catenate(r, "m", "Dst", text, more=[[text, ("URL", "/Src/;UID=42")]])
        self.assertRegex(lines[-1], r"^m NO \[BADURL")
        self.assertEqual(self.count(r, "Dst"), 0)
        # An expunged message is gone for URLs too.
        r.cmd("s SELECT Src", "s")
        r.cmd("d STORE 2 +FLAGS (\\Deleted)", "d")
        r.cmd("e EXPUNGE", "e")
        lines = self.catenate(r, "x", "Dst", ("URL", "/Src/;UID=2"))
        self.assertRegex(lines[-1], r"^x NO \[BADURL")
        self.assertEqual(self.count(r, "Dst"), 0)
        # MULTIAPPEND with CATENATE, all good: both stored.
        lines = self.catenate(r, "g", "Dst", text, ("URL", "/Src/;UID=1"),
                              more=[[("URL", "/Src/;UID=1/;SECTION=2")]])
        self.assertRegex(lines[-1], r"^g OK \[APPENDUID \d+ 1:2\]")
        self.assertEqual(self.fetch("Dst", 2, ""), self.fetch("Src", 1, "2"))
        # Into a mailbox that does not exist: TRYCREATE.
        lines = self.catenate(r, "t", "Nowhere", text)
        self.assertRegex(lines[-1], r"^t NO \[TRYCREATE\]")


class HatoCatenateTest(Checks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob"),
                             config_extra="")
        self.server.set_config("imap", "max_message_size", 2048)
        self.server.start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, ALICE, PASSWORD

    # RFC 5092 imap:// URLs: only this server's and this user's messages.
    def test_absolute_urls(self):
        r = self.raw()
        self.fill(r)
        user = ALICE.replace("@", "%40")
        lines = self.catenate(r, "a", "Dst", ("URL", f"imap://{user}@localhost/Src/;UID=2"))
        self.assertRegex(lines[-1], r"^a OK")
        lines = self.catenate(r, "a2", "Dst", ("URL", "imap://localhost:143/Src/;UID=2"))
        self.assertRegex(lines[-1], r"^a2 OK")
        self.assertEqual(self.fetch("Dst", 1, ""), OTHER)
        for i, url in enumerate([f"imap://{user}@elsewhere.test/Src/;UID=2",
                                 f"imap://bob%40{DOMAIN}@localhost/Src/;UID=2",
                                 "imap://localhost/Src/;UID=0", "imap://localhost/Src",
                                 "imap://localhost/Src?SUBJECT%20x", ";UID=2",
                                 # Dovecot catenates "" for a part that does not
                                 # exist (as FETCH returns it); Hato says the URL
                                 # names nothing.
                                 "/Src/;UID=1/;SECTION=7", "/Src/;UID=1/;SECTION=1.9.9"]):
            lines = self.catenate(r, f"b{i}", "Dst", ("URL", url))
            self.assertRegex(lines[-1], rf"^b{i} NO \[BADURL {re.escape(url)}\]", url)
        self.assertEqual(self.count(r, "Dst"), 2)

    # RFC 4469 section 5 syntax errors are BAD; the built message is bounded
    # by APPENDLIMIT (NO [TOOBIG]), though each part is below it.
    def test_syntax_and_toobig(self):
        r = self.raw()
        self.fill(r)
        for i, arg in enumerate(["CATENATE ()", "CATENATE (FOO x)", "CATENATE (TEXT x)",
                                 "CATENATE (URL)", "CATENATE URL x"]):
            self.assertRegex(r.cmd(f"s{i} APPEND Dst {arg}", f"s{i}")[-1], rf"^s{i} BAD")
        big = b"X-Pad: " + b"p" * 1200 + b"\r\n"
        lines = self.catenate(r, "t", "Dst", ("TEXT", big), ("URL", "/Src/;UID=1"),
                              ("TEXT", big))
        self.assertRegex(lines[-1], r"^t NO \[TOOBIG\]")
        self.assertEqual(self.count(r, "Dst"), 0)
        lines = self.catenate(r, "u", "Dst", ("TEXT", big), ("URL", "/Src/;UID=2"))
        self.assertRegex(lines[-1], r"^u OK")
        # Every message under APPENDLIMIT, but together more than one command
        # may carry (APPENDLIMIT + 1 MiB): a short command naming one message
        # many times must not build more than literals could have sent.
        urls = [("URL", "/Src/;UID=1")] * (2048 // len(SRC))
        msgs = [([("TEXT", b"X")] if i % 10 == 0 else []) + urls for i in range(600)]
        self.assertGreater(600 * len(SRC) * len(urls), 2048 + (1 << 20))
        lines = self.catenate(r, "v", "Dst", *msgs[0], more=msgs[1:])
        self.assertRegex(lines[-1], r"^v NO \[TOOBIG\]")
        self.assertEqual(self.count(r, "Dst"), 1)


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotCatenateTest(DovecotPeer, Checks, unittest.TestCase):
    """The same CATENATE exchanges against Dovecot."""

if __name__ == "__main__":
    unittest.main()
