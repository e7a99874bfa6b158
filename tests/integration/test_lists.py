"""Mailing lists (issue 14), end to end on loopback.

A real `hato serve` with a list; remote members live behind a fake MX found
through the fake DNS (fakemx.py), local members have accounts read over POP3.
Join/confirm/leave by mail, posting rights, moderation by reply, VERP
bounces and the bounce score, loop detection, CSV import, reports that
match what the sink received, and kill -9 during a 10,000-member fan-out.
"""
import base64
import email
import email.header
import email.utils
import json
import os
import poplib
import re
import smtplib
import subprocess
import tempfile
import threading
import time
import unittest

import socketserver

import metrics_client
import pg_cluster
from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, PASSWORD, Server, free_port, run_cli, wait_for

# A fan-out opens tens of connections to the sink at once: with socketserver's
# listen backlog of 5, Linux drops the handshake's last ACK and the client
# waits for a greeting that never comes (until its command timeout).
socketserver.TCPServer.request_queue_size = 512

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
LIST = f"team@{DOMAIN}"
DOMAINS = ["remote.example", "far.example"] + [f"d{i}.example" for i in range(20)]


def inbox(server, user):
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
    try:
        p.user(user)
        p.pass_(PASSWORD)
        n = len(p.list()[1])
        return [email.message_from_bytes(b"\r\n".join(p.retr(i + 1)[1])) for i in range(n)]
    finally:
        p.quit()


def subject(msg):
    """The Subject, RFC 2047 words decoded."""
    raw = msg["Subject"] or ""
    return str(email.header.make_header(email.header.decode_header(raw)))


def body_text(msg):
    payload = msg.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if payload else ""


def send(server, mail_from, rcpt, text, port=None, login=None):
    """One SMTP transaction; returns (code, text) of the final reply."""
    with smtplib.SMTP("127.0.0.1", port or server.smtp_port, timeout=30) as s:
        s.ehlo()
        if login:
            s.login(login, PASSWORD)
        code, msg = s.mail(mail_from)
        assert code == 250, (code, msg)
        code, msg = s.rcpt(rcpt)
        if code != 250:
            return code, msg.decode()
        code, msg = s.data(text.encode() if isinstance(text, str) else text)
        return code, msg.decode()


def message(frm, to, subject, body="hello\r\n", extra=""):
    return f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}\r\n{body}"


class ListBase(unittest.TestCase):
    users = ("alice", "bob")
    extra_zone = {}  # more names for the fake DNS (name -> [(type, value)])
    mx_options = {}  # FakeMX's keyword arguments

    def setUp(self):
        self.mx = FakeMX(**self.mx_options)
        zone = {}
        for d in DOMAINS:
            zone[d] = [("MX", "10 mx.sink.example.")]
        zone["mx.sink.example"] = [("A", "127.0.0.1")]
        zone.update(self.extra_zone)
        # Answers cached for the run (a fan-out asks for the same names at once).
        self.dns = FakeDNS(zone, ttl=300)
        self.server = Server(users=self.users)
        self.server.set_config("outbound", "resolver", f'"{self.dns.address}"')
        self.server.set_config("outbound", "smtp_port", str(self.mx.port))
        self.server.set_config("outbound", "retry_base_seconds", "1")
        self.server.set_config("outbound", "retry_max_seconds", "2")
        self.configure()
        self.server.start()

    def configure(self):
        pass

    def tearDown(self):
        self.server.cleanup()
        self.mx.stop()
        self.dns.stop()

    def cli(self, *args, check=True):
        return run_cli(*args, data=self.server.data, check=check)

    def report(self, post=None):
        args = ["list", "report", LIST, "--json"] + (["--post", str(post)] if post else [])
        return json.loads(self.cli(*args).stdout)

    def members(self):
        return self.cli("list", "members", "list", LIST).stdout.split()

    def received(self, subject):
        with self.mx.lock:
            return [m for m in self.mx.messages
                    if email.message_from_bytes(m["data"])["Subject"] == subject]


class ContractTest(ListBase):
    def configure(self):
        self.cli("list", "create", LIST, "--mode", "discussion")
        self.cli("list", "members", "add", LIST, "carol@remote.example", "dan@far.example", ALICE)

    def test_members_list_one_address_a_line(self):
        out = self.cli("list", "members", "list", LIST).stdout
        self.assertEqual(out.splitlines(),
                         sorted(["carol@remote.example", "dan@far.example", ALICE]))
        # Adding again is reported, not duplicated.
        out = self.cli("list", "members", "add", LIST, "Carol@Remote.example").stdout
        self.assertIn("already a member", out)
        self.assertEqual(len(self.members()), 3)
        # A list address cannot be an account's, and a duplicate list is refused.
        r = self.cli("list", "create", ALICE, "--mode", "announce", check=False)
        self.assertNotEqual(r.returncode, 0)
        r = self.cli("list", "create", LIST, check=False)
        self.assertNotEqual(r.returncode, 0)

    def test_post_reaches_members_with_list_headers_and_verp(self):
        code, text = send(self.server, "carol@remote.example", LIST,
                          message("Carol <carol@remote.example>", LIST, "first post"))
        self.assertEqual(code, 250, text)
        got = wait_for(lambda: len(self.received("first post")) == 2 and self.received("first post"),
                       what="posts at the sink")
        by_rcpt = {m["rcpts"][0]: m for m in got}
        self.assertEqual(set(by_rcpt), {"carol@remote.example", "dan@far.example"})
        for rcpt, m in by_rcpt.items():
            self.assertEqual(len(m["rcpts"]), 1)
            local, dom = rcpt.split("@")
            self.assertEqual(m["mail_from"], f"team-bounces+{local}={dom}@{DOMAIN}")
            msg = email.message_from_bytes(m["data"])
            self.assertEqual(msg["List-Id"], f"team <team.{DOMAIN}>")
            self.assertIn(f"mailto:team+leave@{DOMAIN}", msg["List-Unsubscribe"])
            self.assertEqual(msg["List-Post"], f"<mailto:{LIST}>")
            self.assertIn(f"team+help@{DOMAIN}", msg["List-Help"])
            self.assertEqual(msg["Precedence"], "list")
            self.assertEqual(msg["From"], "Carol <carol@remote.example>")
        # The local member got it in her INBOX, with a VERP Return-Path.
        msgs = wait_for(lambda: [m for m in inbox(self.server, ALICE)
                                 if m["Subject"] == "first post"], what="local copy")
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0]["Return-Path"], f"<team-bounces+alice={DOMAIN}@{DOMAIN}>")
        self.assertEqual(msgs[0]["List-Id"], f"team <team.{DOMAIN}>")
        rep = wait_for(lambda: (lambda r: r["delivered"] == 3 and r)(self.report()),
                       what="report")
        self.assertEqual((rep["delivered"], rep["deferred"], rep["failed"]), (3, 0, 0))
        self.assertEqual(rep["recipients"], 3)
        text_report = self.cli("list", "report", LIST).stdout
        self.assertIn("delivered: 3", text_report)
        # The finished post is a report, not queue work.
        self.assertIn("queue is empty", self.cli("queue", "list").stdout)

    def test_non_member_post_is_held_and_loop_is_refused(self):
        code, text = send(self.server, "eve@remote.example", LIST,
                          message("eve@remote.example", LIST, "spam"))
        self.assertEqual(code, 250)
        self.assertIn("Held", text)
        held = self.cli("list", "moderate", LIST).stdout
        self.assertIn("eve@remote.example", held)
        # Our own List-Id coming back is a loop.
        code, text = send(self.server, "carol@remote.example", LIST,
                          message("carol@remote.example", LIST, "loop",
                                  extra=f"List-Id: team <team.{DOMAIN}>\r\n"))
        self.assertEqual(code, 550)
        self.assertIn("5.4.6", text)
        time.sleep(1.5)
        self.assertEqual(self.received("spam"), [])
        # Approved from the CLI: now it goes out.
        hid = held.split()[0]
        self.cli("list", "moderate", LIST, "--approve", hid)
        wait_for(lambda: len(self.received("spam")) == 2, what="approved post")
        self.assertEqual(self.cli("list", "moderate", LIST).stdout, "")


class JoinLeaveTest(ListBase):
    def configure(self):
        self.cli("list", "create", LIST)
        self.cli("list", "set", LIST, "--name", "Team")

    def confirmation_for(self, addr):
        def find():
            with self.mx.lock:
                return [m for m in self.mx.messages if addr in m["rcpts"]
                        and "Confirm" in subject(email.message_from_bytes(m["data"]))]
        return wait_for(find, what=f"confirmation for {addr}")

    def test_join_confirm_by_reply_then_leave(self):
        # A forged Reply-To does not get the confirmation: the From address does.
        code, text = send(self.server, "dave@remote.example", f"team+join@{DOMAIN}",
                          message("Dave <dave@remote.example>", f"team+join@{DOMAIN}", "",
                                  body="", extra="Reply-To: mallory@far.example\r\n"))
        self.assertEqual(code, 250, text)
        conf = self.confirmation_for("dave@remote.example")
        self.assertEqual(len(conf), 1)
        with self.mx.lock:
            self.assertFalse([m for m in self.mx.messages if "mallory@far.example" in m["rcpts"]])
        msg = email.message_from_bytes(conf[0]["data"])
        reply_to = email.utils.parseaddr(msg["Reply-To"])[1]
        self.assertRegex(reply_to, rf"^team\+confirm-[0-9a-f]{{32}}@{re.escape(DOMAIN)}$")
        self.assertEqual(msg["Auto-Submitted"], "auto-generated")
        text = body_text(msg)
        self.assertIn("reply to this message", text)
        self.assertIn("返信", text)  # Japanese too
        self.assertNotIn("dave@remote.example", self.members())
        # Replying confirms.
        code, text = send(self.server, "dave@remote.example", reply_to,
                          message("dave@remote.example", reply_to, "Re: confirm",
                                  body="> quoted\r\n"))
        self.assertEqual(code, 250, text)
        self.assertIn("dave@remote.example", self.members())
        # The token is single-use.
        code, text = send(self.server, "dave@remote.example", reply_to,
                          message("dave@remote.example", reply_to, "again"))
        self.assertEqual(code, 550)
        self.assertIn("already used", text)
        # Leave by mail: gone at once, with a notice.
        code, text = send(self.server, "dave@remote.example", f"team+leave@{DOMAIN}",
                          message("dave@remote.example", f"team+leave@{DOMAIN}", "unsubscribe"))
        self.assertEqual(code, 250, text)
        self.assertNotIn("dave@remote.example", self.members())

    def test_confirmation_text_per_list_and_join_flood(self):
        path = os.path.join(self.server.data, "confirm.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("チームへようこそ {address}: reply to join {list}\n")
        self.cli("list", "set", LIST, "--confirm-text-file", path)
        send(self.server, "erin@remote.example", f"team+join@{DOMAIN}",
             message("erin@remote.example", f"team+join@{DOMAIN}", "join"))
        conf = self.confirmation_for("erin@remote.example")
        text = body_text(email.message_from_bytes(conf[0]["data"]))
        self.assertIn("チームへようこそ erin@remote.example: reply to join team@", text)
        # Per address: three requests an hour, then a temporary refusal.
        for _ in range(2):
            code, _ = send(self.server, "erin@remote.example", f"team+join@{DOMAIN}",
                           message("erin@remote.example", f"team+join@{DOMAIN}", "join"))
            self.assertEqual(code, 250)
        code, text = send(self.server, "erin@remote.example", f"team+join@{DOMAIN}",
                          message("erin@remote.example", f"team+join@{DOMAIN}", "join"))
        self.assertEqual(code, 450)
        self.assertIn("4.7.1", text)

    def test_expired_token_is_refused(self):
        send(self.server, "fay@remote.example", f"team+join@{DOMAIN}",
             message("fay@remote.example", f"team+join@{DOMAIN}", "join"))
        conf = self.confirmation_for("fay@remote.example")
        reply_to = email.utils.parseaddr(email.message_from_bytes(conf[0]["data"])["Reply-To"])[1]
        # Age the token in the store: its expiry is in the past.
        if self.server.postgres:
            subprocess.run(["psql", self.server.postgres, "-q", "-c",
                            "UPDATE list_tokens SET expires_at = 1"], check=True, timeout=60)
        else:
            import sqlite3
            db = sqlite3.connect(os.path.join(self.server.data, "meta.db"))
            db.execute("UPDATE list_tokens SET expires_at = 1")
            db.commit()
            db.close()
        code, text = send(self.server, "fay@remote.example", reply_to,
                          message("fay@remote.example", reply_to, "Re: confirm"))
        self.assertEqual(code, 550)
        self.assertIn("expired", text)
        self.assertNotIn("fay@remote.example", self.members())


class PostingRightsTest(ListBase):
    def configure(self):
        self.cli("list", "create", LIST, "--mode", "announce")
        self.cli("list", "members", "add", LIST, "--owner", ALICE)
        self.cli("list", "members", "add", LIST, "carol@remote.example", BOB)

    def test_announce_owner_by_submission_others_held_moderation_by_reply(self):
        # The owner, authenticated on submission: posted.
        code, text = send(self.server, ALICE, LIST, message(ALICE, LIST, "news"),
                          port=self.server.submission_port, login=ALICE)
        self.assertEqual(code, 250, text)
        self.assertIn("Posted", text)
        wait_for(lambda: self.received("news"), what="announcement")
        self.assertEqual(self.received("news")[0]["rcpts"], ["carol@remote.example"])
        msg = email.message_from_bytes(self.received("news")[0]["data"])
        self.assertEqual(msg["List-Post"], "NO")
        # The owner's address in From on port 25 (not authenticated): held.
        code, text = send(self.server, ALICE, LIST, message(ALICE, LIST, "forged"))
        self.assertEqual(code, 250)
        self.assertIn("Held", text)
        # A member on submission: not an owner, held too.
        code, text = send(self.server, BOB, LIST, message(BOB, LIST, "member post"),
                          port=self.server.submission_port, login=BOB)
        self.assertIn("Held", text)
        # The owner gets one moderation mail per held post; replying "approve" sends it.
        mods = wait_for(lambda: (lambda ms: len(ms) >= 2 and ms)(
            [m for m in inbox(self.server, ALICE) if "moderation" in subject(m)]),
            what="moderation mails")
        member_post = [m for m in mods if "member post" in subject(m)][0]
        addr = email.utils.parseaddr(member_post["Reply-To"])[1]
        self.assertRegex(addr, r"^team\+moderate-[0-9a-f]{32}@")
        code, text = send(self.server, ALICE, addr,
                          message(ALICE, addr, "Re: held", body="approve\r\n\r\n> the post\r\n"),
                          port=self.server.submission_port, login=ALICE)
        self.assertEqual(code, 250, text)
        wait_for(lambda: self.received("member post"), what="approved post")
        # Answered once only.
        code, text = send(self.server, ALICE, addr, message(ALICE, addr, "Re: held", "approve\r\n"))
        self.assertEqual(code, 550)
        time.sleep(1.5)
        self.assertEqual(self.received("forged"), [])

    def test_size_limit(self):
        self.cli("list", "set", LIST, "--max-message-size", "2000")
        code, text = send(self.server, ALICE, LIST, message(ALICE, LIST, "big", "x" * 3000),
                          port=self.server.submission_port, login=ALICE)
        self.assertEqual(code, 552)
        self.assertIn("5.3.4", text)


class BounceTest(ListBase):
    def configure(self):
        self.cli("list", "create", LIST)
        self.cli("list", "set", LIST, "--bounce-threshold", "2")
        self.cli("list", "members", "add", LIST, "carol@remote.example", "gone@remote.example",
                 "late@far.example", "ok@far.example")

    def post(self, subject):
        code, text = send(self.server, "carol@remote.example", LIST,
                          message("carol@remote.example", LIST, subject))
        self.assertEqual(code, 250, text)

    def dsn(self, member, envid):
        local, dom = member.split("@")
        verp = f"team-bounces+{local}={dom}@{DOMAIN}"
        text = (f"From: MAILER-DAEMON@mx.far.example\r\nTo: {verp}\r\nSubject: failure\r\n"
                "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
                "report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\n"
                "Content-Type: text/plain\r\n\r\nundeliverable\r\n--b\r\n"
                "Content-Type: message/delivery-status\r\n\r\n"
                f"Reporting-MTA: dns; mx.far.example\r\nOriginal-Envelope-Id: {envid}\r\n\r\n"
                f"Final-Recipient: rfc822; {member}\r\nAction: failed\r\nStatus: 5.2.1\r\n"
                "Diagnostic-Code: smtp; 550 5.2.1 mailbox disabled\r\n\r\n--b--\r\n")
        code, reply = send(self.server, "", verp, text)
        self.assertEqual(code, 250, reply)

    def member_state(self, addr):
        for line in self.cli("list", "members", "list", LIST, "-v").stdout.splitlines():
            if line.startswith(addr + "\t"):
                return line
        return None

    def test_rejections_and_dsns_score_and_disable_report_matches_sink(self):
        self.mx.rcpt_replies["gone@remote.example"] = "550 5.1.1 no such user"
        self.post("p1")
        rep = wait_for(lambda: (lambda r: r["delivered"] + r["failed"] == 4 and r)(self.report()),
                       what="post 1 final")
        self.assertEqual(rep["failed"], 1)
        self.assertEqual(rep["delivered"], len(self.received("p1")))
        failed = [d for d in rep["domains"] if d["state"] == "failed"]
        self.assertEqual(failed[0]["domain"], "remote.example")
        self.assertEqual(failed[0]["addresses"], ["gone@remote.example"])
        self.assertIn("5.1.1", failed[0]["reason"])
        self.assertIn("bounces=1", self.member_state("gone@remote.example"))
        # A later DSN to late@'s VERP address (it was accepted, then bounced).
        self.dsn("late@far.example", f"post-{rep['post']}")
        self.assertIn("bounces=1", self.member_state("late@far.example"))
        rep = self.report()
        self.assertEqual(rep["failed"], 2)
        self.assertEqual(rep["delivered"], 2)
        # Second post: gone@ fails again and reaches the threshold (2): disabled.
        self.post("p2")
        wait_for(lambda: (lambda r: r["post"] != rep["post"] and r["delivered"] + r["failed"] == 4)(
            self.report()), what="post 2 final")
        self.assertIn("disabled", self.member_state("gone@remote.example"))
        self.assertIn("enabled", self.member_state("late@far.example"))
        # late@ received p2 fine: its score is cleared (re-enabled on success).
        self.assertIn("bounces=0", self.member_state("late@far.example"))
        # Third post: the disabled member is skipped.
        self.post("p3")
        wait_for(lambda: len(self.received("p3")) == 3, what="post 3")
        rep3 = self.report()
        self.assertEqual(rep3["recipients"], 3)
        self.assertNotIn("gone@remote.example", [m["rcpts"][0] for m in self.received("p3")])
        # The operator enables it again.
        self.cli("list", "members", "set", LIST, "gone@remote.example", "--enable")
        self.assertIn("enabled", self.member_state("gone@remote.example"))


class PipeliningTest(ListBase):
    """The fan-out's SMTP client sends MAIL, RCPT and DATA as one PIPELINING
    group (RFC 2920 section 3.1) when the MX offers it: a VERP transaction
    per member is one round trip plus the body. The MX waits before its reply
    to MAIL and sees RCPT already there. A refused RCPT's pipelined DATA gets
    its refusal read before RSET, so the session stays in step."""

    mx_options = {"pipelining_probe": True}
    N = 6

    def configure(self):
        self.cli("list", "create", LIST)
        self.addrs = [f"p{i}@{DOMAINS[i % 3]}" for i in range(self.N)]
        self.cli("list", "members", "add", LIST, *self.addrs)

    def test_fanout_pipelines_each_transaction(self):
        gone = self.addrs[1]
        self.mx.rcpt_replies[gone] = "550 5.1.1 no such user"
        code, text = send(self.server, self.addrs[0], LIST,
                          message(self.addrs[0], LIST, "piped"))
        self.assertEqual(code, 250, text)
        ok = [a for a in self.addrs if a != gone]
        wait_for(lambda: sorted(m["rcpts"][0] for m in self.received("piped")) == sorted(ok),
                 timeout=60, what="every accepting member's copy")
        wait_for(lambda: (lambda r: r["delivered"] == len(ok) and r["failed"] == 1)(
            self.report()), what="report final")
        for m in self.received("piped"):
            local, dom = m["rcpts"][0].split("@")
            self.assertEqual(m["mail_from"], f"team-bounces+{local}={dom}@{DOMAIN}")
        with self.mx.lock:
            self.assertEqual(self.mx.unpipelined, 0)
            self.assertEqual(self.mx.pipelined, self.N)
            # A run's next transaction (MAIL, RCPT, DATA) went with the
            # previous one's final dot.
            self.assertGreaterEqual(self.mx.after_dot, 1)


class UnpipelinedTest(PipeliningTest):
    """Without PIPELINING in the MX's EHLO: one command, one reply."""

    mx_options = {"pipelining_probe": True, "ehlo_extra": ("8BITMIME",)}

    def test_fanout_pipelines_each_transaction(self):
        code, text = send(self.server, self.addrs[0], LIST,
                          message(self.addrs[0], LIST, "plain"))
        self.assertEqual(code, 250, text)
        wait_for(lambda: len(self.received("plain")) == self.N, timeout=60,
                 what="every member's copy")
        with self.mx.lock:
            self.assertEqual(self.mx.pipelined, 0)
            self.assertEqual(self.mx.unpipelined, self.N)
            self.assertEqual(self.mx.after_dot, 0)


class ConnectionReuseTest(ListBase):
    """SMTP connection reuse in the fan-out (RFC 5321 section 4.1.4): the VERP
    transactions of a post (one per member) share a few sessions to the MX
    instead of a connection each, and stay correct under failures: a 450 or
    550 to one member's RCPT gets RSET and the session carries the next
    member; a session that got a 421 or lost its connection is never used
    again; each member's outcome comes from its own transaction's replies."""

    N = 30  # members, on three domains served by the one MX host

    def configure(self):
        # One bulk connection per destination (per destination 2, minus one
        # kept for person-to-person mail): three domains, three at a time.
        self.server.set_config("outbound", "max_connections_per_destination", "2")
        self.server.set_config("outbound", "max_messages_per_connection", "8")
        self.metrics_port = free_port()
        metrics_client.enable(self.server, self.metrics_port)
        self.cli("list", "create", LIST)
        self.addrs = [f"m{i}@{DOMAINS[i % 3]}" for i in range(self.N)]
        self.cli("list", "members", "add", LIST, *self.addrs)

    def test_fanout_reuses_connections_and_keeps_results_apart(self):
        busy, gone, closing, cut = self.addrs[1], self.addrs[2], self.addrs[3], self.addrs[5]
        self.mx.rcpt_replies[busy] = "450 4.2.1 mailbox busy"
        self.mx.rcpt_replies[gone] = "550 5.1.1 no such user"
        self.mx.closing_replies[closing] = "421 4.3.2 shutting down"
        self.mx.drop_after_data.add(cut)  # no reply to the dot, once
        code, text = send(self.server, "m0@remote.example", LIST,
                          message("m0@remote.example", LIST, "reuse"))
        self.assertEqual(code, 250, text)
        ok = [a for a in self.addrs if a not in (busy, gone, closing)]
        wait_for(lambda: sorted(m["rcpts"][0] for m in self.received("reuse")) == sorted(ok),
                 timeout=60, what="every accepting member's copy")
        rep = wait_for(lambda: (lambda r: r["delivered"] == len(ok) and r["failed"] == 1 and r)(
            self.report()), what="report final")
        # Each member's copy came in its own transaction, with its own VERP sender.
        for m in self.received("reuse"):
            self.assertEqual(len(m["rcpts"]), 1)
            local, dom = m["rcpts"][0].split("@")
            self.assertEqual(m["mail_from"], f"team-bounces+{local}={dom}@{DOMAIN}")
        failed = [d for d in rep["domains"] if d["state"] == "failed"]
        self.assertEqual([a for d in failed for a in d["addresses"]], [gone])
        self.assertIn("5.1.1", failed[0]["reason"])
        deferred = {a: d["reason"] for d in rep["domains"] if d["state"] == "deferred"
                    for a in d["addresses"]}
        self.assertIn("4.2.1", deferred[busy])
        self.assertIn("4.3.2", deferred[closing])
        with self.mx.lock:
            per_connection = list(self.mx.per_connection)
            rsets, after_421 = self.mx.rsets, self.mx.after_421
        transactions = sum(per_connection)
        self.assertGreaterEqual(transactions, self.N + 1)  # cut@ twice, retries of busy@
        # Reused: far fewer connections than transactions, none past the limit.
        self.assertLessEqual(len(per_connection), transactions // 2, per_connection)
        self.assertLessEqual(max(per_connection), 8, per_connection)
        # The refused RCPTs were followed by RSET; the session that got 421
        # saw no further command.
        self.assertGreaterEqual(rsets, 2)
        self.assertEqual(after_421, 0)
        # The server counts the same: sessions opened and transactions sent.
        m = metrics_client.scrape(self.metrics_port)
        self.assertGreaterEqual(m["hato_outbound_sessions_total"], len(per_connection))
        self.assertLessEqual(m["hato_outbound_sessions_total"],
                             m["hato_outbound_transactions_total"] // 2)
        self.assertGreaterEqual(m["hato_outbound_transactions_total"], transactions)


class FanoutOnEveryLoopTest(ListBase):
    """The fan-out's SMTP sessions run on every event loop (issue 14): the queue
    runner keeps its bookkeeping on its own loop and runs each new session on
    the next loop round-robin (a reused one on the loop that opened it), so a
    broadcast's socket work does not all fall on one loop. Every member still
    gets exactly one copy in its own transaction, and the server counts the
    sessions opened on each loop (hato_event_loop_outbound_sessions_total)."""

    N = 40  # members, on four domains served by the one MX host

    def configure(self):
        self.server.event_loops = 2
        # Short sessions: several are opened, so both loops get some.
        self.server.set_config("outbound", "max_messages_per_connection", "3")
        self.metrics_port = free_port()
        metrics_client.enable(self.server, self.metrics_port)
        self.cli("list", "create", LIST)
        self.addrs = [f"m{i}@{DOMAINS[i % 4]}" for i in range(self.N)]
        self.cli("list", "members", "add", LIST, *self.addrs)

    def test_sessions_on_both_loops_each_member_once(self):
        code, text = send(self.server, "m0@remote.example", LIST,
                          message("m0@remote.example", LIST, "loops"))
        self.assertEqual(code, 250, text)
        wait_for(lambda: self.report()["delivered"] == self.N, timeout=60,
                 what="every member delivered")
        got = sorted(m["rcpts"][0] for m in self.received("loops"))
        self.assertEqual(got, sorted(self.addrs))  # each once
        for m in self.received("loops"):
            self.assertEqual(len(m["rcpts"]), 1)
        m = metrics_client.scrape(self.metrics_port)
        per_loop = [m.get(f'hato_event_loop_outbound_sessions_total{{loop="{i}"}}', 0)
                    for i in range(2)]
        self.assertGreater(per_loop[0], 0, per_loop)
        self.assertGreater(per_loop[1], 0, per_loop)
        self.assertEqual(sum(per_loop), m["hato_outbound_sessions_total"])
        with self.mx.lock:
            self.assertEqual(len(self.mx.per_connection), sum(per_loop))


class IdleCloseRaceTest(ListBase):
    """A reused session that the MX closed as its next MAIL arrived (the server's
    idle timeout, RFC 5321 section 4.5.3.2.7, racing the client): nothing of that
    transaction happened, so the message goes on a new connection at once
    instead of being deferred for a retry."""

    N = 30

    def configure(self):
        self.server.set_config("outbound", "max_connections_per_destination", "2")
        self.server.set_config("outbound", "max_messages_per_connection", "8")
        # A deferral would wait a minute: the test's wait would see it.
        self.server.set_config("outbound", "retry_base_seconds", "60")
        self.server.set_config("outbound", "retry_max_seconds", "120")
        self.cli("list", "create", LIST)
        self.addrs = [f"m{i}@{DOMAINS[i % 3]}" for i in range(self.N)]
        self.cli("list", "members", "add", LIST, *self.addrs)

    def test_sessions_the_mx_closed_while_idle_defer_nobody(self):
        # The MX hangs up without a word on each session's 4th MAIL (as when its
        # idle timeout fires just as the command arrives): that message's
        # transaction never began, so it goes on a new connection at once and
        # every member is delivered on the first pass, none deferred for a retry.
        self.mx.close_after = 3
        code, text = send(self.server, "m0@remote.example", LIST,
                          message("m0@remote.example", LIST, "closed"))
        self.assertEqual(code, 250, text)
        rep = wait_for(lambda: (lambda r: r["delivered"] == self.N and r)(self.report()),
                       timeout=20, what="every member delivered")
        self.assertEqual((rep["deferred"], rep["failed"]), (0, 0))
        self.assertEqual(sorted(m["rcpts"][0] for m in self.received("closed")),
                         sorted(self.addrs))
        with self.mx.lock:
            per_connection = list(self.mx.per_connection)
            closed = self.mx.closed_at_mail
        self.assertEqual(sum(per_connection), self.N)  # no copy sent twice
        self.assertLessEqual(max(per_connection), 3, per_connection)
        self.assertGreaterEqual(closed, 1)  # the race was met


class RunPerConnectionTest(ListBase):
    """The fan-out sends a domain's members in runs (lists/fanout.h: 20 members
    of one domain in the queue's order), each run one job: its VERP
    transactions go one after the other over one connection, with one
    in-flight mark and one outcome commit for the run, instead of a job per
    member whose sessions pass between domains."""

    N = 80  # members, on two domains served by the one MX host
    RUN = 20

    def configure(self):
        # One bulk connection per domain at a time (2 per destination, minus
        # one kept for person-to-person mail); sessions carry many transactions.
        self.server.set_config("outbound", "max_connections_per_destination", "2")
        self.server.set_config("outbound", "max_messages_per_connection", "1000")
        self.cli("list", "create", LIST)
        self.addrs = [f"r{i:02d}@{DOMAINS[i % 2]}" for i in range(self.N)]
        self.cli("list", "members", "add", LIST, *self.addrs)

    def test_each_run_of_a_domain_goes_over_one_connection(self):
        code, text = send(self.server, "r00@remote.example", LIST,
                          message("r00@remote.example", LIST, "runs"))
        self.assertEqual(code, 250, text)
        rep = wait_for(lambda: (lambda r: r["delivered"] == self.N and r)(self.report()),
                       timeout=30, what="every member delivered")
        self.assertEqual((rep["deferred"], rep["failed"]), (0, 0))
        got = self.received("runs")
        self.assertEqual(sorted(m["rcpts"][0] for m in got), sorted(self.addrs))
        # Per connection, the recipients' domains in the order sent: runs of
        # RUN transactions to one domain, never a run cut by another domain.
        per_conn = {}
        for m in got:
            per_conn.setdefault(m["conn"], []).append(m["rcpts"][0].split("@")[1])
        runs = []
        for domains in per_conn.values():
            n = 1
            for prev, cur in zip(domains, domains[1:]):
                if cur == prev:
                    n += 1
                else:
                    runs.append(n)
                    n = 1
            runs.append(n)
        self.assertTrue(all(n % self.RUN == 0 for n in runs), (runs, per_conn))
        # Each member's copy in its own transaction, with its own VERP sender.
        for m in got:
            self.assertEqual(len(m["rcpts"]), 1)
            local, dom = m["rcpts"][0].split("@")
            self.assertEqual(m["mail_from"], f"team-bounces+{local}={dom}@{DOMAIN}")


class KillDuringFanoutTest(ListBase):
    """kill -9 while runs of a post are in flight: after the restart every
    member got the post exactly once or is reported failed ("outcome
    unknown"), never silently skipped and never sent twice. The in-flight
    mark covers a job's whole run (lists/fanout.h), so the failed ones are
    exactly the members of the runs that had started."""

    DOMAINS = 5
    N = 200  # 40 members a domain: two runs of 20 each

    def configure(self):
        # One bulk connection per domain: the first run of each domain starts.
        self.server.set_config("outbound", "max_connections_per_destination", "2")
        self.cli("list", "create", LIST)
        self.addrs = [f"k{i:03d}@{DOMAINS[2 + i % self.DOMAINS]}" for i in range(self.N)]
        self.cli("list", "members", "add", LIST, *self.addrs)

    def test_kill9_each_member_once_or_reported_failed(self):
        self.mx.rcpt_gate = threading.Event()  # every RCPT waits: runs stay in flight
        code, text = send(self.server, "k000@d0.example", LIST,
                          message("k000@d0.example", LIST, "killed"))
        self.assertEqual(code, 250, text)
        wait_for(lambda: self.mx.rcpts_waiting >= self.DOMAINS, timeout=20,
                 what="a run in flight to each domain")
        self.server.kill()
        self.mx.rcpt_gate.set()  # the killed sessions' handlers end
        self.mx.rcpt_gate = None
        self.server.start()
        rep = wait_for(lambda: (lambda r: r["delivered"] + r["failed"] == self.N and r)(
            self.report()), timeout=60, what="every member final")
        got = [m["rcpts"][0] for m in self.received("killed")]
        self.assertEqual(len(got), len(set(got)))  # never twice
        self.assertEqual(rep["delivered"], len(got))  # the report equals the sink
        # The first run of each domain was in flight: those members failed.
        self.assertEqual(rep["failed"], self.DOMAINS * 20)
        failed = {a for d in rep["domains"] if d["state"] == "failed" for a in d["addresses"]}
        self.assertEqual(failed | set(got), set(self.addrs))
        self.assertFalse(failed & set(got))
        for d in rep["domains"]:
            if d["state"] == "failed":
                self.assertIn("outcome unknown", d["reason"])


class DestinationRateTest(ListBase):
    """lists.destination_rates counts each member's transaction: a run of
    members to a rate-limited domain takes no more of them than the rate
    allows this minute; the others wait, queued."""

    N = 12

    def configure(self):
        self.server.set_config("lists", "destination_rates", '{ "far.example" = 5 }')
        self.cli("list", "create", LIST)
        self.addrs = [f"s{i:02d}@far.example" for i in range(self.N)]
        self.cli("list", "members", "add", LIST, *self.addrs)

    def test_rate_counts_each_member(self):
        code, text = send(self.server, "s00@far.example", LIST,
                          message("s00@far.example", LIST, "rated"))
        self.assertEqual(code, 250, text)
        wait_for(lambda: len(self.received("rated")) >= 5, timeout=20, what="the first five")
        time.sleep(3)  # nothing more this minute
        self.assertEqual(len(self.received("rated")), 5)
        rep = self.report()
        self.assertEqual((rep["delivered"], rep["failed"]), (5, 0))


