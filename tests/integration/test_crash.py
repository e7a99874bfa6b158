"""Crash test: concurrent SMTP senders, SIGKILL of the server at random moments.

Every message that got a 250 must be readable afterwards over POP3, byte-identical,
exactly once. Messages whose transaction was cut off may or may not be there, but
never twice and never damaged. `make torture` runs the same with hundreds of kills
(HATO_CRASH_KILLS, HATO_CRASH_SENDERS).
"""
import os
import poplib
import random
import re
import smtplib
import threading
import time
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli

KILLS = int(os.environ.get("HATO_CRASH_KILLS", "8"))
SENDERS = int(os.environ.get("HATO_CRASH_SENDERS", "6"))
USERS = ("alice", "bob", "carol")


def make_message(sender, seq):
    token = f"crash-{sender}-{seq}"
    size = random.Random(hash(token)).choice([200, 3000, 20000, 120000])
    lines = []
    rnd = random.Random(token)
    total = 0
    while total < size:
        n = rnd.randint(0, 120)
        # Lines that start with dots exercise dot-stuffing on both protocols.
        line = ("." if rnd.random() < 0.05 else "") + "".join(rnd.choices("abcdefghij .,;", k=n))
        lines.append(line)
        total += len(line) + 2
    body = "\r\n".join(lines) + "\r\n"
    msg = (f"From: s{sender}@remote.test\r\nSubject: {token}\r\nMessage-ID: <{token}@t>\r\n\r\n"
           f"{body}").encode()
    return token, msg


class Sender(threading.Thread):
    def __init__(self, idx, server, acked, lock, stop):
        super().__init__(daemon=True)
        self.idx, self.server, self.acked, self.lock, self.stop = idx, server, acked, lock, stop
        self.seq = 0

    def run(self):
        while not self.stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
                    while not self.stop.is_set():
                        self.seq += 1
                        token, msg = make_message(self.idx, self.seq)
                        rcpts = [f"{u}@{DOMAIN}" for u in USERS
                                 if random.random() < 0.5] or [f"alice@{DOMAIN}"]
                        s.sendmail(f"s{self.idx}@remote.test", rcpts, msg)
                        # sendmail returned: the server said 250 to DATA.
                        with self.lock:
                            self.acked[token] = (msg, rcpts)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.02)  # the server is down or restarting


def read_all(server, user):
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=60)
    p.user(user)
    p.pass_(PASSWORD)
    count, _ = p.stat()
    out = [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n" for i in range(count)]
    p.quit()
    return out


class CrashTest(unittest.TestCase):
    def test_acknowledged_mail_survives_sigkill(self):
        server = Server(users=USERS)
        acked, lock, stop = {}, threading.Lock(), threading.Event()
        try:
            server.start()
            senders = [Sender(i, server, acked, lock, stop) for i in range(SENDERS)]
            for s in senders:
                s.start()
            rnd = random.Random(int(os.environ.get("HATO_CRASH_SEED", time.time())))
            for k in range(KILLS):
                time.sleep(rnd.uniform(0.05, 0.8))
                server.kill()
                time.sleep(rnd.uniform(0.0, 0.1))
                server.start()
            time.sleep(0.5)
            stop.set()
            for s in senders:
                s.join(timeout=30)
            server.kill()
            server.start()
            with lock:
                expected = dict(acked)
            self.assertGreater(len(expected), KILLS, "the senders made too little progress")
            for user in USERS:
                addr = f"{user}@{DOMAIN}"
                seen = {}
                for stored in read_all(server, addr):
                    m = re.search(rb"\r\nSubject: (crash-\d+-\d+)\r\n", stored)
                    self.assertIsNotNone(m, stored[:300])
                    token = m.group(1).decode()
                    self.assertNotIn(token, seen, f"{token} delivered twice to {addr}")
                    seen[token] = stored
                for token, (msg, rcpts) in expected.items():
                    if addr not in rcpts:
                        continue
                    self.assertIn(token, seen, f"acknowledged {token} lost for {addr}")
                    self.assertTrue(seen[token].endswith(msg), f"{token} damaged for {addr}")
                # Unacknowledged messages that made it are intact too.
                for token, stored in seen.items():
                    sender, seq = map(int, token.split("-")[1:])
                    self.assertTrue(stored.endswith(make_message(sender, seq)[1]), token)
            server.stop()
            r = run_cli("verify", data=server.data)
            self.assertIn(" 0 problems", r.stdout)
            print(f"\ncrash test: {KILLS} kills, {len(expected)} acknowledged messages, "
                  f"all present exactly once and intact")
        finally:
            stop.set()
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
