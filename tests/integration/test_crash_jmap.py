"""Crash test for JMAP writes: concurrent Email/set (create drafts, set
keywords), Identity/set (the name) and EmailSubmission/set (a draft sent to
a remote address through a fake relay) while the server is SIGKILLed at
random moments. After restart every acknowledged change is there: each Email
in `created` of a 200 response exists with its subject, each acknowledged
keyword update is set, each Identity's name is the last acknowledged one or
one tried after it (a write may land without its answer), and each
acknowledged EmailSubmission is found by EmailSubmission/get with its Email,
and its message reached the relay (the queue entry was committed with it)."""
import base64
import http.client
import json
import os
import random
import threading
import time
import unittest

from fakemx import FakeMX
from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for

KILLS = int(os.environ.get("HATO_CRASH_KILLS", "5"))
CLIENTS = 3
CORE, MAIL = "urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"


def call(server, user, calls, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=timeout)
    try:
        auth = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        c.request("POST", "/jmap/api/", json.dumps({"using": [CORE, MAIL, SUBMISSION],
                                                    "methodCalls": calls}),
                  {"Authorization": "Basic " + auth, "Content-Type": "application/json"})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            return None
        return json.loads(body)["methodResponses"]
    finally:
        c.close()


class Client(threading.Thread):
    def __init__(self, idx, server, state, stop):
        super().__init__(daemon=True)
        self.idx, self.server, self.state, self.stop = idx, server, state, stop
        self.user = f"u{idx}@{DOMAIN}"
        self.seq = 0

    def run(self):
        rnd = random.Random(self.idx)
        drafts = None
        while not self.stop.is_set():
            try:
                if drafts is None:
                    r = call(self.server, self.user, [["Mailbox/query", {
                        "filter": {"role": "drafts"}}, "0"]])
                    drafts = r[0][1]["ids"][0]
                roll = rnd.random()
                if roll < 0.15 and self.state["created"]:
                    # A new draft sent at once (EmailSubmission/set, RFC 8621 section 7.5).
                    self.seq += 1
                    subject = f"s{self.idx}-{self.seq}"
                    r = call(self.server, self.user, [["Identity/get", {}, "i"]])
                    ident = r[0][1]["list"][0]["id"]
                    r = call(self.server, self.user, [
                        ["Email/set", {"create": {"m": {
                            "mailboxIds": {drafts: True}, "subject": subject,
                            "from": [{"email": self.user}],
                            "to": [{"email": f"r{self.idx}-{self.seq}@remote.example"}],
                            "bodyValues": {"b": {"value": subject}},
                            "textBody": [{"partId": "b"}]}}}, "e"],
                        ["EmailSubmission/set", {"create": {"s": {
                            "emailId": "#m", "identityId": ident}}}, "s"]])
                    if (r and len(r) > 1 and r[1][0] == "EmailSubmission/set"
                            and (r[1][1].get("created") or {}).get("s")):
                        self.state["submitted"][r[1][1]["created"]["s"]["id"]] = (
                            r[0][1]["created"]["m"]["id"], subject)
                    continue
                if roll < 0.3:
                    self.seq += 1
                    name = f"n{self.idx}-{self.seq}"
                    r = call(self.server, self.user, [["Identity/get", {}, "i"]])
                    ident = r[0][1]["list"][0]["id"]
                    self.state["names"].append(name)
                    r = call(self.server, self.user, [["Identity/set", {"update": {
                        ident: {"name": name}}}, "0"]])
                    if r and r[0][0] == "Identity/set" and ident in (r[0][1].get("updated") or {}):
                        self.state["acked_name"] = len(self.state["names"]) - 1
                elif rnd.random() < 0.7 or not self.state["created"]:
                    self.seq += 1
                    subject = f"c{self.idx}-{self.seq}"
                    r = call(self.server, self.user, [["Email/set", {"create": {"k": {
                        "mailboxIds": {drafts: True}, "subject": subject,
                        "bodyValues": {"b": {"value": subject * rnd.randint(1, 500)}},
                        "textBody": [{"partId": "b"}]}}}, "0"]])
                    if r and r[0][0] == "Email/set" and r[0][1].get("created"):
                        self.state["created"][r[0][1]["created"]["k"]["id"]] = subject
                else:
                    eid = rnd.choice(list(self.state["created"]))
                    r = call(self.server, self.user, [["Email/set", {"update": {
                        eid: {"keywords/$flagged": True}}}, "0"]])
                    if r and r[0][0] == "Email/set" and eid in (r[0][1].get("updated") or {}):
                        self.state["flagged"].add(eid)
            except (OSError, http.client.HTTPException, KeyError, IndexError, TypeError,
                    ValueError):
                drafts = None
                time.sleep(0.05)


class JmapCrashTest(unittest.TestCase):
    def test_acknowledged_jmap_writes_survive_sigkill(self):
        mx = FakeMX()
        self.addCleanup(mx.stop)
        server = Server(users=tuple(f"u{i}" for i in range(CLIENTS)))
        server.set_config("outbound", "relay_host", f'"127.0.0.1:{mx.port}"')
        server.set_config("outbound", "resolver", '"127.0.0.1@1"')  # unused: the relay
        states = [{"created": {}, "flagged": set(), "names": [], "acked_name": None,
                   "submitted": {}} for _ in range(CLIENTS)]
        try:
            server.start()
            rnd = random.Random(42)
            for _ in range(KILLS):
                stop = threading.Event()
                clients = [Client(i, server, states[i], stop) for i in range(CLIENTS)]
                for c in clients:
                    c.start()
                time.sleep(rnd.uniform(0.5, 2.0))
                server.kill()
                stop.set()
                for c in clients:
                    c.join(timeout=30)
                server.start()
            total = total_subs = 0
            for i, st in enumerate(states):
                if st["acked_name"] is not None:
                    r = call(server, f"u{i}@{DOMAIN}", [["Identity/get", {}, "0"]], timeout=60)
                    name = r[0][1]["list"][0]["name"]
                    self.assertIn(name, st["names"][st["acked_name"]:],
                                  "an acknowledged Identity/set was lost")
                ids = list(st["created"])
                total += len(ids)
                if not ids:
                    continue
                r = call(server, f"u{i}@{DOMAIN}", [["Email/get", {
                    "ids": ids, "properties": ["subject", "keywords"]}, "0"]], timeout=60)
                got = {e["id"]: e for e in r[0][1]["list"]}
                self.assertEqual(r[0][1]["notFound"], [], "acknowledged creates lost")
                for eid, subject in st["created"].items():
                    self.assertEqual(got[eid]["subject"], subject)
                for eid in st["flagged"]:
                    self.assertTrue(got[eid]["keywords"].get("$flagged"), eid)
                subs = st["submitted"]
                total_subs += len(subs)
                if not subs:
                    continue
                r = call(server, f"u{i}@{DOMAIN}", [["EmailSubmission/get", {
                    "ids": list(subs)}, "0"]], timeout=60)
                self.assertEqual(r[0][1]["notFound"], [], "acknowledged submissions lost")
                for sub in r[0][1]["list"]:
                    self.assertEqual(sub["emailId"], subs[sub["id"]][0])
                    self.assertEqual(sub["undoStatus"], "final")
            self.assertGreater(total, 0, "no write was acknowledged at all")
            self.assertGreater(total_subs, 0, "no submission was acknowledged at all")
            # Every acknowledged submission's message reaches the relay.
            want = {subject for st in states for _, subject in st["submitted"].values()}

            def relayed():
                got = set()
                for m in list(mx.messages):
                    for line in m["data"].decode("utf-8", "replace").split("\n"):
                        if line.lower().startswith("subject: "):
                            got.add(line[9:].strip())
                return want <= got

            wait_for(relayed, timeout=60, what="every acknowledged submission relayed")
            server.stop()
            out = run_cli("verify", data=server.data, check=False)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
