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
# temp dirs), PG_BENCH_PROFILE (1: load pg_stat_statements in the clusters and print, for the
# SMTP load of each mode, where PostgreSQL's time goes: the statements by execution + planning
# time per message (top-level ones summed; a nested one, run by a trigger or function, is also
# inside its caller's time), calls per message, transactions and WAL flushes per message; written to
# TMP/MODE-profile.txt and printed).
# Durability is the same everywhere: Hato's group commit with fsync (embedded), PostgreSQL with
# fsync = on and synchronous_commit = on (the defaults; no standby here). Two nodes: each node
# gets half the SMTP connections (to its own recipient, checked over its own POP3) and half the
# IMAP clients; the figures are the sums. Around the SMTP load it samples the CPU of the Hato
# nodes and of the PostgreSQL clusters (process trees, /proc) and the nodes' database round
# trips (hato_store_database_round_trips_total at /metrics), per accepted message, and the load
# generators' CPU (bash's `times`); and prints where the machine's CPU went during the load
# (seconds: each node, PostgreSQL, the load generators, everything else, idle; TMP/MODE-cpu.txt),
# which shows whether the cores or the database are the limit.
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
PROFILE=${PG_BENCH_PROFILE:-0}
PROFILE_OPTS=""
[ "$PROFILE" = 0 ] || PROFILE_OPTS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c track_io_timing=on"
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
    "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 $PROFILE_OPTS ${PG_BENCH_PG_OPTS:-}" \
    start >/dev/null
  CLUSTERS+=("$dir")
  psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE hato" >/dev/null
  [ "$PROFILE" = 0 ] ||
    psql -h 127.0.0.1 -p "$port" -U postgres -d hato -qc "CREATE EXTENSION pg_stat_statements" >/dev/null
}
pg_ports() {  # the ports of this mode's clusters
  local c
  for c in "${CLUSTERS[@]}"; do
    case $c in "$TMP/$MODE-"*) sed -n 4p "$c/data/postmaster.pid" ;; esac
  done
}
# profile_reset / profile_report ACCEPTED: pg_stat_statements and the WAL and
# transaction counters around the SMTP load (PG_BENCH_PROFILE=1).
profile_reset() {
  local port
  for port in $(pg_ports); do
    psql -h 127.0.0.1 -p "$port" -U postgres -d hato -qAt \
      -c "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset_shared('wal'); SELECT pg_stat_reset();" >/dev/null
    psql -h 127.0.0.1 -p "$port" -U postgres -d hato -qAt -c "SELECT pg_current_wal_lsn()" \
      >"$TMP/wal-start-$port"
  done
}
# wal_stats PORT: the WAL written since profile_reset by record type (pg_waldump --stats).
wal_stats() {
  local port=$1 c end
  for c in "${CLUSTERS[@]}"; do
    [ "$(sed -n 4p "$c/data/postmaster.pid")" = "$port" ] || continue
    end=$(psql -h 127.0.0.1 -p "$port" -U postgres -d hato -qAt -c "SELECT pg_current_wal_lsn()")
    echo "-- WAL by record type ($(cat "$TMP/wal-start-$port") .. $end):"
    as_pg "$PG_BIN/pg_waldump" -p "$c/data/pg_wal" -s "$(cat "$TMP/wal-start-$port")" -e "$end" \
      --stats=record 2>/dev/null | head -60 || true
  done
}
profile_report() {
  local n=$1 port
  for port in $(pg_ports); do
    echo "== $MODE, cluster on port $port, per accepted message ($n):"
    psql -h 127.0.0.1 -p "$port" -U postgres -d hato -q -P pager=off -c "
      SELECT round(sum(total_exec_time + total_plan_time)::numeric / $n, 3) AS ms_per_msg,
             round(sum(total_plan_time)::numeric / $n, 3) AS plan_ms_per_msg,
             round(sum(calls)::numeric / $n, 2) AS statements_per_msg
      FROM pg_stat_statements WHERE toplevel;
      SELECT round(xact_commit::numeric / $n, 3) AS commits_per_msg,
             round(xact_rollback::numeric / $n, 3) AS rollbacks_per_msg
      FROM pg_stat_database WHERE datname = 'hato';
      SELECT round(wal_sync::numeric / $n, 3) AS wal_flushes_per_msg,
             round(wal_records::numeric / $n, 1) AS wal_records_per_msg,
             round(wal_bytes::numeric / $n) AS wal_bytes_per_msg,
             round(wal_sync_time::numeric / $n, 3) AS wal_flush_ms_per_msg
      FROM pg_stat_wal;
      SELECT round(((total_exec_time + total_plan_time) / $n)::numeric, 3) AS ms_per_msg,
             round(calls::numeric / $n, 2) AS calls_per_msg,
             round((mean_exec_time + mean_plan_time)::numeric, 3) AS ms_per_call,
             CASE WHEN toplevel THEN 'top' ELSE 'nested' END AS level,
             regexp_replace(left(query, 110), '\s+', ' ', 'g') AS query
      FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 25;"
    psql -h 127.0.0.1 -p "$port" -U postgres -d hato -q -P pager=off -c "
      SELECT c.relname, c.reltuples::bigint AS rows, pg_relation_size(c.oid) AS heap_bytes,
             coalesce(pg_relation_size(c.reltoastrelid), 0) AS toast_bytes,
             pg_indexes_size(c.oid) AS index_bytes
      FROM pg_class c WHERE c.relname IN ('messages', 'blobs', 'blob_chunks', 'blob_text',
        'mailboxes', 'mailbox_threads') ORDER BY 1;"
    wal_stats "$port"
  done
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
machine_ticks() {  # "busy idle": the whole machine's CPU ticks so far (/proc/stat)
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat
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
  [ "$PROFILE" = 0 ] || profile_reset
  # shellcheck disable=SC2046  # one PID per word
  hato0=$(tree_ticks "${PIDS[@]}") pg0=$(tree_ticks $(pg_pids)) trips0=$(round_trips "$nodes")
  local node0=() node1=() machine0 machine1 wall0 wall1
  for p in "${PIDS[@]}"; do node0+=("$(tree_ticks "$p")"); done
  machine0=$(machine_ticks) wall0=$(date +%s.%N)
  for n in $(seq 1 "$nodes"); do
    p=$((BASE_PORT + n * 10))
    # `times` (children: the load generator) gives its CPU time.
    (
      "$SMTP_LOAD" --host 127.0.0.1 --port $((p + 1)) --connections $((CONNECTIONS / nodes)) \
        --messages $((MESSAGES / nodes)) --size "$SIZE" --rcpt "smtp$n@bench.test" \
        --from loadgen@bench.example --pop3-port $((p + 2)) --pop3-user "smtp$n@bench.test" \
        --pop3-pass "$PASS" --timeout 600 --json >"$TMP/$MODE-smtp$n.json" || true
      times >"$TMP/$MODE-smtp$n.times"
    ) &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  sleep 1  # trailing work (the text indexer, POP3 logouts)
  local hato1 pg1 trips1
  # shellcheck disable=SC2046
  hato1=$(tree_ticks "${PIDS[@]}") pg1=$(tree_ticks $(pg_pids)) trips1=$(round_trips "$nodes")
  for p in "${PIDS[@]}"; do node1+=("$(tree_ticks "$p")"); done
  machine1=$(machine_ticks) wall1=$(date +%s.%N)
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
  # Where the CPU went during the load (seconds): each node, PostgreSQL, the
  # load generators, the rest of the machine (other users), idle.
  local gen=0 k line
  for n in $(seq 1 "$nodes"); do
    line=$(sed -n 2p "$TMP/$MODE-smtp$n.times" 2>/dev/null)  # children: "XmY.YYYs XmY.YYYs"
    gen=$(awk -v g="$gen" -v l="$line" 'BEGIN { split(l, f, " "); t = g
      for (i = 1; i <= 2; i++) { split(f[i], ms, "m"); sub("s", "", ms[2]); t += ms[1] * 60 + ms[2] }
      printf "%.2f", t }')
  done
  {
    printf '== %s: CPU seconds during the SMTP load (%s messages accepted, %s s wall, %s cores)\n' \
      "$MODE" "$accepted" "$(awk -v a="$wall0" -v b="$wall1" 'BEGIN { printf "%.1f", b - a }')" \
      "$(nproc)"
    local ours=0
    for k in "${!node0[@]}"; do
      printf '  node %d: %.2f\n' $((k + 1)) "$(awk -v t=$((node1[k] - node0[k])) -v hz="$TICK" 'BEGIN { print t / hz }')"
    done
    printf '  postgres: %.2f\n' "$(awk -v t=$((pg1 - pg0)) -v hz="$TICK" 'BEGIN { print t / hz }')"
    printf '  load generators: %.2f\n' "$gen"
    ours=$(awk -v h=$((hato1 - hato0)) -v p=$((pg1 - pg0)) -v g="$gen" -v hz="$TICK" 'BEGIN { print (h + p) / hz + g }')
    # shellcheck disable=SC2086  # "busy idle" in ticks
    set -- $machine0 $machine1
    printf '  everything else on the machine: %.2f\n' "$(awk -v b=$(($3 - $1)) -v o="$ours" -v hz="$TICK" 'BEGIN { print b / hz - o }')"
    printf '  idle: %.2f\n' "$(awk -v i=$(($4 - $2)) -v hz="$TICK" 'BEGIN { print i / hz }')"
  } | tee "$TMP/$MODE-cpu.txt" >&2
  LOADGEN_CPU=$(awk -v g="$gen" -v n="$accepted" 'BEGIN { printf "%.2f", (n > 0 ? g * 1000 / n : 0) }')
  if [ "$PROFILE" != 0 ] && [ "$accepted" -gt 0 ] && [ "$MODE" != embedded ]; then
    profile_report "$accepted" | tee "$TMP/$MODE-profile.txt" >&2
  fi
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
  RESULTS+=("$MODE $SMTP_RATE $SMTP_E2E $SMTP_P50 $SMTP_P99 $SMTP_ERRORS $IMAP_PREFILL_RATE $IMAP_RATE $IMAP_ERRORS $HATO_CPU $PG_CPU $TRIPS $LOADGEN_CPU")
done

printf '%-16s %10s %10s %8s %8s %7s %12s %10s %7s %9s %9s %9s %9s\n' mode "msgs/s@250" "msgs/s e2e" \
  "p50 ms" "p99 ms" errors "appends/s" "imap ops/s" errors "hato ms" "pg ms" "trips" "load ms"
json="["
for r in "${RESULTS[@]}"; do
  # shellcheck disable=SC2086
  set -- $r
  printf '%-16s %10s %10s %8s %8s %7s %12s %10s %7s %9s %9s %9s %9s\n' "$@"
  json+="{\"mode\": \"$1\", \"smtp_msgs_per_s\": $2, \"smtp_e2e_msgs_per_s\": $3, \"p50_ms\": $4,"
  json+=" \"p99_ms\": $5, \"smtp_errors\": $6, \"imap_appends_per_s\": ${7:-0},"
  json+=" \"imap_ops_per_s\": $8, \"imap_errors\": $9, \"hato_cpu_ms_per_msg\": ${10},"
  json+=" \"pg_cpu_ms_per_msg\": ${11}, \"round_trips_per_msg\": ${12},"
  json+=" \"loadgen_cpu_ms_per_msg\": ${13}},"
done
echo "${json%,}]" >"$BUILD/pg-bench-results.json"
echo "($MESSAGES messages of $SIZE bytes over $CONNECTIONS SMTP connections; IMAP: $IMAP_USERS users x $PREFILL messages, $IMAP_CLIENTS clients for $IMAP_SECONDS s; hato ms / pg ms / load ms: CPU per message of the nodes / the clusters / the load generators; trips: database round trips per message)"
