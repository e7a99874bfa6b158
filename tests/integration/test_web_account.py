"""The member's own pages and the admin console (issue 13, items 2 and 3)
against a live `hato serve --http`, through their JSON endpoints
(src/web/account_api.h, src/web/admin_api.h) the way the pages call them:
session cookie + Origin + X-Hato-CSRF.

Member: change password (old one required; the old one stops working for
IMAP, and an open IMAP session ends), app passwords (IMAP, POP3, SMTP
logins; last use shown; revocable; not for the web login), quota and
aliases, the mbox download equal to `hato export`.
Admin: refused to non-admins (403) and to requests without the CSRF token
(401), accounts (add -> IMAP login, remove with the purge date, restore,
quota, password reset), aliases, domains and their DNS records, the queue
(retry delivers a deferred message), backups (create and verify with the
job's progress), key figures, and the audit log (every action, never a
password)."""
import email.header
import http.client
import imaplib
import subprocess
import io
import json
import os
import poplib
import shutil
import smtplib
import tempfile
import time
import unittest
import zipfile

from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, PASSWORD, Server, run_cli, shots_dir, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
ROOT_ADMIN = f"root@{DOMAIN}"


def request(port, path, method="GET", body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    headers = {k.lower(): v for k, v in r.getheaders()}
    headers["set-cookies"] = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
    return r.status, headers, data


class Browser:
    """What the pages do: log in, then GET with the cookie and POST with the
    cookie, our Origin and the CSRF token."""

    def __init__(self, port, user, password):
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        status, headers, body = request(
            port, "/web/login", "POST", json.dumps({"username": user, "password": password}),
            {"Content-Type": "application/json", "Origin": self.origin})
        if status != 200:
            raise AssertionError(f"login {user}: {status} {body!r}")
        self.cookie = headers["set-cookie"].split(";")[0]
        self.csrf = json.loads(body)["csrfToken"]

    def get(self, path):
        status, headers, body = request(self.port, path, headers={"Cookie": self.cookie})
        return status, body

    def get_json(self, path):
        status, body = self.get(path)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def post(self, path, doc, csrf=True):
        headers = {"Cookie": self.cookie, "Origin": self.origin,
                   "Content-Type": "application/json"}
        if csrf:
            headers["X-Hato-CSRF"] = self.csrf
        status, _, body = request(self.port, path, "POST", json.dumps(doc), headers)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None


def imap_login(port, user, password):
    c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        c.login(user, password)
    except imaplib.IMAP4.error:
        c.shutdown()
        return None
    return c


class WebSite:
    def __init__(self, **kw):
        self.server = Server(users=("alice", "bob"), **kw)
        run_cli("user", "add", ROOT_ADMIN, "--admin", "--password-stdin", data=self.server.data,
                input=PASSWORD + "\n")

    def start(self):
        self.server.start()
        wait_for(lambda: self.healthy(), what="http listener")

    def healthy(self):
        try:
            return request(self.server.http_port, "/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    @property
    def port(self):
        return self.server.http_port


class MemberTest(unittest.TestCase):
    def setUp(self):
        self.site = WebSite()
        self.site.start()
        self.s = self.site.server

    def tearDown(self):
        self.s.cleanup()

    def test_me_shows_quota_aliases_and_setup(self):
        run_cli("alias", "add", f"sales@{DOMAIN}", ALICE, data=self.s.data)
        run_cli("user", "quota", ALICE, "10M", data=self.s.data)
        b = Browser(self.site.port, ALICE, PASSWORD)
        status, me = b.get_json("/web/api/me")
        self.assertEqual(status, 200)
        self.assertEqual(me["address"], ALICE)
        self.assertFalse(me["admin"])
        self.assertEqual(me["aliases"], [f"sales@{DOMAIN}"])
        self.assertEqual(me["quota"]["limit"], 10 * 1024 * 1024)
        self.assertEqual(me["quota"]["used"], 0)
        ports = {s["port"] for s in me["setup"]["incoming"] + me["setup"]["outgoing"]}
        self.assertIn(self.s.imaps_port, ports)
        self.assertIn(self.s.submission_port, ports)
        # Without a session: 401, not somebody else's data.
        self.assertEqual(request(self.site.port, "/web/api/me")[0], 401)

    def test_change_password_ends_imap_sessions_and_the_old_password(self):
        b = Browser(self.site.port, ALICE, PASSWORD)
        other = Browser(self.site.port, ALICE, PASSWORD)
        imap = imap_login(self.s.imap_port, ALICE, PASSWORD)
        self.assertIsNotNone(imap)
        imap.select("INBOX")
        new = "a-much-better-passphrase"
        # CSRF: no token, no change.
        status, _ = b.post("/web/api/password", {"old": PASSWORD, "new": new}, csrf=False)
        self.assertEqual(status, 401)
        # The old password is required.
        status, doc = b.post("/web/api/password", {"old": "wrong", "new": new})
        self.assertEqual(status, 403, doc)
        # The policy applies.
        status, doc = b.post("/web/api/password", {"old": PASSWORD, "new": "short"})
        self.assertEqual(status, 400, doc)
        status, doc = b.post("/web/api/password",
                             {"old": PASSWORD, "new": new, "signOutOthers": True})
        self.assertEqual(status, 200, doc)
        # The open IMAP session ends (BYE) within the epoch poll interval.
        def ended():
            try:
                imap.noop()
                return False
            except (imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError):
                return True
        wait_for(ended, timeout=10, what="the IMAP session to end")
        self.assertIsNone(imap_login(self.s.imap_port, ALICE, PASSWORD))
        c = imap_login(self.s.imap_port, ALICE, new)
        self.assertIsNotNone(c)
        c.logout()
        with self.assertRaises(poplib.error_proto):
            p = poplib.POP3("127.0.0.1", self.s.pop3_port, timeout=10)
            p.user(ALICE)
            p.pass_(PASSWORD)
        # This session goes on; the other web session was signed out.
        self.assertEqual(b.get("/web/api/me")[0], 200)
        self.assertEqual(other.get("/web/api/me")[0], 401)
        self.assertNotIn(new, self.s.logs())

    def test_app_passwords(self):
        b = Browser(self.site.port, ALICE, PASSWORD)
        status, doc = b.post("/web/api/app-passwords", {"label": "Phone"})
        self.assertEqual(status, 200, doc)
        app = doc["password"]
        self.assertRegex(app, r"^[a-z2-9]{4}(-[a-z2-9]{4}){4}$")
        status, me = b.get_json("/web/api/me")
        (entry,) = me["appPasswords"]
        self.assertEqual(entry["label"], "Phone")
        self.assertIsNone(entry["lastUsedAt"])
        # It works for IMAP, POP3 and SMTP submission (typed without dashes too)...
        c = imap_login(self.s.imap_port, ALICE, app)
        self.assertIsNotNone(c)
        c.logout()
        p = poplib.POP3("127.0.0.1", self.s.pop3_port, timeout=10)
        p.user(ALICE)
        p.pass_(app.replace("-", "").upper())
        p.quit()
        with smtplib.SMTP("127.0.0.1", self.s.submission_port, timeout=10) as smtp:
            smtp.login(ALICE, app)
        status, me = b.get_json("/web/api/me")
        self.assertIsNotNone(me["appPasswords"][0]["lastUsedAt"])
        # ... not for the web login, nor for another account, nor as a bearer token.
        status, _, _ = request(self.site.port, "/web/login", "POST",
                               json.dumps({"username": ALICE, "password": app}),
                               {"Content-Type": "application/json",
                                "Origin": f"http://127.0.0.1:{self.site.port}"})
        self.assertEqual(status, 401)
        self.assertIsNone(imap_login(self.s.imap_port, BOB, app))
        status, _, _ = request(self.site.port, "/api/whoami",
                               headers={"Authorization": f"Bearer {app}"})
        self.assertEqual(status, 401)
        # Revoked: it stops working.
        status, _ = b.post("/web/api/app-passwords/revoke", {"id": entry["id"]})
        self.assertEqual(status, 200)
        self.assertIsNone(imap_login(self.s.imap_port, ALICE, app))
        self.assertEqual(b.get_json("/web/api/me")[1]["appPasswords"], [])
        # Another account's id is not found.
        bob = Browser(self.site.port, BOB, PASSWORD)
        status, doc = b.post("/web/api/app-passwords", {"label": "Laptop"})
        status, _ = bob.post("/web/api/app-passwords/revoke", {"id": doc["id"]})
        self.assertEqual(status, 404)
        self.assertNotIn(app, self.s.logs())
        if self.s.postgres:
            dump = subprocess.run(["psql", self.s.postgres, "-At", "-c",
                                   "SELECT hash, label FROM access_tokens"],
                                  check=True, capture_output=True).stdout
            self.assertIn(b"Laptop", dump)
        else:
            with open(os.path.join(self.s.data, "meta.db"), "rb") as fh:
                dump = fh.read()
        self.assertFalse(app.replace("-", "").encode() in dump, "the app password is stored")

    def test_mbox_download_equals_hato_export(self):
        msgs = [
            f"From: x@remote.test\r\nTo: {ALICE}\r\nSubject: one\r\n\r\nFrom the start\r\n>From quoted\r\n",
            f"From: y@remote.test\r\nTo: {ALICE}\r\nSubject: two\r\n\r\n" + "line\r\n" * 20000,
        ]
        with smtplib.SMTP("127.0.0.1", self.s.smtp_port, timeout=30) as smtp:
            for m in msgs:
                smtp.sendmail("x@remote.test", [ALICE], m)
        imap = imap_login(self.s.imap_port, ALICE, PASSWORD)
        imap.create("Projects/2026")
        imap.append("Projects/2026", None, None, b"Subject: filed\r\n\r\nkept\r\n")
        imap.logout()
        b = Browser(self.site.port, ALICE, PASSWORD)
        status, headers, body = request(self.site.port, "/web/api/export.zip",
                                        headers={"Cookie": b.cookie}, timeout=60)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/zip")
        self.assertIn("attachment", headers["content-disposition"])
        want = read_export(self.s.data, ALICE)
        z = zipfile.ZipFile(io.BytesIO(body))
        self.assertIsNone(z.testzip())
        got = {n: z.read(n) for n in z.namelist()}
        self.assertEqual(sorted(got), sorted(want))
        self.assertIn("Projects/2026.mbox", got)
        for name in want:
            self.assertEqual(got[name], want[name], name)
        self.assertIn(b">>From quoted", got["INBOX.mbox"])
        # One folder as a plain mbox file.
        status, _, one = request(self.site.port, "/web/api/export.mbox?folder=INBOX",
                                 headers={"Cookie": b.cookie})
        self.assertEqual(status, 200)
        self.assertEqual(one, want["INBOX.mbox"])


class AdminTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mx = FakeMX()
        cls.mx.rcpt_replies["carol@remote.example"] = "451 4.3.0 try again later"
        cls.dns = FakeDNS({"remote.example": [("MX", "10 mx.remote.example.")],
                           "mx.remote.example": [("A", "127.0.0.1")]})
        cls.site = WebSite()
        s = cls.site.server
        s.set_config("outbound", "resolver", f'"{cls.dns.address}"')
        s.set_config("outbound", "smtp_port", str(cls.mx.port))
        s.set_config("outbound", "retry_base_seconds", "3600")
        s.set_config("outbound", "retry_max_seconds", "3600")
        cls.site.start()
        cls.s = s
        cls.admin = Browser(cls.site.port, ROOT_ADMIN, PASSWORD)
        cls.alice = Browser(cls.site.port, ALICE, PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()
        cls.mx.stop()
        cls.dns.stop()

    GETS = ("overview", "domains", "accounts", "aliases", "queue", "backups",
            "dns?domain=example.test", "audit")
    POSTS = ("domains/add", "domains/remove", "accounts/add", "accounts/remove",
             "accounts/restore", "accounts/quota", "accounts/password", "accounts/admin",
             "aliases/add", "aliases/remove", "queue/action", "backups/create", "backups/verify")

    def test_non_admin_is_refused_at_the_api(self):
        for path in self.GETS:
            status, _ = self.alice.get(f"/web/admin/{path}")
            self.assertEqual(status, 403, path)
            # No credentials at all: 401.
            self.assertEqual(request(self.site.port, f"/web/admin/{path}")[0], 401, path)
        for path in self.POSTS:
            status, _ = self.alice.post(f"/web/admin/{path}",
                                        {"address": BOB, "password": "whatever-long-pw"})
            self.assertEqual(status, 403, path)
        # Refusals are audited too; nothing changed.
        _, doc = self.admin.get_json("/web/admin/audit")
        refused = [e for e in doc["entries"] if e["admin"] == ALICE]
        self.assertTrue(refused and not any(e["ok"] for e in refused))
        self.assertIsNotNone(imap_login(self.s.imap_port, BOB, PASSWORD))

    def test_csrf_is_required(self):
        for path in self.POSTS:
            status, _ = self.admin.post(f"/web/admin/{path}", {"address": BOB}, csrf=False)
            self.assertEqual(status, 401, path)
        # Another site's Origin with the right token: refused too.
        status, _, _ = request(self.site.port, "/web/admin/accounts/remove", "POST",
                               json.dumps({"address": BOB}),
                               {"Cookie": self.admin.cookie, "Origin": "http://evil.example",
                                "X-Hato-CSRF": self.admin.csrf,
                                "Content-Type": "application/json"})
        self.assertEqual(status, 401)

    def test_accounts(self):
        dave = f"dave@{DOMAIN}"
        status, doc = self.admin.post("/web/admin/accounts/add",
                                      {"address": dave, "password": "dave-secret-pass"})
        self.assertEqual(status, 200, doc)
        c = imap_login(self.s.imap_port, dave, "dave-secret-pass")
        self.assertIsNotNone(c)
        c.logout()
        status, doc = self.admin.post("/web/admin/accounts/add",
                                      {"address": dave, "password": "dave-secret-pass"})
        self.assertEqual(status, 409)
        status, _ = self.admin.post("/web/admin/accounts/quota",
                                    {"address": dave, "limit": 5000000})
        self.assertEqual(status, 200)
        status, _ = self.admin.post("/web/admin/accounts/password",
                                    {"address": dave, "password": "dave-other-pass"})
        self.assertEqual(status, 200)
        self.assertIsNone(imap_login(self.s.imap_port, dave, "dave-secret-pass"))
        _, doc = self.admin.get_json("/web/admin/accounts")
        row = [a for a in doc["accounts"] if a["address"] == dave][0]
        self.assertEqual(row["quota"], 5000000)
        self.assertFalse(row["admin"])
        self.assertTrue([a for a in doc["accounts"] if a["address"] == ROOT_ADMIN][0]["admin"])
        status, _ = self.admin.post("/web/admin/accounts/remove", {"address": dave})
        self.assertEqual(status, 200)
        self.assertIsNone(imap_login(self.s.imap_port, dave, "dave-other-pass"))
        _, doc = self.admin.get_json("/web/admin/accounts")
        removed = [r for r in doc["removed"] if r["address"] == dave][0]
        self.assertEqual(removed["purgeAt"] - removed["removedAt"], doc["retentionDays"] * 86400)
        status, _ = self.admin.post("/web/admin/accounts/restore", {"address": dave})
        self.assertEqual(status, 200)
        c = imap_login(self.s.imap_port, dave, "dave-other-pass")
        self.assertIsNotNone(c)
        c.logout()
        # The role: granted here, then the new admin sees the console.
        status, _ = self.admin.post("/web/admin/accounts/admin", {"address": dave, "admin": True})
        self.assertEqual(status, 200)
        self.assertEqual(Browser(self.site.port, dave, "dave-other-pass").get(
            "/web/admin/accounts")[0], 200)
        _, doc = self.admin.get_json("/web/admin/audit")
        actions = [(e["action"], e["target"], e["ok"]) for e in doc["entries"]]
        for a in ("account.add", "account.quota", "account.password", "account.remove",
                  "account.restore", "account.admin"):
            self.assertIn((a, dave, True), actions)
        self.assertIn(("account.add", dave, False), actions)
        with open(os.path.join(self.s.data, "audit.log")) as fh:
            log = fh.read()
        self.assertNotIn("dave-secret-pass", log)
        self.assertNotIn("dave-other-pass", log)
        self.assertNotIn("dave-secret-pass", self.s.logs())

    def test_admin_role_from_the_cli(self):
        out = run_cli("admin", "list", data=self.s.data).stdout
        self.assertIn(ROOT_ADMIN, out.split())
        self.assertNotIn(BOB, out.split())
        bob = Browser(self.site.port, BOB, PASSWORD)
        self.assertEqual(bob.get("/web/admin/accounts")[0], 403)
        run_cli("admin", "grant", BOB, data=self.s.data)
        self.assertEqual(bob.get("/web/admin/accounts")[0], 200)
        self.assertTrue(bob.get_json("/web/api/me")[1]["admin"])
        run_cli("admin", "revoke", BOB, data=self.s.data)
        self.assertEqual(bob.get("/web/admin/accounts")[0], 403)
        r = run_cli("admin", "grant", f"nobody@{DOMAIN}", data=self.s.data, check=False)
        self.assertNotEqual(r.returncode, 0)

    def test_aliases_domains_and_dns(self):
        status, _ = self.admin.post("/web/admin/aliases/add",
                                    {"alias": f"info@{DOMAIN}", "account": BOB})
        self.assertEqual(status, 200)
        _, doc = self.admin.get_json("/web/admin/aliases")
        self.assertIn({"alias": f"info@{DOMAIN}", "account": BOB, "accountRemoved": False},
                      doc["aliases"])
        status, _ = self.admin.post("/web/admin/domains/add", {"domain": "second.test"})
        self.assertEqual(status, 200)
        _, doc = self.admin.get_json("/web/admin/domains")
        self.assertIn("second.test", doc["domains"])
        status, _ = self.admin.post("/web/admin/domains/add", {"domain": "bad domain"})
        self.assertEqual(status, 400)
        status, doc = self.admin.get_json(f"/web/admin/dns?domain={DOMAIN}")
        self.assertEqual(status, 200)
        types = {r["type"] for r in doc["records"]}
        self.assertTrue({"MX", "TXT", "SRV"} <= types, types)
        self.assertTrue(any(r["value"].startswith("v=DKIM1") for r in doc["records"]))
        self.assertTrue(any("_dmarc" in r["name"] for r in doc["records"]))
        self.assertNotIn("status", doc["records"][0])
        # With check=1: what the resolver ([outbound] resolver, here the fake
        # one that knows only remote.example) answers now, as `hato dns check`.
        status, doc = self.admin.get_json(f"/web/admin/dns?domain={DOMAIN}&check=1")
        self.assertEqual(status, 200, doc)
        mx = [r for r in doc["records"] if r["type"] == "MX"][0]
        self.assertIn(mx["status"], ("MISSING", "DIFFERENT"))
        self.assertTrue({r["status"] for r in doc["records"]} <= {"OK", "MISSING", "DIFFERENT", "SKIPPED"})

    def test_queue_retry(self):
        with smtplib.SMTP("127.0.0.1", self.s.submission_port, timeout=10) as smtp:
            smtp.login(ALICE, PASSWORD)
            smtp.sendmail(ALICE, ["carol@remote.example"], "Subject: stuck\r\n\r\nx\r\n")

        def deferred():
            _, doc = self.admin.get_json("/web/admin/queue")
            for m in doc["messages"]:
                if any(r["attempts"] >= 1 for r in m["recipients"]):
                    return m
            return None
        m = wait_for(deferred, what="the first, deferred attempt")
        self.assertEqual(m["recipients"][0]["state"], "queued")
        status, _ = self.admin.post("/web/admin/queue/action", {"id": m["id"], "action": "hold"})
        self.assertEqual(status, 200)
        _, doc = self.admin.get_json("/web/admin/queue")
        self.assertEqual([x for x in doc["messages"] if x["id"] == m["id"]][0]["recipients"][0]["state"], "held")
        status, _ = self.admin.post("/web/admin/queue/action", {"id": m["id"], "action": "release"})
        self.assertEqual(status, 200)

        # Release resumes delivery at once: a second attempt, still refused. Only then does
        # the peer start accepting, so the delivery below is the retry's, not the release's.
        def attempted_again():
            _, doc = self.admin.get_json("/web/admin/queue")
            mine = [x for x in doc["messages"] if x["id"] == m["id"]]
            return mine and mine[0]["recipients"][0]["attempts"] >= 2
        wait_for(attempted_again, what="the released message's second attempt")
        del self.mx.rcpt_replies["carol@remote.example"]
        status, _ = self.admin.post("/web/admin/queue/action", {"id": m["id"], "action": "retry"})
        self.assertEqual(status, 200)
        wait_for(lambda: any("carol@remote.example" in x["rcpts"] for x in self.mx.messages),
                 what="the retried delivery")
        status, _ = self.admin.post("/web/admin/queue/action", {"id": 999999, "action": "retry"})
        self.assertEqual(status, 404)
        status, _ = self.admin.post("/web/admin/queue/action", {"id": m["id"], "action": "x"})
        self.assertEqual(status, 400)
        _, doc = self.admin.get_json("/web/admin/audit")
        self.assertIn(("queue.retry", f"message {m['id']}", True),
                      [(e["action"], e["target"], e["ok"]) for e in doc["entries"]])

    def test_backups_and_figures(self):
        if not self.s.postgres:  # `hato backup` copies the embedded store's files only
            self.check_backups()
        status, doc = self.admin.get_json("/web/admin/overview")
        self.assertEqual(status, 200)
        self.assertIn(doc["health"]["status"], ("up", "degraded"))
        self.assertIn("imap", doc["health"]["protocols"])
        self.assertGreaterEqual(len(doc["figures"]), 1)
        self.assertIn("imap", doc["figures"][-1]["connections"])

    def check_backups(self):
        status, doc = self.admin.post("/web/admin/backups/create", {})
        self.assertEqual(status, 202, doc)

        def finished(kind):
            _, doc = self.admin.get_json("/web/admin/backups")
            job = doc["job"]
            return doc if job["kind"] == kind and not job["running"] else None
        doc = wait_for(lambda: finished("create"), timeout=60, what="the backup")
        self.assertTrue(doc["job"]["result"].startswith("set "), doc["job"])
        self.assertEqual(len([s for s in doc["sets"] if s["complete"]]), 1)
        status, _ = self.admin.post("/web/admin/backups/verify", {"id": ""})
        self.assertEqual(status, 202)
        doc = wait_for(lambda: finished("verify"), timeout=60, what="the verification")
        self.assertIn("0 problems", doc["job"]["result"])


class ForwardingTest(unittest.TestCase):
    """The member's forwarding (POST /web/api/forwarding): a kept copy or
    not, stopped, refused addresses, and the redirect loop rule; and the
    account's language (POST /web/api/language): the pages' cookie and the
    delivery reports the server writes to the account."""

    def setUp(self):
        self.mx = FakeMX()
        self.dns = FakeDNS({"remote.example": [("MX", "10 mx.remote.example.")],
                            "mx.remote.example": [("A", "127.0.0.1")]})
        self.site = WebSite()
        s = self.site.server
        s.set_config("outbound", "resolver", f'"{self.dns.address}"')
        s.set_config("outbound", "smtp_port", str(self.mx.port))
        self.site.start()
        self.s = s
        self.alice = Browser(self.site.port, ALICE, PASSWORD)

    def tearDown(self):
        self.s.cleanup()
        self.mx.stop()
        self.dns.stop()

    def send(self, subject, extra=""):
        with smtplib.SMTP("127.0.0.1", self.s.smtp_port, timeout=30) as smtp:
            smtp.sendmail("zed@remote.example", [ALICE],
                          f"From: zed@remote.example\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
                          f"{extra}\r\nbody\r\n")

    def inbox_subjects(self):
        c = imap_login(self.s.imap_port, ALICE, PASSWORD)
        try:
            c.select("INBOX", readonly=True)
            _, data = c.search(None, "ALL")
            out = []
            for num in data[0].split():
                _, d = c.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                out.append(d[0][1].decode().strip().removeprefix("Subject: "))
            return out
        finally:
            c.logout()

    def test_forwarding(self):
        self.assertIsNone(self.alice.get_json("/web/api/me")[1]["forwarding"])
        for bad in ("not an address", ALICE.upper(), "a@b\r\nX: y"):
            status, _ = self.alice.post("/web/api/forwarding", {"to": bad, "keepCopy": True})
            self.assertEqual(status, 400, bad)
        status, _ = self.alice.post("/web/api/forwarding", {"to": "carol@remote.example"},
                                    csrf=False)
        self.assertNotEqual(status, 200)
        # Forwarded away: nothing stays here.
        status, doc = self.alice.post("/web/api/forwarding",
                                      {"to": "carol@remote.example", "keepCopy": False})
        self.assertEqual(status, 200, doc)
        self.assertEqual(self.alice.get_json("/web/api/me")[1]["forwarding"],
                         {"to": "carol@remote.example", "keepCopy": False})
        self.send("away")
        got = wait_for(lambda: self.mx.received_for("carol@remote.example"), what="forwarded")
        self.assertIn(b"Subject: away", got[0]["data"])
        self.assertIn(b"X-Hato-Redirected-By: " + ALICE.encode(), got[0]["data"])
        # SRS (outbound/srs.h): the forwarded copy's sender is ours, naming zed.
        self.assertTrue(got[0]["mail_from"].startswith("SRS0="), got[0]["mail_from"])
        self.assertIn("=remote.example=zed@", got[0]["mail_from"])
        self.assertEqual(self.inbox_subjects(), [])
        # With a kept copy.
        status, _ = self.alice.post("/web/api/forwarding",
                                    {"to": "carol@remote.example", "keepCopy": True})
        self.assertEqual(status, 200)
        self.send("both")
        wait_for(lambda: len(self.mx.received_for("carol@remote.example")) == 2, what="2nd")
        self.assertEqual(self.inbox_subjects(), ["both"])
        # A message this account forwarded before comes back: kept, not sent on.
        self.send("looped", f"X-Hato-Redirected-By: {ALICE}\r\n")
        wait_for(lambda: len(self.inbox_subjects()) == 2, what="the looped message kept")
        # Stopped.
        status, doc = self.alice.post("/web/api/forwarding", {"to": ""})
        self.assertEqual((status, doc), (200, {"forwarding": None}))
        self.assertIsNone(self.alice.get_json("/web/api/me")[1]["forwarding"])
        self.send("here")
        wait_for(lambda: "here" in self.inbox_subjects(), what="the last message")
        self.assertEqual(len(self.mx.received_for("carol@remote.example")), 2)
        self.assertIn("forwards their mail to carol@remote.example", self.s.logs())


    def test_language(self):
        self.assertEqual(self.alice.get_json("/web/api/me")[1]["language"], "")
        status, _ = self.alice.post("/web/api/language", {"language": "fr"})
        self.assertEqual(status, 400)
        headers = {"Cookie": self.alice.cookie, "Origin": self.alice.origin,
                   "Content-Type": "application/json", "X-Hato-CSRF": self.alice.csrf}
        status, h, _ = request(self.site.port, "/web/api/language", "POST",
                               json.dumps({"language": "ja"}), headers)
        self.assertEqual(status, 200)
        self.assertIn("hato_lang=ja;", h["set-cookie"])
        self.assertEqual(self.alice.get_json("/web/api/me")[1]["language"], "ja")
        # A new sign-in tells the pages too.
        status, h, _ = request(
            self.site.port, "/web/login", "POST",
            json.dumps({"username": ALICE, "password": PASSWORD}),
            {"Content-Type": "application/json", "Origin": self.alice.origin})
        self.assertEqual(status, 200)
        self.assertEqual([c.split("=")[0] for c in h["set-cookies"]], ["hato_lang", "hato_session"])
        self.assertTrue(h["set-cookies"][0].startswith("hato_lang=ja;"), h["set-cookies"])
        # A report about alice's undeliverable mail comes in Japanese.
        self.mx.rcpt_replies["nobody@remote.example"] = "550 5.1.1 no such user"
        with smtplib.SMTP("127.0.0.1", self.s.submission_port, timeout=30) as smtp:
            smtp.login(ALICE, PASSWORD)
            smtp.sendmail(ALICE, ["nobody@remote.example"],
                          f"From: {ALICE}\r\nSubject: lost\r\n\r\nx\r\n")
        wait_for(lambda: self.inbox_subjects(), what="the delivery report")
        c = imap_login(self.s.imap_port, ALICE, PASSWORD)
        try:
            c.select("INBOX", readonly=True)
            _, d = c.fetch(b"1", "(BODY.PEEK[])")
            report = d[0][1]
        finally:
            c.logout()
        subject = next(l for l in report.split(b"\r\n") if l.startswith(b"Subject:"))
        decoded = email.header.make_header(email.header.decode_header(
            subject[len(b"Subject:"):].decode().strip()))
        self.assertEqual(str(decoded), "配送できなかったメールの返送")
        self.assertIn("配送できませんでした".encode(), report)
        self.assertIn(b"Status: 5.1.1", report)
        # Back to the browser's language: the cookie is deleted.
        status, h, _ = request(self.site.port, "/web/api/language", "POST",
                               json.dumps({"language": ""}), headers)
        self.assertEqual(status, 200)
        self.assertIn("hato_lang=;", h["set-cookie"])
        self.assertIn("Max-Age=0", h["set-cookie"])


def read_export(data, address):
    """The files `hato export ADDRESS DIR` writes, by relative path."""
    out = tempfile.mkdtemp(prefix="hato-export-")
    try:
        run_cli("export", address, os.path.join(out, "x"), data=data)
        files = {}
        for root, _, names in os.walk(os.path.join(out, "x")):
            for f in names:
                p = os.path.join(root, f)
                with open(p, "rb") as fh:
                    files[os.path.relpath(p, os.path.join(out, "x"))] = fh.read()
        return files
    finally:
        shutil.rmtree(out)


@unittest.skipUnless(shutil.which("node") and os.path.exists(CHROMIUM),
                     "node and Debian's chromium are needed (scripts/install-deps.sh)")
class BrowserPagesTest(unittest.TestCase):
    """tests/browser/pages.mjs in Chromium, checked from outside: the changed
    password in IMAP, the download against `hato export`, the admin's new
    user over IMAP, the retried message at the fake MX."""

    def test_pages_in_chromium(self):
        mx = FakeMX()
        mx.rcpt_replies["carol@remote.example"] = "451 4.3.0 try again later"
        dns = FakeDNS({"remote.example": [("MX", "10 mx.remote.example.")],
                       "mx.remote.example": [("A", "127.0.0.1")]})
        site = WebSite()
        s = site.server
        try:
            s.set_config("outbound", "resolver", f'"{dns.address}"')
            s.set_config("outbound", "smtp_port", str(mx.port))
            s.set_config("outbound", "retry_base_seconds", "3600")
            s.set_config("outbound", "retry_max_seconds", "3600")
            site.start()
            with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as smtp:
                smtp.sendmail("x@remote.test", [ALICE],
                              f"From: x@remote.test\r\nTo: {ALICE}\r\nSubject: hello\r\n\r\n"
                              "From here\r\nbody\r\n")
            with smtplib.SMTP("127.0.0.1", s.submission_port, timeout=10) as smtp:
                smtp.login(BOB, PASSWORD)
                smtp.sendmail(BOB, ["carol@remote.example"], "Subject: stuck\r\n\r\nx\r\n")
            admin = Browser(site.port, ROOT_ADMIN, PASSWORD)

            def deferred():
                _, doc = admin.get_json("/web/admin/queue")
                return next((m["id"] for m in doc["messages"]
                             if any(r["attempts"] >= 1 for r in m["recipients"])), None)
            qid = wait_for(deferred, what="the first, deferred attempt")
            del mx.rcpt_replies["carol@remote.example"]
            shots = shots_dir()
            os.makedirs(shots, exist_ok=True)
            zip_path = os.path.join(shots, "export.zip")
            new_pass, new_user = "changed-in-the-browser", f"erin@{DOMAIN}"
            env = dict(os.environ, HATO_URL=f"http://127.0.0.1:{site.port}", HATO_USER=ALICE,
                       HATO_PASS=PASSWORD, HATO_NEWPASS=new_pass, HATO_ADMIN=ROOT_ADMIN,
                       HATO_ADMIN_PASS=PASSWORD, HATO_NEWUSER=new_user,
                       HATO_NEWUSER_PASS="erin-first-password", HATO_QUEUE_ID=str(qid),
                       HATO_SHOTS=shots, HATO_EXPORT_OUT=zip_path, CHROMIUM=CHROMIUM,
                       HATO_VACATION_SUBJECT="Away until Monday",
                       HATO_FORWARD_TO="carol@remote.example")
            r = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "pages.mjs")],
                               env=env, capture_output=True, text=True, timeout=300)
            print(r.stdout[-6000:], r.stderr[-3000:])
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:] + s.logs()[-3000:])
            self.assertIn(" passed, 0 failed", r.stdout)
            # The password changed in the browser: the old one fails in IMAP too.
            self.assertIsNone(imap_login(s.imap_port, ALICE, PASSWORD))
            c = imap_login(s.imap_port, ALICE, new_pass)
            self.assertIsNotNone(c)
            c.logout()
            # The app password made in the browser works for IMAP.
            with open(os.path.join(shots, "app-password.txt")) as fh:
                app = fh.read().strip()
            c = imap_login(s.imap_port, ALICE, app)
            self.assertIsNotNone(c)
            c.logout()
            # The admin's new user logs in over IMAP.
            c = imap_login(s.imap_port, new_user, "erin-first-password")
            self.assertIsNotNone(c)
            c.logout()
            # The retried message reached the remote MX.
            self.assertTrue(any("carol@remote.example" in m["rcpts"] for m in mx.messages))
            # The download equals `hato export`.
            want = read_export(s.data, ALICE)
            with zipfile.ZipFile(zip_path) as z:
                self.assertEqual({n: z.read(n) for n in z.namelist()}, want)
            self.assertIn(b"hello", want["INBOX.mbox"])
            # What the member set in the browser: new mail goes on to carol
            # (no copy kept) and dave gets the vacation reply.
            with smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30) as smtp:
                smtp.sendmail("dave@remote.example", [ALICE],
                              f"From: dave@remote.example\r\nTo: {ALICE}\r\n"
                              "Subject: are you there\r\n\r\nbody\r\n")
            fwd = wait_for(lambda: [m for m in mx.received_for("carol@remote.example")
                                    if b"are you there" in m["data"]], what="the forwarded mail")
            self.assertIn("=remote.example=dave@", fwd[0]["mail_from"])  # SRS
            reply = wait_for(lambda: mx.received_for("dave@remote.example"), what="the reply")
            self.assertIn(b"Away until Monday", reply[0]["data"])
            self.assertEqual(read_export(s.data, ALICE), want)  # no copy kept
            for name in ("account.png", "account-app-password.png", "account-password-changed.png",
                         "account-vacation-forwarding.png", "account-ja.png",
                         "admin-overview-ja.png", "admin-accounts-ja.png", "admin-dns-ja.png",
                         "admin-queue-ja.png", "admin-backups-ja.png", "admin-audit-ja.png"):
                self.assertGreater(os.path.getsize(os.path.join(shots, name)), 1000, name)
        finally:
            s.cleanup()
            mx.stop()
            dns.stop()


class ConfigTest(unittest.TestCase):
    def test_session_hours_and_web_root(self):
        site = WebSite()
        try:
            root = os.path.join(site.server.data, "site")
            os.makedirs(root)
            with open(os.path.join(root, "index.html"), "w") as f:
                f.write("<!doctype html><title>custom root</title>")
            site.server.set_config("web", "root", '"site"')
            site.server.set_config("web", "session_hours", "2")
            site.start()
            status, _, body = request(site.port, "/")
            self.assertEqual(status, 200)
            self.assertIn(b"custom root", body)
            status, headers, body = request(
                site.port, "/web/login", "POST",
                json.dumps({"username": ALICE, "password": PASSWORD}),
                {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{site.port}"})
            self.assertEqual(status, 200)
            self.assertIn("Max-Age=7200", headers["set-cookie"])
            self.assertAlmostEqual(json.loads(body)["expiresAt"], time.time() + 7200, delta=30)
        finally:
            site.server.cleanup()


if __name__ == "__main__":
    unittest.main()
