"""Backup, verify and restore (issue 6) through the real `hato` binary, with a
live `hato serve` receiving mail over SMTP and IMAP."""
import os
import re
import shutil
import smtplib
import sqlite3
import tempfile
import threading
import time
import unittest

from backup_util import ALICE, BOB, deliver, dump, fill, imap, message
from harness import HATO, Server, run_cli


def cli(*args, data=None, check=True, timeout=300):
    import subprocess
    cmd = [HATO, *args] + (["--data", data] if data else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


class Load:
    """SMTP senders running until stopped; records what was acknowledged when."""

    def __init__(self, port, start=100000):
        self.port, self.next, self.acked, self.failed = port, start, [], 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        deadline = time.time() + 120
        while not self.stop_flag.is_set() and time.time() < deadline:
            i = self.next
            self.next += 1
            try:
                deliver(self.port, message(i))
                self.acked.append((time.time(), i))
            except (smtplib.SMTPException, OSError):
                self.failed += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=60)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def subjects(port, user=ALICE):
    """Subject numbers of every live message, with repetitions."""
    out = []
    for folder, msgs in dump(port, user).items():
        for body, _, _ in msgs:
            out.append((folder, int(re.search(rb"Subject: message (\d+)", body).group(1))))
    return sorted(out)


class BackupTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice", "bob")).start()
        self.dest = tempfile.mkdtemp(prefix="hato-backup-")
        self.others = []

    def tearDown(self):
        self.server.cleanup()
        for s in self.others:
            s.cleanup()
        shutil.rmtree(self.dest, ignore_errors=True)

    def backup(self):
        r = cli("backup", "create", self.dest, "--create", data=self.server.data)
        return re.search(r"backup (\S+):", r.stdout).group(1)

    def test_round_trip_while_receiving(self):
        fill(self.server)
        deliver(self.server.smtp_port, message(50), to=BOB)
        with Load(self.server.smtp_port) as load:
            time.sleep(0.5)
            started = time.time()
            set_id = self.backup()
            time.sleep(0.3)
        self.assertGreater(len(load.acked), 0, "load did not run during the backup")
        before = {i for t, i in load.acked if t < started}
        self.assertIn(set_id, cli("backup", "list", self.dest).stdout)
        v = cli("backup", "verify", self.dest)
        self.assertIn("0 problems", v.stdout)

        # Restore into a fresh data dir (a different path), serve it, compare.
        fresh = tempfile.mkdtemp(prefix="hato-restored-")
        shutil.rmtree(fresh)
        r = cli("restore", self.dest, "--backup", set_id, data=fresh)
        self.assertIn("restored set " + set_id, r.stdout)
        restored = Server(data=fresh)
        self.others.append(restored)
        restored.start()
        orig = dump(self.server.imap_port)
        back = dump(restored.imap_port)
        self.assertEqual(set(orig), set(back))
        for folder in orig:
            if folder != "INBOX":
                self.assertEqual(orig[folder], back[folder], folder)
        # INBOX: everything up to the backup, byte for byte with flags; the
        # load's later messages are not there, nothing is there twice.
        inbox_orig = set((b, f, d) for b, f, d in orig["INBOX"])
        for item in back["INBOX"]:
            self.assertIn(item, inbox_orig)
        nums = [int(re.search(rb"Subject: message (\d+)", b).group(1)) for b, _, _ in back["INBOX"]]
        self.assertEqual(len(nums), len(set(nums)))
        for i in list(range(10)) + sorted(before):
            self.assertIn(i, nums)
        self.assertEqual(len(dump(restored.imap_port, BOB)["INBOX"]), 1)

    def scram_verifier(self, address):
        db = sqlite3.connect(os.path.join(self.server.data, "meta.db"))
        try:
            return db.execute("SELECT scram_sha256 FROM accounts WHERE address = ? AND "
                              "removed_at IS NULL", (address,)).fetchone()[0]
        finally:
            db.close()

    def test_aliases_are_backed_up_and_restored(self):
        cli("alias", "add", "sales@example.test", ALICE, data=self.server.data)
        cli("alias", "add", "help@example.test", BOB, data=self.server.data)
        set_id = self.backup()
        want = ["help@example.test\t" + BOB, "sales@example.test\t" + ALICE]
        # Into an empty data dir: all of them, or only the chosen accounts'.
        for accounts, expected in (([], want), (["--account", ALICE], want[1:])):
            fresh = tempfile.mkdtemp(prefix="hato-restored-")
            os.rmdir(fresh)
            self.addCleanup(shutil.rmtree, fresh, True)
            cli("restore", self.dest, "--backup", set_id, *accounts, data=fresh)
            self.assertEqual(cli("alias", "list", data=fresh).stdout.splitlines(), expected)
        restored = Server(data=fresh)
        self.others.append(restored)
        restored.start()
        with smtplib.SMTP("127.0.0.1", restored.smtp_port, timeout=10) as s:
            s.ehlo()
            s.mail("x@remote.test")
            self.assertEqual(s.rcpt("sales@example.test")[0], 250)
            self.assertEqual(s.rcpt("help@example.test")[0], 550)
        # --merge into the live store: a purged account comes back with its aliases
        # and its SCRAM-SHA-256 verifier (schema 9).
        verifier = self.scram_verifier(ALICE)
        self.assertTrue(verifier.startswith("SCRAM-SHA-256$4096:"), verifier)
        cli("user", "remove", ALICE, "--purge", "--yes", data=self.server.data)
        self.assertEqual(cli("alias", "list", data=self.server.data).stdout.splitlines(),
                         want[:1])
        r = cli("restore", self.dest, "--backup", set_id, "--merge", "--account", ALICE,
                data=self.server.data)
        self.assertEqual(r.stderr, "")
        self.assertEqual(cli("alias", "list", data=self.server.data).stdout.splitlines(), want)
        self.assertEqual(self.scram_verifier(ALICE), verifier)
        # Again: already there, nothing to report.
        r = cli("restore", self.dest, "--backup", set_id, "--merge", data=self.server.data)
        self.assertEqual(r.stderr, "")

    def test_sieve_scripts_restored_by_merge_and_not_given_to_others(self):
        """A purged account's Sieve scripts come back with `restore --merge`
        (the active one active again); a restore of chosen accounts leaves
        out the others' scripts (a later account reusing an id must not get
        them)."""
        script = os.path.join(self.server.data, "keep.sieve")
        with open(script, "w") as f:
            f.write("keep;\n")
        for user, name in ((ALICE, "main"), (BOB, "bobs")):
            cli("sieve", "put", user, name, script, data=self.server.data)
            cli("sieve", "activate", user, name, data=self.server.data)
        set_id = self.backup()
        fresh = tempfile.mkdtemp(prefix="hato-restored-")
        os.rmdir(fresh)
        self.addCleanup(shutil.rmtree, fresh, True)
        cli("restore", self.dest, "--backup", set_id, "--account", ALICE, data=fresh)
        db = sqlite3.connect(os.path.join(fresh, "meta.db"))
        try:
            names = [r[0] for r in db.execute("SELECT name FROM sieve_scripts")]
        finally:
            db.close()
        self.assertEqual(names, ["main"])
        cli("user", "remove", ALICE, "--purge", "--yes", data=self.server.data)
        r = cli("restore", self.dest, "--backup", set_id, "--merge", "--account", ALICE,
                data=self.server.data)
        self.assertEqual(r.stderr, "")
        listing = cli("sieve", "list", ALICE, data=self.server.data).stdout
        self.assertRegex(listing, r"main\tactive")

    def test_incremental_and_verify_reports_damage(self):
        fill(self.server, n_smtp=4, n_append=2)
        first = self.backup()
        second = self.backup()
        listing = cli("backup", "list", self.dest).stdout
        self.assertRegex(listing, re.escape(second) + r".*\t0 new")
        self.assertRegex(listing, re.escape(first) + r".*\t[1-9]\d* new")
        # Damage one body and one set's metadata: verify names them, exits 1.
        bodies = [os.path.join(d, f) for d, _, fs in os.walk(self.dest + "/bodies") for f in fs]
        victim = next(p for p in bodies if b"Subject: message 2\r" in read(p))
        data = bytearray(read(victim))
        data[100] ^= 0x01
        with open(victim, "wb") as f:
            f.write(bytes(data))
        r = cli("backup", "verify", self.dest, "--backup", first, check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("account alice@example.test folder INBOX uid 3", r.stdout)
        self.assertIn(os.path.basename(victim), r.stdout)
        os.unlink(os.path.join(self.dest, "sets", second, "meta.db"))
        r = cli("backup", "verify", self.dest, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"set {second}: ", r.stdout)
        self.assertIn("meta.db missing", r.stdout)
        # An interrupted backup (no MANIFEST) is listed as such and never restored from.
        os.unlink(os.path.join(self.dest, "sets", second, "MANIFEST"))
        self.assertIn("INCOMPLETE", cli("backup", "list", self.dest).stdout)

    def test_storage_destroyed_drill(self):
        fill(self.server, n_smtp=8, n_append=4)
        set_id = self.backup()
        deliver(self.server.smtp_port, message(200))  # after the backup, before the incident
        before_incident = subjects(self.server.imap_port)
        work_before = dump(self.server.imap_port)["Work"]
        # The incident: the message storage is deleted under the running server.
        data = self.server.data
        shutil.rmtree(os.path.join(data, "blobs"))
        for f in ("meta.db", "meta.db-wal", "meta.db-shm"):
            if os.path.exists(os.path.join(data, f)):
                os.unlink(os.path.join(data, f))
        # The server notices: nothing is acknowledged, reads fail temporarily.
        with self.assertRaises(smtplib.SMTPResponseException) as cm:
            deliver(self.server.smtp_port, message(300))
        self.assertTrue(400 <= cm.exception.smtp_code < 500, cm.exception)
        m = imap(self.server.imap_port)
        typ, _ = m.select("INBOX")
        if typ == "OK":
            typ, data_ = m.fetch("1", "(BODY.PEEK[])")
            self.assertNotEqual(typ, "OK", "served a body from destroyed storage")
        m.logout()

        # docs/operations.md, "Storage destroyed": stop, re-init from the
        # backup's accounts, resume service, merge the mail back while running.
        self.server.stop()
        cli("restore", self.dest, "--accounts-only", data=data)
        self.server.start()
        deliver(self.server.smtp_port, message(400))  # mail flows again at once
        deliver(self.server.smtp_port, message(401), to=BOB)
        m = imap(self.server.imap_port)
        m.select("INBOX")
        with Load(self.server.smtp_port, start=500000) as load:
            r = cli("restore", self.dest, "--merge", data=data)
        self.assertIn("0 failed", r.stdout)
        got = subjects(self.server.imap_port)
        expected_old = [s for s in before_incident if s[1] != 200]  # 200 came after the backup
        for s in expected_old:
            self.assertEqual(got.count(s), 1, s)
        self.assertEqual(got.count(("INBOX", 400)), 1)
        for _, i in load.acked:
            self.assertEqual(got.count(("INBOX", i)), 1, i)
        self.assertEqual(subjects(self.server.imap_port, BOB), [("INBOX", 401)])
        # The open session sees the merged mail as new arrivals.
        typ, data_ = m.noop()
        m.select("INBOX")
        typ, data_ = m.search(None, "ALL")
        self.assertGreaterEqual(len(data_[0].split()), 9)
        m.logout()
        # Idempotent: a second merge adds nothing.
        r = cli("restore", self.dest, "--merge", data=data)
        self.assertRegex(r.stdout, r": \d+ messages, 0 added")
        self.assertEqual(subjects(self.server.imap_port), got)
        # Bytes, flags (keywords too) and internal dates came back.
        self.assertEqual(dump(self.server.imap_port)["Work"], work_before)
        self.assertTrue(any("$Label1" in f for _, f, _ in work_before))

    def test_provider_wiped_everything(self):
        fill(self.server, n_smtp=5, n_append=3)
        cli("backup", "create", self.dest, "--create", data=self.server.data)
        before = dump(self.server.imap_port)
        self.server.stop()
        shutil.rmtree(self.server.data)
        # The off-host backup, copied to another path.
        elsewhere = self.dest + "-copy"
        shutil.copytree(self.dest, elsewhere)
        self.addCleanup(shutil.rmtree, elsewhere, True)
        cli("backup", "verify", elsewhere)
        fresh = tempfile.mkdtemp(prefix="hato-new-host-")
        os.rmdir(fresh)
        cli("restore", elsewhere, data=fresh)
        s = Server(data=fresh)
        self.others.append(s)
        s.start()
        self.assertEqual(dump(s.imap_port), before)
        cli("verify", data=fresh)


if __name__ == "__main__":
    unittest.main()
