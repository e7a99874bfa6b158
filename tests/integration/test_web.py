"""The web site (issue 13) against a live `hato serve --http`: the contract
checks with raw HTTP (the webmail page and its CSP, Thunderbird autoconfig,
the Apple profile, /healthz, /readyz, /status answering within 1 s and
saying "degraded" while storage commits are stalled by fault injection,
`hato status note` and `hato status publish`), then the browser tests
(tests/browser/webmail.mjs: Playwright driving Debian's chromium) over mail
delivered here by SMTP: a Japanese ISO-2022-JP message, hostile HTML, and
messages to search, move and delete."""
import base64
import http.client
import http.server
import json
import os
import shutil
import smtplib
import subprocess
import threading
import time
import unittest
from email.header import Header

from harness import DOMAIN, PASSWORD, Server, free_port, run_cli, shots_dir, wait_for

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def get(port, path, headers=None, method="GET", body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


class WebServer:
    """A Hato server with the HTTP listener and fault injection."""

    def __init__(self):
        self.server = Server(users=("alice", "bob"))
        self.server.set_config("store", "slow_commit_ms", 500)
        self.faults = os.path.join(self.server.data, "faults")
        self.set_faults("")
        self.server.start(env={"HATO_FAULTS_FILE": self.faults})
        wait_for(lambda: self.try_get("/healthz") == 200, what="http listener")

    @property
    def http_port(self):
        return self.server.http_port

    def try_get(self, path):
        try:
            return get(self.http_port, path, timeout=2)[0]
        except OSError:
            return None

    def set_faults(self, text):
        with open(self.faults + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.faults + ".tmp", self.faults)

    def deliver(self, raw, to=ALICE):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
            s.sendmail("sender@remote.test", [to], raw)


class ContractTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = WebServer()

    @classmethod
    def tearDownClass(cls):
        cls.web.set_faults("")
        cls.web.server.cleanup()

    def test_webmail_page_with_strict_csp(self):
        status, headers, body = get(self.web.http_port, "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers["content-type"])
        csp = headers["content-security-policy"]
        script_src = [d.strip() for d in csp.split(";") if d.strip().startswith("script-src")]
        self.assertEqual(len(script_src), 1, csp)
        self.assertNotIn("unsafe-inline", script_src[0])
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertEqual(headers.get("x-content-type-options"), "nosniff")
        # No inline script in the page: every <script> has a src.
        html = body.decode()
        self.assertIn("<script", html)
        for part in html.split("<script")[1:]:
            self.assertIn("src=", part.split(">")[0])
        # Unknown paths under / are the app too (client-side routes), not a listing.
        status, _, _ = get(self.web.http_port, "/assets/")
        self.assertIn(status, (403, 404))

    def login(self, origin=None):
        port = self.web.http_port
        origin = origin or f"http://127.0.0.1:{port}"
        return get(port, "/web/login", method="POST",
                   body=json.dumps({"username": ALICE, "password": PASSWORD}),
                   headers={"Content-Type": "application/json", "Origin": origin,
                            "Host": f"127.0.0.1:{port}"})

    def test_login_cookie_and_csrf(self):
        port = self.web.http_port
        me = f"http://127.0.0.1:{port}"
        # Another site cannot log anyone in (login CSRF).
        status, _, _ = self.login(origin="http://evil.example")
        self.assertEqual(status, 403)
        status, _, body = get(port, "/web/login", method="POST",
                              body=json.dumps({"username": ALICE, "password": "wrong"}),
                              headers={"Content-Type": "application/json", "Origin": me})
        self.assertEqual(status, 401)
        status, headers, body = self.login()
        self.assertEqual(status, 200, body)
        cookie = headers["set-cookie"]
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, cookie)
        self.assertNotIn("Secure", cookie)  # plain HTTP on loopback
        token = cookie.split(";")[0]
        doc = json.loads(body)
        self.assertEqual(doc["username"], ALICE)
        csrf = doc["csrfToken"]
        self.assertNotIn(PASSWORD, body.decode())
        # The session: GET needs only the cookie, and tells the same CSRF token.
        status, _, body = get(port, "/web/session", headers={"Cookie": token})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["csrfToken"], csrf)
        # A state change needs the cookie, our Origin and the CSRF token.
        for headers in ({"Cookie": token, "Origin": me},
                        {"Cookie": token, "Origin": "http://evil.example", "X-Hato-CSRF": csrf},
                        {"Cookie": token, "Origin": me, "X-Hato-CSRF": csrf + "x"}):
            status, _, _ = get(port, "/web/logout", method="POST", headers=headers)
            self.assertEqual(status, 401, headers)
        status, headers, _ = get(port, "/web/logout", method="POST",
                                 headers={"Cookie": token, "Origin": me, "X-Hato-CSRF": csrf})
        self.assertEqual(status, 204)
        self.assertIn("Max-Age=0", headers["set-cookie"])
        status, _, _ = get(port, "/web/session", headers={"Cookie": token})
        self.assertEqual(status, 401)  # revoked at the server, not only forgotten
        # The password never appears in the server's log.
        self.assertNotIn(PASSWORD, self.web.server.logs())

    def test_thunderbird_autoconfig(self):
        for path in (f"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={ALICE}",
                     f"/mail/config-v1.1.xml?emailaddress={ALICE}"):
            status, headers, body = get(self.web.http_port, path)
            self.assertEqual(status, 200, path)
            self.assertIn("xml", headers["content-type"])
            xml = body.decode()
            self.assertIn('<clientConfig version="1.1">', xml)
            self.assertIn(f"<domain>{DOMAIN}</domain>", xml)
            self.assertIn('<incomingServer type="imap">', xml)
            self.assertIn(f"<port>{self.web.server.imap_port}</port>", xml)
            self.assertIn(f"<username>{ALICE}</username>", xml)
        # A hostile address is refused, never echoed.
        status, _, body = get(self.web.http_port,
                              "/mail/config-v1.1.xml?emailaddress=%3Cscript%3E@x")
        self.assertEqual(status, 400)
        self.assertNotIn(b"<script>", body)
        # Another domain is not ours.
        status, _, _ = get(self.web.http_port, "/mail/config-v1.1.xml?emailaddress=a@other.test")
        self.assertEqual(status, 404)

    def test_apple_profile(self):
        status, headers, body = get(self.web.http_port,
                                    f"/autoconfig/apple.mobileconfig?emailaddress={ALICE}")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/x-apple-aspen-config")
        self.assertIn("attachment", headers.get("content-disposition", ""))
        self.assertIn(b"com.apple.mail.managed", body)
        self.assertIn(f"<integer>{self.web.server.imaps_port}</integer>".encode(), body)

    def test_health_endpoints(self):
        status, _, body = get(self.web.http_port, "/healthz")
        self.assertEqual(status, 200)
        wait_for(lambda: get(self.web.http_port, "/readyz")[0] == 200, what="ready")
        status, headers, body = get(self.web.http_port, "/status.json")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertIn(doc["status"], ("up", "degraded"))
        self.assertIn("smtp", doc["protocols"])
        self.assertIn("commitLatencyMs", doc["storage"])
        status, headers, body = get(self.web.http_port, "/status",
                                    headers={"Accept-Language": "ja,en;q=0.5"})
        self.assertEqual(status, 200)
        self.assertIn("default-src 'none'", headers["content-security-policy"])  # no script at all
        self.assertIn('lang="ja"', body.decode())

    def test_status_degraded_while_fsync_is_stalled(self):
        wait_for(lambda: json.loads(get(self.web.http_port, "/status.json")[2])["status"] == "up",
                 what="status up before the fault")
        self.web.set_faults("fsync delay_ms=6000\n")
        try:
            saw_degraded = False
            worst = 0.0
            deadline = time.time() + 20
            while time.time() < deadline and not saw_degraded:
                start = time.time()
                status, _, body = get(self.web.http_port, "/status", timeout=5)
                took = time.time() - start
                worst = max(worst, took)
                self.assertEqual(status, 200)
                self.assertLess(took, 1.0, "the status page waited on the store")
                saw_degraded = 'data-state="degraded"' in body.decode() and "degraded" in body.decode()
                time.sleep(0.3)
            self.assertTrue(saw_degraded, "never said degraded while fsync was stalled")
            print(f"status page while stalled: worst answer {worst * 1000:.0f} ms")
            status, _, _ = get(self.web.http_port, "/healthz", timeout=2)
            self.assertEqual(status, 200)  # liveness: the process is fine
        finally:
            self.web.set_faults("")
        wait_for(lambda: json.loads(get(self.web.http_port, "/status.json")[2])["status"] == "up",
                 timeout=30, what="status up again after the fault")

    def test_notes_and_publish(self):
        run_cli("status", "note", "add", "Restoring from backup; old mail back by 18:00",
                data=self.web.server.data)
        wait_for(lambda: b"Restoring from backup" in get(self.web.http_port, "/status")[2],
                 what="note on the page")
        out = os.path.join(self.web.server.data, "published")
        # (the server was started with --http, so hato.toml does not name its port)
        r = run_cli("status", "publish", out, "--from", f"127.0.0.1:{self.web.http_port}",
                    data=self.web.server.data)
        self.assertIn("(live)", r.stdout)
        with open(os.path.join(out, "index.html"), encoding="utf-8") as f:
            self.assertIn("Restoring from backup", f.read())
        with open(os.path.join(out, "index.ja.html"), encoding="utf-8") as f:
            self.assertIn('lang="ja"', f.read())
        with open(os.path.join(out, "status.json"), encoding="utf-8") as f:
            self.assertIn(json.load(f)["status"], ("up", "degraded"))
        # From a port where nothing answers: a page that says so, with the note.
        run_cli("status", "publish", out, "--from", f"127.0.0.1:{free_port()}",
                data=self.web.server.data)
        with open(os.path.join(out, "status.json"), encoding="utf-8") as f:
            doc = json.load(f)
        self.assertEqual(doc["status"], "down")
        self.assertEqual(doc["notes"][-1]["text"], "Restoring from backup; old mail back by 18:00")
        run_cli("status", "note", "clear", data=self.web.server.data)
        wait_for(lambda: b"Restoring from backup" not in get(self.web.http_port, "/status")[2],
                 what="note gone")


class Collector(http.server.BaseHTTPRequestHandler):
    hits = []

    def do_GET(self):  # noqa: N802
        Collector.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(base64.b64decode("R0lGODlhAQABAAAAACw="))

    def log_message(self, *args):
        pass


def japanese_message():
    body = "山田です。\n明日の会議は十時からです。よろしくお願いします。\n".encode("iso2022_jp")
    subject = Header("会議のお知らせ", "iso-2022-jp").encode()
    name = Header("山田太郎", "iso-2022-jp").encode()
    head = (f"From: {name} <yamada@remote.test>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n")
    return head.encode() + body.replace(b"\n", b"\r\n")


def hostile_message(remote):
    html = f"""<html><body>
<script>window.top.pwned = 1; alert('script');</script>
<img src="x" onerror="window.top.pwned=1;alert('onerror')">
<a href="javascript:window.top.pwned=1">click</a>
<div style="background:url({remote}css-bg.gif);width:expression(alert(1))">styled</div>
<img src="{remote}tracker.gif" width="1" height="1">
<form action="{remote}steal" method="post"><input name="p" value="secret"><button>Go</button></form>
<iframe src="{remote}frame"></iframe><object data="{remote}obj"></object>
<svg onload="alert('svg')"><script>alert('svg2')</script></svg>
<style>body {{ background-image: url({remote}style.gif); }}</style>
<meta http-equiv="refresh" content="0;url={remote}refresh">
<p>Hello from a hostile sender.</p></body></html>"""
    return (f"From: Mallory <mallory@remote.test>\r\nTo: {ALICE}\r\nSubject: Hostile HTML\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html).encode()


def plain(subject, text):
    return (f"From: Carol <carol@remote.test>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n").encode()


@unittest.skipUnless(shutil.which("node") and os.path.exists(CHROMIUM),
                     "node and Debian's chromium are needed (scripts/install-deps.sh)")
class BrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.collector = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Collector)
        threading.Thread(target=cls.collector.serve_forever, daemon=True).start()
        cls.remote = f"http://127.0.0.2:{cls.collector.server_address[1]}/"
        cls.web = WebServer()
        d = cls.web.deliver
        d(plain("Quarterly report", "The quarterly numbers are attached in spirit."))
        d(plain("Move me", "Please file this."))
        d(plain("Delete me", "This one goes to the trash."))
        d(hostile_message(cls.remote))
        d(japanese_message())

    @classmethod
    def tearDownClass(cls):
        cls.web.server.cleanup()
        cls.collector.shutdown()

    def test_webmail_in_chromium(self):
        shots = shots_dir()
        env = dict(os.environ, HATO_URL=f"http://127.0.0.1:{self.web.http_port}",
                   HATO_USER=ALICE, HATO_PASS=PASSWORD, HATO_USER2=BOB, HATO_PASS2=PASSWORD,
                   HATO_SHOTS=shots, HATO_REMOTE=self.remote, CHROMIUM=CHROMIUM)
        r = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "webmail.mjs")],
                           env=env, capture_output=True, text=True, timeout=400)
        print(r.stdout[-6000:], r.stderr[-3000:])
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:] +
                         self.web.server.logs()[-3000:])
        self.assertIn(" passed, 0 failed", r.stdout)
        self.assertNotIn("JMAP steps skipped", r.stdout)
        # Nothing of the hostile message reached the outside (it was never allowed).
        self.assertEqual(Collector.hits, [])
        for name in ("login.png", "inbox.png", "reader-japanese.png", "compose.png",
                     "search.png", "phone-inbox-ja.png", "phone-reader-ja.png", "status.png"):
            self.assertTrue(os.path.getsize(os.path.join(shots, name)) > 1000, name)


if __name__ == "__main__":
    unittest.main()
