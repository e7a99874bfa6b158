"""Real IMAP clients against a live Hato: mbsync (isync) syncing both ways."""
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


if __name__ == "__main__":
    unittest.main()
