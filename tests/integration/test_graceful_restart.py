"""Graceful restart (issue 4): SIGTERM while SMTP senders are busy, then start
again. Every message that got a 250 is there exactly once after the restart;
the only casualties are the connections that were open (their unacknowledged
transactions), which the clients retry; the server exits 0 within its grace
period."""
import poplib
import smtplib
import threading
import time
import unittest

from harness import DOMAIN, PASSWORD, Server, run_cli

ALICE = f"alice@{DOMAIN}"
SENDERS = 4
RESTARTS = 3


class GracefulRestartTest(unittest.TestCase):
    def test_sigterm_under_load_loses_no_accepted_mail(self):
        server = Server(users=("alice",))
        lock, stop = threading.Lock(), threading.Event()
        acked, dropped = [], [0]

        def send(idx):
            seq = 0
            while not stop.is_set():
                try:
                    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
                        while not stop.is_set():
                            seq += 1
                            token = f"g{idx}-{seq}"
                            s.sendmail("x@remote.test", [ALICE],
                                       f"Subject: {token}\r\n\r\n{token}\r\n".encode())
                            with lock:
                                acked.append(token)
                except (OSError, smtplib.SMTPException):
                    with lock:
                        dropped[0] += 1
                    time.sleep(0.05)

        threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(SENDERS)]
        try:
            server.start()
            for t in threads:
                t.start()
            for _ in range(RESTARTS):
                time.sleep(1.0)
                with lock:
                    before = len(acked)
                start = time.time()
                rc = server.stop()  # SIGTERM
                took = time.time() - start
                self.assertEqual(rc, 0, "the server did not exit cleanly on SIGTERM")
                self.assertLess(took, 10, "shutdown took longer than the grace period")
                self.assertGreater(before, 0)
                server.start()
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(timeout=30)
            p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=30)
            p.user(ALICE)
            p.pass_(PASSWORD)
            stored = []
            for i in range(p.stat()[0]):
                for line in p.top(i + 1, 0)[1]:
                    if line.startswith(b"Subject: "):
                        stored.append(line[9:].decode())
            p.quit()
            lost = [t for t in acked if t not in stored]
            twice = sorted({t for t in stored if stored.count(t) > 1})
            self.assertEqual(lost, [], "accepted mail lost across a graceful restart")
            self.assertEqual(twice, [])
            server.stop()
            r = run_cli("verify", data=server.data)
            self.assertIn(" 0 problems", r.stdout)
            print(f"\ngraceful restart: {RESTARTS} SIGTERMs, {len(acked)} accepted, 0 lost, "
                  f"{dropped[0]} connections cut or refused while restarting")
        finally:
            stop.set()
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
