"""What a domain publishes (issue 18): the MTA-STS policy Hato serves itself
(RFC 8461 section 3.2) with the _mta-sts id `hato dns records` prints, and
`hato dns check` on the SRV records of RFC 6186 and the autoconfig and
mta-sts CNAMEs, against a local test DNS (fakemx.FakeDNS)."""
import hashlib
import http.client
import os
import re
import signal
import unittest

from fakemx import FakeDNS
from harness import DOMAIN, Server, run_cli, wait_for
from test_ops import zone_records

PUB = "pub.example"
HOST = "mx.pub.example"


def get(port, path, host):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        c.close()


def sts_id(printed):
    by = {(n, t): v for n, t, v in zone_records(printed)}
    m = re.fullmatch(r"v=STSv1; id=([A-Za-z0-9]{1,32})", by[(f"_mta-sts.{DOMAIN}", "TXT")])
    return m.group(1)


class MtaStsPolicyTest(unittest.TestCase):
    """RFC 8461 3.2/3.3: https://mta-sts.DOMAIN/.well-known/mta-sts.txt, text/plain,
    CRLF lines; the TXT id changes exactly when the policy does."""

    def test_policy_served_and_id_follows_it(self):
        with Server(users=("alice",)) as server:
            host = f"mail.{DOMAIN}"
            status, ctype, body = get(server.http_port, "/.well-known/mta-sts.txt",
                                      f"mta-sts.{DOMAIN}:{server.http_port}")
            self.assertEqual(status, 200)
            self.assertEqual(ctype, "text/plain")
            self.assertEqual(body, b"version: STSv1\r\nmode: testing\r\nmx: " + host.encode() +
                             b"\r\nmax_age: 604800\r\n")
            # Only for the mta-sts host of a local domain.
            for other in (DOMAIN, f"mta-sts.other.example", "mta-sts.", "127.0.0.1"):
                self.assertEqual(get(server.http_port, "/.well-known/mta-sts.txt", other)[0],
                                 404, other)
            # The record's id is the policy's (so it changes with it).
            printed = run_cli("dns", "records", DOMAIN, data=server.data).stdout
            first = sts_id(printed)
            self.assertEqual(first, hashlib.sha256(body).hexdigest()[:20])
            self.assertIn(f"mta-sts.{DOMAIN}. 3600 IN CNAME {host}.", printed)
            self.assertIn(";   mode: testing", printed)
            self.assertEqual(sts_id(run_cli("dns", "records", DOMAIN,
                                            data=server.data).stdout), first)

            # Enforce, with a second MX pattern: a new policy, a new id, served
            # after SIGHUP without a restart.
            server.set_config("mta_sts", "mode", '"enforce"')
            server.set_config("mta_sts", "mx", '["*.backup.example"]')
            second = sts_id(run_cli("dns", "records", DOMAIN, data=server.data).stdout)
            self.assertNotEqual(second, first)
            server.proc.send_signal(signal.SIGHUP)
            body2 = wait_for(lambda: (lambda r: r[2] if b"enforce" in r[2] else None)(
                get(server.http_port, "/.well-known/mta-sts.txt", f"mta-sts.{DOMAIN}")),
                what="the enforce policy after SIGHUP")
            self.assertEqual(body2, b"version: STSv1\r\nmode: enforce\r\nmx: " + host.encode() +
                             b"\r\nmx: *.backup.example\r\nmax_age: 604800\r\n")
            self.assertEqual(second, hashlib.sha256(body2).hexdigest()[:20])

            # mode = "off": nothing served, no MTA-STS records printed.
            server.set_config("mta_sts", "mode", '"off"')
            server.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: get(server.http_port, "/.well-known/mta-sts.txt",
                                 f"mta-sts.{DOMAIN}")[0] == 404, what="no policy once off")
            printed = run_cli("dns", "records", DOMAIN, data=server.data).stdout
            self.assertNotIn("_mta-sts", printed)
            self.assertNotIn("mode:", printed)


class DnsCheckServicesTest(unittest.TestCase):
    """`hato dns check` queries the SRV records (RFC 6186 3.1, RFC 8314 5.1) and
    the CNAMEs instead of skipping them."""

    @classmethod
    def setUpClass(cls):
        # Not under .test: libunbound answers the special-use names of RFC
        # 6761 (.test, .invalid, ...) itself, never asking the test DNS.
        cls.server = Server(users=("alice",))
        run_cli("domain", "add", PUB, data=cls.server.data)
        cls.server.set_config("server", "hostname", f'"{HOST}"')
        cls.zone = {}
        cls.dns = FakeDNS(cls.zone)
        cls.printed = run_cli("dns", "records", PUB, data=cls.server.data).stdout

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.server.cleanup()

    def check(self):
        r = run_cli("dns", "check", PUB, "--resolver", self.dns.address,
                    data=self.server.data, check=False)
        lines = {}
        for line in r.stdout.splitlines():
            f = line.split("\t")
            if len(f) >= 3:
                lines[(f[1], f[2])] = (f[0], f[3] if len(f) > 3 else "")
        return r, lines

    def load(self):
        self.zone.clear()
        for name, rtype, value in zone_records(self.printed):
            if not value.startswith("<"):
                self.zone.setdefault(name, []).append((rtype, value))
        # The placeholder A and AAAA records of mail.DOMAIN.
        self.zone.setdefault(HOST, []).extend(
            [("A", "192.0.2.10"), ("AAAA", "2001:db8::10")])

    def test_srv_and_cname_records_are_checked(self):
        srv_names = [f"{s}._tcp.{PUB}" for s in
                     ("_submissions", "_submission", "_imaps", "_imap", "_pop3s", "_pop3")]
        cnames = [f"autoconfig.{PUB}", f"mta-sts.{PUB}"]
        # Nothing published: each is MISSING, none SKIPPED.
        r, lines = self.check()
        self.assertNotIn("SKIPPED", r.stdout)
        for n in srv_names:
            self.assertEqual(lines[("SRV", n)][0], "MISSING", n)
        for n in cnames:
            self.assertEqual(lines[("CNAME", n)][0], "MISSING", n)

        # Published as printed: all OK, and the exit status is 0.
        self.load()
        r, lines = self.check()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for n in srv_names:
            self.assertEqual(lines[("SRV", n)][0], "OK", (n, r.stdout))
        for n in cnames:
            self.assertEqual(lines[("CNAME", n)][0], "OK", (n, r.stdout))
        self.assertIn("0 required and 0 recommended", r.stdout)

        # A wrong port, a wrong target, a CNAME elsewhere, and an A record
        # instead of a CNAME (the host's address: fine).
        self.zone[f"_imaps._tcp.{PUB}"] = [("SRV", f"0 1 9993 {HOST}.")]
        self.zone[f"_pop3s._tcp.{PUB}"] = [("SRV", "0 0 995 pop.elsewhere.example.")]
        self.zone[f"autoconfig.{PUB}"] = [("CNAME", "autoconfig.provider.example.")]
        self.zone[f"mta-sts.{PUB}"] = [("A", "192.0.2.10")]
        r, lines = self.check()
        self.assertEqual(r.returncode, 0, r.stdout)  # recommended records only
        self.assertEqual(lines[("SRV", f"_imaps._tcp.{PUB}")],
                         ("DIFFERENT", f"got 0 1 9993 {HOST}."))
        self.assertEqual(lines[("SRV", f"_pop3s._tcp.{PUB}")][0], "DIFFERENT")
        self.assertEqual(lines[("SRV", f"_submissions._tcp.{PUB}")][0], "OK")
        self.assertEqual(lines[("CNAME", f"autoconfig.{PUB}")],
                         ("DIFFERENT", "got autoconfig.provider.example."))
        self.assertEqual(lines[("CNAME", f"mta-sts.{PUB}")][0], "OK", r.stdout)
        self.assertIn(f"want: _imaps._tcp.{PUB}. 3600 IN SRV 0 1 993 {HOST}.",
                      r.stdout)
        self.assertIn("0 required and 3 recommended", r.stdout)
        # An address other than the host's is not the host.
        self.zone[f"mta-sts.{PUB}"] = [("A", "192.0.2.99")]
        r, lines = self.check()
        self.assertEqual(lines[("CNAME", f"mta-sts.{PUB}")][0], "DIFFERENT", r.stdout)


if __name__ == "__main__":
    unittest.main()
