"""ACME account key rollover and certificate revocation (issue 18; RFC 8555
sections 7.3.5 and 7.6; `hato cert rollover|revoke`), against Debian's
`pebble` started as in test_acme.py. A certificate is first issued by the
running server (HTTP-01 through its own HTTP listener); then:

  * `hato cert rollover` makes a new account key that the CA accepts: the
    key file changes, and the old key no longer finds the account;
  * `hato cert revoke` (signed with the new key, so it proves the rollover
    too) revokes the certificate at the CA (pebble's management API says
    Revoked) and moves it aside, so the server orders a new one;
  * a second revocation of the same certificate is refused by the CA.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import unittest
import urllib.request

from fakemx import FakeDNS
from harness import HATO, Server, free_port, run_cli, wait_for
from test_acme import NAME, PEBBLE, Pebble


def serial_of(pem_path):
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=open(pem_path).read(),
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1].lower()


@unittest.skipUnless(PEBBLE, "pebble is not installed (scripts/install-deps.sh)")
class AcmeOpsTest(unittest.TestCase):
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

    def tearDown(self):
        self.server.cleanup()
        self.pebble.stop()
        self.dns.stop()

    def cert_status(self, serial):
        ctx = ssl.create_default_context(cafile=self.pebble.cert)
        ctx.check_hostname = False
        url = f"https://127.0.0.1:{self.pebble.mgmt_port}/cert-status-by-serial/{serial}"
        with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
            return json.loads(r.read())["Status"]

    def test_rollover_then_revoke(self):
        s = self.server
        s.start()
        acme = os.path.join(s.data, "acme")
        cert = os.path.join(acme, "certificate.pem")
        wait_for(lambda: os.path.exists(cert), timeout=120, what="the first certificate")
        self.assertEqual(s.stop(), 0)
        serial = serial_of(cert)
        self.assertEqual(self.cert_status(serial), "Valid")

        key = os.path.join(acme, "account.key")
        old_key = open(key).read()
        shutil.copy(key, key + ".test-old")
        r = run_cli("cert", "rollover", data=s.data, check=False)
        self.assertEqual(r.returncode, 0, r.stderr + self.pebble.logs()[-2000:])
        self.assertNotEqual(open(key).read(), old_key)
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(key + ".new"))

        # The old key is no longer the account's: revoking with it fails.
        shutil.copy(key, key + ".test-new")
        shutil.copy(key + ".test-old", key)
        r = run_cli("cert", "revoke", data=s.data, check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("accountDoesNotExist", r.stderr)
        self.assertEqual(self.cert_status(serial), "Valid")
        shutil.copy(key + ".test-new", key)

        r = run_cli("cert", "revoke", "--reason", "4", data=s.data, check=False)
        self.assertEqual(r.returncode, 0, r.stderr + self.pebble.logs()[-2000:])
        self.assertEqual(self.cert_status(serial), "Revoked")
        self.assertFalse(os.path.exists(cert))
        self.assertTrue(os.path.exists(cert + ".revoked"))

        # Nothing left to revoke; and the CA refuses a second revocation.
        r = run_cli("cert", "revoke", data=s.data, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no ACME certificate", r.stderr)
        shutil.copy(cert + ".revoked", cert)
        r = run_cli("cert", "revoke", data=s.data, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("alreadyRevoked", r.stderr)
        os.remove(cert)

        # The server orders a new certificate (with the new account key).
        s.start()
        wait_for(lambda: os.path.exists(cert), timeout=120, what="a new certificate")
        self.assertNotEqual(serial_of(cert), serial)



@unittest.skipUnless(PEBBLE, "pebble is not installed (scripts/install-deps.sh)")
class TlsAlpnTest(unittest.TestCase):
    """RFC 8737: with [listen] http off and https on, the certificate is
    ordered with the tls-alpn-01 challenge, which pebble validates by a TLS
    handshake with ALPN "acme-tls/1" to Hato's https listener; ordinary
    clients of that listener still get the server's certificate."""

    def test_certificate_by_tls_alpn(self):
        dns = FakeDNS({"acme-ca.example": [("A", "127.0.0.1")], NAME: [("A", "127.0.0.1")]})
        server = Server(users=("alice",))
        pebble = None
        proc = None
        try:
            https = free_port()
            pebble = Pebble(dns, free_port(), tls_port=https)
            s = server
            for key in ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s",
                        "managesieve"):
                s.set_config("listen", key, f'"127.0.0.1:{free_port()}"')
            s.set_config("listen", "http", '""')
            s.set_config("listen", "https", f'"127.0.0.1:{https}"')
            s.set_config("outbound", "resolver", f'"{dns.address}"')
            s.set_config("acme", "directory", f'"{pebble.directory}"')
            s.set_config("acme", "ca_file", f'"{pebble.cert}"')
            s.set_config("acme", "domains", f'["{NAME}"]')
            log = open(os.path.join(s.data, "serve.log"), "a")
            proc = subprocess.Popen([HATO, "serve", "--data", s.data], stdout=log,
                                    stderr=subprocess.STDOUT)
            cert = os.path.join(s.data, "acme", "certificate.pem")
            wait_for(lambda: os.path.exists(cert) or proc.poll() is not None, timeout=120,
                     what="a certificate by tls-alpn-01")
            logs = open(os.path.join(s.data, "serve.log")).read()
            self.assertTrue(os.path.exists(cert), logs[-3000:] + pebble.logs()[-3000:])
            self.assertIn("answering the tls-alpn-01 challenge for " + NAME, logs)
            # Nothing listens on pebble's HTTP-01 port: only the TLS
            # handshake with Hato's https listener can have validated it.
            # A client without the ACME ALPN gets the server's certificate,
            # now the issued one.
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with socket.create_connection(("127.0.0.1", https), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname=NAME) as tls:
                    der = tls.getpeercert(binary_form=True)
            pem = ssl.DER_cert_to_PEM_cert(der)
            out = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem,
                                 capture_output=True, text=True).stdout
            self.assertNotIn("1.3.6.1.5.5.7.1.31", out)  # not a challenge certificate
            # An "acme-tls/1" client for a name with no challenge is refused.
            ctx.set_alpn_protocols(["acme-tls/1"])
            with self.assertRaises((ssl.SSLError, OSError)):
                with socket.create_connection(("127.0.0.1", https), timeout=10) as raw:
                    with ctx.wrap_socket(raw, server_hostname="other.example"):
                        pass
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
            server.cleanup()
            if pebble:
                pebble.stop()
            dns.stop()


if __name__ == "__main__":
    unittest.main()
