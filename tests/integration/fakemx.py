"""Test doubles for outbound delivery, all on 127.0.0.1.

FakeMX: a small SMTP server that records what it receives and answers with
scripted replies (per recipient, or for the whole DATA), so tests can watch
delivery, temporary failures (retries) and permanent failures (DSNs).
FakeDNS: a DNS server (python3-dnslib) serving test zones: MX, A and AAAA.
"""
import select
import socketserver
import ssl
import sys
import threading

try:
    import dnslib  # noqa: F401  (Debian's python3-dnslib)
except ImportError:
    # A python3 other than Debian's (pyenv, venv): dnslib is pure Python.
    sys.path.append("/usr/lib/python3/dist-packages")

from harness import free_port


class FakeMX:
    def __init__(self, ehlo_extra=("8BITMIME", "PIPELINING"), tls_cert=None,
                 pipelining_probe=False):
        """tls_cert: (cert.pem, key.pem) to offer STARTTLS (RFC 3207) with."""
        self.port = free_port()
        self.tls_sessions = 0  # STARTTLS handshakes completed
        # dicts: mail_from, rcpts, data, mail_line, rcpt_lines, conn (the
        # connection's index in per_connection), in the order received
        self.messages = []
        self.rcpt_replies = {}  # address -> reply line for RCPT
        self.data_reply = "250 2.0.0 Ok: queued"
        self.ehlo_extra = list(ehlo_extra)
        self.connections = 0
        # Connection reuse: MAIL commands per connection (in connection order),
        # RSETs, RCPT replies that close the session (address -> "421 ..."; the
        # socket is left open, so a command sent after it is counted in
        # after_421), and addresses whose DATA gets no reply (the connection
        # drops after the dot, once per address).
        self.per_connection = []
        self.rsets = 0
        self.closing_replies = {}
        self.after_421 = 0
        self.drop_after_data = set()
        # Sessions closed by the server, without a reply, on the MAIL that would
        # begin their (close_after + 1)-th transaction (its idle timeout firing as
        # the command arrives); 0: never. closed_at_mail counts them.
        self.close_after = 0
        self.closed_at_mail = 0
        # pipelining_probe: the socket is read unbuffered and, after each MAIL,
        # the server waits up to 0.2 s before replying to see whether the next
        # command is already there (the client sent a PIPELINING group, RFC
        # 2920) or the client waits for the reply: pipelined / unpipelined count
        # the MAILs of each kind.
        self.pipelined = 0
        self.unpipelined = 0
        # With pipelining_probe, also: final dots that arrived with the next
        # transaction's commands right behind them (RFC 2920 section 3.1: the
        # content may begin a group), seen the same way before the dot's reply.
        self.after_dot = 0
        # rcpt_gate: a threading.Event that each RCPT's reply (chosen as the
        # RCPT arrives) waits for, at most 30 s, so that a test can act while
        # a delivery is in flight; rcpts_waiting counts the RCPTs that reached it.
        self.rcpt_gate = None
        self.rcpts_waiting = 0
        self.lock = threading.Lock()
        outer = self
        tls_ctx = None
        if tls_cert:
            tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_ctx.load_cert_chain(*tls_cert)

        class Handler(socketserver.StreamRequestHandler):
            rbufsize = 0 if pipelining_probe else -1

            def handle(self):
                with outer.lock:
                    outer.connections += 1
                    conn = len(outer.per_connection)
                    outer.per_connection.append(0)
                closing = False
                w = lambda line: self.wfile.write((line + "\r\n").encode())
                w("220 fake.mx ESMTP")
                mail, rcpts, mail_line, rcpt_lines = None, [], "", []
                while True:
                    raw = self.rfile.readline(65536)
                    if not raw:
                        return
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    verb = line[:4].upper()
                    # A PIPELINING client sent the group's remaining RCPTs and
                    # its DATA before it read the 421 (RFC 2920 section 3.1):
                    # only a command after those means the session was used again.
                    if closing and verb not in ("RCPT", "DATA"):
                        with outer.lock:
                            outer.after_421 += 1
                    if verb == "STAR" and line.upper() == "STARTTLS" and tls_ctx:
                        w("220 2.0.0 ready")
                        self.wfile.flush()
                        try:
                            self.request = tls_ctx.wrap_socket(self.request, server_side=True)
                        except (ssl.SSLError, OSError):
                            return
                        with outer.lock:
                            outer.tls_sessions += 1
                        self.rfile = self.request.makefile("rb")
                        self.wfile = self.request.makefile("wb", buffering=0)
                        w = lambda line: self.wfile.write((line + "\r\n").encode())
                        mail, rcpts = None, []
                        continue
                    if verb in ("EHLO", "HELO"):
                        ext = ["fake.mx"] + outer.ehlo_extra
                        if tls_ctx and not isinstance(self.request, ssl.SSLSocket):
                            ext.append("STARTTLS")
                        for i, e in enumerate(ext):
                            w(("250 " if i == len(ext) - 1 else "250-") + e)
                    elif verb == "MAIL":
                        with outer.lock:
                            cut = outer.close_after and \
                                outer.per_connection[conn] >= outer.close_after
                            if cut:
                                outer.closed_at_mail += 1
                            else:
                                outer.per_connection[conn] += 1
                        if cut:
                            return
                        mail_line = line
                        mail = line.split(":", 1)[1].split(">")[0].strip().lstrip("<")
                        rcpts, rcpt_lines = [], []
                        if pipelining_probe:
                            more, _, _ = select.select([self.request], [], [], 0.2)
                            with outer.lock:
                                if more:
                                    outer.pipelined += 1
                                else:
                                    outer.unpipelined += 1
                        w("250 2.1.0 Ok")
                    elif verb == "RCPT":
                        addr = line.split(":", 1)[1].split(">")[0].strip().lstrip("<")
                        reply = outer.rcpt_replies.get(addr.lower(), "250 2.1.5 Ok")
                        gate = outer.rcpt_gate
                        if gate is not None:
                            with outer.lock:
                                outer.rcpts_waiting += 1
                            gate.wait(30)
                        if addr.lower() in outer.closing_replies:
                            reply = outer.closing_replies[addr.lower()]
                            closing = True
                        if reply.startswith("250"):
                            rcpts.append(addr)
                            rcpt_lines.append(line)
                        w(reply)
                    elif verb == "DATA" and not rcpts:
                        # As Postfix: a (pipelined) DATA with no accepted recipient.
                        w("554 5.5.1 Error: no valid recipients")
                    elif verb == "DATA":
                        w("354 go ahead")
                        data = []
                        while True:
                            l = self.rfile.readline(1 << 20)
                            if not l or l == b".\r\n":
                                break
                            data.append(l[1:] if l.startswith(b"..") else l)
                        if pipelining_probe:
                            more, _, _ = select.select([self.request], [], [], 0.2)
                            if more:
                                with outer.lock:
                                    outer.after_dot += 1
                        with outer.lock:
                            dropped = [r for r in rcpts if r.lower() in outer.drop_after_data]
                            outer.drop_after_data -= {r.lower() for r in dropped}
                        if dropped:
                            return
                        reply = outer.data_reply
                        if reply.startswith("250"):
                            with outer.lock:
                                outer.messages.append({
                                    "mail_from": mail, "rcpts": rcpts, "data": b"".join(data),
                                    "mail_line": mail_line, "rcpt_lines": rcpt_lines,
                                    "conn": conn})
                        w(reply)
                    elif verb == "QUIT":
                        w("221 bye")
                        return
                    elif verb == "RSET" or verb == "NOOP":
                        if verb == "RSET":
                            with outer.lock:
                                outer.rsets += 1
                        w("250 Ok")
                    else:
                        w("502 5.5.2 unknown")

        class Srv(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Srv(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received_for(self, addr):
        with self.lock:
            return [m for m in self.messages if addr in m["rcpts"]]

    @property
    def transactions(self):
        with self.lock:
            return sum(self.per_connection)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class FakeDNS:
    """Serves `zone`: {name: [(type, value), ...]}; type is MX ("10 host."), A, AAAA,
    TXT (one record; split into 255-byte strings), PTR ("host."), SRV
    ("prio weight port host."), TLSA ("usage selector mtype hex", RFC 6698) or
    CNAME ("host."). A question of another type for a name with a CNAME is
    answered as a recursive resolver does: the CNAME, then the target's
    records (RFC 1034 3.6.2; at most 8 links).

    `secure`: the names (or True: all) whose answers carry the AD bit, as a
    validating resolver sets it for DNSSEC-validated data (RFC 4035 3.2.3);
    the zones are not signed: the AD bit alone is what a stub sees.
    `insecure`: (name, type) questions answered without it all the same."""

    def __init__(self, zone, ttl=1, secure=(), insecure=()):
        from dnslib import CNAME, RR, QTYPE, RCODE, SRV, TLSA, A, AAAA, MX, PTR, TXT
        from dnslib.server import DNSServer, BaseResolver

        self.port = free_port()
        self.zone = zone
        self.secure = secure if isinstance(secure, bool) else {n.lower() for n in secure}
        self.insecure = {(n.lower(), t) for n, t in insecure}
        self.queries = []
        outer = self

        class Resolver(BaseResolver):
            def resolve(self, request, handler):
                reply = request.reply()
                q = request.q
                name = str(q.qname).rstrip(".").lower()
                qtype = QTYPE[q.qtype]
                outer.queries.append((name, qtype))
                # reply() copies the query's flags, AD included (RFC 6840 5.7
                # queries set it): a real resolver sets it only for validated data.
                reply.header.ad = int((outer.secure is True or
                                       bool(outer.secure and name in outer.secure)) and
                                      (name, qtype) not in outer.insecure)
                records = outer.zone.get(name)
                if records is None:
                    reply.header.rcode = RCODE.NXDOMAIN
                    return reply
                owner = q.qname
                for _ in range(8):
                    alias = [v for t, v in records if t == "CNAME"]
                    if qtype == "CNAME" or not alias or any(t == qtype for t, _ in records):
                        break
                    reply.add_answer(RR(owner, QTYPE.CNAME, rdata=CNAME(alias[0]), ttl=ttl))
                    owner = alias[0]
                    records = outer.zone.get(alias[0].rstrip(".").lower(), [])
                for rtype, value in records:
                    if rtype != qtype:
                        continue
                    if rtype == "MX":
                        pref, host = value.split()
                        rdata = MX(host, int(pref))
                    elif rtype == "A":
                        rdata = A(value)
                    elif rtype == "TXT":
                        raw = value.encode()
                        rdata = TXT([raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""])
                    elif rtype == "PTR":
                        rdata = PTR(value)
                    elif rtype == "SRV":
                        prio, weight, port, host = value.split()
                        rdata = SRV(int(prio), int(weight), int(port), host)
                    elif rtype == "CNAME":
                        rdata = CNAME(value)
                    elif rtype == "TLSA":
                        usage, selector, mtype, data = value.split()
                        rdata = TLSA(int(usage), int(selector), int(mtype), bytes.fromhex(data))
                    else:
                        rdata = AAAA(value)
                    reply.add_answer(RR(owner, getattr(QTYPE, rtype), rdata=rdata, ttl=ttl))
                return reply

        self.server = DNSServer(Resolver(), port=self.port, address="127.0.0.1")
        self.server.start_thread()

    @property
    def address(self):
        return f"127.0.0.1@{self.port}"

    def stop(self):
        self.server.stop()
