#!/usr/bin/env bash
# First run in session 7: figures in bench/README.md ("PostgreSQL store").
# PostgreSQL store benchmark (issue 15): SMTP ingest and the IMAP mix on the embedded store vs
# PostgreSQL with one node vs two nodes on the same database (vs two shards), all on 127.0.0.1,
# driven by hato-smtp-load and hato-imap-load (bench/README.md).
# Usage: bash bench/pg_run.sh BUILD_DIR   (needs postgresql-15; as root the cluster runs as the
# user hato-pgtest that scripts/install-deps.sh creates)
# Env: PG_BENCH_MODES ("embedded postgres postgres-2nodes sharded"), PG_BENCH_MESSAGES (4000),
# PG_BENCH_CONNECTIONS (50), PG_BENCH_SIZE (4096), PG_BENCH_IMAP_USERS (10),
# PG_BENCH_IMAP_PREFILL (200), PG_BENCH_IMAP_CLIENTS (20), PG_BENCH_IMAP_SECONDS (20),
# PG_BENCH_IMAP (1; 0: SMTP only), PG_BENCH_PG_OPTS (more postgres options, e.g.
# "-c log_statement=all" to see the statements in TMP/MODE-pg/log), PG_BENCH_KEEP (set: keep the
# temp dirs).
# Durability is the same everywhere: Hato's group commit with fsync (embedded), PostgreSQL with
# fsync = on and synchronous_commit = on (the defaults; no standby here). Two nodes: each node
# gets half the SMTP connections (to its own recipient, checked over its own POP3) and half the
# IMAP clients; the figures are the sums. Around the SMTP load it samples the CPU of the Hato
# nodes and of the PostgreSQL clusters (process trees, /proc) and the nodes' database round
# trips (hato_store_database_round_trips_total at /metrics), per accepted message.
# Prints a table and writes BUILD_DIR/pg-bench-results.json.
set -euo pipefail

BUILD=$(cd "${1:?usage: bash bench/pg_run.sh BUILD_DIR}" && pwd)
MODES=${PG_BENCH_MODES:-"embedded postgres postgres-2nodes sharded"}
MESSAGES=${PG_BENCH_MESSAGES:-4000}
CONNECTIONS=${PG_BENCH_CONNECTIONS:-50}
SIZE=${PG_BENCH_SIZE:-4096}
IMAP_USERS=${PG_BENCH_IMAP_USERS:-10}
PREFILL=${PG_BENCH_IMAP_PREFILL:-200}
IMAP_CLIENTS=${PG_BENCH_IMAP_CLIENTS:-20}
IMAP_SECONDS=${PG_BENCH_IMAP_SECONDS:-20}
WITH_IMAP=${PG_BENCH_IMAP:-1}
TICK=$(getconf CLK_TCK)
SMTP_LOAD=$BUILD/bench/hato-smtp-load
IMAP_LOAD=$BUILD/bench/hato-imap-load
HATO=$BUILD/hato
PG_BIN=/usr/lib/postgresql/15/bin
PG_USER=hato-pgtest
FMT='bench%d@bench.test'
PASS=bench-password
BASE_PORT=24000

for t in "$SMTP_LOAD" "$IMAP_LOAD" "$HATO"; do
  [ -x "$t" ] || { echo "pg-bench: $t not built" >&2; exit 1; }
done
[ -x "$PG_BIN/initdb" ] || { echo "pg-bench: postgresql-15 is not installed" >&2; exit 1; }

TMP=$(mktemp -d /tmp/hato-pg-bench.XXXXXX)
chmod 755 "$TMP"
PIDS=() CLUSTERS=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for c in "${CLUSTERS[@]}"; do as_pg "$PG_BIN/pg_ctl" -D "$c/data" -m immediate -w stop >/dev/null 2>&1; done
  [ -n "${PG_BENCH_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/tree_ticks.sh
source "$(dirname "$0")/tree_ticks.sh"  # tree_ticks PID...

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {  # 60 s: a node's start on a loaded machine (migrations, pool) takes a while
  for _ in $(seq 600); do port_open "$1" && return 0; sleep 0.1; done
  echo "pg-bench: nothing listening on 127.0.0.1:$1" >&2; return 1
}
jget() {  # jget FIELD JSON: a top-level field
  python3 -c 'import json, sys; v = json.loads(sys.argv[2]).get(sys.argv[1]); print(0 if v is None else v)' "$1" "$2"
}

# cluster NAME PORT: a fresh PostgreSQL cluster; prints nothing, sets nothing.
cluster() {
  local dir=$TMP/$1 port=$2
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown "$PG_USER" "$dir"
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -N -E UTF8 --locale=C >/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
    "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 ${PG_BENCH_PG_OPTS:-}" \
    start >/dev/null
  CLUSTERS+=("$dir")
  psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE hato" >/dev/null
}

# node N URL EXTRA_TOML: a data dir (hato init, attaching to URL when given).
node_init() {
  local d=$TMP/$MODE-node$1 url=$2
  if [ -n "$url" ]; then
    "$HATO" init --data "$d" --domain bench.test --postgres "$url" >>"$TMP/init.log" 2>&1
  else
    "$HATO" init --data "$d" --domain bench.test >>"$TMP/init.log" 2>&1
  fi
  # Every load client logs in at once from 127.0.0.1: one network may have a
  # quarter of auth.max_pending_checks waiting (server/isolation.h), so the
  # default 64 refuses some of 20+ simultaneous logins ("NO [UNAVAILABLE]").
  # Only SMTP, POP3 and IMAP (given to serve): the other default listeners
  # (465, 587, 993, 995, 4190, 8080) would clash between nodes and with
  # anything else on the machine.
  # /metrics on BASE+N*10+4, for the round-trip count.
  sed -i -e 's/^max_pending_checks = [0-9]*/max_pending_checks = 1024/' \
    -e "s/^listen = \"\"/listen = \"127.0.0.1:$((BASE_PORT + $1 * 10 + 4))\"/" \
    -E -e 's/^(submission|submissions|imaps|pop3s|http|managesieve) = "[^"]*"/\1 = ""/' \
    "$d/hato.toml"
  [ -n "${3:-}" ] && printf '%s\n' "$3" >>"$d/hato.toml"
  return 0
}
users_add() {
  local d=$TMP/$MODE-node1 i
  for i in $(seq 1 "$IMAP_USERS"); do
    "$HATO" user add "${FMT/\%d/$i}" --password "$PASS" --data "$d" >>"$TMP/init.log" 2>&1
  done
  for u in smtp1 smtp2; do
    "$HATO" user add "$u@bench.test" --password "$PASS" --data "$d" >>"$TMP/init.log" 2>&1
  done
}
# serve N: starts node N; its ports are BASE+N*10+{1 smtp, 2 pop3, 3 imap}
serve() {
  local n=$1 p=$((BASE_PORT + $1 * 10))
  "$HATO" serve --data "$TMP/$MODE-node$n" --smtp "127.0.0.1:$((p + 1))" \
    --pop3 "127.0.0.1:$((p + 2))" --imap "127.0.0.1:$((p + 3))" 2>"$TMP/$MODE-node$n.log" &
  PIDS+=($!)
  if ! { wait_port $((p + 1)) && wait_port $((p + 3)); }; then
    echo "pg-bench: $MODE: node $n did not start:" >&2
    tail -20 "$TMP/$MODE-node$n.log" >&2
    exit 1
  fi
}
stop_nodes() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  PIDS=()
}

# round_trips NODES: the nodes' database round trips so far, summed.
round_trips() {
  local n total=0 v
  for n in $(seq 1 "$1"); do
    v=$(python3 -c 'import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().splitlines():
    if line.startswith("hato_store_database_round_trips_total "): print(int(float(line.split()[1])))' \
      "http://127.0.0.1:$((BASE_PORT + n * 10 + 4))/metrics")
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
pg_pids() {  # the postmasters of this mode's clusters
  local c
  for c in "${CLUSTERS[@]}"; do
    case $c in "$TMP/$MODE-"*) head -1 "$c/data/postmaster.pid" ;; esac
  done
}

# smtp NODES: concurrent load generators (one per node), each its share of the messages.
smtp() {
  local nodes=$1 n p pids=() i hato0 pg0 trips0
  # shellcheck disable=SC2046  # one PID per word
  hato0=$(tree_ticks "${PIDS[@]}") pg0=$(tree_ticks $(pg_pids)) trips0=$(round_trips "$nodes")
  for n in $(seq 1 "$nodes"); do
    p=$((BASE_PORT + n * 10))
    "$SMTP_LOAD" --host 127.0.0.1 --port $((p + 1)) --connections $((CONNECTIONS / nodes)) \
      --messages $((MESSAGES / nodes)) --size "$SIZE" --rcpt "smtp$n@bench.test" \
      --from loadgen@bench.example --pop3-port $((p + 2)) --pop3-user "smtp$n@bench.test" \
      --pop3-pass "$PASS" --timeout 600 --json >"$TMP/$MODE-smtp$n.json" || true &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  sleep 1  # trailing work (the text indexer, POP3 logouts)
  local hato1 pg1 trips1
  # shellcheck disable=SC2046
  hato1=$(tree_ticks "${PIDS[@]}") pg1=$(tree_ticks $(pg_pids)) trips1=$(round_trips "$nodes")
  local accepted=0 e2e=0 to250=0 p50=0 p99=0 errors=0 j
  for n in $(seq 1 "$nodes"); do
    j=$(cat "$TMP/$MODE-smtp$n.json")
    case "$j" in "{"*) ;; *) echo "pg-bench: $MODE: smtp load failed" >&2; return 1 ;; esac
    accepted=$((accepted + $(jget accepted "$j")))
    errors=$((errors + $(jget errors "$j")))
    # (e2e: until the node's POP3 showed every accepted message)
    e2e=$(awk -v a="$e2e" -v b="$(jget e2e_s "$j")" 'BEGIN { print (b > a ? b : a) }')
    to250=$(awk -v a="$to250" -v b="$(jget elapsed_s "$j")" 'BEGIN { print (b > a ? b : a) }')
    p50=$(awk -v a="$p50" -v b="$(jget p50_ms "$j")" 'BEGIN { print (b > a ? b : a) }')
    p99=$(awk -v a="$p99" -v b="$(jget p99_ms "$j")" 'BEGIN { print (b > a ? b : a) }')
  done
  SMTP_RATE=$(awk -v n="$accepted" -v t="$to250" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }')
  SMTP_E2E=$(awk -v n="$accepted" -v t="$e2e" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }')
  SMTP_P50=$p50 SMTP_P99=$p99 SMTP_ERRORS=$errors
  per_msg() { awk -v d="$1" -v n="$accepted" -v k="$2" 'BEGIN { printf "%.2f", (n > 0 ? d * k / n : 0) }'; }
  HATO_CPU=$(per_msg $((hato1 - hato0)) "$(awk -v hz="$TICK" 'BEGIN { print 1000 / hz }')")
  PG_CPU=$(per_msg $((pg1 - pg0)) "$(awk -v hz="$TICK" 'BEGIN { print 1000 / hz }')")
  TRIPS=$(per_msg $((trips1 - trips0)) 1)
}

# imap NODES: prefill through node 1 (not timed), then the timed mix on every node at once.
imap() {
  local nodes=$1 n p pids=() i errors=0 j
  "$IMAP_LOAD" --host 127.0.0.1 --port $((BASE_PORT + 13)) --users "$IMAP_USERS" \
    --user-format "$FMT" --password "$PASS" --clients "$IMAP_CLIENTS" --prefill "$PREFILL" \
    --prefill-only --timeout 3600 --json >"$TMP/$MODE-prefill.json" || true
  for n in $(seq 1 "$nodes"); do
    p=$((BASE_PORT + n * 10))
    "$IMAP_LOAD" --host 127.0.0.1 --port $((p + 3)) --users "$IMAP_USERS" --user-format "$FMT" \
      --password "$PASS" --clients $((IMAP_CLIENTS / nodes)) --seconds "$IMAP_SECONDS" \
      --timeout 3600 --json >"$TMP/$MODE-imap$n.json" || true &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  local rate=0
  for n in $(seq 1 "$nodes"); do
    j=$(cat "$TMP/$MODE-imap$n.json")
    case "$j" in "{"*) ;; *) echo "pg-bench: $MODE: imap load failed" >&2; return 1 ;; esac
    rate=$(awk -v a="$rate" -v b="$(jget ops_per_s "$j")" 'BEGIN { print a + b }')
    errors=$((errors + $(jget errors "$j")))
  done
  IMAP_RATE=$(awk -v r="$rate" 'BEGIN { printf "%.0f", r }') IMAP_ERRORS=$errors
  IMAP_PREFILL_RATE=$(jget prefill_appends_per_s "$(cat "$TMP/$MODE-prefill.json")")
}

RESULTS=()
pg_port=$((BASE_PORT + 100))
for MODE in $MODES; do
  echo "pg-bench: $MODE..." >&2
  case $MODE in
    embedded)
      node_init 1 "" && users_add && serve 1 && nodes=1 ;;
    postgres)
      cluster "$MODE-pg" $pg_port
      node_init 1 "postgresql://postgres@127.0.0.1:$pg_port/hato" && users_add && serve 1
      nodes=1 ;;
    postgres-2nodes)
      cluster "$MODE-pg" $pg_port
      node_init 1 "postgresql://postgres@127.0.0.1:$pg_port/hato" && users_add
      node_init 2 "postgresql://postgres@127.0.0.1:$pg_port/hato"
      serve 1 && serve 2 && nodes=2 ;;
    sharded)
      cluster "$MODE-pg" $pg_port
      cluster "$MODE-pgb" $((pg_port + 1))
      node_init 1 "postgresql://postgres@127.0.0.1:$pg_port/hato" \
        "$(printf '[store.shards]\nb = "postgresql://postgres@127.0.0.1:%s/hato"' $((pg_port + 1)))"
      users_add && serve 1 && nodes=1 ;;
    *) echo "pg-bench: unknown mode $MODE" >&2; exit 2 ;;
  esac
  smtp "$nodes"
  IMAP_RATE=0 IMAP_ERRORS=0 IMAP_PREFILL_RATE=0
  [ "$WITH_IMAP" = 0 ] || imap "$nodes"
  stop_nodes
  pg_port=$((pg_port + 2))
  RESULTS+=("$MODE $SMTP_RATE $SMTP_E2E $SMTP_P50 $SMTP_P99 $SMTP_ERRORS $IMAP_PREFILL_RATE $IMAP_RATE $IMAP_ERRORS $HATO_CPU $PG_CPU $TRIPS")
done

printf '%-16s %10s %10s %8s %8s %7s %12s %10s %7s %9s %9s %9s\n' mode "msgs/s@250" "msgs/s e2e" \
  "p50 ms" "p99 ms" errors "appends/s" "imap ops/s" errors "hato ms" "pg ms" "trips"
json="["
for r in "${RESULTS[@]}"; do
  # shellcheck disable=SC2086
  set -- $r
  printf '%-16s %10s %10s %8s %8s %7s %12s %10s %7s %9s %9s %9s\n' "$@"
  json+="{\"mode\": \"$1\", \"smtp_msgs_per_s\": $2, \"smtp_e2e_msgs_per_s\": $3, \"p50_ms\": $4,"
  json+=" \"p99_ms\": $5, \"smtp_errors\": $6, \"imap_appends_per_s\": ${7:-0},"
  json+=" \"imap_ops_per_s\": $8, \"imap_errors\": $9, \"hato_cpu_ms_per_msg\": ${10},"
  json+=" \"pg_cpu_ms_per_msg\": ${11}, \"round_trips_per_msg\": ${12}},"
done
echo "${json%,}]" >"$BUILD/pg-bench-results.json"
echo "($MESSAGES messages of $SIZE bytes over $CONNECTIONS SMTP connections; IMAP: $IMAP_USERS users x $PREFILL messages, $IMAP_CLIENTS clients for $IMAP_SECONDS s; hato ms / pg ms: CPU per message of the nodes / the clusters; trips: database round trips per message)"
