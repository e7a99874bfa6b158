"""ManageSieve (RFC 5804, src/managesieve) over loopback: a raw Python
client and Debian's sieve-connect upload, list, activate and fetch scripts;
the uploaded script then filters mail (SMTP in, IMAP out)."""
import base64
import http.client
import imaplib
import json
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli

ALICE = f"alice@{DOMAIN}"
SCRIPT = 'require ["fileinto", "mailbox"];\r\nif header :contains "subject" "report" {\r\n' \
         '  fileinto :create "Reports";\r\n}\r\n'


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def response(self):
        """Lines up to and including the final OK/NO/BYE line; literals inlined."""
        lines = []
        while True:
            line = self.line()
            if line.startswith("{") and line.endswith("}"):
                n = int(line[1:-1])
                while len(self.buf) < n:
                    self.buf += self.sock.recv(65536)
                lines.append(self.buf[:n].decode())
                self.buf = self.buf[n:]
                self.line()  # the CRLF that ends the literal's response line
                continue
            lines.append(line)
            if line.split(" ")[0] in ("OK", "NO", "BYE"):
                return lines

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.response()

    def close(self):
        self.sock.close()


def literal(s):
    return "{%d+}\r\n%s" % (len(s.encode()), s)


class ManageSieveTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()

    def tearDown(self):
        self.server.cleanup()

    def login(self):
        c = Client(self.server.managesieve_port)
        greeting = c.response()
        self.assertEqual(greeting[-1], "OK")
        self.assertIn('"IMPLEMENTATION" "Hato"', greeting)
        sieve = [l for l in greeting if l.startswith('"SIEVE"')][0]
        for ext in ("fileinto", "vacation", "imap4flags", "variables", "mailbox", "reject"):
            self.assertIn(ext, sieve)
        auth = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        self.assertEqual(c.cmd(f'AUTHENTICATE "PLAIN" "{auth}"')[-1].split(" ")[0], "OK")
        return c

    def test_python_client_put_list_activate_get_delete(self):
        c = Client(self.server.managesieve_port)
        c.response()
        bad = base64.b64encode(f"\0{ALICE}\0wrong".encode()).decode()
        self.assertTrue(c.cmd(f'AUTHENTICATE "PLAIN" "{bad}"')[-1].startswith("NO"))
        self.assertTrue(c.cmd('LISTSCRIPTS')[-1].startswith("NO"))  # not logged in
        c.close()
        c = self.login()
        self.assertEqual(c.cmd('HAVESPACE "main" 1000')[-1], "OK")
        self.assertIn("QUOTA/MAXSIZE", c.cmd('HAVESPACE "main" 99999999')[-1])
        # A script with an error is refused with the line of the error.
        r = c.cmd('PUTSCRIPT "bad" ' + literal('fileinto "x";\r\n'))
        self.assertTrue(r[-1].startswith("NO"), r)
        self.assertIn("line 1", r[-1])
        self.assertTrue(c.cmd("CHECKSCRIPT " + literal('if true {\r\n'))[-1].startswith("NO"))
        self.assertEqual(c.cmd("CHECKSCRIPT " + literal(SCRIPT))[-1], "OK")
        self.assertEqual(c.cmd('PUTSCRIPT "main" ' + literal(SCRIPT))[-1], "OK")
        self.assertEqual(c.cmd('PUTSCRIPT "other" "keep;"')[-1], "OK")
        self.assertEqual(c.cmd('SETACTIVE "main"')[-1], "OK")
        self.assertEqual(c.cmd("LISTSCRIPTS"), ['"main" ACTIVE', '"other"', "OK"])
        self.assertEqual(c.cmd('GETSCRIPT "main"'), [SCRIPT, "OK"])
        self.assertIn("NONEXISTENT", c.cmd('GETSCRIPT "nope"')[-1])
        self.assertIn("ACTIVE", c.cmd('DELETESCRIPT "main"')[-1])
        self.assertEqual(c.cmd('RENAMESCRIPT "other" "second"')[-1], "OK")
        self.assertIn("ALREADYEXISTS", c.cmd('RENAMESCRIPT "second" "main"')[-1])
        self.assertEqual(c.cmd('DELETESCRIPT "second"')[-1], "OK")
        self.assertEqual(c.cmd("LOGOUT")[-1].split(" ")[0], "OK")
        c.close()
        # The uploaded, active script filters delivery.
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("carol@remote.example", [ALICE],
                       "From: carol@remote.example\r\nSubject: weekly report\r\n\r\nx\r\n")
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=10)
        m.login(ALICE, PASSWORD)
        typ, data = m.select('"Reports"')
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0], b"1")
        m.logout()
        # And the CLI sees what ManageSieve stored.
        listing = run_cli("sieve", "list", ALICE, data=self.server.data).stdout
        self.assertIn("main\tactive", listing)

    def test_sasl_continuation_and_line_limits(self):
        c = Client(self.server.managesieve_port)
        c.response()
        c.sock.sendall(b'AUTHENTICATE "PLAIN"\r\n')
        self.assertEqual(c.line(), '""')  # the empty challenge
        auth = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        self.assertEqual(c.cmd(f'"{auth}"')[-1].split(" ")[0], "OK")
        r = c.cmd('PUTSCRIPT "huge" {999999999+}')
        self.assertTrue(r[-1].startswith("NO"), r)
        self.assertEqual(c.cmd("NOOP")[-1].split(" ")[0], "OK")  # the session goes on
        c.close()

    def test_reserved_jmap_scripts_are_invisible_and_untouchable(self):
        # JMAP's VacationResponse keeps its script as "jmap.vacation".
        c = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=10)
        body = json.dumps({"using": ["urn:ietf:params:jmap:core",
                                     "urn:ietf:params:jmap:vacationresponse"],
                           "methodCalls": [["VacationResponse/set", {"update": {"singleton": {
                               "isEnabled": True, "textBody": "Away."}}}, "0"]]})
        token = base64.b64encode(f"{ALICE}:{PASSWORD}".encode()).decode()
        c.request("POST", "/jmap/api/", body, {"Content-Type": "application/json",
                                               "Authorization": "Basic " + token})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.read())["methodResponses"][0][1]["updated"],
                         {"singleton": None})
        c = self.login()
        self.assertEqual(c.cmd('PUTSCRIPT "mine" "keep;"')[-1], "OK")
        self.assertEqual(c.cmd("LISTSCRIPTS"), ['"mine"', "OK"])
        for cmd in ('GETSCRIPT "jmap.vacation"', 'SETACTIVE "jmap.vacation"',
                    'DELETESCRIPT "jmap.vacation"', 'RENAMESCRIPT "jmap.vacation" "x"',
                    'GETSCRIPT "JMAP.Vacation"'):
            r = c.cmd(cmd)
            self.assertTrue(r[-1].startswith("NO (NONEXISTENT)"), (cmd, r))
        self.assertTrue(c.cmd('PUTSCRIPT "jmap.vacation" "keep;"')[-1].startswith("NO"))
        # HAVESPACE answers as PUTSCRIPT would (RFC 5804 section 2.3).
        self.assertTrue(c.cmd('HAVESPACE "jmap.vacation" 10')[-1].startswith("NO"))
        self.assertTrue(c.cmd('HAVESPACE "jmap.other" 10')[-1].startswith("NO"))
        self.assertTrue(c.cmd('RENAMESCRIPT "mine" "jmap.forward"')[-1].startswith("NO"))
        self.assertEqual(c.cmd("LISTSCRIPTS"), ['"mine"', "OK"])
        c.close()
        # The vacation script is still there and still answers.
        listing = run_cli("sieve", "list", ALICE, data=self.server.data).stdout
        self.assertIn("jmap.vacation", listing)
        self.assertNotIn("jmap.vacation\tactive", listing)
        # Nor can a user's script include it (RFC 6609: a missing script).
        c = self.login()
        inc = 'require "include";\r\ninclude :personal "jmap.vacation";\r\n'
        self.assertEqual(c.cmd('PUTSCRIPT "inc" ' + literal(inc))[-1], "OK")
        self.assertEqual(c.cmd('SETACTIVE "inc"')[-1], "OK")
        c.close()
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("carol@remote.example", [ALICE],
                       f"From: carol@remote.example\r\nTo: {ALICE}\r\nSubject: hi\r\n\r\nx\r\n")
        listing = run_cli("sieve", "list", ALICE, data=self.server.data).stdout
        self.assertIn('last error: script "inc": line 2: include "jmap.vacation": no such script',
                      listing)

    @unittest.skipUnless(shutil.which("sieve-connect"), "sieve-connect not installed")
    def test_sieve_connect_upload_activate_list_download(self):
        tmp = tempfile.mkdtemp(prefix="hato-sieve-connect-")
        try:
            local = os.path.join(tmp, "filter.sieve")
            open(local, "w").write(SCRIPT.replace("\r\n", "\n"))

            def sc(*args):
                r, w = os.pipe()
                os.write(w, (PASSWORD + "\n").encode())
                os.close(w)
                try:
                    return subprocess.run(
                        ["sieve-connect", "--server", "127.0.0.1", "--port",
                         str(self.server.managesieve_port), "--user", ALICE, "--authmech",
                         "PLAIN", "--passwordfd", str(r), "--clearchan", "--notlsverify", *args],
                        pass_fds=(r,), capture_output=True, text=True, timeout=30, cwd=tmp)
                finally:
                    os.close(r)

            up = sc("--upload", "--localsieve", local, "--remotesieve", "filter")
            self.assertEqual(up.returncode, 0, up.stdout + up.stderr)
            act = sc("--activate", "--remotesieve", "filter")
            self.assertEqual(act.returncode, 0, act.stdout + act.stderr)
            ls = sc("--list")
            self.assertEqual(ls.returncode, 0, ls.stdout + ls.stderr)
            self.assertIn("filter", ls.stdout)
            self.assertIn("ACTIVE", ls.stdout.upper())
            down = os.path.join(tmp, "copy.sieve")
            dl = sc("--download", "--remotesieve", "filter", "--localsieve", down)
            self.assertEqual(dl.returncode, 0, dl.stdout + dl.stderr)
            self.assertEqual(open(down).read().replace("\r\n", "\n"),
                             SCRIPT.replace("\r\n", "\n"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        listing = run_cli("sieve", "list", ALICE, data=self.server.data).stdout
        self.assertIn("filter\tactive", listing)


if __name__ == "__main__":
    unittest.main()
