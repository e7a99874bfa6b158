"""Injected storage faults, one test each (issue 4): EIO and ENOSPC on the
metadata database (SQLite, through store/sqlite/fault_vfs.h) and on blob
segments, on every or only the Nth write/fsync; a slow metadata fsync; torn
writes that crash the server. For each: the client sees only 4xx / NO / -ERR
for the affected operation and never a success for data that was not stored;
reads of what was stored keep being served; when the fault clears the server
recovers without a restart (or, for a torn write, after the restart the crash
forced) and `hato verify` is clean. Faults come from HATO_FAULTS_FILE
(io/fault_fs.h)."""
import imaplib
import os
import poplib
import smtplib
import time
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


class FaultTestBase(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob"))
        self.server.set_config("smtp", "commit_timeout_seconds", 5)
        self.faults = os.path.join(self.server.data, "faults")
        self.set_faults("")
        self.start()

    def start(self):
        self.server.start(env={"HATO_FAULTS_FILE": self.faults})

    def tearDown(self):
        self.server.cleanup()

    def set_faults(self, text):
        with open(self.faults + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.faults + ".tmp", self.faults)
        time.sleep(0.1)  # the server re-reads the file at most every 50 ms

    def send(self, subject, rcpt=ALICE):
        """Returns the SMTP reply code for one message (250 = acknowledged)."""
        try:
            with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=20) as s:
                s.sendmail("x@remote.test", [rcpt], f"Subject: {subject}\r\n\r\nx\r\n".encode())
            return 250
        except smtplib.SMTPResponseException as e:
            return e.smtp_code
        except smtplib.SMTPRecipientsRefused as e:
            return list(e.recipients.values())[0][0]
        except smtplib.SMTPSenderRefused as e:
            return e.smtp_code

    def subjects(self, user=ALICE):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        p.user(user)
        p.pass_(PASSWORD)
        out = []
        for i in range(p.stat()[0]):
            for line in p.retr(i + 1)[1]:
                if line.startswith(b"Subject: "):
                    out.append(line[9:].decode())
        p.quit()
        return out

    def imap(self, user=ALICE):
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=10)
        m.login(user, PASSWORD)
        return m

    def assert_temporary(self, code, what):
        self.assertTrue(400 <= code < 500, f"{what}: expected a 4xx, got {code}")

    def assert_recovers(self, subject="after"):
        deadline = time.time() + 10
        while True:
            code = self.send(subject)
            if code == 250:
                break
            self.assert_temporary(code, "while recovering")
            self.assertLess(time.time(), deadline, "did not recover after the fault cleared")
            time.sleep(0.2)
        self.assertIn(subject, self.subjects())

    def verify_clean(self):
        self.server.stop()
        r = run_cli("verify", data=self.server.data, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class MetadataFaults(FaultTestBase):
    """The SQLite half of a commit fails: the WAL write or its fsync."""

    def check_every_write_refused(self, rule):
        self.assertEqual(self.send("before"), 250)
        m = self.imap(BOB)  # a session opened before the fault
        self.set_faults(rule + "\n")
        for i in range(3):
            self.assert_temporary(self.send(f"during-{i}"), rule)
        # IMAP APPEND and STORE are refused with NO, never OK.
        typ, _ = m.append("INBOX", None, None, b"Subject: appended\r\n\r\nx\r\n")
        self.assertEqual(typ, "NO")
        self.assertEqual(m.select("INBOX")[0], "OK")
        # Reads of what was stored go on: POP3 RETR, IMAP FETCH.
        self.assertEqual(self.subjects(), ["before"])
        self.assertEqual(self.send("to-bob", rcpt=BOB) // 100, 4)
        m.logout()
        self.set_faults("")
        self.assert_recovers()
        stored = self.subjects()
        self.assertEqual(stored, ["before", "after"])  # nothing refused slipped in
        self.verify_clean()

    def test_fsync_eio(self):
        self.check_every_write_refused("fsync file=db error=EIO")

    def test_write_eio(self):
        self.check_every_write_refused("write file=db error=EIO")

    def test_write_enospc(self):
        self.check_every_write_refused("write file=db error=ENOSPC")

    def test_nth_fsync_fails_only_that_commit(self):
        # The first commit into a new WAL also syncs its header: start after it,
        # so that each commit below is one metadata fsync.
        self.assertEqual(self.send("m0"), 250)
        self.set_faults("fsync file=db error=EIO nth=2 count=1\n")
        codes = [self.send(f"m{i}") for i in range(1, 5)]
        self.assertEqual(codes.count(250), 3, codes)
        self.assert_temporary(codes[1], "the 2nd commit")
        self.assertEqual(self.subjects(), ["m0", "m1", "m3", "m4"])
        self.verify_clean()

    def test_imap_store_and_pop3_dele_refused(self):
        for i in range(2):
            self.assertEqual(self.send(f"m{i}"), 250)
        m = self.imap()
        m.select("INBOX")
        self.set_faults("fsync file=db error=EIO")
        typ, _ = m.store("1", "+FLAGS", "(\\Flagged)")
        self.assertEqual(typ, "NO")
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        p.user(ALICE)
        p.pass_(PASSWORD)
        p.dele(1)
        with self.assertRaises(poplib.error_proto):  # QUIT's update fails: -ERR
            p.quit()
        p.close()
        self.set_faults("")
        self.assertEqual(self.subjects(), ["m0", "m1"])  # the deletion did not happen
        typ, data = m.fetch("1", "(FLAGS)")
        self.assertEqual(typ, "OK")
        self.assertNotIn(b"\\Flagged", data[0])
        self.assertEqual(m.store("1", "+FLAGS", "(\\Flagged)")[0], "OK")
        m.logout()
        self.verify_clean()

    def test_slow_fsync_gets_quick_4xx(self):
        self.server.stop()
        self.server.set_config("store", "slow_commit_ms", 300)
        self.server.set_config("smtp", "commit_timeout_seconds", 2)
        self.start()
        self.assertEqual(self.send("before"), 250)
        self.set_faults("fsync file=db delay_ms=3000")
        t0 = time.time()
        code = self.send("slow")  # waits at most commit_timeout_seconds
        self.assertIn(code, (250, 451))
        self.assertLess(time.time() - t0, 4)
        t0 = time.time()
        self.assert_temporary(self.send("refused"), "while commits are slow")
        self.assertLess(time.time() - t0, 1.5)
        t0 = time.time()
        self.assertIn("before", self.subjects())  # reads do not wait on the write path
        self.assertLess(time.time() - t0, 1.5)
        self.set_faults("")
        time.sleep(3)  # the slow batch finishes
        self.assert_recovers()
        stored = self.subjects()
        self.assertNotIn("refused", stored)
        if code == 250:
            self.assertIn("slow", stored)


class BlobFaults(FaultTestBase):
    """The body half of a commit fails: segment append or fdatasync."""

    def test_nth_blob_write_eio(self):
        self.set_faults("write file=blobs error=EIO nth=2 count=1\n")
        codes = [self.send(f"m{i}") for i in range(3)]
        self.assertEqual(codes.count(250), 2, codes)
        self.assert_temporary(codes[1], "the 2nd blob write")
        self.assertEqual(self.subjects(), ["m0", "m2"])
        self.verify_clean()

    def test_blob_write_enospc_then_recovers(self):
        self.assertEqual(self.send("before"), 250)
        self.set_faults("write file=blobs error=ENOSPC\n")
        self.assert_temporary(self.send("during"), "ENOSPC")
        self.assertEqual(self.subjects(), ["before"])
        self.set_faults("")
        self.assert_recovers()
        self.assertEqual(self.subjects(), ["before", "after"])
        self.verify_clean()


class TornWrites(FaultTestBase):
    """Part of a write reaches the disk, then the process dies (SIGKILL)."""

    def check_torn(self, rule):
        for i in range(3):
            self.assertEqual(self.send(f"m{i}"), 250)
        self.set_faults(rule + "\n")
        code = None
        try:
            code = self.send("torn")
        except (OSError, smtplib.SMTPException):
            pass  # the connection died with the server: no 250
        self.assertNotEqual(code, 250)
        self.assertIsNotNone(self.server.proc.wait(timeout=10))  # it crashed
        self.server.stop()
        self.set_faults("")
        r = run_cli("verify", data=self.server.data, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.start()
        stored = self.subjects()
        for i in range(3):
            self.assertEqual(stored.count(f"m{i}"), 1, stored)  # acknowledged: there, once
        self.assertLessEqual(stored.count("torn"), 1)
        self.assert_recovers()
        self.verify_clean()

    def test_torn_wal_write(self):
        self.check_torn("write file=db torn nth=1 count=1")

    def test_torn_blob_write(self):
        self.check_torn("write file=blobs torn nth=1 count=1")


if __name__ == "__main__":
    unittest.main()
