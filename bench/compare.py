#!/usr/bin/env python3
"""Compares benchmark results with a baseline and flags regressions (issue 17).

Usage:
  python3 bench/compare.py BASELINE [CURRENT]

BASELINE and CURRENT are either result files written by `make bench`
(bench-results.json, imap-bench-results.json, jmap-bench-results.json,
login-bench-results.json, ...) or
directories holding them (a build directory, or a copy of one kept from an
earlier run). CURRENT defaults to the directory `build`. Files are matched by
name; a kind present on one side only is reported and skipped.

For each headline figure it prints the baseline, the current value and the
change, marking a change for the worse of more than --threshold (default 20%)
as REGRESSION. Exit status: 0 no regression, 1 a regression, 2 nothing to
compare (missing or unreadable files).
"""
import argparse
import json
import os
import sys

HIGHER, LOWER = "higher", "lower"

# (file, label, path into the JSON, which direction is better)
HEADLINES = [
    ("bench-results.json", "ingest msgs/s (end to end)", ("hato", "msgs_per_s_e2e"), HIGHER),
    ("bench-results.json", "ingest server CPU ms/msg", ("hato", "cpu_ms_per_msg"), LOWER),
    ("bench-results.json", "ingest p99 ms to 250", ("hato", "p99_ms"), LOWER),
    ("imap-bench-results.json", "IMAP mix ops/s", ("hato", "ops_per_s"), HIGHER),
    ("imap-bench-results.json", "IMAP server CPU ms/op", ("hato", "cpu_ms_per_op"), LOWER),
    ("imap-bench-results.json", "IMAP login+SELECT p99 ms", ("hato", "login_select_p99_ms"),
     LOWER),
    ("imap-bench-results.json", "idle kB/connection (RSS)", ("idle", "hato", "rss_per_conn_kb"),
     LOWER),
    ("jmap-bench-results.json", "JMAP query+get ops/s", ("runs", "jmap query+get", "ops_per_s"),
     HIGHER),
    ("jmap-bench-results.json", "EventSource kB/connection",
     ("eventsource", "per_connection_kb"), LOWER),
    ("jmap-list-bench-results.json", "JMAP list view req/s (C++ client)",
     ("hato_jmap", "ops_per_s"), HIGHER),
    ("jmap-list-bench-results.json", "JMAP list view p99 ms", ("hato_jmap", "p99_ms"), LOWER),
    ("login-bench-results.json", "login load sessions/s", ("hato", "commands", "SESSION", "per_s"),
     HIGHER),
    ("login-bench-results.json", "login load server CPU ms/session", ("hato", "cpu_ms_per_op"),
     LOWER),
]
FILES = sorted({h[0] for h in HEADLINES})


def lookup(doc, path):
    """The number at `path` (a list of runs is searched by its "name"), or None."""
    cur = doc
    for key in path:
        if isinstance(cur, list):
            cur = next((x for x in cur if isinstance(x, dict) and x.get("name") == key), None)
        elif isinstance(cur, dict):
            cur = cur.get(key)
        else:
            return None
        if cur is None:
            return None
    return cur if isinstance(cur, (int, float)) and not isinstance(cur, bool) else None


def load(where):
    """{file name: parsed JSON} for a results file or a directory of them."""
    out = {}
    if os.path.isdir(where):
        paths = [os.path.join(where, f) for f in FILES]
    else:
        paths = [where]
    for p in paths:
        if not os.path.exists(p):
            continue
        name = os.path.basename(p)
        if name not in FILES:
            # A renamed copy (baseline-bench.json): guess its kind from its keys.
            name = guess_kind(p)
        if name is None:
            continue
        try:
            with open(p) as f:
                out[name] = json.load(f)
        except (OSError, ValueError) as e:
            print(f"compare: cannot read {p}: {e}", file=sys.stderr)
    return out


def guess_kind(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    if "runs" in doc:
        return "jmap-bench-results.json"
    if doc.get("mix") == "login":
        return "login-bench-results.json"
    if "idle" in doc:
        return "imap-bench-results.json"
    if "messages" in doc:
        return "bench-results.json"
    return None


def change(old, new, better):
    """(fractional change, regressed?) with positive = better."""
    if old == 0:
        return None
    rel = (new - old) / old
    return rel if better == HIGHER else -rel


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("baseline")
    ap.add_argument("current", nargs="?", default="build")
    ap.add_argument("--threshold", type=float, default=20.0, help="percent (default 20)")
    args = ap.parse_args(argv)
    old, new = load(args.baseline), load(args.current)
    common = [f for f in FILES if f in old and f in new]
    for f in FILES:
        if (f in old) != (f in new):
            side = "baseline" if f in old else "current run"
            print(f"compare: {f} only in the {side}; skipped")
    if not common:
        print(f"compare: no results to compare between {args.baseline} and {args.current}",
              file=sys.stderr)
        return 2
    regressions = []
    print(f"{'figure':34} {'baseline':>12} {'current':>12} {'change':>9}")
    for f, label, path, better in HEADLINES:
        if f not in common:
            continue
        a, b = lookup(old[f], path), lookup(new[f], path)
        if a is None or b is None:
            print(f"{label:34} {fmt(a):>12} {fmt(b):>12} {'n/a':>9}")
            continue
        c = change(a, b, better)
        mark = ""
        if c is not None and c < -args.threshold / 100:
            mark = "  REGRESSION"
            regressions.append(label)
        shown = "n/a" if c is None else f"{100 * c:+.1f}%"
        print(f"{label:34} {fmt(a):>12} {fmt(b):>12} {shown:>9}{mark}")
    print("(change: + is better, whichever way the figure goes)")
    if regressions:
        print(f"compare: {len(regressions)} figure(s) worse by more than {args.threshold:g}%: "
              + ", ".join(regressions))
        return 1
    return 0


def fmt(x):
    if x is None:
        return "missing"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


if __name__ == "__main__":
    sys.exit(main())
