"""Mailing list archives over IMAP (issue 14 item 7), end to end on loopback.

Each post is copied, in the transaction that accepts it, into the archive of
the list; members see it as the read-only shared mailbox "#lists/LIST@DOMAIN"
(RFC 2342 shared namespace) and may SELECT/EXAMINE/FETCH/SEARCH it; \\Seen is
each member's own (STORE, FETCH BODY[] after SELECT); STORE of anything else,
EXPUNGE, APPEND and COPY/MOVE into it answer NO [NOPERM]; non-members see
nothing.
Clients: Python's imaplib, and mbsync syncing the shared folder.
"""
import email
import imaplib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import pg_cluster
from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for
from test_jmap import Http, auth
from test_lists import ALICE, BOB, LIST, ListBase, message, send

MAIL = "urn:ietf:params:jmap:mail"
CORE = "urn:ietf:params:jmap:core"

ARCHIVE = f"#lists/{LIST}"


def login(server, user):
    m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=15)
    m.login(user, PASSWORD)
    return m


def listed(m, pattern="*"):
    typ, data = m.list('""', pattern)
    assert typ == "OK", data
    return [d.decode() for d in data if d]


class ArchiveTest(ListBase):
    def configure(self):
        self.cli("list", "create", LIST, "--mode", "discussion")
        self.cli("list", "members", "add", LIST, "carol@remote.example", ALICE)

    def post(self, subj):
        code, text = send(self.server, "carol@remote.example", LIST,
                          message("Carol <carol@remote.example>", LIST, subj,
                                  body="archived body\r\n"))
        self.assertEqual(code, 250, text)

    def test_member_reads_the_archive_read_only(self):
        self.post("archive one")
        # Stored with the acceptance: readable at once, no waiting for the fan-out.
        m = login(self.server, ALICE)
        try:
            typ, data = m.namespace()
            self.assertEqual(typ, "OK")
            self.assertIn(b'(("#lists/" "/"))', data[0])
            names = listed(m)
            self.assertEqual(len([n for n in names if ARCHIVE in n]), 1, names)
            self.assertTrue([n for n in names if "\\Noselect" in n
                             and n.rstrip('"').endswith("#lists")], names)
            # Only the archive under the root.
            under = listed(m, "#lists/%")
            self.assertEqual(len(under), 1, under)
            typ, data = m.status(ARCHIVE, "(MESSAGES UIDNEXT)")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b"MESSAGES 1", data[0])

            typ, data = m.select(ARCHIVE, readonly=True)  # EXAMINE
            self.assertEqual((typ, data), ("OK", [b"1"]))
            typ, data = m.fetch("1", "(BODY[] FLAGS)")
            self.assertEqual(typ, "OK")
            msg = email.message_from_bytes(data[0][1])
            self.assertEqual(msg["Subject"], "archive one")
            self.assertEqual(msg["List-Id"], f"team <team.{DOMAIN}>")
            self.assertIn("archived body", msg.get_payload())
            # Read-only: BODY[] set no \Seen.
            typ, data = m.fetch("1", "(FLAGS)")
            self.assertNotIn(b"\\Seen", data[0])
            typ, data = m.search(None, "SUBJECT", '"archive one"')
            self.assertEqual(data, [b"1"])
            typ, data = m.uid("SEARCH", None, "BODY", "archived")
            self.assertEqual(typ, "OK")
            self.assertEqual(len(data[0].split()), 1)

            # EXAMINE: not even \Seen.
            typ, data = m.store("1", "+FLAGS", "(\\Seen)")
            self.assertEqual(typ, "NO")
            self.assertIn(b"[READ-ONLY]", data[0])
            # SELECT is read-write for the member's own \Seen only (PERMANENTFLAGS);
            # every other write is refused with NOPERM (RFC 5530).
            m.untagged_responses.clear()
            typ, data = m.select(ARCHIVE)
            self.assertEqual((typ, data), ("OK", [b"1"]))
            self.assertEqual(m.untagged_responses.get("PERMANENTFLAGS"), [b"(\\Seen)"])
            typ, data = m.store("1", "+FLAGS", "(\\Flagged)")
            self.assertEqual(typ, "NO")
            self.assertIn(b"[NOPERM]", data[0])
            typ, data = m.expunge()
            self.assertEqual(typ, "NO")
            self.assertIn(b"[NOPERM]", data[0])
            typ, data = m.copy("1", "INBOX")
            self.assertEqual(typ, "NO")
            typ, data = m._simple_command("MOVE", "1", "INBOX")
            self.assertEqual(typ, "NO")
            self.assertIn(b"[NOPERM]", data[0])
            typ, data = m.append(ARCHIVE, None, None,
                                 message(ALICE, LIST, "forged").encode())
            self.assertEqual(typ, "NO")
            self.assertIn(b"[NOPERM]", data[0])
            for cmd in (lambda: m.create("#lists/other@" + DOMAIN),
                        lambda: m.delete(ARCHIVE),
                        lambda: m.rename(ARCHIVE, "Mine")):
                typ, data = cmd()
                self.assertEqual(typ, "NO")
                self.assertIn(b"[NOPERM]", data[0])
            # Nothing changed: still one message, unseen.
            m.close()
            typ, data = m.select(ARCHIVE, readonly=True)
            self.assertEqual(data, [b"1"])
            typ, data = m.fetch("1", "(FLAGS)")
            self.assertNotIn(b"\\Seen", data[0])

            # IDLE on the archive hears the next post (RFC 2177).
            tag = m._new_tag()
            m.send(tag + b" IDLE\r\n")
            self.assertTrue(m.readline().startswith(b"+"))
            self.post("archive two")
            line = m.readline()
            self.assertEqual(line.strip(), b"* 2 EXISTS")
            m.send(b"DONE\r\n")
            while not m.readline().startswith(tag):
                pass
            typ, data = m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertIn(b"archive two", data[0][1])
        finally:
            m.logout()

    def test_non_member_sees_nothing_and_nobody_logs_in_as_the_archive(self):
        self.post("secret post")
        m = login(self.server, BOB)
        try:
            typ, data = m.namespace()
            self.assertEqual(typ, "OK")
            self.assertFalse([n for n in listed(m) if "#lists" in n])
            typ, data = m.select(ARCHIVE)
            self.assertEqual(typ, "NO")
            self.assertIn(b"[NONEXISTENT]", data[0])
            typ, data = m.status(ARCHIVE, "(MESSAGES)")
            self.assertEqual(typ, "NO")
            # A list that does not exist answers the same.
            typ, data = m.select(f"#lists/nosuch@{DOMAIN}")
            self.assertEqual(typ, "NO")
            self.assertIn(b"[NONEXISTENT]", data[0])
        finally:
            m.logout()
        # Becoming a member opens it; leaving closes it again.
        self.cli("list", "members", "add", LIST, BOB)
        m = login(self.server, BOB)
        try:
            typ, data = m.select(ARCHIVE, readonly=True)
            self.assertEqual((typ, data), ("OK", [b"1"]))
        finally:
            m.logout()
        self.cli("list", "members", "remove", LIST, BOB)
        m = login(self.server, BOB)
        try:
            typ, data = m.select(ARCHIVE, readonly=True)
            self.assertEqual(typ, "NO")
        finally:
            m.logout()
        # The archive's system account takes no login and is no user.
        for user, pw in ((f"{LIST}#archive-1", "!list-archive"), (LIST, PASSWORD)):
            c = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
            try:
                with self.assertRaises(imaplib.IMAP4.error):
                    c.login(user, pw)
            finally:
                c.shutdown()
        users = self.cli("user", "list").stdout
        self.assertNotIn("#archive", users)
        self.assertIn(ALICE, users)

    def archive_count(self, user):
        """MESSAGES of the archive for `user`, or None when it is not there."""
        m = login(self.server, user)
        try:
            typ, data = m.status(ARCHIVE, "(MESSAGES)")
            if typ != "OK":
                return None
            return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
        finally:
            m.logout()

    def test_archive_goes_with_the_list_and_comes_back_with_a_merge(self):
        self.post("kept one")
        self.post("kept two")
        self.assertEqual(self.archive_count(ALICE), 2)
        dest = tempfile.mkdtemp(prefix="hato-list-backup-")
        self.addCleanup(shutil.rmtree, dest, True)
        self.cli("backup", "create", dest, "--create")
        # Removing the list removes its archive account (into retention).
        self.cli("list", "remove", LIST)
        self.assertIsNone(self.archive_count(ALICE))
        removed = self.cli("user", "list", "--removed").stdout
        self.assertIn(f"{LIST}#archive-", removed)
        # A merge brings the list back with its members and its archive's posts.
        r = self.cli("restore", dest, "--merge")
        self.assertIn("0 failed", r.stdout)
        self.assertEqual(sorted(self.members()), sorted(["carol@remote.example", ALICE]))
        self.assertEqual(self.archive_count(ALICE), 2)
        m = login(self.server, ALICE)
        try:
            m.select(ARCHIVE, readonly=True)
            typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects = sorted(d[1].decode().strip() for d in data if isinstance(d, tuple))
            self.assertEqual(subjects, ["Subject: kept one", "Subject: kept two"])
        finally:
            m.logout()
        # A second merge adds nothing to it.
        self.cli("restore", dest, "--merge")
        self.assertEqual(self.archive_count(ALICE), 2)

    def flags(self, m):
        """Sequence number -> set of flags, for every message of the selected mailbox."""
        typ, data = m.fetch("1:*", "(FLAGS)")
        self.assertEqual(typ, "OK", data)
        out = {}
        for d in data:
            n, rest = d.split(b" ", 1)
            out[int(n)] = set(re.search(rb"FLAGS \(([^)]*)\)", rest).group(1).decode().split())
        return out

    def unseen(self, user):
        m = login(self.server, user)
        try:
            typ, data = m.status(ARCHIVE, "(UNSEEN)")
            self.assertEqual(typ, "OK", data)
            return int(re.search(rb"UNSEEN (\d+)", data[0]).group(1))
        finally:
            m.logout()

    def test_seen_is_each_members_own(self):
        self.cli("list", "members", "add", LIST, BOB)
        self.post("one")
        self.post("two")
        a = login(self.server, ALICE)
        try:
            typ, data = a.select(ARCHIVE)
            self.assertEqual((typ, data), ("OK", [b"2"]))
            self.assertEqual(self.flags(a), {1: set(), 2: set()})
            # FETCH BODY[] sets \Seen for alice (RFC 3501 section 6.4.5).
            typ, data = a.fetch("1", "(BODY[])")
            self.assertEqual(typ, "OK")
            self.assertIn(b"\\Seen", b" ".join(x if isinstance(x, bytes) else x[0] for x in data))
            typ, data = a.store("2", "+FLAGS", "(\\Seen)")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b"\\Seen", data[0])
            typ, data = a.store("1", "-FLAGS", "(\\Seen)")
            self.assertEqual(typ, "OK", data)
            self.assertEqual(self.flags(a), {1: set(), 2: {"\\Seen"}})
            # Only \Seen: the others are the list's.
            for flags in ("(\\Flagged)", "(\\Seen \\Answered)", "(mine)"):
                typ, data = a.store("2", "+FLAGS", flags)
                self.assertEqual(typ, "NO", flags)
                self.assertIn(b"[NOPERM]", data[0])
            self.assertEqual(a.search(None, "UNSEEN"), ("OK", [b"1"]))
            self.assertEqual(a.search(None, "SEEN"), ("OK", [b"2"]))
            typ, data = a.expunge()
            self.assertEqual(typ, "NO")
            # An IDLE long enough for the view to sleep (it reloads from the
            # store on waking): a new post arrives unseen, alice's \Seen stays.
            tag = a._new_tag()
            a.send(tag + b" IDLE\r\n")
            self.assertTrue(a.readline().startswith(b"+"))
            time.sleep(1.5)
            self.post("three")
            self.assertEqual(a.readline().strip(), b"* 3 EXISTS")
            a.send(b"DONE\r\n")
            while not a.readline().startswith(tag):
                pass
            self.assertEqual(self.flags(a), {1: set(), 2: {"\\Seen"}, 3: set()})
            self.assertEqual(a.close()[0], "OK")  # CLOSE expunges nothing
        finally:
            a.logout()
        # Bob's view is his own: nothing seen.
        self.assertEqual((self.unseen(ALICE), self.unseen(BOB)), (2, 3))
        b = login(self.server, BOB)
        try:
            b.select(ARCHIVE, readonly=True)
            self.assertEqual(self.flags(b), {1: set(), 2: set(), 3: set()})
        finally:
            b.logout()
        # Kept for the next session.
        a = login(self.server, ALICE)
        try:
            a.select(ARCHIVE, readonly=True)
            self.assertEqual(self.flags(a), {1: set(), 2: {"\\Seen"}, 3: set()})
        finally:
            a.logout()
        if pg_cluster.store_is_postgres():
            return  # a restore into an empty data dir rebuilds the embedded store
        # And in backups (a restore into an empty data dir).
        dest = tempfile.mkdtemp(prefix="hato-list-backup-")
        self.addCleanup(shutil.rmtree, dest, True)
        self.cli("backup", "create", dest, "--create")
        self.server.stop()
        old = self.server
        self.addCleanup(old.cleanup)
        fresh = tempfile.mkdtemp(prefix="hato-list-restore-")
        self.addCleanup(shutil.rmtree, fresh, True)
        run_cli("restore", dest, data=fresh)
        self.server = Server(data=fresh)
        self.server.start()
        self.assertEqual((self.unseen(ALICE), self.unseen(BOB)), (2, 3))
        a = login(self.server, ALICE)
        try:
            a.select(ARCHIVE, readonly=True)
            self.assertEqual(self.flags(a), {1: set(), 2: {"\\Seen"}, 3: set()})
        finally:
            a.logout()

    def test_subset_restore_keeps_the_list_archives_or_says_it_left_them_out(self):
        self.post("kept one")
        self.post("kept two")
        dest = tempfile.mkdtemp(prefix="hato-list-backup-")
        self.addCleanup(shutil.rmtree, dest, True)
        self.cli("backup", "create", dest, "--create")

        # A merge of one account leaves the lists alone, and says so.
        self.cli("list", "remove", LIST)
        r = self.cli("restore", dest, "--merge", "--account", ALICE)
        self.assertIn(f"left out 1 mailing lists and their archives", r.stdout)
        self.assertIn(LIST, r.stdout.split("left out")[1])
        self.assertNotEqual(self.cli("list", "members", "list", LIST, check=False).returncode, 0)
        # Naming the list merges it, with its members and its archive.
        r = self.cli("restore", dest, "--merge", "--account", LIST)
        self.assertIn("merged 1 mailing lists", r.stdout)
        self.assertNotIn("left out", r.stdout)
        self.assertEqual(sorted(self.members()), sorted(["carol@remote.example", ALICE]))
        self.assertEqual(self.archive_count(ALICE), 2)

        if pg_cluster.store_is_postgres():
            return  # a restore into an empty data dir rebuilds the embedded store
        # Into an empty data dir, one account: the lists come whole, their
        # archives with them (before, the archive account was dropped: the
        # list came back with an archive nobody could open).
        self.server.stop()
        old = self.server
        self.addCleanup(old.cleanup)
        fresh = tempfile.mkdtemp(prefix="hato-list-restore-")
        r = run_cli("restore", dest, "--account", ALICE, data=fresh)
        self.assertIn("0 failed", r.stdout)
        self.server = Server(data=fresh)
        self.addCleanup(shutil.rmtree, fresh, True)
        self.server.start()
        self.assertEqual(sorted(self.members()), sorted(["carol@remote.example", ALICE]))
        self.assertEqual(self.archive_count(ALICE), 2)
        self.assertNotIn(BOB, self.cli("user", "list").stdout)

    def jmap(self, user, method_calls=None):
        http = Http(self.server.http_port)
        base = f"http://127.0.0.1:{self.server.http_port}"
        if method_calls is None:
            status, _, body = http.request("GET", base + "/jmap/session",
                                           headers={"Authorization": auth(user)})
        else:
            status, _, body = http.request(
                "POST", base + "/jmap/api/",
                body=json.dumps({"using": [CORE, MAIL], "methodCalls": method_calls}),
                headers={"Authorization": auth(user), "Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_jmap_shared_read_only_account(self):
        self.post("jmap post")
        session = self.jmap(ALICE)
        own = session["primaryAccounts"][MAIL]
        shared = {k: v for k, v in session["accounts"].items() if k != own}
        self.assertEqual(len(shared), 1, session["accounts"])
        (aid, acct), = shared.items()
        self.assertEqual(acct["name"], LIST)
        self.assertFalse(acct["isPersonal"])
        self.assertTrue(acct["isReadOnly"])
        self.assertFalse(session["accounts"][own]["isReadOnly"])
        r = self.jmap(ALICE, [
            ["Mailbox/get", {"accountId": aid}, "m"],
            ["Email/query", {"accountId": aid}, "q"],
            ["Email/get", {"accountId": aid, "#ids": {"resultOf": "q", "name": "Email/query",
                                                       "path": "/ids"},
                           "properties": ["subject", "mailboxIds"]}, "g"],
            ["Email/set", {"accountId": aid, "destroy": ["x"]}, "s"],
            ["Mailbox/set", {"accountId": aid, "create": {"n": {"name": "x"}}}, "ms"],
        ])
        res = {c: (n, a) for n, a, c in r["methodResponses"]}
        self.assertEqual(res["m"][0], "Mailbox/get")
        boxes = res["m"][1]["list"]
        self.assertEqual(len(boxes), 1)
        self.assertTrue(boxes[0]["myRights"]["mayReadItems"])
        self.assertFalse(boxes[0]["myRights"]["mayAddItems"])
        self.assertEqual(len(res["q"][1]["ids"]), 1)
        self.assertEqual([e["subject"] for e in res["g"][1]["list"]], ["jmap post"])
        self.assertEqual(res["s"], ("error", {"type": "accountReadOnly"}))
        self.assertEqual(res["ms"], ("error", {"type": "accountReadOnly"}))
        self.assertEqual(r["sessionState"], session["state"])
        # Bob is no member: no shared account, and the id is not his.
        session = self.jmap(BOB)
        self.assertEqual(len(session["accounts"]), 1)
        r = self.jmap(BOB, [["Email/query", {"accountId": aid}, "q"]])
        self.assertEqual(r["methodResponses"][0][:2], ["error", {"type": "accountNotFound"}])

    @unittest.skipUnless(shutil.which("mbsync"), "mbsync not installed")
    def test_mbsync_pulls_the_shared_folder(self):
        self.post("for mbsync")
        with tempfile.TemporaryDirectory() as d:
            maildir = os.path.join(d, "mail")
            os.makedirs(maildir)
            conf = os.path.join(d, "mbsyncrc")
            with open(conf, "w") as f:
                f.write(f"""IMAPAccount a
Host 127.0.0.1
Port {self.server.imap_port}
User {ALICE}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore far
Account a

MaildirStore near
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel c
Far :far:
Near :near:
Patterns "#lists/*"
Create Near
Sync Pull
SyncState *
""")
            r = subprocess.run(["mbsync", "-c", conf, "-a"], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            found = []
            for root, _dirs, files in os.walk(maildir):
                for name in files:
                    if os.path.basename(root) in ("cur", "new"):
                        with open(os.path.join(root, name), "rb") as fh:
                            found.append((root, email.message_from_bytes(fh.read())))
            self.assertEqual([m["Subject"] for _r, m in found], ["for mbsync"], found)
            self.assertIn("#lists", found[0][0])


if __name__ == "__main__":
    unittest.main()
