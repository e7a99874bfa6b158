"""Issue 16, the IMAP extensions beyond SORT/THREAD, each over a live
`hato serve` with raw commands, and against a throw-away Dovecot (as in
test_migrate.py) where Dovecot has the extension too: MULTIAPPEND (RFC 3502,
all or nothing), COMPRESS=DEFLATE (RFC 4978)."""
import re
import unittest
import zlib

from harness import DOMAIN, PASSWORD, Server, run_cli
from test_imap_model import Raw
from test_migrate import DV_PASS, DV_USER, Dovecot, have_dovecot

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
M1 = b"From: a@example.test\r\nSubject: one\r\n\r\nfirst\r\n"
M2 = b"From: b@example.test\r\nSubject: two\r\n\r\nsecond\r\n"


class Checks:
    def raw(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        return r

    def multiappend(self, r, tag, box, *messages):
        data = b"%s APPEND %s" % (tag.encode(), box.encode())
        for flags, msg in messages:
            data += b" " + (flags.encode() + b" " if flags else b"") + b"{%d+}\r\n" % len(msg) + msg
        r.sock.sendall(data + b"\r\n")
        return r.until(tag)

    # RFC 3502: several messages in one APPEND, APPENDUID with all their UIDs.
    def test_multiappend(self):
        r = self.raw()
        self.assertIn("MULTIAPPEND", r.cmd("k CAPABILITY", "k")[0].split())
        r.cmd("c CREATE Multi", "c")
        lines = self.multiappend(r, "a", "Multi", ("(\\Seen)", M1), ("", M2), ("($Label)", M1))
        self.assertRegex(lines[-1], r"^a OK \[APPENDUID \d+ 1:3\]")
        r.cmd("s SELECT Multi", "s")
        lines = r.cmd("f FETCH 1:3 (FLAGS RFC822.SIZE)", "f")
        self.assertRegex(lines[0], r"^\* 1 FETCH \(FLAGS \(\\Seen( \\Recent)?\) RFC822\.SIZE %d\)" % len(M1))
        self.assertRegex(lines[1], r"^\* 2 FETCH \(FLAGS \((\\Recent)?\) RFC822\.SIZE %d\)" % len(M2))
        self.assertIn("$Label", lines[2])
        # A bad message anywhere: nothing is stored.
        lines = self.multiappend(r, "b", "Multi", ("", M1), ("(\\Bogus)", M2))
        self.assertRegex(lines[-1], r"^b (BAD|NO)")
        lines = r.cmd("n NOOP", "n")
        self.assertFalse(any(l.endswith(" EXISTS") for l in lines), lines)
        # Into a mailbox that does not exist: TRYCREATE.
        lines = self.multiappend(r, "c", "Nowhere", ("", M1), ("", M2))
        self.assertRegex(lines[-1], r"^c NO \[TRYCREATE\]")

    # RFC 4978: after the OK both directions are raw DEFLATE.
    def test_compress_deflate(self):
        r = self.raw()
        self.assertIn("COMPRESS=DEFLATE", r.cmd("k CAPABILITY", "k")[0].split())
        self.assertIn(" NO", r.cmd("z0 COMPRESS GZIP", "z0")[-1])
        self.assertTrue(r.cmd("z COMPRESS DEFLATE", "z")[-1].startswith("z OK"))
        out = zlib.compressobj(wbits=-15)
        inflate = zlib.decompressobj(wbits=-15)
        text = b""

        def send(line):
            r.sock.sendall(out.compress(line + b"\r\n") + out.flush(zlib.Z_SYNC_FLUSH))

        def until(tag):
            nonlocal text
            while not re.search(rb"(^|\r\n)" + tag + rb" [A-Z]+[^\r]*\r\n", text):
                chunk = r.sock.recv(65536)
                self.assertTrue(chunk, text)
                text += inflate.decompress(chunk)
            got, text = text, b""
            return got

        r.buf = b""
        send(b"c CREATE Zip")
        self.assertIn(b"c OK", until(b"c"))
        body = b"Subject: z\r\n\r\n" + b"compress me " * 2000 + b"\r\n"
        send(b"a APPEND Zip {%d+}\r\n" % len(body) + body)
        self.assertIn(b"a OK", until(b"a"))
        send(b"s SELECT Zip")
        self.assertIn(b"s OK", until(b"s"))
        send(b"f FETCH 1 BODY.PEEK[]")
        got = until(b"f")
        self.assertIn(body, got)
        send(b"y COMPRESS DEFLATE")
        self.assertIn(b"COMPRESSIONACTIVE", until(b"y"))


class HatoExtensionsTest(Checks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob"))
        run_cli("user", "quota", BOB, "1K", data=self.server.data)
        self.server.start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, ALICE, PASSWORD

    # RFC 3502 section 3: all or nothing, in one transaction, even when the
    # store refuses a later message (here the quota).
    def test_multiappend_all_or_nothing(self):
        r = Raw(self.port, BOB, PASSWORD)
        self.addCleanup(r.close)
        r.cmd("c CREATE Q", "c")
        big = b"Subject: big\r\n\r\n" + b"x" * 700 + b"\r\n"
        lines = self.multiappend(r, "a", "Q", ("", M1), ("", big), ("", big))
        self.assertTrue(lines[-1].startswith("a NO [OVERQUOTA]"), lines)
        self.assertIn("MESSAGES 0", " ".join(r.cmd("t STATUS Q (MESSAGES)", "t")))
        lines = self.multiappend(r, "b", "Q", ("", M1), ("", big))
        self.assertTrue(lines[-1].startswith("b OK"), lines)
        self.assertIn("MESSAGES 2", " ".join(r.cmd("t2 STATUS Q (MESSAGES)", "t2")))


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotExtensionsTest(Checks, unittest.TestCase):
    def setUp(self):
        self.dv = Dovecot(extra_conf="mail_max_userip_connections = 100\n"
                          "protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n")
        self.addCleanup(self.dv.stop)
        self.port, self.user, self.password = self.dv.port, DV_USER, DV_PASS


if __name__ == "__main__":
    unittest.main()
