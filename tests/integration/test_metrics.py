"""The metrics endpoint ([metrics] listen): Prometheus text with sessions and
refusals per protocol, SMTP outcomes by reply class, the store's backlog and
commit latency, resident memory; and an HTTP front that refuses what is not
`GET /metrics` (404/405/400) and oversized requests (431)."""
import poplib
import smtplib
import socket
import unittest

import metrics_client
from harness import DOMAIN, PASSWORD, LineClient, Server, free_port

ALICE = f"alice@{DOMAIN}"


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(users=("alice",))
        self.port = free_port()
        metrics_client.enable(self.server, self.port)
        self.server.set_config("smtp", "max_connections", 2)
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def raw(self, request):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk

    def test_counts_what_happened(self):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=10) as s:
            s.sendmail("x@remote.test", [ALICE], b"Subject: one\r\n\r\nx\r\n")
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=10)
        p.user(ALICE)
        p.pass_(PASSWORD)
        m = metrics_client.scrape(self.port)
        self.assertEqual(m['hato_smtp_transactions_total{result="accepted"}'], 1)
        self.assertEqual(m['hato_smtp_transactions_total{result="refused_4xx"}'], 0)
        self.assertEqual(m['hato_sessions{protocol="pop3"}'], 1)
        self.assertGreaterEqual(m['hato_connections_total{protocol="smtp"}'], 1)
        self.assertGreaterEqual(m["hato_store_commit_seconds_count"], 1)
        self.assertEqual(m["hato_store_pending_writes"], 0)
        self.assertGreater(m["hato_resident_memory_bytes"], 1 << 20)
        p.quit()
        # Refusals by reason: max_connections = 2, a third is refused with 421.
        held = [LineClient(self.server.smtp_port) for _ in range(2)]
        for c in held:
            self.assertEqual(c.reply()[0], 220)
        extra = LineClient(self.server.smtp_port)
        self.assertEqual(extra.reply()[0], 421)
        m = metrics_client.scrape(self.port)
        self.assertEqual(m['hato_connections_refused_total{protocol="smtp",reason="too_many"}'], 1)
        self.assertEqual(m['hato_sessions{protocol="smtp"}'], 2)
        for c in held + [extra]:
            c.close()

    def test_http_refusals(self):
        self.assertTrue(self.raw(b"GET /other HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404"))
        self.assertTrue(self.raw(b"DELETE /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405"))
        self.assertTrue(self.raw(b"GET metrics\r\n\r\n").startswith(b"HTTP/1.1 400"))
        big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 10000 + b"\r\n\r\n"
        self.assertTrue(self.raw(big).startswith(b"HTTP/1.1 431"))
        head = self.raw(b"HEAD /metrics HTTP/1.0\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n"))
        # The server still answers a normal scrape afterwards.
        self.assertIn("hato_resident_memory_bytes", metrics_client.scrape(self.port))


if __name__ == "__main__":
    unittest.main()
