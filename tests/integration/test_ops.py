"""Running Hato for real (issue 18): the CLI's version and errors, `hato
init`'s DNS records, postmaster/abuse, the data-directory lock, backups that
carry the DKIM keys, domain names (validation, IDNA), POP3S, and `make run`.
Each test drives the real binary (and a real `hato serve` on loopback)."""
import base64
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import DOMAIN, HATO, PASSWORD, Server, free_port, run_cli, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def zone_records(text):
    """The zone-file lines of `hato init`: [(name, type, value)], TXT unquoted."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\S+)\. 3600 IN (\S+) (.*)$", line)
        if not m:
            continue
        name, rtype, value = m.groups()
        if rtype == "TXT":
            value = "".join(re.findall(r'"([^"]*)"', value))
        out.append((name, rtype, value))
    return out


def pop3_count(port, user, password=PASSWORD):
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    p.user(user)
    p.pass_(password)
    n = p.stat()[0]
    msgs = [b"\r\n".join(p.retr(i + 1)[1]) for i in range(n)]
    p.quit()
    return msgs


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hato-ops-")
        self.data = os.path.join(self.tmp, "var")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_version(self):
        r = run_cli("--version")
        self.assertRegex(r.stdout.strip(), r"^hato \d+\.\d+\.\d+$")

    def test_unknown_commands_name_the_subcommand_help(self):
        # Defect 11: these all said "A subcommand is required (see hato --help)".
        r = run_cli("foo", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command 'foo'", r.stderr)
        self.assertIn("(see hato --help)", r.stderr)
        r = run_cli("user", "lst", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command 'lst'", r.stderr)
        self.assertIn("(see hato user --help)", r.stderr)
        r = run_cli("user", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("hato user --help", r.stderr)
        r = run_cli("user", "add", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("ADDRESS", r.stderr)
        self.assertIn("(see hato user add --help)", r.stderr)
        for r in [run_cli("foo", check=False), run_cli("user", "lst", check=False)]:
            self.assertNotIn("A subcommand is required", r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_init_prints_next_steps_and_records(self):
        r = run_cli("init", "--domain", "example.org", "--hostname", "mx.example.org",
                    "--ip", "192.0.2.7", data=self.data)
        self.assertIn("Next steps", r.stdout)
        self.assertIn("hato user add", r.stdout)
        recs = zone_records(r.stdout)
        by = {(n, t): v for n, t, v in recs}
        self.assertEqual(by[("example.org", "MX")], "10 mx.example.org.")
        self.assertEqual(by[("mx.example.org", "A")], "192.0.2.7")
        self.assertTrue(by[("example.org", "TXT")].startswith("v=spf1 "))
        self.assertTrue(by[("_dmarc.example.org", "TXT")].startswith("v=DMARC1; p="))
        self.assertTrue(by[("_mta-sts.example.org", "TXT")].startswith("v=STSv1; id="))
        self.assertTrue(by[("_smtp._tls.example.org", "TXT")].startswith("v=TLSRPTv1; rua="))
        for srv, port in (("_submissions", 465), ("_submission", 587), ("_imaps", 993),
                          ("_imap", 143), ("_pop3s", 995), ("_pop3", 110)):
            self.assertEqual(by[(f"{srv}._tcp.example.org", "SRV")],
                             f"0 1 {port} mx.example.org.")
        self.assertEqual(by[("autoconfig.example.org", "CNAME")], "mx.example.org.")
        self.assertIn("mode: testing", r.stdout)
        self.assertIn("mx: mx.example.org", r.stdout)
        # The DKIM record is the public half of the key init wrote.
        key = os.path.join(self.data, "dkim", "example.org.hato.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.assertEqual(by[("hato._domainkey.example.org", "TXT")],
                         "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())

    def test_names_are_validated(self):
        # Defect 4: these were accepted.
        for args in (["--domain", "bad domain"], ["--domain", "a..b"],
                     ["--domain", "example.org", "--hostname", "x y"],
                     ["--domain", "-bad.example"], ["--domain", "exa_mple.org"]):
            r = run_cli("init", *args, data=self.data, check=False)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn("invalid", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.data, "hato.toml")), args)
        run_cli("init", "--domain", "example.org", data=self.data)
        for bad in ("bad domain", "a..b", "x.", "a" * 64 + ".example"):
            r = run_cli("domain", "add", bad, data=self.data, check=False)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn("invalid domain", r.stderr)
        self.assertEqual(run_cli("domain", "list", data=self.data).stdout.split(),
                         ["example.org"])


class PostmasterTest(unittest.TestCase):
    """Defect 2: RFC 5321 4.5.1 requires <postmaster>; postmaster@ and abuse@
    each local domain reach the first account (or server.postmaster)."""

    def test_postmaster_and_abuse_reach_the_first_account(self):
        with Server(users=("alice", "bob")) as server:
            run_cli("domain", "add", "other.test", data=server.data)
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                s.ehlo()
                for rcpt in ("<postmaster>", "<Postmaster>", f"<postmaster@{DOMAIN}>",
                             f"<abuse@{DOMAIN}>", "<ABUSE@other.test>"):
                    s.mail("someone@remote.example")
                    code, msg = s.docmd("RCPT TO:" + rcpt)
                    self.assertEqual(code, 250, (rcpt, msg))
                    code, _ = s.data(b"Subject: to " + rcpt.encode() + b"\r\n\r\nhi\r\n")
                    self.assertEqual(code, 250)
                # Other unknown users are still unknown.
                s.mail("someone@remote.example")
                self.assertEqual(s.docmd(f"RCPT TO:<nobody@{DOMAIN}>")[0], 550)
                s.rset()
            msgs = wait_for(lambda: (lambda m: m if len(m) == 5 else None)(
                pop3_count(server.pop3_port, f"alice@{DOMAIN}")), what="5 messages for alice")
            self.assertTrue(any(b"Subject: to <postmaster>" in m for m in msgs))
            self.assertEqual(pop3_count(server.pop3_port, f"bob@{DOMAIN}"), [])

    def test_postmaster_is_configurable_and_aliases_win(self):
        server = Server(users=("alice", "bob"))
        try:
            server.set_config("server", "postmaster", f'"bob@{DOMAIN}"')
            run_cli("alias", "add", f"abuse@{DOMAIN}", f"alice@{DOMAIN}", data=server.data)
            server.start()
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                s.sendmail("someone@remote.example", ["postmaster"], b"Subject: pm\r\n\r\nx\r\n")
                s.sendmail("someone@remote.example", [f"abuse@{DOMAIN}"],
                           b"Subject: abuse\r\n\r\nx\r\n")
            bob = wait_for(lambda: pop3_count(server.pop3_port, f"bob@{DOMAIN}"), what="bob")
            self.assertIn(b"Subject: pm", bob[0])
            alice = wait_for(lambda: pop3_count(server.pop3_port, f"alice@{DOMAIN}"),
                             what="alice")
            self.assertIn(b"Subject: abuse", alice[0])
        finally:
            server.cleanup()


class DataDirLockTest(unittest.TestCase):
    """Defect 6: a second server on a data dir in use is refused, naming the
    lock and the PID; the lock goes with the process (kill -9 included)."""

    def test_second_serve_is_refused(self):
        server = Server(users=("alice",))
        try:
            server.start()
            ports = [free_port() for _ in range(7)]
            r = subprocess.run(
                [HATO, "serve", "--data", server.data, "--smtp", f"127.0.0.1:{ports[0]}",
                 "--pop3", f"127.0.0.1:{ports[1]}", "--imap", f"127.0.0.1:{ports[2]}",
                 "--imaps", f"127.0.0.1:{ports[3]}", "--pop3s", f"127.0.0.1:{ports[4]}",
                 "--submission", f"127.0.0.1:{ports[5]}",
                 "--submissions", f"127.0.0.1:{ports[6]}"],
                capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("hato.lock", r.stderr)
            self.assertIn(f"pid {server.proc.pid}", r.stderr)
            # The first server still serves.
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                self.assertEqual(s.noop()[0], 250)
            # After kill -9 the lock is free again.
            server.kill()
            server.start()
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                self.assertEqual(s.noop()[0], 250)
        finally:
            server.cleanup()


class BackupKeysTest(unittest.TestCase):
    """Defect 5: a restored data dir has the DKIM keys (and TLS key and
    certificate) with the same permissions, and the restored server signs."""

    def test_restore_has_dkim_and_tls_keys(self):
        tmp = tempfile.mkdtemp(prefix="hato-ops-bk-")
        try:
            data = os.path.join(tmp, "var")
            run_cli("init", "--domain", DOMAIN, data=data)
            run_cli("dkim", "generate", DOMAIN, "--selector", "ed2026", "--algorithm", "ed25519",
                    data=data)
            os.chmod(os.path.join(data, "tls", "cert.pem"), 0o644)
            # The secrets `hato serve` makes: SRS and the lists' unsubscribe links.
            for name in ("srs.key", "list-unsubscribe.key"):
                fd = os.open(os.path.join(data, name), os.O_WRONLY | os.O_CREAT, 0o600)
                os.write(fd, os.urandom(32).hex().encode())
                os.close(fd)
            run_cli("backup", "create", os.path.join(tmp, "bk"), "--create", data=data)
            restored = os.path.join(tmp, "restored")
            run_cli("restore", os.path.join(tmp, "bk"), data=restored)
            files = ["dkim/example.test.hato.key", "dkim/example.test.ed2026.key",
                     "tls/key.pem", "tls/cert.pem", "hato.toml", "srs.key",
                     "list-unsubscribe.key"]
            for f in files:
                a, b = os.path.join(data, f), os.path.join(restored, f)
                self.assertTrue(os.path.exists(b), f)
                self.assertEqual(open(a, "rb").read(), open(b, "rb").read(), f)
                self.assertEqual(os.stat(a).st_mode & 0o7777, os.stat(b).st_mode & 0o7777, f)
            self.assertEqual(os.stat(os.path.join(restored, "dkim/example.test.hato.key"))
                             .st_mode & 0o077, 0)
            self.assertEqual(run_cli("backup", "verify", os.path.join(tmp, "bk")).returncode, 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class IdnaTest(unittest.TestCase):
    """Defect 3: a Unicode domain is stored as its A-label; mail to either form
    is local."""

    def test_unicode_domain_accepts_both_forms(self):
        server = Server(users=("alice",))
        try:
            r = run_cli("domain", "add", "bücher.example", data=server.data)
            self.assertIn("xn--bcher-kva.example", r.stdout)
            self.assertIn("xn--bcher-kva.example",
                          run_cli("domain", "list", data=server.data).stdout.split())
            run_cli("user", "add", "kim@bücher.example", "--password-stdin", data=server.data,
                    input=PASSWORD + "\n")
            self.assertIn("kim@xn--bcher-kva.example",
                          run_cli("user", "list", data=server.data).stdout)
            server.start()
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                s.ehlo()
                s.mail("someone@remote.example")
                self.assertEqual(s.rcpt("kim@xn--bcher-kva.example")[0], 250)
                s.rset()
                s.mail("someone@remote.example", ["SMTPUTF8"])
                code, msg = s.rcpt("kim@bücher.example")
                self.assertEqual(code, 250, msg)
                s.rset()
                s.mail("someone@remote.example")
                self.assertEqual(s.rcpt("kim@xn--mller-kva.example")[0], 554)
        finally:
            server.cleanup()


class Pop3sTest(unittest.TestCase):
    def test_pop3s_is_tls_from_the_first_byte(self):
        with Server(users=("alice",)) as server:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            p = poplib.POP3_SSL("127.0.0.1", server.pop3s_port, context=ctx, timeout=10)
            self.assertTrue(p.getwelcome().startswith(b"+OK"))
            p.user(f"alice@{DOMAIN}")
            p.pass_(PASSWORD)
            self.assertEqual(p.stat(), (0, 0))
            p.quit()
            # Plaintext to the TLS port gets no greeting.
            with socket.create_connection(("127.0.0.1", server.pop3s_port), timeout=5) as s:
                s.sendall(b"CAPA\r\n")
                s.settimeout(3)
                try:
                    data = s.recv(100)
                except (socket.timeout, ConnectionResetError):
                    data = b""
                self.assertFalse(data.startswith(b"+OK"))


def deliver(port, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail("someone@remote.example", [rcpt],
                   f"Subject: {subject}\r\nMessage-ID: <{subject}@remote>\r\n\r\n"
                   f"body {subject}\r\n".encode())


def pop3_delete_all(port, user):
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    p.user(user)
    p.pass_(PASSWORD)
    for i in range(p.stat()[0]):
        p.dele(i + 1)
    p.quit()


class RemovedAccountTest(unittest.TestCase):
    """Defect 7: re-adding a removed address, restore and purge."""

    def test_readd_restore_and_purge_touch_only_what_they_name(self):
        with Server(users=("alice", "bob")) as server:
            bob = f"bob@{DOMAIN}"
            deliver(server.smtp_port, bob, "old")
            run_cli("user", "remove", bob, data=server.data)
            r = run_cli("user", "add", bob, "--password-stdin", data=server.data,
                        input=PASSWORD + "\n", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("hato user restore", r.stderr)
            self.assertIn("--new", r.stderr)
            removed = run_cli("user", "list", "--removed", data=server.data).stdout
            self.assertIn(bob, removed)
            self.assertIn("1 messages", removed)
            old_id = removed.split("\t")[0]
            run_cli("user", "add", bob, "--new", "--password-stdin", data=server.data,
                    input=PASSWORD + "\n")
            deliver(server.smtp_port, bob, "new")
            wait_for(lambda: pop3_count(server.pop3_port, bob), what="new mail")
            r = run_cli("user", "restore", bob, data=server.data, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("live account", r.stderr)
            self.assertNotIn("is not removed", r.stderr)
            # Purge the new account: the removed one and its mail stay.
            run_cli("user", "remove", bob, "--purge", "--yes", data=server.data)
            self.assertIn(f"{old_id}\t{bob}",
                          run_cli("user", "list", "--removed", data=server.data).stdout)
            run_cli("user", "restore", bob, data=server.data)
            msgs = pop3_count(server.pop3_port, bob)
            self.assertEqual(len(msgs), 1)
            self.assertIn(b"Subject: old", msgs[0])
            # Two removed accounts with one address: --purge needs --id.
            run_cli("user", "remove", bob, data=server.data)
            run_cli("user", "add", bob, "--new", "--password-stdin", data=server.data,
                    input=PASSWORD + "\n")
            run_cli("user", "remove", bob, data=server.data)
            r = run_cli("user", "remove", bob, "--purge", "--yes", data=server.data, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("--id", r.stderr)
            run_cli("user", "remove", bob, "--purge", "--yes", "--id", old_id, data=server.data)
            left = run_cli("user", "list", "--removed", data=server.data).stdout
            self.assertEqual(left.count(bob), 1)
            self.assertNotIn(f"{old_id}\t", left)


class BackupDestinationTest(unittest.TestCase):
    """Defect 9: no silent creation of a backup destination; prune."""

    def test_create_needs_create_and_prune_keeps_n(self):
        with Server(users=("alice",)) as server:
            tmp = tempfile.mkdtemp(prefix="hato-ops-dest-")
            try:
                missing = os.path.join(tmp, "not-mounted", "bk")
                r = run_cli("backup", "create", missing, data=server.data, check=False)
                self.assertEqual(r.returncode, 1)
                self.assertIn("--create", r.stderr)
                self.assertFalse(os.path.exists(os.path.join(tmp, "not-mounted")))
                empty = os.path.join(tmp, "mnt")
                os.makedirs(empty)
                r = run_cli("backup", "create", empty, data=server.data, check=False)
                self.assertEqual(r.returncode, 1)
                self.assertEqual(os.listdir(empty), [])
                run_cli("backup", "create", empty, "--create", data=server.data)
                for i in range(2):
                    deliver(server.smtp_port, f"alice@{DOMAIN}", f"m{i}")
                    run_cli("backup", "create", empty, data=server.data)
                sets = run_cli("backup", "list", empty).stdout.strip().splitlines()
                self.assertEqual(len(sets), 3)
                stray = os.path.join(empty, "bodies", "ab", "ab" + "0" * 62)
                open(stray, "w").write("not referenced")
                r = run_cli("backup", "prune", empty, "--keep", "1")
                self.assertIn("2 sets", r.stdout)
                self.assertFalse(os.path.exists(stray))
                left = run_cli("backup", "list", empty).stdout.strip().splitlines()
                self.assertEqual([l.split()[0] for l in left], [sets[-1].split()[0]])
                self.assertEqual(run_cli("backup", "verify", empty).returncode, 0)
                restored = os.path.join(tmp, "restored")
                run_cli("restore", empty, data=restored)
                self.assertIn("2 messages", run_cli("user", "list", data=restored).stdout)
                r = run_cli("backup", "prune", empty, "--keep", "0", check=False)
                self.assertNotEqual(r.returncode, 0)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)


class UndeleteAfterMergeTest(unittest.TestCase):
    """Defect 10: undelete after restore --merge made duplicates, and the next
    start logged the superseded copies as purged past retention."""

    def test_no_duplicates_and_no_false_purge_log(self):
        server = Server(users=("alice",))
        tmp = tempfile.mkdtemp(prefix="hato-ops-undel-")
        try:
            server.start()
            alice = f"alice@{DOMAIN}"
            for i in range(3):
                deliver(server.smtp_port, alice, f"u{i}")
            wait_for(lambda: len(pop3_count(server.pop3_port, alice)) == 3, what="3 messages")
            bk = os.path.join(tmp, "bk")
            run_cli("backup", "create", bk, "--create", data=server.data)
            pop3_delete_all(server.pop3_port, alice)
            r = run_cli("restore", bk, "--merge", data=server.data)
            self.assertIn("3 added", r.stdout)
            r = run_cli("undelete", alice, data=server.data)
            self.assertIn("undeleted 0", r.stdout)
            self.assertEqual(len(pop3_count(server.pop3_port, alice)), 3)
            # A plain undelete, then a restart: nothing is "purged past retention".
            pop3_delete_all(server.pop3_port, alice)
            self.assertIn("undeleted 3", run_cli("undelete", alice, data=server.data).stdout)
            self.assertEqual(len(pop3_count(server.pop3_port, alice)), 3)
            server.stop()
            server.start()
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                s.noop()
            time.sleep(1)
            self.assertNotIn("past retention", server.logs())
            self.assertEqual(len(pop3_count(server.pop3_port, alice)), 3)
            # The superseded rows are gone from later backups too.
            run_cli("backup", "create", bk, data=server.data)
            restored = os.path.join(tmp, "restored")
            run_cli("restore", bk, data=restored)
            self.assertIn("3 messages", run_cli("user", "list", data=restored).stdout)
            self.assertIn("undeleted 0", run_cli("undelete", alice, data=restored).stdout)
        finally:
            server.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


def cert_fingerprint(port):
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return ssl.PEM_cert_to_DER_cert(pem)


class TlsReloadTest(unittest.TestCase):
    """Defect 8: SIGHUP with a bad certificate said "configuration reloaded";
    a good new one needed a restart."""

    def test_bad_certificate_is_refused_and_a_new_one_loads(self):
        with Server(users=("alice",)) as server:
            before = cert_fingerprint(server.imaps_port)
            cert = os.path.join(server.data, "tls", "cert.pem")
            key = os.path.join(server.data, "tls", "key.pem")
            good = open(cert).read()
            open(cert, "w").write("-----BEGIN CERTIFICATE-----\ngarbage\n"
                                  "-----END CERTIFICATE-----\n")
            server.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "keeping the running configuration and certificate" in server.logs(),
                     what="reload refused")
            self.assertNotIn("configuration and TLS certificate reloaded", server.logs())
            self.assertEqual(cert_fingerprint(server.imaps_port), before)
            # A key that does not match the certificate is refused too.
            open(cert, "w").write(good)
            subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-out", key + ".other"], check=True,
                           capture_output=True)
            shutil.copy(key, key + ".good")
            shutil.copy(key + ".other", key)
            server.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: server.logs().count("keeping the running configuration and "
                                                 "certificate") == 2, what="mismatch refused")
            self.assertEqual(cert_fingerprint(server.imaps_port), before)
            # A new, valid pair is used by the next handshakes, without a restart.
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "30", "-subj", "/CN=renewed.example.test"], check=True,
                           capture_output=True)
            server.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "configuration and TLS certificate reloaded" in server.logs(),
                     what="reload")
            after = wait_for(lambda: (lambda f: f if f != before else None)(
                cert_fingerprint(server.imaps_port)), what="new certificate served")
            self.assertNotEqual(after, before)
            self.assertEqual(after, ssl.PEM_cert_to_DER_cert(open(cert).read()))
            with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as s:
                s.ehlo()
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s.starttls(context=ctx)
                self.assertEqual(s.sock.getpeercert(binary_form=True), after)


class LogTest(unittest.TestCase):
    """One line per transaction and per refusal, with the client, sender,
    each recipient and the reason; UTC; JSON when asked."""

    def test_json_lines_with_transactions_and_refusals(self):
        server = Server(users=("alice", "bob"))
        try:
            server.set_config("log", "format", '"json"')
            server.set_config("log", "level", '"info"')
            server.start()
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                s.ehlo()
                s.mail("sender@remote.example")
                self.assertEqual(s.rcpt(f"alice@{DOMAIN}")[0], 250)
                self.assertEqual(s.rcpt(f"bob@{DOMAIN}")[0], 250)
                self.assertEqual(s.rcpt(f"nobody@{DOMAIN}")[0], 550)
                self.assertEqual(s.rcpt("x@elsewhere.example")[0], 554)
                code, reply = s.data(b"Subject: log\r\n\r\nhi\r\n")
                self.assertEqual(code, 250)
            smtp_id = re.search(rb"queued as ([0-9a-f]{16})", reply).group(1).decode()
            import json
            lines = wait_for(lambda: [json.loads(l) for l in server.logs().splitlines()
                                      if l.startswith("{") and smtp_id in l], what="log line")
            records = [json.loads(l) for l in server.logs().splitlines() if l.startswith("{")]
            non_json = [l for l in server.logs().splitlines() if l and not l.startswith("{")]
            self.assertEqual(non_json, [])
            for r in records:
                self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
                self.assertIn(r["level"], ("info", "warning", "error", "debug"))
            stored = lines[0]["msg"]
            self.assertIn("ip=127.0.0.1", stored)
            self.assertIn("from=<sender@remote.example>", stored)
            self.assertIn(f"<alice@{DOMAIN}>", stored)
            self.assertIn(f"<bob@{DOMAIN}>", stored)
            refusals = [r["msg"] for r in records if "refused" in r["msg"]]
            unknown = [m for m in refusals if f"to=<nobody@{DOMAIN}>" in m]
            self.assertEqual(len(unknown), 1, refusals)
            self.assertIn("ip=127.0.0.1", unknown[0])
            self.assertIn("from=<sender@remote.example>", unknown[0])
            self.assertIn("550 5.1.1", unknown[0])
            relay = [m for m in refusals if "to=<x@elsewhere.example>" in m]
            self.assertEqual(len(relay), 1)
            self.assertIn("Relay access denied", relay[0])
        finally:
            server.cleanup()

    def test_text_log_is_utc_and_queue_accepts_the_smtp_id(self):
        server = Server(users=("alice",))
        # A resolver nobody answers on (loopback): the message stays queued.
        server.set_config("outbound", "resolver", '"127.0.0.1@9"')
        with server:
            with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as s:
                s.ehlo()
                s.login(f"alice@{DOMAIN}", PASSWORD)
                s.mail(f"alice@{DOMAIN}")
                s.rcpt("carol@remote.example")
                code, reply = s.data(b"Subject: q\r\n\r\nqueued\r\n")
                self.assertEqual(code, 250)
            m = re.search(rb"queued as ([0-9a-f]{16}) \(queue (\d+)\)", reply)
            self.assertIsNotNone(m, reply)
            smtp_id, queue_id = m.group(1).decode(), m.group(2).decode()
            by_hex = run_cli("queue", "show", smtp_id, data=server.data).stdout
            by_int = run_cli("queue", "show", queue_id, data=server.data).stdout
            self.assertIn(f"id: {queue_id}\n", by_hex)
            self.assertEqual(by_hex, by_int)
            self.assertIn(f"queue={queue_id}", server.logs())
            self.assertIn(f"id={smtp_id}", server.logs())
            first = [l for l in server.logs().splitlines() if l][0]
            self.assertRegex(first, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
            r = run_cli("queue", "show", "0123456789abcdef", data=server.data, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("no queued message with SMTP id", r.stderr)
            r = run_cli("queue", "show", "not-an-id", data=server.data, check=False)
            self.assertIn("bad message id", r.stderr)


class PasswordPolicyTest(unittest.TestCase):
    def test_short_and_common_passwords_are_refused(self):
        tmp = tempfile.mkdtemp(prefix="hato-ops-pw-")
        try:
            data = os.path.join(tmp, "var")
            run_cli("init", "--domain", DOMAIN, data=data)
            for pw, why in (("short", "too short"), ("Password123", "commonest"),
                            ("12345678", "commonest"), ("kimberley", "address")):
                r = run_cli("user", "add", f"kimberley@{DOMAIN}", "--password", pw, data=data,
                            check=False)
                self.assertEqual(r.returncode, 1, pw)
                self.assertIn(why, r.stderr, pw)
            run_cli("user", "add", f"kimberley@{DOMAIN}", "--password", "correct horse",
                    data=data)
            r = run_cli("user", "passwd", f"kimberley@{DOMAIN}", "--password", "qwerty123",
                        data=data, check=False)
            self.assertIn("commonest", r.stderr)
            # Configurable.
            with open(os.path.join(data, "hato.toml")) as f:
                text = f.read()
            text = text.replace("min_password_length = 8", "min_password_length = 4").replace(
                "refuse_common_passwords = true", "refuse_common_passwords = false")
            with open(os.path.join(data, "hato.toml"), "w") as f:
                f.write(text)
            run_cli("user", "passwd", f"kimberley@{DOMAIN}", "--password", "12345678", data=data)
            run_cli("user", "add", f"kim@{DOMAIN}", "--password", "abcd", data=data)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class AddressingTest(unittest.TestCase):
    """Plus-addressing (RFC 5233) and catch-all aliases per domain."""

    def test_plus_addressing_and_catch_all(self):
        server = Server(users=("alice", "bob"))
        try:
            run_cli("domain", "add", "other.test", data=server.data)
            # An explicit alias with a '+' wins over subaddressing.
            run_cli("alias", "add", f"alice+special@{DOMAIN}", f"bob@{DOMAIN}", data=server.data)
            r = run_cli("alias", "add", "@other.test", f"bob@{DOMAIN}", data=server.data)
            self.assertIn("@other.test", r.stdout)
            self.assertIn("@other.test\tbob@", run_cli("alias", "list", data=server.data).stdout)
            server.start()
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                s.ehlo()
                s.mail("someone@remote.example")
                self.assertEqual(s.rcpt(f"alice+news@{DOMAIN}")[0], 250)
                s.data(b"Subject: plus\r\n\r\nx\r\n")
                s.mail("someone@remote.example")
                self.assertEqual(s.rcpt(f"alice+special@{DOMAIN}")[0], 250)
                s.data(b"Subject: special\r\n\r\nx\r\n")
                s.mail("someone@remote.example")
                self.assertEqual(s.rcpt("anything@other.test")[0], 250)
                s.data(b"Subject: catchall\r\n\r\nx\r\n")
                s.mail("someone@remote.example")
                # No catch-all in example.test; "+" alone is no subaddress.
                self.assertEqual(s.rcpt(f"nobody@{DOMAIN}")[0], 550)
                self.assertEqual(s.rcpt(f"+x@{DOMAIN}")[0], 550)
                self.assertEqual(s.rcpt(f"nobody+x@{DOMAIN}")[0], 550)
                s.rset()
            alice = pop3_count(server.pop3_port, f"alice@{DOMAIN}")
            bob = pop3_count(server.pop3_port, f"bob@{DOMAIN}")
            self.assertEqual(len(alice), 1)
            self.assertIn(b"Subject: plus", alice[0])
            self.assertEqual(sorted(m.split(b"Subject: ")[1].split(b"\r\n")[0] for m in bob),
                             [b"catchall", b"special"])
            # Catch-all of a domain that is not local is refused.
            r = run_cli("alias", "add", "@nowhere.test", f"bob@{DOMAIN}", data=server.data,
                        check=False)
            self.assertEqual(r.returncode, 1)
        finally:
            server.cleanup()


class DocsTest(unittest.TestCase):
    """Defect 12: docs that disagreed with the code. The architecture table
    names every source folder; the data-dir listing of docs/storage.md names
    every file `hato init` and `hato serve` make."""

    def test_architecture_names_every_source_folder(self):
        with open(os.path.join(REPO, "docs", "architecture.md")) as f:
            text = f.read()
        folders = sorted(d for d in os.listdir(os.path.join(REPO, "src"))
                         if os.path.isdir(os.path.join(REPO, "src", d)))
        self.assertIn("imap", folders)
        missing = [d for d in folders if f"| `{d}/` |" not in text]
        self.assertEqual(missing, [])

    def test_storage_lists_the_data_dir(self):
        with open(os.path.join(REPO, "docs", "storage.md")) as f:
            listing = f.read().split("```\n", 2)[1]
        names = set()
        for line in listing.splitlines():
            first = line.split("  ")[0].strip()
            for word in first.replace(",", " ").split():
                names.add(word.rstrip("/").split("/")[0])
        with Server(users=("alice",)) as server:
            deliver(server.smtp_port, f"alice@{DOMAIN}", "docs")
            wait_for(lambda: pop3_count(server.pop3_port, f"alice@{DOMAIN}"), what="delivery")
            made = set(os.listdir(server.data)) - {"serve.log"}
        self.assertIn("srs.key", made)
        # meta.db-shm goes with meta.db-wal (SQLite's WAL index).
        missing = sorted(n for n in made if n not in names and n != "meta.db-shm")
        self.assertEqual(missing, [], listing)


class OpsMetricsTest(unittest.TestCase):
    def test_submission_logins_listeners_and_commit_latency(self):
        import imaplib
        import metrics_client
        server = Server(users=("alice",))
        port = free_port()
        metrics_client.enable(server, port)
        server.set_config("auth", "penalty_base_ms", "0")
        server.set_config("auth", "penalty_max_ms", "0")
        with server:
            with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as s:
                s.ehlo()
                with self.assertRaises(smtplib.SMTPAuthenticationError):
                    s.login(f"alice@{DOMAIN}", "wrong")
            m = imaplib.IMAP4("127.0.0.1", server.imap_port)
            with self.assertRaises(imaplib.IMAP4.error):
                m.login(f"alice@{DOMAIN}", "wrong")
            m.logout()
            for _ in range(2):
                p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
                p.user(f"alice@{DOMAIN}")
                with self.assertRaises(poplib.error_proto):
                    p.pass_("wrong")
                p.quit()
            deliver(server.smtp_port, f"alice@{DOMAIN}", "metrics")
            got = wait_for(lambda: (lambda m: m if m.get(
                'hato_login_failures_total{protocol="pop3"}') == 2 else None)(
                metrics_client.scrape(port)), what="metrics")
            self.assertEqual(got['hato_login_failures_total{protocol="imap"}'], 1)
            # smtplib tries PLAIN, then LOGIN.
            self.assertGreaterEqual(got['hato_login_failures_total{protocol="submission"}'], 1)
            self.assertGreaterEqual(got['hato_connections_total{protocol="submission"}'], 1)
            self.assertIn('hato_sessions{protocol="submissions"}', got)
            self.assertGreaterEqual(got['hato_listener_connections_total{listener="smtp"}'], 1)
            self.assertGreaterEqual(got['hato_listener_connections_total{listener="pop3"}'], 2)
            self.assertGreaterEqual(got['hato_listener_connections_total{listener="imap"}'], 1)
            self.assertIn('hato_listener_connections_total{listener="pop3s"}', got)
            self.assertGreaterEqual(got["hato_store_commit_seconds_count"], 1)


if __name__ == "__main__":
    unittest.main()
