"""Issue 16: URLAUTH (RFC 4467: GENURLAUTH, URLFETCH, RESETKEY) over a live
`hato serve`, and submission BURL (RFC 4468) reading a URLAUTH URL of the
same server straight from the store: access identifiers (anonymous,
authuser, user+, submit+), EXPIRE, tampered tokens, RESETKEY invalidating
the URLs it should, and BURL mixed with BDAT."""
import imaplib
import re
import smtplib
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
ENC_ALICE = ALICE.replace("@", "%40")
DRAFT = (f"From: Alice <{ALICE}>\r\nTo: {BOB}\r\nSubject: forwarded draft\r\n\r\n"
         "The draft body.\r\n").encode()


class UrlAuthTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob")).start()
        self.addCleanup(self.server.cleanup)
        self.alice = self.raw(ALICE)
        self.alice.cmd("c CREATE Src", "c")
        self.alice.sock.sendall(b"p APPEND Src {%d+}\r\n" % len(DRAFT) + DRAFT + b"\r\n")
        self.assertIn(" OK", self.alice.until("p")[-1])
        status = " ".join(self.alice.cmd("st STATUS Src (UIDVALIDITY)", "st"))
        self.v = int(re.search(r"UIDVALIDITY (\d+)", status).group(1))

    def raw(self, user):
        r = Raw(self.server.imap_port, user, PASSWORD)
        self.addCleanup(r.close)
        return r

    def rump(self, access, extra="", box="Src", user=ENC_ALICE):
        return (f"imap://{user}@localhost/{box};UIDVALIDITY={self.v}/;UID=1{extra}"
                f";URLAUTH={access}")

    def gen(self, rump, tag="g"):
        lines = self.alice.cmd(f'{tag} GENURLAUTH "{rump}" INTERNAL', tag)
        self.assertTrue(lines[-1].startswith(f"{tag} OK"), lines)
        m = re.match(r'^\* GENURLAUTH "([^"]+)"$', lines[0])
        self.assertTrue(m, lines)
        return m.group(1)

    def urlfetch(self, user, url):
        imaplib.Commands.setdefault("URLFETCH", ("AUTH", "SELECTED"))
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=15)
        self.addCleanup(m.logout)
        m.login(user, PASSWORD)
        typ, data = m._simple_command("URLFETCH", f'"{url}"')
        self.assertEqual(typ, "OK", data)
        typ, data = m._untagged_response(typ, data, "URLFETCH")
        # A literal comes back as (prefix, bytes); NIL as a plain line.
        item = data[0]
        return item[1] if isinstance(item, tuple) else None

    # RFC 4467 sections 6.2 and 6.3: the generated URL carries
    # ":internal:" and a token; URLFETCH returns the message to whoever the
    # access identifier admits, NIL to anyone else or for a bad token.
    def test_generate_and_fetch(self):
        self.assertIn("URLAUTH", self.alice.cmd("k CAPABILITY", "k")[0].split())
        anon = self.gen(self.rump("anonymous"))
        self.assertRegex(anon, r":internal:[0-9a-f]{64}$")
        self.assertEqual(self.urlfetch(ALICE, anon), DRAFT)
        self.assertEqual(self.urlfetch(BOB, anon), DRAFT)
        for_bob = self.gen(self.rump(f"user+bob%40{DOMAIN}"))
        self.assertEqual(self.urlfetch(BOB, for_bob), DRAFT)
        self.assertIsNone(self.urlfetch(ALICE, for_bob))
        authuser = self.gen(self.rump("authuser", extra="/;SECTION=TEXT"))
        self.assertEqual(self.urlfetch(BOB, authuser), b"The draft body.\r\n")
        # submit+ is for the submission server only.
        self.assertIsNone(self.urlfetch(ALICE, self.gen(self.rump(f"submit+{ENC_ALICE}"))))
        # A changed token, a changed rump, no token: NIL.
        bad = anon[:-1] + ("0" if anon[-1] != "0" else "1")
        self.assertIsNone(self.urlfetch(ALICE, bad))
        self.assertIsNone(self.urlfetch(ALICE, anon.replace(";UID=1", ";UID=2")))
        self.assertIsNone(self.urlfetch(ALICE, self.rump("anonymous")))
        # EXPIRE (RFC 4467 section 3): past is dead, future works.
        past = self.gen(self.rump("anonymous", extra=";EXPIRE=2001-01-01T00:00:00Z"))
        self.assertIsNone(self.urlfetch(ALICE, past))
        future = self.gen(self.rump("anonymous", extra=";EXPIRE=2999-01-01T00:00:00+01:00"))
        self.assertEqual(self.urlfetch(ALICE, future), DRAFT)
        # Several URLs in one URLFETCH: one response each, in order.
        lines = self.alice.cmd(f'u URLFETCH "{anon}" "{past}" "{authuser}"', "u")
        self.assertEqual(lines[0], f'* URLFETCH "{anon}" {{{len(DRAFT)}}}')
        self.assertIn(f'* URLFETCH "{past}" NIL', lines)
        self.assertIn(f'* URLFETCH "{authuser}" {{17}}', lines)
        self.assertTrue(lines[-1].startswith("u OK"), lines)

    # RESETKEY (section 6.1): a mailbox's URLs die with its key; without a
    # mailbox, all of them.
    def test_resetkey(self):
        self.alice.cmd("c2 CREATE Other", "c2")
        self.alice.sock.sendall(b"p2 APPEND Other {%d+}\r\n" % len(DRAFT) + DRAFT + b"\r\n")
        self.alice.until("p2")
        v2 = int(re.search(r"UIDVALIDITY (\d+)",
                           " ".join(self.alice.cmd("s2 STATUS Other (UIDVALIDITY)", "s2"))).group(1))
        src = self.gen(self.rump("anonymous"))
        other = self.gen(f"imap://{ENC_ALICE}@localhost/Other;UIDVALIDITY={v2}/;UID=1"
                         ";URLAUTH=anonymous", "g2")
        self.assertTrue(self.alice.cmd("r RESETKEY Src INTERNAL", "r")[-1].startswith("r OK"))
        self.assertIsNone(self.urlfetch(ALICE, src))
        self.assertEqual(self.urlfetch(ALICE, other), DRAFT)
        fresh = self.gen(self.rump("anonymous"), "g3")
        self.assertEqual(self.urlfetch(ALICE, fresh), DRAFT)
        self.assertTrue(self.alice.cmd("r2 RESETKEY", "r2")[-1].startswith("r2 OK"))
        self.assertIsNone(self.urlfetch(ALICE, other))
        self.assertIsNone(self.urlfetch(ALICE, fresh))
        self.assertRegex(self.alice.cmd("r3 RESETKEY Nowhere", "r3")[-1], r"^r3 NO")

    def test_generate_errors(self):
        cases = [
            ("b1", f'"{self.rump("anonymous", user=f"bob%40{DOMAIN}")}" INTERNAL', "NO"),
            ("b2", f'"{self.rump("anonymous", box="Nowhere")}" INTERNAL', "NO"),
            ("b3", f'"{self.rump("anonymous")}" FOO', "NO"),
            ("b4", f'"/Src/;UID=1;URLAUTH=anonymous" INTERNAL', "BAD"),
            ("b5", f'"{self.rump("anonymous")}:internal:{"0" * 64}" INTERNAL', "BAD"),
            ("b6", f'"{self.rump("nobody")}" INTERNAL', "BAD"),
            ("b7", f'"imap://{ENC_ALICE}@elsewhere.test/Src/;UID=1;URLAUTH=anonymous" INTERNAL',
             "NO"),
        ]
        for tag, args, status in cases:
            lines = self.alice.cmd(f"{tag} GENURLAUTH {args}", tag)
            self.assertTrue(lines[-1].startswith(f"{tag} {status}"), (args, lines))
            self.assertFalse(any(l.startswith("* GENURLAUTH") for l in lines), lines)

    def bob_inbox(self):
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=15)
        self.addCleanup(m.logout)
        m.login(BOB, PASSWORD)
        m.select("INBOX", readonly=True)
        typ, data = m.search(None, "ALL")
        out = []
        for n in data[0].split():
            out.append(m.fetch(n, "(BODY.PEEK[])")[1][0][1])
        return out

    # RFC 4468: BURL adds the URL's content to the message; with LAST it is
    # submitted. Only URLs the submission server may read for this user.
    def test_burl(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=15) as s:
            s.ehlo()
            self.assertIn("burl", s.esmtp_features)
            self.assertTrue(s.esmtp_features["burl"].startswith("imap://"))
            s.login(ALICE, PASSWORD)
            submit = self.gen(self.rump(f"submit+{ENC_ALICE}"))
            user_only = self.gen(self.rump(f"user+{ENC_ALICE}"), "g2")
            s.mail(ALICE)
            s.rcpt(BOB)
            code, text = s.docmd("BURL", user_only + " LAST")
            self.assertEqual(code, 554, text)
            code, text = s.docmd("BURL", submit[:-2] + "00 LAST")
            self.assertEqual(code, 554, text)
            code, text = s.docmd("BURL", submit + " LAST")
            self.assertEqual(code, 250, text)
            # BDAT then BURL: the body of the draft after new header fields.
            head = (f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: via burl\r\n\r\n").encode()
            body = self.gen(self.rump(f"submit+{ENC_ALICE}", extra="/;SECTION=TEXT"), "g3")
            s.mail(ALICE)
            s.rcpt(BOB)
            s.send(b"BDAT %d\r\n" % len(head) + head)
            self.assertEqual(s.getreply()[0], 250)
            code, text = s.docmd("BURL", body + " LAST")
            self.assertEqual(code, 250, text)
        got = self.bob_inbox()
        self.assertEqual(len(got), 2, got)
        self.assertTrue(got[0].endswith(DRAFT), got[0])
        self.assertIn(b"Subject: via burl\r\n\r\nThe draft body.\r\n", got[1])


if __name__ == "__main__":
    unittest.main()
