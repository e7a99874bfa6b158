"""Accounts spread over two PostgreSQL clusters (issue 15, store/postgres/sharded.h):
placement and routing of every protocol to the account's shard, aliases across
shards, and `hato account move` online under SMTP and IMAP load with nothing
lost and nothing duplicated. Each test starts two throw-away PostgreSQL 15
clusters on loopback (pg_cluster.py)."""
import imaplib
import os
import re
import signal
import smtplib
import threading
import time
import unittest

import pg_cluster
from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for

USERS = ("alice", "bob", "carol", "dave")


def send(port, rcpts, subject, timeout=30):
    """Sends one message; True when it was acknowledged (250), False on a 4xx
    (a real client would retry later)."""
    rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
    msg = (f"From: s@remote.test\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n\r\n"
           f"body {subject}\r\n")
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as s:
            refused = s.sendmail("s@remote.test", rcpts, msg)
            return not refused
    except smtplib.SMTPResponseException as e:
        if 400 <= e.smtp_code < 500:
            return False
        raise
    except smtplib.SMTPRecipientsRefused as e:
        if all(400 <= code < 500 for code, _ in e.recipients.values()):
            return False
        raise


def login(port, user):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=60)
    m.login(f"{user}@{DOMAIN}", PASSWORD)
    return m


def subjects(m, mailbox="INBOX"):
    """Every subject in the mailbox, as a list (duplicates kept)."""
    m.select(mailbox)
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = []
    for part in data:
        if isinstance(part, tuple):
            line = part[1].decode().strip()
            if line.lower().startswith("subject:"):
                out.append(line.split(":", 1)[1].strip())
    return out


def flagged_uids(m):
    typ, data = m.uid("SEARCH", "FLAGGED")
    return set(int(x) for x in data[0].split())


@unittest.skipUnless(pg_cluster.installed(), pg_cluster.NOT_INSTALLED)
class TwoShards(unittest.TestCase):
    def setUp(self):
        self.one = pg_cluster.Cluster().init().start()
        self.addCleanup(self.one.cleanup)
        self.two = pg_cluster.Cluster().init().start()
        self.addCleanup(self.two.cleanup)
        main_url = self.one.create_database("hato")
        b_url = self.two.create_database("hatob")
        self.srv = Server(users=(), postgres=main_url)
        self.addCleanup(self.srv.cleanup)
        self.srv.set_config("store", "placement", '"least-accounts"')
        self.srv.set_config("store", "move_retention_hours", "0")
        self.srv.append_config(f'[store.shards]\nb = "{b_url}"')
        for u in USERS:
            run_cli("user", "add", f"{u}@{DOMAIN}", "--password-stdin", data=self.srv.data,
                    input=PASSWORD + "\n")

    def where(self, user):
        return run_cli("account", "where", f"{user}@{DOMAIN}", data=self.srv.data).stdout.split()[0]

    def messages_on(self, cluster, db, user):
        """Message rows (live and expunged) of the user's mailboxes in one database."""
        return int(cluster.psql(
            "SELECT count(*) FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id JOIN "
            f"accounts a ON a.id = x.account_id WHERE a.address = '{user}@{DOMAIN}'", db))

    def test_placement_routing_and_aliases(self):
        # least-accounts alternates: main, b, main, b.
        homes = {u: self.where(u) for u in USERS}
        self.assertEqual(homes, {"alice": "main", "bob": "b", "carol": "main", "dave": "b"})
        out = run_cli("account", "shards", data=self.srv.data).stdout
        self.assertIn("main\t2 accounts", out)
        self.assertIn("b\t2 accounts", out)
        # An alias (in the directory) of an account on the other cluster.
        run_cli("alias", "add", f"robert@{DOMAIN}", f"bob@{DOMAIN}", data=self.srv.data)
        self.srv.start()
        # One message to accounts on both clusters: one transaction per cluster.
        self.assertTrue(send(self.srv.smtp_port,
                             [f"alice@{DOMAIN}", f"robert@{DOMAIN}", f"dave@{DOMAIN}"], "both"))
        self.assertTrue(send(self.srv.smtp_port, f"carol@{DOMAIN}", "c-only"))
        for u, want in (("alice", ["both"]), ("bob", ["both"]), ("dave", ["both"]),
                        ("carol", ["c-only"])):
            m = login(self.srv.imap_port, u)
            self.assertEqual(subjects(m), want, u)
            m.logout()
        # The mail is where the directory says.
        self.assertEqual(self.messages_on(self.two, "hatob", "bob"), 1)
        self.assertEqual(self.messages_on(self.two, "hatob", "dave"), 1)
        self.assertEqual(self.messages_on(self.one, "hato", "bob"), 0)
        self.assertEqual(self.messages_on(self.one, "hato", "alice"), 1)
        # IMAP writes on the second cluster: flags, a new mailbox, a copy into it.
        m = login(self.srv.imap_port, "bob")
        m.select("INBOX")
        self.assertEqual(m.uid("STORE", "1", "+FLAGS", "(\\Flagged)")[0], "OK")
        self.assertEqual(m.create("Projects")[0], "OK")
        self.assertEqual(m.uid("COPY", "1", "Projects")[0], "OK")
        self.assertEqual(flagged_uids(m), {1})
        self.assertEqual(subjects(m, "Projects"), ["both"])
        m.logout()
        self.assertEqual(self.messages_on(self.two, "hatob", "bob"), 2)
        # Mailbox ids are unique across the clusters (each shard its own range).
        ids_one = set(self.one.psql("SELECT id FROM mailboxes", "hato").split())
        ids_two = set(self.two.psql("SELECT id FROM mailboxes", "hatob").split())
        self.assertFalse(ids_one & ids_two)
        # user list shows every account with its own shard's counts.
        out = run_cli("user", "list", data=self.srv.data).stdout
        self.assertRegex(out, rf"bob@{re.escape(DOMAIN)}\s+2\b")

    def test_move_under_load_loses_nothing(self):
        self.srv.start()
        port = self.srv.smtp_port
        for i in range(20):
            self.assertTrue(send(port, f"alice@{DOMAIN}", f"pre{i}"))
        # A session opened before the move stays usable after it (same ids).
        watcher = login(self.srv.imap_port, "alice")
        watcher.select("INBOX")
        validity = watcher.status("INBOX", "(UIDVALIDITY)")[1]

        stop = threading.Event()
        acked, refused, errors = [], [], []
        flagged = set()

        def mail_load(k):
            n = 0
            while not stop.is_set():
                subject = f"load{k}-{n}"
                n += 1
                try:
                    (acked if send(port, f"alice@{DOMAIN}", subject) else refused).append(subject)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))

        def flag_load():
            try:
                m = login(self.srv.imap_port, "alice")
                m.select("INBOX")
                for uid in range(1, 21):
                    if stop.is_set():
                        break
                    typ, _ = m.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
                    if typ == "OK":
                        flagged.add(uid)
                    time.sleep(0.05)
                m.logout()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("imap: " + repr(e))

        threads = [threading.Thread(target=mail_load, args=(k,)) for k in range(3)]
        threads.append(threading.Thread(target=flag_load))
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 10, timeout=60, what="load before the move")
        r = run_cli("account", "move", f"alice@{DOMAIN}", "--to", "b", data=self.srv.data)
        print(r.stdout.strip())
        self.assertIn("verified: both copies match", r.stdout)
        moved_at = len(acked)
        wait_for(lambda: len(acked) >= moved_at + 10, timeout=60, what="load after the move")
        stop.set()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(self.where("alice"), "b")
        # Every acknowledged message is there exactly once; refused ones at most once.
        m = login(self.srv.imap_port, "alice")
        got = subjects(m)
        for s in [f"pre{i}" for i in range(20)] + acked:
            self.assertEqual(got.count(s), 1, s)
        for s in refused:
            self.assertLessEqual(got.count(s), 1, s)
        self.assertTrue(flagged <= flagged_uids(m), (flagged, flagged_uids(m)))
        self.assertEqual(m.status("INBOX", "(UIDVALIDITY)")[1], validity)
        m.logout()
        print(f"move under load: {len(acked)} acknowledged, {len(refused)} refused (4xx), "
              f"{len(flagged)} flag changes")
        # The old session goes on (same mailbox ids, UIDs and modseqs on the new shard).
        self.assertEqual(watcher.noop()[0], "OK")
        self.assertEqual(len(watcher.uid("SEARCH", "ALL")[1][0].split()), len(got))
        watcher.logout()
        # The source copy stays until the retention (0 h here) and a purge.
        self.assertEqual(self.messages_on(self.two, "hatob", "alice"), len(got))
        self.assertGreater(self.messages_on(self.one, "hato", "alice"), 0)
        run_cli("account", "cleanup", data=self.srv.data)
        self.assertEqual(self.messages_on(self.one, "hato", "alice"), 0)
        self.assertEqual(self.messages_on(self.two, "hatob", "alice"), len(got))
        # And back to main, with a message arriving after.
        r = run_cli("account", "move", f"alice@{DOMAIN}", "--to", "main", data=self.srv.data)
        self.assertIn("verified: both copies match", r.stdout)
        self.assertEqual(self.where("alice"), "main")
        self.assertTrue(send(port, f"alice@{DOMAIN}", "back-home"))
        m = login(self.srv.imap_port, "alice")
        again = subjects(m)
        m.logout()
        self.assertEqual(sorted(again), sorted(got + ["back-home"]))

    def test_backup_verify_restore_across_shards(self):
        """One backup set holds every shard's mail (main's snapshot plus each
        shard's accounts, merged), verifies, and restores (--merge) into
        another sharded installation with the same mail, flags and Sieve
        filters."""
        self.srv.start()
        port = self.srv.smtp_port
        # The same body on both clusters (one row per body in the backup).
        self.assertTrue(send(port, [f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"dave@{DOMAIN}"], "both"))
        self.assertTrue(send(port, f"carol@{DOMAIN}", "c-only"))
        m = login(self.srv.imap_port, "bob")
        m.select("INBOX")
        self.assertEqual(m.uid("STORE", "1", "+FLAGS", "(\\Flagged)")[0], "OK")
        self.assertEqual(m.create("Projects")[0], "OK")
        self.assertEqual(m.uid("COPY", "1", "Projects")[0], "OK")
        m.logout()
        # carol moves to b; her old copy stays on main until `account cleanup`
        # and must not be taken as well (same mailbox and message ids).
        r = run_cli("account", "move", f"carol@{DOMAIN}", "--to", "b", data=self.srv.data)
        self.assertIn("verified: both copies match", r.stdout)
        self.assertGreater(self.messages_on(self.one, "hato", "carol"), 0)
        self.assertTrue(send(port, f"carol@{DOMAIN}", "c-after-move"))
        # carol's filter lives on shard b with her mail.
        script = os.path.join(self.srv.data, "keep.sieve")
        with open(script, "w") as f:
            f.write("keep;\n")
        run_cli("sieve", "put", f"carol@{DOMAIN}", "main", script, data=self.srv.data)
        run_cli("sieve", "activate", f"carol@{DOMAIN}", "main", data=self.srv.data)

        dest = os.path.join(self.srv.data, "backups")
        r = run_cli("backup", "create", dest, "--create", data=self.srv.data)
        self.assertIn("4 accounts", r.stdout)
        self.assertRegex(r.stdout, r"\b6 messages\b")  # both x3, Projects copy, c-only, c-after-move
        r = run_cli("backup", "verify", dest, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("1 sets", r.stdout)
        self.assertIn(" 0 problems", r.stdout)

        # Another sharded installation on fresh databases of the same clusters.
        main2 = self.one.create_database("hato2")
        b2 = self.two.create_database("hatob2")
        other = Server(users=(), postgres=main2)
        self.addCleanup(other.cleanup)
        other.set_config("store", "placement", '"least-accounts"')
        other.append_config(f'[store.shards]\nb = "{b2}"')
        r = run_cli("restore", dest, "--merge", data=other.data)
        self.assertIn("restored set", r.stdout)
        other.start()
        want = {"alice": ["both"], "bob": ["both"], "dave": ["both"],
                "carol": ["c-after-move", "c-only"]}
        for u, subj in want.items():
            m = login(other.imap_port, u)
            self.assertEqual(sorted(subjects(m)), subj, u)
            if u == "bob":
                self.assertEqual(flagged_uids(m), {1})
                self.assertEqual(subjects(m, "Projects"), ["both"])
            m.logout()
        # carol's filter came back from shard b's part of the set.
        r = run_cli("sieve", "list", f"carol@{DOMAIN}", data=other.data)
        self.assertRegex(r.stdout, r"main\tactive")
        # Both clusters hold some of the restored mail.
        self.assertGreater(int(self.one.psql("SELECT count(*) FROM messages", "hato2")), 0)
        self.assertGreater(int(self.two.psql("SELECT count(*) FROM messages", "hatob2")), 0)

    def test_shard_added_by_reload_without_restart(self):
        """A shard added to [store.shards] is used by a running node after
        SIGHUP: mail for an account placed there is refused with a 4xx
        before the reload and delivered after it, with no restart."""
        self.srv.start()
        pid = self.srv.proc.pid
        c_url = self.two.create_database("hatoc")
        self.srv.set_config("store.shards", "c", f'"{c_url}"')
        # The CLI reads the new list: least-accounts puts the new account on c.
        run_cli("user", "add", f"erin@{DOMAIN}", "--password-stdin", data=self.srv.data,
                input=PASSWORD + "\n")
        self.assertEqual(self.where("erin"), "c")
        self.assertFalse(send(self.srv.smtp_port, f"erin@{DOMAIN}", "before-reload"))
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: send(self.srv.smtp_port, f"erin@{DOMAIN}", "after-reload"), timeout=30,
                 what="delivery to the new shard after the reload")
        self.assertEqual(self.srv.proc.pid, pid)  # the same process: no restart
        m = login(self.srv.imap_port, "erin")
        self.assertEqual(subjects(m), ["after-reload"])
        m.logout()
        self.assertEqual(int(self.two.psql("SELECT count(*) FROM messages", "hatoc")), 1)
        # The other shards still serve.
        self.assertTrue(send(self.srv.smtp_port, [f"alice@{DOMAIN}", f"bob@{DOMAIN}"], "others"))


if __name__ == "__main__":
    unittest.main()
