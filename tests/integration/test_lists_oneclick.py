"""RFC 8058 one-click unsubscribe for mailing lists (issue 14), end to end.

A real `hato serve` with --http and [lists] unsubscribe_url pointing at its
own /lists/unsubscribe. Each member's copy carries its own List-Unsubscribe
URL (a per-member HMAC token) and List-Unsubscribe-Post, covered by the
list domain's DKIM signature (checked with `hato dkim verify` against the
key's published record). A POST of List-Unsubscribe=One-Click without any
login removes the member; a GET only shows a confirm page (English or
Japanese); a forged or altered token is refused. Python urllib is the client.
"""
import base64
import email
import os
import re
import subprocess
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import DOMAIN, HATO, wait_for
from test_lists import ALICE, LIST, ListBase, inbox, message, send


def unsubscribe_url(msg):
    """The http(s) URL of a List-Unsubscribe field, and whether a mailto follows."""
    value = re.sub(r"\s+", " ", msg["List-Unsubscribe"] or "")
    uris = re.findall(r"<([^>]*)>", value)
    return uris[0] if uris and uris[0].startswith("http") else None, uris


class OneClickTest(ListBase):
    def configure(self):
        self.server.set_config(
            "lists", "unsubscribe_url",
            f'"http://127.0.0.1:{self.server.http_port}/lists/unsubscribe"')
        out = self.cli("dkim", "generate", DOMAIN, "--selector", "s1").stdout
        # The key's record as a DNS table line for `hato dkim verify --dns-file`.
        line = [l for l in out.splitlines() if "._domainkey." in l][0]
        strings = " ".join(re.findall(r'"[^"]*"', line.split("TXT", 1)[1]))
        self.dns_file = os.path.join(self.server.data, "dkim-dns.txt")
        with open(self.dns_file, "w") as f:
            f.write(f"s1._domainkey.{DOMAIN} TXT {strings}\n")
        self.cli("list", "create", LIST, "--mode", "discussion")
        self.cli("list", "members", "add", LIST, "carol@remote.example", "dan@far.example", ALICE)

    def request(self, url, method="GET", body=None, headers=None):
        """(status, body text) of one request to this server's HTTP listener."""
        # The URL names the port of the configuration; the server may have been
        # started on another one (harness.Server.start retries on fresh ports).
        parts = urllib.parse.urlsplit(url)
        url = parts._replace(netloc=f"127.0.0.1:{self.server.http_port}").geturl()
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def one_click(self, url, body=b"List-Unsubscribe=One-Click"):
        # What a mailbox provider sends (RFC 8058 section 3.2): no cookies, no login.
        return self.request(url, "POST", body,
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def dkim_verify(self, raw):
        r = subprocess.run([HATO, "dkim", "verify", "--dns-file", self.dns_file], input=raw,
                           capture_output=True, timeout=60)
        return r.stdout.decode().split()

    def test_each_member_gets_its_own_signed_link_and_one_click_unsubscribes(self):
        code, text = send(self.server, "carol@remote.example", LIST,
                          message("Carol <carol@remote.example>", LIST, "oneclick 1"))
        self.assertEqual(code, 250, text)
        got = wait_for(lambda: len(self.received("oneclick 1")) == 2 and self.received("oneclick 1"),
                       what="posts at the sink")
        urls = {}
        for m in got:
            rcpt = m["rcpts"][0]
            msg = email.message_from_bytes(m["data"])
            url, uris = unsubscribe_url(msg)
            self.assertIsNotNone(url, msg["List-Unsubscribe"])
            self.assertTrue(url.startswith(
                f"http://127.0.0.1:{self.server.http_port}/lists/unsubscribe?token="), url)
            self.assertEqual(uris[1], f"mailto:team+leave@{DOMAIN}?subject=unsubscribe")
            self.assertEqual(msg["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
            self.assertEqual(len(msg.get_all("List-Unsubscribe")), 1)
            # One DKIM signature by the list domain, covering the member's own fields.
            sigs = msg.get_all("DKIM-Signature")
            self.assertEqual(len(sigs), 1)
            sig = re.sub(r"\s", "", sigs[0])
            self.assertIn(f"d={DOMAIN};", sig)
            h = re.search(r"(?:^|;)h=([^;]*)", sig).group(1).lower().split(":")
            self.assertIn("list-unsubscribe", h)
            self.assertIn("list-unsubscribe-post", h)
            self.assertEqual(self.dkim_verify(m["data"])[:1], ["pass"], rcpt)
            # Another member's link in this copy would not verify.
            self.assertEqual(self.dkim_verify(m["data"].replace(b"token=", b"token=x"))[:1],
                             ["fail"])
            urls[rcpt] = url
        self.assertNotEqual(urls["carol@remote.example"], urls["dan@far.example"])
        # The local member's copy has its own link too.
        local = wait_for(lambda: [m for m in inbox(self.server, ALICE)
                                  if m["Subject"] == "oneclick 1"], what="local copy")
        alice_url, _ = unsubscribe_url(local[0])
        self.assertNotIn(alice_url, urls.values())

        dan = urls["dan@far.example"]
        # A GET (a link checker, a preview) only asks; dan is still a member.
        status, page = self.request(dan, headers={"Accept-Language": "en"})
        self.assertEqual(status, 200, (dan, page))
        self.assertIn("dan@far.example", page)
        self.assertIn('name="List-Unsubscribe" value="One-Click"', page)
        status, page = self.request(dan, headers={"Accept-Language": "ja,en;q=0.5"})
        self.assertEqual(status, 200)
        self.assertIn("配信", page)
        self.assertIn("dan@far.example", self.members())

        # Tokens cannot be made or altered without the server's key.
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(dan).query)["token"][0]
        names, mac = token.rsplit(".", 1)
        forged_names = base64.urlsafe_b64encode(
            f"{LIST}\ncarol@remote.example".encode()).decode().rstrip("=")
        for bad in (f"{forged_names}.{mac}", f"{names}.{'0' * len(mac)}", "garbage", ""):
            status, _ = self.one_click(
                f"http://127.0.0.1/lists/unsubscribe?token={urllib.parse.quote(bad)}")
            self.assertEqual(status, 400, bad)
        # A POST without the one-click body does nothing.
        status, _ = self.one_click(dan, body=b"something=else")
        self.assertEqual(status, 400)
        self.assertEqual(sorted(self.members()),
                         sorted(["carol@remote.example", "dan@far.example", ALICE]))

        # The one-click POST, no login: dan leaves at once; again is harmless.
        status, page = self.one_click(dan)
        self.assertEqual(status, 200, page)
        self.assertNotIn("dan@far.example", self.members())
        status, _ = self.one_click(dan)
        self.assertEqual(status, 200)
        self.assertEqual(sorted(self.members()), sorted(["carol@remote.example", ALICE]))

        # The next post does not go to dan.
        code, text = send(self.server, "carol@remote.example", LIST,
                          message("Carol <carol@remote.example>", LIST, "oneclick 2"))
        self.assertEqual(code, 250, text)
        self.assertIn("Posted to 2 members", text)
        got = wait_for(lambda: self.received("oneclick 2"), what="second post")
        self.assertEqual([m["rcpts"] for m in got], [["carol@remote.example"]])



class OneClickEd25519Test(OneClickTest):
    """[lists] copy_dkim: the list domain holds an RSA key (s1, its key for
    everything else) and an Ed25519 key (s0, RFC 8463); one-click copies are
    signed with the one(s) the setting names, per list domain."""
    copy_dkim = None  # [lists] copy_dkim; None = through copy_dkim_domains
    expected = ["ed25519-sha256 s=s0"]

    def configure(self):
        super().configure()
        out = self.cli("dkim", "generate", DOMAIN, "--selector", "s0",
                       "--algorithm", "ed25519").stdout
        line = [l for l in out.splitlines() if "._domainkey." in l][0]
        strings = " ".join(re.findall(r'"[^"]*"', line.split("TXT", 1)[1]))
        with open(self.dns_file, "a") as f:
            f.write(f"s0._domainkey.{DOMAIN} TXT {strings}\n")
        if self.copy_dkim:
            self.server.set_config("lists", "copy_dkim", f'"{self.copy_dkim}"')
        else:
            self.server.set_config("lists", "copy_dkim_domains", f'{{ "{DOMAIN}" = "ed25519" }}')

    # The unsubscribe flow is OneClickTest's; here the signatures only (not callable:
    # unittest does not collect it).
    test_each_member_gets_its_own_signed_link_and_one_click_unsubscribes = None

    def test_copies_are_signed_by_the_chosen_keys(self):
        code, text = send(self.server, "carol@remote.example", LIST,
                          message("Carol <carol@remote.example>", LIST, "oneclick ed"))
        self.assertEqual(code, 250, text)
        got = wait_for(lambda: len(self.received("oneclick ed")) == 2 and
                       self.received("oneclick ed"), what="posts at the sink")
        for m in got:
            msg = email.message_from_bytes(m["data"])
            self.assertEqual(len(msg.get_all("DKIM-Signature")), len(self.expected))
            self.assertEqual(self.verify_lines(m["data"]),
                             [f"pass d={DOMAIN} {e.split()[1]} a={e.split()[0]}"
                              for e in self.expected], m["rcpts"])
            # The member's own link is covered by every signature.
            tampered = self.verify_lines(m["data"].replace(b"token=", b"token=x"))
            self.assertEqual([l.split()[0] for l in tampered], ["fail"] * len(self.expected))

    def verify_lines(self, raw):
        """`hato dkim verify`'s line per signature, top first."""
        r = subprocess.run([HATO, "dkim", "verify", "--dns-file", self.dns_file], input=raw,
                           capture_output=True, timeout=60, check=True)
        return r.stdout.decode().splitlines()


class OneClickDualTest(OneClickEd25519Test):
    copy_dkim = "rsa+ed25519"
    expected = ["ed25519-sha256 s=s0", "rsa-sha256 s=s1"]


class OneClickDomainKeyTest(OneClickEd25519Test):
    """The default ("key"): the domain's key of the greatest selector, RSA s1, alone."""
    copy_dkim = "key"
    expected = ["rsa-sha256 s=s1"]


if __name__ == "__main__":
    unittest.main()
