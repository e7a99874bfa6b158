"""Drill: storage becomes slow (fsync takes seconds, as after a bad firmware
update or on overloaded cloud storage). New SMTP transactions get a quick
451 instead of piling up; POP3 logins and reads keep working; service
resumes by itself when storage recovers; nothing acknowledged is lost.
Faults are injected through HATO_FAULTS_FILE (io/fault_fs.h)."""
import os
import poplib
import smtplib
import threading
import time
import unittest

from harness import DOMAIN, PASSWORD, Server

ALICE = f"alice@{DOMAIN}"


class SlowStorageTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",))
        self.server.set_config("store", "slow_commit_ms", 300)
        self.server.set_config("smtp", "commit_timeout_seconds", 2)
        self.faults = os.path.join(self.server.data, "faults")
        self.set_faults("")
        self.server.start(env={"HATO_FAULTS_FILE": self.faults})
        self.acked = []

    def tearDown(self):
        self.server.cleanup()

    def set_faults(self, text):
        with open(self.faults + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.faults + ".tmp", self.faults)

    def send(self, subject):
        start = time.time()
        try:
            with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
                s.sendmail("x@remote.test", [ALICE], f"Subject: {subject}\r\n\r\nx\r\n".encode())
            self.acked.append(subject)
            code = 250
        except smtplib.SMTPResponseException as e:
            code = e.smtp_code
        except smtplib.SMTPRecipientsRefused as e:
            code = list(e.recipients.values())[0][0]
        except smtplib.SMTPSenderRefused as e:
            code = e.smtp_code
        return code, time.time() - start

    def stored_subjects(self):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        p.user(ALICE)
        p.pass_(PASSWORD)
        subjects = []
        for i in range(p.stat()[0]):
            for line in p.retr(i + 1)[1]:
                if line.startswith(b"Subject: "):
                    subjects.append(line[9:].decode())
        p.quit()
        return subjects

    def test_slow_fsync_gets_quick_try_later_and_recovers(self):
        self.assertEqual(self.send("normal")[0], 250)
        self.set_faults("sync_delay_ms = 4000\n")
        time.sleep(0.2)
        stuck = threading.Thread(target=lambda: self.send("stuck"))
        stuck.start()
        time.sleep(0.8)  # the batch with "stuck" is now waiting on fsync
        code, took = self.send("refused")
        self.assertEqual(code, 451)
        self.assertLess(took, 1.0)  # a quick "try later", no pile-up
        start = time.time()
        self.assertIn("normal", self.stored_subjects())  # reads do not wait on writes
        self.assertLess(time.time() - start, 1.5)
        stuck.join(timeout=10)
        self.set_faults("")
        deadline = time.time() + 10
        while self.send("after")[0] != 250:
            self.assertLess(time.time(), deadline, "did not recover")
            time.sleep(0.3)
        stored = self.stored_subjects()
        for subject in self.acked:
            self.assertEqual(stored.count(subject), 1, subject)  # nothing acknowledged lost
        self.assertNotIn("refused", stored)

    def test_failed_fsync_gets_451_then_recovers(self):
        self.set_faults("sync_error = 1\n")
        time.sleep(0.2)
        self.assertEqual(self.send("during")[0], 451)
        self.set_faults("")
        time.sleep(0.2)
        self.assertEqual(self.send("after")[0], 250)
        self.assertEqual(self.stored_subjects(), ["after"])


if __name__ == "__main__":
    unittest.main()
