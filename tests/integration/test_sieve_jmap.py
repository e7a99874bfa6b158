"""Sieve management beyond ManageSieve (issue 19), against a live `hato serve`:
JMAP for Sieve Scripts (RFC 9661) over HTTP (upload, validate, create and
activate, get, query, update, deactivate, destroy, download; the script then
filters mail, SMTP in and IMAP out), the [sieve] limits of hato.toml enforced
by ManageSieve, JMAP and `hato sieve put`, and Sieve for the local copies the
queue delivers (a list post to a local member filed by her script, a
redirect to another local user)."""
import base64
import http.client
import imaplib
import json
import os
import signal
import smtplib
import tempfile
import time
import unittest
import unittest.mock

from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for
from test_jmap_submission import EventStream
from test_managesieve import Client, literal

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"
CORE = "urn:ietf:params:jmap:core"
SIEVE = "urn:ietf:params:jmap:sieve"
FILTER = ('require ["fileinto", "mailbox"];\r\n'
          'if header :contains "subject" "invoice" {\r\n  fileinto :create "Invoices";\r\n}\r\n')


class Jmap:
    def __init__(self, server, user=ALICE):
        self.server = server
        self.token = "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()

    def http(self, method, path, body=None, ctype="application/json"):
        c = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=20)
        headers = {"Authorization": self.token}
        if body is not None:
            headers["Content-Type"] = ctype
        try:
            c.request(method, path, body, headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def session(self):
        status, body = self.http("GET", "/.well-known/jmap")
        assert status == 200, (status, body)
        return json.loads(body)

    def upload(self, account, text):
        status, body = self.http("POST", f"/jmap/upload/{account}/", text.encode(),
                                 "application/sieve")
        assert status == 201, (status, body)
        return json.loads(body)["blobId"]

    def call(self, calls, using=(CORE, SIEVE)):
        status, body = self.http("POST", "/jmap/api/",
                                 json.dumps({"using": list(using), "methodCalls": calls}))
        assert status == 200, (status, body)
        return json.loads(body)["methodResponses"]


def send(server, subject, rcpt=ALICE, sender="carol@remote.example"):
    msg = f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n\r\nHello.\r\n"
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
        s.sendmail(sender, [rcpt], msg)


def count(server, user, mailbox):
    """Messages in a mailbox, or None when it does not exist."""
    m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    try:
        m.login(user, PASSWORD)
        typ, data = m.select(f'"{mailbox}"', readonly=True)
        return int(data[0]) if typ == "OK" else None
    finally:
        m.logout()


def managesieve_login(server):
    c = Client(server.managesieve_port)
    c.response()
    auth = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    assert c.cmd(f'AUTHENTICATE "PLAIN" "{auth}"')[-1].startswith("OK")
    return c


class JmapSieveTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.jmap = Jmap(self.server)
        session = self.jmap.session()
        self.assertIn(SIEVE, session["capabilities"])
        self.account = session["primaryAccounts"][SIEVE]
        self.caps = session["accounts"][self.account]["accountCapabilities"][SIEVE]

    def tearDown(self):
        self.server.cleanup()

    def test_scripts_over_jmap_filter_mail_and_are_shared_with_managesieve(self):
        a = self.account
        self.assertEqual(self.caps["maxSizeScript"], 65536)
        self.assertIn("fileinto", self.caps["sieveExtensions"])
        bad = self.jmap.upload(a, 'fileinto "x";\r\n')
        good = self.jmap.upload(a, FILTER)
        r = self.jmap.call([["SieveScript/validate", {"accountId": a, "blobId": bad}, "0"],
                            ["SieveScript/validate", {"accountId": a, "blobId": good}, "1"]])
        self.assertEqual(r[0][1]["error"]["type"], "invalidSieve")
        self.assertIn("line 1", r[0][1]["error"]["description"])
        self.assertIsNone(r[1][1]["error"])
        # Create two (one invalid), activate the good one in the same call.
        r = self.jmap.call([["SieveScript/set", {
            "accountId": a,
            "create": {"f": {"name": "filter", "blobId": good},
                       "x": {"name": "broken", "blobId": bad}}}, "0"]])
        self.assertEqual(r[0][1]["notCreated"]["x"]["type"], "invalidSieve")
        sid = r[0][1]["created"]["f"]["id"]
        self.assertFalse(r[0][1]["created"]["f"]["isActive"])
        r = self.jmap.call([["SieveScript/set", {
            "accountId": a, "create": {"g": {"blobId": good}},
            "onSuccessActivateScript": sid}, "0"]])
        self.assertEqual(r[0][1]["updated"][sid], {"isActive": True})
        other = r[0][1]["created"]["g"]
        self.assertEqual(other["name"], "script1")  # server-assigned
        # Activation by creation reference deactivates the one before.
        tmp = self.jmap.upload(a, "keep;\r\n")
        r = self.jmap.call([["SieveScript/set", {
            "accountId": a, "create": {"t": {"name": "tmp", "blobId": tmp}},
            "onSuccessActivateScript": "#t"}, "0"]])
        self.assertTrue(r[0][1]["created"]["t"]["isActive"])
        self.assertEqual(r[0][1]["updated"][sid], {"isActive": False})
        tmp_id = r[0][1]["created"]["t"]["id"]
        r = self.jmap.call([["SieveScript/set", {
            "accountId": a, "onSuccessActivateScript": sid}, "0"]])
        self.assertEqual(r[0][1]["updated"], {sid: {"isActive": True},
                                              tmp_id: {"isActive": False}})
        r = self.jmap.call([["SieveScript/get", {"accountId": a, "ids": None}, "0"],
                            ["SieveScript/query", {"accountId": a,
                                                   "filter": {"isActive": True}}, "1"],
                            ["SieveScript/query", {"accountId": a, "sort": [
                                {"property": "name", "isAscending": False}]}, "2"]])
        scripts = {s["name"]: s for s in r[0][1]["list"]}
        self.assertEqual(set(scripts), {"filter", "script1", "tmp"})
        self.assertTrue(scripts["filter"]["isActive"])
        self.assertEqual(scripts["filter"]["blobId"], good)
        self.assertEqual(r[1][1]["ids"], [sid])
        self.assertEqual(r[2][1]["ids"], [tmp_id, other["id"], sid])
        # The script's text at the download URL.
        status, body = self.jmap.http("GET", f"/jmap/download/{a}/{good}/filter.sieve")
        self.assertEqual((status, body.decode()), (200, FILTER))
        # ManageSieve sees what JMAP stored.
        c = managesieve_login(self.server)
        self.assertEqual(c.cmd("LISTSCRIPTS"), ['"filter" ACTIVE', '"script1"', '"tmp"', "OK"])
        # And JMAP what ManageSieve stored, its text at the download URL too.
        self.assertEqual(c.cmd('PUTSCRIPT "ms" "discard;"')[-1], "OK")
        c.close()
        r = self.jmap.call([["SieveScript/query", {"accountId": a,
                                                   "filter": {"name": "ms"}}, "0"],
                            ["SieveScript/get", {"accountId": a, "#ids": {
                                "resultOf": "0", "name": "SieveScript/query", "path": "/ids"},
                                "properties": ["blobId"]}, "1"]])
        ms = r[1][1]["list"][0]
        self.assertEqual(set(ms), {"id", "blobId"})
        status, body = self.jmap.http("GET", f"/jmap/download/{a}/{ms['blobId']}/ms.sieve")
        self.assertEqual((status, body), (200, b"discard;"))
        # It filters delivery.
        send(self.server, "your invoice")
        send(self.server, "hello")
        self.assertEqual(count(self.server, ALICE, "Invoices"), 1)
        self.assertEqual(count(self.server, ALICE, "INBOX"), 1)
        # The active one cannot be destroyed, an update changes the text, a rename keeps the id.
        changed = self.jmap.upload(a, FILTER.replace("invoice", "receipt"))
        r = self.jmap.call([["SieveScript/set", {
            "accountId": a, "destroy": [sid, tmp_id],
            "update": {sid: {"blobId": changed}, other["id"]: {"name": "renamed"}}}, "0"]])
        self.assertEqual(r[0][1]["notDestroyed"][sid]["type"], "sieveIsActive")
        self.assertEqual(r[0][1]["destroyed"], [tmp_id])
        self.assertEqual(r[0][1]["updated"][sid], {"blobId": changed})
        self.assertIsNone(r[0][1]["updated"][other["id"]])
        send(self.server, "a receipt")
        self.assertEqual(count(self.server, ALICE, "Invoices"), 2)
        # Deactivate, then destroy.
        r = self.jmap.call([["SieveScript/set", {
            "accountId": a, "onSuccessDeactivateScript": True}, "0"],
            ["SieveScript/set", {"accountId": a, "destroy": [sid]}, "1"]])
        self.assertEqual(r[0][1]["updated"], {sid: {"isActive": False}})
        self.assertEqual(r[1][1]["destroyed"], [sid])
        send(self.server, "another receipt")
        self.assertEqual(count(self.server, ALICE, "Invoices"), 2)
        self.assertEqual(count(self.server, ALICE, "INBOX"), 2)
        # Without the capability in "using" the methods do not exist.
        r = self.jmap.call([["SieveScript/get", {"accountId": a}, "0"]], using=(CORE,))
        self.assertEqual(r[0][1]["type"], "unknownMethod")

    def test_reserved_scripts_do_not_exist_over_jmap(self):
        a = self.account
        r = self.jmap.call([["VacationResponse/set", {"update": {"singleton": {
            "isEnabled": True, "textBody": "Away."}}}, "0"],
            ["SieveScript/get", {"accountId": a}, "1"]],
            using=(CORE, SIEVE, "urn:ietf:params:jmap:vacationresponse"))
        self.assertEqual(r[1][1]["list"], [])
        blob = self.jmap.upload(a, "keep;\r\n")
        r = self.jmap.call([["SieveScript/set", {
            "accountId": a, "create": {"v": {"name": "jmap.vacation", "blobId": blob}}}, "0"]])
        self.assertEqual(r[0][1]["notCreated"]["v"]["type"], "invalidProperties")


class JmapSieveChangesTest(unittest.TestCase):
    """Script ids that survive renames (JMAP /set and ManageSieve RENAMESCRIPT),
    SieveScript/changes and the query state from the store's counter, and
    StateChange pushed for SieveScript."""

    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.jmap = Jmap(self.server)
        self.a = self.jmap.session()["primaryAccounts"][SIEVE]

    def tearDown(self):
        self.server.cleanup()

    def get(self):
        r = self.jmap.call([["SieveScript/get", {"accountId": self.a}, "0"]])[0][1]
        return r["state"], {s["id"]: s for s in r["list"]}

    def changes(self, since):
        return self.jmap.call([["SieveScript/changes", {"accountId": self.a,
                                                        "sinceState": since}, "0"]])[0]

    def test_rename_keeps_the_id_and_changes_report_it(self):
        a = self.a
        state0, scripts = self.get()
        self.assertEqual(scripts, {})
        blob = self.jmap.upload(a, FILTER)
        r = self.jmap.call([["SieveScript/set", {"accountId": a, "create": {
            "f": {"name": "filter", "blobId": blob}}, "onSuccessActivateScript": "#f"}, "0"]])
        sid = r[0][1]["created"]["f"]["id"]
        self.assertEqual(r[0][1]["oldState"], state0)
        state1 = r[0][1]["newState"]
        self.assertNotEqual(state1, state0)
        ch = self.changes(state0)
        self.assertEqual(ch[0], "SieveScript/changes")
        self.assertEqual((ch[1]["created"], ch[1]["updated"], ch[1]["destroyed"]), ([sid], [], []))
        self.assertEqual(ch[1]["newState"], state1)
        self.assertEqual(self.get()[0], state1)
        # Renamed over ManageSieve: the same id, reported as updated.
        c = managesieve_login(self.server)
        self.assertEqual(c.cmd('RENAMESCRIPT "filter" "sorter"')[-1], "OK")
        ch = self.changes(state1)[1]
        self.assertEqual((ch["created"], ch["updated"], ch["destroyed"]), ([], [sid], []))
        state2 = ch["newState"]
        state, scripts = self.get()
        self.assertEqual(state, state2)
        self.assertEqual((scripts[sid]["name"], scripts[sid]["isActive"]), ("sorter", True))
        # Renamed over JMAP: ManageSieve and delivery see the new name.
        self.assertEqual(c.cmd('PUTSCRIPT "other" "keep;"')[-1], "OK")
        r = self.jmap.call([["SieveScript/set", {"accountId": a, "ifInState": state2}, "0"],
                            ["SieveScript/query", {"accountId": a}, "1"]])
        self.assertEqual(r[0][1]["type"], "stateMismatch")
        state3 = r[1][1]["queryState"]
        self.assertEqual(state3, self.get()[0])
        other = [i for i, s in self.get()[1].items() if s["name"] == "other"][0]
        r = self.jmap.call([["SieveScript/set", {"accountId": a, "ifInState": state3, "update": {
            sid: {"name": "renamed"}, other: {"name": "renamed"}}}, "0"]])[0][1]
        self.assertEqual(r["updated"], {sid: None})
        self.assertEqual(r["notUpdated"][other]["type"], "alreadyExists")
        self.assertEqual(r["notUpdated"][other]["existingId"], sid)
        r = self.jmap.call([["SieveScript/set", {"accountId": a, "update": {
            sid: {"name": "jmap.mine"}}}, "0"]])[0][1]
        self.assertEqual(r["notUpdated"][sid]["type"], "invalidProperties")
        self.assertEqual(c.cmd("LISTSCRIPTS"), ['"other"', '"renamed" ACTIVE', "OK"])
        send(self.server, "an invoice")
        self.assertEqual(count(self.server, ALICE, "Invoices"), 1)
        # A name and a text in one update.
        changed = self.jmap.upload(a, FILTER.replace("invoice", "bill"))
        r = self.jmap.call([["SieveScript/set", {"accountId": a, "update": {
            sid: {"name": "bills", "blobId": changed}}}, "0"]])[0][1]
        self.assertEqual(r["updated"], {sid: {"blobId": changed}})
        state4 = r["newState"]
        self.assertEqual(c.cmd('GETSCRIPT "bills"'), [FILTER.replace("invoice", "bill"), "OK"])
        # Destroyed (ManageSieve), and one created and destroyed after the
        # state: only the first is reported.
        self.assertEqual(c.cmd('PUTSCRIPT "brief" "keep;"')[-1], "OK")
        self.assertEqual(c.cmd('DELETESCRIPT "brief"')[-1], "OK")
        self.assertEqual(c.cmd('DELETESCRIPT "other"')[-1], "OK")
        c.close()
        ch = self.changes(state4)[1]
        self.assertEqual((ch["created"], ch["updated"], ch["destroyed"]), ([], [], [other]))
        # `hato sieve put` moves the same counter.
        with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
            f.write("keep;\n")
        try:
            run_cli("sieve", "put", ALICE, "cli", f.name, data=self.server.data)
        finally:
            os.unlink(f.name)
        ch = self.changes(ch["newState"])[1]
        self.assertEqual(len(ch["created"]), 1)
        self.assertEqual(self.get()[1][ch["created"][0]]["name"], "cli")
        # The server's own scripts move the state but are never reported.
        state5 = self.get()[0]
        self.jmap.call([["VacationResponse/set", {"update": {"singleton": {
            "isEnabled": True, "textBody": "Away."}}}, "0"]],
            using=(CORE, "urn:ietf:params:jmap:vacationresponse"))
        ch = self.changes(state5)[1]
        self.assertNotEqual(ch["newState"], state5)
        self.assertEqual((ch["created"], ch["updated"], ch["destroyed"]), ([], [], []))
        # States this server never gave (or the old hash form) cannot be answered.
        for bad in ("s0123456789abcdef", "c999999", "x"):
            self.assertEqual(self.changes(bad), ["error", {"type": "cannotCalculateChanges",
                                                          "description": unittest.mock.ANY}, "0"])
        r = self.jmap.call([["SieveScript/changes", {"accountId": a, "sinceState": state0,
                                                     "maxChanges": 1}, "0"]])
        self.assertEqual(r[0][1]["type"], "cannotCalculateChanges")

    def test_state_change_is_pushed_for_sieve_scripts(self):
        stream = EventStream(self.server, "SieveScript")
        stream.start()
        self.addCleanup(stream.close)
        self.assertTrue(stream.opened.wait(10))

        def sieve_states():
            with stream.lock:
                return [c[a]["SieveScript"] for c in stream.events for a in c
                        if "SieveScript" in c[a]]

        # A ManageSieve upload, then a JMAP activation: each pushed with the new state.
        c = managesieve_login(self.server)
        self.assertEqual(c.cmd('PUTSCRIPT "main" "keep;"')[-1], "OK")
        c.close()
        state = self.get()[0]
        wait_for(lambda: state in sieve_states(), what="StateChange after PUTSCRIPT")
        sid = list(self.get()[1])[0]
        r = self.jmap.call([["SieveScript/set", {"accountId": self.a,
                                                 "onSuccessActivateScript": sid}, "0"]])
        state = r[0][1]["newState"]
        wait_for(lambda: state in sieve_states(), what="StateChange after SieveScript/set")
        # Mail that changes no script sends no SieveScript state.
        before = len(sieve_states())
        send(self.server, "hello")
        time.sleep(1)
        self.assertEqual(len(sieve_states()), before)


class SieveReloadTest(unittest.TestCase):
    """Scripts compiled before a reload (SIGHUP) run under the new [sieve]
    limits: the user's active script and the generated vacation response."""

    def setUp(self):
        self.server = Server(users=("alice", "bob", "carol"))
        with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
            f.write('require ["fileinto", "mailbox"];\n'
                    'if header :contains "subject" "deep" {\n'
                    '  if true {\n    fileinto :create "Deep";\n  }\n}\n')
        try:
            run_cli("sieve", "put", ALICE, "main", f.name, data=self.server.data)
        finally:
            os.unlink(f.name)
        run_cli("sieve", "activate", ALICE, "main", data=self.server.data)
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def size(self):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.ehlo()
            return s.esmtp_features["size"]

    def test_reload_applies_new_limits_to_compiled_scripts(self):
        jmap = Jmap(self.server)
        r = jmap.call([["VacationResponse/set", {"update": {"singleton": {
            "isEnabled": True, "textBody": "Away. " + "x" * 400}}}, "0"]],
            using=(CORE, "urn:ietf:params:jmap:vacationresponse"))
        self.assertEqual(r[0][1]["updated"], {"singleton": None})
        send(self.server, "deep thoughts", sender=BOB)
        self.assertEqual(count(self.server, ALICE, "Deep"), 1)
        wait_for(lambda: count(self.server, BOB, "INBOX") == 1, what="bob's vacation reply")
        # Blocks nested twice and 400-byte scripts are now over the limits.
        self.server.set_config("sieve", "max_nesting", "1")
        self.server.set_config("sieve", "max_script_bytes", "300")
        self.server.set_config("smtp", "max_message_size", "123456")  # tells the reload is done
        self.server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.size() == "123456", what="the reloaded config")
        send(self.server, "deep again", sender=CAROL)
        # The active script no longer compiles: INBOX, and the error is shown.
        self.assertEqual(count(self.server, ALICE, "Deep"), 1)
        self.assertEqual(count(self.server, ALICE, "INBOX"), 1)
        listing = run_cli("sieve", "list", ALICE, data=self.server.data).stdout
        self.assertIn("nest", listing)
        # Nor does the vacation response: carol gets no reply (bob's came
        # within this time).
        time.sleep(3)
        self.assertEqual(count(self.server, CAROL, "INBOX"), 0)


class SieveLimitsTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",))
        self.server.set_config("sieve", "max_script_bytes", "200")
        self.server.set_config("sieve", "max_scripts", "2")
        self.server.set_config("sieve", "max_redirects", "1")
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def test_lowered_limits_are_enforced_everywhere(self):
        big = "# " + "x" * 250 + "\r\nkeep;\r\n"
        c = managesieve_login(self.server)
        greeting = c.cmd("CAPABILITY")
        self.assertIn('"MAXREDIRECTS" "1"', greeting)
        self.assertIn("QUOTA/MAXSIZE", c.cmd('HAVESPACE "a" 201')[-1])
        self.assertIn("QUOTA/MAXSIZE", c.cmd('PUTSCRIPT "big" ' + literal(big))[-1])
        self.assertEqual(c.cmd('PUTSCRIPT "one" "keep;"')[-1], "OK")
        self.assertEqual(c.cmd('PUTSCRIPT "two" "keep;"')[-1], "OK")
        self.assertEqual(c.cmd('PUTSCRIPT "two" "discard;"')[-1], "OK")  # a replacement
        self.assertIn("QUOTA/MAXSCRIPTS", c.cmd('PUTSCRIPT "three" "keep;"')[-1])
        self.assertIn("QUOTA/MAXSCRIPTS", c.cmd('HAVESPACE "three" 10')[-1])
        self.assertEqual(c.cmd('HAVESPACE "two" 10')[-1], "OK")
        c.close()
        jmap = Jmap(self.server)
        session = jmap.session()
        account = session["primaryAccounts"][SIEVE]
        caps = session["accounts"][account]["accountCapabilities"][SIEVE]
        self.assertEqual((caps["maxSizeScript"], caps["maxNumberScripts"],
                          caps["maxNumberRedirects"]), (200, 2, 1))
        small = jmap.upload(account, "keep;\r\n")
        large = jmap.upload(account, big)
        r = jmap.call([["SieveScript/set", {"accountId": account, "create": {
            "n": {"name": "three", "blobId": small}}}, "0"],
            ["SieveScript/validate", {"accountId": account, "blobId": large}, "1"]])
        self.assertEqual(r[0][1]["notCreated"]["n"]["type"], "overQuota")
        self.assertEqual(r[1][1]["error"]["type"], "tooLarge")
        with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
            f.write(big)
        try:
            r = run_cli("sieve", "put", ALICE, "bigcli", f.name, data=self.server.data,
                        check=False)
        finally:
            os.unlink(f.name)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("200 bytes", r.stderr)


class ListPostSieveTest(unittest.TestCase):
    """A list post delivered by the queue to a local member runs her script."""

    def setUp(self):
        self.server = Server(users=("alice", "bob"))
        lst = f"team@{DOMAIN}"
        run_cli("list", "create", lst, "--mode", "discussion", data=self.server.data)
        run_cli("list", "members", "add", lst, ALICE, BOB, data=self.server.data)
        with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
            f.write('require ["fileinto", "mailbox", "imap4flags"];\n'
                    'if header :contains "list-id" "team" {\n'
                    '  fileinto :create :flags "\\\\Flagged" "Team";\n}\n')
        try:
            run_cli("sieve", "put", ALICE, "main", f.name, data=self.server.data)
        finally:
            os.unlink(f.name)
        run_cli("sieve", "activate", ALICE, "main", data=self.server.data)
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def test_local_member_copy_is_filed_by_her_script(self):
        send(self.server, "list news", rcpt=f"team@{DOMAIN}", sender=BOB)
        wait_for(lambda: count(self.server, ALICE, "Team") == 1, what="the filed list copy")
        self.assertEqual(count(self.server, ALICE, "INBOX"), 0)
        # Bob, without a script, gets his copy in INBOX.
        wait_for(lambda: count(self.server, BOB, "INBOX") == 1, what="bob's copy")
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=10)
        m.login(ALICE, PASSWORD)
        m.select('"Team"', readonly=True)
        typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (LIST-ID RETURN-PATH)])")
        m.logout()
        self.assertIn(b"\\Flagged", data[0][0])
        self.assertIn(b"List-Id:", data[0][1])
        self.assertIn(b"team-bounces+alice=", data[0][1])


class LocalRedirectSieveTest(unittest.TestCase):
    """A Sieve redirect to another local user is delivered by the queue here,
    through that user's own script; a redirect loop between them stops."""

    def setUp(self):
        self.server = Server(users=("alice", "bob"))
        self.put(ALICE, f'redirect "{BOB}";\n')
        self.put(BOB, 'require ["fileinto", "mailbox"];\n'
                      'if header :contains "subject" "loop" {\n'
                      f'  redirect "{ALICE}";\n'
                      '} else {\n  fileinto :create "FromAlice";\n}\n')
        self.server.start()

    def put(self, user, text):
        with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
            f.write(text)
        try:
            run_cli("sieve", "put", user, "main", f.name, data=self.server.data)
        finally:
            os.unlink(f.name)
        run_cli("sieve", "activate", user, "main", data=self.server.data)

    def tearDown(self):
        self.server.cleanup()

    def test_redirect_to_a_local_user_runs_her_script(self):
        send(self.server, "for bob")
        wait_for(lambda: count(self.server, BOB, "FromAlice") == 1, what="the redirected copy")
        self.assertEqual(count(self.server, ALICE, "INBOX"), 0)
        # alice -> bob -> alice: alice's second redirect is refused (her own
        # loop marker), so her copy stays.
        send(self.server, "a loop")
        wait_for(lambda: count(self.server, ALICE, "INBOX") == 1, what="the copy kept by alice")
        self.assertEqual(count(self.server, BOB, "INBOX"), 0)
        self.assertEqual(count(self.server, BOB, "FromAlice"), 1)


if __name__ == "__main__":
    unittest.main()
