#!/usr/bin/env python3
"""Ingest with rspamd on vs off (issue 19): the same load (hato-smtp-load on
port 25) against one Hato without [scan] and one with rspamd_url set, both on
loopback, with a real rspamd started in a temporary folder
(tests/integration/scanners.py). Reports throughput, p50/p99 time-to-250 and
rspamd's own time per message (the mean of the time_real rspamd reports, as
logged by Hato for each scanned message).

Usage: python3 bench/scan_bench.py BUILD_DIR
Env: BENCH_MESSAGES (500), BENCH_CONNECTIONS (10), BENCH_SIZE (4096).
Writes BUILD_DIR/scan-bench-results.json.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
    os.environ.setdefault("HATO_BIN", os.path.join(build, "hato"))
    import harness  # noqa: E402 (after HATO_BIN)
    import scanners  # noqa: E402
    if scanners.missing():
        print("scan bench: " + scanners.missing(), file=sys.stderr)
        return 1
    load = os.path.join(build, "bench", "hato-smtp-load")
    messages = int(os.environ.get("BENCH_MESSAGES", "500"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "10"))
    size = int(os.environ.get("BENCH_SIZE", "4096"))
    rspamd = scanners.Rspamd().start()
    results = {}
    try:
        for mode in ("off", "on"):
            server = harness.Server(users=("bench",))
            server.set_config("smtp", "max_connections_per_ip", "1000")
            if mode == "on":
                server.set_config("scan", "rspamd_url", f'"{rspamd.url}"')
                server.set_config("scan", "timeout_ms", "20000")
            server.start()
            try:
                out = subprocess.run(
                    [load, "--host", "127.0.0.1", "--port", str(server.smtp_port),
                     "--connections", str(connections), "--messages", str(messages),
                     "--size", str(size), "--rcpt", f"bench@{harness.DOMAIN}", "--json"],
                    capture_output=True, text=True, timeout=1800)
                if out.returncode != 0:
                    print(out.stdout, out.stderr, file=sys.stderr)
                    return 1
                r = json.loads(out.stdout.strip().splitlines()[-1])
                times = [float(t) for t in
                         re.findall(r"rspamd score=\S+ required=\S+ time=([0-9.]+)s",
                                    server.logs())]
                if times:
                    r["rspamd_time_per_msg_ms"] = 1000 * sum(times) / len(times)
                    r["rspamd_scanned"] = len(times)
                results[mode] = r
            finally:
                server.cleanup()
    finally:
        rspamd.stop()
    off, on = results["off"], results["on"]
    print(f"{'':24}{'rspamd off':>12}{'rspamd on':>12}")
    for k, label in (("msgs_per_s", "msgs/s to 250"), ("p50_ms", "p50 to 250 (ms)"),
                     ("p99_ms", "p99 to 250 (ms)"), ("errors", "errors")):
        print(f"{label:24}{off[k]:>12.1f}{on[k]:>12.1f}")
    if "rspamd_time_per_msg_ms" in on:
        print(f"rspamd's own time per message: {on['rspamd_time_per_msg_ms']:.1f} ms "
              f"(mean of {on['rspamd_scanned']} time_real values)")
    cost = 100 * (1 - on["msgs_per_s"] / off["msgs_per_s"]) if off["msgs_per_s"] else 0
    print(f"throughput cost of rspamd: {cost:.0f}%")
    with open(os.path.join(build, "scan-bench-results.json"), "w") as f:
        json.dump({"off": off, "on": on, "messages": messages, "connections": connections,
                   "size": size}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
