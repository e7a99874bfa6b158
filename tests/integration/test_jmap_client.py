"""An independent JMAP client against a live server: the `jmap-jam` npm
package (tests/jmap/package.json and its committed package-lock.json,
installed with `npm ci`) run by node over tests/jmap/client_test.mjs. It
follows the session resource, then covers Core/echo, Mailbox/get and /query,
Email/query + Email/get with a result reference, Email/set (keywords,
mailboxIds, a draft, destroy), Email/changes, upload + Email/import +
download, Thread/get, Identity/get and the accountNotFound error."""
import os
import shutil
import smtplib
import subprocess
import unittest

from harness import DOMAIN, Server, run_cli

ALICE = f"alice@{DOMAIN}"
HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.join(HERE, "..", "jmap")


def ensure_client():
    """Installs jmap-jam from the lock file (npm ci) unless already there."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise unittest.SkipTest("node and npm are needed (scripts/install-deps.sh installs nodejs)")
    if not os.path.isdir(os.path.join(CLIENT_DIR, "node_modules", "jmap-jam")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, check=True,
                       capture_output=True, timeout=300)


class JamClientTest(unittest.TestCase):
    def setUp(self):
        ensure_client()
        self.server = Server(users=("alice",))
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def test_jmap_jam_against_hato(self):
        n = 3
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            for i in range(n):
                s.sendmail("sender@remote.test", [ALICE],
                           f"From: Sender <sender@remote.test>\r\nTo: {ALICE}\r\n"
                           f"Subject: message {i}\r\nDate: Mon, 1 Dec 2025 10:0{i}:00 +0000\r\n\r\n"
                           f"Body of message {i}\r\n")
        token = run_cli("token", "add", ALICE, "--label", "jmap-jam",
                        data=self.server.data).stdout.strip()
        env = {**os.environ,
               "JMAP_SESSION_URL": f"http://127.0.0.1:{self.server.http_port}/.well-known/jmap",
               "JMAP_TOKEN": token, "JMAP_EXPECT_INBOX": str(n), "JMAP_ADDRESS": ALICE}
        r = subprocess.run(["node", "client_test.mjs"], cwd=CLIENT_DIR, env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + "\nserver log:\n" +
                         self.server.logs()[-3000:])
        self.assertIn("OK", r.stdout)


if __name__ == "__main__":
    unittest.main()
