#!/usr/bin/env bash
# Where the server's CPU time per ingested message goes, by thread: user and
# kernel time (utime/stime of /proc/PID/task/TID/stat) of each group of
# threads, named by their comm (hato-loop-N, hato-writer,
# hato-indexer; "hato" is the blocking pool and the smaller pools,
# "hato(main)" the main thread), per
# delivered message. Two windows: the burst (from the first message until the
# load generator is done) and the whole (until the full-text indexer has
# caught up and sleeps). Not under valgrind: figures move with the machine's
# load; bench/ingest_instructions.sh gives load-independent counts.
# Usage: bash bench/thread_cpu.sh HATO_BINARY SMTP_LOAD_BINARY
# Env: THREAD_CPU_MESSAGES (5000), THREAD_CPU_CONNECTIONS (50),
# THREAD_CPU_SIZE (4096), THREAD_CPU_PORT (27526), THREAD_CPU_STRACE (a path:
# the server runs under `strace -c -f` and its syscall summary is kept there;
# slows everything, so use it for counts only). Prints a table and one JSON line.
set -euo pipefail
# shellcheck source=bench/loopback.sh
source "$(dirname "$0")/loopback.sh"  # loopback_only TOML

HATO=$(realpath "${1:?usage: bash bench/thread_cpu.sh HATO SMTP_LOAD}")
LOAD=$(realpath "${2:?usage: bash bench/thread_cpu.sh HATO SMTP_LOAD}")
MESSAGES=${THREAD_CPU_MESSAGES:-5000}
CONNECTIONS=${THREAD_CPU_CONNECTIONS:-50}
SIZE=${THREAD_CPU_SIZE:-4096}
PORT=${THREAD_CPU_PORT:-27526}
RCPT=bench@bench.test
TICK=$(getconf CLK_TCK)

DIR=$(mktemp -d /tmp/hato-thread-cpu.XXXXXX)
PID="" RUNNER=""
cleanup() {
  if [ -n "$RUNNER" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$RUNNER" 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

"$HATO" init --data "$DIR/data" --domain bench.test >"$DIR/init.log" 2>&1
"$HATO" user add "$RCPT" --password bench-password --data "$DIR/data" >>"$DIR/init.log" 2>&1
loopback_only "$DIR/data/hato.toml"

if [ -n "${THREAD_CPU_STRACE:-}" ]; then
  strace -c -f -o "$DIR/strace.txt" "$HATO" serve --data "$DIR/data" --smtp "127.0.0.1:$PORT" \
    2>"$DIR/serve.log" &
  RUNNER=$!
  for _ in $(seq 100); do
    PID=$(pgrep -P "$RUNNER" -x hato || true)
    [ -n "$PID" ] && break
    sleep 0.1
  done
else
  "$HATO" serve --data "$DIR/data" --smtp "127.0.0.1:$PORT" 2>"$DIR/serve.log" &
  RUNNER=$!
  PID=$RUNNER
fi
for _ in $(seq 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { tail -20 "$DIR/serve.log" >&2; exit 1; }
  sleep 0.1
done

# snapshot FILE: one line per thread: comm utime stime (clock ticks).
snapshot() {
  local out=$1 t line rest comm
  : >"$out"
  for t in /proc/"$PID"/task/*; do
    read -r line <"$t/stat" 2>/dev/null || continue
    read -r comm <"$t/comm" 2>/dev/null || continue
    rest=${line##*) }
    # shellcheck disable=SC2086  # the fields of /proc/PID/task/TID/stat
    set -- $rest
    [ "${t##*/}" = "$PID" ] && comm="$comm(main)"
    # Builds before the threads had names: the indexer is the one at nice 19.
    [ "$comm" = hato ] && [ "${17}" = 19 ] && comm=hato-indexer
    echo "${t##*/} $comm ${12} ${13}" >>"$out"
  done
}

# settle: until the indexer thread sleeps with no CPU used for 3 s in a row.
settle() {
  local quiet=0 last="" ticks
  for _ in $(seq 3600); do
    sleep 1
    ticks=$(awk '$2 == "hato-indexer" { print $3 + $4 }' <(snapshot /dev/stdout))
    if [ -n "$ticks" ] && [ "$ticks" = "$last" ]; then
      quiet=$((quiet + 1))
      [ $quiet -ge 3 ] && return 0
    else
      quiet=0
    fi
    last=$ticks
  done
  echo "thread_cpu: the indexer did not settle" >&2
  return 1
}

settle
snapshot "$DIR/t0"
started=$(date +%s.%N)
"$LOAD" --host 127.0.0.1 --port "$PORT" --connections "$CONNECTIONS" --messages "$MESSAGES" \
  --size "$SIZE" --rcpt "$RCPT" --from loadgen@hato-bench.example --timeout 600 --json \
  >"$DIR/load.json" || true
snapshot "$DIR/t1"
burst=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
settle
snapshot "$DIR/t2"
whole=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a - 3 }')
if [ -n "${THREAD_CPU_STRACE:-}" ]; then
  kill -TERM "$PID"
  wait "$RUNNER" 2>/dev/null || true
  RUNNER=""
  cp "$DIR/strace.txt" "$THREAD_CPU_STRACE"
fi

accepted=$(sed -n 's/.*"accepted": \([0-9]*\).*/\1/p' "$DIR/load.json")
n=$((accepted > 0 ? accepted : 1))
echo "accepted $accepted of $MESSAGES; burst ${burst} s, until the indexer slept ${whole} s" \
  "(3 s of its quiet left out)"
# The table: per group, ms per message of user and kernel time, burst and whole.
awk -v n="$n" -v tick="$TICK" '
  function group(c) { sub(/-[0-9]+$/, "-N", c); return c }
  FILENAME ~ /t0$/ { u0[$1] = $3; s0[$1] = $4; next }
  FILENAME ~ /t1$/ { g = group($2); u1[g] += $3 - u0[$1]; s1[g] += $4 - s0[$1]; seen[g] = 1; next }
  { g = group($2); u2[g] += $3 - u0[$1]; s2[g] += $4 - s0[$1]; seen[g] = 1 }
  END {
    ms = 1000 / tick / n
    printf "%-16s %10s %10s %10s %10s\n", "ms per message", "burst usr", "burst sys", "whole usr", "whole sys"
    json = ""
    for (g in seen) {
      printf "%-16s %10.3f %10.3f %10.3f %10.3f\n", g, u1[g] * ms, s1[g] * ms, u2[g] * ms, s2[g] * ms
      tu1 += u1[g]; ts1 += s1[g]; tu2 += u2[g]; ts2 += s2[g]
      json = json sprintf("%s\"%s\": [%.4f, %.4f, %.4f, %.4f]", json == "" ? "" : ", ", g,
                          u1[g] * ms, s1[g] * ms, u2[g] * ms, s2[g] * ms)
    }
    printf "%-16s %10.3f %10.3f %10.3f %10.3f\n", "total", tu1 * ms, ts1 * ms, tu2 * ms, ts2 * ms
    printf "{\"messages\": %d, \"ms_per_msg\": {%s, \"total\": [%.4f, %.4f, %.4f, %.4f]}}\n", n, json,
           tu1 * ms, ts1 * ms, tu2 * ms, ts2 * ms
  }' "$DIR/t0" "$DIR/t1" "$DIR/t2"
