"""Issue 11 (sec-b): spoofing, traversal and input hygiene, end to end.

Each test drives a real `hato serve` (or the real CLI) on loopback and fails on
the code before the fix:
  item 3   submission refuses From:/Sender: addresses the account does not own,
           and DKIM-signs only as the checked From domain;
  item 4   mailbox names with "."/".." levels are refused, and an export of a
           store that already holds one writes nothing outside its folder;
  item 6   forged Authentication-Results naming our host are removed on submission;
  item 7   `hato user passwd/remove/signout` (another process) end live IMAP,
           POP3 and submission sessions;
  item 9   import skips symbolic links; backup never writes through a planted
           link; restore copies only listed files and verify flags the others;
  item 10  a login name with CR/LF is logged as one escaped line;
  item 12  SCRAM: made-up salts do not depend on case or restarts, abandoned
           exchanges count as failures;
  item 13  5xx RCPTs count as errors, with a growing delay;
  item 14  ENVID/ORCPT that decode to control characters are refused;
  item 16  data files 0600; TLS 1.2 without CBC suites; NUL in DATA, an empty
           BDAT message and DATA after BDAT refused; EHLO bounded.
"""
import base64
import email
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import socket
import sqlite3
import ssl
import stat
import tempfile
import time
import unittest

from harness import DOMAIN, PASSWORD, LineClient, Server, run_cli, wait_for

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


def hostname_of(server):
    text = open(os.path.join(server.data, "hato.toml")).read()
    return re.search(r'^hostname\s*=\s*"([^"]+)"', text, re.M).group(1)


def pop3_messages(server, user):
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
    try:
        p.user(user)
        p.pass_(PASSWORD)
        n = len(p.list()[1])
        return [b"\r\n".join(p.retr(i + 1)[1]) for i in range(n)]
    finally:
        p.quit()


def submit_raw(server, mail_from, rcpts, message, login=ALICE):
    """Submits `message` (bytes, CRLF); returns (code, text) of the reply to the data."""
    s = smtplib.SMTP("127.0.0.1", server.submission_port, timeout=15)
    try:
        s.ehlo()
        s.login(login, PASSWORD)
        code, text = s.mail(mail_from)
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (code, text)
        return s.data(message)
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            pass


def read_until(sock, pattern, timeout):
    """Reads from `sock` until `pattern` (bytes regex) matches or EOF/timeout; returns all data
    and whether the peer closed."""
    sock.settimeout(0.5)
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if re.search(pattern, data):
            return data, False
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


class SubmissionSpoofing(unittest.TestCase):
    """Item 3 and item 6."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=("alice", "bob"))
        run_cli("domain", "add", "other.test", data=cls.server.data)
        run_cli("user", "add", "carol@other.test", "--password-stdin", data=cls.server.data,
                input=PASSWORD + "\n")
        run_cli("alias", "add", f"sales@{DOMAIN}", ALICE, data=cls.server.data)
        for d in (DOMAIN, "other.test"):
            run_cli("dkim", "generate", d, "--selector", "s1", data=cls.server.data)
        cls.server.start()
        cls.host = hostname_of(cls.server)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def msg(self, headers, subject):
        return (headers + f"To: {BOB}\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n").encode()

    def bob_has(self, subject):
        return [m for m in pop3_messages(self.server, BOB) if subject.encode() in m]

    def test_from_of_another_domain_is_refused_and_not_signed(self):
        # The attack of the issue: MAIL FROM is alice's own, the From: is carol's.
        code, text = submit_raw(self.server, ALICE, [BOB],
                                self.msg("From: Carol <carol@other.test>\r\n", "spoof-other"))
        self.assertEqual(code, 550, text)
        self.assertIn(b"5.7.1", text)
        self.assertEqual(self.bob_has("spoof-other"), [])

    def test_from_or_sender_of_another_local_account_is_refused(self):
        for i, headers in enumerate([f"From: {BOB}\r\n",
                                     f"From: {ALICE}, {BOB}\r\n",
                                     f"From: {ALICE}\r\nSender: {BOB}\r\n",
                                     "From: undisclosed-recipients:;\r\nSender: x@\r\n"]):
            subject = f"spoof-local-{i}"
            code, text = submit_raw(self.server, ALICE, [BOB], self.msg(headers, subject))
            self.assertEqual(code, 550, (headers, text))
            self.assertEqual(self.bob_has(subject), [])

    def test_own_address_and_alias_are_accepted_and_signed_by_their_domain(self):
        for sender, subject in ((ALICE, "own-ok"), (f"Sales <sales@{DOMAIN}>", "alias-ok"),
                                (f"ALICE@{DOMAIN.upper()}", "case-ok")):
            code, text = submit_raw(self.server, ALICE, [BOB],
                                    self.msg(f"From: {sender}\r\nSender: {ALICE}\r\n", subject))
            self.assertEqual(code, 250, text)
            got = self.bob_has(subject)
            self.assertEqual(len(got), 1)
            sig = email.message_from_bytes(got[0])["DKIM-Signature"]
            self.assertIsNotNone(sig)
            self.assertRegex(re.sub(r"\s", "", sig), rf"(^|;)d={re.escape(DOMAIN)};")

    def test_forged_authentication_results_are_removed(self):
        headers = (f"Authentication-Results: {self.host}; dkim=pass header.d=bank.example\r\n"
                   f"Authentication-Results: {self.host.upper()} 1; spf=pass\r\n"
                   "Authentication-Results: elsewhere.example; spf=pass\r\n"
                   f"From: {ALICE}\r\n")
        code, text = submit_raw(self.server, ALICE, [BOB], self.msg(headers, "forged-ar"))
        self.assertEqual(code, 250, text)
        got = self.bob_has("forged-ar")
        self.assertEqual(len(got), 1)
        m = email.message_from_bytes(got[0])
        ars = m.get_all("Authentication-Results") or []
        self.assertEqual(len(ars), 1, ars)
        self.assertIn("elsewhere.example", ars[0])


class ListPathForgedResults(unittest.TestCase):
    """Item 6 on the list path: a post to a list, by submission or on port 25,
    reaches every member without the forged Authentication-Results naming our
    host; a field of another host's is kept (RFC 8601 section 5)."""

    def setUp(self):
        from fakemx import FakeDNS
        self.dns = FakeDNS({"remote.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")]}, ttl=300)
        self.server = Server(users=("alice", "bob"))
        self.server.set_config("outbound", "resolver", f'"{self.dns.address}"')
        self.server.start()
        self.host = hostname_of(self.server)
        self.list = f"team@{DOMAIN}"
        run_cli("list", "create", self.list, "--mode", "discussion", data=self.server.data)
        run_cli("list", "members", "add", self.list, ALICE, BOB, "carol@remote.example",
                data=self.server.data)

    def tearDown(self):
        self.server.cleanup()
        self.dns.stop()

    def forged(self, frm, subject):
        return (f"Authentication-Results: {self.host}; dkim=pass header.d=bank.example\r\n"
                "Authentication-Results: elsewhere.example; spf=pass\r\n"
                f"From: {frm}\r\nTo: {self.list}\r\nSubject: {subject}\r\n\r\nhi\r\n").encode()

    def copies(self, user, subject):
        return [email.message_from_bytes(m) for m in pop3_messages(self.server, user)
                if email.message_from_bytes(m)["Subject"] == subject]

    def assert_no_forged_field(self, subject, users):
        for user in users:
            got = wait_for(lambda u=user: self.copies(u, subject), what=f"{subject} for {user}")
            self.assertEqual(len(got), 1)
            fields = got[0].get_all("Authentication-Results") or []
            self.assertFalse([f for f in fields if "bank.example" in f], fields)
            self.assertTrue([f for f in fields if "elsewhere.example" in f], fields)

    def test_submitted_post(self):
        code, text = submit_raw(self.server, ALICE, [self.list],
                                self.forged(ALICE, "list-forged-sub"))
        self.assertEqual(code, 250, text)
        self.assert_no_forged_field("list-forged-sub", (ALICE, BOB))

    def test_post_on_port_25(self):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=15) as s:
            s.ehlo("mx.remote.example")
            code, text = s.mail("carol@remote.example")
            self.assertEqual(code, 250, text)
            code, text = s.rcpt(self.list)
            self.assertEqual(code, 250, text)
            code, text = s.data(self.forged("carol@remote.example", "list-forged-25"))
            self.assertEqual(code, 250, text)
        self.assert_no_forged_field("list-forged-25", (ALICE, BOB))


class MailboxNames(unittest.TestCase):
    """Item 4."""

    def setUp(self):
        self.server = Server(users=("alice",))
        self.tmp = tempfile.mkdtemp(prefix="hato-export-")

    def tearDown(self):
        self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_traversal_names_are_refused_over_imap(self):
        self.server.start()
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
        try:
            m.login(ALICE, PASSWORD)
            for name in ("../../../../tmp/x", "a/../b", "./a", "a/.", "..", "a/" + "x" * 300):
                typ, data = m.create(f'"{name}"')
                self.assertEqual(typ, "NO", (name, data))
            typ, _ = m.create('"Work/2026"')
            self.assertEqual(typ, "OK")
            typ, data = m.rename('"Work/2026"', '"Work/../../escape"')
            self.assertEqual(typ, "NO", data)
            typ, data = m.list()
            self.assertFalse(any(b".." in line for line in data), data)
        finally:
            m.logout()

    def test_export_of_a_store_holding_a_traversal_name_stays_inside(self):
        # An older Hato (or a restored store) may hold such a name: put one in
        # the metadata as it would be, with a message in it.
        db = sqlite3.connect(os.path.join(self.server.data, "meta.db"))
        acct = db.execute("SELECT id FROM accounts WHERE address = ?", (ALICE,)).fetchone()[0]
        db.execute("INSERT INTO mailboxes(account_id, name, uidvalidity, uidnext) "
                   "VALUES(?, '../../escape', 7, 1)", (acct,))
        db.execute("INSERT INTO mailboxes(account_id, name, uidvalidity, uidnext) "
                   "VALUES(?, 'ok/../../../escape2', 8, 1)", (acct,))
        db.commit()
        db.close()
        out = os.path.join(self.tmp, "a", "b", "out")
        os.makedirs(os.path.dirname(out))
        r = run_cli("export", ALICE, "--format", "mbox", out, data=self.server.data, check=False)
        self.assertNotEqual(r.returncode, 0, "the unsafe folders are reported")
        self.assertIn("escape", r.stdout + r.stderr)
        written = []
        for root, _, files in os.walk(self.tmp):
            for f in files:
                written.append(os.path.relpath(os.path.join(root, f), self.tmp))
        self.assertTrue(written, "the other folders were exported")
        for w in written:
            self.assertTrue(w.startswith(os.path.join("a", "b", "out") + os.sep), written)
        self.assertIn(os.path.join("a", "b", "out", "INBOX.mbox"), written)


class SessionsEnd(unittest.TestCase):
    """Item 7: a separate CLI process ends live sessions of the running server."""

    def setUp(self):
        self.server = Server(users=("alice", "bob")).start()

    def tearDown(self):
        self.server.cleanup()

    def open_sessions(self, user):
        imap = socket.create_connection(("127.0.0.1", self.server.imap_port), timeout=10)
        read_until(imap, rb"\* OK", 5)
        imap.sendall(f'a1 LOGIN "{user}" "{PASSWORD}"\r\na2 SELECT INBOX\r\n'.encode())
        data, _ = read_until(imap, rb"a2 OK", 10)
        self.assertIn(b"a2 OK", data)
        pop = socket.create_connection(("127.0.0.1", self.server.pop3_port), timeout=10)
        read_until(pop, rb"\+OK", 5)
        pop.sendall(f"USER {user}\r\nPASS {PASSWORD}\r\n".encode())
        data, _ = read_until(pop, rb"maildrop", 10)
        self.assertIn(b"+OK maildrop", data)
        sub = smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10)
        sub.ehlo()
        sub.login(user, PASSWORD)
        return imap, pop, sub

    def assert_ended(self, imap, pop, sub):
        data, _ = read_until(imap, rb"\* BYE[^\r]*\r\n", 15)
        self.assertRegex(data, rb"\* BYE", "IMAP got BYE")
        _, closed = read_until(imap, rb"(?!)", 5)
        self.assertTrue(closed, "IMAP closed")
        data, closed = read_until(pop, rb"-ERR[^\r]*\r\n", 10)
        self.assertTrue(closed or b"-ERR" in data, data)
        _, closed = read_until(pop, rb"(?!)", 5)
        self.assertTrue(closed, "POP3 closed")
        data, closed = read_until(sub.sock, rb"421[^\r]*\r\n", 10)
        self.assertTrue(closed or data.startswith(b"421"), data)
        # Nothing more is accepted on the old session.
        with self.assertRaises((smtplib.SMTPException, OSError)):
            sub.mail(ALICE)
            sub.rcpt(BOB)
            sub.data(b"Subject: after\r\n\r\nx\r\n")

    def test_password_change_ends_sessions_new_password_works(self):
        imap, pop, sub = self.open_sessions(ALICE)
        # A session of another account is untouched.
        other = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
        other.login(BOB, PASSWORD)
        run_cli("user", "passwd", ALICE, "--password-stdin", data=self.server.data,
                input="new-secret-1\n")
        self.assert_ended(imap, pop, sub)
        self.assertEqual(other.noop()[0], "OK")
        other.logout()
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
        m.login(ALICE, "new-secret-1")
        # That new session lives on.
        time.sleep(2.5)
        self.assertEqual(m.noop()[0], "OK")
        m.logout()

    def test_remove_and_signout_end_sessions(self):
        imap, pop, sub = self.open_sessions(BOB)
        run_cli("user", "remove", BOB, data=self.server.data)
        self.assert_ended(imap, pop, sub)
        imap, pop, sub = self.open_sessions(ALICE)
        run_cli("user", "signout", ALICE, data=self.server.data)
        self.assert_ended(imap, pop, sub)


class LogInjection(unittest.TestCase):
    """Item 10."""

    def test_crlf_in_login_name_is_one_escaped_line(self):
        with Server(users=("alice",)) as server:
            c = LineClient(server.imap_port)
            c.line()
            name = b"evil\r\n2026-01-01T00:00:00.000 warning imap: failed login for root"
            c.send(b"a LOGIN {%d+}\r\n" % len(name) + name + b' "wrong"\r\n')
            c.line()
            deadline = time.time() + 15
            while time.time() < deadline and "evil" not in server.logs():
                time.sleep(0.1)
            c.close()
            logs = server.logs()
            lines = [l for l in logs.split("\n") if "evil" in l]
            self.assertEqual(len(lines), 1, logs)
            self.assertIn("evil\\x0d\\x0a2026", lines[0])
            self.assertFalse(any(l.startswith("2026-01-01T00:00:00.000") for l in logs.split("\n")))


class LogInjectionEverywhere(unittest.TestCase):
    """Item 10 beyond the login name: control characters in an EHLO, in the
    addresses of MAIL and RCPT, in an IMAP mailbox name and in a Sieve
    fileinto target never start a log line of their own. Every line the
    server writes is one event: a timestamp, a level, the message."""

    FORGED = "2026-01-01T00:00:00.000Z warning imap: failed login for root"
    LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warning|error|critical) ")

    def assert_one_event_a_line(self, server, marker):
        logs = server.logs()
        lines = [l for l in logs.split("\n") if l]
        self.assertFalse([l for l in lines if not self.LINE.match(l)], logs[-3000:])
        self.assertFalse([l for l in lines if l.startswith("2026-01-01T00:00:00.000Z")], logs[-3000:])
        self.assertTrue([l for l in lines if marker in l], f"{marker!r} was never logged")

    def test_smtp_ehlo_and_addresses(self):
        # Control characters never get past the SMTP grammar (RFC 5321 section
        # 4.1.2: no CTLs in a domain or a local part, quoted or not), so they
        # reach no log line; the refused commands are answered 501.
        forged = self.FORGED.encode()
        with Server(users=("alice",)) as server:
            c = LineClient(server.smtp_port)
            c.reply()
            c.send(b"EHLO evil-helo\x1b[2J\r" + forged + b"\r\n")
            self.assertEqual(c.reply()[0], 501)
            c.send(b"EHLO client.remote.example\r\n")
            self.assertEqual(c.reply()[0], 250)
            c.send(b"MAIL FROM:<\"evil-from\x0b\r" + forged + b"\"@remote.example>\r\n")
            self.assertEqual(c.reply()[0], 501)
            c.send(b"MAIL FROM:<sender@remote.example>\r\n")
            self.assertEqual(c.reply()[0], 250)
            c.send(b"RCPT TO:<\"evil-rcpt\x0c\r" + forged + b"\"@" + DOMAIN.encode() + b">\r\n")
            self.assertEqual(c.reply()[0], 501)
            c.send(b"RCPT TO:<nobody-here@" + DOMAIN.encode() + b">\r\n")
            self.assertEqual(c.reply()[0], 550)
            c.send(b"QUIT\r\n")
            c.close()
            wait_for(lambda: "nobody-here" in server.logs(), what="the refused RCPT in the log")
            self.assert_one_event_a_line(server, "to=<nobody-here@")

    def test_imap_mailbox_name_and_sieve_fileinto(self):
        with Server(users=("alice",)) as server:
            script = ('require "fileinto";\r\nfileinto "evil-box\r\n' + self.FORGED + '";\r\n')
            with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
                f.write(script)
            try:
                run_cli("sieve", "put", ALICE, "main", f.name, data=server.data)
                run_cli("sieve", "activate", ALICE, "main", data=server.data)
            finally:
                os.unlink(f.name)
            m = imaplib.IMAP4("127.0.0.1", server.imap_port)
            try:
                m.login(ALICE, PASSWORD)
                name = ("evil-imap\r\n" + self.FORGED).encode()
                m.literal = name
                typ, _ = m._simple_command("CREATE")
                self.assertEqual(typ, "NO")
            finally:
                m.logout()
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=15) as s:
                s.sendmail("sender@remote.example", [ALICE],
                           b"From: sender@remote.example\r\nSubject: x\r\n\r\nhi\r\n")
            wait_for(lambda: "evil-box" in server.logs(), what="the Sieve fallback in the log")
            self.assert_one_event_a_line(server, "evil-box\\x0d\\x0a2026")


class ImportAndBackupLinks(unittest.TestCase):
    """Item 9."""

    def setUp(self):
        self.server = Server(users=("alice",))
        self.tmp = tempfile.mkdtemp(prefix="hato-links-")
        self.secret = os.path.join(self.tmp, "host-secret")
        with open(self.secret, "w") as f:
            f.write("From root@host Thu Jan  1 00:00:00 2026\nSubject: HOSTSECRET\n\nroot:x:0\n")

    def tearDown(self):
        self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def inbox_text(self):
        out = os.path.join(self.tmp, "export")
        run_cli("export", ALICE, "--format", "mbox", out, data=self.server.data)
        text = ""
        for root, _, files in os.walk(out):
            for f in files:
                text += open(os.path.join(root, f), errors="replace").read()
        return text

    def test_import_skips_links(self):
        md = os.path.join(self.tmp, "maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, d))
        with open(os.path.join(md, "cur", "1.a:2,S"), "w") as f:
            f.write("From: a@b\nSubject: REGULAR\n\nhello\n")
        os.symlink(self.secret, os.path.join(md, "cur", "2.b:2,S"))
        os.symlink(self.secret, os.path.join(md, "new", "3.c"))
        os.makedirs(os.path.join(self.tmp, "outside", "cur"))
        os.symlink(self.secret, os.path.join(self.tmp, "outside", "cur", "4.d"))
        os.symlink(os.path.join(self.tmp, "outside"), os.path.join(md, ".Linked"))
        r = run_cli("import", ALICE, md, data=self.server.data, check=False)
        self.assertIn("not a regular file", r.stdout + r.stderr)
        # An mbox tree with a linked mbox file.
        tree = os.path.join(self.tmp, "tree")
        os.makedirs(tree)
        with open(os.path.join(tree, "Kept.mbox"), "w") as f:
            f.write("From a@b Thu Jan  1 00:00:00 2026\nSubject: KEPTMBOX\n\nx\n")
        os.symlink(self.secret, os.path.join(tree, "Evil.mbox"))
        r = run_cli("import", ALICE, tree, data=self.server.data, check=False)
        self.assertIn("not a regular file", r.stdout + r.stderr)
        text = self.inbox_text()
        self.assertIn("REGULAR", text)
        self.assertIn("KEPTMBOX", text)
        self.assertNotIn("HOSTSECRET", text)

    def test_backup_never_writes_through_planted_links(self):
        self.server.start()
        dest = os.path.join(self.tmp, "dest")
        run_cli("backup", "create", dest, "--create", data=self.server.data)
        s = smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10)
        s.sendmail("x@remote.example", [ALICE], "Subject: new\r\n\r\nnew body %f\r\n" % time.time())
        s.quit()
        outside = os.path.join(self.tmp, "outside")
        os.makedirs(outside)
        bodies = os.path.join(dest, "bodies")
        for d in os.listdir(bodies):
            p = os.path.join(bodies, d)
            if not os.listdir(p):
                os.rmdir(p)
                os.symlink(outside, p)
        r = run_cli("backup", "create", dest, data=self.server.data, check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("symbolic link", r.stderr + r.stdout)
        self.assertEqual(os.listdir(outside), [])

    def test_restore_copies_only_listed_files_and_verify_flags_others(self):
        dest = os.path.join(self.tmp, "dest")
        run_cli("backup", "create", dest, "--create", data=self.server.data)
        sets = os.listdir(os.path.join(dest, "sets"))
        set_dir = os.path.join(dest, "sets", sets[0])
        manifest = os.path.join(set_dir, "MANIFEST")
        lines = open(manifest).read().split("\n")
        # Someone with write access to the backup swaps in their own key.
        lines = [l for l in lines if not l.startswith("file config/tls/key.pem ")]
        open(manifest, "w").write("\n".join(lines))
        with open(os.path.join(set_dir, "config", "tls", "key.pem"), "w") as f:
            f.write("ATTACKER KEY\n")
        with open(os.path.join(set_dir, "config", "extra.conf"), "w") as f:
            f.write("x\n")
        r = run_cli("backup", "verify", dest, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("key.pem is not listed", r.stdout)
        self.assertIn("extra.conf is not listed", r.stdout)
        new = os.path.join(self.tmp, "restored")
        run_cli("restore", dest, data=new)
        self.assertTrue(os.path.exists(os.path.join(new, "hato.toml")))
        key = os.path.join(new, "tls", "key.pem")
        self.assertFalse(os.path.exists(key) and "ATTACKER" in open(key).read())


class ScramEnumeration(unittest.TestCase):
    """Item 12."""

    def scram_salt(self, server, user, cancel=True):
        c = LineClient(server.submission_port)
        c.reply()
        c.send(b"EHLO t\r\n")
        c.reply()
        first = b"n,,n=" + user.encode() + b",r=abcdefghijklmnop"
        c.send(b"AUTH SCRAM-SHA-256 " + base64.b64encode(first) + b"\r\n")
        line = c.line()
        self.assertTrue(line.startswith("334 "), line)
        attrs = dict(a.split("=", 1) for a in base64.b64decode(line[4:]).decode().split(","))
        if cancel:
            c.send(b"*\r\n")
            c.reply()
        c.close()
        return attrs["s"]

    def test_fake_salt_is_case_and_restart_independent(self):
        server = Server(users=("alice",))
        server.set_config("auth", "penalty_base_ms", "0")
        try:
            server.start()
            a = self.scram_salt(server, f"nobody@{DOMAIN}")
            b = self.scram_salt(server, f"NoBody@{DOMAIN.upper()}")
            self.assertEqual(a, b)
            real = self.scram_salt(server, ALICE)
            self.assertEqual(real, self.scram_salt(server, ALICE.upper()))
            server.stop()
            server.start()
            self.assertEqual(a, self.scram_salt(server, f"nobody@{DOMAIN}"))
            self.assertEqual(real, self.scram_salt(server, ALICE))
            self.assertEqual(stat.S_IMODE(os.stat(
                os.path.join(server.data, "scram-fake-salt.key")).st_mode), 0o600)
        finally:
            server.cleanup()

    def test_abandoned_exchange_counts_as_a_failure(self):
        server = Server(users=("alice",))
        server.set_config("auth", "penalty_base_ms", "3000")
        try:
            server.start()
            t0 = time.time()
            m = imaplib.IMAP4("127.0.0.1", server.imap_port)
            m.login(ALICE, PASSWORD)
            m.logout()
            self.assertLess(time.time() - t0, 2.5, "no penalty yet")
            # From the third failure of an address on, every new attempt waits
            # (auth/penalty.h): three abandoned exchanges must count.
            for _ in range(3):
                self.scram_salt(server, "nobody@" + DOMAIN, cancel=True)
            t0 = time.time()
            m = imaplib.IMAP4("127.0.0.1", server.imap_port)
            m.login(ALICE, PASSWORD)
            m.logout()
            self.assertGreaterEqual(time.time() - t0, 2.5, "the abandoned exchange was penalised")
        finally:
            server.cleanup()


class SmtpInputs(unittest.TestCase):
    """Items 13, 14 and 16 (SMTP), 16 (files, TLS)."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=("alice", "bob"))
        cls.server.set_config("smtp", "max_errors", "10")
        cls.server.set_config("smtp", "bad_rcpt_delay_ms", "40")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def mx(self):
        c = LineClient(self.server.smtp_port, timeout=30)
        self.assertEqual(c.reply()[0], 220)
        c.send(b"EHLO client.example\r\n")
        c.reply()
        return c

    def test_rcpt_harvesting_is_slowed_and_cut_off(self):
        c = self.mx()
        c.send(b"MAIL FROM:<x@remote.example>\r\n")
        self.assertEqual(c.reply()[0], 250)
        t0 = time.time()
        codes = []
        for i in range(15):
            c.send(b"RCPT TO:<nobody%d@%s>\r\n" % (i, DOMAIN.encode()))
            code = c.reply()[0]
            codes.append(code)
            if code == 421:
                break
        elapsed = time.time() - t0
        self.assertEqual(codes[-1], 421, codes)
        self.assertEqual(codes.count(550), 10, codes)
        # 40 ms x (1 + 2 + ... + 10) = 2.2 s at least.
        self.assertGreaterEqual(elapsed, 2.0)
        self.assertTrue(c.closed())

    def test_envid_and_orcpt_with_control_characters_are_refused(self):
        s = smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10)
        s.ehlo()
        s.login(ALICE, PASSWORD)
        code, text = s.docmd(f"MAIL FROM:<{ALICE}> ENVID=abc+0D+0AX-Evil:+20yes")
        self.assertEqual(code, 501, text)
        code, text = s.docmd(f"MAIL FROM:<{ALICE}> ENVID=ok+2Bfine")
        self.assertEqual(code, 250, text)
        code, text = s.docmd(f"RCPT TO:<{BOB}> ORCPT=rfc822;bob+0A@x")
        self.assertEqual(code, 501, text)
        code, text = s.docmd(f"RCPT TO:<{BOB}> ORCPT=rfc822;bob+40x")
        self.assertEqual(code, 250, text)
        s.quit()

    def test_nul_in_data_is_refused(self):
        c = self.mx()
        c.send(f"MAIL FROM:<x@remote.example>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n".encode())
        c.reply(), c.reply(), c.reply()
        c.send(b"Subject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
        r = c.reply()
        self.assertEqual(r[0], 554, r)
        self.assertFalse(any(b"before" in m for m in pop3_messages(self.server, BOB)))

    def test_bdat_empty_and_data_after_bdat(self):
        c = self.mx()
        c.send(f"MAIL FROM:<x@remote.example>\r\nRCPT TO:<{BOB}>\r\nBDAT 0 LAST\r\n".encode())
        c.reply(), c.reply()
        r = c.reply()
        self.assertEqual(r[0], 554, r)
        c.send(f"MAIL FROM:<x@remote.example>\r\nRCPT TO:<{BOB}>\r\n".encode())
        c.reply(), c.reply()
        c.send(b"BDAT 10\r\nSubject: x")
        self.assertEqual(c.reply()[0], 250)
        c.send(b"DATA\r\n")
        r = c.reply()
        self.assertEqual(r[0], 503, r)
        c.send(b"BDAT 10 LAST\r\n\r\n\r\nbody\r\n")
        r = c.reply()
        self.assertEqual(r[0], 250, r)

    def test_long_ehlo_is_refused(self):
        c = LineClient(self.server.smtp_port)
        c.reply()
        c.send(b"EHLO " + b"a" * 1000 + b".example\r\n")
        r = c.reply()
        self.assertEqual(r[0], 501, r)

    def test_data_files_are_owner_only(self):
        s = smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10)
        s.sendmail("x@remote.example", [BOB], "Subject: perms\r\n\r\nx\r\n")
        s.quit()
        data = self.server.data
        for name in ("meta.db", "meta.db-wal", "meta.db-shm"):
            path = os.path.join(data, name)
            if os.path.exists(path):
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode) & 0o077, 0, name)
        self.assertTrue(os.path.exists(os.path.join(data, "meta.db-wal")))

    def test_tls12_offers_no_cbc_suites(self):
        for port in (self.server.imaps_port, self.server.submissions_port):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:AES128-SHA:"
                            "ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA384:AES256-SHA256")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with self.assertRaises(ssl.SSLError):
                    ctx.wrap_socket(raw).close()
            ok = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ok.check_hostname = False
            ok.verify_mode = ssl.CERT_NONE
            ok.maximum_version = ssl.TLSVersion.TLSv1_2
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ok.wrap_socket(raw) as t:
                    self.assertRegex(t.cipher()[0], "GCM|CHACHA20")


if __name__ == "__main__":
    unittest.main()
