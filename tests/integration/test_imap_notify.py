"""Issue 16: NOTIFY (RFC 5465) over a live `hato serve`. A session that asked
for notifications hears, without sending a command (and during IDLE),
STATUS for new, expunged and re-flagged messages in mailboxes its filters
name, LIST for mailboxes created, renamed, deleted and (un)subscribed by
another session (on another node of one PostgreSQL database too), METADATA
for the entries SETMETADATA changed, and, for the selected mailbox, EXISTS
and the FETCH of its MessageNew fetch attributes, but only with a SELECTED
filter. INBOXES is INBOX and the folders the active Sieve script files
into. NOTIFY NONE stops them; a backlog past the session's bound ends them
with NOTIFICATIONOVERFLOW; the event combinations RFC 5465 forbids are
answered BAD and unsupported events NO [BADEVENT].
The common exchanges also run against a throw-away Dovecot (as in
test_imap_context.py), which has NOTIFY with its mailbox list index."""
import json
import os
import re
import smtplib
import socket
import tempfile
import time
import unittest

import pg_cluster
from harness import DOMAIN, PASSWORD, Server, run_cli
from test_jmap import CORE, MAIL, Http
from test_imap_model import Raw
from test_migrate import DV_PASS, DV_USER, Dovecot, have_dovecot

MESSAGE = b"From: a@x.test\r\nSubject: n\r\n\r\nbody\r\n"


class NotifyHelpers:
    def raw(self):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        return r

    def ok(self, r, command, tag="t"):
        lines = r.cmd(f"{tag} {command}", tag)
        self.assertTrue(lines[-1].startswith(f"{tag} OK"), (command, lines))
        return lines[:-1]

    def status_of(self, r, box):
        line = self.ok(r, f"STATUS {box} (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)", "st")[0]
        return line

    def append(self, w, box, flags=""):
        w.sock.sendall(f"ap APPEND {box} {flags}{{{len(MESSAGE)}+}}\r\n".encode() + MESSAGE +
                       b"\r\n")
        lines = w.until("ap")
        self.assertIn(" OK", lines[-1], lines)

    def unsolicited(self, r, pattern, timeout=5.0):
        """The untagged lines the server sends unasked, up to one matching
        `pattern` (a regex); fails after `timeout` seconds without it."""
        lines, deadline = [], time.monotonic() + timeout
        r.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    l = r.line()
                except (socket.timeout, TimeoutError):
                    continue
                lines.append(l)
                if re.search(pattern, l):
                    return lines
        finally:
            r.sock.settimeout(15)
        self.fail(f"no {pattern!r} within {timeout}s; heard {lines}")

    def quiet(self, r, seconds=1.0):
        """The lines the server sends unasked within `seconds` (none expected)."""
        lines, deadline = [], time.monotonic() + seconds
        r.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    lines.append(r.line())
                except (socket.timeout, TimeoutError):
                    continue
        finally:
            r.sock.settimeout(15)
        return lines

    def two_sessions(self, *boxes):
        w = self.raw()
        for b in boxes:
            self.ok(w, f"CREATE {b}")
        r = self.raw()
        self.assertIn("NOTIFY", r.cmd("k CAPABILITY", "k")[0].split())
        return r, w


class NotifyChecks(NotifyHelpers):
    """The exchanges run against Hato and Dovecot alike."""

    def test_new_and_expunged_messages_give_status(self):
        r, w = self.two_sessions("Other", "Elsewhere")
        self.ok(r, "NOTIFY SET (MAILBOXES Other (MessageNew MessageExpunge))", "n")
        self.append(w, "Other")
        lines = self.unsolicited(r, r"^\* STATUS")
        self.assertRegex(lines[-1], r'^\* STATUS "?Other"? \(.*MESSAGES 1\b')
        self.assertRegex(lines[-1], r"UIDNEXT 2\b")
        self.assertRegex(lines[-1], r"UIDVALIDITY \d+")
        # A mailbox no filter names: nothing.
        self.append(w, "Elsewhere")
        self.assertFalse([l for l in self.quiet(r) if "STATUS" in l])
        # An expunge: MESSAGES goes down.
        self.ok(w, "SELECT Other", "s")
        self.ok(w, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(w, "EXPUNGE", "x")
        lines = self.unsolicited(r, r"^\* STATUS")
        self.assertRegex(lines[-1], r"MESSAGES 0\b")

    def test_flag_change_and_idle(self):
        r, w = self.two_sessions("Other")
        self.append(w, "Other")
        self.ok(r, "NOTIFY SET (PERSONAL (MessageNew MessageExpunge FlagChange))", "n")
        # During IDLE too (section 3).
        r.sock.sendall(b"i IDLE\r\n")
        self.assertTrue(r.line().startswith("+"))
        self.ok(w, "SELECT Other", "s")
        self.ok(w, "STORE 1 +FLAGS.SILENT (\\Seen)")
        lines = self.unsolicited(r, r"^\* STATUS")
        self.assertRegex(lines[-1], r"UNSEEN 0\b")
        self.append(w, "Other")
        lines = self.unsolicited(r, r"^\* STATUS")
        self.assertRegex(lines[-1], r"MESSAGES 2\b")
        r.sock.sendall(b"DONE\r\n")
        self.assertTrue(r.until("i")[-1].startswith("i OK"))

    def test_status_indicator(self):
        r, _ = self.two_sessions("A", "B", "C")
        lines = self.ok(r, "NOTIFY SET STATUS (MAILBOXES (A B) (MessageNew MessageExpunge))", "n")
        named = sorted(re.match(r'^\* STATUS "?(\w+)"? ', l).group(1) for l in lines
                       if l.startswith("* STATUS"))
        self.assertEqual(named, ["A", "B"], lines)

    def test_mailbox_names_and_subscriptions(self):
        r, w = self.two_sessions()
        self.ok(r, "NOTIFY SET (PERSONAL (MailboxName SubscriptionChange))", "n")
        self.ok(w, "CREATE Fresh")
        lines = self.unsolicited(r, r'^\* LIST .*"?Fresh"?$')
        self.assertNotIn("\\NonExistent", lines[-1])
        self.ok(w, "RENAME Fresh Renamed")
        lines = self.unsolicited(r, r"^\* LIST .*Renamed")
        self.assertRegex(lines[-1], r'\("OLDNAME" \("?Fresh"?\)\)$')
        self.ok(w, "SUBSCRIBE Renamed")
        lines = self.unsolicited(r, r"^\* LIST .*Renamed")
        self.assertIn("\\Subscribed", lines[-1])
        self.ok(w, "DELETE Renamed")
        lines = self.unsolicited(r, r"^\* LIST .*\\NonExistent.*Renamed")

    def test_selected_mailbox_without_selected_filter(self):
        """No SELECTED filter: nothing about the selected mailbox is pushed,
        while no command is in progress nor during IDLE (RFC 5465 sections 4
        and 6.1; Dovecot: "no events for selected mailbox", its default)."""
        r, w = self.two_sessions()
        self.ok(r, "SELECT INBOX", "s")
        self.ok(r, "NOTIFY SET (PERSONAL (MailboxName))", "n")
        self.append(w, "INBOX")
        heard = self.quiet(r)
        r.sock.sendall(b"i IDLE\r\n")
        self.assertTrue(r.line().startswith("+"))
        self.append(w, "INBOX")
        heard += self.quiet(r, 1.5)
        self.assertFalse([l for l in heard if re.match(r"^\* \d+ (EXISTS|RECENT|FETCH|EXPUNGE)", l)],
                         heard)
        r.sock.sendall(b"DONE\r\n")
        self.assertTrue(r.until("i")[-1].startswith("i OK"))

    def test_none_stops_notifications(self):
        r, w = self.two_sessions("Other")
        self.ok(r, "NOTIFY SET (PERSONAL (MessageNew MessageExpunge MailboxName))", "n")
        self.ok(r, "NOTIFY NONE", "n2")
        self.append(w, "Other")
        self.ok(w, "CREATE Another")
        heard = self.quiet(r) + self.ok(r, "NOOP", "no")
        self.assertFalse([l for l in heard if "STATUS" in l or "LIST" in l], heard)

    def test_unsupported_event(self):
        r, _ = self.two_sessions()
        # Events the server does not offer: NO [BADEVENT ...]. RFC 5465
        # section 8 lists the supported events there (Hato, test_unknown_event);
        # Dovecot 2.3 names the refused one, without parentheses.
        lines = r.cmd("e NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))", "e")
        self.assertRegex(lines[-1], r"^e NO \[BADEVENT ")


class HatoNotifyTest(NotifyChecks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, f"alice@{DOMAIN}", PASSWORD

    def test_selected_changes_wait_for_a_command(self):
        """Without a SELECTED filter (or with SELECTED NONE) the selected
        mailbox's changes reach the client in the responses to its commands:
        at IDLE's DONE and at NOOP, not before."""
        for spec in ["(PERSONAL (MailboxName))", "(SELECTED NONE) (PERSONAL (MailboxName))"]:
            r, w = self.two_sessions()
            exists = int([l for l in self.ok(r, "SELECT INBOX", "s")
                          if l.endswith(" EXISTS")][0].split()[1])
            self.ok(r, f"NOTIFY SET {spec}", "n")
            r.sock.sendall(b"i IDLE\r\n")
            self.assertTrue(r.line().startswith("+"))
            self.append(w, "INBOX")
            self.assertFalse([l for l in self.quiet(r) if "EXISTS" in l], spec)
            r.sock.sendall(b"DONE\r\n")
            self.assertIn(f"* {exists + 1} EXISTS", r.until("i"), spec)
            self.append(w, "INBOX")
            self.assertFalse([l for l in self.quiet(r) if "EXISTS" in l], spec)
            self.assertIn(f"* {exists + 2} EXISTS", self.ok(r, "NOOP", "p"), spec)

    def test_metadata_changes(self):
        """MailboxMetadataChange and ServerMetadataChange (RFC 5465 sections
        5.6, 5.7): the changed entries' names, in RFC 5464 section 4.4.2's
        unsolicited METADATA form (Dovecot 2.3 refuses these events)."""
        r, w = self.two_sessions("Other", "Elsewhere")
        # The first filter naming a mailbox decides (section 6): none for Elsewhere.
        self.ok(r, "NOTIFY SET (MAILBOXES Elsewhere NONE) "
                   "(PERSONAL (MailboxMetadataChange ServerMetadataChange))", "n")
        self.ok(w, 'SETMETADATA Other (/private/comment "hello")', "m")
        self.assertEqual(self.unsolicited(r, "METADATA")[-1],
                         '* METADATA "Other" "/private/comment"')
        # A mailbox whose filter asks for nothing: nothing.
        self.ok(w, 'SETMETADATA Elsewhere (/private/comment "x")', "m")
        self.assertEqual([l for l in self.quiet(r) if "METADATA" in l], [])
        self.ok(w, 'SETMETADATA "" (/private/vendor/hato/a "1" /private/comment "c")', "m")
        self.assertEqual(self.unsolicited(r, "METADATA")[-1],
                         '* METADATA "" "/private/comment" "/private/vendor/hato/a"')
        # Removing an entry is a change too; a RENAME keeps the entries.
        self.ok(w, "RENAME Other Renamed")
        self.ok(w, "SETMETADATA Renamed (/private/comment NIL)", "m")
        lines = self.unsolicited(r, "METADATA")
        self.assertEqual(lines, ['* METADATA "Renamed" "/private/comment"'])

    def test_inboxes_are_inbox_and_sieve_fileinto_targets(self):
        """INBOXES (RFC 5465 section 6.2): INBOX and the folders the active
        Sieve script files into, a delivery there heard as STATUS."""
        script = ('require ["fileinto"];\n'
                  'if header :contains "subject" "list" { fileinto "Lists"; }\n'
                  'elsif header :contains "subject" "var" { fileinto "${x}"; }\n')
        with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
            f.write(script)
        self.addCleanup(os.unlink, f.name)
        run_cli("sieve", "put", self.user, "main", f.name, data=self.server.data)
        run_cli("sieve", "activate", self.user, "main", data=self.server.data)
        r, w = self.two_sessions("Lists", "Other")
        self.ok(r, "NOTIFY SET (INBOXES (MessageNew MessageExpunge))", "n")
        self.append(w, "Other")  # no delivery goes there
        self.assertEqual([l for l in self.quiet(r) if "STATUS" in l], [])
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("taro@remote.test", [self.user],
                       b"From: taro@remote.test\r\nSubject: a list post\r\n\r\nbody\r\n")
        lines = self.unsolicited(r, r"^\* STATUS")
        self.assertRegex(lines[-1], r'^\* STATUS "Lists" \(MESSAGES 1 UIDNEXT 2 ')
        self.append(w, "INBOX")
        self.assertRegex(self.unsolicited(r, r"^\* STATUS")[-1], r'^\* STATUS "INBOX" \(MESSAGES 1 ')

    def test_smtp_delivery_to_inboxes(self):
        r, _ = self.two_sessions()
        self.ok(r, "NOTIFY SET (INBOXES (MessageNew MessageExpunge))", "n")
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("taro@remote.test", [self.user], MESSAGE)
        lines = self.unsolicited(r, r"^\* STATUS")
        self.assertEqual(lines[-1][:17], '* STATUS "INBOX" ')
        self.assertRegex(lines[-1], r"MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)$")

    def test_jmap_changes(self):
        """Changes made over JMAP reach a NOTIFY session as IMAP ones do: a
        Mailbox/set create (LIST) and an Email/set keyword (STATUS UNSEEN)."""
        r, w = self.two_sessions("Other")
        self.append(w, "Other")
        self.ok(r, "NOTIFY SET (PERSONAL (MessageNew MessageExpunge FlagChange MailboxName))", "n")
        http = Http(self.server.http_port)
        base = f"http://127.0.0.1:{self.server.http_port}"

        def api(calls):
            _, _, body = http.request("POST", base + "/jmap/api/", json.dumps(
                {"using": [CORE, MAIL], "methodCalls": calls}),
                {"Content-Type": "application/json"})
            return json.loads(body)["methodResponses"]

        created = api([["Mailbox/set", {"create": {"a": {"name": "ViaJmap"}}}, "0"]])
        self.assertIn("a", created[0][1]["created"], created)
        # JMAP's Mailbox/set subscribes (isSubscribed defaults to true here).
        self.assertEqual(self.unsolicited(r, "LIST")[-1], '* LIST (\\Subscribed) "/" "ViaJmap"')
        other = [m["id"] for m in api([["Mailbox/get", {}, "0"]])[0][1]["list"]
                 if m["name"] == "Other"][0]
        email = api([["Email/query", {"filter": {"inMailbox": other}}, "0"]])[0][1]["ids"][0]
        api([["Email/set", {"update": {email: {"keywords/$seen": True}}}, "0"]])
        self.assertRegex(self.unsolicited(r, r"^\* STATUS")[-1],
                         r'^\* STATUS "Other" \(MESSAGES 1 .*UNSEEN 0\)$')

    def test_exact_forms(self):
        r, w = self.two_sessions("Sub", "Sub/Child", "Other")
        self.ok(r, "ENABLE CONDSTORE", "e")
        self.ok(r, "NOTIFY SET (SUBTREE Sub (MessageNew MessageExpunge MailboxName)) "
                   "(SUBSCRIBED (SubscriptionChange))", "n")
        self.append(w, "Sub/Child")
        lines = self.unsolicited(r, r"^\* STATUS")
        self.assertRegex(lines[-1], r'^\* STATUS "Sub/Child" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ '
                                    r'UNSEEN 1 HIGHESTMODSEQ \d+\)$')
        self.append(w, "Other")  # outside the subtree
        self.ok(w, "CREATE Elsewhere")  # MailboxName only under Sub
        self.assertEqual([l for l in self.quiet(r) if "STATUS" in l or "LIST" in l], [])
        self.ok(w, "CREATE Sub/New")
        self.assertEqual(self.unsolicited(r, "LIST")[-1], '* LIST () "/" "Sub/New"')
        self.ok(w, "DELETE Sub/New")
        self.assertEqual(self.unsolicited(r, "LIST")[-1], '* LIST (\\NonExistent) "/" "Sub/New"')
        # SUBSCRIBED names mailboxes by their subscription: an unsubscribe of
        # a subscribed mailbox is heard (the list before the change decides).
        self.ok(w, "SUBSCRIBE Other")
        self.assertEqual(self.unsolicited(r, "LIST")[-1], '* LIST (\\Subscribed) "/" "Other"')

    def test_selected_message_new_fetch(self):
        """SELECTED: EXISTS and the FETCH of MessageNew's attributes, unasked
        (section 5.2). Dovecot sends these only at its next mailbox check."""
        r, w = self.two_sessions()
        self.ok(r, "SELECT INBOX", "s")
        self.ok(r, "NOTIFY SET (SELECTED (MessageNew (UID FLAGS) MessageExpunge))", "n")
        self.append(w, "INBOX", "(\\Flagged) ")
        lines = self.unsolicited(r, r"^\* 1 FETCH")
        self.assertIn("* 1 EXISTS", lines)
        self.assertRegex(lines[-1], r"UID 1\b")
        self.assertIn("\\Flagged", lines[-1])

    def test_bad_event_combinations(self):
        """RFC 5465 sections 5 and 6.1 require BAD for these (Dovecot 2.3
        accepts MessageNew alone, so this is not compared with it)."""
        r, _ = self.two_sessions()
        for bad in ["(PERSONAL (MessageNew))", "(PERSONAL (MessageExpunge))",
                    "(PERSONAL (FlagChange))", "(PERSONAL (MessageNew FlagChange))",
                    "(SELECTED (MailboxName))",
                    "(SELECTED (MessageNew MessageExpunge)) (SELECTED-DELAYED (MessageNew "
                    "MessageExpunge))",
                    "(PERSONAL (MessageNew (UID) MessageExpunge))"]:
            self.assertRegex(r.cmd(f"b NOTIFY SET {bad}", "b")[-1], "^b BAD", bad)

    def test_pipelined_writes_do_not_overflow(self):
        """The session's own 300 pipelined STOREs (its selected mailbox) and
        COPYs (another one) stay under the backlog bound: notifications go
        out between the commands."""
        r, w = self.two_sessions("Other", "Target")
        self.append(w, "Other")
        self.ok(r, "NOTIFY SET (PERSONAL (MessageNew MessageExpunge FlagChange))", "n")
        self.ok(r, "SELECT Other", "s")
        n = 300
        r.sock.sendall(b"".join(
            (f"f{i} STORE 1 +FLAGS.SILENT (\\Seen)\r\n" if i % 2 else
             f"f{i} COPY 1 Target\r\n").encode() for i in range(n)))
        lines = r.until_all(*[f"f{i}" for i in range(n)])
        self.assertFalse([l for l in lines if "NOTIFICATIONOVERFLOW" in l])
        self.assertTrue([l for l in lines if l.startswith('* STATUS "Target"')])
        self.assertEqual(len([l for l in lines if " OK " in l and l[0] == "f"]), n)

    def test_unknown_event(self):
        r, _ = self.two_sessions()
        lines = r.cmd("e NOTIFY SET (PERSONAL (MessageNew MessageExpunge XFoo))", "e")
        self.assertEqual(lines[-1], "e NO [BADEVENT (MessageNew MessageExpunge FlagChange "
                                    "MailboxName SubscriptionChange MailboxMetadataChange "
                                    "ServerMetadataChange)] event not supported")
        lines = r.cmd("m NOTIFY SET (PERSONAL (MailboxMetadataChange ServerMetadataChange))", "m")
        self.assertTrue(lines[-1].startswith("m OK"), lines)

    def test_overflow(self):
        """Past kMaxNotifyBacklog (256) events heard while a command is in
        progress: one NOTIFICATIONOVERFLOW, then nothing (section 5.8)."""
        r, w = self.two_sessions("Other")
        self.append(w, "Other")
        self.ok(w, "SELECT Other", "s")
        self.ok(r, "NOTIFY SET (PERSONAL (MessageNew MessageExpunge FlagChange))", "n")
        # A command begun and not finished: no notification may interrupt it.
        r.sock.sendall(b"h NOOP")
        n = 300
        w.sock.sendall(b"".join(f"f{i} STORE 1 {'+' if i % 2 == 0 else '-'}FLAGS.SILENT (\\Seen)"
                                f"\r\n".encode() for i in range(n)))
        w.until_all(*[f"f{i}" for i in range(n)])
        r.sock.sendall(b"\r\n")
        lines = r.until("h")
        lines += self.unsolicited(r, r"^\* OK \[NOTIFICATIONOVERFLOW\]")
        self.assertFalse([l for l in lines if l.startswith("* STATUS")], lines)
        self.append(w, "Other")
        heard = self.quiet(r) + self.ok(r, "NOOP", "no")
        self.assertFalse([l for l in heard if "STATUS" in l], heard)
        # A new NOTIFY starts them again.
        self.ok(r, "NOTIFY SET (PERSONAL (MessageNew MessageExpunge))", "n2")
        self.append(w, "Other")
        self.assertRegex(self.unsolicited(r, r"^\* STATUS")[-1], r"MESSAGES 3\b")


@unittest.skipUnless(pg_cluster.installed(), pg_cluster.NOT_INSTALLED)
class TwoNodesNotifyTest(NotifyHelpers, unittest.TestCase):
    """Two nodes on one PostgreSQL database: names, subscriptions and
    METADATA changed through node one reach a NOTIFY session on node two
    (the store's record channel; messages ride the change channel)."""

    def setUp(self):
        cluster = pg_cluster.Cluster().init().start()
        self.addCleanup(cluster.cleanup)
        url = cluster.create_database("hato")
        self.one = Server(users=("alice",), postgres=url).start()
        self.addCleanup(self.one.cleanup)
        self.two = Server(users=(), postgres=url).start()
        self.addCleanup(self.two.cleanup)
        self.user, self.password = f"alice@{DOMAIN}", PASSWORD

    def test_names_subscriptions_and_metadata_from_the_other_node(self):
        self.port = self.one.imap_port
        w = self.raw()
        self.ok(w, "CREATE Sub")
        self.port = self.two.imap_port
        r = self.raw()
        self.ok(r, "NOTIFY SET (PERSONAL (MessageNew MessageExpunge MailboxName "
                   "SubscriptionChange))", "n")
        self.ok(w, "CREATE Fresh")
        self.assertEqual(self.unsolicited(r, "LIST")[-1], '* LIST () "/" "Fresh"')
        self.ok(w, "RENAME Fresh Renamed")
        self.assertEqual(self.unsolicited(r, "LIST")[-1],
                         '* LIST () "/" "Renamed" ("OLDNAME" ("Fresh"))')
        self.ok(w, "SUBSCRIBE Sub")
        self.assertEqual(self.unsolicited(r, "LIST")[-1], '* LIST (\\Subscribed) "/" "Sub"')
        self.ok(w, "DELETE Renamed")
        self.assertEqual(self.unsolicited(r, "LIST")[-1], '* LIST (\\NonExistent) "/" "Renamed"')
        self.append(w, "Sub")
        self.assertRegex(self.unsolicited(r, r"^\* STATUS")[-1], r'^\* STATUS "Sub" \(MESSAGES 1 ')
        # METADATA (RFC 5465 section 5.6) rides the same channel.
        self.ok(r, "NOTIFY SET (PERSONAL (MailboxMetadataChange))", "n2")
        self.ok(w, 'SETMETADATA Sub (/private/comment "hello")', "m")
        self.assertEqual(self.unsolicited(r, "METADATA")[-1],
                         '* METADATA "Sub" "/private/comment"')

    def test_inboxes_follow_a_script_activated_elsewhere(self):
        """A Sieve script stored through node one (here the CLI on its data
        dir) changes INBOXES for a NOTIFY session on node two."""
        self.port = self.one.imap_port
        w = self.raw()
        self.ok(w, "CREATE Lists")
        self.port = self.two.imap_port
        r = self.raw()
        self.ok(r, "NOTIFY SET (INBOXES (MessageNew MessageExpunge))", "n")
        with tempfile.NamedTemporaryFile("w", suffix=".sieve", delete=False) as f:
            f.write('require ["fileinto"];\nfileinto "Lists";\n')
        self.addCleanup(os.unlink, f.name)
        run_cli("sieve", "put", self.user, "main", f.name, data=self.one.data)
        run_cli("sieve", "activate", self.user, "main", data=self.one.data)
        time.sleep(1)  # the record channel's notification, then a message event
        self.append(w, "Lists")
        self.assertRegex(self.unsolicited(r, r"^\* STATUS")[-1], r'^\* STATUS "Lists" \(MESSAGES 1 ')


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotNotifyTest(NotifyChecks, unittest.TestCase):
    """The same exchanges against Dovecot (NOTIFY needs its mailbox list index)."""

    def setUp(self):
        self.dv = Dovecot(extra_conf="mail_max_userip_connections = 100\n"
                                     "mailbox_list_index = yes\n")
        self.addCleanup(self.dv.stop)
        self.port, self.user, self.password = self.dv.port, DV_USER, DV_PASS


if __name__ == "__main__":
    unittest.main()
