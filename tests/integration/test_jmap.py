"""JMAP (RFC 8620 core, RFC 8621 mail) against a live `hato serve`, over raw
HTTP: the session resource and its URLs as the RFC says to follow them,
authentication, the request-level errors of section 3.6.1 (notJSON,
notRequest, unknownCapability, limit), method-level errors, result
references, createdIds, and EventSource push (section 7.3) fed by the
store's changes, including changes made over IMAP."""
import base64
import imaplib
import json
import smtplib
import socket
import threading
import time
import unittest
import urllib.parse

from harness import DOMAIN, PASSWORD, Server

ALICE = f"alice@{DOMAIN}"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"


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


if __name__ == "__main__":
    unittest.main()
