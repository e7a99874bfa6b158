#!/usr/bin/env bash
# Sieve cost at delivery (issue 19): ingest throughput and p99 time-to-250 with
# no script, then with a 20-rule script active on every account.
# Usage: bash bench/sieve_run.sh BUILD_DIR
# Env: BENCH_MESSAGES (3000), BENCH_CONNECTIONS (20), BENCH_SIZE (4096), BENCH_ROUNDS (5),
# BENCH_ACCOUNTS (20: the load is spread over that many accounts, each with the script).
# Goal: msgs/s and p99 with the script within 10% of without. Prints one line per mode and
# the ratios (throughput, and the server's CPU time per message, which a
# loaded machine disturbs less). Per run also the server's user and system CPU,
# context switches and bytes written to storage per message (all threads but the
# full-text indexer's, counted over the load only), and their medians per mode.
set -euo pipefail

BUILD=$(cd "${1:?usage: bash bench/sieve_run.sh BUILD_DIR}" && pwd)
MESSAGES=${BENCH_MESSAGES:-3000}
CONNECTIONS=${BENCH_CONNECTIONS:-20}
SIZE=${BENCH_SIZE:-4096}
ACCOUNTS=${BENCH_ACCOUNTS:-20}  # message i goes to rcpt<i % ACCOUNTS>@bench.test
HATO=$BUILD/hato
LOAD=$BUILD/bench/hato-smtp-load
[ -x "$LOAD" ] || { echo "bench: build $LOAD (cmake --build $BUILD --target hato-smtp-load)" >&2; exit 1; }

DIR="" PID=""
cleanup() {
  set +e
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [ -n "$DIR" ] && rm -rf "$DIR"
  PID="" DIR=""
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Twenty rules of the kinds people write (bench/sieve_rules.sieve, also used by
# bench/ingest_instructions.sh INGEST_SIEVE): most do not match this load's
# mail; the last one flags it and keeps it in INBOX (so POP3 counts every message).
RULES=$(cd "$(dirname "$0")" && pwd)/sieve_rules.sieve

# counters PID: "user_ticks sys_ticks context_switches write_bytes" of every thread of PID
# but the indexer (nice 19), from /proc/PID/task/*/{stat,status,io}.
counters() {
  local user=0 sys=0 cs=0 wb=0 line rest t k v
  for t in /proc/"$1"/task/*; do
    read -r line <"$t/stat" 2>/dev/null || continue
    rest=${line##*) }
    # shellcheck disable=SC2086  # the fields of /proc/PID/task/TID/stat
    set -- $rest
    [ "${17}" = 19 ] && continue
    user=$((user + ${12})) sys=$((sys + ${13}))
    while read -r k v; do
      case $k in voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) cs=$((cs + v)) ;; esac
    done <"$t/status"
    while read -r k v; do [ "$k" = write_bytes: ] && wb=$((wb + v)); done <"$t/io" 2>/dev/null
  done
  echo "$user $sys $cs $wb"
}

run() {  # run MODE -> "msgs/s p99 cpu_ms user_ms sys_ms ctxsw wbytes" (per message but msgs/s, p99)
  local mode=$1 smtp pop3
  DIR=$(mktemp -d /tmp/hato-sieve-bench.XXXXXX)
  "$HATO" init --data "$DIR/data" --domain bench.test >/dev/null
  cp "$RULES" "$DIR/rules.sieve"
  local i
  for i in $(seq 0 $((ACCOUNTS - 1))); do
    echo bench-password | "$HATO" user add "rcpt$i@bench.test" --password-stdin --data "$DIR/data" >/dev/null
    if [ "$mode" = sieve ]; then
      "$HATO" sieve put "rcpt$i@bench.test" rules "$DIR/rules.sieve" --data "$DIR/data" >/dev/null
      "$HATO" sieve activate "rcpt$i@bench.test" rules --data "$DIR/data"
    fi
  done
  smtp=$(free_port) pop3=$(free_port)
  "$HATO" serve --data "$DIR/data" --smtp "127.0.0.1:$smtp" --pop3 "127.0.0.1:$pop3" \
    --imap "127.0.0.1:$(free_port)" --http "127.0.0.1:$(free_port)" --managesieve "127.0.0.1:$(free_port)" \
    --imaps "127.0.0.1:$(free_port)" --pop3s "127.0.0.1:$(free_port)" \
    --submission "127.0.0.1:$(free_port)" --submissions "127.0.0.1:$(free_port)" 2>"$DIR/hato.log" &
  PID=$!
  for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$smtp") 2>/dev/null && break; sleep 0.1; done
  local before after
  before=$(counters "$PID")
  "$LOAD" --host 127.0.0.1 --port "$smtp" --connections "$CONNECTIONS" --messages "$MESSAGES" \
    --size "$SIZE" --rcpt "rcpt@bench.test" --rcpt-users "$ACCOUNTS" --from loadgen@hato-bench.example --timeout 600 \
    --json >"$DIR/out.json" || { tail -20 "$DIR/hato.log" >&2; return 1; }
  # The server's CPU time per message (user + system, from /proc) without the
  # full-text indexer (the thread at nice 19): Sieve does not change the
  # indexer's work, but how much of it runs before the load ends varies from
  # run to run.
  after=$(counters "$PID")
  python3 - "$DIR/out.json" "$MESSAGES" "$before" "$after" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
a, b = ([int(x) for x in s.split()] for s in sys.argv[3:5])
user, sys_, cs, wb = (y - x for x, y in zip(a, b))
ms = lambda ticks: 1000 * ticks / os.sysconf("SC_CLK_TCK") / n
print(d["msgs_per_s"], d.get("p99_ms"), "%.3f %.3f %.3f %.2f %d" % (ms(user + sys_), ms(user), ms(sys_), cs / n, wb / n))
PY
  cleanup
}

# Rounds alternate the order (none first, then sieve first, ...): a machine that
# speeds up or slows down during the run then favours neither mode. The verdict
# is the median of the rounds' ratios.
ROUNDS=${BENCH_ROUNDS:-5}
echo "round  mode   msgs/s  p99_ms  server per message (indexer excluded): cpu_ms user_ms sys_ms ctx_switches write_bytes"
ratios=()
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then none=$(run none); sieve=$(run sieve)
  else sieve=$(run sieve); none=$(run none); fi
  echo "$round      none   $none"
  echo "$round      sieve  $sieve"
  ratios+=("${none// /,} ${sieve// /,}")
done
python3 - "${ratios[@]}" <<'PY'
import statistics, sys
tp, p99, cpu = [], [], []
modes = {"none": [], "sieve": []}
for pair in sys.argv[1:]:
    a, b = ([float(x) for x in half.split(",")] for half in pair.split())
    modes["none"].append(a); modes["sieve"].append(b)
    tp.append(100 * b[0] / a[0]); p99.append(100 * b[1] / a[1]); cpu.append(100 * b[2] / a[2])
fmt = lambda xs: " ".join("%.1f" % x for x in xs)
for mode, rows in modes.items():
    med = [statistics.median(col) for col in zip(*rows)]
    print("%-5s medians: cpu %.3f ms/msg (user %.3f, sys %.3f), %.2f context switches/msg, %d bytes written/msg"
          % (mode, med[2], med[3], med[4], med[5], med[6]))
print("sieve/none throughput: median %.1f%% (rounds: %s)" % (statistics.median(tp), fmt(tp)))
print("sieve/none p99 time-to-250: median %.1f%% (rounds: %s)" % (statistics.median(p99), fmt(p99)))
print("sieve/none server CPU per message: median %.1f%% (rounds: %s)" % (statistics.median(cpu), fmt(cpu)))
PY
