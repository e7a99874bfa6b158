"""Reads `hato serve`'s Prometheus endpoint ([metrics] listen) for tests and drills."""
import http.client
import re

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def enable(server, port):
    """Adds a [metrics] section to a stopped server's hato.toml."""
    server.set_config("metrics", "listen", f'"127.0.0.1:{port}"')
    server.metrics_port = port
    _moved.pop(port, None)


# A port the test was given -> the port the server listens on: when another
# test took it first, Server.start() starts again on a fresh one (move) and
# scrape() follows it, so the test keeps using the number it chose.
_moved = {}


def move(server, port):
    """Moves a stopped server's metrics listener to `port`."""
    for given, now in list(_moved.items()) + [(server.metrics_port, server.metrics_port)]:
        if now == server.metrics_port:
            _moved[given] = port
    server.set_config("metrics", "listen", f'"127.0.0.1:{port}"')
    server.metrics_port = port


def scrape(port, timeout=5):
    """Returns {"name{labels}": value} from GET /metrics."""
    c = http.client.HTTPConnection("127.0.0.1", _moved.get(port, port), timeout=timeout)
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
