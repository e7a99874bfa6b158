"""The PostgreSQL store (issue 15) end to end: `hato init --postgres` (the
contract), two nodes on one database, and failover to a synchronous standby
with nothing acknowledged lost. Each test starts its own throw-away
PostgreSQL 15 cluster(s) on loopback (pg_cluster.py)."""
import imaplib
import os
import shutil
import smtplib
import socket
import tempfile
import threading
import time
import unittest

import pg_cluster
from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for


def send(port, rcpt, subject, timeout=10):
    msg = f"From: s@remote.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as s:
        s.sendmail("s@remote.test", [rcpt], msg)


def imap_subjects(port, user="alice"):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(f"{user}@{DOMAIN}", PASSWORD)
    m.select("INBOX")
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    m.logout()
    out = set()
    for part in data:
        if isinstance(part, tuple):
            line = part[1].decode().strip()
            if line.lower().startswith("subject:"):
                out.add(line.split(":", 1)[1].strip())
    return out


def _parallel_subjects(port, n):
    """imap_subjects from n clients at once (errors are returned, not raised)."""
    out = [None] * n

    def run(i):
        try:
            out[i] = imap_subjects(port)
        except Exception as e:  # noqa: BLE001 - reported by the assertion
            out[i] = repr(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


@unittest.skipUnless(pg_cluster.installed(), pg_cluster.NOT_INSTALLED)
class PostgresContract(unittest.TestCase):
    def setUp(self):
        self.cluster = pg_cluster.Cluster().init().start()
        self.addCleanup(self.cluster.cleanup)
        self.url = self.cluster.create_database("hato")

    def test_init_twice_attaches_and_both_nodes_serve(self):
        one = Server(postgres=self.url)
        self.addCleanup(one.cleanup)
        # The data dir keeps only the config and keys: the mail is in PostgreSQL.
        self.assertFalse(os.path.exists(os.path.join(one.data, "meta.db")))
        self.assertFalse(os.path.exists(os.path.join(one.data, "blobs")))
        with open(os.path.join(one.data, "hato.toml")) as f:
            self.assertIn('backend = "postgres"', f.read())
        one.start()
        send(one.smtp_port, f"alice@{DOMAIN}", "first")
        # A second data dir with the same URL attaches; it never wipes the data.
        two = Server(users=(), postgres=self.url)
        self.addCleanup(two.cleanup)
        self.assertEqual(int(self.cluster.psql("SELECT count(*) FROM messages", "hato")), 1)
        r = run_cli("user", "list", data=two.data)
        self.assertIn(f"alice@{DOMAIN}", r.stdout)
        two.start()
        self.assertEqual(imap_subjects(two.imap_port), {"first"})
        # IMAP IDLE on node two hears a delivery made through node one within 1 s.
        m = imaplib.IMAP4("127.0.0.1", two.imap_port)
        m.login(f"alice@{DOMAIN}", PASSWORD)
        m.select("INBOX")
        tag = m._new_tag().decode()
        m.send(f"{tag} IDLE\r\n".encode())
        self.assertTrue(m.readline().startswith(b"+"))
        sock = m.socket()
        sock.settimeout(5)
        t0 = time.monotonic()
        send(one.smtp_port, f"alice@{DOMAIN}", "second")
        acked = time.monotonic()
        line = m.readline()
        heard = time.monotonic()
        self.assertIn(b"EXISTS", line)
        print(f"IDLE on node two heard node one's delivery {1000 * (heard - acked):.0f} ms "
              f"after its 250 ({1000 * (heard - t0):.0f} ms after the SMTP session began)")
        self.assertLess(heard - acked, 1.0)
        m.send(b"DONE\r\n")
        m.readline()
        m.logout()
        self.assertEqual(imap_subjects(one.imap_port), {"first", "second"})

    def test_second_node_sees_lookup_changes_at_once(self):
        """Each node caches the delivery look-ups (store/directory_cache.h); a
        quota, a Sieve activation, an alias or an account changed through
        node one's data dir reaches node two's SMTP replies within 1 s."""
        from test_lookup_cache import data_code, rcpt_code, seen
        one = Server(users=("alice",), postgres=self.url)
        self.addCleanup(one.cleanup)
        one.start()
        two = Server(users=(), postgres=self.url)
        self.addCleanup(two.cleanup)
        two.start()
        alice = f"alice@{DOMAIN}"
        port = two.smtp_port
        self.assertEqual(data_code(port, alice, "warm"), 250)
        self.assertEqual(rcpt_code(port, alice), 250)
        run_cli("user", "quota", alice, "1", data=one.data)
        self.assertEqual(seen(lambda: rcpt_code(port, alice), 452), 452)
        run_cli("user", "quota", alice, "none", data=one.data)
        self.assertEqual(seen(lambda: rcpt_code(port, alice), 250), 250)
        script = os.path.join(one.data, "closed.sieve")
        with open(script, "w") as f:
            f.write('require "reject";\nreject "closed";\n')
        run_cli("sieve", "put", alice, "closed", script, data=one.data)
        run_cli("sieve", "activate", alice, "closed", data=one.data)
        self.assertEqual(seen(lambda: data_code(port, alice, "during"), 550), 550)
        run_cli("sieve", "deactivate", alice, data=one.data)
        self.assertEqual(seen(lambda: data_code(port, alice, "after"), 250), 250)
        run_cli("alias", "add", f"al@{DOMAIN}", alice, data=one.data)
        self.assertEqual(seen(lambda: rcpt_code(port, f"al@{DOMAIN}"), 250), 250)
        run_cli("alias", "remove", f"al@{DOMAIN}", data=one.data)
        self.assertEqual(seen(lambda: rcpt_code(port, f"al@{DOMAIN}"), 550), 550)
        run_cli("user", "remove", alice, data=one.data)
        self.assertEqual(seen(lambda: rcpt_code(port, alice), 550), 550)

    def test_database_down_gives_temporary_errors_then_recovers(self):
        srv = Server(postgres=self.url)
        self.addCleanup(srv.cleanup)
        srv.start()
        send(srv.smtp_port, f"alice@{DOMAIN}", "before")
        # Several logins at once leave several pooled reader connections,
        # all of which die with the server below.
        self.assertEqual(_parallel_subjects(srv.imap_port, 4), [{"before"}] * 4)
        self.cluster.stop("immediate")
        with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as s:
            t0 = time.monotonic()
            s.ehlo()
            code, _ = s.mail("s@remote.test")
            if code == 250:
                code, _ = s.rcpt(f"alice@{DOMAIN}")
            if code == 250:
                code, _ = s.data(b"Subject: during\r\n\r\nx\r\n")
            took = time.monotonic() - t0
        self.assertTrue(400 <= code < 500, code)
        self.assertLess(took, 15)
        self.cluster.start()
        wait_for(lambda: _try_send(srv.smtp_port, "after"), timeout=30, what="recovery")
        # Once mail flows again, no login meets a dead pooled connection.
        self.assertEqual(_parallel_subjects(srv.imap_port, 4), [{"before", "after"}] * 4)

    def test_backup_set_verifies(self):
        """A backup of a PostgreSQL store passes `backup verify`: its meta.db is
        a rollback-journal file (a WAL-mode one grew -wal/-shm files the
        MANIFEST does not list) and its body reference counts are its own."""
        srv = Server(postgres=self.url)
        self.addCleanup(srv.cleanup)
        srv.start()
        send(srv.smtp_port, f"alice@{DOMAIN}", "kept")
        dest = os.path.join(srv.data, "backups")
        r = run_cli("backup", "create", dest, "--create", data=srv.data)
        self.assertIn("1 messages", r.stdout)
        r = run_cli("backup", "verify", dest, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(" 0 problems", r.stdout)

    def test_backup_under_concurrent_delivery_verifies(self):
        """Backups taken while two SMTP clients deliver (bounded: 40 messages
        each) are consistent: every body the metadata names is in the set
        (read in the snapshot's transaction) and `backup verify` finds no
        problem; the last backup, taken after the load, has every message."""
        srv = Server(postgres=self.url)
        self.addCleanup(srv.cleanup)
        srv.start()
        send(srv.smtp_port, f"alice@{DOMAIN}", "first")
        dest = os.path.join(srv.data, "backups")
        run_cli("backup", "create", dest, "--create", data=srv.data)
        sent, errors = [], []

        def load(user):
            for i in range(40):
                try:
                    send(srv.smtp_port, f"{user}@{DOMAIN}", f"{user}-{i}")
                    sent.append(i)
                except (smtplib.SMTPException, OSError) as e:
                    errors.append(repr(e))

        threads = [threading.Thread(target=load, args=(u,)) for u in ("alice", "bob")]
        for t in threads:
            t.start()
        backups = 0
        deadline = time.monotonic() + 60
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            run_cli("backup", "create", dest, data=srv.data)
            backups += 1
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        r = run_cli("backup", "create", dest, data=srv.data)
        self.assertIn(f"{1 + len(sent)} messages", r.stdout)
        r = run_cli("backup", "verify", dest, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"{backups + 2} sets", r.stdout)
        self.assertIn(" 0 problems", r.stdout)


@unittest.skipUnless(pg_cluster.installed(), pg_cluster.NOT_INSTALLED)
class QueueLeaseAfterCrash(unittest.TestCase):
    """A node killed while delivering is the same node when it comes back
    (DATA/node.id names its queue leases): it resumes its own deliveries at
    once instead of waiting out the 15-minute lease (kOutboundLeaseSeconds)."""

    def setUp(self):
        self.cluster = pg_cluster.Cluster().init().start()
        self.addCleanup(self.cluster.cleanup)
        self.url = self.cluster.create_database("hato")

    def test_kill9_mid_delivery_then_restart_sends_at_once(self):
        # A "remote MX" that accepts the connection and never greets: the
        # delivery stays in flight, its recipient leased by this node.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        self.addCleanup(silent.close)
        dns = FakeDNS({"remote.example": [("MX", "10 mx.remote.example.")],
                       "mx.remote.example": [("A", "127.0.0.1")]})
        self.addCleanup(dns.stop)
        mx = FakeMX()
        self.addCleanup(mx.stop)
        srv = Server(postgres=self.url)
        self.addCleanup(srv.cleanup)
        srv.set_config("outbound", "resolver", f'"{dns.address}"')
        srv.set_config("outbound", "smtp_port", str(silent.getsockname()[1]))
        srv.start()
        node_id = os.path.join(srv.data, "node.id")
        self.assertTrue(os.path.exists(node_id))
        self.assertEqual(os.stat(node_id).st_mode & 0o777, 0o600)
        with open(node_id) as f:
            first_id = f.read()
        with smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=10) as s:
            s.login(f"alice@{DOMAIN}", PASSWORD)
            s.sendmail(f"alice@{DOMAIN}", ["carol@remote.example"],
                       f"From: alice@{DOMAIN}\r\nTo: carol@remote.example\r\n"
                       "Subject: leased\r\n\r\nhello\r\n")
        leased = "SELECT count(*) FROM outbound_recipients WHERE state = 0 AND leased_until > " \
                 "extract(epoch FROM now())::bigint + 60"
        wait_for(lambda: self.cluster.psql(leased, "hato") == "1", timeout=30,
                 what="the recipient leased by the node")
        srv.kill()
        # The restarted node sends through a working MX.
        srv.set_config("outbound", "smtp_port", str(mx.port))
        t0 = time.monotonic()
        srv.start()
        with open(node_id) as f:
            self.assertEqual(f.read(), first_id)
        wait_for(lambda: mx.received_for("carol@remote.example"), timeout=60,
                 what="the leased delivery resumed (not after the 15-minute lease)")
        took = time.monotonic() - t0
        print(f"restarted node delivered its own leased message {took:.1f} s after start")
        time.sleep(1)
        self.assertEqual(len(mx.received_for("carol@remote.example")), 1)


@unittest.skipUnless(pg_cluster.installed(), pg_cluster.NOT_INSTALLED)
class StoreCopy(unittest.TestCase):
    """hato store copy: embedded -> PostgreSQL -> a new embedded data dir, each
    step verified by checksums; IMAP clients see the same UIDVALIDITY, UIDs and flags."""

    def test_copy_to_postgres_and_back(self):
        cluster = pg_cluster.Cluster().init().start()
        self.addCleanup(cluster.cleanup)
        url = cluster.create_database("copy")
        src = Server()
        self.addCleanup(src.cleanup)
        src.start()
        for i in range(3):
            send(src.smtp_port, f"alice@{DOMAIN}", f"m{i}")
        m = imaplib.IMAP4("127.0.0.1", src.imap_port)
        m.login(f"alice@{DOMAIN}", PASSWORD)
        m.select("INBOX")
        m.uid("STORE", "2", "+FLAGS", "(\\Flagged $Work)")
        before = _flags(m)
        validity = m.status("INBOX", "(UIDVALIDITY)")[1]
        m.logout()
        src.stop()
        r = run_cli("store", "copy", "--to", url, data=src.data)
        self.assertIn("verified: the copy matches the source", r.stdout)
        self.assertIn("copied 3 messages", r.stdout)
        # A node on the copy sees the same mailboxes.
        node = Server(users=(), postgres=url)
        self.addCleanup(node.cleanup)
        node.start()
        m = imaplib.IMAP4("127.0.0.1", node.imap_port)
        m.login(f"alice@{DOMAIN}", PASSWORD)
        m.select("INBOX")
        self.assertEqual(_flags(m), before)
        self.assertEqual(m.status("INBOX", "(UIDVALIDITY)")[1], validity)
        m.logout()
        send(node.smtp_port, f"alice@{DOMAIN}", "m3")  # ids continue after the copied ones
        node.stop()
        # A second copy into the same database is refused, nothing changed.
        r = run_cli("store", "copy", "--to", url, data=src.data, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already holds accounts", r.stderr)
        # And back to a new embedded data dir.
        back = os.path.join(src.data + "-back")
        self.addCleanup(lambda: __import__("shutil").rmtree(back, ignore_errors=True))
        r = run_cli("store", "copy", "--to", back, data=node.data)
        self.assertIn("verified: the copy matches the source", r.stdout)
        self.assertIn("copied 4 messages", r.stdout)
        self.assertTrue(os.path.exists(os.path.join(back, "meta.db")))
        emb = Server(data=back)
        self.addCleanup(emb.cleanup)
        emb.start()
        self.assertEqual(imap_subjects(emb.imap_port), {"m0", "m1", "m2", "m3"})


REPORT_SCRIPT = 'require ["fileinto", "mailbox"];\nif header :contains "subject" "report" {\n' \
    '  fileinto :create "Reports";\n}\n'
TEAM = f"team@{DOMAIN}"


def _folder_subjects(port, folder):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(f"alice@{DOMAIN}", PASSWORD)
    typ, _ = m.select(folder)
    out = set()
    if typ == "OK":
        for part in m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1]:
            if isinstance(part, tuple):
                out.add(part[1].decode().split(":", 1)[1].strip())
    m.logout()
    return out


@unittest.skipUnless(pg_cluster.installed(), pg_cluster.NOT_INSTALLED)
class BackupKeepsEverything(unittest.TestCase):
    """A backup of a PostgreSQL node carries what the embedded store's backup
    carries (VACUUM INTO: every table): each user's Sieve scripts and which is
    active, lists and their members, access tokens, the admin role. Restored
    into an embedded data dir, then copied from there into a new PostgreSQL
    database (hato store copy), the filters still file the mail."""

    def test_restore_to_embedded_and_to_postgres_keeps_filters_lists_tokens(self):
        cluster = pg_cluster.Cluster().init().start()
        self.addCleanup(cluster.cleanup)
        src = Server(users=("alice",), postgres=cluster.create_database("hato"))
        self.addCleanup(src.cleanup)
        src.start()
        alice = f"alice@{DOMAIN}"
        script = os.path.join(src.data, "report.sieve")
        with open(script, "w") as f:
            f.write(REPORT_SCRIPT)
        run_cli("sieve", "put", alice, "main", script, data=src.data)
        run_cli("sieve", "activate", alice, "main", data=src.data)
        run_cli("list", "create", TEAM, "--mode", "discussion", data=src.data)
        run_cli("list", "members", "add", TEAM, "carol@remote.example", alice, data=src.data)
        run_cli("token", "add", alice, "--label", "phone", data=src.data)
        run_cli("admin", "grant", alice, data=src.data)
        send(src.smtp_port, alice, "report one")
        self.assertEqual(_folder_subjects(src.imap_port, "Reports"), {"report one"})
        dest = os.path.join(src.data, "backups")
        run_cli("backup", "create", dest, "--create", data=src.data)
        r = run_cli("backup", "verify", dest, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        src.stop()

        # Into an embedded data dir (the set's hato.toml names PostgreSQL).
        emb_dir = tempfile.mkdtemp(prefix="hato-it-restored-")
        self.addCleanup(shutil.rmtree, emb_dir, True)
        run_cli("restore", dest, data=emb_dir)
        emb = Server(data=emb_dir)
        self.addCleanup(emb.cleanup)
        emb.set_config("store", "backend", '"embedded"')
        emb.start()
        self.check_restored(emb, "report two", {"report one", "report two"})
        emb.stop()

        # From there into a new PostgreSQL database.
        r = run_cli("store", "copy", "--to", cluster.create_database("restored"), data=emb_dir)
        self.assertIn("verified: the copy matches the source", r.stdout)
        node = Server(users=(), postgres=cluster.conninfo("restored"))
        self.addCleanup(node.cleanup)
        node.start()
        self.check_restored(node, "report three", {"report one", "report two", "report three"})

    def check_restored(self, srv, subject, reports):
        alice = f"alice@{DOMAIN}"
        listing = run_cli("sieve", "list", alice, data=srv.data).stdout
        self.assertRegex(listing, r"main\tactive")
        got = run_cli("sieve", "get", alice, "main", data=srv.data).stdout
        self.assertEqual(got.replace("\r\n", "\n"), REPORT_SCRIPT)
        members = run_cli("list", "members", "list", TEAM, data=srv.data).stdout.split()
        self.assertEqual(sorted(members), sorted(["carol@remote.example", alice]))
        self.assertIn("phone", run_cli("token", "list", alice, data=srv.data).stdout)
        self.assertIn(alice, run_cli("admin", "list", data=srv.data).stdout)
        send(srv.smtp_port, alice, subject)  # the active script still files it
        self.assertEqual(_folder_subjects(srv.imap_port, "Reports"), reports)


def _flags(m):
    """UID FETCH FLAGS without \\Recent (a property of the session, not the message)."""
    return [line.replace(b"\\Recent", b"").replace(b"  ", b" ").replace(b"( ", b"(")
            .replace(b" )", b")") for line in m.uid("FETCH", "1:*", "(FLAGS)")[1]]


def _try_send(port, subject):
    try:
        send(port, f"alice@{DOMAIN}", subject)
        return True
    except (smtplib.SMTPException, OSError):
        return False


@unittest.skipUnless(pg_cluster.installed(), pg_cluster.NOT_INSTALLED)
class PostgresFailover(unittest.TestCase):
    """A primary and a synchronous streaming standby, two Hato nodes with a
    multi-host connection string, continuous SMTP load on both; the primary is
    killed with SIGKILL and the standby promoted: every acknowledged message is
    present afterwards, and both nodes reconnect by themselves."""

    LOAD_SECONDS = float(os.environ.get("HATO_FAILOVER_SECONDS", "4"))

    def test_kill_primary_promote_standby_nothing_acknowledged_lost(self):
        primary = pg_cluster.Cluster(settings={
            "synchronous_standby_names": "standby1", "synchronous_commit": "on"}).init().start()
        self.addCleanup(primary.cleanup)
        standby = pg_cluster.Cluster(settings={"cluster_name": "standby1"})
        standby.init_standby_of(primary).start()
        self.addCleanup(standby.cleanup)
        wait_for(lambda: primary.psql(
            "SELECT sync_state FROM pg_stat_replication") == "sync", what="sync standby")
        primary.create_database("hato")
        url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/hato"
               "?target_session_attrs=read-write&connect_timeout=2")
        one = Server(postgres=url)
        self.addCleanup(one.cleanup)
        two = Server(users=(), postgres=url)
        self.addCleanup(two.cleanup)
        one.start()
        two.start()

        acked, refused = [], []
        lock = threading.Lock()
        stop = threading.Event()

        def load(node, name):
            i = 0
            while not stop.is_set():
                subject = f"{name}-{i}"
                i += 1
                try:
                    send(node.smtp_port, f"alice@{DOMAIN}", subject, timeout=30)
                    with lock:
                        acked.append((time.monotonic(), subject))
                except (smtplib.SMTPException, OSError):
                    with lock:
                        refused.append(time.monotonic())
                    time.sleep(0.05)

        threads = [threading.Thread(target=load, args=(n, name))
                   for n, name in ((one, "one"), (two, "two"))]
        for t in threads:
            t.start()
        time.sleep(self.LOAD_SECONDS)
        # The whole primary dies at once (as with its machine): postmaster and backends.
        children = _children(primary)
        killed = time.monotonic()
        primary.kill9()
        for pid in children:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        standby.promote()
        promoted = time.monotonic()
        # Service is back when both nodes acknowledge again.
        def both_back():
            with lock:
                late = [s for t, s in acked if t > promoted]
            return any(s.startswith("one") for s in late) and any(
                s.startswith("two") for s in late)
        wait_for(both_back, timeout=60, what="both nodes accepting mail after the failover")
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        with lock:
            first_back = min(t for t, s in acked if t > killed)
        print(f"failover: {len(acked)} messages acknowledged, {len(refused)} refused "
              f"temporarily; service refused for {first_back - killed:.2f} s "
              f"(promotion took {promoted - killed:.2f} s)")
        want = {s for _, s in acked}
        got = imap_subjects(two.imap_port)
        self.assertFalse(want - got, f"acknowledged but lost: {sorted(want - got)[:10]}")
        self.assertEqual(imap_subjects(one.imap_port), got)


def _children(cluster):
    """Leftover processes of a killed cluster (their parent was the postmaster)."""
    out = []
    try:
        pid = cluster.postmaster_pid()
    except (OSError, ValueError):
        return out
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(name))
    return out


if __name__ == "__main__":
    unittest.main()
