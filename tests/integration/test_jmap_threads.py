"""Mailbox Thread counts (issue 12, RFC 8621 section 2) and their repair:

- totalThreads counts the Threads with an Email in the mailbox (the Emails
  of one reply chain count once), unreadThreads those with one there
  without $seen; both follow IMAP and JMAP flag changes, moves, expunges
  and SMTP deliveries, agree with the threadIds Email/get and Thread/get
  give, and survive a restart.
- Bodies stored without a threadId (before the store kept one) count as a
  Thread of their own until `hato serve` fills theirs in the background.
- `hato fsck` reports mailbox counters that disagree with the messages and
  `hato fsck --repair` rewrites them (no backup needed).

Run with HATO_STORE=postgres for the PostgreSQL store (tests/CMakeLists.txt)."""
import base64
import imaplib
import json
import os
import smtplib
import socket
import sqlite3
import subprocess
import unittest

from harness import DOMAIN, HATO, PASSWORD, Server, wait_for

ALICE = f"alice@{DOMAIN}"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


def api(server, calls):
    """One JMAP request (HTTP Basic from loopback); the methodResponses."""
    body = json.dumps({"using": USING, "methodCalls": calls}).encode()
    token = base64.b64encode(f"{ALICE}:{PASSWORD}".encode()).decode()
    req = (f"POST /jmap/api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {token}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
           "Connection: close\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=60) as s:
        s.sendall(req)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    return json.loads(rest)["methodResponses"]


def sql(server, statement):
    """Runs one statement on the server's metadata (the server stopped for
    SQLite); the rows as lists of strings."""
    if server.postgres:
        r = subprocess.run(["psql", server.postgres, "-qAt", "-F", "\t", "-c", statement],
                           capture_output=True, text=True, check=True, timeout=60)
        return [line.split("\t") for line in r.stdout.splitlines() if line]
    db = sqlite3.connect(os.path.join(server.data, "meta.db"))
    try:
        rows = [[str(v) for v in row] for row in db.execute(statement).fetchall()]
        db.commit()
        return rows
    finally:
        db.close()


def fsck(server, *args):
    cmd = [HATO, "fsck", *args, "--data", server.data]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def message(mid, subject, refs=None):
    head = f"From: s@remote.test\r\nTo: {ALICE}\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n"
    if refs:
        head += f"In-Reply-To: <{refs[-1]}>\r\nReferences: " + " ".join(f"<{r}>" for r in refs)
        head += "\r\n"
    return (head + f"\r\nbody of {mid}\r\n").encode()


# Two conversations and a lone message: root + 2 replies, root + 1 reply, lone.
MESSAGES = [
    ("a1@t", "plan", None),
    ("a2@t", "Re: plan", ["a1@t"]),
    ("a3@t", "Re: plan", ["a1@t", "a2@t"]),
    ("b1@t", "lunch", None),
    ("b2@t", "Re: lunch", ["b1@t"]),
    ("c1@t", "alone", None),
]


class ThreadCountsTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
        m.login(ALICE, PASSWORD)
        for mid, subject, refs in MESSAGES:
            m.append("INBOX", None, None, message(mid, subject, refs))
        m.logout()
        r = api(self.server, [["Mailbox/get", {"properties": ["role", "name"]}, "0"]])
        self.boxes = {b["role"] or b["name"]: b["id"] for b in r[0][1]["list"]}
        r = api(self.server, [
            ["Email/query", {"filter": {"inMailbox": self.boxes["inbox"]}}, "q"],
            ["Email/get", {"#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                           "properties": ["messageId", "threadId"]}, "g"]])
        self.emails = {e["messageId"][0]: e for e in r[1][1]["list"]}

    def counts(self, box):
        r = api(self.server, [["Mailbox/get", {"ids": [self.boxes[box]], "properties": [
            "totalEmails", "unreadEmails", "totalThreads", "unreadThreads"]}, "0"]])
        b = r[0][1]["list"][0]
        return (b["totalEmails"], b["unreadEmails"], b["totalThreads"], b["unreadThreads"])

    def thread_ids_in(self, box):
        """The distinct threadIds of the Emails of a mailbox (Email/get)."""
        r = api(self.server, [
            ["Email/query", {"filter": {"inMailbox": self.boxes[box]}}, "q"],
            ["Email/get", {"#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                           "properties": ["threadId"]}, "g"]])
        return {e["threadId"] for e in r[1][1]["list"]}

    def set_seen(self, mid, seen=True):
        api(self.server, [["Email/set", {"update": {
            self.emails[mid]["id"]: {"keywords/$seen": True if seen else None}}}, "0"]])

    def test_one_thread_counts_once_and_unread_follows_flags(self):
        self.assertEqual(self.counts("inbox"), (6, 6, 3, 3))
        self.assertEqual(len(self.thread_ids_in("inbox")), 3)
        # Thread/get agrees: the three of conversation a, oldest first.
        t = self.emails["a1@t"]["threadId"]
        self.assertEqual(self.emails["a3@t"]["threadId"], t)
        r = api(self.server, [["Thread/get", {"ids": [t]}, "0"]])
        self.assertEqual(sorted(r[0][1]["list"][0]["emailIds"]),
                         sorted(self.emails[m]["id"] for m in ("a1@t", "a2@t", "a3@t")))
        # Reading two of conversation a leaves it unread (a3 is not).
        self.set_seen("a1@t")
        self.set_seen("a2@t")
        self.assertEqual(self.counts("inbox"), (6, 4, 3, 3))
        self.set_seen("a3@t")
        self.assertEqual(self.counts("inbox"), (6, 3, 3, 2))
        # IMAP STORE counts the same: c1 read by IMAP, then a2 unread again.
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
        m.login(ALICE, PASSWORD)
        m.select("INBOX")
        m.store("6", "+FLAGS", "(\\Seen)")
        self.assertEqual(self.counts("inbox"), (6, 2, 3, 1))
        m.store("2", "-FLAGS", "(\\Seen)")
        self.assertEqual(self.counts("inbox"), (6, 3, 3, 2))
        m.logout()
        self.set_seen("a2@t")
        # A move splits a conversation over two mailboxes: it counts in both.
        api(self.server, [["Email/set", {"update": {self.emails["b2@t"]["id"]: {
            "mailboxIds": {self.boxes["archive"]: True}}}}, "0"]])
        self.assertEqual(self.counts("inbox"), (5, 1, 3, 1))
        self.assertEqual(self.counts("archive"), (1, 1, 1, 1))
        self.assertEqual(len(self.thread_ids_in("archive")), 1)
        # Destroying the rest of conversation b removes it from INBOX.
        api(self.server, [["Email/set", {"destroy": [self.emails["b1@t"]["id"]]}, "0"]])
        self.assertEqual(self.counts("inbox"), (4, 0, 2, 0))
        # A reply delivered by SMTP joins conversation a, unread.
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
            s.sendmail("s@remote.test", [ALICE], message("a4@t", "Re: plan", ["a1@t", "a3@t"]))
        wait_for(lambda: self.counts("inbox") == (5, 1, 2, 1), timeout=20,
                 what="the reply counted in its thread")
        self.assertEqual(len(self.thread_ids_in("inbox")), 2)
        self.server.stop()
        self.server.start()
        self.assertEqual(self.counts("inbox"), (5, 1, 2, 1))
        self.assertEqual(self.counts("archive"), (1, 1, 1, 1))

    def test_bodies_without_thread_id_are_filled_at_start(self):
        """Bodies stored before the store kept threadIds (NULL) count alone;
        `hato serve` fills them in the background and the counts join."""
        self.server.stop()
        sql(self.server, "UPDATE blobs SET thread_id = NULL")
        self.assertEqual(sql(self.server, "SELECT count(*) FROM blobs WHERE thread_id IS NULL"),
                         [["6"]])
        # Moved by the blobs_thread trigger: one Thread per body until filled.
        self.assertEqual(sql(self.server, "SELECT n_threads FROM mailboxes WHERE name = 'INBOX'"),
                         [["6"]])
        self.server.start()
        wait_for(lambda: self.counts("inbox") == (6, 6, 3, 3), timeout=30,
                 what="the threadIds filled")
        self.assertEqual(fsck(self.server).returncode, 0)


class FsckCountersTest(unittest.TestCase):
    def test_fsck_reports_and_repairs_counters(self):
        server = Server(users=("alice",)).start()
        self.addCleanup(server.cleanup)
        m = imaplib.IMAP4("127.0.0.1", server.imap_port)
        m.login(ALICE, PASSWORD)
        for mid, subject, refs in MESSAGES:
            m.append("INBOX", None, None, message(mid, subject, refs))
        m.select("INBOX")
        m.store("1:2", "+FLAGS", "(\\Seen)")
        m.logout()
        server.stop()
        r = fsck(server)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("PROBLEM", r.stdout)
        # Damage the counters: the mailbox's and one Thread row.
        sql(server, "UPDATE mailboxes SET n_threads = 9, n_unseen = 40, n_emails = 1 "
                    "WHERE name = 'INBOX'")
        sql(server, "UPDATE mailbox_threads SET n = n + 5 WHERE thread IN "
                    "(SELECT thread FROM mailbox_threads ORDER BY thread LIMIT 1)")
        r = fsck(server)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("PROBLEM mailbox", r.stdout)
        self.assertIn("has counters that disagree with its messages", r.stdout)
        r = fsck(server, "--repair")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("1 repaired", r.stdout)
        r = fsck(server)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("PROBLEM", r.stdout)
        server.start()
        r = api(server, [["Mailbox/get", {"properties": [
            "role", "totalEmails", "unreadEmails", "totalThreads", "unreadThreads"]}, "0"]])
        inbox = [b for b in r[0][1]["list"] if b["role"] == "inbox"][0]
        # a1, a2 read: conversation a is still unread (a3).
        self.assertEqual((inbox["totalEmails"], inbox["unreadEmails"], inbox["totalThreads"],
                          inbox["unreadThreads"]), (6, 4, 3, 3))


if __name__ == "__main__":
    unittest.main()
