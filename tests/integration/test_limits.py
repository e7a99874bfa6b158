"""Connection limits: per client address and in total, per protocol, with the
protocol's polite refusal; existing sessions keep working; freed places are
reused."""
import socket
import time
import unittest

from harness import LineClient, Server


class ConnectionLimitTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",))
        self.server.set_config("server", "per_ip_limits_on_loopback", "true")
        self.server.set_config("smtp", "max_connections_per_ip", 3)
        self.server.set_config("imap", "max_connections_per_ip", 2)
        self.server.set_config("pop3", "max_connections", 2)
        self.server.start()
        time.sleep(0.5)  # let the harness's port probes close their sessions

    def tearDown(self):
        self.server.cleanup()

    def test_per_ip_limit_smtp(self):
        held = [LineClient(self.server.smtp_port) for _ in range(3)]
        for c in held:
            self.assertEqual(c.reply()[0], 220)
        extra = LineClient(self.server.smtp_port)
        code, text = extra.reply()
        self.assertEqual(code, 421)
        self.assertIn("4.7.0", text[0])
        self.assertTrue(extra.closed())
        held[0].send("NOOP\r\n")  # existing sessions keep working
        self.assertEqual(held[0].reply()[0], 250)
        held[0].send("QUIT\r\n")
        held[0].reply()
        held[0].close()
        deadline = time.time() + 5
        while True:
            again = LineClient(self.server.smtp_port)
            code, _ = again.reply()
            if code == 220 or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(code, 220)

    def test_per_ip_limit_imap_and_total_limit_pop3(self):
        held = [LineClient(self.server.imap_port) for _ in range(2)]
        for c in held:
            self.assertTrue(c.line().startswith("* OK"))
        extra = LineClient(self.server.imap_port)
        self.assertTrue(extra.line().startswith("* BYE [UNAVAILABLE]"))
        pops = [LineClient(self.server.pop3_port) for _ in range(2)]
        for c in pops:
            self.assertTrue(c.line().startswith("+OK"))
        extra = LineClient(self.server.pop3_port)
        self.assertTrue(extra.line().startswith("-ERR [SYS/TEMP]"))


if __name__ == "__main__":
    unittest.main()
