"""Issue 16, OBJECTID (RFC 8474) over a live `hato serve`: MAILBOXID in
CREATE's and SELECT's response codes and in STATUS (kept across RENAME),
EMAILID and THREADID in FETCH and as SEARCH keys, the EMAILID kept by COPY;
the same ids JMAP gives the same mailboxes, messages and threads. The
forms are RFC 8474's examples: the Dovecot used by the comparison tests
(2.3, Debian 12) does not offer OBJECTID."""
import json
import re
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw
from test_jmap import CORE, MAIL, Http

M1 = (b"From: a@example.test\r\nSubject: first\r\nMessage-ID: <root@example.test>\r\n\r\n"
      b"first\r\n")
M2 = (b"From: b@example.test\r\nSubject: Re: first\r\nMessage-ID: <reply@example.test>\r\n"
      b"References: <root@example.test>\r\n\r\nsecond\r\n")
M3 = b"From: c@example.test\r\nSubject: alone\r\n\r\nthird\r\n"
OBJECTID = r"[A-Za-z0-9_-]{1,255}"


class Checks:
    def raw(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        return r

    def append(self, r, box, msg):
        r.sock.sendall(f"ap APPEND {box} {{{len(msg)}+}}\r\n".encode() + msg + b"\r\n")
        self.assertTrue(r.until("ap")[-1].startswith("ap OK"))

    def fetch_ids(self, r, items="EMAILID"):
        out = {}
        for l in r.cmd(f"f UID FETCH 1:* ({items})", "f")[:-1]:
            m = re.search(r"UID (\d+)", l)
            e = re.search(rf"EMAILID \(({OBJECTID})\)", l)
            if m and e:
                out[int(m.group(1))] = e.group(1)
        return out

    def test_mailboxid(self):
        r = self.raw()
        self.assertIn("OBJECTID", r.cmd("k CAPABILITY", "k")[0].split())
        lines = r.cmd("c CREATE Obj", "c")
        m = re.match(rf"c OK \[MAILBOXID \(({OBJECTID})\)\]", lines[-1])
        self.assertTrue(m, lines)
        box = m.group(1)
        lines = r.cmd("s SELECT Obj", "s")
        self.assertTrue(any(l.startswith(f"* OK [MAILBOXID ({box})]") for l in lines), lines)
        r.cmd("u UNSELECT", "u")
        lines = r.cmd("t STATUS Obj (MESSAGES MAILBOXID)", "t")
        self.assertRegex(lines[0], rf'^\* STATUS "?Obj"? \(MESSAGES 0 MAILBOXID \({box}\)\)$')
        # RFC 8474 section 4.1: RENAME keeps the id; another mailbox has another.
        self.assertTrue(r.cmd("n RENAME Obj Obj2", "n")[-1].startswith("n OK"))
        lines = r.cmd("t2 STATUS Obj2 (MAILBOXID)", "t2")
        self.assertIn(f"MAILBOXID ({box})", lines[0])
        lines = r.cmd("t3 STATUS INBOX (MAILBOXID)", "t3")
        self.assertNotIn(f"({box})", lines[0])
        self.assertIn(" BAD", r.cmd("b SEARCH EMAILID bad/id", "b")[-1])

    def test_emailid(self):
        r = self.raw()
        r.cmd("c CREATE Src", "c")
        r.cmd("c2 CREATE Dst", "c2")
        for m in (M1, M2, M3):
            self.append(r, "Src", m)
        r.cmd("s SELECT Src", "s")
        ids = self.fetch_ids(r)
        self.assertEqual(sorted(ids), [1, 2, 3])
        self.assertEqual(len(set(ids.values())), 3)
        # RFC 8474 section 5.1: a copy keeps the EMAILID.
        self.assertTrue(r.cmd("cp UID COPY 2 Dst", "cp")[-1].startswith("cp OK"))
        lines = r.cmd(f"q UID SEARCH EMAILID {ids[2]}", "q")
        self.assertIn("* SEARCH 2", lines)
        r.cmd("s2 SELECT Dst", "s2")
        self.assertEqual(list(self.fetch_ids(r).values()), [ids[2]])


class HatoObjectIdTest(Checks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, f"alice@{DOMAIN}", PASSWORD

    def test_threadid_and_same_ids_as_jmap(self):
        r = self.raw()
        for m in (M1, M2, M3):
            self.append(r, "INBOX", m)
        r.cmd("s SELECT INBOX", "s")
        mailbox = re.search(rf"MAILBOXID \(({OBJECTID})\)", "\n".join(r.cmd("s2 SELECT INBOX", "s2")))
        self.assertTrue(mailbox)
        imap = {}
        for l in r.cmd("f FETCH 1:* (EMAILID THREADID)", "f")[:-1]:
            m = re.match(rf"\* (\d+) FETCH \(EMAILID \(({OBJECTID})\) THREADID \(({OBJECTID})\)\)$", l)
            self.assertTrue(m, l)
            imap[int(m.group(1))] = (m.group(2), m.group(3))
        # The reply is in its parent's thread; the third is alone.
        self.assertEqual(imap[1][1], imap[2][1])
        self.assertNotEqual(imap[1][1], imap[3][1])
        lines = r.cmd(f"q SEARCH THREADID {imap[1][1]}", "q")
        self.assertIn("* SEARCH 1 2", lines)
        # JMAP gives the same ids.
        http = Http(self.server.http_port)
        status, _, body = http.request("GET", f"http://127.0.0.1:{self.server.http_port}"
                                       "/.well-known/jmap")
        self.assertEqual(status, 200)
        session = json.loads(body)
        account = session["primaryAccounts"][MAIL]
        call = {"using": [CORE, MAIL], "methodCalls": [
            ["Email/query", {"accountId": account, "sort": [{"property": "receivedAt"}]}, "q"],
            ["Email/get", {"accountId": account, "properties": ["threadId", "mailboxIds", "subject"],
                           "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"]]}
        status, _, body = http.request("POST", session["apiUrl"], json.dumps(call),
                                       {"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        emails = json.loads(body)["methodResponses"][1][1]["list"]
        by_subject = {e["subject"]: e for e in emails}
        for seq, subject in ((1, "first"), (2, "Re: first"), (3, "alone")):
            e = by_subject[subject]
            self.assertEqual(e["id"], imap[seq][0], subject)
            self.assertEqual(e["threadId"], imap[seq][1], subject)
            self.assertEqual(list(e["mailboxIds"]), [mailbox.group(1)], subject)


if __name__ == "__main__":
    unittest.main()
