"""Reads `hato serve`'s Prometheus endpoint ([metrics] listen) for tests and drills."""
import http.client
import re

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def enable(server, port):
    """Adds a [metrics] section to a stopped server's hato.toml."""
    server.set_config("metrics", "listen", f'"127.0.0.1:{port}"')
    if port not in server.extra_ports:
        server.extra_ports.append(port)


def scrape(port, timeout=5):
    """Returns {"name{labels}": value} from GET /metrics."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode()
        if r.status != 200:
            raise AssertionError(f"/metrics answered {r.status}")
    finally:
        c.close()
    out = {}
    for line in body.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out
