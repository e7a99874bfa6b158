"""hato export / import (mbox, Maildir), undelete, user restore/purge and
fsck (issue 6) through the real binary against a live server."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from backup_util import ALICE, BOB, UNICODE_FOLDER, deliver, dump, fill, imap, message
from harness import HATO, PASSWORD, Server

import poplib
import imaplib


def cli(*args, data=None, check=True, timeout=300):
    cmd = [HATO, *args] + (["--data", data] if data else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


TRICKY_MBOX = (
    b"From someone@remote.test Sat Nov 21 10:00:00 2026\n"
    b"From: a@remote.test\nSubject: one\n\nFrom the start\n>From quoted once\n>>From twice\n\n"
    b"From MAILER-DAEMON Sun Nov 22 01:02:03 2026\n"
    b"From: b@remote.test\nSubject: two\n\nbody two\n\n\n"
    b"From x@y Mon Nov 23 00:00:00 2026\n"
    b"Subject: three\n\nno trailing blank line")


class TransferTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob", "carol")).start()
        self.tmp = tempfile.mkdtemp(prefix="hato-transfer-")

    def tearDown(self):
        self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_export_import_round_trip(self):
        fill(self.server, n_smtp=6, n_append=6)
        before = dump(self.server.imap_port)
        for fmt in ("mbox", "maildir"):
            out = os.path.join(self.tmp, fmt)
            r = cli("export", ALICE, out, "--format", fmt, data=self.server.data)
            self.assertIn("export alice@example.test: 12 messages", r.stdout)
            user = BOB if fmt == "mbox" else f"carol@example.test"
            r = cli("import", user, out, data=self.server.data)
            self.assertIn("(12 added, 0 already present)", r.stdout)
            # Idempotent: a second import adds nothing.
            r = cli("import", user, out, data=self.server.data)
            self.assertIn("(0 added, 12 already present)", r.stdout)
            got = dump(self.server.imap_port, user)
            for folder, msgs in before.items():
                self.assertIn(folder, got)
                # Bytes and internal dates always; flags survive Maildir only.
                self.assertEqual([(b, d) for b, _, d in got[folder]],
                                 [(b, d) for b, _, d in msgs], (fmt, folder))
                if fmt == "maildir":
                    def system(fl):
                        return frozenset(f for f in fl if f.startswith("\\") and f != "\\Recent")
                    self.assertEqual([system(f) for _, f, _ in got[folder]],
                                     [system(f) for _, f, _ in msgs], folder)
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "mbox", "Ünïcode", "Sübfolder.mbox")))
        self.assertTrue(os.path.isdir(os.path.join(self.tmp, "maildir", "." + UNICODE_FOLDER.replace("/", "."), "cur")))
        # mbox -> import -> mbox is byte-identical.
        again = os.path.join(self.tmp, "again")
        cli("export", BOB, again, "--format", "mbox", data=self.server.data)
        for d, _, files in os.walk(os.path.join(self.tmp, "mbox")):
            for f in files:
                p = os.path.join(d, f)
                self.assertEqual(read(p), read(p.replace("/mbox/", "/again/", 1)), p)

    def test_import_tricky_samples(self):
        write(os.path.join(self.tmp, "box", "Lists", "Ärger.mbox"), TRICKY_MBOX)
        md = os.path.join(self.tmp, "md")
        write(os.path.join(md, "cur", "1700000000.M1P1.host:2,FS"), b"Subject: md1\n\nhello\n")
        write(os.path.join(md, "new", "1700000001.M2P2.host"), b"Subject: md2\r\n\r\nnew one\r\n")
        write(os.path.join(md, ".Sent.&AMQ-rger", "cur", "1700000002.M3.host:2,RT"),
              b"Subject: md3\n\nsent\n")
        os.makedirs(os.path.join(md, "tmp"))
        r = cli("import", ALICE, os.path.join(self.tmp, "box"), data=self.server.data)
        self.assertIn("3 messages (3 added", r.stdout)
        r = cli("import", ALICE, md, data=self.server.data)
        self.assertIn("3 messages (3 added", r.stdout)
        got = dump(self.server.imap_port)
        bodies = [b for b, _, _ in got["Lists/&AMQ-rger"]]
        self.assertIn(b"From: a@remote.test\r\nSubject: one\r\n\r\nFrom the start\r\n"
                      b"From quoted once\r\n>From twice\r\n", bodies)
        self.assertIn(b"From: b@remote.test\r\nSubject: two\r\n\r\nbody two\r\n\r\n", bodies)
        self.assertIn(b"Subject: three\r\n\r\nno trailing blank line\r\n", bodies)
        inbox = {b: f for b, f, _ in got["INBOX"]}
        self.assertEqual(inbox[b"Subject: md1\r\n\r\nhello\r\n"] & {"\\Seen", "\\Flagged"},
                         {"\\Seen", "\\Flagged"})
        self.assertNotIn("\\Seen", inbox[b"Subject: md2\r\n\r\nnew one\r\n"])
        sent = got["Sent/&AMQ-rger"]
        self.assertEqual(sent[0][0], b"Subject: md3\r\n\r\nsent\r\n")
        self.assertTrue({"\\Answered", "\\Deleted"} <= sent[0][1])
        self.assertIn("14-Nov-2023", sent[0][2])  # the internal date from the file name
        r = cli("import", ALICE, os.path.join(self.tmp, "nothing"), data=self.server.data, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing", r.stderr)

    def test_undelete_and_account_restore(self):
        for i in range(4):
            deliver(self.server.smtp_port, message(i))
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        p.user(ALICE)
        p.pass_(PASSWORD)
        p.dele(1)
        p.quit()
        m = imap(self.server.imap_port)
        m.select("INBOX")
        m.store("1", "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.logout()
        self.assertEqual(len(dump(self.server.imap_port)["INBOX"]), 2)
        r = cli("undelete", ALICE, "--folder", "Work", data=self.server.data)
        self.assertIn("undeleted 0 messages", r.stdout)
        r = cli("undelete", ALICE, "--since", "2000-01-01", data=self.server.data)
        self.assertIn("undeleted 2 messages", r.stdout)
        inbox = dump(self.server.imap_port)["INBOX"]
        self.assertEqual(len(inbox), 4)
        self.assertFalse(any("\\Deleted" in f for _, f, _ in inbox))
        self.assertIn("undeleted 0", cli("undelete", ALICE, data=self.server.data).stdout)

        cli("user", "remove", ALICE, data=self.server.data)
        with self.assertRaises(imaplib.IMAP4.error):
            imap(self.server.imap_port)
        cli("user", "restore", ALICE, data=self.server.data)
        self.assertEqual(len(dump(self.server.imap_port)["INBOX"]), 4)

        r = cli("user", "remove", ALICE, "--purge", data=self.server.data, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--yes", r.stderr)
        dest = os.path.join(self.tmp, "purge")
        r = cli("user", "remove", ALICE, "--purge", "--yes", "--backup", dest, data=self.server.data)
        set_id = re.search(r"backup (\S+) in", r.stdout).group(1)
        r = cli("user", "restore", ALICE, data=self.server.data, check=False)
        self.assertEqual(r.returncode, 1)  # gone for good
        # ... except from the backup taken first.
        cli("restore", dest, "--backup", set_id, "--merge", "--account", ALICE, data=self.server.data)
        self.assertEqual(len(dump(self.server.imap_port)["INBOX"]), 4)

    def test_fsck_finds_and_repairs_flipped_bits(self):
        bodies = []
        for i in range(6):
            body = b"Subject: fsck %d\r\n\r\n%s\r\n" % (i, b"unique-%d " % i * 20)
            bodies.append(body)
            deliver(self.server.smtp_port, body)
        dest = os.path.join(self.tmp, "bk")
        cli("backup", "create", dest, "--create", data=self.server.data)
        self.assertIn("0 problems", cli("fsck", data=self.server.data).stdout)
        # Flip one bit inside three stored bodies.
        seg_dir = os.path.join(self.server.data, "blobs")
        seg = os.path.join(seg_dir, sorted(os.listdir(seg_dir))[0])
        data = bytearray(read(seg))
        for i in (0, 2, 5):
            off = bytes(data).find(b"unique-%d " % i)
            self.assertGreater(off, 0)
            data[off + 3] ^= 0x04
        with open(seg, "r+b") as f:
            f.write(bytes(data))
        r = cli("fsck", data=self.server.data, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.count("PROBLEM"), 3, r.stdout)
        self.assertIn("alice@example.test/INBOX uid", r.stdout)
        r = cli("fsck", "--repair", "--backup", dest, data=self.server.data)
        self.assertIn("3 repaired", r.stdout)
        self.assertIn("0 problems", cli("fsck", data=self.server.data).stdout)
        stored = [b for b, _, _ in dump(self.server.imap_port)["INBOX"]]
        self.assertEqual(len(stored), len(bodies))
        for body in bodies:
            self.assertEqual(sum(1 for s in stored if s.endswith(body)), 1)


if __name__ == "__main__":
    unittest.main()
