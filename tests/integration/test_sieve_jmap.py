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
import smtplib
import tempfile
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli, wait_for
from test_managesieve import Client, literal

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
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
        # The active one cannot be destroyed, a rename is refused, an update changes the text.
        changed = self.jmap.upload(a, FILTER.replace("invoice", "receipt"))
        r = self.jmap.call([["SieveScript/set", {
            "accountId": a, "destroy": [sid, tmp_id],
            "update": {sid: {"blobId": changed}, other["id"]: {"name": "renamed"}}}, "0"]])
        self.assertEqual(r[0][1]["notDestroyed"][sid]["type"], "sieveIsActive")
        self.assertEqual(r[0][1]["destroyed"], [tmp_id])
        self.assertEqual(r[0][1]["updated"][sid], {"blobId": changed})
        self.assertEqual(r[0][1]["notUpdated"][other["id"]]["type"], "invalidProperties")
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
