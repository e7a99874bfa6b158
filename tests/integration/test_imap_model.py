"""Issue 20: IMAP under concurrency and pipelining.

* ContractTest: the exact exchange of the issue (two sessions, INBOX of 5,
  B expunges 1, A pipelines NOOP + FETCH 5) and its variants (EXPUNGE, MOVE,
  UID FETCH and IDLE before a pipelined sequence-number command, VANISHED).
* CheckerSelfTest: the checker flags each contradiction it is meant to catch
  (fed canned responses), so a green model run means something.
* ModelTest: N >= 8 sessions on three shared mailboxes issue random pipelined
  commands from a fixed seed against a live `hato serve`; each keeps its own
  model and the run fails on the first contradiction, printing the seed and
  the transcript (imap_model.py). HATO_MODEL_SEED picks the seed,
  HATO_MODEL_SECONDS the length; HATO_MODEL_LONG=1 (make torture) runs 16
  sessions for 5 minutes.
* DovecotModelTest: the same checker against a throw-away Dovecot (as in
  test_migrate.py), in RFC 3501 section 5.5 (strict) pipelining, and the
  contract exchange, as the proof that the checker itself is right.
"""
import imaplib
import os
import random
import re
import socket
import time
import unittest

import imap_model
from harness import DOMAIN, PASSWORD, Server
from test_migrate import DovecotPeer, have_dovecot

ALICE = f"alice@{DOMAIN}"
LONG = os.environ.get("HATO_MODEL_LONG") == "1"
SEED = int(os.environ.get("HATO_MODEL_SEED", "20"))
SECONDS = float(os.environ.get("HATO_MODEL_SECONDS", "300" if LONG else "20"))
SESSIONS = 16 if LONG else 8
MAILBOXES = ["INBOX", "Shared1", "Shared2"]


class Raw:
    """A raw IMAP connection: send bytes, read lines up to a tagged reply."""

    def __init__(self, port, user, password):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.buf = b""
        self.line()
        self.cmd(f'a LOGIN "{user}" "{password}"', "a")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def until(self, tag):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag + " "):
                return lines

    def until_all(self, *tags):
        """Lines up to the tagged replies of all `tags` (a server may answer
        pipelined commands in any order)."""
        lines, left = [], set(tags)
        while left:
            l = self.line()
            lines.append(l)
            left.discard(l.split(" ", 1)[0])
        return lines

    def cmd(self, text, tag):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.until(tag)

    def close(self):
        self.sock.close()


def message(i):
    return (f"From: a@example.test\r\nSubject: m{i}\r\nMessage-ID: <m{i}@x>\r\n\r\n"
            f"body {i}\r\n").encode()


class ContractMixin:
    """The exchange of issue 20 against a server on self.port."""

    def setup_inbox(self, n=5, box="INBOX"):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=15)
        m.login(self.user, self.password)
        if box != "INBOX":
            self.assertEqual(m.create(box)[0], "OK")
        for i in range(n):
            self.assertEqual(m.append(box, None, None, message(i))[0], "OK")
        m.logout()

    def two_sessions(self, box="INBOX", extra_a=()):
        a = Raw(self.port, self.user, self.password)
        for e in extra_a:
            a.cmd(e, "e")
        b = Raw(self.port, self.user, self.password)
        a.cmd(f"s SELECT {box}", "s")
        b.cmd(f"s SELECT {box}", "s")
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def expunge_first(self, b):
        self.assertIn("x OK", b.cmd("x STORE 1 +FLAGS.SILENT (\\Deleted)", "x")[-1])
        self.assertIn("* 1 EXPUNGE", b.cmd("y EXPUNGE", "y"))
        time.sleep(0.3)  # let A's session learn of it

    def check_held(self, a, first, second="p2 FETCH 5 (UID)", expunge="* 1 EXPUNGE"):
        a.sock.sendall((first + "\r\n" + second + "\r\n").encode())
        ftag, stag = first.split()[0], second.split()[0]
        lines = a.until_all(ftag, stag)
        done = [i for i, l in enumerate(lines) if l.startswith(stag + " ")]
        self.assertTrue(lines[done[0]].startswith(stag + " OK"), lines)
        self.assertIn("* 5 FETCH (UID 5)", lines[:done[0]])
        # Not before the sequence-number command is answered (a server that
        # ran it first may send it with the first command's reply)...
        self.assertNotIn(expunge, lines[:done[0]], lines)
        # ...and at the latest with the next command that has none.
        later = a.cmd("p3 NOOP", "p3")
        self.assertEqual((lines + later).count(expunge), 1, lines + later)
        self.assertTrue(later[-1].startswith("p3 OK"), later)
        return lines

    def test_contract_noop_then_fetch(self):
        self.setup_inbox()
        a, b = self.two_sessions()
        self.expunge_first(b)
        self.check_held(a, "p1 NOOP")


class ContractTest(ContractMixin, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, ALICE, PASSWORD

    def test_variants_hold_expunges(self):
        """Other commands without sequence numbers before a sequence command."""
        for i, first in enumerate(("p1 UID FETCH 1:* (UID)", "p1 STATUS INBOX (MESSAGES)",
                                   "p1 CHECK", "p1 UID SEARCH ALL", "p1 COPY 2 Trash",
                                   "p1 LIST \"\" INBOX")):
            with self.subTest(first=first):
                box = f"V{i}"
                self.setup_inbox(box=box)
                a, b = self.two_sessions(box)
                self.expunge_first(b)
                self.check_held(a, first)

    def test_own_expunge_and_move_are_held_behind_a_sequence_command(self):
        self.setup_inbox(n=6)
        a, _ = self.two_sessions()
        a.cmd("f STORE 1 +FLAGS.SILENT (\\Deleted)", "f")
        # EXPUNGE then FETCH 5 pipelined: 5 still means the 5th of before.
        a.sock.sendall(b"p1 EXPUNGE\r\np2 FETCH 5 (UID)\r\n")
        lines = a.until("p1") + a.until("p2")
        self.assertNotIn("* 1 EXPUNGE", lines)
        self.assertIn("* 5 FETCH (UID 5)", lines)
        self.assertIn("* 1 EXPUNGE", a.cmd("p3 NOOP", "p3"))
        # MOVE of message 1 (now UID 2), then FETCH 5 (UID 6).
        a.sock.sendall(b"m1 MOVE 1 Trash\r\nm2 FETCH 5 (UID)\r\n")
        lines = a.until("m1") + a.until("m2")
        self.assertNotIn("* 1 EXPUNGE", lines)
        self.assertIn("* 5 FETCH (UID 6)", lines)
        self.assertTrue(lines[-1].startswith("m2 OK"), lines)
        self.assertIn("* 1 EXPUNGE", a.cmd("m3 NOOP", "m3"))

    def test_vanished_is_held_too(self):
        self.setup_inbox()
        a, b = self.two_sessions(extra_a=("e ENABLE QRESYNC",))
        self.expunge_first(b)
        self.check_held(a, "p1 NOOP", expunge="* VANISHED 1")

    def test_idle_delivers_after_done_and_sequence_command(self):
        self.setup_inbox()
        a, b = self.two_sessions()
        a.sock.sendall(b"i IDLE\r\n")
        self.assertTrue(a.line().startswith("+"))
        self.expunge_first(b)
        seen = [a.line() for _ in range(2)]  # IDLE: at once (after the \Deleted FETCH)
        self.assertEqual(seen[-1], "* 1 EXPUNGE", seen)
        a.sock.sendall(b"DONE\r\n")
        self.assertTrue(a.until("i")[-1].startswith("i OK"))
        self.assertIn("* 4 FETCH (UID 5)", a.cmd("f FETCH 4 (UID)", "f"))


class CheckerSelfTest(unittest.TestCase):
    """Each contradiction the checker exists for is reported."""

    def session(self, model):
        s = imap_model.Session.__new__(imap_model.Session)
        s.index, s.liberal, s.in_order, s.tr = 0, True, True, imap_model.Transcript()
        s.touches = imap_model.Touches()
        s.pending = __import__("collections").deque()
        s.selected, s.model, s.flags, s.gone = "INBOX", list(model), {}, set()
        s.stats = __import__("collections").Counter()
        s.literals = []
        return s

    def run_lines(self, s, commands, lines):
        for tag, verb, uid, text in commands:
            s.pending.append(imap_model.Pending(tag, verb, uid, text, mailbox="INBOX"))
        for l in lines:
            s.handle(l)

    def test_flags_each_contradiction(self):
        cases = [
            ("expunge during FETCH", [("t1", "FETCH", False, "FETCH 1 (UID)")],
             [b"* 1 EXPUNGE"]),
            ("expunge while a sequence command waits",
             [("t1", "NOOP", False, "NOOP"), ("t2", "FETCH", False, "FETCH 5 (UID)")],
             [b"* 1 EXPUNGE"]),
            ("EXISTS backwards", [("t1", "NOOP", False, "NOOP")], [b"* 3 EXISTS"]),
            ("FETCH of a gone UID", [("t1", "NOOP", False, "NOOP")],
             [b"* 1 EXPUNGE", b"* 1 FETCH (UID 1 FLAGS ())"]),
            ("BAD for a valid set", [("t1", "FETCH", False, "FETCH 5 (UID)")],
             [b"t1 BAD invalid message sequence number"]),
            ("UID mismatch", [("t1", "FETCH", False, "FETCH 2 (UID)")],
             [b"* 2 FETCH (UID 7)"]),
            ("no command in progress", [], [b"* 1 EXPUNGE"]),
        ]
        for name, commands, lines in cases:
            with self.subTest(name):
                s = self.session([1, 2, 3, 4, 5])
                with self.assertRaises(imap_model.Violation):
                    self.run_lines(s, commands, lines)
        # And a correct exchange passes.
        s = self.session([1, 2, 3, 4, 5])
        self.run_lines(s, [("t1", "NOOP", False, "NOOP"), ("t2", "FETCH", False, "FETCH 5")],
                       [b"t1 OK", b"* 5 FETCH (UID 5)", b"t2 OK", ])
        self.run_lines(s, [("t3", "NOOP", False, "NOOP")], [b"* 1 EXPUNGE", b"t3 OK"])
        self.assertEqual(s.model, [2, 3, 4, 5])

    def test_store_result_checked(self):
        s = self.session([1, 2])
        p = imap_model.Pending("t1", "STORE", False, "STORE 1 +FLAGS (\\Seen)", mailbox="INBOX",
                               mode="+", flag_set=frozenset({"\\Seen"}), silent=False,
                               targets=[1])
        s.pending.append(p)
        s.handle(b"* 1 FETCH (FLAGS ())")
        with self.assertRaises(imap_model.Violation):
            s.handle(b"t1 OK STORE completed")


class ModelMixin:
    liberal = True
    in_order = True

    def populate(self):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=15)
        m.login(self.user, self.password)
        for box in MAILBOXES[1:]:
            m.create(box)
        rng = random.Random(SEED)
        for box in MAILBOXES:
            for i in range(15):
                flags = rng.choice([None, "(\\Seen)", "(\\Flagged)"])
                self.assertEqual(m.append(box, flags, None, message(i))[0], "OK")
        m.logout()

    def test_model_check(self):
        self.populate()
        started = time.monotonic()
        stats = imap_model.run_model(self.port, self.user, self.password, MAILBOXES, SEED,
                                     sessions=SESSIONS, seconds=SECONDS, liberal=self.liberal,
                                     in_order=self.in_order)
        print(f"\nmodel check ({self.__class__.__name__}, seed {SEED}, {SESSIONS} sessions, "
              f"{time.monotonic() - started:.1f} s): {dict(sorted(stats.items()))}")
        # The run exercised what it checks.
        for key in ("expunge", "exists", "fetch", "search", "STORE:OK", "EXPUNGE:OK", "MOVE:OK",
                    "IDLE:OK", "SELECT:OK", "CLOSE:OK", "APPEND:OK", "COPY:OK"):
            self.assertGreater(stats[key], 0, key)


class ModelTest(ModelMixin, unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",)).start()
        self.addCleanup(self.server.cleanup)
        self.port, self.user, self.password = self.server.imap_port, ALICE, PASSWORD


@unittest.skipUnless(have_dovecot(), "needs root and dovecot-imapd")
class DovecotModelTest(DovecotPeer, ModelMixin, ContractMixin, unittest.TestCase):
    liberal = False  # RFC 3501 section 5.5 pipelining only
    in_order = False  # Dovecot runs some pipelined commands at once


if __name__ == "__main__":
    unittest.main()
