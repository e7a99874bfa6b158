"""JMAP over the store's indexed reads and records (issue 12):

- Email/query's list view (inMailbox, sort receivedAt, position/limit) is
  answered from the store's index: the same ids, in the same order, with the
  same total as the general path (the same filter written as an AND of one
  condition, which the index path does not take), page by page, both ways.
- Identity choices and EmailSubmission records live in the store: a backup
  restored elsewhere has them, the files of older versions are moved into
  the store at start, and two nodes of one PostgreSQL database see the same
  Identity.
- EmailSubmission/changes reports in `updated` a submission whose
  deliveryStatus changed as the queue delivered it (the outcome stays
  readable once the queue has dropped the message: test_jmap_submission)."""
import base64
import imaplib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import pg_cluster
from fakemx import FakeMX
from harness import DOMAIN, HATO, PASSWORD, Server, wait_for

ALICE = f"alice@{DOMAIN}"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
USING = [CORE, MAIL, SUBMISSION]


def api(server, calls, user=ALICE):
    """One JMAP request (HTTP Basic from loopback); the methodResponses."""
    body = json.dumps({"using": USING, "methodCalls": calls}).encode()
    token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
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


def cli(*args, data=None):
    cmd = [HATO, *args] + (["--data", data] if data else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


def account_id(server):
    return api(server, [["Mailbox/get", {"ids": []}, "0"]])[0][1]["accountId"]


def set_identity_name(server, name):
    r = api(server, [["Identity/get", {}, "0"]])
    ident = r[0][1]["list"][0]["id"]
    r = api(server, [["Identity/set", {"update": {ident: {"name": name}}}, "0"]])
    assert ident in (r[0][1].get("updated") or {}), r
    return ident


def identity_name(server):
    return api(server, [["Identity/get", {}, "0"]])[0][1]["list"][0]["name"]


class EmailQueryIndexTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=("alice",)).start()
        m = imaplib.IMAP4("127.0.0.1", cls.server.imap_port)
        m.login(ALICE, PASSWORD)
        # Internal dates out of order, some equal (ties go by arrival), and
        # one body stored twice in INBOX (one Email) and once in Archive.
        days = [5, 1, 9, 3, 3, 7, 2, 8, 3, 6, 4, 10]
        for i, day in enumerate(days):
            msg = f"From: s@remote.test\r\nSubject: q{i}\r\n\r\nbody {i}\r\n".encode()
            m.append("INBOX", None, f'"{day:02d}-Jan-2026 10:00:00 +0000"', msg)
        dup = b"From: s@remote.test\r\nSubject: twice\r\n\r\nsame body\r\n"
        for box in ("INBOX", "INBOX", "Archive"):
            m.append(box, None, '"15-Jan-2026 10:00:00 +0000"', dup)
        m.logout()
        r = api(cls.server, [["Mailbox/get", {}, "0"]])
        cls.boxes = {b["name"]: b["id"] for b in r[0][1]["list"]}

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def query(self, filt, ascending=None, **extra):
        args = {"filter": filt, "calculateTotal": True, **extra}
        if ascending is not None:
            args["sort"] = [{"property": "receivedAt", "isAscending": ascending}]
        r = api(self.server, [["Email/query", args, "0"]])
        self.assertEqual(r[0][0], "Email/query", r)
        return r[0][1]

    def test_pages_match_the_general_path(self):
        for name in ("INBOX", "Archive"):
            box = self.boxes[name]
            for ascending in (None, False, True):
                general = self.query({"operator": "AND", "conditions": [{"inMailbox": box}]},
                                     ascending)
                indexed = self.query({"inMailbox": box}, ascending)
                self.assertEqual(indexed["ids"], general["ids"], (name, ascending))
                self.assertEqual(indexed["total"], general["total"])
                self.assertEqual(indexed["queryState"], general["queryState"])
                # Page by page: the same list, positions as asked.
                paged = []
                for pos in range(0, general["total"] + 3, 4):
                    p = self.query({"inMailbox": box}, ascending, position=pos, limit=4)
                    self.assertEqual(p["position"], min(pos, general["total"]))
                    paged += p["ids"]
                self.assertEqual(paged, general["ids"])
        self.assertEqual(self.query({"inMailbox": self.boxes["INBOX"]})["total"], 13)

    def test_get_by_id_and_other_accounts_mailbox(self):
        q = self.query({"inMailbox": self.boxes["INBOX"]}, False, limit=3)
        r = api(self.server, [["Email/get", {"ids": q["ids"] + ["e000000000000000000000000", "x"],
                                             "properties": ["subject", "mailboxIds",
                                                            "receivedAt"]}, "0"]])
        got = r[0][1]
        self.assertEqual([e["id"] for e in got["list"]], q["ids"])
        self.assertEqual(got["list"][0]["subject"], "twice")
        # The body in INBOX twice and in Archive: one Email in both.
        self.assertEqual(set(got["list"][0]["mailboxIds"]),
                         {self.boxes["INBOX"], self.boxes["Archive"]})
        self.assertEqual(got["list"][1]["subject"], "q11")
        self.assertEqual(got["notFound"], ["e000000000000000000000000", "x"])
        # A mailbox id that is not the account's is an empty result.
        self.assertEqual(self.query({"inMailbox": "m999999"})["ids"], [])


class JmapRecordsTest(unittest.TestCase):
    def setUp(self):
        self.others = []

    def tearDown(self):
        for s in self.others:
            s.cleanup()

    def server(self, **kw):
        s = Server(**kw)
        self.others.append(s)
        return s

    def test_backup_restore_keeps_identities_and_submissions(self):
        src = self.server(users=("alice", "bob")).start()
        ident = set_identity_name(src, "Alice Backed-Up")
        r = api(src, [["Mailbox/get", {}, "b"]])
        drafts = [b["id"] for b in r[0][1]["list"] if b["role"] == "drafts"][0]
        r = api(src, [["Email/set", {"create": {"m": {
            "mailboxIds": {drafts: True}, "subject": "kept record",
            "from": [{"email": ALICE}], "to": [{"email": f"bob@{DOMAIN}"}],
            "bodyValues": {"t": {"value": "x"}}, "textBody": [{"partId": "t"}]}}}, "e"],
            ["EmailSubmission/set", {"create": {"s": {"emailId": "#m", "identityId": ident}}},
             "s"]])
        sid = r[1][1]["created"]["s"]["id"]
        dest = tempfile.mkdtemp(prefix="hato-backup-")
        self.addCleanup(shutil.rmtree, dest, True)
        out = cli("backup", "create", dest, "--create", data=src.data).stdout
        set_id = re.search(r"backup (\S+):", out).group(1)
        fresh = tempfile.mkdtemp(prefix="hato-restored-")
        shutil.rmtree(fresh)
        cli("restore", dest, "--backup", set_id, data=fresh)
        restored = self.server(data=fresh).start()
        self.assertEqual(identity_name(restored), "Alice Backed-Up")
        r = api(restored, [["EmailSubmission/get", {"ids": [sid]}, "0"]])
        self.assertEqual([s["id"] for s in r[0][1]["list"]], [sid], r)

    def test_files_of_older_versions_move_into_the_store(self):
        server = self.server(users=("alice",)).start()
        ident = api(server, [["Identity/get", {}, "0"]])[0][1]["list"][0]["id"]
        acct = account_id(server)[1:]
        server.stop()
        d = os.path.join(server.data, "jmap-identities")
        os.makedirs(d)
        with open(os.path.join(d, f"{acct}.json"), "w") as f:
            json.dump({ident: {"name": "From The File"}}, f)
        d = os.path.join(server.data, "jmap-submissions")
        os.makedirs(d)
        record = {"seq": 7, "list": [], "destroyed": []}
        with open(os.path.join(d, f"{acct}.json"), "w") as f:
            json.dump(record, f)
        server.start()
        self.assertEqual(identity_name(server), "From The File")
        r = api(server, [["EmailSubmission/get", {"ids": []}, "0"]])
        self.assertEqual(r[0][1]["state"], "q7")
        self.assertFalse(os.path.exists(os.path.join(server.data, "jmap-identities",
                                                     f"{acct}.json")))
        self.assertTrue(os.path.exists(os.path.join(server.data, "jmap-identities",
                                                    f"{acct}.json.migrated")))
        # The store is the truth from now on: a later change survives a restart.
        set_identity_name(server, "Changed Later")
        server.stop()
        server.start()
        self.assertEqual(identity_name(server), "Changed Later")


class SubmissionStatusTest(unittest.TestCase):
    """A remote recipient the relay defers (451), then accepts: the
    submission's deliveryStatus leaves "queued", and EmailSubmission/changes
    says it was updated; the settled status is kept."""

    def setUp(self):
        self.mx = FakeMX()
        self.addCleanup(self.mx.stop)
        self.mx.rcpt_replies["carol@remote.example"] = "451 4.7.1 try again later"
        self.server = Server(users=("alice",))
        self.addCleanup(self.server.cleanup)
        self.server.set_config("outbound", "relay_host", f'"127.0.0.1:{self.mx.port}"')
        self.server.set_config("outbound", "resolver", '"127.0.0.1@1"')  # unused: the relay
        self.server.set_config("outbound", "retry_base_seconds", "1")
        self.server.set_config("outbound", "retry_max_seconds", "2")
        self.server.start()

    def status(self, sid):
        r = api(self.server, [["EmailSubmission/get", {"ids": [sid]}, "0"]])
        return r[0][1]["state"], r[0][1]["list"][0]["deliveryStatus"]["carol@remote.example"]

    def test_delivery_status_change_is_an_update(self):
        r = api(self.server, [["Identity/get", {}, "i"], ["Mailbox/get", {}, "b"]])
        ident = r[0][1]["list"][0]["id"]
        drafts = [b["id"] for b in r[1][1]["list"] if b["role"] == "drafts"][0]
        r = api(self.server, [
            ["Email/set", {"create": {"m": {
                "mailboxIds": {drafts: True}, "subject": "to carol",
                "from": [{"email": ALICE}], "to": [{"email": "carol@remote.example"}],
                "bodyValues": {"t": {"value": "x"}}, "textBody": [{"partId": "t"}]}}}, "e"],
            ["EmailSubmission/set", {"create": {"s": {"emailId": "#m", "identityId": ident}}},
             "s"]])
        sid = r[1][1]["created"]["s"]["id"]
        # Deferred: queued, with the relay's reply.
        wait_for(lambda: "451" in self.status(sid)[1]["smtpReply"], timeout=60,
                 what="the relay's 451 in deliveryStatus")
        state, st = self.status(sid)
        self.assertEqual(st["delivered"], "queued")
        r = api(self.server, [["EmailSubmission/changes", {"sinceState": state}, "0"]])
        self.assertEqual(r[0][1]["updated"], [])
        # Accepted at a retry: delivered, and an update since that state.
        del self.mx.rcpt_replies["carol@remote.example"]
        wait_for(lambda: self.mx.messages, timeout=60, what="delivery at a retry")
        # "yes", also once the queue has let go (the outcomes it kept).
        wait_for(lambda: self.status(sid)[1]["delivered"] == "yes", timeout=60,
                 what="deliveryStatus delivered")
        final = self.status(sid)[1]
        r = api(self.server, [["EmailSubmission/changes", {"sinceState": state}, "0"]])
        c = r[0][1]
        self.assertEqual(c["updated"], [sid], c)
        self.assertEqual(c["created"], [])
        self.assertNotEqual(c["newState"], state)
        # Settled: the status stays (also after a restart) and nothing more changes.
        self.server.stop()
        self.server.start()
        r = api(self.server, [["EmailSubmission/changes", {"sinceState": c["newState"]}, "0"]])
        self.assertEqual(r[0][1]["updated"], [], r)
        self.assertEqual(self.status(sid)[1], final)


@unittest.skipUnless(pg_cluster.installed(), pg_cluster.NOT_INSTALLED)
class PostgresIdentityTest(unittest.TestCase):
    def test_two_nodes_see_the_same_identity(self):
        cluster = pg_cluster.Cluster().init().start()
        self.addCleanup(cluster.cleanup)
        url = cluster.create_database("hato")
        one = Server(users=("alice",), postgres=url)
        self.addCleanup(one.cleanup)
        two = Server(users=(), postgres=url)
        self.addCleanup(two.cleanup)
        one.start()
        two.start()
        set_identity_name(one, "Seen Everywhere")
        self.assertEqual(identity_name(two), "Seen Everywhere")
        set_identity_name(two, "Changed On Two")
        self.assertEqual(identity_name(one), "Changed On Two")


if __name__ == "__main__":
    unittest.main()
