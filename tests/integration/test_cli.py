"""The `hato` command line: admin commands, error messages, serve's signals."""
import os
import poplib
import signal
import smtplib
import socket
import subprocess
import tempfile
import shutil
import time
import unittest

from harness import DOMAIN, HATO, PASSWORD, LineClient, Server, free_port, run_cli


def one_line_error(test, r, *needles):
    test.assertNotEqual(r.returncode, 0)
    lines = [l for l in r.stderr.strip().split("\n") if l]
    test.assertEqual(len(lines), 1, r.stderr)
    test.assertTrue(lines[0].startswith("hato: "), lines[0])
    for n in needles:
        test.assertIn(n, lines[0])
    test.assertNotIn("terminate called", r.stderr)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hato-cli-")
        self.data = os.path.join(self.tmp, "var")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_init_creates_config_cert_and_domain(self):
        r = run_cli("init", "--domain", "example.test", data=self.data)
        self.assertIn("example.test", r.stdout)
        for f in ("hato.toml", "tls/cert.pem", "tls/key.pem", "meta.db"):
            self.assertTrue(os.path.exists(os.path.join(self.data, f)), f)
        self.assertEqual(os.stat(os.path.join(self.data, "tls/key.pem")).st_mode & 0o077, 0)
        self.assertEqual(run_cli("domain", "list", data=self.data).stdout.split(),
                         ["example.test"])
        one_line_error(self, run_cli("init", "--domain", "x.test", data=self.data, check=False),
                       "already initialised")

    def test_missing_data_dir_and_bad_arguments(self):
        one_line_error(self, run_cli("user", "list", data=self.data, check=False),
                       "no data directory", self.data)
        r = run_cli("user", "frobnicate", check=False)
        self.assertEqual(r.returncode, 2)
        one_line_error(self, r)
        one_line_error(self, run_cli("nosuchcommand", check=False))

    def test_domains_and_users(self):
        run_cli("init", "--domain", "example.test", data=self.data)
        run_cli("domain", "add", "other.test", data=self.data)
        self.assertEqual(run_cli("domain", "list", data=self.data).stdout.split(),
                         ["example.test", "other.test"])
        run_cli("user", "add", "Alice@Example.test", "--password", "pw1-long-enough", data=self.data)
        one_line_error(self, run_cli("user", "add", "alice@example.test", "--password", "x-long-enough",
                                     data=self.data, check=False), "already exists")
        one_line_error(self, run_cli("user", "add", "bob@nowhere.test", "--password", "x-long-enough",
                                     data=self.data, check=False), "not local")
        one_line_error(self, run_cli("user", "add", "not an address", "--password", "x-long-enough",
                                     data=self.data, check=False), "invalid address")
        one_line_error(self, run_cli("user", "add", "c@example.test", data=self.data,
                                     check=False), "--password")
        run_cli("user", "add", "carol@example.test", "--password-stdin", data=self.data,
                input="from stdin\n")
        listing = run_cli("user", "list", data=self.data).stdout
        self.assertIn("alice@example.test", listing)
        self.assertIn("carol@example.test", listing)
        one_line_error(self, run_cli("domain", "remove", "example.test", data=self.data,
                                     check=False), "accounts")
        run_cli("domain", "remove", "other.test", data=self.data)
        run_cli("user", "remove", "carol@example.test", data=self.data)
        self.assertNotIn("carol", run_cli("user", "list", data=self.data).stdout)
        one_line_error(self, run_cli("user", "remove", "carol@example.test", data=self.data,
                                     check=False), "no such account")

    def test_aliases(self):
        run_cli("init", "--domain", "example.test", data=self.data)
        run_cli("domain", "add", "other.test", data=self.data)
        for u in ("alice", "bob"):
            run_cli("user", "add", f"{u}@example.test", "--password", "pw-long-enough", data=self.data)
        r = run_cli("alias", "add", "Sales@Example.test", "alice@example.test", data=self.data)
        self.assertIn("added alias sales@example.test -> alice@example.test", r.stdout)
        run_cli("alias", "add", "al@other.test", "ALICE@example.test", data=self.data)
        run_cli("alias", "add", "help@example.test", "bob@example.test", data=self.data)
        self.assertEqual(run_cli("alias", "list", data=self.data).stdout.splitlines(),
                         ["al@other.test\talice@example.test",
                          "help@example.test\tbob@example.test",
                          "sales@example.test\talice@example.test"])
        self.assertEqual(run_cli("alias", "list", "bob@example.test",
                                 data=self.data).stdout.splitlines(),
                         ["help@example.test\tbob@example.test"])
        # One-line errors and a non-zero exit for every refusal.
        one_line_error(self, run_cli("alias", "add", "sales@example.test", "bob@example.test",
                                     data=self.data, check=False), "sales@example.test",
                       "alias of alice@example.test")
        one_line_error(self, run_cli("alias", "add", "bob@example.test", "alice@example.test",
                                     data=self.data, check=False), "account")
        one_line_error(self, run_cli("user", "add", "help@example.test", "--password", "pw-long-enough",
                                     data=self.data, check=False), "alias of bob@example.test")
        one_line_error(self, run_cli("alias", "add", "x@remote.test", "alice@example.test",
                                     data=self.data, check=False), "not local")
        one_line_error(self, run_cli("alias", "add", "x@example.test", "carol@example.test",
                                     data=self.data, check=False), "no such account")
        one_line_error(self, run_cli("alias", "add", "not an address", "alice@example.test",
                                     data=self.data, check=False), "invalid address")
        one_line_error(self, run_cli("alias", "list", "carol@example.test", data=self.data,
                                     check=False), "no such account")
        one_line_error(self, run_cli("domain", "remove", "other.test", data=self.data,
                                     check=False), "aliases")
        r = run_cli("alias", "add", "x@example.test", check=False, data=self.data)
        self.assertEqual(r.returncode, 2)
        one_line_error(self, r)
        self.assertIn("ALIAS", run_cli("alias", "add", "--help").stdout)
        # Removing.
        self.assertIn("removed alias al@other.test",
                      run_cli("alias", "remove", "AL@other.test", data=self.data).stdout)
        one_line_error(self, run_cli("alias", "remove", "al@other.test", data=self.data,
                                     check=False), "no such alias")
        run_cli("domain", "remove", "other.test", data=self.data)
        # A removed account's aliases are kept, inactive, and come back with it.
        run_cli("user", "remove", "bob@example.test", data=self.data)
        self.assertIn("help@example.test\tbob@example.test\t(account removed: inactive)",
                      run_cli("alias", "list", data=self.data).stdout)
        run_cli("user", "restore", "bob@example.test", data=self.data)
        self.assertIn("help@example.test\tbob@example.test\n",
                      run_cli("alias", "list", data=self.data).stdout)

    def test_passwd_and_remove_take_effect_on_login(self):
        server = Server(users=("alice",))
        try:
            server.start()
            run_cli("user", "passwd", f"alice@{DOMAIN}", "--password-stdin", data=server.data,
                    input="new-secret\n")
            p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=15)
            p.user(f"alice@{DOMAIN}")
            p.pass_("new-secret")
            p.quit()
            run_cli("user", "remove", f"alice@{DOMAIN}", data=server.data)
            p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=15)
            p.user(f"alice@{DOMAIN}")
            with self.assertRaises(poplib.error_proto):
                p.pass_("new-secret")
            p.close()
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                s.ehlo()
                s.mail("a@remote.test")
                self.assertEqual(s.rcpt(f"alice@{DOMAIN}")[0], 550)
        finally:
            server.cleanup()

    def test_serve_errors_are_one_line(self):
        run_cli("init", "--domain", "example.test", data=self.data)
        # A taken port.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            r = subprocess.run([HATO, "serve", "--data", self.data, "--smtp", f"127.0.0.1:{port}",
                                "--pop3", f"127.0.0.1:{free_port()}"], capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(f"cannot listen on 127.0.0.1:{port} for smtp", r.stderr)
        # A bad config key.
        with open(os.path.join(self.data, "hato.toml"), "a") as f:
            f.write("\n[bogus]\nkey = 1\n")
        r = subprocess.run([HATO, "serve", "--data", self.data], capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown key 'bogus.key'", r.stderr)
        self.assertNotIn("terminate called", r.stderr)

    def test_serve_empty_listener_flag_turns_it_off(self):
        # `--smtp ""` turns the listener off, as "" does in hato.toml; it used
        # to keep the config's 0.0.0.0:25 (and fail when 25 was taken).
        run_cli("init", "--domain", "example.test", data=self.data)
        port = free_port()
        args = [HATO, "serve", "--data", self.data, "--imap", f"127.0.0.1:{port}"]
        for flag in ("--smtp", "--submission", "--submissions", "--imaps", "--pop3", "--pop3s",
                     "--http", "--https", "--managesieve"):
            args += [flag, ""]
        log_path = os.path.join(self.data, "serve.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 30
            while time.time() < deadline and proc.poll() is None:
                with open(log_path) as f:
                    if "imap: listening on" in f.read():
                        break
                time.sleep(0.1)
            self.assertIsNone(proc.poll(), open(log_path).read()[-2000:])
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        with open(log_path) as f:
            listening = [line for line in f if "listening on" in line]
        self.assertEqual(len(listening), 1, listening)
        self.assertIn(f"imap: listening on 127.0.0.1:{port}", listening[0])


class SignalTest(unittest.TestCase):
    def test_sighup_reload_and_sigterm_exit(self):
        server = Server(users=("alice",))
        try:
            server.start()

            def size():
                with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                    s.ehlo()
                    return s.esmtp_features["size"]

            self.assertEqual(size(), str(25 << 20))
            server.set_config("smtp", "max_message_size", 123456)
            server.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while size() != "123456" and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(size(), "123456")
            # An invalid config is reported and the old one keeps serving.
            server.set_config("smtp", "max_message_size", '"huge"')
            server.proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            self.assertEqual(size(), "123456")
            self.assertIn("keeping the running configuration", server.logs())
            # SIGTERM: idle sessions are told to come back later and closed at once,
            # a transaction in progress is finished and acknowledged, then exit 0.
            idle = LineClient(server.smtp_port)
            self.assertEqual(idle.reply()[0], 220)
            idle_pop = LineClient(server.pop3_port)
            self.assertTrue(idle_pop.line().startswith("+OK"))
            busy = LineClient(server.smtp_port)
            busy.reply()
            busy.send(f"EHLO x.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@{DOMAIN}>\r\n"
                      "DATA\r\n")
            self.assertEqual([busy.reply()[0] for _ in range(4)], [250, 250, 250, 354])
            busy.send("Subject: in flight\r\n\r\nstarted before SIGTERM\r\n")
            start = time.time()
            server.proc.send_signal(signal.SIGTERM)
            code, text = idle.reply()
            self.assertEqual(code, 421)
            self.assertIn("4.3.2", text[0])
            self.assertIn("[SYS/TEMP]", idle_pop.line())
            busy.send(".\r\n")
            self.assertEqual(busy.reply()[0], 250)
            self.assertEqual(busy.reply()[0], 421)  # then the session is closed
            self.assertEqual(server.stop(signal.SIGTERM), 0)
            self.assertLess(time.time() - start, 4)
            server.set_config("smtp", "max_message_size", 123456)  # valid again for the restart
            server.start()
            p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=15)
            p.user(f"alice@{DOMAIN}")
            p.pass_(PASSWORD)
            self.assertTrue(any(b"Subject: in flight" in p.retr(i + 1)[1]
                                for i in range(p.stat()[0])))
            p.quit()
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
