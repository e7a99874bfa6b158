#!/usr/bin/env bash
# CPU cost of SMTP ingest, independent of the machine's load: the instructions
# the server executes (valgrind's callgrind, every thread: event loop, blocking
# pool, store writer and the full-text indexer, plus `hato reindex` for what
# the indexer had not reached) per delivered message, and the full-text
# index's size per GB of mail. Wall-clock figures are `make bench`'s.
# Usage: bash bench/ingest_instructions.sh HATO_BINARY SMTP_LOAD_BINARY
# Env: INGEST_MESSAGES (500), INGEST_CONNECTIONS (50), INGEST_SIZE (4096),
# INGEST_PORT (27525), INGEST_PROFILE (a path: keep the callgrind profile of
# the load there, for callgrind_annotate), INGEST_SIEVE (a Sieve script file:
# made the recipient's active script, e.g. bench/sieve_rules.sieve, the
# 20-rule script of bench/sieve_run.sh). Needs valgrind. Prints one JSON line.
set -euo pipefail
# shellcheck source=bench/loopback.sh
source "$(dirname "$0")/loopback.sh"  # loopback_only TOML

HATO=$(realpath "${1:?usage: bash bench/ingest_instructions.sh HATO SMTP_LOAD}")
LOAD=$(realpath "${2:?usage: bash bench/ingest_instructions.sh HATO SMTP_LOAD}")
MESSAGES=${INGEST_MESSAGES:-500}
CONNECTIONS=${INGEST_CONNECTIONS:-50}
SIZE=${INGEST_SIZE:-4096}
PORT=${INGEST_PORT:-27525}
RCPT=bench@bench.test

DIR=$(mktemp -d /tmp/hato-ingest.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

"$HATO" init --data "$DIR/data" --domain bench.test >"$DIR/init.log" 2>&1
"$HATO" user add "$RCPT" --password bench-password --data "$DIR/data" >>"$DIR/init.log" 2>&1
if [ -n "${INGEST_SIEVE:-}" ]; then
  "$HATO" sieve put "$RCPT" rules "$INGEST_SIEVE" --data "$DIR/data" >>"$DIR/init.log" 2>&1
  "$HATO" sieve activate "$RCPT" rules --data "$DIR/data" >>"$DIR/init.log" 2>&1
fi
# Only the SMTP listener (given below): nothing else to bind, nothing else to run.
loopback_only "$DIR/data/hato.toml"
# Commits are slow under valgrind: no "storage busy" refusals.
sed -i -E 's/^slow_commit_ms = [0-9]+/slow_commit_ms = 3600000/' "$DIR/data/hato.toml"

valgrind --tool=callgrind --callgrind-out-file="$DIR/callgrind.out" \
  "$HATO" serve --data "$DIR/data" --smtp "127.0.0.1:$PORT" 2>"$DIR/serve.log" &
PID=$!
for _ in $(seq 600); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { tail -20 "$DIR/serve.log" >&2; exit 1; }
  sleep 0.2
done

# settle: waits until the writer and the full-text indexer are done: the
# indexer thread (the one at nice 19) asleep with no CPU used for 3 s in a row
# (it sleeps up to 10 s once caught up, 1 s between rounds before). It runs at
# the lowest priority, so on a busy machine this can take a while.
settle() {
  local quiet=0 last="" line rest state ticks t
  for _ in $(seq 3600); do
    sleep 1
    state="" ticks=""
    for t in /proc/"$PID"/task/*/stat; do
      read -r line <"$t" || continue
      rest=${line##*) }
      # shellcheck disable=SC2086  # the fields of /proc/PID/task/TID/stat
      set -- $rest
      if [ "${17}" = 19 ]; then state=$1 ticks=$((${12} + ${13})); fi
    done
    if [ -n "$ticks" ] && [ "$state" = S ] && [ "$ticks" = "$last" ]; then
      quiet=$((quiet + 1))
      [ $quiet -ge 3 ] && return 0
    else
      quiet=0
    fi
    last=$ticks
  done
  echo "ingest: the indexer did not settle" >&2
  return 1
}

settle
# The idle server's own timers (watchdog, metrics): their rate over 10 s is
# taken off the measured window.
callgrind_control -z "$PID" >/dev/null
sleep 10
callgrind_control -d "$PID" >/dev/null
callgrind_control -z "$PID" >/dev/null
started=$(date +%s.%N)
"$LOAD" --host 127.0.0.1 --port "$PORT" --connections "$CONNECTIONS" --messages "$MESSAGES" \
  --size "$SIZE" --rcpt "$RCPT" --from loadgen@hato-bench.example --timeout 1200 --json \
  >"$DIR/load.json" || true
settle
callgrind_control -d "$PID" >/dev/null
window=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
kill -TERM "$PID"
wait "$PID" 2>/dev/null || true
PID=""

accepted=$(sed -n 's/.*"accepted": \([0-9]*\).*/\1/p' "$DIR/load.json")
errors=$(sed -n 's/.*"errors": \([0-9]*\).*/\1/p' "$DIR/load.json")
# ir FILE: the instruction count of a callgrind output file.
ir() { sed -n 's/^summary: \([0-9]*\).*/\1/p' "$1"; }
# The dumps: 1 = 10 s idle, 2 = the load until the indexer caught up.
[ -z "${INGEST_PROFILE:-}" ] || cp "$DIR/callgrind.out.2" "$INGEST_PROFILE"
idle_ir=$(awk -v i="$(ir "$DIR/callgrind.out.1")" -v w="$window" 'BEGIN { printf "%d", i / 10 * w }')
serve_ir=$(($(ir "$DIR/callgrind.out.2") - idle_ir))
# Whatever the indexer had not reached (it should be nothing) is indexed by
# `hato reindex`, whose instructions (less those of a reindex with nothing to
# do: opening the store) count too.
reindex() {
  valgrind --tool=callgrind --callgrind-out-file="$DIR/reindex.$1" \
    "$HATO" reindex --data "$DIR/data" 2>/dev/null | sed -n 's/^\([0-9]*\) bodies indexed/\1/p'
}
left=$(reindex 1)
reindex 2 >/dev/null
reindex_ir=$(($(ir "$DIR/reindex.1") - $(ir "$DIR/reindex.2")))
index_kb=$(du -sk "$DIR/data/index" | cut -f1)
data_kb=$(du -sk "$DIR/data" --exclude=index | cut -f1)
mail_bytes=$((accepted * SIZE))
n=$((accepted > 0 ? accepted : 1))
echo "{\"accepted\": $accepted, \"errors\": ${errors:-null}, \"window_s\": $window," \
  "\"idle_instructions\": $idle_ir, \"serve_instructions\": $serve_ir," \
  "\"left_for_reindex\": ${left:-null}, \"reindex_instructions\": $reindex_ir," \
  "\"instructions_per_msg\": $(((serve_ir + reindex_ir) / n))," \
  "\"index_kib\": $index_kb, \"data_kib\": $data_kb," \
  "\"index_gb_per_gb_mail\": $(awk -v i="$index_kb" -v m="$mail_bytes" 'BEGIN { printf "%.2f", i * 1024 / m }')}"
