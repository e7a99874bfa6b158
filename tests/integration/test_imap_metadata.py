"""Issue 16: METADATA (RFC 5464) over a live `hato serve`: GETMETADATA and
SETMETADATA on the server and on mailboxes, DEPTH and MAXSIZE, removal with
NIL, entry-name checks and the limits. The same exchanges run against a
throw-away Dovecot with its attribute dictionary turned on; values are
compared as values (Dovecot always answers literals, Hato quotes what it
can)."""
import re
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw
from test_migrate import DV_PASS, DV_USER, Dovecot, have_dovecot


def metadata(lines):
    """{mailbox: {entry: value or None}} of the METADATA responses in `lines`
    (lines as Raw gives them: a literal's text follows its "{n}" line)."""
    text = "\r\n".join(lines)
    out = {}
    pos = 0
    while True:
        i = text.find("* METADATA ", pos)
        if i < 0:
            return out
        pos = i + len("* METADATA ")

        def token():
            nonlocal pos
            if text.startswith("NIL", pos):
                pos += 3
                return None
            if text[pos] == '"':
                j = pos + 1
                val = ""
                while text[j] != '"':
                    if text[j] == "\\":
                        j += 1
                    val += text[j]
                    j += 1
                pos = j + 1
                return val
            m = re.match(r"~?\{(\d+)\}\r\n", text[pos:])
            if m:
                n = int(m.group(1))
                start = pos + m.end()
                pos = start + n
                return text[start:pos]
            m = re.match(r"[^ ()]+", text[pos:])
            pos += m.end()
            return m.group(0)

        box = token()
        assert text[pos:pos + 2] == " (", text[pos:]
        pos += 2
        entries = out.setdefault(box, {})
        while text[pos] != ")":
            name = token()
            pos += 1  # SP
            entries[name] = token()
            if text[pos] == " ":
                pos += 1
        pos += 1


class MetadataChecks:
    def session(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        return r

    def ok(self, r, command, tag="t"):
        lines = r.cmd(f"{tag} {command}", tag)
        self.assertTrue(lines[-1].startswith(f"{tag} OK"), (command, lines))
        return lines

    def test_server_and_mailbox_entries(self):
        r = self.session()
        self.assertIn("METADATA", r.cmd("k CAPABILITY", "k")[0].split())
        self.assertEqual(metadata(self.ok(r, 'GETMETADATA "" /private/comment')),
                         {"": {"/private/comment": None}})
        self.ok(r, 'SETMETADATA "" (/private/comment "hello")')
        self.assertEqual(metadata(self.ok(r, 'GETMETADATA "" (/private/comment /shared/comment)')),
                         {"": {"/private/comment": "hello", "/shared/comment": None}})
        self.ok(r, "CREATE M", "c")
        self.ok(r, 'SETMETADATA M (/private/comment "in box" /shared/comment "sh" '
                   '/private/a/b "deep" /private/a/b/c "deeper")')
        self.assertEqual(metadata(self.ok(r, "GETMETADATA M /private/comment")),
                         {"M": {"/private/comment": "in box"}})
        # Section 4.2.2: DEPTH 1 gives the children, infinity every descendant.
        self.assertEqual(metadata(self.ok(r, "GETMETADATA (DEPTH 1) M /private/a")),
                         {"M": {"/private/a/b": "deep"}})
        self.assertEqual(metadata(self.ok(r, "GETMETADATA (DEPTH infinity) M /private")),
                         {"M": {"/private/a/b": "deep", "/private/a/b/c": "deeper",
                                "/private/comment": "in box"}})
        # Section 4.2.1: MAXSIZE leaves out longer values and says how long.
        lines = self.ok(r, "GETMETADATA (MAXSIZE 3) M (/private/comment /shared/comment)")
        self.assertEqual(metadata(lines), {"M": {"/shared/comment": "sh"}})
        self.assertIn("[METADATA LONGENTRIES 6]", lines[-1])
        # Names are case-insensitive; NIL removes.
        self.ok(r, 'SETMETADATA M (/private/Comment "Up")')
        self.assertEqual(metadata(self.ok(r, "GETMETADATA M /PRIVATE/COMMENT")),
                         {"M": {"/private/comment": "Up"}})
        self.ok(r, "SETMETADATA M (/private/comment NIL)")
        self.assertEqual(metadata(self.ok(r, "GETMETADATA M /private/comment")),
                         {"M": {"/private/comment": None}})
        # The server's entries are not the mailbox's.
        self.assertEqual(metadata(self.ok(r, 'GETMETADATA "" /private/comment')),
                         {"": {"/private/comment": "hello"}})

    def test_errors(self):
        r = self.session()
        self.assertIn(" NO", r.cmd("n GETMETADATA NOSUCH /private/comment", "n")[-1])
        self.assertIn(" NO", r.cmd('n2 SETMETADATA NOSUCH (/private/comment "x")', "n2")[-1])
        for bad in ('SETMETADATA INBOX (/bad/comment "x")', 'SETMETADATA INBOX (/private/x* "x")',
                    'SETMETADATA INBOX (/private/x/ "x")', "GETMETADATA INBOX",
                    "GETMETADATA (DEPTH 2) INBOX /private/comment"):
            self.assertIn(" BAD", r.cmd(f"b {bad}", "b")[-1], bad)
        # The server's /shared/ entries belong to the administrator.
        self.assertIn(" NO", r.cmd('s SETMETADATA "" (/shared/comment "srv")', "s")[-1])


class HatoMetadataTest(MetadataChecks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob")).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, f"alice@{DOMAIN}", PASSWORD

    def test_limits_rename_delete_restart_and_accounts(self):
        r = self.session()
        self.ok(r, "CREATE Old", "c")
        self.ok(r, 'SETMETADATA Old (/private/comment "kept")')
        # RFC 5464 section 3.3: RENAME keeps the entries, DELETE drops them.
        self.ok(r, "RENAME Old New")
        self.assertEqual(metadata(self.ok(r, "GETMETADATA New /private/comment")),
                         {"New": {"/private/comment": "kept"}})
        self.ok(r, "DELETE New")
        self.ok(r, "CREATE New", "c2")
        self.assertEqual(metadata(self.ok(r, "GETMETADATA New /private/comment")),
                         {"New": {"/private/comment": None}})
        # Limits (section 4.3): value size and entries per mailbox.
        big = "x" * (16 * 1024 + 1)
        r.sock.sendall(f"m SETMETADATA INBOX (/private/big {{{len(big)}+}}\r\n{big})\r\n".encode())
        self.assertIn("[METADATA MAXSIZE 16384]", r.until("m")[-1])
        pairs = " ".join(f"/private/e{i} \"{i}\"" for i in range(129))
        self.assertIn("[METADATA TOOMANY]", r.cmd(f"m2 SETMETADATA INBOX ({pairs})", "m2")[-1])
        # Binary values (literal8) come back as literal8.
        r.sock.sendall(b"b SETMETADATA INBOX (/private/bin ~{3+}\r\na\x00b)\r\n")
        self.assertTrue(r.until("b")[-1].startswith("b OK"))
        r.sock.sendall(b"g GETMETADATA INBOX /private/bin\r\n")
        data = b""
        while b"g OK" not in data:
            data += r.sock.recv(65536) if not r.buf else r.buf
            r.buf = b""
        self.assertIn(b"/private/bin ~{3}\r\na\x00b)", data)
        # Kept in the store: a restart keeps them; another account sees none.
        self.server.stop()
        self.server.start()
        r = Raw(self.server.imap_port, self.user, self.password)
        self.addCleanup(r.close)
        self.assertEqual(metadata(self.ok(r, "GETMETADATA New /private/comment")),
                         {"New": {"/private/comment": None}})
        self.ok(r, 'SETMETADATA INBOX (/private/comment "alice")')
        bob = Raw(self.server.imap_port, f"bob@{DOMAIN}", PASSWORD)
        self.addCleanup(bob.close)
        self.assertEqual(metadata(self.ok(bob, "GETMETADATA INBOX /private/comment")),
                         {"INBOX": {"/private/comment": None}})
        self.assertEqual(metadata(self.ok(r, "GETMETADATA INBOX /private/comment")),
                         {"INBOX": {"/private/comment": "alice"}})


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotMetadataTest(MetadataChecks, unittest.TestCase):
    """The same exchanges against Dovecot with imap_metadata on."""

    def setUp(self):
        self.dv = Dovecot(extra_conf="mail_max_userip_connections = 100\n"
                                     "mail_attribute_dict = file:%h/dovecot-attributes\n"
                                     "protocol imap {\n  imap_metadata = yes\n}\n")
        self.addCleanup(self.dv.stop)
        self.port, self.user, self.password = self.dv.port, DV_USER, DV_PASS


if __name__ == "__main__":
    unittest.main()
