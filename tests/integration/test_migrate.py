"""hato migrate from a real Dovecot on loopback (issue 6): folders, flags,
internal dates and thousands of messages; a second run copies nothing new,
a third copies only what arrived since. Needs root and dovecot-imapd (Debian)."""
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from backup_util import ALICE, UNICODE_FOLDER, dump, message
from harness import HATO, Server, free_port, wait_port

MAIL_USER = "hatobench"  # the unprivileged user bench/imap_run.sh also uses
DV_USER, DV_PASS = "old@legacy.test", "dovecot-pw"
N_MESSAGES = int(os.environ.get("HATO_MIGRATE_MESSAGES", "2000"))


def have_dovecot():
    return (shutil.which("dovecot") and os.path.exists("/usr/lib/dovecot/imap")
            and os.geteuid() == 0)


class Dovecot:
    def __init__(self, extra_conf=""):
        try:
            pwd.getpwnam(MAIL_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", MAIL_USER], check=True)
        uid, gid = pwd.getpwnam(MAIL_USER).pw_uid, pwd.getpwnam(MAIL_USER).pw_gid
        self.dir = tempfile.mkdtemp(prefix="dovecot-migrate-")
        os.chmod(self.dir, 0o755)
        for sub in ("base", "state", "mail"):
            os.makedirs(os.path.join(self.dir, sub))
        os.chown(os.path.join(self.dir, "mail"), uid, gid)
        self.port = free_port()
        self.tls_port = free_port()
        # A self-signed certificate for imaps (the migration over TLS).
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", os.path.join(self.dir, "key.pem"),
                        "-out", os.path.join(self.dir, "cert.pem")],
                       check=True, capture_output=True)
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write(f"{DV_USER}:{{PLAIN}}{DV_PASS}:{uid}:{gid}::{self.dir}/mail/old::\n")
        os.chmod(os.path.join(self.dir, "users"), 0o644)
        d = self.dir
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write(f"""protocols = imap
listen = 127.0.0.1
base_dir = {d}/base
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {uid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
  }}
}}
{extra_conf}""")
        subprocess.run(["dovecot", "-c", os.path.join(d, "dovecot.conf")], check=True)
        wait_port(self.port)
        wait_port(self.tls_port)

    def stop(self):
        subprocess.run(["doveadm", "-c", os.path.join(self.dir, "dovecot.conf"), "stop"],
                       capture_output=True)
        time.sleep(0.3)
        shutil.rmtree(self.dir, ignore_errors=True)

    def imap(self):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        m.login(DV_USER, DV_PASS)
        return m


class DovecotPeer:
    """Mixin for the Dovecot side of a Hato-vs-Dovecot comparison: the shared
    checks of the class it is mixed into run against a fresh Dovecot, as
    self.port / self.user / self.password."""

    def setUp(self):
        self.dv = Dovecot(extra_conf="mail_max_userip_connections = 100\n")
        self.addCleanup(self.dv.stop)
        self.port, self.user, self.password = self.dv.port, DV_USER, DV_PASS


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class MigrateTest(unittest.TestCase):
    def setUp(self):
        self.dv = Dovecot()
        self.addCleanup(self.dv.stop)
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)

    def migrate(self, check=True, tls=False, extra=()):
        scheme, port = ("imaps", self.dv.tls_port) if tls else ("imap", self.dv.port)
        r = subprocess.run([HATO, "migrate", ALICE, "--from",
                            f"{scheme}://{DV_USER.replace('@', '%40')}@127.0.0.1:{port}",
                            "--password-stdin", "--data", self.server.data, *extra],
                           input=DV_PASS + "\n", capture_output=True, text=True, timeout=600)
        if check:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def append(self, m, start, count):
        folders = ["INBOX", "Work", "Work/Deep", UNICODE_FOLDER, "Archive"]
        flags = ["()", "(\\Seen)", "(\\Seen \\Flagged)", "(\\Answered $Forwarded)", "(\\Draft)"]
        for i in range(start, start + count):
            typ, data = m.append(folders[i % len(folders)], flags[(i // 5) % len(flags)],
                                 imaplib.Time2Internaldate(1600000000 + i * 61), message(i))
            self.assertEqual(typ, "OK", data)

    def test_migrate_from_dovecot(self):
        m = self.dv.imap()
        for f in ("Work", "Work/Deep", UNICODE_FOLDER, "Archive", "Empty"):
            self.assertEqual(m.create(f)[0], "OK")
        self.append(m, 0, N_MESSAGES)
        source = dump(self.dv.port, DV_USER, DV_PASS)
        self.assertEqual(sum(len(v) for v in source.values()), N_MESSAGES)

        r = self.migrate()
        self.assertIn(f"{N_MESSAGES} messages fetched ({N_MESSAGES} added", r.stdout)
        got = dump(self.server.imap_port)
        for folder, msgs in source.items():
            self.assertIn(folder, got)
            self.assertEqual(got[folder], msgs, folder)  # bytes, flags, internal dates

        # Second run: nothing new, nothing copied.
        r = self.migrate()
        self.assertIn("0 messages fetched (0 added", r.stdout)
        # New mail at the source: only that is copied.
        self.append(m, N_MESSAGES, 7)
        m.logout()
        r = self.migrate()
        self.assertIn("7 messages fetched (7 added", r.stdout)
        self.assertEqual(dump(self.server.imap_port), {**got, **{
            k: v for k, v in dump(self.dv.port, DV_USER, DV_PASS).items()}})
        # Even without the resume state, a re-run adds nothing (deduplicated).
        shutil.rmtree(os.path.join(self.server.data, "migrate"))
        r = self.migrate()
        self.assertIn(f"({0} added, {N_MESSAGES + 7} already present)", r.stdout)

    def test_migrate_over_imaps(self):
        m = self.dv.imap()
        for i in range(10):
            typ, data = m.append("INBOX", "(\\Seen)",
                                 imaplib.Time2Internaldate(1600000000 + i * 61), message(i))
            self.assertEqual(typ, "OK", data)
        m.logout()
        # The certificate is self-signed: refused unless --insecure.
        r = self.migrate(check=False, tls=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("127.0.0.1", r.stderr)
        self.assertEqual(dump(self.server.imap_port).get("INBOX", []), [])
        r = self.migrate(tls=True, extra=("--insecure",))
        self.assertIn("10 messages fetched (10 added", r.stdout)
        source = dump(self.dv.port, DV_USER, DV_PASS)["INBOX"]
        self.assertEqual(len(source), 10)
        self.assertEqual(dump(self.server.imap_port)["INBOX"], source)

    def test_bad_password_names_the_source(self):
        r = subprocess.run([HATO, "migrate", ALICE, "--from",
                            f"imap://{DV_USER.replace('@', '%40')}@127.0.0.1:{self.dv.port}",
                            "--password-stdin", "--data", self.server.data],
                           input="wrong\n", capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("LOGIN", r.stderr)
        self.assertNotIn("wrong", r.stderr)


if __name__ == "__main__":
    unittest.main()
