"""ACME (RFC 8555; src/acme/client.h), end to end against Debian's `pebble`,
the ACME test server, started here on loopback ports in a temporary folder.

Pebble resolves names through the test DNS (fakemx.FakeDNS: acme-ca.example and
mail.example.test are 127.0.0.1) and checks the HTTP-01 challenge by
fetching http://mail.example.test:PORT/.well-known/acme-challenge/TOKEN,
where PORT is Hato's [listen] http: the challenge really goes through Hato's
HTTP server. Pebble's own HTTPS certificate (for acme-ca.example) is trusted by
Hato through [acme] ca_file; the issued chain is verified here against the
root pebble publishes on its management port.

  * a fresh server orders a certificate (account key made, http-01 answered,
    CSR, finalize, download), stores it 0600 under DATA/acme and serves it on
    IMAPS without a restart;
  * with renew_days above the certificate's lifetime every check renews:
    a second certificate (another serial) replaces the first, again
    without a restart;
  * after a restart, with the CA gone, the stored certificate is served at
    once, and `hato backup` carries it and the account key (0600);
  * a CA whose certificate does not verify: nothing is ordered, the error is
    logged and the server keeps serving its [tls] certificate.
Pebble's 5% of refused nonces (PEBBLE_WFE_NONCEREJECT default) exercise the
badNonce retry (section 6.5).
"""
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import unittest
import urllib.request

from fakemx import FakeDNS
from harness import HATO, Server, free_port, run_cli, wait_for

NAME = "mail.example.test"
PEBBLE = shutil.which("pebble")


class Pebble:
    """pebble on 127.0.0.1 with its own certificate for acme-ca.example, checking
    HTTP-01 on `http_port` of the names `dns` resolves."""

    def __init__(self, dns, http_port, tls_port=None, eab_keys=None):
        """eab_keys: {kid: base64url MAC key}: new accounts need an External
        Account Binding (RFC 8555 7.3.4) with one of them."""
        self.dir = tempfile.mkdtemp(prefix="hato-it-pebble-")
        self.cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                        "-subj", "/CN=acme-ca.example", "-addext",
                        "subjectAltName=DNS:acme-ca.example,IP:127.0.0.1",
                        "-keyout", key, "-out", self.cert], check=True, capture_output=True)
        self.port = free_port()
        self.mgmt_port = free_port()
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": self.cert, "privateKey": key,
            "httpPort": http_port, "tlsPort": tls_port or free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": bool(eab_keys)}}
        if eab_keys:
            config["pebble"]["externalAccountMACKeys"] = eab_keys
        cfg = os.path.join(self.dir, "pebble.json")
        with open(cfg, "w") as f:
            json.dump(config, f)
        self.log = open(os.path.join(self.dir, "pebble.log"), "w")
        self.proc = subprocess.Popen(
            [PEBBLE, "-config", cfg, "-dnsserver", f"127.0.0.1:{dns.port}"],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PEBBLE_VA_NOSLEEP": "1"})
        wait_for(self._up, timeout=30, what="pebble to listen")

    def _up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    @property
    def directory(self):
        return f"https://acme-ca.example:{self.port}/dir"

    def root_pem(self):
        """The root that signs the issued certificates (management API)."""
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False
        with urllib.request.urlopen(f"https://127.0.0.1:{self.mgmt_port}/roots/0",
                                    context=ctx, timeout=30) as r:
            return r.read().decode()

    def logs(self):
        self.log.flush()
        return open(os.path.join(self.dir, "pebble.log")).read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def served_certificate(port, cafile):
    """The certificate IMAPS serves, verified for NAME against `cafile`, or None."""
    ctx = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=NAME) as tls:
                return tls.getpeercert()
    except (ssl.SSLError, OSError):
        return None


@unittest.skipUnless(PEBBLE, "pebble is not installed (scripts/install-deps.sh)")
class AcmeTest(unittest.TestCase):
    def setUp(self):
        self.dns = FakeDNS({"acme-ca.example": [("A", "127.0.0.1")], NAME: [("A", "127.0.0.1")]})
        self.server = Server(users=("alice",))
        self.pebble = Pebble(self.dns, self.server.http_port)
        s = self.server
        s.set_config("outbound", "resolver", f'"{self.dns.address}"')
        s.set_config("acme", "directory", f'"{self.pebble.directory}"')
        s.set_config("acme", "ca_file", f'"{self.pebble.cert}"')
        s.set_config("acme", "contact", '"postmaster@example.test"')
        s.set_config("acme", "domains", f'["{NAME}"]')
        self.root = os.path.join(s.data, "pebble-root.pem")

    def tearDown(self):
        self.server.cleanup()
        self.pebble.stop()
        self.dns.stop()

    def debug(self):
        return ("\nhato log:\n" + self.server.logs()[-3000:] +
                "\npebble log:\n" + self.pebble.logs()[-3000:])

    def test_issues_renews_and_keeps_the_certificate(self):
        s = self.server
        # Every check renews (pebble's certificates last far less than 100 years).
        s.set_config("acme", "renew_days", "36500")
        s.set_config("acme", "check_interval_seconds", "2")
        s.start()
        with open(self.root, "w") as f:
            f.write(self.pebble.root_pem())
        first = wait_for(lambda: served_certificate(s.imaps_port, self.root), timeout=120,
                         what="IMAPS to serve a certificate from the ACME CA")
        self.assertIn(("DNS", NAME), first["subjectAltName"])
        log = s.logs()
        self.assertIn("acme: answering the http-01 challenge for " + NAME, log)
        self.assertIn("acme: the new certificate is in use", log)
        for name in ("certificate.pem", "account.key"):
            mode = stat.S_IMODE(os.stat(os.path.join(s.data, "acme", name)).st_mode)
            self.assertEqual(mode, 0o600, name)
        # Renewal: a new certificate replaces the first without a restart.
        second = wait_for(
            lambda: (c := served_certificate(s.imaps_port, self.root)) and
            c["serialNumber"] != first["serialNumber"] and c,
            timeout=120, what="a renewed certificate")
        self.assertIn(("DNS", NAME), second["subjectAltName"])
        # The CA goes away; a restart serves the stored certificate at once.
        self.assertEqual(s.stop(), 0, self.debug())
        self.pebble.proc.terminate()
        self.pebble.proc.wait(timeout=20)
        s.set_config("acme", "renew_days", "30")
        s.start()
        third = served_certificate(s.imaps_port, self.root)
        self.assertIsNotNone(third, self.debug())
        self.assertIn(("DNS", NAME), third["subjectAltName"])
        # A backup carries the account key and the certificate (0600).
        tmp = tempfile.mkdtemp(prefix="hato-it-acme-bk-")
        try:
            run_cli("backup", "create", os.path.join(tmp, "bk"), "--create", data=s.data)
            restored = os.path.join(tmp, "restored")
            run_cli("restore", os.path.join(tmp, "bk"), data=restored)
            for f in ("acme/account.key", "acme/certificate.pem"):
                a, b = os.path.join(s.data, f), os.path.join(restored, f)
                self.assertEqual(open(a, "rb").read(), open(b, "rb").read(), f)
                self.assertEqual(stat.S_IMODE(os.stat(b).st_mode), 0o600, f)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_unknown_challenge_is_404(self):
        s = self.server
        s.start()
        with urllib.request.urlopen(f"http://127.0.0.1:{s.http_port}/healthz", timeout=30) as r:
            self.assertEqual(r.status, 200)
        token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
        for path in (token, "../../hato.toml", ""):
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{s.http_port}/.well-known/acme-challenge/{path}",
                    timeout=30)
            self.assertEqual(e.exception.code, 404, path)

    def test_untrusted_ca_keeps_the_old_certificate(self):
        s = self.server
        s.set_config("acme", "ca_file", '""')   # pebble's certificate is not trusted now
        s.start()
        wait_for(lambda: "acme: no new certificate" in s.logs(), timeout=60,
                 what="the failed order to be logged")
        self.assertIn("does not verify", s.logs())
        self.assertFalse(os.path.exists(os.path.join(s.data, "acme", "certificate.pem")))
        # IMAPS still works with the [tls] certificate of hato init.
        self.assertIsNotNone(served_certificate(s.imaps_port,
                                                os.path.join(s.data, "tls", "cert.pem")))


if __name__ == "__main__":
    unittest.main()


# A CA's MAC key for External Account Binding, base64url as CAs hand it out.
EAB_KID = "kid-hato-test"
EAB_KEY = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


@unittest.skipUnless(PEBBLE, "pebble is not installed (scripts/install-deps.sh)")
class AcmeEabTest(unittest.TestCase):
    """A CA that requires External Account Binding (RFC 8555 7.3.4): [acme]
    eab_kid and eab_hmac_key get the account, and so the certificate; a wrong
    MAC key gets neither."""

    def setUp(self):
        self.dns = FakeDNS({"acme-ca.example": [("A", "127.0.0.1")], NAME: [("A", "127.0.0.1")]})
        self.server = Server(users=("alice",))
        self.pebble = Pebble(self.dns, self.server.http_port, eab_keys={EAB_KID: EAB_KEY})
        s = self.server
        s.set_config("outbound", "resolver", f'"{self.dns.address}"')
        s.set_config("acme", "directory", f'"{self.pebble.directory}"')
        s.set_config("acme", "ca_file", f'"{self.pebble.cert}"')
        s.set_config("acme", "domains", f'["{NAME}"]')
        s.set_config("acme", "eab_kid", f'"{EAB_KID}"')

    def tearDown(self):
        self.server.cleanup()
        self.pebble.stop()
        self.dns.stop()

    def test_bound_account_gets_a_certificate(self):
        s = self.server
        s.set_config("acme", "eab_hmac_key", f'"{EAB_KEY}"')
        s.start()
        root = os.path.join(s.data, "pebble-root.pem")
        with open(root, "w") as f:
            f.write(self.pebble.root_pem())
        cert = wait_for(lambda: served_certificate(s.imaps_port, root), timeout=120,
                        what="a certificate through an EAB-bound account")
        self.assertIn(("DNS", NAME), cert["subjectAltName"])

    def test_wrong_mac_key_gets_no_account(self):
        s = self.server
        wrong = EAB_KEY[:-4] + "AAAA"
        s.set_config("acme", "eab_hmac_key", f'"{wrong}"')
        s.start()
        wait_for(lambda: "acme: no new certificate" in s.logs(), timeout=60,
                 what="the order to fail")
        self.assertFalse(os.path.exists(os.path.join(s.data, "acme", "certificate.pem")))

    def test_kid_without_key_is_a_config_error(self):
        args = [HATO, "serve", "--data", self.server.data]
        for flag in ("--smtp", "--pop3", "--imap", "--imaps", "--pop3s", "--submission",
                     "--submissions", "--http", "--managesieve"):
            args += [flag, f"127.0.0.1:{free_port()}"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("acme.eab_kid and acme.eab_hmac_key go together", r.stdout + r.stderr)
