"""The metrics endpoint ([metrics] listen): Prometheus text with sessions and
refusals per protocol, SMTP outcomes by reply class, the store's backlog and
commit latency, resident memory; and an HTTP front that refuses what is not
`GET /metrics` (404/405/400) and oversized requests (431)."""
import poplib
import smtplib
import socket
import time
import unittest

import metrics_client
from fakemx import FakeDNS, FakeMX
from harness import DOMAIN, PASSWORD, LineClient, Server, free_port, run_cli

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
        # The one HTTP server (src/http): its replies and limits apply here too.
        close = b"Host: x\r\nConnection: close\r\n\r\n"
        self.assertTrue(self.raw(b"GET /other HTTP/1.1\r\n" + close).startswith(b"HTTP/1.1 404"))
        self.assertTrue(
            self.raw(b"DELETE /metrics HTTP/1.1\r\n" + close).startswith(b"HTTP/1.1 405"))
        self.assertTrue(self.raw(b"GET metrics\r\n\r\n").startswith(b"HTTP/1.1 400"))
        big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n"
        self.assertTrue(self.raw(big).startswith(b"HTTP/1.1 431"))
        head = self.raw(b"HEAD /metrics HTTP/1.0\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n"))
        # The server still answers a normal scrape afterwards.
        self.assertIn("hato_resident_memory_bytes", metrics_client.scrape(self.port))


class QueueMetricsTest(unittest.TestCase):
    """The outbound queue's gauges and outcome counters, from a real submission."""

    def setUp(self):
        self.mx = FakeMX()
        self.dns = FakeDNS({"remote.example": [("MX", "10 mx.remote.example.")],
                            "mx.remote.example": [("A", "127.0.0.1")]})
        self.server = Server(users=("alice",))
        self.port = free_port()
        metrics_client.enable(self.server, self.port)
        self.server.set_config("outbound", "resolver", f'"{self.dns.address}"')
        self.server.set_config("outbound", "retry_base_seconds", "3600")
        self.server.set_config("outbound", "retry_max_seconds", "3600")

    def tearDown(self):
        self.server.cleanup()
        self.mx.stop()
        self.dns.stop()

    def submit(self, rcpts, subject):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=10) as s:
            s.login(ALICE, PASSWORD)
            s.sendmail(ALICE, rcpts, f"Subject: {subject}\r\n\r\nx\r\n")

    def wait_metric(self, name, pred, what):
        deadline = time.time() + 20
        while time.time() < deadline:
            m = metrics_client.scrape(self.port)
            if pred(m.get(name)):
                return m
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {name} = {m.get(name)}")

    def test_unreachable_remote_stays_queued(self):
        # Nothing listens on the MX's port: every attempt is deferred.
        self.server.set_config("outbound", "smtp_port", str(free_port()))
        self.server.start()
        m = metrics_client.scrape(self.port)
        self.assertEqual(m["hato_outbound_queue_messages"], 0)
        self.assertEqual(m['hato_outbound_queue_recipients{state="queued"}'], 0)
        self.assertEqual(m["hato_outbound_queue_oldest_age_seconds"], 0)
        self.submit(["carol@remote.example", "dave@remote.example"], "stuck")
        m = self.wait_metric('hato_outbound_recipients_total{result="deferred"}',
                             lambda v: v == 2, "the first attempt")
        self.assertEqual(m["hato_outbound_queue_messages"], 1)
        self.assertEqual(m['hato_outbound_queue_recipients{state="queued"}'], 2)
        self.assertEqual(m['hato_outbound_queue_recipients{state="held"}'], 0)
        self.assertGreaterEqual(m["hato_outbound_queue_oldest_age_seconds"], 0)
        self.assertLess(m["hato_outbound_queue_oldest_age_seconds"], 60)
        self.assertEqual(m['hato_outbound_recipients_total{result="delivered"}'], 0)
        time.sleep(2)
        m = metrics_client.scrape(self.port)
        self.assertGreaterEqual(m["hato_outbound_queue_oldest_age_seconds"], 2)
        qid = run_cli("queue", "list", data=self.server.data).stdout.splitlines()[1].split("\t")[0]
        run_cli("queue", "hold", qid, data=self.server.data)
        m = metrics_client.scrape(self.port)
        self.assertEqual(m['hato_outbound_queue_recipients{state="held"}'], 2)
        self.assertEqual(m['hato_outbound_queue_recipients{state="queued"}'], 0)

    def test_delivered_and_bounced_are_counted_and_leave_the_queue(self):
        self.server.set_config("outbound", "smtp_port", str(self.mx.port))
        self.mx.rcpt_replies["nobody@remote.example"] = "550 5.1.1 no such user"
        self.server.start()
        self.submit(["carol@remote.example", "nobody@remote.example"], "mixed")
        m = self.wait_metric("hato_outbound_queue_messages", lambda v: v == 0,
                             "the queue to empty (after the report)")
        self.assertEqual(m['hato_outbound_recipients_total{result="delivered"}'], 1)
        self.assertEqual(m['hato_outbound_recipients_total{result="bounced"}'], 1)
        self.assertEqual(m['hato_outbound_recipients_total{result="deferred"}'], 0)
        self.assertEqual(m["hato_outbound_queue_oldest_age_seconds"], 0)


if __name__ == "__main__":
    unittest.main()
