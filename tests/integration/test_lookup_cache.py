"""The delivery look-ups' cache (issue 15, store/directory_cache.h): each
node keeps the domains, recipients (with their quota limit) and Sieve scripts
that SMTP RCPT and delivery read. A change made by another process (the
CLI on the same data dir or database) must be seen by the running server at
once: quota, Sieve activation, aliases, accounts and domains, each checked
right after a look-up that warmed the cache. Runs on the embedded store and
(HATO_STORE=postgres) on PostgreSQL; test_postgres.py checks two nodes."""
import os
import smtplib
import tempfile
import time
import unittest

from harness import DOMAIN, Server, run_cli

ALICE = f"alice@{DOMAIN}"
# How long the server may take to see another process's change. The embedded
# store sees it at the next look-up (the data dir's stamp); PostgreSQL when
# its LISTEN connection hears the commit's notification.
SEEN_WITHIN = 1.0


def rcpt_code(port, rcpt, size=100):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo()
        s.mail("s@remote.test", options=[f"SIZE={size}"])
        code, _ = s.rcpt(rcpt)
        return code


def data_code(port, rcpt, subject):
    msg = f"From: s@remote.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nbody\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo()
        s.mail("s@remote.test")
        code, _ = s.rcpt(rcpt)
        if code != 250:
            return code
        code, _ = s.data(msg.encode())
        return code


def seen(check, expected):
    """The value `check()` settles on within SEEN_WITHIN (its first try counts)."""
    deadline = time.monotonic() + SEEN_WITHIN
    got = check()
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.02)
        got = check()
    return got


class LookupCacheTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=("alice",))
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def cli(self, *args):
        return run_cli(*args, data=self.server.data)

    def test_quota_set_elsewhere_refuses_at_rcpt_and_lifts(self):
        port = self.server.smtp_port
        self.assertEqual(data_code(port, ALICE, "fills"), 250)
        self.assertEqual(rcpt_code(port, ALICE), 250)  # warm
        self.cli("user", "quota", ALICE, "1")
        # RFC 9208 5.1 / RFC 3463 4.2.2: a full mailbox is temporary.
        self.assertEqual(seen(lambda: rcpt_code(port, ALICE), 452), 452)
        self.cli("user", "quota", ALICE, "none")
        self.assertEqual(seen(lambda: rcpt_code(port, ALICE), 250), 250)
        # A limit with room: accepted; the declared size past it: 452.
        self.cli("user", "quota", ALICE, "10M")
        self.assertEqual(seen(lambda: rcpt_code(port, ALICE, size=20 << 20), 452), 452)
        self.assertEqual(rcpt_code(port, ALICE), 250)
        self.cli("user", "quota", ALICE, "none")

    def test_sieve_script_activated_elsewhere_runs_at_the_next_delivery(self):
        port = self.server.smtp_port
        self.assertEqual(data_code(port, ALICE, "before"), 250)  # warm: no script
        with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
            f.write('require "reject";\nreject "closed for the test";\n')
        try:
            self.cli("sieve", "put", ALICE, "closed", f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(data_code(port, ALICE, "stored, not active"), 250)
        self.cli("sieve", "activate", ALICE, "closed")
        # RFC 5429 2.1: every recipient rejects: refused at SMTP time.
        self.assertEqual(seen(lambda: data_code(port, ALICE, "during"), 550), 550)
        self.cli("sieve", "deactivate", ALICE)
        self.assertEqual(seen(lambda: data_code(port, ALICE, "after"), 250), 250)

    def test_alias_account_and_domain_changes_elsewhere(self):
        port = self.server.smtp_port
        alias = f"al@{DOMAIN}"
        self.cli("alias", "add", alias, ALICE)
        self.assertEqual(seen(lambda: rcpt_code(port, alias), 250), 250)
        self.assertEqual(rcpt_code(port, alias), 250)  # warm
        self.cli("alias", "remove", alias)
        self.assertEqual(seen(lambda: rcpt_code(port, alias), 550), 550)
        carol = f"carol@{DOMAIN}"
        self.assertEqual(rcpt_code(port, carol), 550)
        self.cli("user", "add", carol, "--password", "pw-carol-123")
        self.assertEqual(seen(lambda: rcpt_code(port, carol), 250), 250)
        self.assertEqual(rcpt_code(port, carol), 250)  # warm
        self.cli("user", "remove", carol)
        self.assertEqual(seen(lambda: rcpt_code(port, carol), 550), 550)
        # A domain that was not local (cached as such) becomes local.
        other = "other-lookups.test"
        self.assertEqual(rcpt_code(port, f"alice@{other}"), 554)  # relay denied
        self.cli("domain", "add", other)
        self.cli("alias", "add", f"alice@{other}", ALICE)
        self.assertEqual(seen(lambda: rcpt_code(port, f"alice@{other}"), 250), 250)
        self.cli("alias", "remove", f"alice@{other}")
        self.cli("domain", "remove", other)
        self.assertEqual(seen(lambda: rcpt_code(port, f"alice@{other}"), 554), 554)


if __name__ == "__main__":
    unittest.main()
