"""The HTTP server (src/http): keep-alive, the named limits and their replies
(431, 413, 408, 503 + Retry-After), authentication (Basic from loopback or
over TLS, bearer tokens from `hato token`, 401 with WWW-Authenticate), and
static files (ETag/304, precompressed variants, no listing, no escapes)."""
import base64
import gzip
import http.client
import json
import os
import socket
import ssl
import threading
import time
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli

ALICE = f"alice@{DOMAIN}"


def basic(user=ALICE, password=PASSWORD):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def read_response(sock, buf=b""):
    """Reads one response (Content-Length bodies only); returns (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before a response; got %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:n], rest[n:]


def closed(sock, timeout=10):
    sock.settimeout(timeout)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class HttpTest(unittest.TestCase):
    config = {}

    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=("alice", "bob"))
        for (section, key), value in cls.config.items():
            cls.server.set_config(section, key, value)
        cls.prepare(cls.server)
        cls.server.start()

    @classmethod
    def prepare(cls, server):
        pass

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=15)

    def raw(self):
        return socket.create_connection(("127.0.0.1", self.server.http_port), timeout=15)


class BasicsTest(HttpTest):
    config = {("http", "max_header_bytes"): "4096", ("http", "max_body_bytes"): "2048"}

    def test_keep_alive_and_basic_auth(self):
        c = self.conn()
        for _ in range(3):
            c.request("GET", "/api/whoami", headers={"Authorization": basic()})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.read()), {"account": ALICE, "via": "basic"})
        # The same socket served all three (http.client reconnects silently otherwise).
        self.assertIsNotNone(c.sock)
        s = self.raw()
        s.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic().encode() +
                  b"\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        st1, _, _, rest = read_response(s)
        st2, _, _, _ = read_response(s, rest)
        self.assertEqual((st1, st2), (200, 404))
        s.close()

    def test_unauthenticated_and_wrong_password_get_401(self):
        for headers in ({}, {"Authorization": basic(password="wrong")},
                        {"Authorization": basic(user="nobody@" + DOMAIN)},
                        {"Authorization": "Bearer hato_notarealtoken"},
                        {"Authorization": "Basic !!!"}):
            c = self.conn()
            c.request("GET", "/api/whoami", headers=headers)
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 401, headers)
            self.assertIn("Basic realm=", r.getheader("WWW-Authenticate"))
            self.assertIn("Bearer", r.getheader("WWW-Authenticate"))
            c.close()

    def test_not_found_and_method_not_allowed(self):
        c = self.conn()
        c.request("GET", "/no/such/thing")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 404)
        c.request("DELETE", "/api/whoami")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 405)
        self.assertIn("GET", r.getheader("Allow"))

    def test_header_limit_431(self):
        s = self.raw()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        status, _, _, _ = read_response(s)
        self.assertEqual(status, 431)
        self.assertTrue(closed(s))

    def test_body_limit_413(self):
        s = self.raw()
        s.sendall(b"POST /api/whoami HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        status, _, _, _ = read_response(s)
        self.assertEqual(status, 413)
        s.close()
        # Chunked: the limit applies to the decoded body as it grows.
        s = self.raw()
        chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
        s.sendall(b"POST /api/whoami HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  chunk * 3 + b"0\r\n\r\n")
        status, _, _, _ = read_response(s)
        self.assertEqual(status, 413)
        s.close()

    def test_malformed_requests_get_400(self):
        for req in (b"GET / HTTP/1.1\r\n\r\n",  # no Host
                    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                    b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET / HTTP/3\r\n\r\n"):
            s = self.raw()
            s.sendall(req)
            status, _, _, _ = read_response(s)
            self.assertEqual(status, 400, req)
            s.close()

    def test_chunked_body_accepted(self):
        s = self.raw()
        s.sendall(b"POST /api/whoami HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Authorization: " + basic().encode() + b"\r\n\r\n5;ext=1\r\nhello\r\n0\r\n"
                  b"Trailer: x\r\n\r\nGET /api/whoami HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _, rest = read_response(s)
        self.assertEqual(status, 405)  # whoami is GET only: the body was read to its end...
        status, _, _, _ = read_response(s, rest)
        self.assertEqual(status, 401)  # ...and the next request on the connection was parsed
        s.close()


class TimeoutsTest(HttpTest):
    config = {("http", "request_timeout_seconds"): "2", ("http", "idle_timeout_seconds"): "2"}

    def test_slow_request_gets_408(self):
        s = self.raw()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        start = time.time()
        status, _, _, _ = read_response(s)
        self.assertEqual(status, 408)
        self.assertLess(time.time() - start, 10)
        self.assertTrue(closed(s))

    def test_trickled_request_gets_408(self):
        s = self.raw()
        start = time.time()
        s.sendall(b"GET / HTTP/1.1\r\n")
        got = b""
        s.settimeout(0.5)
        for _ in range(20):  # a byte every 0.5 s never completes the head
            try:
                s.sendall(b"X")
            except OSError:
                break
            try:
                got += s.recv(4096)
                if got:
                    break
            except socket.timeout:
                pass
        self.assertTrue(got.startswith(b"HTTP/1.1 408"), got)
        self.assertLess(time.time() - start, 8)

    def test_idle_keep_alive_closes(self):
        s = self.raw()
        s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _, _ = read_response(s)
        self.assertEqual(status, 404)
        start = time.time()
        s.settimeout(10)
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        self.assertTrue(data.startswith(b"HTTP/1.1 408"), data)
        self.assertLess(time.time() - start, 8)
        self.assertGreater(time.time() - start, 1)


class AdmissionTest(HttpTest):
    config = {("http", "max_connections"): "3", ("http", "max_requests_per_ip"): "1",
              ("server", "per_ip_limits_on_loopback"): "true",
              ("auth", "penalty_base_ms"): "3000", ("auth", "penalty_max_ms"): "3000"}

    def test_connections_past_the_limit_get_503(self):
        # The harness's port probe (connect, close) holds a place until its
        # session, on a session loop, has read the close; the accepts of the
        # control loop do not wait for that (server/event_loops.h).
        time.sleep(0.5)
        held = [self.raw() for _ in range(3)]
        time.sleep(0.3)
        extra = self.raw()
        status, headers, _, _ = read_response(extra)
        self.assertEqual(status, 503)
        self.assertEqual(headers.get("retry-after"), "5")
        for h in held:
            h.close()
        time.sleep(0.3)
        c = self.conn()
        c.request("GET", "/x")
        self.assertEqual(c.getresponse().status, 404)
        c.close()

    def test_requests_in_progress_past_the_limit_get_503(self):
        # A failed login holds its request for the 3 s penalty.
        slow = self.raw()
        slow.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                     basic(password="bad").encode() + b"\r\n\r\n")
        time.sleep(0.5)
        c = self.conn()
        c.request("GET", "/x")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 503)
        self.assertEqual(r.getheader("Retry-After"), "5")
        status, _, _, _ = read_response(slow)
        self.assertEqual(status, 401)
        slow.close()
        c.request("GET", "/x")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 404)
        c.close()


class TokensTest(HttpTest):
    def whoami(self, auth):
        c = self.conn()
        c.request("GET", "/api/whoami", headers={"Authorization": auth})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def test_bearer_token_lifecycle(self):
        out = run_cli("token", "add", ALICE, "--label", "test client", data=self.server.data)
        token = out.stdout.strip()
        self.assertTrue(token.startswith("hato_"))
        status, body = self.whoami("Bearer " + token)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"account": ALICE, "via": "bearer"})
        listing = run_cli("token", "list", ALICE, data=self.server.data).stdout
        self.assertIn("test client", listing)
        self.assertNotIn(token, listing)
        tid = listing.split("\t")[0]
        # Bob cannot revoke Alice's token.
        r = run_cli("token", "revoke", f"bob@{DOMAIN}", tid, data=self.server.data, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.whoami("Bearer " + token)[0], 200)
        run_cli("token", "revoke", ALICE, tid, data=self.server.data)
        self.assertEqual(self.whoami("Bearer " + token)[0], 401)

    def test_token_of_removed_account_is_refused(self):
        run_cli("user", "add", f"carol@{DOMAIN}", "--password-stdin", data=self.server.data,
                input=PASSWORD + "\n")
        token = run_cli("token", "add", f"carol@{DOMAIN}", data=self.server.data).stdout.strip()
        self.assertEqual(self.whoami("Bearer " + token)[0], 200)
        run_cli("user", "remove", f"carol@{DOMAIN}", data=self.server.data)
        self.assertEqual(self.whoami("Bearer " + token)[0], 401)


class PlaintextPolicyTest(HttpTest):
    config = {("auth", "allow_plaintext_on_loopback"): "false"}

    @classmethod
    def prepare(cls, server):
        from harness import free_port
        server.https_port = free_port()
        server.set_config("listen", "https", f'"127.0.0.1:{server.https_port}"')

    def test_basic_needs_tls_then_works_over_https(self):
        c = self.conn()
        c.request("GET", "/api/whoami", headers={"Authorization": basic()})
        r = c.getresponse()
        self.assertEqual(r.status, 401)
        self.assertIn(b"TLS", r.read())
        c.close()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", self.server.https_port, timeout=15,
                                        context=ctx)
        for _ in range(2):  # keep-alive over TLS
            c.request("GET", "/api/whoami", headers={"Authorization": basic()})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.read())["account"], ALICE)
        c.close()


class StaticFilesTest(HttpTest):
    config = {("http", "static_dir"): '"www"'}

    @classmethod
    def prepare(cls, server):
        www = os.path.join(server.data, "www")
        os.makedirs(os.path.join(www, "sub"))
        os.makedirs(os.path.join(www, "empty"))
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<h1>home</h1>")
        with open(os.path.join(www, "app.js"), "w") as f:
            f.write("console.log('plain');" * 50)
        with gzip.open(os.path.join(www, "app.js.gz"), "wb") as f:
            f.write(b"console.log('plain');" * 50)
        with open(os.path.join(www, "sub", "data.json"), "w") as f:
            f.write('{"a": 1}')
        os.symlink(os.path.join(server.data, "hato.toml"), os.path.join(www, "leak.txt"))

    def get(self, path, headers=None):
        c = self.conn()
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body

    def test_files_types_and_etag(self):
        r, body = self.get("/static/")
        self.assertEqual((r.status, body), (200, b"<h1>home</h1>"))
        self.assertEqual(r.getheader("Content-Type"), "text/html; charset=utf-8")
        r, body = self.get("/static/sub/data.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        etag = r.getheader("ETag")
        self.assertTrue(etag)
        r, body = self.get("/static/sub/data.json", {"If-None-Match": etag})
        self.assertEqual((r.status, body), (304, b""))
        r, body = self.get("/static/sub/data.json", {"If-None-Match": '"other"'})
        self.assertEqual(r.status, 200)

    def test_precompressed_variant(self):
        r, body = self.get("/static/app.js", {"Accept-Encoding": "gzip, br;q=0"})
        self.assertEqual(r.getheader("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(body), b"console.log('plain');" * 50)
        self.assertEqual(r.getheader("Content-Type"), "text/javascript; charset=utf-8")
        r, body = self.get("/static/app.js")
        self.assertIsNone(r.getheader("Content-Encoding"))
        self.assertEqual(body, b"console.log('plain');" * 50)

    def test_no_listing_and_no_escape(self):
        self.assertEqual(self.get("/static/empty/")[0].status, 404)
        self.assertEqual(self.get("/static/leak.txt")[0].status, 404)
        for target in (b"/static/../hato.toml", b"/static/%2e%2e/hato.toml",
                       b"/static/sub/..%2f..%2fhato.toml", b"/static//etc/passwd",
                       b"/static/sub/%00"):
            s = self.raw()
            s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, body, _ = read_response(s)
            self.assertIn(status, (400, 404), target)
            self.assertNotIn(b"[listen]", body)
            s.close()


if __name__ == "__main__":
    unittest.main()
