#!/usr/bin/env bash
# Backup and restore throughput on a store of N messages (default 100000).
#   bench/backup_bench.sh BUILD_DIR [N]
# Fills a fresh store with `hato import` of a generated mbox (through the store
# API), then times `hato backup create`, `hato backup verify`, `hato restore`
# (into an empty data dir) and `hato restore --merge` (into a store holding the
# same accounts, second run = nothing to add). Everything stays under a temp dir.
set -euo pipefail
hato="$(cd "$1" && pwd)/hato"
n="${2:-100000}"
work="$(mktemp -d /tmp/hato-backup-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
python3 - "$work/in.mbox" "$n" <<'PY'
import random, sys, time
path, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
words = [w.encode() for w in "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua".split()]
with open(path, "wb") as f:
    for i in range(n):
        date = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(1700000000 + i * 17))
        body = b" ".join(rnd.choice(words) for _ in range(rnd.randint(100, 900)))
        f.write(b"From sender@remote.test %s\nFrom: Sender <sender@remote.test>\nTo: u@bench.test\n"
                b"Subject: bench %d\nMessage-ID: <b%d@remote.test>\n\n%s\n\n" % (date.encode(), i, i, body))
PY
echo "mbox: $(du -h "$work/in.mbox" | cut -f1) for $n messages"
"$hato" init --data "$work/d1" --domain bench.test >/dev/null
echo pw | "$hato" user add u@bench.test --password-stdin --data "$work/d1" >/dev/null
t() { local s=$(date +%s.%N); "$@"; echo "  ($(echo "$(date +%s.%N) - $s" | bc) s wall)"; }
echo "== import";          t "$hato" import u@bench.test "$work/in.mbox" --data "$work/d1"
echo "== backup create";   t "$hato" backup create "$work/bk" --create --data "$work/d1"
echo "== backup create (incremental, nothing new)"; t "$hato" backup create "$work/bk" --data "$work/d1"
echo "== backup verify";   t "$hato" backup verify "$work/bk"
echo "== restore (empty data dir)"; t "$hato" restore "$work/bk" --data "$work/d2"
echo "== restore --merge (accounts only first, then all mail)"
"$hato" restore "$work/bk" --accounts-only --data "$work/d3" >/dev/null
t "$hato" restore "$work/bk" --merge --data "$work/d3"
echo "== restore --merge again (idempotent)"; t "$hato" restore "$work/bk" --merge --data "$work/d3"
du -sh "$work/d1" "$work/bk"
