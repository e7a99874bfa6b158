"""JMAP EmailSubmission outcomes, their push, and Mailbox counts (issue 12):

- A submission whose message has left the outbound queue still reports each
  recipient's outcome (RFC 8621 section 7.1): undoStatus "final", delivered
  "yes" with the relay's 250 for the one it accepted, "no" with its 550 for
  the one it refused. The status is read only after the queue let go of the
  message (its DSN is in the sender's INBOX, stored in the transaction that
  removes it), so the outcome cannot have been observed while queued.
- Push (RFC 8620 section 7.3): an EventSource stream asking for
  EmailSubmission gets a StateChange when a submission is created and
  another when the queue records its delivery (no mailbox changes then).
- Across nodes (two `hato serve` on one PostgreSQL database): a submission
  made on one node is pushed to an EventSource stream of the other, which
  learns of it by LISTEN/NOTIFY (the submission touches no mailbox).
- Mailbox/get's counts (kept by the store, not counted per request) follow
  deliveries, keyword changes, moves and destroys, and agree with
  Email/query's total.
"""
import base64
import json
import socket
import threading
import time
import unittest

import pg_cluster
from fakemx import FakeMX
from harness import DOMAIN, PASSWORD, Server, wait_for

ALICE = f"alice@{DOMAIN}"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
         "urn:ietf:params:jmap:submission"]


def auth_header(user=ALICE):
    return "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()


def api(server, calls):
    body = json.dumps({"using": USING, "methodCalls": calls}).encode()
    req = (f"POST /jmap/api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth_header()}\r\n"
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


class EventStream(threading.Thread):
    """An EventSource stream (RFC 8620 section 7.3): collects the "state" events."""

    def __init__(self, server, types):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=60)
        self.sock.sendall((f"GET /jmap/eventsource/?types={types}&closeafter=no&ping=0 HTTP/1.1\r\n"
                           f"Host: 127.0.0.1\r\nAuthorization: {auth_header()}\r\n"
                           "Accept: text/event-stream\r\n\r\n").encode())
        self.events = []
        self.lock = threading.Lock()
        self.opened = threading.Event()

    def run(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                if b": hato" in buf:
                    self.opened.set()
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    for line in block.split(b"\n"):
                        if line.startswith(b"data: {"):
                            ev = json.loads(line[6:])
                            if ev.get("@type") == "StateChange":
                                with self.lock:
                                    self.events.append(ev["changed"])
        except OSError:
            return

    def submission_states(self):
        with self.lock:
            return [c[a]["EmailSubmission"] for c in self.events for a in c
                    if "EmailSubmission" in c[a]]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class SubmissionTest(unittest.TestCase):
    def setUp(self):
        self.mx = FakeMX()
        self.addCleanup(self.mx.stop)
        self.mx.rcpt_replies["dave@remote.example"] = "550 5.1.1 no such user here"
        self.server = Server(users=("alice",))
        self.addCleanup(self.server.cleanup)
        self.server.set_config("outbound", "relay_host", f'"127.0.0.1:{self.mx.port}"')
        self.server.set_config("outbound", "resolver", '"127.0.0.1@1"')  # unused: the relay
        self.server.set_config("outbound", "retry_base_seconds", "1")
        self.server.set_config("outbound", "retry_max_seconds", "2")
        self.server.start()
        r = api(self.server, [["Identity/get", {}, "i"], ["Mailbox/get", {}, "b"]])
        self.ident = r[0][1]["list"][0]["id"]
        self.boxes = {b["role"] or b["name"]: b["id"] for b in r[1][1]["list"]}

    def submit(self, subject, rcpts):
        r = api(self.server, [
            ["Email/set", {"create": {"m": {
                "mailboxIds": {self.boxes["drafts"]: True}, "subject": subject,
                "from": [{"email": ALICE}], "to": [{"email": a} for a in rcpts],
                "bodyValues": {"t": {"value": "x"}}, "textBody": [{"partId": "t"}]}}}, "e"],
            ["EmailSubmission/set", {"create": {"s": {"emailId": "#m",
                                                      "identityId": self.ident}}}, "s"]])
        self.assertIn("s", r[1][1]["created"] or {}, r)
        return r[1][1]["created"]["s"]["id"]

    def inbox_subjects(self):
        r = api(self.server, [
            ["Email/query", {"filter": {"inMailbox": self.boxes["inbox"]}}, "q"],
            ["Email/get", {"#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                           "properties": ["subject"]}, "g"]])
        return [e["subject"] for e in r[1][1]["list"]]

    def test_outcomes_after_the_queue_let_go(self):
        sid = self.submit("to carol and dave", ["carol@remote.example", "dave@remote.example"])
        wait_for(lambda: self.mx.messages, timeout=60, what="the relay got the message")
        # The DSN for dave is stored in the transaction that removes the
        # message from the queue: once it is there, the queue has let go.
        wait_for(lambda: any("Delivery" in s or "failure" in s.lower() or "Undeliver" in s
                             for s in self.inbox_subjects()),
                 timeout=60, what="the DSN in alice's INBOX")
        r = api(self.server, [["EmailSubmission/get", {"ids": [sid]}, "0"]])
        sub = r[0][1]["list"][0]
        self.assertEqual(sub["undoStatus"], "final")
        carol = sub["deliveryStatus"]["carol@remote.example"]
        dave = sub["deliveryStatus"]["dave@remote.example"]
        self.assertEqual(carol["delivered"], "yes", sub)
        self.assertTrue(carol["smtpReply"].startswith("250"), carol)
        self.assertEqual(dave["delivered"], "no", sub)
        self.assertIn("550", dave["smtpReply"])
        # Kept, also after a restart.
        self.server.stop()
        self.server.start()
        r = api(self.server, [["EmailSubmission/get", {"ids": [sid]}, "0"]])
        self.assertEqual(r[0][1]["list"][0]["deliveryStatus"], sub["deliveryStatus"])

    def test_push_on_creation_and_on_delivery(self):
        stream = EventStream(self.server, "EmailSubmission")
        self.addCleanup(stream.close)
        stream.start()
        self.assertTrue(stream.opened.wait(20), "the stream did not open")
        r = api(self.server, [["EmailSubmission/get", {"ids": []}, "0"]])
        before = r[0][1]["state"]
        self.mx.rcpt_replies["carol@remote.example"] = "451 4.7.1 not yet"
        sid = self.submit("to carol", ["carol@remote.example"])
        wait_for(lambda: stream.submission_states(), timeout=10,
                 what="a StateChange for the new submission")
        created_state = stream.submission_states()[0]
        self.assertNotEqual(created_state, before)
        r = api(self.server, [["EmailSubmission/changes", {"sinceState": before}, "0"]])
        self.assertEqual(r[0][1]["created"], [sid])
        # The relay deferred it (its 451 may move the state too: pushed at
        # once). Then it accepts at a retry: the queue's outcome moves the
        # state, and the stream is told with no request made meanwhile (a
        # read that observes the change would publish it too).
        wait_for(lambda: self.mx.connections >= 1, timeout=30, what="a first attempt")
        time.sleep(0.5)
        seen = len(stream.submission_states())
        del self.mx.rcpt_replies["carol@remote.example"]
        wait_for(lambda: self.mx.messages, timeout=60, what="delivery")
        wait_for(lambda: len(stream.submission_states()) > seen, timeout=20,
                 what="a StateChange for the delivery outcome")
        last = stream.submission_states()[-1]
        r = api(self.server, [["EmailSubmission/get", {"ids": [sid]}, "0"]])
        self.assertEqual(r[0][1]["state"], last, "the pushed state is not the current one")
        self.assertEqual(r[0][1]["list"][0]["deliveryStatus"]["carol@remote.example"]
                         ["delivered"], "yes")
        r = api(self.server, [["EmailSubmission/changes", {"sinceState": created_state}, "0"]])
        self.assertEqual(r[0][1]["updated"], [sid], r)
        self.assertEqual(r[0][1]["newState"], last)


class PostgresNodesPushTest(unittest.TestCase):
    def test_submission_on_one_node_is_pushed_by_the_other(self):
        mx = FakeMX()
        self.addCleanup(mx.stop)
        cluster = pg_cluster.Cluster().init().start()
        self.addCleanup(cluster.cleanup)
        url = cluster.create_database("hato")
        one = Server(users=("alice",), postgres=url)
        self.addCleanup(one.cleanup)
        two = Server(users=(), postgres=url)
        self.addCleanup(two.cleanup)
        for node in (one, two):
            node.set_config("outbound", "relay_host", f'"127.0.0.1:{mx.port}"')
            node.set_config("outbound", "resolver", '"127.0.0.1@1"')
            node.start()
        r = api(one, [["Identity/get", {}, "i"], ["Mailbox/get", {}, "b"]])
        ident = r[0][1]["list"][0]["id"]
        boxes = {b["role"] or b["name"]: b["id"] for b in r[1][1]["list"]}
        # The draft first: its mailbox change reaches node two on its own.
        r = api(one, [["Email/set", {"create": {"m": {
            "mailboxIds": {boxes["drafts"]: True}, "subject": "across nodes",
            "from": [{"email": ALICE}], "to": [{"email": "carol@remote.example"}],
            "bodyValues": {"t": {"value": "x"}}, "textBody": [{"partId": "t"}]}}}, "e"]])
        email = r[0][1]["created"]["m"]["id"]
        stream = EventStream(two, "EmailSubmission")
        self.addCleanup(stream.close)
        stream.start()
        self.assertTrue(stream.opened.wait(20), "the stream did not open")
        before = api(two, [["EmailSubmission/get", {"ids": []}, "0"]])[0][1]["state"]
        time.sleep(1)
        r = api(one, [["EmailSubmission/set", {"create": {"s": {
            "emailId": email, "identityId": ident}}}, "s"]])
        sid = r[0][1]["created"]["s"]["id"]
        # The stream's wait ends at 30 s without a wake-up: 10 s tells.
        wait_for(lambda: stream.submission_states(), timeout=10,
                 what="node two's StateChange for node one's submission")
        pushed = stream.submission_states()[0]
        self.assertNotEqual(pushed, before)
        r = api(two, [["EmailSubmission/changes", {"sinceState": before}, "0"]])
        self.assertIn(sid, r[0][1]["created"] + r[0][1]["updated"])


class MailboxCountsTest(unittest.TestCase):
    def test_counts_follow_changes(self):
        server = Server(users=("alice",))
        self.addCleanup(server.cleanup)
        server.start()
        r = api(server, [["Mailbox/get", {}, "b"]])
        boxes = {b["role"] or b["name"]: b["id"] for b in r[0][1]["list"]}

        def counts():
            r = api(server, [["Mailbox/get", {"properties": [
                "totalEmails", "unreadEmails", "totalThreads", "unreadThreads"]}, "0"]])
            out = {}
            for b in r[0][1]["list"]:
                out[b["id"]] = (b["totalEmails"], b["unreadEmails"])
                self.assertEqual(b["totalThreads"], b["totalEmails"])
                self.assertEqual(b["unreadThreads"], b["unreadEmails"])
            return out

        def query_total(box):
            r = api(server, [["Email/query", {"filter": {"inMailbox": box},
                                              "calculateTotal": True}, "0"]])
            return r[0][1]["total"]

        create = {f"c{i}": {"mailboxIds": {boxes["inbox"]: True}, "subject": f"s{i}",
                            "keywords": {"$seen": True} if i % 3 == 0 else {},
                            "bodyValues": {"t": {"value": f"body {i}"}},
                            "textBody": [{"partId": "t"}]} for i in range(9)}
        r = api(server, [["Email/set", {"create": create}, "0"]])
        ids = [r[0][1]["created"][f"c{i}"]["id"] for i in range(9)]
        c = counts()
        self.assertEqual(c[boxes["inbox"]], (9, 6))
        self.assertEqual(query_total(boxes["inbox"]), 9)
        # Mark two read, move three to the archive, destroy one.
        api(server, [["Email/set", {"update": {
            ids[1]: {"keywords/$seen": True}, ids[2]: {"keywords/$seen": True},
            ids[4]: {"mailboxIds": {boxes["archive"]: True}},
            ids[5]: {"mailboxIds": {boxes["archive"]: True}},
            ids[6]: {"mailboxIds": {boxes["archive"]: True}}}, "destroy": [ids[8]]}, "0"]])
        c = counts()
        # Left in INBOX: 0 1 2 3 7 (unread: 7); archive: 4 5 6 (unread: 4 5).
        self.assertEqual(c[boxes["inbox"]], (5, 1))
        self.assertEqual(c[boxes["archive"]], (3, 2))
        self.assertEqual(query_total(boxes["inbox"]), 5)
        self.assertEqual(query_total(boxes["archive"]), 3)
        # Pages by position agree with the total (the store's index path).
        r = api(server, [["Email/query", {"filter": {"inMailbox": boxes["inbox"]},
                                          "sort": [{"property": "receivedAt"}],
                                          "position": 3, "limit": 10}, "0"]])
        self.assertEqual(len(r[0][1]["ids"]), 2)
        # A delivery by SMTP counts too; and all is the same after a restart.
        import smtplib
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as s:
            s.sendmail("x@remote.example", [ALICE], b"Subject: smtp\r\n\r\nhello\r\n")
        wait_for(lambda: counts()[boxes["inbox"]] == (6, 2), timeout=20, what="the delivery counted")
        server.stop()
        server.start()
        self.assertEqual(counts()[boxes["inbox"]], (6, 2))


if __name__ == "__main__":
    unittest.main()
