"""Crash test for IMAP writes: concurrent APPEND, STORE and EXPUNGE while the
server is SIGKILLed at random moments. After restart every acknowledged
change is there exactly once: each APPEND that got OK is stored once with its
bytes intact, each STORE that got OK shows its flag, and each EXPUNGE that got
OK removed its messages. The store verifies clean."""
import imaplib
import os
import random
import re
import threading
import time
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli

KILLS = int(os.environ.get("HATO_CRASH_KILLS", "6"))
CLIENTS = 4


class Client(threading.Thread):
    def __init__(self, idx, server, state, lock, stop):
        super().__init__(daemon=True)
        self.idx, self.server, self.state, self.lock, self.stop = idx, server, state, lock, stop
        self.seq = 0

    def run(self):
        rnd = random.Random(self.idx)
        while not self.stop.is_set():
            try:
                m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=10)
                m.login(f"u{self.idx}@{DOMAIN}", PASSWORD)
                m.select("INBOX")
                while not self.stop.is_set():
                    op = rnd.random()
                    if op < 0.6:
                        self.seq += 1
                        token = f"c{self.idx}-{self.seq}"
                        body = (f"Subject: {token}\r\n\r\n" + token * rnd.randint(1, 2000)
                                + "\r\n").encode()
                        typ, data = m.append("INBOX", None, None, body)
                        if typ == "OK":
                            uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
                            with self.lock:
                                self.state["appended"][token] = (body, uid)
                    elif op < 0.85:
                        with self.lock:
                            live = [v[1] for k, v in self.state["appended"].items()
                                    if v[1] not in self.state["expunged"]]
                        if not live:
                            continue
                        uid = rnd.choice(live)
                        typ, _ = m.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
                        if typ == "OK":
                            with self.lock:
                                self.state["flagged"].add(uid)
                    else:
                        with self.lock:
                            live = [v[1] for v in self.state["appended"].values()
                                    if v[1] not in self.state["expunged"]]
                        if not live:
                            continue
                        uid = rnd.choice(live)
                        typ, _ = m.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
                        if typ != "OK":
                            continue
                        # From here the expunge may commit even if its OK is lost.
                        with self.lock:
                            self.state["maybe_expunged"].add(uid)
                        typ, _ = m._simple_command("UID", "EXPUNGE", str(uid))
                        if typ == "OK":
                            with self.lock:
                                self.state["expunged"].add(uid)
            except (OSError, imaplib.IMAP4.error, AttributeError):
                time.sleep(0.05)


class ImapCrashTest(unittest.TestCase):
    def test_acknowledged_imap_writes_survive_sigkill(self):
        server = Server(users=tuple(f"u{i}" for i in range(CLIENTS)))
        states = [{"appended": {}, "flagged": set(), "expunged": set(), "maybe_expunged": set()}
                  for _ in range(CLIENTS)]
        lock, stop = threading.Lock(), threading.Event()
        try:
            server.start()
            clients = [Client(i, server, states[i], lock, stop) for i in range(CLIENTS)]
            for c in clients:
                c.start()
            rnd = random.Random()
            for _ in range(KILLS):
                time.sleep(rnd.uniform(0.2, 0.9))
                server.kill()
                server.start()
            time.sleep(0.5)
            stop.set()
            for c in clients:
                c.join(timeout=30)
            server.kill()
            server.start()
            total = 0
            for i, st in enumerate(states):
                m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=30)
                m.login(f"u{i}@{DOMAIN}", PASSWORD)
                m.select("INBOX")
                typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
                stored = {}
                for item in data:
                    if not isinstance(item, tuple):
                        continue
                    uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                    token = re.search(rb"Subject: (c\d+-\d+)", item[1]).group(1).decode()
                    self.assertNotIn(token, [v[0] for v in stored.values()], "stored twice")
                    stored[uid] = (token, item[1], item[0])
                for token, (body, uid) in st["appended"].items():
                    if uid in st["expunged"]:
                        self.assertFalse(uid in stored, f"expunged {token} came back")
                        continue
                    if uid in st["maybe_expunged"] and uid not in stored:
                        continue  # an EXPUNGE was sent; its OK may have been lost
                    self.assertTrue(uid in stored, f"acknowledged APPEND {token} lost")
                    self.assertEqual(stored[uid][1], body, f"{token} damaged")
                    if uid in st["flagged"]:
                        self.assertIn(b"\\Flagged", stored[uid][2], f"STORE on {token} lost")
                    total += 1
                m.logout()
            self.assertGreater(total, KILLS, "too little progress")
            server.stop()
            self.assertIn(" 0 problems", run_cli("verify", data=server.data).stdout)
            print(f"\nimap crash test: {KILLS} kills, {total} acknowledged appends checked")
        finally:
            stop.set()
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
