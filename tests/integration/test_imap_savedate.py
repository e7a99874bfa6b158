"""Issue 16: SAVEDATE (RFC 8514) over a live `hato serve`, the same
exchanges against a throw-away Dovecot (which has SAVEDATE too); and the
sort-key backfill for bodies stored before blobs.sort_keys existed."""
import datetime
import os
import re
import sqlite3
import subprocess
import time
import unittest

from harness import DOMAIN, PASSWORD, Server
from test_imap_model import Raw
from test_migrate import DovecotPeer, have_dovecot

MSGS = [
    ("01-Feb-2020 10:00:00 +0000", b"From: a@x.test\r\nSubject: one\r\nDate: Sat, 01 Feb 2020 10:00:00 +0000\r\nMessage-ID: <sd1@x.test>\r\n\r\nfirst\r\n"),
    ("02-Feb-2020 10:00:00 +0000", b"From: b@x.test\r\nSubject: Re: one\r\nDate: Sun, 02 Feb 2020 10:00:00 +0000\r\nMessage-ID: <sd2@x.test>\r\nReferences: <sd1@x.test>\r\n\r\nsecond\r\n"),
]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DATE_TIME = re.compile(r'(\w+) "(\d\d?)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-]\d{4})"')


def imap_date(d):
    return f"{d.day}-{MONTHS[d.month - 1]}-{d.year}"


def parse_fetch_dates(line):
    """{"INTERNALDATE": datetime, "SAVEDATE": datetime} of a FETCH line."""
    out = {}
    for name, day, mon, year, hh, mm, ss, zone in DATE_TIME.findall(line):
        sign = 1 if zone[0] == "+" else -1
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:])))
        out[name] = datetime.datetime(int(year), MONTHS.index(mon) + 1, int(day), int(hh), int(mm),
                                      int(ss), tzinfo=tz)
    return out


class SaveDateChecks:
    def fill(self, mailbox="SD"):
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        r.cmd(f"c CREATE {mailbox}", "c")
        for date, msg in MSGS:
            r.sock.sendall(f'ap APPEND {mailbox} "{date}" {{{len(msg)}+}}\r\n'.encode() + msg + b"\r\n")
            self.assertTrue(r.until("ap")[-1].startswith("ap OK"))
        r.cmd(f"s SELECT {mailbox}", "s")
        return r

    def ok(self, r, command, tag="t"):
        lines = r.cmd(f"{tag} {command}", tag)
        self.assertTrue(lines[-1].startswith(f"{tag} OK"), (command, lines))
        return [l for l in lines[:-1]]

    def test_capability_fetch_and_search(self):
        r = self.fill()
        self.assertIn("SAVEDATE", r.cmd("k CAPABILITY", "k")[0].split())
        now = datetime.datetime.now(datetime.timezone.utc)
        lines = self.ok(r, "FETCH 1:* (INTERNALDATE SAVEDATE)")
        self.assertEqual(len(lines), 2, lines)
        for line in lines:
            d = parse_fetch_dates(line)
            # RFC 8514 section 4.1: the moment it was saved, not the internal date.
            self.assertEqual(d["INTERNALDATE"].year, 2020, line)
            self.assertLess(abs((d["SAVEDATE"] - now).total_seconds()), 300, line)
        self.assertRegex(self.ok(r, "UID FETCH 1 (SAVEDATE)")[0],
                         r'^\* 1 FETCH \((UID 1 SAVEDATE "[^"]+"|SAVEDATE "[^"]+" UID 1)\)$')
        today = now.date()
        tomorrow = today + datetime.timedelta(days=1)
        # Section 4.2: the save date's day, as BEFORE/ON/SINCE do with the
        # internal date (which matches none of these).
        want = {
            "SEARCH SAVEDATESUPPORTED": "* SEARCH 1 2",
            f"SEARCH SAVEDSINCE {imap_date(today)}": "* SEARCH 1 2",
            f"SEARCH SAVEDON {imap_date(today)}": "* SEARCH 1 2",
            f"SEARCH SAVEDBEFORE {imap_date(today)}": "* SEARCH",
            f"SEARCH SAVEDSINCE {imap_date(tomorrow)}": "* SEARCH",
            f"SEARCH NOT SAVEDSINCE {imap_date(tomorrow)}": "* SEARCH 1 2",
            f"SEARCH SINCE {imap_date(today)}": "* SEARCH",
            "SEARCH SAVEDBEFORE 2-Feb-2020": "* SEARCH",
            f"UID SEARCH SAVEDON {imap_date(today)} 2": "* SEARCH 2",
            f"SEARCH OR SAVEDBEFORE {imap_date(today)} SAVEDON {imap_date(today)}": "* SEARCH 1 2",
        }
        for command, line in want.items():
            self.assertEqual([l.rstrip() for l in self.ok(r, command)], [line], command)
        self.assertIn(" BAD", r.cmd("b SEARCH SAVEDON tomorrow", "b")[-1])
        self.assertIn(" BAD", r.cmd("b2 SEARCH SAVEDSINCE", "b2")[-1])

    def test_copy_gets_its_own_save_date(self):
        """Section 3: a copy is saved in its new mailbox when it is copied."""
        r = self.fill()
        before = parse_fetch_dates(self.ok(r, "FETCH 1 (SAVEDATE)")[0])["SAVEDATE"]
        time.sleep(1.2)
        self.ok(r, "CREATE SD2", "c2")
        self.ok(r, "COPY 1 SD2")
        self.ok(r, "SELECT SD2", "s2")
        after = parse_fetch_dates(self.ok(r, "FETCH 1 (INTERNALDATE SAVEDATE)")[0])
        self.assertGreater(after["SAVEDATE"], before)
        self.assertEqual(after["INTERNALDATE"].year, 2020)  # the internal date is kept


class HatoSaveDateTest(SaveDateChecks, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, f"alice@{DOMAIN}", PASSWORD

    def query(self, sql):
        """Runs `sql` on the server's store (embedded or PostgreSQL); the first
        column of the first row."""
        if self.server.postgres:
            out = subprocess.run(["psql", self.server.postgres, "-At", "-c", sql],
                                 capture_output=True, text=True, check=True).stdout.strip()
            return int(out) if out.isdigit() else out
        db = sqlite3.connect(os.path.join(self.server.data, "meta.db"))
        try:
            row = db.execute(sql).fetchone()
            db.commit()
            return row[0] if row else None
        finally:
            db.close()

    def restart_with(self, *sql):
        self.server.stop()
        for s in sql:
            self.query(s)
        self.server.start()
        self.port = self.server.imap_port

    @unittest.skipIf(os.environ.get("HATO_STORE") == "sharded", "edits one database")
    def test_messages_stored_before_save_dates_show_their_internal_date(self):
        self.fill().close()
        self.restart_with("UPDATE messages SET saved_at = NULL")
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        r.cmd("s SELECT SD", "s")
        for line in self.ok(r, "FETCH 1:* (INTERNALDATE SAVEDATE)"):
            d = parse_fetch_dates(line)
            self.assertEqual(d["SAVEDATE"], d["INTERNALDATE"], line)
        self.assertEqual(self.ok(r, "SEARCH SAVEDON 1-Feb-2020"), ["* SEARCH 1"])

    @unittest.skipIf(os.environ.get("HATO_STORE") == "sharded", "edits one database")
    def test_sort_keys_backfilled_after_start(self):
        """Issue 16 item 8: bodies stored before blobs.sort_keys existed get
        their record in the background after start, and SORT/THREAD answer
        the same from it."""
        self.fill().close()
        self.restart_with("UPDATE blobs SET sort_keys = NULL")
        deadline = time.monotonic() + 30
        while True:
            missing = self.query("SELECT count(*) FROM blobs WHERE sort_keys IS NULL")
            filled = self.query("SELECT count(*) FROM blobs WHERE length(sort_keys) > 0")
            if missing == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertEqual(missing, 0)
        self.assertEqual(filled, len(MSGS))
        r = Raw(self.port, self.user, self.password)
        self.addCleanup(r.close)
        r.cmd("s SELECT SD", "s")
        self.assertEqual(self.ok(r, "THREAD REFERENCES UTF-8 ALL"), ["* THREAD (1 2)"])
        self.assertEqual(self.ok(r, "SORT (REVERSE DATE) UTF-8 ALL"), ["* SORT 2 1"])


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotSaveDateTest(DovecotPeer, SaveDateChecks, unittest.TestCase):
    """The same exchanges against Dovecot 2.3 (SAVEDATE since 2.3.x)."""


if __name__ == "__main__":
    unittest.main()
