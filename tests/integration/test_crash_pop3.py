"""Crash test for POP3 (issue 4): SIGKILL at random instants while POP3
clients DELE and QUIT and SMTP senders deliver. RFC 1939 section 6: deletions
happen in the UPDATE state, after QUIT, all together. After every restart:

  * a message acknowledged by SMTP (250) is present exactly once, unless a
    POP3 session that deleted it got +OK to QUIT;
  * a QUIT answered +OK: all its deletions happened;
  * a QUIT without an answer (the server died): all of its deletions
    happened or none did (never a part);
  * `hato verify` is clean.

`make torture` runs it with HATO_CRASH_KILLS kills.
"""
import os
import poplib
import random
import smtplib
import threading
import time
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli

KILLS = int(os.environ.get("HATO_CRASH_KILLS", "6"))
USERS = ("alice", "bob")


class World:
    def __init__(self):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.acked = {}  # token -> user
        self.deleted = set()  # tokens whose deletion was acknowledged (+OK to QUIT)
        self.uncertain = []  # sets of tokens of QUITs that got no answer
        self.quits_ok = 0


def sender(world, server, idx):
    seq = 0
    while not world.stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                while not world.stop.is_set():
                    seq += 1
                    token = f"p{idx}-{seq}"
                    user = USERS[seq % len(USERS)]
                    s.sendmail("x@remote.test", [f"{user}@{DOMAIN}"],
                               f"Subject: {token}\r\n\r\nbody {token}\r\n".encode())
                    with world.lock:
                        world.acked[token] = user
        except (OSError, smtplib.SMTPException):
            time.sleep(0.02)


def subjects_of(p, count):
    out = {}
    for i in range(1, count + 1):
        for line in p.top(i, 0)[1]:
            if line.startswith(b"Subject: "):
                out[i] = line[9:].decode()
    return out


def deleter(world, server, user, rnd):
    while not world.stop.is_set():
        chosen = set()
        quit_sent = False
        try:
            p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
            p.user(f"{user}@{DOMAIN}")
            p.pass_(PASSWORD)
            count = p.stat()[0]
            subjects = subjects_of(p, count)
            for i, token in subjects.items():
                if rnd.random() < 0.5:
                    p.dele(i)
                    chosen.add(token)
            quit_sent = True
            p.quit()
            with world.lock:
                world.deleted |= chosen
                world.quits_ok += 1
        except (OSError, poplib.error_proto, EOFError):
            if quit_sent and chosen:
                with world.lock:
                    world.uncertain.append(chosen)
            time.sleep(0.02)
        time.sleep(rnd.uniform(0, 0.1))


def stored_tokens(server, user):
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=30)
    p.user(f"{user}@{DOMAIN}")
    p.pass_(PASSWORD)
    tokens = list(subjects_of(p, p.stat()[0]).values())
    p.quit()
    return tokens


class Pop3CrashTest(unittest.TestCase):
    def test_acknowledged_deletions_survive_sigkill(self):
        server = Server(users=USERS)
        world = World()
        rnd = random.Random(int(os.environ.get("HATO_CRASH_SEED", time.time())))
        threads = [threading.Thread(target=sender, args=(world, server, i), daemon=True)
                   for i in range(3)]
        threads += [threading.Thread(target=deleter, args=(world, server, u, random.Random(i)),
                                     daemon=True) for i, u in enumerate(USERS)]
        try:
            server.start()
            for t in threads:
                t.start()
            for _ in range(KILLS):
                time.sleep(rnd.uniform(0.1, 0.8))
                server.kill()
                server.start()
            time.sleep(0.5)
            world.stop.set()
            for t in threads:
                t.join(timeout=30)
            server.kill()
            server.start()
            with world.lock:
                acked, deleted = dict(world.acked), set(world.deleted)
                uncertain = [set(u) for u in world.uncertain]
            self.assertGreater(len(acked), KILLS, "the senders made too little progress")
            self.assertGreater(world.quits_ok, 0, "no POP3 session completed")
            present = {}
            for user in USERS:
                for token in stored_tokens(server, user):
                    present[token] = present.get(token, 0) + 1
            twice = [t for t, n in present.items() if n > 1]
            self.assertEqual(twice, [], "messages present twice")
            resurrected = sorted(t for t in deleted if t in present)
            self.assertEqual(resurrected, [], "acknowledged deletions undone")
            maybe = set().union(*uncertain) if uncertain else set()
            lost = sorted(t for t in acked if t not in deleted and t not in maybe
                          and t not in present)
            self.assertEqual(lost, [], "acknowledged messages lost")
            # An unanswered QUIT is all or nothing (messages deleted again later aside).
            for i, group in enumerate(uncertain):
                others = set().union(*(g for j, g in enumerate(uncertain) if j != i))
                undecided = group - deleted - others
                gone = {t for t in undecided if t not in present}
                self.assertIn(gone, (set(), undecided), f"partial QUIT: {sorted(gone)}")
            server.stop()
            r = run_cli("verify", data=server.data)
            self.assertIn(" 0 problems", r.stdout)
            print(f"\npop3 crash test: {KILLS} kills, {len(acked)} delivered, {world.quits_ok} "
                  f"QUITs acknowledged ({len(deleted)} deletions), {len(uncertain)} unanswered")
        finally:
            world.stop.set()
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
