"""Disk full: below the free-space reserve, new mail gets 452 4.3.1 before any
false 250; reads go on; service resumes by itself when space returns.
The data dir lives on a small tmpfs mounted by the test (needs root, as CI runs)."""
import os
import poplib
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli

ALICE = f"alice@{DOMAIN}"
MiB = 1 << 20


@unittest.skipUnless(os.geteuid() == 0, "mounting a tmpfs needs root")
class DiskFullTest(unittest.TestCase):
    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="hato-tmpfs-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", self.mnt], check=True)
        self.data = os.path.join(self.mnt, "var")
        run_cli("init", "--domain", DOMAIN, data=self.data)
        run_cli("user", "add", ALICE, "--password-stdin", data=self.data, input=PASSWORD + "\n")
        self.server = Server(data=self.data)
        self.server.set_config("smtp", "max_message_size", 4 * MiB)  # reserve: 8 MiB
        self.server.start()

    def tearDown(self):
        self.server.cleanup()
        subprocess.run(["umount", self.mnt], check=False)
        os.rmdir(self.mnt)

    def send(self, subject):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo()
            code, text = s.mail("x@remote.test")
            if code != 250:
                return code, text
            s.rcpt(ALICE)
            return s.data(f"Subject: {subject}\r\n\r\nbody\r\n".encode())

    def count(self):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        p.user(ALICE)
        p.pass_(PASSWORD)
        n = p.stat()[0]
        if n:
            p.retr(1)  # reads keep working
        p.quit()
        return n

    def wait_for(self, subject, code, seconds=5):
        """Sends until the reply is `code`; counts the messages accepted meanwhile."""
        deadline = time.time() + seconds
        while True:
            got = self.send(subject)
            if got[0] == 250:
                self.accepted += 1
            if got[0] == code or time.time() > deadline:
                return got
            time.sleep(0.2)

    def test_refuses_below_reserve_and_recovers(self):
        self.accepted = 0
        self.assertEqual(self.send("before")[0], 250)
        self.accepted += 1
        free = os.statvfs(self.mnt).f_bavail * os.statvfs(self.mnt).f_frsize
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (free - 4 * MiB))  # leave 4 MiB: below the 8 MiB reserve
        code, text = self.wait_for("during", 452)
        self.assertEqual(code, 452)
        self.assertIn(b"4.3.1", text)
        # Every 250 was stored (the monitor looks once a second, so a few may
        # have been accepted, with space still there); POP3 reads work.
        self.assertEqual(self.count(), self.accepted)
        self.assertIn("below the reserve", self.server.logs())
        os.remove(filler)
        start = time.time()
        self.assertEqual(self.wait_for("after", 250)[0], 250)
        recovery = time.time() - start
        self.assertEqual(self.count(), self.accepted)
        print(f"\nDRILL disk-full: acked={self.accepted} lost=0 first_refusal={code} "
              f"recovery_s={recovery:.2f}", flush=True)


if __name__ == "__main__":
    unittest.main()
