"""IMAP QUOTA (RFC 9208), full-text SEARCH (decoded, Japanese charsets),
implicit TLS (RFC 8314) and \\Recent (RFC 3501 2.3.2), against a live
`hato serve` driven by imaplib and smtplib."""
import base64
import imaplib
import os
import re
import shutil
import smtplib
import ssl
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


def deliver(server, body, to=ALICE):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
        s.sendmail("taro@remote.test", [to], body)


def login(server, user=ALICE):
    m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=15)
    m.login(user, PASSWORD)
    return m


def untagged(m, name):
    typ, data = m._untagged_response("OK", [None], name)
    return [d.decode() if isinstance(d, bytes) else d for d in data if d is not None]


class QuotaTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob"))
        # 20 KiB for alice; bob stays unlimited.
        r = run_cli("user", "quota", ALICE, "20K", data=self.server.data)
        self.assertIn("20480", r.stdout)
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def test_cli(self):
        self.assertIn("quota 20480 bytes", run_cli("user", "list", data=self.server.data).stdout)
        r = run_cli("user", "quota", ALICE, "lots", data=self.server.data, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("invalid quota", r.stderr)
        r = run_cli("user", "quota", f"nobody@{DOMAIN}", "1M", data=self.server.data, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no such account", r.stderr)

    def test_capabilities_getquota_getquotaroot_setquota(self):
        m = login(self.server)
        caps = m.capabilities
        self.assertIn("QUOTA", caps)
        self.assertIn("QUOTA=RES-STORAGE", caps)
        self.assertTrue(any(c.startswith("APPENDLIMIT=") for c in caps))
        deliver(self.server, b"Subject: a\r\n\r\n" + b"x" * 3000 + b"\r\n")
        typ, data = m.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0], [b'"INBOX" ""'])
        used = int(re.search(rb'STORAGE (\d+) 20\)', data[1][0]).group(1))
        self.assertGreaterEqual(used, 3)  # KiB, rounded up
        self.assertLessEqual(used, 5)
        typ, data = m.getquota('""')
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0].decode(), r'^"" \(STORAGE \d+ 20\)$')
        typ, data = m.getquota('"other"')
        self.assertEqual(typ, "NO")
        typ, data = m.setquota('""', "(STORAGE 100000)")
        self.assertEqual(typ, "NO")
        self.assertIn(b"NOPERM", data[0])
        typ, data = m.getquotaroot("NoSuchBox")
        self.assertEqual(typ, "NO")
        m.logout()
        # An unlimited account has no quota root (RFC 9208 section 4.3).
        b = login(self.server, BOB)
        typ, data = b.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0], [b'"INBOX"'])
        self.assertEqual(b.getquota('""')[0], "NO")
        b.logout()

    def test_append_and_copy_over_quota(self):
        m = login(self.server)
        msg = b"Subject: big\r\n\r\n" + b"y" * 8000 + b"\r\n"
        self.assertEqual(m.append("INBOX", None, None, msg)[0], "OK")
        self.assertEqual(m.append("INBOX", None, None, msg)[0], "OK")
        typ, data = m.append("INBOX", None, None, msg)  # 24 KB > 20 KiB
        self.assertEqual(typ, "NO")
        self.assertIn(b"[OVERQUOTA]", data[0])
        m.select("INBOX")
        typ, data = m.copy("1", "Archive")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[OVERQUOTA]", data[0])
        # A move does not add to the usage.
        typ, data = m._simple_command("MOVE", "1", "Archive")
        self.assertEqual(typ, "OK")
        # Freeing space lets appends in again.
        m.store("1", "+FLAGS", "\\Deleted")
        typ, data = m.status("INBOX", "(MESSAGES DELETED DELETED-STORAGE)")
        self.assertEqual(typ, "OK")
        self.assertIn(b"DELETED 1", data[0])
        self.assertRegex(data[0].decode(), r"DELETED-STORAGE (8|9)\b")
        m.expunge()
        self.assertEqual(m.append("INBOX", None, None, msg)[0], "OK")
        m.logout()

    def test_smtp_to_full_account_is_temporary(self):
        m = login(self.server)
        big = b"Subject: big\r\n\r\n" + b"z" * 21000 + b"\r\n"
        self.assertEqual(m.append("INBOX", None, None, b"Subject: s\r\n\r\nsmall\r\n")[0], "OK")
        # Still under the limit when the recipient is accepted (no SIZE
        # declared): delivered, even though it takes the account past it.
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo("client.test")
            self.assertEqual(s.mail("taro@remote.test")[0], 250)
            self.assertEqual(s.rcpt(ALICE)[0], 250)
            self.assertEqual(s.data(big)[0], 250)
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail("taro@remote.test")
            code, text = s.rcpt(ALICE)
            self.assertEqual(code, 452)
            self.assertIn(b"4.2.2", text)
            # Other recipients of the same transaction are not affected.
            self.assertEqual(s.rcpt(BOB)[0], 250)
            s.rset()
        m.select("INBOX")
        typ, data = m.search(None, "ALL")
        self.assertEqual(len(data[0].split()), 2)
        m.logout()

    def test_declared_size_past_quota(self):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail("taro@remote.test", ["SIZE=30000"])
            code, text = s.rcpt(ALICE)
            self.assertEqual(code, 452)
            self.assertIn(b"4.2.2", text)


# Japanese test messages in the charsets mail actually uses.
JA = "日本語の全文検索テスト"
JA_SUBJECT = "会議の議事録"


def ja_message(charset, cte, body_text, subject=JA_SUBJECT):
    raw = body_text.encode(charset)
    if cte == "base64":
        body = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    elif cte == "quoted-printable":
        import quopri
        body = quopri.encodestring(raw).replace(b"\n", b"\r\n") + b"\r\n"
    else:
        body = raw.replace(b"\n", b"\r\n") + b"\r\n"
    subj = base64.b64encode(subject.encode(charset)).decode()
    return (f"From: taro@remote.test\r\nTo: {ALICE}\r\n"
            f"Subject: =?{charset}?B?{subj}?=\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset={charset}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + body


class TextSearchTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()

    def tearDown(self):
        self.server.cleanup()

    def search(self, m, *criteria):
        typ, data = m.search("UTF-8", *criteria)
        self.assertEqual(typ, "OK", data)
        return [int(x) for x in data[0].split()]

    def lit(self, m, text):
        m.literal = text.encode()
        return None

    def usearch(self, m, key, text):
        """SEARCH CHARSET UTF-8 key {literal}."""
        m.literal = text.encode()
        typ, data = m.search("UTF-8", key)
        self.assertEqual(typ, "OK", data)
        return [int(x) for x in data[0].split()]

    def test_japanese_charsets_and_encodings(self):
        msgs = [
            ja_message("iso-2022-jp", "7bit", "こんにちは。" + JA + "です。\n二行目"),
            ja_message("shift_jis", "base64", "シフトJISの" + JA + "\n"),
            ja_message("euc-jp", "quoted-printable", "EUC-JPで" + JA + "\n"),
            ja_message("utf-8", "base64", "UTF-8で書いた本文 hello WORLD\n", subject="別件"),
            b"Subject: plain\r\n\r\nNothing Japanese here, only a Searchable word.\r\n",
        ]
        for msg in msgs:
            deliver(self.server, msg)
        m = login(self.server)
        m.select("INBOX")
        self.assertEqual(self.usearch(m, "BODY", JA), [1, 2, 3])
        self.assertEqual(self.usearch(m, "BODY", "全文検索"), [1, 2, 3])
        self.assertEqual(self.usearch(m, "BODY", "シフトJIS"), [2])
        self.assertEqual(self.usearch(m, "BODY", "二行目"), [1])
        # Short (< 3 characters) needles: scanned, still on decoded text.
        self.assertEqual(self.usearch(m, "BODY", "本文"), [4])
        self.assertEqual(self.usearch(m, "BODY", "EUC"), [3])
        # Case-insensitive, ASCII in a base64 UTF-8 part.
        self.assertEqual(self.search(m, "BODY", "world"), [4])
        self.assertEqual(self.search(m, "BODY", "searchable"), [5])
        self.assertEqual(self.search(m, "BODY", "ld"), [4])
        # TEXT covers the decoded header (RFC 2047 subject) as well.
        self.assertEqual(self.usearch(m, "TEXT", "議事録"), [1, 2, 3])
        self.assertEqual(self.usearch(m, "BODY", "議事録"), [])
        self.assertEqual(self.usearch(m, "TEXT", "別件"), [4])
        self.assertEqual(self.usearch(m, "SUBJECT", "議事録"), [1, 2, 3])
        # Combined with other keys, and negated.
        m.literal = JA.encode()
        typ, data = m.search("UTF-8", "NOT", "BODY")
        self.assertEqual(data[0].split(), [b"4", b"5"])
        m.literal = "シフト".encode()
        typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", "UID", "1:3", "BODY")
        self.assertEqual(typ, "OK")
        self.assertEqual(len(data[0].split()), 1)
        # Raw encoded bytes do not match: the search is on decoded text.
        self.assertEqual(self.search(m, "BODY", "GyRC"), [])
        self.assertEqual(self.search(m, "BODY", "nothing-like-this"), [])
        m.logout()

    def test_index_follows_appends_copies_and_dedup(self):
        m = login(self.server)
        msg = ja_message("iso-2022-jp", "7bit", "追加した" + JA)
        self.assertEqual(m.append("INBOX", None, None, msg)[0], "OK")
        self.assertEqual(m.append("INBOX", None, None, msg)[0], "OK")  # same blob
        m.select("INBOX")
        self.assertEqual(self.usearch(m, "BODY", "追加した"), [1, 2])
        m.copy("1", "Archive")
        m.store("2", "+FLAGS", "\\Deleted")
        m.expunge()
        self.assertEqual(self.usearch(m, "BODY", "追加した"), [1])
        m.select("Archive")
        self.assertEqual(self.usearch(m, "BODY", "追加した"), [1])
        m.logout()

    def test_reindex_rebuilds_the_index(self):
        deliver(self.server, ja_message("shift_jis", "base64", "古いメールの本文です\n"))
        deliver(self.server, b"Subject: plain\r\n\r\nolder ascii mail\r\n")
        # While serving, the index is the server's: reindex says so.
        r = run_cli("reindex", data=self.server.data, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("in use", r.stderr + r.stdout)
        self.server.stop()
        # The index is derived data: lost, it is rebuilt (searches scan meanwhile).
        index = os.path.join(self.server.data, "index")
        self.assertTrue(os.path.isdir(index))
        shutil.rmtree(index)
        r = run_cli("reindex", data=self.server.data)
        self.assertIn("2 bodies indexed", r.stdout)
        self.assertIn("0 bodies indexed", run_cli("reindex", data=self.server.data).stdout)
        shutil.rmtree(index)
        self.server.start()  # no index: the background indexer rebuilds it
        m = login(self.server)
        m.select("INBOX")
        self.assertEqual(self.usearch(m, "BODY", "古いメール"), [1])
        self.assertEqual(self.search(m, "TEXT", "\"older ascii\""), [2])
        m.logout()
        self.assertTrue(wait_for(lambda: os.path.isdir(index), 10))
    def test_badcharset(self):
        m = login(self.server)
        m.select("INBOX")
        typ, data = m.search("ISO-2022-JP", "BODY", "x")
        self.assertEqual(typ, "NO")
        self.assertIn(b"BADCHARSET", data[0])
        m.logout()


class ImplicitTlsTest(unittest.TestCase):
    def test_imaps_with_self_signed_certificate(self):
        server = Server(users=("alice",)).start()
        try:
            deliver(server, b"Subject: over tls\r\n\r\nsecret body\r\n")
            ctx = ssl.create_default_context(cafile=f"{server.data}/tls/cert.pem")
            ctx.check_hostname = False  # the certificate names mail.example.test
            m = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port, ssl_context=ctx, timeout=15)
            self.assertNotIn("STARTTLS", m.capabilities)
            m.login(ALICE, PASSWORD)
            m.select("INBOX")
            typ, data = m.fetch("1", "(BODY.PEEK[TEXT])")
            self.assertEqual(data[0][1], b"secret body\r\n")
            m.logout()
            # Plaintext on the TLS port gets no greeting: the handshake fails and it closes.
            import socket
            with socket.create_connection(("127.0.0.1", server.imaps_port), timeout=10) as s:
                s.sendall(b"a LOGIN x y\r\n")
                s.settimeout(10)
                try:
                    data = s.recv(100)
                except OSError:
                    data = b""
                self.assertNotIn(b"* OK", data)
        finally:
            server.cleanup()


class RecentTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()

    def tearDown(self):
        self.server.cleanup()

    def test_first_session_gets_recent(self):
        deliver(self.server, b"Subject: one\r\n\r\n1\r\n")
        deliver(self.server, b"Subject: two\r\n\r\n2\r\n")
        a = login(self.server)
        typ, data = a.status("INBOX", "(MESSAGES RECENT)")
        self.assertIn(b"RECENT 2", data[0])
        # EXAMINE looks without claiming.
        a.select("INBOX", readonly=True)
        self.assertEqual(untagged(a, "RECENT"), ["2"])
        a.close()
        typ, data = a.select("INBOX")
        self.assertEqual(untagged(a, "RECENT"), ["2"])
        self.assertEqual(a.search(None, "RECENT")[1][0].split(), [b"1", b"2"])
        self.assertEqual(a.search(None, "NEW")[1][0].split(), [b"1", b"2"])
        self.assertEqual(a.search(None, "OLD")[1][0].split(), [])
        self.assertIn(b"\\Recent", a.fetch("1", "FLAGS")[1][0])
        a.fetch("1", "(BODY[])")  # \Seen: no longer NEW, still RECENT
        self.assertEqual(a.search(None, "NEW")[1][0].split(), [b"2"])
        self.assertEqual(a.search(None, "RECENT")[1][0].split(), [b"1", b"2"])
        # A second session does not see them as recent.
        b = login(self.server)
        self.assertIn(b"RECENT 0", b.status("INBOX", "(RECENT)")[1][0])
        b.select("INBOX")
        self.assertEqual(untagged(b, "RECENT"), ["0"])
        self.assertEqual(b.search(None, "RECENT")[1][0].split(), [])
        self.assertNotIn(b"\\Recent", b.fetch("1", "FLAGS")[1][0])
        # New mail while both are selected: the first to notice claims it.
        deliver(self.server, b"Subject: three\r\n\r\n3\r\n")
        b.noop()
        self.assertEqual(b.search(None, "RECENT")[1][0].split(), [b"3"])
        a.noop()
        self.assertEqual(a.search(None, "RECENT")[1][0].split(), [b"1", b"2"])
        # Flag changes keep \Recent.
        b.store("3", "+FLAGS", "\\Flagged")
        self.assertIn(b"\\Recent", b.fetch("3", "FLAGS")[1][0])
        a.logout()
        b.logout()
        # After both sessions ended: nothing is recent any more.
        c = login(self.server)
        self.assertIn(b"RECENT 0", c.status("INBOX", "(RECENT)")[1][0])
        c.logout()


class BodyLinesTest(unittest.TestCase):
    """body-fld-lines (RFC 3501 7.4.2) counts the lines ended by a line break,
    as Dovecot does. Expected values are Dovecot 2.3.19's answers for the same
    messages (checked by running its imap binary on a Maildir with them)."""

    MESSAGES = [
        (b"Subject: a\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
         b"Content-Type: text/plain\r\n\r\nl1\r\nl2\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
         b"x1\r\nx2\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B--\r\n",
         [("6", "1"), ("8", "2"), ("5", "0")]),
        (b"Subject: b\r\n\r\nline1\r\nline2", [("12", "1")]),  # no final CRLF
        (b"Subject: c\r\n\r\nline1\r\nline2\r\n", [("14", "2")]),
    ]

    def test_lines_match_dovecot(self):
        server = Server(users=("alice",)).start()
        try:
            m = login(server)
            for raw, _ in self.MESSAGES:
                self.assertEqual(m.append("INBOX", None, None, raw)[0], "OK")
            m.append("INBOX", None, None, b"Subject: d\r\nContent-Type: message/rfc822\r\n\r\n"
                     b"Subject: in\r\n\r\nz1\r\nz2")
            m.select("INBOX")
            for i, (_, expected) in enumerate(self.MESSAGES, start=1):
                typ, data = m.fetch(str(i), "(BODYSTRUCTURE)")
                got = re.findall(r'"7BIT" (\d+) (\d+)', data[0].decode())
                self.assertEqual(got, expected, data[0])
            typ, data = m.fetch("4", "(BODY)")
            # message/rfc822 of 21 octets and 3 lines, its text part 6 octets, 1 line.
            self.assertRegex(data[0].decode(), r'"RFC822" NIL NIL NIL "7BIT" 21 .*"7BIT" 6 1\) 3\)')
            m.logout()
        finally:
            server.cleanup()


class ListExtendedTest(unittest.TestCase):
    def test_recursivematch_childinfo_and_return_options(self):
        server = Server(users=("alice",)).start()
        try:
            m = login(server)
            self.assertEqual(m.create("Proj/A")[0], "OK")  # creates the parent Proj too
            self.assertEqual(m.subscribe("Proj/A")[0], "OK")  # CREATE subscribes nothing
            m.append("Proj/A", "(\\Deleted)", None, b"Subject: x\r\n\r\ny\r\n")

            def lines(cmd):
                typ, data = m._simple_command("LIST", *cmd)
                self.assertEqual(typ, "OK")
                return [d.decode() for d in m._untagged_response(typ, data, "LIST")[1] if d]

            # RFC 5258 3.5: the unsubscribed parent of a subscribed child.
            got = lines(["(SUBSCRIBED RECURSIVEMATCH)", '""', '"%"'])
            proj = [l for l in got if '"Proj"' in l]
            self.assertEqual(len(proj), 1, got)
            self.assertIn('("CHILDINFO" ("SUBSCRIBED"))', proj[0])
            self.assertNotIn("\\Subscribed", proj[0])
            self.assertFalse(any("Proj/A" in l for l in got))
            # Without RECURSIVEMATCH it is not listed.
            got = lines(["(SUBSCRIBED)", '""', '"%"'])
            self.assertFalse(any('"Proj"' in l for l in got), got)
            self.assertTrue(any('"INBOX"' in l and "\\Subscribed" in l for l in got), got)
            # RFC 3501 6.3.9: LSUB "%" returns the parent, \\Noselect; "*" the child only.
            typ, data = m.lsub('""', "%")
            proj = [d.decode() for d in data if d and b'"Proj"' in d]
            self.assertEqual(len(proj), 1, data)
            self.assertIn("\\Noselect", proj[0])
            typ, data = m.lsub('""', "*")
            names = b" ".join(d for d in data if d)
            self.assertIn(b'"Proj/A"', names)
            self.assertNotIn(b'"Proj" ', names + b" ")
            # RECURSIVEMATCH alone is a syntax error.
            with self.assertRaisesRegex(imaplib.IMAP4.error, "BAD"):
                m._simple_command("LIST", "(RECURSIVEMATCH)", '""', '"%"')
            # RETURN (CHILDREN SPECIAL-USE SUBSCRIBED STATUS (...)).
            typ, data = m._simple_command(
                "LIST", '""', '"*"', "RETURN", "(CHILDREN SPECIAL-USE SUBSCRIBED STATUS "
                "(MESSAGES DELETED RECENT))")
            self.assertEqual(typ, "OK")
            lst = [d.decode() for d in m._untagged_response(typ, data, "LIST")[1] if d]
            status = [d.decode() for d in m._untagged_response(typ, data, "STATUS")[1] if d]
            self.assertTrue(any('"Proj"' in l and "\\HasChildren" in l for l in lst), lst)
            self.assertTrue(any('"Sent"' in l and "\\Sent" in l for l in lst), lst)
            self.assertIn('"Proj/A" (MESSAGES 1 DELETED 1 RECENT 1)', status)
            m.logout()
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
