"""JMAP (RFC 8620 core, RFC 8621 mail) against a live `hato serve`, over raw
HTTP: the session resource and its URLs as the RFC says to follow them,
authentication, the request-level errors of section 3.6.1 (notJSON,
notRequest, unknownCapability, limit), method-level errors, result
references, createdIds, and EventSource push (section 7.3) fed by the
store's changes, including changes made over IMAP."""
import base64
import imaplib
import json
import os
import smtplib
import socket
import threading
import time
import unittest
import urllib.parse

import pg_cluster
from harness import DOMAIN, PASSWORD, Server, run_cli

ALICE = f"alice@{DOMAIN}"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"


def auth(user=ALICE, password=PASSWORD):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Http:
    """A minimal HTTP/1.1 client on a raw socket (keep-alive, Content-Length)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, url, body=None, headers=None, user_auth=True):
        u = urllib.parse.urlsplit(url)
        target = (u.path or "/") + (("?" + u.query) if u.query else "")
        h = {"Host": f"127.0.0.1:{self.port}", "Connection": "close"}
        if user_auth:
            h["Authorization"] = auth()
        h.update(headers or {})
        data = body.encode() if isinstance(body, str) else (body or b"")
        if body is not None:
            h["Content-Length"] = str(len(data))
        req = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
            s.sendall(req.encode() + b"\r\n" + data)
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs, rest


class JmapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=("alice", "bob"))
        cls.server.set_config("jmap", "max_calls_in_request", "8")
        cls.server.start()
        cls.http = Http(cls.server.http_port)
        status, _, body = cls.http.request("GET", f"http://127.0.0.1:{cls.server.http_port}"
                                           "/.well-known/jmap")
        assert status == 200, (status, body)
        cls.session = json.loads(body)
        cls.account = cls.session["primaryAccounts"][MAIL]

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def api(self, calls, using=(CORE, MAIL), raw=None, user_auth=True, extra=None):
        body = raw if raw is not None else json.dumps(
            {"using": list(using), "methodCalls": calls, **(extra or {})})
        status, hdrs, data = self.http.request("POST", self.session["apiUrl"], body,
                                               {"Content-Type": "application/json"},
                                               user_auth=user_auth)
        is_json = "json" in hdrs.get("content-type", "")
        return status, hdrs, json.loads(data) if data and is_json else data

    def deliver(self, subject, body="hello"):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("sender@remote.test", [ALICE],
                       f"From: Sender <sender@remote.test>\r\nTo: {ALICE}\r\n"
                       f"Subject: {subject}\r\n\r\n{body}\r\n")

    # --- The contract ---

    def test_session_resource(self):
        s = self.session
        self.assertEqual(s["username"], ALICE)
        self.assertIn(CORE, s["capabilities"])
        self.assertIn(MAIL, s["capabilities"])
        core = s["capabilities"][CORE]
        for k in ("maxSizeUpload", "maxConcurrentUpload", "maxSizeRequest", "maxConcurrentRequests",
                  "maxCallsInRequest", "maxObjectsInGet", "maxObjectsInSet", "collationAlgorithms"):
            self.assertIn(k, core)
        self.assertEqual(core["maxCallsInRequest"], 8)
        self.assertIn(self.account, s["accounts"])
        self.assertTrue(s["accounts"][self.account]["isPersonal"])
        for k in ("apiUrl", "downloadUrl", "uploadUrl", "eventSourceUrl", "state"):
            self.assertIn(k, s)
        for p in ("{accountId}", "{blobId}", "{name}", "{type}"):
            self.assertIn(p, s["downloadUrl"])
        for p in ("{types}", "{closeafter}", "{ping}"):
            self.assertIn(p, s["eventSourceUrl"])

    def test_unknown_user_and_wrong_password_get_401(self):
        for user, pw in ((f"nobody@{DOMAIN}", PASSWORD), (ALICE, "wrong")):
            status, hdrs, _ = self.http.request(
                "GET", "/.well-known/jmap", user_auth=False,
                headers={"Authorization": auth(user, pw)})
            self.assertEqual(status, 401)
            self.assertIn("Basic", hdrs["www-authenticate"])
        status, hdrs, _ = self.http.request("GET", "/.well-known/jmap", user_auth=False)
        self.assertEqual(status, 401)
        status, _, _ = self.api([["Core/echo", {}, "c"]], user_auth=False)
        self.assertEqual(status, 401)

    def test_not_json_is_400_not_json(self):
        for raw in ("this is not json", "{\"using\": [", "\xff\xfe", "[" * 5000 + "]" * 5000):
            status, hdrs, body = self.api(None, raw=raw)
            self.assertEqual(status, 400, raw[:20])
            self.assertEqual(body["type"], "urn:ietf:params:jmap:error:notJSON")
            self.assertEqual(body["status"], 400)
            self.assertIn("problem+json", hdrs["content-type"])

    def test_request_level_errors(self):
        cases = [
            ('[1, 2]', "notRequest"),
            ('{"using": "x", "methodCalls": []}', "notRequest"),
            ('{"using": [], "methodCalls": [["Core/echo", {}]]}', "notRequest"),
            ('{"using": [], "methodCalls": [], "extra": 1}', "notRequest"),
            ('{"using": ["urn:example:nope"], "methodCalls": []}', "unknownCapability"),
        ]
        for raw, kind in cases:
            status, _, body = self.api(None, raw=raw)
            self.assertEqual(status, 400, raw)
            self.assertEqual(body["type"], "urn:ietf:params:jmap:error:" + kind, raw)
        calls = [["Core/echo", {}, str(i)] for i in range(9)]
        status, _, body = self.api(calls)
        self.assertEqual(status, 400)
        self.assertEqual(body["type"], "urn:ietf:params:jmap:error:limit")
        self.assertEqual(body["limit"], "maxCallsInRequest")

    def test_method_errors_and_echo(self):
        status, _, body = self.api([
            ["Core/echo", {"x": [1, {"y": None}]}, "a"],
            ["Nope/get", {}, "b"],
            ["Mailbox/get", {"accountId": "a424242"}, "c"],
            ["Mailbox/get", {"accountId": self.account, "bogus": 1}, "d"],
            ["Email/get", {"accountId": self.account, "ids": "notalist"}, "e"],
            ["Email/get", {"accountId": self.account, "ids": ["nosuch"]}, "f"],
        ])
        self.assertEqual(status, 200)
        r = body["methodResponses"]
        self.assertEqual(r[0], ["Core/echo", {"x": [1, {"y": None}]}, "a"])
        self.assertEqual(r[1][0:2], ["error", {"type": "unknownMethod", "description": "no method Nope/get"}])
        self.assertEqual(r[2][1]["type"], "accountNotFound")
        self.assertEqual(r[3][1]["type"], "invalidArguments")
        self.assertEqual(r[4][1]["type"], "invalidArguments")
        self.assertEqual(r[5][0], "Email/get")
        self.assertEqual(r[5][1]["notFound"], ["nosuch"])
        self.assertIn("sessionState", body)
        # A mail method without the mail capability in "using" is unknown.
        status, _, body = self.api([["Mailbox/get", {"accountId": self.account}, "x"]],
                                   using=(CORE,))
        self.assertEqual(body["methodResponses"][0][1]["type"], "unknownMethod")

    def test_result_references_and_created_ids(self):
        self.deliver("ref test")
        status, _, body = self.api([
            ["Mailbox/query", {"accountId": self.account, "filter": {"role": "inbox"}}, "0"],
            ["Email/query", {"accountId": self.account,
                             "#filter": {"resultOf": "0", "name": "Mailbox/query", "path": "/ids/0"}},
             "1"],
            ["Email/query", {"accountId": self.account, "#filter": {
                "resultOf": "0", "name": "Mailbox/query", "path": "/nothing"}}, "2"],
            ["Email/query", {"accountId": self.account, "filter": {"subject": "ref test"}}, "3"],
            ["Email/get", {"accountId": self.account, "properties": ["subject"],
                           "#ids": {"resultOf": "3", "name": "Email/query", "path": "/ids"}}, "4"],
        ])
        r = body["methodResponses"]
        # "#filter" resolved to a mailbox id, not a FilterCondition: invalid.
        self.assertEqual(r[1][1]["type"], "invalidArguments")
        self.assertEqual(r[2][1]["type"], "invalidResultReference")
        self.assertEqual(r[4][0], "Email/get")
        self.assertEqual([e["subject"] for e in r[4][1]["list"]], ["ref test"])
        # createdIds: given ones are echoed back, with the ones created.
        inbox = self.inbox()
        status, _, body = self.api([
            ["Email/set", {"accountId": self.account, "create": {"k1": {
                "mailboxIds": {inbox: True}, "subject": "made here",
                "bodyValues": {"t": {"value": "x"}}, "textBody": [{"partId": "t"}]}}}, "0"],
            ["Email/get", {"accountId": self.account, "ids": ["#k1"], "properties": ["subject"]}, "1"],
        ], extra={"createdIds": {"old": "e1234"}})
        self.assertEqual(body["createdIds"]["old"], "e1234")
        new_id = body["methodResponses"][0][1]["created"]["k1"]["id"]
        self.assertEqual(body["createdIds"]["k1"], new_id)
        self.assertEqual(body["methodResponses"][1][1]["list"][0]["subject"], "made here")

    def inbox(self):
        _, _, body = self.api([["Mailbox/query", {"accountId": self.account,
                                                   "filter": {"role": "inbox"}}, "0"]])
        return body["methodResponses"][0][1]["ids"][0]

    def email_state(self):
        _, _, body = self.api([["Email/get", {"accountId": self.account, "ids": []}, "0"]])
        return body["methodResponses"][0][1]["state"]

    def test_bob_cannot_read_alices_mail(self):
        self.deliver("secret of alice")
        _, _, body = self.api([["Email/query", {"accountId": self.account,
                                                 "filter": {"subject": "secret of alice"}}, "0"]])
        ids = body["methodResponses"][0][1]["ids"]
        self.assertEqual(len(ids), 1)
        bob = {"Authorization": auth(f"bob@{DOMAIN}")}
        status, _, raw = self.http.request(
            "POST", self.session["apiUrl"], json.dumps({"using": [CORE, MAIL], "methodCalls": [
                ["Email/get", {"ids": ids, "properties": ["subject"]}, "0"],
                ["Email/get", {"accountId": self.account, "ids": ids}, "1"],
                ["Email/set", {"update": {ids[0]: {"keywords": {"$seen": True}}}}, "2"],
            ]}), bob, user_auth=False)
        r = json.loads(raw)["methodResponses"]
        self.assertEqual(r[0][1]["notFound"], ids)
        self.assertEqual(r[1][1]["type"], "accountNotFound")
        self.assertEqual(r[2][1]["notUpdated"][ids[0]]["type"], "notFound")
        status, _, _ = self.http.request(
            "GET", f"/jmap/download/{self.account}/b{'0' * 64}/x", headers=bob, user_auth=False)
        self.assertEqual(status, 404)

    def test_eventsource_push_for_smtp_and_imap_changes(self):
        url = self.session["eventSourceUrl"].replace("{types}", "*").replace(
            "{closeafter}", "no").replace("{ping}", "1")
        u = urllib.parse.urlsplit(url)
        s = socket.create_connection(("127.0.0.1", self.server.http_port), timeout=20)
        s.sendall(f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth()}\r\n"
                  "Accept: text/event-stream\r\n\r\n".encode())
        events = []
        buf = [b""]

        def reader():
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf[0] += d
                    while b"\n\n" in buf[0]:
                        ev, buf[0] = buf[0].split(b"\n\n", 1)
                        events.append((time.time(), ev.decode()))
            except OSError:
                return

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            deadline = time.time() + 10
            while not any("event: ping" in e for _, e in events) and time.time() < deadline:
                time.sleep(0.05)
            self.assertTrue(any("event: ping" in e for _, e in events), events)
            self.assertIn("text/event-stream", events[0][1])
            before = self.email_state()
            # SMTP delivery -> StateChange within 1 s.
            n = len(events)
            sent = time.time()
            self.deliver("pushed")
            state_event = self.wait_state(events, n, 5)
            self.assertLess(state_event[0] - sent, 1.0 + 1.0)  # delivery itself included
            data = json.loads(state_event[1].split("data: ", 1)[1])
            self.assertEqual(data["@type"], "StateChange")
            self.assertIn("Email", data["changed"][self.account])
            # IMAP STORE -> StateChange within 1 s, and Email/changes shows the update.
            mid_state = self.email_state()
            self.assertNotEqual(mid_state, before)
            im = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
            im.login(ALICE, PASSWORD)
            im.select("INBOX")
            _, data = im.search(None, "SUBJECT", "pushed")
            uid = data[0].split()[-1]
            n = len(events)
            stored = time.time()
            im.store(uid, "+FLAGS", "(\\Flagged)")
            ev = self.wait_state(events, n, 5)
            self.assertLess(ev[0] - stored, 1.0)
            _, _, body = self.api([["Email/changes", {"accountId": self.account,
                                                       "sinceState": mid_state}, "0"]])
            ch = body["methodResponses"][0][1]
            self.assertEqual(len(ch["updated"]), 1, ch)
            _, _, body = self.api([["Email/get", {"accountId": self.account, "ids": ch["updated"],
                                                   "properties": ["keywords", "subject"]}, "0"]])
            got = body["methodResponses"][0][1]["list"][0]
            self.assertEqual(got["subject"], "pushed")
            self.assertTrue(got["keywords"].get("$flagged"))
            im.logout()
        finally:
            s.close()

    def wait_state(self, events, n, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in events[n:]:
                if "event: state" in e[1]:
                    return e
            time.sleep(0.02)
        raise AssertionError(f"no state event; events: {events[n:]}")

    def test_jmap_change_seen_by_imap_idle(self):
        self.deliver("idle target")
        _, _, body = self.api([["Email/query", {"accountId": self.account,
                                                 "filter": {"subject": "idle target"}}, "0"]])
        eid = body["methodResponses"][0][1]["ids"][0]
        im = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
        im.login(ALICE, PASSWORD)
        im.select("INBOX")
        tag = im._new_tag().decode()
        im.send(f"{tag} IDLE\r\n".encode())
        self.assertTrue(im.readline().startswith(b"+"))
        _, _, body = self.api([["Email/set", {"accountId": self.account, "update": {
            eid: {"keywords/$seen": True}}}, "0"]])
        self.assertIn(eid, body["methodResponses"][0][1]["updated"])
        im.sock.settimeout(5)
        line = im.readline()
        self.assertIn(b"FETCH", line)
        self.assertIn(b"\\Seen", line)
        im.send(b"DONE\r\n")
        im.sock.settimeout(10)
        while not im.readline().startswith(tag.encode()):
            pass
        im.logout()

    def test_search_snippets_highlight_the_terms(self):
        self.deliver("Budget <draft> for Q3", "Some words first. The budget is 10 & rising.")
        flt = {"text": "budget"}
        _, _, body = self.api([
            ["Email/query", {"accountId": self.account, "filter": flt}, "q"],
            ["SearchSnippet/get", {"accountId": self.account, "filter": flt,
                                   "#emailIds": {"resultOf": "q", "name": "Email/query",
                                                 "path": "/ids"}}, "s"],
            ["SearchSnippet/get", {"accountId": self.account, "filter": flt,
                                   "emailIds": ["e000000000000000000000000"]}, "n"]])
        r = body["methodResponses"]
        self.assertEqual(r[1][0], "SearchSnippet/get", r)
        sn = r[1][1]["list"][0]
        self.assertEqual(sn["subject"], "<mark>Budget</mark> &lt;draft&gt; for Q3")
        self.assertEqual(sn["preview"], "Some words first. The <mark>budget</mark> is 10 &amp; rising.")
        self.assertEqual(r[2][1]["notFound"], ["e000000000000000000000000"])

    def test_threads_follow_references_and_in_reply_to(self):
        tag = str(time.time_ns())
        root = f"<root.{tag}@remote.test>"
        mails = [
            f"Message-ID: {root}\r\nSubject: plan {tag}\r\n",
            f"Message-ID: <r1.{tag}@remote.test>\r\nIn-Reply-To: {root}\r\n"
            f"References: {root}\r\nSubject: Re: plan {tag}\r\n",
            f"Message-ID: <r2.{tag}@remote.test>\r\nIn-Reply-To: <r1.{tag}@remote.test>\r\n"
            f"References: {root} <r1.{tag}@remote.test>\r\nSubject: Re: plan {tag}\r\n",
            f"Message-ID: <other.{tag}@remote.test>\r\nSubject: Re: plan {tag}\r\n",
        ]
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            for i, head in enumerate(mails):
                s.sendmail("sender@remote.test", [ALICE],
                           f"From: sender@remote.test\r\nTo: {ALICE}\r\n{head}"
                           f"Date: Mon, 1 Dec 2025 10:0{i}:00 +0000\r\n\r\nbody {i}\r\n")
                time.sleep(1.1)  # distinct receivedAt, so the order is defined
        flt = {"subject": f"plan {tag}"}
        _, _, body = self.api([
            ["Email/query", {"accountId": self.account, "filter": flt,
                             "sort": [{"property": "receivedAt", "isAscending": True}]}, "q"],
            ["Email/get", {"accountId": self.account, "#ids": {
                "resultOf": "q", "name": "Email/query", "path": "/ids"},
                "properties": ["threadId", "messageId"]}, "g"],
            ["Email/query", {"accountId": self.account, "filter": flt,
                             "collapseThreads": True, "calculateTotal": True}, "c"]])
        r = body["methodResponses"]
        ids = r[0][1]["ids"]
        self.assertEqual(len(ids), 4)
        tid = {e["id"]: e["threadId"] for e in r[1][1]["list"]}
        self.assertEqual(tid[ids[0]], tid[ids[1]])
        self.assertEqual(tid[ids[0]], tid[ids[2]])
        self.assertNotEqual(tid[ids[0]], tid[ids[3]])
        self.assertEqual(r[2][1]["total"], 2)
        _, _, body = self.api([["Thread/get", {"accountId": self.account,
                                               "ids": [tid[ids[0]], tid[ids[3]], "tnope"]}, "t"]])
        t = body["methodResponses"][0][1]
        self.assertEqual(t["list"][0]["emailIds"], ids[:3])
        self.assertEqual(t["list"][1]["emailIds"], [ids[3]])
        self.assertEqual(t["notFound"], ["tnope"])
        # The same ids after a restart (derived from the messages alone).
        self.server.stop()
        self.server.start()
        _, _, body = self.api([["Email/get", {"accountId": self.account, "ids": ids,
                                              "properties": ["threadId"]}, "g"]])
        self.assertEqual({e["id"]: e["threadId"] for e in body["methodResponses"][0][1]["list"]},
                         tid)

    def upload(self, raw, ctype="message/rfc822"):
        up = self.session["uploadUrl"].replace("{accountId}", self.account)
        status, _, data = self.http.request("POST", up, raw, {"Content-Type": ctype})
        self.assertEqual(status, 201, data)
        return json.loads(data)["blobId"]

    def test_email_parse_of_an_uploaded_message(self):
        blob = self.upload(f"From: Ann <ann@remote.test>\r\nTo: {ALICE}\r\nSubject: parsed "
                           "=?UTF-8?B?44GC?=\r\nMessage-ID: <p1@remote.test>\r\n\r\nhello parse\r\n")
        junk = self.upload("\x00\x01 not a message", "application/octet-stream")
        _, _, body = self.api([["Email/parse", {
            "accountId": self.account, "blobIds": [blob, junk, "b" + "0" * 64],
            "fetchTextBodyValues": True}, "p"]])
        r = body["methodResponses"][0][1]
        e = r["parsed"][blob]
        self.assertEqual(e["subject"], "parsed \u3042")
        self.assertEqual(e["from"], [{"name": "Ann", "email": "ann@remote.test"}])
        self.assertEqual(e["messageId"], ["p1@remote.test"])
        part = e["textBody"][0]["partId"]
        self.assertEqual(e["bodyValues"][part]["value"].strip(), "hello parse")
        self.assertEqual(r["notParsable"], [junk])
        self.assertEqual(r["notFound"], ["b" + "0" * 64])

    def test_query_changes_report_added_and_removed(self):
        tag = str(time.time_ns())
        flt = {"subject": f"qc {tag}"}
        self.deliver(f"qc {tag} one")
        _, _, body = self.api([["Email/query", {"accountId": self.account, "filter": flt}, "q"]])
        q = body["methodResponses"][0][1]
        self.assertTrue(q["canCalculateChanges"])
        old_state, (first,) = q["queryState"], q["ids"]
        self.deliver(f"qc {tag} two")
        _, _, body = self.api([
            ["Email/set", {"accountId": self.account, "destroy": [first]}, "d"],
            ["Email/query", {"accountId": self.account, "filter": flt}, "q"],
            ["Email/queryChanges", {"accountId": self.account, "filter": flt,
                                    "sinceQueryState": old_state, "calculateTotal": True}, "c"],
            ["Email/queryChanges", {"accountId": self.account, "filter": flt,
                                    "sinceQueryState": "garbage"}, "x"]])
        r = body["methodResponses"]
        (second,) = r[1][1]["ids"]
        c = r[2][1]
        self.assertEqual(c["oldQueryState"], old_state)
        self.assertEqual(c["newQueryState"], r[1][1]["queryState"])
        self.assertIn(first, c["removed"])
        self.assertEqual(c["added"], [{"id": second, "index": 0}])
        self.assertEqual(c["total"], 1)
        self.assertEqual(r[3][1]["type"], "cannotCalculateChanges")

    def changes_in_steps(self, method, state, max_changes, using=(CORE, MAIL)):
        """Loops `method` with maxChanges from `state` until hasMoreChanges is
        false; returns the sets of ids per kind and the final state."""
        seen = {"created": set(), "updated": set(), "destroyed": set()}
        for _ in range(100):
            _, _, body = self.api([[method, {"accountId": self.account, "sinceState": state,
                                             "maxChanges": max_changes}, "c"]], using=using)
            name, r, _ = body["methodResponses"][0]
            self.assertEqual(name, method, r)
            self.assertEqual(r["oldState"], state)
            self.assertLessEqual(len(r["created"]) + len(r["updated"]) + len(r["destroyed"]),
                                 max_changes)
            for k in seen:
                seen[k] |= set(r[k])
            state = r["newState"]
            if not r["hasMoreChanges"]:
                return seen, state
        self.fail(f"{method} never reached hasMoreChanges false")

    def test_changes_with_max_changes_move_through_intermediate_states(self):
        # RFC 8620 section 5.2: no more than maxChanges ids per /changes, and
        # the intermediate states together give every change a single call
        # gives: Emails created, updated (keywords, a move between Mailboxes)
        # and destroyed in three Mailboxes.
        tag = str(time.time_ns())
        _, _, body = self.api([
            ["Mailbox/set", {"accountId": self.account, "create": {
                k: {"name": f"mc{tag}{k}", "parentId": None} for k in "abc"}}, "s"]])
        box = {k: v["id"] for k, v in body["methodResponses"][0][1]["created"].items()}

        def create(mailbox, n):
            _, _, body = self.api([["Email/set", {"accountId": self.account, "create": {
                "k": {"mailboxIds": {box[mailbox]: True}, "subject": f"mc {tag} {n}",
                      "bodyValues": {"t": {"value": f"body {tag} {n}"}},
                      "textBody": [{"partId": "t"}]}}}, "e"]])
            return body["methodResponses"][0][1]["created"]["k"]["id"]

        old = [create(k, f"old{k}{i}") for k in "abc" for i in range(2)]
        _, _, body = self.api([
            ["Email/get", {"accountId": self.account, "ids": []}, "e"],
            ["Mailbox/get", {"accountId": self.account, "ids": []}, "m"],
            ["Thread/get", {"accountId": self.account, "ids": []}, "t"]])
        e_state, m_state, t_state = (x[1]["state"] for x in body["methodResponses"])
        new = [create(k, f"new{k}{i}") for i in range(8) for k in "abc"]
        set_ = lambda args: self.api([["Email/set", {"accountId": self.account, **args}, "u"]])
        set_({"update": {old[0]: {"keywords/$seen": True}}})
        set_({"update": {old[1]: {"mailboxIds": {box["b"]: True}}}})  # a -> b
        set_({"update": {new[1]: {"mailboxIds": {box["c"]: True}}}})  # b -> c
        set_({"update": {new[0]: {"keywords/$flagged": True}}})
        set_({"destroy": [old[4], new[2]]})
        _, _, body = self.api([["Mailbox/set", {"accountId": self.account, "create": {
            "d": {"name": f"mc{tag}d", "parentId": None}}}, "s"]])

        for method, state in (("Email/changes", e_state), ("Thread/changes", t_state),
                              ("Mailbox/changes", m_state)):
            _, _, body = self.api([[method, {"accountId": self.account,
                                             "sinceState": state}, "c"]])
            whole = body["methodResponses"][0][1]
            self.assertIs(whole.get("hasMoreChanges"), False, (method, whole))
            stepped, final = self.changes_in_steps(method, state,
                                                   2 if method == "Mailbox/changes" else 4)
            self.assertEqual(final, whole["newState"], method)
            every = set(whole["created"]) | set(whole["updated"]) | set(whole["destroyed"])
            self.assertEqual(stepped["created"] | stepped["updated"] | stepped["destroyed"],
                             every, method)
            # What a single call destroys, the steps destroy; what it creates
            # is never called destroyed.
            self.assertEqual(stepped["destroyed"], set(whole["destroyed"]), method)
            self.assertLessEqual(set(whole["created"]), stepped["created"], method)
            for bad in (0, -1, "4"):
                _, _, body = self.api([[method, {"accountId": self.account, "sinceState": state,
                                                 "maxChanges": bad}, "c"]])
                self.assertEqual(body["methodResponses"][0][1]["type"], "invalidArguments")
            if method == "Email/changes":
                self.assertGreaterEqual(len(every), 25)
                self.assertLessEqual({old[0], old[1], new[0], new[1]}, every)
                self.assertLessEqual({old[4], new[2]}, set(whole["destroyed"]))
                # A moved Email the old state had is updated, not created.
                self.assertIn(old[1], whole["updated"])
                self.assertNotIn(old[1], stepped["created"] - stepped["updated"])

    def mailbox_query(self, flt):
        args = {"accountId": self.account}
        if flt is not None:
            args["filter"] = flt
        _, _, body = self.api([["Mailbox/query", args, "q"]])
        return body["methodResponses"][0][1]

    def test_mailbox_query_changes_bring_cached_ids_up_to_date(self):
        # RFC 8621 section 2.4 / RFC 8620 section 5.6: a client caches two
        # queries' ids; mailboxes are created, renamed (into, out of and
        # within the filter) and destroyed over JMAP and IMAP; applying
        # /queryChanges to the cached ids gives exactly what /query gives now.
        tag = str(time.time_ns())
        pre = f"QC{tag}"
        names = {k: f"{pre}-{k}" for k in ("b", "d", "f", "g", "h")}
        _, _, body = self.api([["Mailbox/set", {"accountId": self.account, "create": {
            k: {"name": n, "parentId": None} for k, n in names.items()}}, "s"]])
        made = {k: v["id"] for k, v in body["methodResponses"][0][1]["created"].items()}
        self.assertEqual(sorted(made), sorted(names))
        queries = [{"name": pre.lower()}, None]
        cached = []
        for flt in queries:
            q = self.mailbox_query(flt)
            self.assertTrue(q["canCalculateChanges"])
            cached.append((q["queryState"], list(q["ids"])))
        self.assertEqual(len(cached[0][1]), 5)

        _, _, body = self.api([["Mailbox/set", {
            "accountId": self.account,
            "create": {"c": {"name": f"{pre}-c", "parentId": None}},
            "update": {made["d"]: {"name": f"Out{tag}"},     # leaves the filter
                       made["b"]: {"name": f"{pre}-z"}},     # moves to the end
            "destroy": [made["g"]]}, "s"]])
        r = body["methodResponses"][0][1]
        self.assertIn("c", r["created"], r)
        self.assertEqual(r["destroyed"], [made["g"]], r)
        im = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
        im.login(ALICE, PASSWORD)
        self.assertEqual(im.create(f"{pre}-a")[0], "OK")
        self.assertEqual(im.create(f"Zin{tag}")[0], "OK")
        self.assertEqual(im.rename(f"Zin{tag}", f"{pre}-e")[0], "OK")  # enters the filter
        self.assertEqual(im.rename(f"{pre}-h", f"{pre}-0")[0], "OK")   # moves to the front
        self.assertEqual(im.delete(f"{pre}-f")[0], "OK")
        im.logout()
        self.deliver(f"{pre} counts only")  # the Inbox's counts change too

        for flt, (state, ids) in zip(queries, cached):
            args = {"accountId": self.account, "sinceQueryState": state,
                    "calculateTotal": True}
            if flt is not None:
                args["filter"] = flt
            _, _, body = self.api([["Mailbox/queryChanges", args, "c"]])
            c = body["methodResponses"][0][1]
            now = self.mailbox_query(flt)
            self.assertEqual(c["oldQueryState"], state)
            self.assertEqual(c["newQueryState"], now["queryState"])
            self.assertEqual(c["total"], len(now["ids"]))
            got = [i for i in ids if i not in set(c["removed"])]
            for a in sorted(c["added"], key=lambda a: a["index"]):
                got.insert(a["index"], a["id"])
            self.assertEqual(got, now["ids"], (flt, c))
            self.assertIn(made["g"], c["removed"])
            self.assertIn(made["f"], c["removed"])
        self.assertEqual(len(self.mailbox_query(queries[0])["ids"]), 5)

        # Errors (RFC 8620 section 5.6).
        state = self.mailbox_query(None)["queryState"]
        im = imaplib.IMAP4("127.0.0.1", self.server.imap_port)
        im.login(ALICE, PASSWORD)
        self.assertEqual(im.create(f"{pre}-x")[0], "OK")
        self.assertEqual(im.create(f"{pre}-y")[0], "OK")
        im.logout()
        a = {"accountId": self.account}
        _, _, body = self.api([
            ["Mailbox/queryChanges", {**a, "sinceQueryState": "garbage"}, "0"],
            ["Mailbox/queryChanges", a, "1"],
            ["Mailbox/queryChanges", {**a, "sinceQueryState": state, "maxChanges": 3}, "2"],
            ["Mailbox/queryChanges", {**a, "sinceQueryState": state, "maxChanges": 0}, "3"],
            ["Mailbox/queryChanges", {**a, "sinceQueryState": state, "bogus": 1}, "4"],
            ["Mailbox/queryChanges", {**a, "sinceQueryState": state, "maxChanges": 4}, "5"]])
        r = body["methodResponses"]
        self.assertEqual([x[1].get("type") for x in r[:5]],
                         ["cannotCalculateChanges", "invalidArguments", "tooManyChanges",
                          "invalidArguments", "invalidArguments"])
        self.assertEqual(r[5][0], "Mailbox/queryChanges")
        self.assertEqual(len(r[5][1]["removed"]), 2)
        self.assertEqual(len(r[5][1]["added"]), 2)

    # --- Mailbox/query (RFC 8621 section 2.3, RFC 8620 section 5.5) ---

    def mailbox_tree(self):
        """A tree of its own: {t}-a and {t}-b at the top, {t}-c and {t}-z
        (unsubscribed) under b, {t}-0 under z. Every leaf name holds t, so a
        name filter selects exactly these five. Returns (t, ids by letter)."""
        t = f"MQ{time.time_ns()}"
        a = {"accountId": self.account}
        _, _, body = self.api([
            ["Mailbox/set", {**a, "create": {
                "a": {"name": f"{t}-a", "parentId": None},
                "b": {"name": f"{t}-b", "parentId": None}}}, "0"],
            ["Mailbox/set", {**a, "create": {
                "c": {"name": f"{t}-c", "parentId": "#b"},
                "z": {"name": f"{t}-z", "parentId": "#b", "isSubscribed": False}}}, "1"],
            ["Mailbox/set", {**a, "create": {
                "0": {"name": f"{t}-0", "parentId": "#z"}}}, "2"]])
        ids = {}
        for r in body["methodResponses"]:
            ids.update({k: v["id"] for k, v in r[1]["created"].items()})
        self.assertEqual(sorted(ids), ["0", "a", "b", "c", "z"], body)
        return t, ids

    def mq(self, **args):
        _, _, body = self.api([["Mailbox/query", {"accountId": self.account, **args}, "q"]])
        return body["methodResponses"][0]

    def test_mailbox_query_filters_parent_id_and_operators(self):
        t, m = self.mailbox_tree()
        by_name = [{"property": "name"}]
        ids = lambda **kw: self.mq(sort=by_name, **kw)[1]["ids"]
        # parentId: the children of one Mailbox; null: top-level ones.
        self.assertEqual(ids(filter={"parentId": m["b"]}), [m["c"], m["z"]])
        self.assertEqual(ids(filter={"operator": "AND", "conditions": [
            {"parentId": None}, {"name": t}]}), [m["a"], m["b"]])
        # name matches the Mailbox's own name (the leaf), not its path.
        self.assertEqual(ids(filter={"name": f"{t}-0"}), [m["0"]])
        self.assertEqual(ids(filter={"operator": "OR", "conditions": [
            {"name": f"{t}-a"}, {"name": f"{t}-c"}]}), [m["a"], m["c"]])
        self.assertEqual(ids(filter={"operator": "AND", "conditions": [
            {"name": t}, {"operator": "NOT", "conditions": [
                {"isSubscribed": False}, {"parentId": m["b"]}]}]}), [m["0"], m["a"], m["b"]])

    def test_mailbox_query_sorts_by_name_and_sort_order(self):
        t, m = self.mailbox_tree()
        flt = {"name": t}
        self.assertEqual(self.mq(filter=flt, sort=[{"property": "name"}])[1]["ids"],
                         [m[k] for k in "0abcz"])
        self.assertEqual(self.mq(filter=flt, sort=[
            {"property": "name", "isAscending": False}])[1]["ids"], [m[k] for k in "zcba0"])
        # sortOrder: the Inbox (0) before the others (10), then by name.
        inbox = self.mq(filter={"role": "inbox"})[1]["ids"][0]
        got = self.mq(filter={"operator": "OR", "conditions": [flt, {"role": "inbox"}]},
                      sort=[{"property": "sortOrder", "isAscending": False},
                            {"property": "name"}])[1]["ids"]
        self.assertEqual(got, [m[k] for k in "0abcz"] + [inbox])

    def test_mailbox_query_sort_as_tree_and_filter_as_tree(self):
        # Section 2.3: with sortAsTree an ancestor comes first whatever the
        # comparators say, and two others compare as their nearest ancestors
        # with the same parent do; with filterAsTree a Mailbox is in the
        # results only if all its ancestors are.
        t, m = self.mailbox_tree()
        flt = {"name": t}
        tree = lambda **kw: self.mq(sortAsTree=True, **kw)[1]["ids"]
        self.assertEqual(tree(filter=flt, sort=[{"property": "name"}]),
                         [m[k] for k in "abcz0"])
        self.assertEqual(tree(filter=flt, sort=[{"property": "name", "isAscending": False}]),
                         [m[k] for k in "bz0ca"])
        # z is filtered out but 0 (under z) stays, placed as z would be: after c.
        sub = {"operator": "AND", "conditions": [flt, {"isSubscribed": True}]}
        self.assertEqual(tree(filter=sub, sort=[{"property": "name"}]), [m[k] for k in "abc0"])
        # filterAsTree: 0 goes with its parent z.
        self.assertEqual(tree(filter=sub, filterAsTree=True, sort=[{"property": "name"}]),
                         [m[k] for k in "abc"])
        self.assertEqual(self.mq(filter=sub, filterAsTree=True, sort=[{"property": "name"}])[1]
                         ["ids"], [m[k] for k in "abc"])

    def test_mailbox_query_position_anchor_limit_and_total(self):
        t, m = self.mailbox_tree()
        q = lambda **kw: self.mq(filter={"name": t}, sort=[{"property": "name"}], **kw)[1]
        order = [m[k] for k in "0abcz"]
        self.assertNotIn("total", q())                       # only when asked
        self.assertEqual(q(calculateTotal=True)["total"], 5)
        r = q(position=1, limit=2)
        self.assertEqual((r["position"], r["ids"]), (1, order[1:3]))
        r = q(position=-2)                                   # from the end
        self.assertEqual((r["position"], r["ids"]), (3, order[3:]))
        r = q(position=9)                                    # past the end: empty, no error
        self.assertEqual(r["ids"], [])
        r = q(anchor=m["b"], anchorOffset=-1, limit=2, position=4)  # position ignored
        self.assertEqual((r["position"], r["ids"]), (1, order[1:3]))
        r = q(anchor=m["a"], anchorOffset=-5)                # clamped to 0
        self.assertEqual((r["position"], r["ids"]), (0, order))
        r = q(anchor=m["a"], anchorOffset=2**63 - 1)         # no overflow: past the end
        self.assertEqual(r["ids"], [])
        self.assertEqual(self.mq(filter={"name": t}, anchor="m999999")[1]["type"],
                         "anchorNotFound")
        self.assertEqual(self.mq(limit=-1)[1]["type"], "invalidArguments")

    def test_mailbox_query_errors(self):
        bad = [({"sort": [{"property": "totalEmails"}]}, "unsupportedSort"),
               ({"filter": {"hasEmails": True}}, "unsupportedFilter"),
               ({"filter": {"operator": "XOR", "conditions": []}}, "invalidArguments"),
               ({"filter": {"parentId": 5}}, "invalidArguments"),
               ({"filter": {"operator": "AND"}}, "invalidArguments"),
               ({"filter": [{"name": "x"}]}, "invalidArguments"),
               ({"sortAsTree": "yes"}, "invalidArguments"),
               ({"calculateTotal": 1}, "invalidArguments"),
               ({"position": 2**63}, "invalidArguments"),
               ({"position": 1.5}, "invalidArguments")]
        self.assertEqual([self.mq(**args)[1].get("type") for args, _ in bad],
                         [want for _, want in bad])

    def test_mailbox_query_changes_follow_a_name_sort(self):
        # A sorted query stays exact (RFC 8620 section 5.6): a renamed
        # Mailbox moves, a new one lands at its index.
        t, m = self.mailbox_tree()
        args = {"accountId": self.account, "filter": {"name": t},
                "sort": [{"property": "name", "isAscending": False}]}
        q = self.mq(**{k: v for k, v in args.items() if k != "accountId"})[1]
        self.assertTrue(q["canCalculateChanges"])
        _, _, body = self.api([["Mailbox/set", {
            "accountId": self.account, "create": {"n": {"name": f"{t}-m", "parentId": m["a"]}},
            "update": {m["c"]: {"name": f"{t}-y"}}}, "s"]])
        self.assertIn("n", body["methodResponses"][0][1]["created"])
        _, _, body = self.api([["Mailbox/queryChanges",
                                {**args, "sinceQueryState": q["queryState"]}, "c"]])
        c = body["methodResponses"][0][1]
        got = [i for i in q["ids"] if i not in set(c["removed"])]
        for a in sorted(c["added"], key=lambda a: a["index"]):
            got.insert(a["index"], a["id"])
        now = self.mq(**{k: v for k, v in args.items() if k != "accountId"})[1]["ids"]
        self.assertEqual(got, now)
        self.assertEqual(now[:2], [m["z"], m["c"]])  # z, then y (was c)

    def test_mailbox_query_changes_refuse_queries_on_the_parent(self):
        # IMAP may create or delete a parent without its child changing, so
        # queries reading the parent are not tracked (RFC 8620 section 5.6).
        t, m = self.mailbox_tree()
        a = {"accountId": self.account}
        state = self.mq(filter={"name": t})[1]["queryState"]
        for args in ({"filter": {"parentId": m["b"]}}, {"sortAsTree": True},
                     {"filter": {"name": t}, "filterAsTree": True}):
            self.assertFalse(self.mq(**args)[1]["canCalculateChanges"], args)
            _, _, body = self.api([["Mailbox/queryChanges",
                                    {**a, **args, "sinceQueryState": state}, "c"]])
            self.assertEqual(body["methodResponses"][0][1]["type"], "cannotCalculateChanges")
        self.assertTrue(self.mq(filter={"name": t}, sort=[{"property": "name"}])[1]
                        ["canCalculateChanges"])

    def test_email_copy_has_no_other_account_to_copy_from(self):
        _, _, body = self.api([
            ["Email/copy", {"fromAccountId": "a999", "accountId": self.account,
                            "create": {"c": {"id": "e1", "mailboxIds": {}}}}, "0"],
            ["Email/copy", {"fromAccountId": self.account, "accountId": self.account,
                            "create": {}}, "1"]])
        r = body["methodResponses"]
        self.assertEqual(r[0][1]["type"], "fromAccountNotFound")
        self.assertEqual(r[1][1]["type"], "invalidArguments")

    def test_identity_set_updates_name_and_signature_and_keeps_them(self):
        sub = (CORE, MAIL, SUBMISSION)
        _, _, body = self.api([["Identity/get", {"accountId": self.account}, "0"]], using=sub)
        g = body["methodResponses"][0][1]
        ident = g["list"][0]
        _, _, body = self.api([["Identity/set", {
            "accountId": self.account, "ifInState": g["state"],
            "update": {ident["id"]: {"name": "Alice Liddell", "textSignature": "-- \nA.",
                                     "replyTo": [{"name": None, "email": "a@remote.test"}]},
                       "i-nope": {"name": "x"}},
            "create": {"n": {"email": "other@remote.test"}},
            "destroy": [ident["id"]]}, "0"],
            ["Identity/set", {"accountId": self.account,
                              "update": {ident["id"]: {"email": "evil@remote.test"}}}, "1"],
            ["Identity/set", {"accountId": self.account, "ifInState": g["state"],
                              "update": {ident["id"]: {"name": "late"}}}, "2"]], using=sub)
        r = body["methodResponses"]
        s = r[0][1]
        self.assertIn(ident["id"], s["updated"])
        self.assertEqual(s["notUpdated"]["i-nope"]["type"], "notFound")
        self.assertEqual(s["notCreated"]["n"]["type"], "forbidden")
        self.assertEqual(s["notDestroyed"][ident["id"]]["type"], "forbidden")
        self.assertNotEqual(s["newState"], s["oldState"])
        self.assertEqual(r[1][1]["notUpdated"][ident["id"]]["type"], "invalidProperties")
        self.assertEqual(r[2][1]["type"], "stateMismatch")
        self.server.stop()
        self.server.start()
        _, _, body = self.api([["Identity/get", {"accountId": self.account,
                                                 "ids": [ident["id"]]}, "0"]], using=sub)
        got = body["methodResponses"][0][1]["list"][0]
        self.assertEqual(got["name"], "Alice Liddell")
        self.assertEqual(got["textSignature"], "-- \nA.")
        self.assertEqual(got["replyTo"], [{"name": None, "email": "a@remote.test"}])
        self.assertEqual(got["email"], ALICE)

    def test_email_submission_get_query_changes(self):
        sub = (CORE, MAIL, SUBMISSION)
        inbox = self.inbox()
        _, _, body = self.api([
            ["Identity/get", {"accountId": self.account}, "i"],
            ["EmailSubmission/get", {"accountId": self.account, "ids": []}, "g"],
            ["Email/set", {"accountId": self.account, "create": {
                "m": {"mailboxIds": {inbox: True}, "subject": "tracked submission",
                      "from": [{"email": ALICE}], "to": [{"email": f"bob@{DOMAIN}"}],
                      "bodyValues": {"t": {"value": "x"}}, "textBody": [{"partId": "t"}]}}},
             "e"]], using=sub)
        r = body["methodResponses"]
        identity, state = r[0][1]["list"][0]["id"], r[1][1]["state"]
        email = r[2][1]["created"]["m"]["id"]
        _, _, body = self.api([
            ["EmailSubmission/set", {"accountId": self.account, "ifInState": state, "create": {
                "s": {"emailId": email, "identityId": identity}}}, "s"],
            ["EmailSubmission/get", {"accountId": self.account, "ids": ["#s"]}, "g"],
            ["EmailSubmission/changes", {"accountId": self.account, "sinceState": state}, "c"],
            ["EmailSubmission/query", {"accountId": self.account,
                                       "filter": {"emailIds": [email]}}, "q"],
            ["EmailSubmission/set", {"accountId": self.account, "update": {
                "#s": {"undoStatus": "canceled"}}}, "u"],
            ["EmailSubmission/set", {"accountId": self.account, "ifInState": state,
                                     "destroy": ["#s"]}, "x"]], using=sub)
        r = body["methodResponses"]
        sid = r[0][1]["created"]["s"]["id"]
        self.assertNotEqual(r[0][1]["newState"], state)
        got = r[1][1]["list"][0]
        self.assertEqual(got["emailId"], email)
        self.assertEqual(got["identityId"], identity)
        self.assertEqual(got["undoStatus"], "final")
        self.assertEqual(got["envelope"]["mailFrom"]["email"], ALICE)
        self.assertEqual(got["deliveryStatus"][f"bob@{DOMAIN}"]["delivered"], "yes")
        self.assertEqual(r[2][1]["created"], [sid])
        self.assertEqual(r[3][1]["ids"], [sid])
        self.assertEqual(r[4][1]["notUpdated"][sid]["type"], "cannotUnsend")
        self.assertEqual(r[5][1]["type"], "stateMismatch")
        _, _, body = self.api([
            ["EmailSubmission/set", {"accountId": self.account, "destroy": [sid]}, "x"],
            ["EmailSubmission/get", {"accountId": self.account, "ids": [sid]}, "g"],
            ["EmailSubmission/changes", {"accountId": self.account,
                                         "sinceState": r[0][1]["newState"]}, "c"]], using=sub)
        r = body["methodResponses"]
        self.assertEqual(r[0][1].get("destroyed"), [sid], r)
        self.assertEqual(r[1][1]["notFound"], [sid])
        self.assertEqual(r[2][1].get("destroyed"), [sid], r)

    def test_email_submission_changes_with_max_changes(self):
        # RFC 8620 section 5.2: at most maxChanges ids, intermediate states,
        # and the steps together give what one call gives.
        sub = (CORE, MAIL, SUBMISSION)
        inbox = self.inbox()
        _, _, body = self.api([
            ["Identity/get", {"accountId": self.account}, "i"],
            ["EmailSubmission/get", {"accountId": self.account, "ids": []}, "g"],
            ["Email/set", {"accountId": self.account, "create": {
                f"m{i}": {"mailboxIds": {inbox: True}, "subject": f"stepped submission {i}",
                          "from": [{"email": ALICE}], "to": [{"email": f"bob@{DOMAIN}"}],
                          "bodyValues": {"t": {"value": "x"}}, "textBody": [{"partId": "t"}]}
                for i in range(5)}}, "e"]], using=sub)
        r = body["methodResponses"]
        identity, state = r[0][1]["list"][0]["id"], r[1][1]["state"]
        emails = [r[2][1]["created"][f"m{i}"]["id"] for i in range(5)]
        _, _, body = self.api([["EmailSubmission/set", {"accountId": self.account, "create": {
            f"s{i}": {"emailId": e, "identityId": identity} for i, e in enumerate(emails)}},
            "s"]], using=sub)
        made = [body["methodResponses"][0][1]["created"][f"s{i}"]["id"] for i in range(5)]
        self.api([["EmailSubmission/set", {"accountId": self.account,
                                           "destroy": made[:2]}, "x"]], using=sub)
        _, _, body = self.api([["EmailSubmission/changes", {"accountId": self.account,
                                                            "sinceState": state}, "c"]],
                              using=sub)
        whole = body["methodResponses"][0][1]
        self.assertFalse(whole["hasMoreChanges"])
        self.assertLessEqual(set(made[:2]), set(whole["destroyed"]))
        stepped, final = self.changes_in_steps("EmailSubmission/changes", state, 2, using=sub)
        self.assertEqual(final, whole["newState"])
        every = set(whole["created"]) | set(whole["updated"]) | set(whole["destroyed"])
        self.assertEqual(stepped["created"] | stepped["updated"] | stepped["destroyed"], every)
        self.assertLessEqual(set(whole["destroyed"]), stepped["destroyed"])
        self.assertLessEqual(set(whole["created"]), stepped["created"])

    # --- Submission hygiene: the same rules as SMTP submission (server/message_hygiene.h) ---

    def hostname(self):
        for line in open(os.path.join(self.server.data, "hato.toml")):
            k, _, v = line.split("#")[0].partition("=")
            if k.strip() == "hostname":
                return v.strip().strip('"')
        raise AssertionError("no hostname in hato.toml")

    def test_submission_refuses_an_author_the_account_does_not_own(self):
        inbox = self.inbox()
        _, _, body = self.api([
            ["Identity/get", {"accountId": self.account}, "i"],
            ["Email/set", {"accountId": self.account, "create": {
                "forged": {"mailboxIds": {inbox: True}, "subject": "forged author",
                           "from": [{"email": "ceo@remote.test"}],
                           "to": [{"email": f"bob@{DOMAIN}"}],
                           "bodyValues": {"t": {"value": "x"}}, "textBody": [{"partId": "t"}]},
                "mine": {"mailboxIds": {inbox: True}, "subject": "own author",
                         "from": [{"email": ALICE}], "to": [{"email": f"bob@{DOMAIN}"}],
                         "bodyValues": {"t": {"value": "x"}}, "textBody": [{"partId": "t"}]}}},
             "e"],
        ], using=(CORE, MAIL, SUBMISSION))
        r = body["methodResponses"]
        identity = r[0][1]["list"][0]["id"]
        _, _, body = self.api([
            ["EmailSubmission/set", {"accountId": self.account, "create": {
                "s1": {"emailId": r[1][1]["created"]["forged"]["id"], "identityId": identity},
                "s2": {"emailId": r[1][1]["created"]["mine"]["id"], "identityId": identity}}},
             "s"]], using=(CORE, MAIL, SUBMISSION))
        s = body["methodResponses"][0][1]
        self.assertEqual(s["notCreated"]["s1"]["type"], "forbiddenFrom", s)
        self.assertIn("ceo@remote.test", s["notCreated"]["s1"]["description"])
        self.assertIn("s2", s["created"], s)

    def test_import_removes_authentication_results_naming_our_host(self):
        host = self.hostname()
        raw = (f"Authentication-Results: {host}; dkim=pass header.d=bank.test\r\n"
               "Authentication-Results: mx.other.test; spf=pass\r\n"
               f"From: Bank <alerts@bank.test>\r\nTo: {ALICE}\r\nSubject: imported forged\r\n"
               "\r\nPlease log in.\r\n")
        up = self.session["uploadUrl"].replace("{accountId}", self.account)
        status, _, data = self.http.request("POST", up, raw, {"Content-Type": "message/rfc822"})
        self.assertEqual(status, 201, data)
        blob = json.loads(data)["blobId"]
        _, _, body = self.api([
            ["Email/import", {"accountId": self.account, "emails": {
                "i": {"blobId": blob, "mailboxIds": {self.inbox(): True}}}}, "0"],
            ["Email/get", {"accountId": self.account, "ids": ["#i"],
                           "properties": ["header:Authentication-Results:all"]}, "1"]])
        r = body["methodResponses"]
        self.assertIn("i", r[0][1]["created"], r)
        fields = r[1][1]["list"][0]["header:Authentication-Results:all"]
        self.assertEqual([f.strip() for f in fields], ["mx.other.test; spf=pass"])


class EventSourceSessionTest(unittest.TestCase):
    """EventSource streams are sessions of their account (server/account_sessions.h):
    `hato user passwd` and `hato user remove` (another process) end them."""

    def setUp(self):
        self.server = Server(users=("alice", "bob"))
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def open_stream(self, user):
        s = socket.create_connection(("127.0.0.1", self.server.http_port), timeout=20)
        s.sendall("GET /jmap/eventsource/?types=*&closeafter=no&ping=1 HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: {auth(user)}\r\n\r\n".encode())
        data = b""
        while b": hato" not in data:
            chunk = s.recv(65536)
            self.assertTrue(chunk, data)
            data += chunk
        return s

    def assert_closed(self, s, within):
        deadline = time.time() + within
        s.settimeout(0.5)
        while time.time() < deadline:
            try:
                if s.recv(65536) == b"":
                    return
            except socket.timeout:
                pass
            except OSError:
                return
        self.fail("the EventSource stream is still open")

    def assert_open(self, s):
        s.settimeout(3)
        self.assertIn(b"event: ping", s.recv(65536))

    def test_passwd_and_remove_end_eventsource_streams(self):
        alice = self.open_stream(ALICE)
        bob = self.open_stream(f"bob@{DOMAIN}")
        run_cli("user", "passwd", ALICE, "--password-stdin", data=self.server.data,
                input="new-secret-2\n")
        self.assert_closed(alice, 5)
        self.assert_open(bob)
        run_cli("user", "remove", f"bob@{DOMAIN}", data=self.server.data)
        self.assert_closed(bob, 5)
        alice.close()
        bob.close()


class IdentityFaultTest(unittest.TestCase):
    """Identity/set under injected storage faults (io/fault_fs.h): a failed
    write is serverFail and changes nothing; when the fault clears it works.
    Identities live in the store: the fault is the metadata's fsync (the
    embedded store; PostgreSQL writes do not pass the fault seam)."""

    def setUp(self):
        if pg_cluster.store_is_postgres():
            self.skipTest("faults are injected into the embedded store's files")
        self.server = Server(users=("alice",))
        self.faults = os.path.join(self.server.data, "faults")
        self.set_faults("")
        self.server.start(env={"HATO_FAULTS_FILE": self.faults})
        self.http = Http(self.server.http_port)

    def tearDown(self):
        self.server.cleanup()

    def set_faults(self, text):
        with open(self.faults + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.faults + ".tmp", self.faults)
        time.sleep(0.2)  # re-read at most every 50 ms

    def api(self, calls):
        _, _, data = self.http.request("POST", "/jmap/api/", json.dumps(
            {"using": [CORE, MAIL, SUBMISSION], "methodCalls": calls}),
            {"Content-Type": "application/json"})
        return json.loads(data)["methodResponses"]

    def test_failed_identity_write_is_server_fail_and_changes_nothing(self):
        ident = self.api([["Identity/get", {}, "0"]])[0][1]["list"][0]["id"]
        self.set_faults("fsync file=db error=EIO\n")
        r = self.api([["Identity/set", {"update": {ident: {"name": "Lost"}}}, "0"]])
        self.assertEqual(r[0][0], "error", r)
        self.assertEqual(r[0][1]["type"], "serverFail")
        self.set_faults("")
        self.assertEqual(self.api([["Identity/get", {}, "0"]])[0][1]["list"][0]["name"], "")
        r = self.api([["Identity/set", {"update": {ident: {"name": "Kept"}}}, "0"]])
        self.assertIn(ident, r[0][1]["updated"])
        self.assertEqual(self.api([["Identity/get", {}, "0"]])[0][1]["list"][0]["name"], "Kept")


if __name__ == "__main__":
    unittest.main()
