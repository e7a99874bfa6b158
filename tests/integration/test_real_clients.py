"""Real IMAP clients against a live Hato: mbsync (isync) syncing both ways,
fetchmail pulling over implicit TLS into an MDA, mutt reading in batch mode."""
import imaplib
import os
import shutil
import smtplib
import subprocess
import tempfile
import unittest

from harness import DOMAIN, PASSWORD, Server

ALICE = f"alice@{DOMAIN}"


class MbsyncTest(unittest.TestCase):
    def setUp(self):
        self.assertIsNotNone(shutil.which("mbsync"), "isync is installed by scripts/install-deps.sh")
        self.server = Server(users=("alice",)).start()
        self.dir = tempfile.mkdtemp(prefix="hato-mbsync-")
        self.maildir = os.path.join(self.dir, "mail")
        os.makedirs(self.maildir)
        with open(os.path.join(self.dir, "mbsyncrc"), "w") as f:
            f.write(f"""IMAPAccount hato
Host 127.0.0.1
Port {self.server.imap_port}
User {ALICE}
Pass {PASSWORD}
SSLType STARTTLS
CertificateFile {self.server.data}/tls/cert.pem

IMAPStore remote
Account hato

MaildirStore local
Path {self.maildir}/
Inbox {self.maildir}/INBOX
SubFolders Verbatim

Channel hato
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")

    def tearDown(self):
        self.server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sync(self):
        r = subprocess.run(["mbsync", "-c", os.path.join(self.dir, "mbsyncrc"), "-a"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def local(self, folder="INBOX"):
        """{path: content} of a local Maildir folder (mbsync stores LF line ends)."""
        out = {}
        for sub in ("cur", "new"):
            d = os.path.join(self.maildir, folder, sub)
            for name in os.listdir(d):
                out[os.path.join(d, name)] = open(os.path.join(d, name), "rb").read()
        return out

    def deliver(self, subject):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("x@remote.test", [ALICE], f"Subject: {subject}\r\n\r\nbody\r\n".encode())

    def test_sync_both_ways(self):
        for i in range(3):
            self.deliver(f"m{i}")
        self.sync()
        self.assertEqual(sorted(os.listdir(self.maildir)),
                         ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"])
        inbox = self.local()
        self.assertEqual(len(inbox), 3)
        # Local changes: flag one, delete one (trashed + expunged), add one.
        by_subject = {v.split(b"Subject: ")[1].split(b"\n")[0].strip(): k for k, v in inbox.items()}
        cur = os.path.join(self.maildir, "INBOX", "cur")

        def set_flags(path, flags):  # Maildir flags live in the file name
            base = os.path.basename(path).split(":2,")[0]
            os.rename(path, os.path.join(cur, base + ":2," + flags))

        set_flags(by_subject[b"m0"], "FS")  # flagged and seen
        set_flags(by_subject[b"m1"], "ST")  # trashed: expunged on both sides
        with open(os.path.join(self.maildir, "INBOX", "new", "local.1"), "wb") as f:
            f.write(b"Subject: from-local\r\n\r\nwritten offline\r\n")
        self.deliver("m3")
        self.sync()
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=15)
        m.login(ALICE, PASSWORD)
        m.select("INBOX")
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        seen = {}
        for item in data:
            if isinstance(item, tuple):
                subject = item[1].split(b": ")[1].strip()
                seen[subject] = item[0]
        self.assertEqual(sorted(seen), [b"from-local", b"m0", b"m2", b"m3"])
        self.assertIn(b"\\Flagged", seen[b"m0"])
        m.logout()
        self.assertEqual(len(self.local()), 4)
        # A second sync changes nothing.
        before = self.local()
        self.sync()
        self.assertEqual(self.local(), before)


class FetchmailTest(unittest.TestCase):
    """fetchmail pulls INBOX over IMAP with implicit TLS (port 993 style) and
    hands each message to an MDA command that writes one file per message."""

    def setUp(self):
        self.assertIsNotNone(shutil.which("fetchmail"),
                             "fetchmail is installed by scripts/install-deps.sh")
        self.server = Server(users=("alice",)).start()
        self.dir = tempfile.mkdtemp(prefix="hato-fetchmail-")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.out)
        mda = os.path.join(self.dir, "mda.sh")
        with open(mda, "w") as f:
            f.write(f'#!/bin/sh\ncat > "{self.out}/msg.$$"\n')
        os.chmod(mda, 0o755)
        self.rc = os.path.join(self.dir, "fetchmailrc")
        with open(self.rc, "w") as f:
            f.write(f"""set no syslog
poll 127.0.0.1 service {self.server.imaps_port} protocol IMAP auth password timeout 30
  user "{ALICE}" there with password "{PASSWORD}"
  ssl sslcertck sslcertfile "{self.server.data}/tls/cert.pem" sslcommonname "mail.{DOMAIN}"
  mda "{mda}"
""")
        os.chmod(self.rc, 0o600)  # fetchmail refuses a readable rc file

    def tearDown(self):
        self.server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def fetch(self):
        env = {**os.environ, "HOME": self.dir, "FETCHMAILHOME": self.dir}
        return subprocess.run(["fetchmail", "-f", self.rc, "--nodetach", "-v"], env=env,
                              capture_output=True, text=True, timeout=120)

    def test_fetch_into_mda(self):
        bodies = {}
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            for i in range(3):
                body = f"line one of message {i}\r\nline two\r\n"
                bodies[f"fetch-{i}"] = body
                s.sendmail("x@remote.test", [ALICE],
                           f"Subject: fetch-{i}\r\n\r\n{body}".encode())
        r = self.fetch()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)  # 0: mail was retrieved
        files = []
        for name in os.listdir(self.out):
            with open(os.path.join(self.out, name), "rb") as f:
                files.append(f.read())
        self.assertEqual(len(files), 3, r.stdout + r.stderr)
        got = {}
        for content in files:
            subject = content.split(b"Subject: ")[1].split(b"\n")[0].strip().decode()
            got[subject] = content.split(b"\n\n", 1)[1].replace(b"\r\n", b"\n")
        self.assertEqual(sorted(got), sorted(bodies))
        for subject, body in bodies.items():
            self.assertEqual(got[subject], body.replace("\r\n", "\n").encode())
        # fetchmail deletes what it fetched (no "keep"): INBOX is empty now,
        # and a second run finds nothing (exit 1).
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=15)
        m.login(ALICE, PASSWORD)
        typ, data = m.select("INBOX")
        self.assertEqual(data, [b"0"])
        m.logout()
        r = self.fetch()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(len(os.listdir(self.out)), 3)


class MuttTest(unittest.TestCase):
    """mutt, scripted with `push`, opens INBOX over IMAP, saves every message
    to a local mbox (which marks them deleted) and quits, expunging them."""

    def setUp(self):
        self.assertIsNotNone(shutil.which("mutt"), "mutt is installed by scripts/install-deps.sh")
        self.server = Server(users=("alice",)).start()
        self.dir = tempfile.mkdtemp(prefix="hato-mutt-")
        self.mbox = os.path.join(self.dir, "saved.mbox")
        self.rc = os.path.join(self.dir, "muttrc")
        with open(self.rc, "w") as f:
            f.write(f"""set imap_user="{ALICE}"
set imap_pass="{PASSWORD}"
set imap_authenticators="login"
set ssl_starttls=no
set ssl_force_tls=no
set folder="imap://127.0.0.1:{self.server.imap_port}/"
set spoolfile="+INBOX"
set header_cache=""
set mbox_type=mbox
set confirmcreate=no
set confirmappend=no
set delete=yes
set move=no
set quit=yes
set wait_key=no
set mail_check=60
""")

    def tearDown(self):
        self.server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_mutt(self, keys, timeout=60):
        """Runs mutt on a pseudo-terminal (it needs one) until it exits."""
        import pty
        import select
        import time
        env = {**os.environ, "HOME": self.dir, "TERM": "vt100", "LINES": "40", "COLUMNS": "120"}
        pid, fd = pty.fork()
        if pid == 0:  # child
            os.execvpe("mutt", ["mutt", "-n", "-F", self.rc, "-e", f"push '{keys}'"], env)
        screen = b""
        deadline = time.time() + timeout
        status = None
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                screen += chunk
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            self.fail("mutt did not finish; screen: %r" % screen[-2000:])
        os.close(fd)
        return status, screen

    def test_read_save_and_delete(self):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            for i in range(3):
                s.sendmail("x@remote.test", [ALICE],
                           f"Subject: mutt-{i}\r\n\r\nbody of mutt message {i}\r\n".encode())
        status, screen = self.run_mutt(
            "<tag-pattern>~A<enter><tag-prefix><save-message>" + self.mbox + "<enter><quit>")
        self.assertEqual(os.WEXITSTATUS(status), 0, screen[-2000:])
        self.assertIn(b"mutt-2", screen)  # the index listed the messages
        with open(self.mbox, "rb") as f:
            saved = f.read()
        self.assertEqual(saved.count(b"\nFrom "), 2, saved)  # 3 mbox entries
        for i in range(3):
            self.assertIn(f"Subject: mutt-{i}".encode(), saved)
            self.assertIn(f"body of mutt message {i}".encode(), saved)
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=15)
        m.login(ALICE, PASSWORD)
        typ, data = m.select("INBOX")
        self.assertEqual(data, [b"0"])  # saved messages were deleted and expunged
        m.logout()


if __name__ == "__main__":
    unittest.main()
