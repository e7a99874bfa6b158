#!/usr/bin/env bash
# Sieve cost at delivery (issue 19): ingest throughput and p99 time-to-250 with
# no script, then with a 20-rule script active on every account.
# Usage: bash bench/sieve_run.sh BUILD_DIR
# Env: BENCH_MESSAGES (3000), BENCH_CONNECTIONS (20), BENCH_SIZE (4096), BENCH_ROUNDS (5),
# BENCH_ACCOUNTS (20: the load is spread over that many accounts, each with the script).
# Goal: msgs/s and p99 with the script within 10% of without. Prints one line per mode and
# the ratios (throughput, and the server's CPU time per message, which a
# loaded machine disturbs less).
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

run() {  # run MODE -> "msgs/s p99"
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
  "$LOAD" --host 127.0.0.1 --port "$smtp" --connections "$CONNECTIONS" --messages "$MESSAGES" \
    --size "$SIZE" --rcpt "rcpt@bench.test" --rcpt-users "$ACCOUNTS" --from loadgen@hato-bench.example --timeout 600 \
    --json >"$DIR/out.json" || { tail -20 "$DIR/hato.log" >&2; return 1; }
  # The server's CPU time per message (user + system, from /proc) without the
  # full-text indexer (the thread at nice 19): Sieve does not change the
  # indexer's work, but how much of it runs before the load ends varies from
  # run to run.
  local ticks=0 line rest t
  for t in /proc/"$PID"/task/*/stat; do
    read -r line <"$t" || continue
    rest=${line##*) }
    # shellcheck disable=SC2086  # the fields of /proc/PID/task/TID/stat
    set -- $rest
    [ "${17}" = 19 ] || ticks=$((ticks + ${12} + ${13}))
  done
  python3 -c 'import json,os,sys; d=json.load(open(sys.argv[1])); cpu=int(sys.argv[2])/os.sysconf("SC_CLK_TCK"); print(d["msgs_per_s"], d.get("p99_ms"), "%.3f" % (1000*cpu/int(sys.argv[3])))' "$DIR/out.json" "$ticks" "$MESSAGES"
  cleanup
}

# Rounds alternate the order (none first, then sieve first, ...): a machine that
# speeds up or slows down during the run then favours neither mode. The verdict
# is the median of the rounds' ratios.
ROUNDS=${BENCH_ROUNDS:-5}
echo "round  mode   msgs/s  p99_ms  server_cpu_ms/msg (indexer excluded)"
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
for pair in sys.argv[1:]:
    a, b = ([float(x) for x in half.split(",")] for half in pair.split())
    tp.append(100 * b[0] / a[0]); p99.append(100 * b[1] / a[1]); cpu.append(100 * b[2] / a[2])
fmt = lambda xs: " ".join("%.1f" % x for x in xs)
print("sieve/none throughput: median %.1f%% (rounds: %s)" % (statistics.median(tp), fmt(tp)))
print("sieve/none p99 time-to-250: median %.1f%% (rounds: %s)" % (statistics.median(p99), fmt(p99)))
print("sieve/none server CPU per message: median %.1f%% (rounds: %s)" % (statistics.median(cpu), fmt(cpu)))
PY
