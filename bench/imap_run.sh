#!/usr/bin/env bash
# IMAP benchmark: Hato vs Dovecot, both on 127.0.0.1, driven by hato-imap-load, then the IDLE
# memory test driven by hato-idle-rss.
# Usage: bash bench/imap_run.sh BUILD_DIR   (run by `make bench`; Dovecot needs root)
# Env: IMAP_BENCH_USERS (10), IMAP_BENCH_CLIENTS (50), IMAP_BENCH_PREFILL (2000 messages per
# user), IMAP_BENCH_SECONDS (30), IDLE_CONNECTIONS (10000, to Hato), IDLE_CONNECTIONS_DOVECOT
# (1000; 0 skips), IMAP_BENCH_HATO_ONLY (set: skip Dovecot), HATO_EVENT_LOOPS (Hato's
# --event-loops; unset: its configured default), IMAP_BENCH_TIMEOUT (3600 s per load-generator run), IMAP_BENCH_KEEP (set:
# keep the temp dirs with data and logs), IMAP_BENCH_MIX (default; "list": only the list view,
# hato-imap-load --mix list), IMAP_BENCH_JMAP (set: after Hato's IMAP run, the same clients
# run the JMAP list view on the same data with hato-jmap-load; bench/jmap_bench.sh),
# IMAP_BENCH_RESULT (imap-bench-results.json: the results file in BUILD_DIR),
# IMAP_BENCH_DOVECOT_SCHEMES (PLAIN: Dovecot's password scheme, or a list such as
# "PLAIN ARGON2ID" to run Dovecot once per scheme; ARGON2ID hashes with Hato's parameters,
# m=19 MiB, t=2, p=1). IMAP_BENCH_MIX=login is the login load: every operation a new
# connection that logs in, selects, fetches and logs out. IMAP_BENCH_HATO_CREDENTIAL_CACHE=0
# turns Hato's credential cache off (every LOGIN an Argon2id check).
# Each server gets a fresh temp dir; both are prefilled identically through IMAP APPEND (not
# timed), then run the same timed mix. Server CPU is utime+stime+cutime+cstime from /proc of
# the server's process tree around the timed run. The memory test restarts each server on its
# prefilled data and reads VmRSS (and Pss) of its process tree before and with all IDLE
# connections open. Prints tables and writes BUILD_DIR/imap-bench-results.json. See
# bench/README.md.
set -euo pipefail
source "$(dirname "$0")/loopback.sh"  # loopback_only TOML, only_loopback_listeners PID

BUILD=$(cd "${1:?usage: bash bench/imap_run.sh BUILD_DIR}" && pwd)
USERS=${IMAP_BENCH_USERS:-10}
CLIENTS=${IMAP_BENCH_CLIENTS:-50}
PREFILL=${IMAP_BENCH_PREFILL:-2000}
SECONDS_=${IMAP_BENCH_SECONDS:-30}
IDLE_N=${IDLE_CONNECTIONS:-10000}
IDLE_DV=${IDLE_CONNECTIONS_DOVECOT:-1000}
TIMEOUT=${IMAP_BENCH_TIMEOUT:-3600}
MIX=${IMAP_BENCH_MIX:-default}
DV_SCHEMES=${IMAP_BENCH_DOVECOT_SCHEMES:-PLAIN}
JMAP=${IMAP_BENCH_JMAP:-}
LOAD=$BUILD/bench/hato-imap-load
JLOAD=$BUILD/bench/hato-jmap-load
IDLE=$BUILD/bench/hato-idle-rss
FMT='bench%d@bench.test'
PASS=bench-password
HATO_IMAP=22143
HATO_HTTP=22080
DV_IMAP=23143
TICK=$(getconf CLK_TCK)
MAIL_USER=hatobench

for t in "$LOAD" "$IDLE" ${JMAP:+"$JLOAD"}; do
  if [ ! -x "$t" ]; then
    echo "imap-bench: $t not built (cmake --build $BUILD --target hato-imap-load hato-idle-rss" \
      "hato-jmap-load)" >&2
    exit 1
  fi
done

# Thousands of connections: raise the open-file limit for us and every server we start.
ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
if [ "$NOFILE" -lt $((IDLE_N + 200)) ]; then
  echo "imap-bench: open-file limit is $NOFILE; IDLE_CONNECTIONS lowered to $((NOFILE - 200))" >&2
  IDLE_N=$((NOFILE - 200))
fi

# ---- cleanup: stop whatever we started, remove temp dirs ----
HATO_PID="" HATO_DIR="" DV_DIR="" IDLE_PID=""
stop_hato() {
  if [ -n "$HATO_PID" ]; then kill -TERM "$HATO_PID" 2>/dev/null; wait "$HATO_PID" 2>/dev/null; fi
  HATO_PID=""
}
stop_dovecot() {
  local dpid
  [ -n "$DV_DIR" ] || return 0
  dpid=$(pidfile "$DV_DIR/base/master.pid")
  stop_pid "$dpid" kill -TERM "$dpid"
}
cleanup() {
  set +e
  if [ -n "$IDLE_PID" ]; then kill -TERM "$IDLE_PID" 2>/dev/null; wait "$IDLE_PID" 2>/dev/null; fi
  IDLE_PID=""
  stop_hato
  stop_dovecot
  if [ -n "${IMAP_BENCH_KEEP:-}" ]; then
    [ -n "$HATO_DIR$DV_DIR" ] && echo "imap-bench: kept $HATO_DIR $DV_DIR" >&2
  else
    [ -n "$HATO_DIR" ] && rm -rf "$HATO_DIR"
    [ -n "$DV_DIR" ] && rm -rf "$DV_DIR"
  fi
  HATO_DIR="" DV_DIR=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid PID CMD...: runs CMD to stop the daemon PID, waits up to 20 s, then SIGKILLs it.
stop_pid() {
  local pid=$1; shift
  [ -n "$pid" ] && alive "$pid" || return 0
  "$@" >/dev/null 2>&1 || true
  for _ in $(seq 200); do alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
alive() {  # alive PID: exists and is not a zombie
  local s=""
  read -r s 2>/dev/null <"/proc/$1/stat" || return 1
  s=${s##*) }
  [ "${s:0:1}" != Z ]
}
pidfile() { local p=""; read -r p 2>/dev/null <"$1"; echo "$p"; }  # trims the padding
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {  # wait_port PORT [PID]: up to 15 s for a listener (while PID lives)
  for _ in $(seq 150); do
    port_open "$1" && return 0
    if [ -n "${2:-}" ] && ! alive "$2"; then break; fi
    sleep 0.1
  done
  echo "imap-bench: nothing listening on 127.0.0.1:$1" >&2; return 1
}
ports_free() {
  local p
  for p in "$@"; do
    if port_open "$p"; then echo "imap-bench: port 127.0.0.1:$p already in use" >&2; return 1; fi
  done
}

# tree PID...: the PIDs and all their descendants, one per line.
tree() {
  local -A kids=()
  local f line pid rest queue=("$@") p
  local -a c
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    pid=${line%% *}
    rest=${line##*) }
    read -r -a c <<<"$rest"
    kids[${c[1]}]+=" $pid"
  done
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    echo "$p"
    # shellcheck disable=SC2206  # word-splitting the child list is intended
    queue+=(${kids[$p]:-})
  done
}
# tree_ticks PID...: utime+stime+cutime+cstime (clock ticks) over the process trees.
tree_ticks() {
  local p line rest total=0
  local -a c
  for p in $(tree "$@"); do
    read -r line 2>/dev/null <"/proc/$p/stat" || continue
    rest=${line##*) }
    read -r -a c <<<"$rest"
    total=$((total + c[11] + c[12] + c[13] + c[14]))
  done
  echo "$total"
}
# tree_mem PID...: "RSS_KB PSS_KB PROCS" summed over the process trees.
tree_mem() {
  local p rss pss n=0 trss=0 tpss=0
  for p in $(tree "$@"); do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
    pss=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || pss=0
    [ -n "$rss" ] || continue  # kernel threads, exited processes
    trss=$((trss + rss)) tpss=$((tpss + ${pss:-0})) n=$((n + 1))
  done
  echo "$trss $tpss $n"
}
jget() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p" <<<"$2"; }  # flat JSON field

# load PORT NAME ROOTPID...: prefill (not timed), then the timed run with server CPU sampled
# around it; prints the timed run's JSON extended with prefill figures and cpu_ms_per_op.
load() {
  local port=$1 name=$2 pre out before after ops; shift 2
  echo "imap-bench: $name: prefilling $USERS users x $PREFILL messages..." >&2
  pre=$("$LOAD" --host 127.0.0.1 --port "$port" --users "$USERS" --user-format "$FMT" \
    --password "$PASS" --clients "$CLIENTS" --prefill "$PREFILL" --prefill-only \
    --timeout "$TIMEOUT" --json) || { echo "imap-bench: $name: prefill failed" >&2; return 1; }
  echo "imap-bench: $name: timed run, $CLIENTS clients for $SECONDS_ s..." >&2
  before=$(tree_ticks "$@")
  out=$("$LOAD" --host 127.0.0.1 --port "$port" --users "$USERS" --user-format "$FMT" \
    --password "$PASS" --clients "$CLIENTS" --seconds "$SECONDS_" --timeout "$TIMEOUT" \
    --mix "$MIX" --json) || true
  sleep 1
  after=$(tree_ticks "$@")
  case "$out" in "{"*) ;; *) echo "imap-bench: $name: load generator failed" >&2; return 1 ;; esac
  ops=$(jget ops "$out")
  echo "${out%\}}, \"prefill_appended\": $(jget prefill_appended "$pre"),"\
    "\"prefill_s\": $(jget prefill_s "$pre"),"\
    "\"prefill_appends_per_s\": $(jget prefill_appends_per_s "$pre"),"\
    "\"cpu_ms_per_op\": $(awk -v t=$((after - before)) -v hz="$TICK" -v n="$ops" \
      'BEGIN { printf "%.3f", (n > 0 ? t * 1000 / hz / n : 0) }')}"
}

# jmap_load PORT ROOTPID...: the JMAP list view (hato-jmap-load) by CLIENTS clients of the
# first user for SECONDS_ on the prefilled data, server CPU sampled around it; prints its JSON
# extended with cpu_ms_per_op.
jmap_load() {
  local port=$1 out before after ops; shift
  echo "imap-bench: Hato JMAP: timed run, $CLIENTS clients for $SECONDS_ s..." >&2
  before=$(tree_ticks "$@")
  out=$("$JLOAD" --host 127.0.0.1 --port "$port" --user "${FMT/\%d/1}" --password "$PASS" \
    --clients "$CLIENTS" --seconds "$SECONDS_" --timeout "$TIMEOUT" --json) || true
  sleep 1
  after=$(tree_ticks "$@")
  case "$out" in "{"*) ;; *) echo "imap-bench: Hato JMAP: load generator failed" >&2; return 1 ;; esac
  ops=$(jget ops "$out")
  echo "${out%\}}, \"cpu_ms_per_op\": $(awk -v t=$((after - before)) -v hz="$TICK" -v n="$ops" \
    'BEGIN { printf "%.3f", (n > 0 ? t * 1000 / hz / n : 0) }')}"
}

# idle_test PORT COUNT NAME ROOTPID...: opens COUNT IDLE connections; prints JSON with the
# server tree's memory before and with them open.
idle_test() {
  local port=$1 count=$2 name=$3 before after out rc=0 ready; shift 3
  sleep 1
  before=$(tree_mem "$@")
  ready=$(mktemp /tmp/imap-bench-ready.XXXXXX); rm -f "$ready"
  echo "imap-bench: $name: opening $count IDLE connections..." >&2
  out=$(mktemp /tmp/imap-bench-idle.XXXXXX)
  # 12 logins at a time: Hato lets one network have a quarter of
  # auth.max_pending_checks (64) password checks waiting; past that a login
  # gets NO [UNAVAILABLE] at once (server/isolation.h), which is right for a
  # flood but not what this test measures.
  "$IDLE" --host 127.0.0.1 --port "$port" --users "$USERS" --user-format "$FMT" \
    --password "$PASS" --connections "$count" --concurrency 12 --ready-file "$ready" \
    --json >"$out" &
  IDLE_PID=$!
  while [ ! -f "$ready" ] && alive "$IDLE_PID"; do sleep 0.5; done
  # Let the server settle (freed login buffers, lazy work): the steady state
  # of connections that idle for hours. Hato gives freed heap back every 5 s
  # (src/server/memory_trim.h); both servers get the same wait.
  sleep "${IDLE_SETTLE_SECONDS:-7}"
  after=$(tree_mem "$@")
  kill -USR1 "$IDLE_PID" 2>/dev/null || true
  wait "$IDLE_PID" || rc=$?
  IDLE_PID=""
  rm -f "$ready"
  local res; res=$(cat "$out"); rm -f "$out"
  case "$res" in "{"*) ;; *) echo "imap-bench: $name: idle test failed" >&2; return 1 ;; esac
  [ "$rc" -eq 0 ] || echo "imap-bench: $name: some IDLE connections failed (see JSON)" >&2
  read -r b_rss b_pss b_n <<<"$before"
  read -r a_rss a_pss a_n <<<"$after"
  local idling; idling=$(jget idling "$res")
  echo "${res%\}}, \"rss_before_kb\": $b_rss, \"rss_after_kb\": $a_rss," \
    "\"pss_before_kb\": $b_pss, \"pss_after_kb\": $a_pss," \
    "\"processes_before\": $b_n, \"processes_after\": $a_n," \
    "\"rss_per_conn_kb\": $(awk -v a="$a_rss" -v b="$b_rss" -v n="$idling" \
      'BEGIN { printf "%.2f", (n > 0 ? (a - b) / n : 0) }')," \
    "\"pss_per_conn_kb\": $(awk -v a="$a_pss" -v b="$b_pss" -v n="$idling" \
      'BEGIN { printf "%.2f", (n > 0 ? (a - b) / n : 0) }')}"
}

# ---- Hato ----
start_hato() {
  # The HTTP listener on its own port always: the configured 8080 may be taken on a busy machine.
  "$BUILD/hato" serve --data "$HATO_DIR/data" --imap "127.0.0.1:$HATO_IMAP" \
    --http "127.0.0.1:$HATO_HTTP" \
    ${HATO_EVENT_LOOPS:+--event-loops "$HATO_EVENT_LOOPS"} 2>>"$HATO_DIR/hato.log" &
  HATO_PID=$!
  if ! wait_port "$HATO_IMAP" "$HATO_PID"; then
    echo "imap-bench: hato serve did not start:" >&2; tail -20 "$HATO_DIR/hato.log" >&2; return 1
  fi
  only_loopback_listeners "$HATO_PID"
}
run_hato() {
  local hato=$BUILD/hato i
  [ -x "$hato" ] || { echo "imap-bench: $hato not built" >&2; return 1; }
  ports_free "$HATO_IMAP" "$HATO_HTTP" || return 1
  HATO_DIR=$(mktemp -d /tmp/hato-imap-bench.XXXXXX)
  if ! "$hato" init --data "$HATO_DIR/data" --domain bench.test >"$HATO_DIR/init.log" 2>&1; then
    echo "imap-bench: hato init failed:" >&2; tail -20 "$HATO_DIR/init.log" >&2; return 1
  fi
  loopback_only "$HATO_DIR/data/hato.toml"
  for i in $(seq "$USERS"); do
    "$hato" user add "${FMT/\%d/$i}" --password "$PASS" --data "$HATO_DIR/data" \
      >>"$HATO_DIR/init.log" 2>&1 ||
      { echo "imap-bench: hato user add failed:" >&2; tail -5 "$HATO_DIR/init.log" >&2; return 1; }
  done
  # The memory test needs more than the default 5000 IMAP connections, and
  # more sessions per account than the default 100 (IDLE_N over USERS accounts).
  sed -i -e "s/^max_connections = 5000 /max_connections = $((IDLE_N + CLIENTS + 100)) /" \
    -e "s/^max_sessions_per_account = [0-9]*/max_sessions_per_account = $((IDLE_N + CLIENTS))/" \
    "$HATO_DIR/data/hato.toml"
  if [ "${IMAP_BENCH_HATO_CREDENTIAL_CACHE:-1}" = 0 ]; then
    sed -i -e "s/^credential_cache_entries = [0-9]*/credential_cache_entries = 0/" \
      "$HATO_DIR/data/hato.toml"
  fi
  if [ -n "$JMAP" ]; then  # CLIENTS requests at once from one address, for one account
    sed -i -e "s/^max_connections_per_ip = [0-9]*/max_connections_per_ip = $((CLIENTS + 100))/" \
      -e "s/^max_requests = [0-9]*/max_requests = $((CLIENTS + 100))/" \
      -e "s/^max_requests_per_ip = [0-9]*/max_requests_per_ip = $((CLIENTS + 100))/" \
      -e "s/^max_concurrent_requests = [0-9]*/max_concurrent_requests = $((CLIENTS + 10))/" \
      "$HATO_DIR/data/hato.toml"
  fi
  start_hato || return 1
  hato_json=$(load "$HATO_IMAP" Hato "$HATO_PID") ||
    { tail -20 "$HATO_DIR/hato.log" >&2; return 1; }
  if [ -n "$JMAP" ]; then
    wait_port "$HATO_HTTP" "$HATO_PID" || return 1
    hato_jmap=$(jmap_load "$HATO_HTTP" "$HATO_PID") ||
      { tail -20 "$HATO_DIR/hato.log" >&2; return 1; }
  fi
  alive "$HATO_PID" || { echo "imap-bench: hato died:" >&2; tail -20 "$HATO_DIR/hato.log" >&2; return 1; }
  if [ "$IDLE_N" -gt 0 ]; then
    stop_hato  # a fresh process on the prefilled data
    start_hato || return 1
    hato_idle=$(idle_test "$HATO_IMAP" "$IDLE_N" Hato "$HATO_PID") || return 1
    alive "$HATO_PID" ||
      { echo "imap-bench: hato died:" >&2; tail -20 "$HATO_DIR/hato.log" >&2; return 1; }
  fi
}

# ---- Dovecot ----
start_dovecot() {
  dovecot -c "$DV_DIR/dovecot.conf" ||
    { echo "imap-bench: dovecot failed to start" >&2; tail -20 "$DV_DIR/dovecot.log" >&2; return 1; }
  wait_port "$DV_IMAP" || return 1
  DV_PID=$(pidfile "$DV_DIR/base/master.pid")
}
# dovecot_password SCHEME: the passwd-file password field for $PASS in SCHEME.
dovecot_password() {
  case "$1" in
    PLAIN) echo "{PLAIN}$PASS" ;;
    ARGON2ID)  # Hato's Argon2id cost (src/auth/password.h): 19 MiB, 2 passes, 1 lane
      echo "{ARGON2ID}$(/usr/bin/python3 -c 'import sys, nacl.pwhash as p
print(p.argon2id.str(sys.argv[1].encode(), opslimit=2, memlimit=19 * 1024 * 1024).decode())' \
        "$PASS")" ;;
    *) echo "imap-bench: unknown Dovecot scheme $1 (PLAIN or ARGON2ID)" >&2; return 1 ;;
  esac
}
# run_dovecot SCHEME IDLE: prefill and time Dovecot with passwords in SCHEME; IDLE=1 also
# runs the IDLE memory test.
run_dovecot() {
  local scheme=$1 with_idle=$2 d uid gid i limit password
  ports_free "$DV_IMAP" || return 1
  id "$MAIL_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
  uid=$(id -u "$MAIL_USER") gid=$(id -g "$MAIL_USER")
  DV_DIR=$(mktemp -d /tmp/dovecot-imap-bench.XXXXXX)
  d=$DV_DIR
  chmod 755 "$d"  # the dovecot users must traverse it
  mkdir -p "$d/base" "$d/state" "$d/mail"
  chown "$MAIL_USER:$MAIL_USER" "$d/mail"
  password=$(dovecot_password "$scheme") || return 1
  for i in $(seq "$USERS"); do
    echo "${FMT/\%d/$i}:$password:$uid:$gid::$d/mail/bench$i::"
  done >"$d/users"
  chmod 644 "$d/users"
  limit=$((CLIENTS + IDLE_DV + 100))
  [ "$limit" -ge 100 ] || limit=100
  # Stock settings except: our own dirs and port, plaintext LOGIN over loopback without TLS,
  # process/connection limits raised above the client counts, Archive and Trash created.
  cat >"$d/dovecot.conf" <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $d/base
state_dir = $d/state
log_path = $d/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = $uid
mail_location = maildir:~/Maildir
default_process_limit = $limit
default_client_limit = $((limit * 4))
passdb {
  driver = passwd-file
  args = scheme=PLAIN $d/users
}
userdb {
  driver = passwd-file
  args = $d/users
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Archive {
    auto = subscribe
    special_use = \\Archive
  }
  mailbox Trash {
    auto = subscribe
    special_use = \\Trash
  }
  mailbox Sent {
    auto = subscribe
    special_use = \\Sent
  }
  mailbox Drafts {
    auto = subscribe
    special_use = \\Drafts
  }
  mailbox Junk {
    auto = subscribe
    special_use = \\Junk
  }
}
protocol imap {
  mail_max_userip_connections = $((CLIENTS + IDLE_DV + 100))
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DV_IMAP
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
  start_dovecot || return 1
  dv_json=$(load "$DV_IMAP" "Dovecot ($scheme)" "$DV_PID") ||
    { tail -20 "$d/dovecot.log" >&2; return 1; }
  if [ "$with_idle" = 1 ] && [ "$IDLE_DV" -gt 0 ]; then
    stop_dovecot  # a fresh instance on the prefilled Maildirs
    start_dovecot || return 1
    dv_idle=$(idle_test "$DV_IMAP" "$IDLE_DV" Dovecot "$DV_PID") ||
      { tail -20 "$d/dovecot.log" >&2; return 1; }
  fi
}

echo "imap-bench: $USERS users, $PREFILL messages each, $CLIENTS clients, $SECONDS_ s;" \
  "IDLE test: $IDLE_N connections to Hato, $IDLE_DV to Dovecot (open-file limit $NOFILE)" >&2
status=0
hato_json="" dv_json="" hato_idle="" dv_idle="" DV_PID="" hato_jmap="" dv_schemes="" dv_first=""
echo "imap-bench: running Hato..." >&2
run_hato || status=1
cleanup
if [ -n "${IMAP_BENCH_HATO_ONLY:-}" ]; then
  echo "imap-bench: IMAP_BENCH_HATO_ONLY set; Dovecot skipped" >&2
elif command -v dovecot >/dev/null && [ -x /usr/lib/dovecot/imap ]; then
  if [ "$(id -u)" -eq 0 ]; then
    first=1
    for scheme in $DV_SCHEMES; do
      echo "imap-bench: running Dovecot (passwords in $scheme)..." >&2
      dv_json=""
      run_dovecot "$scheme" "$first" || status=1
      cleanup
      [ "$first" = 1 ] && dv_first=$dv_json
      dv_schemes="$dv_schemes${dv_schemes:+, }\"$scheme\": ${dv_json:-null}"
      first=0
    done
    dv_json=$dv_first
  else
    echo "imap-bench: Dovecot needs root; skipped" >&2
  fi
else
  echo "imap-bench: dovecot-imapd not installed; only Hato ran (scripts/install-deps.sh --bench)" >&2
fi
[ -n "$hato_json" ] || status=1

# ---- report ----
RESULT=$BUILD/${IMAP_BENCH_RESULT:-imap-bench-results.json}
cat >"$RESULT" <<EOF
{"users": $USERS, "clients": $CLIENTS, "prefill": $PREFILL, "seconds": $SECONDS_,
 "mix": "$MIX",
 "hato": ${hato_json:-null},
 "hato_jmap": ${hato_jmap:-null},
 "dovecot": ${dv_json:-null},
 "dovecot_schemes": {$dv_schemes},
 "idle": {"hato": ${hato_idle:-null}, "dovecot": ${dv_idle:-null}}}
EOF
python3 - "$RESULT" <<'EOF' || status=1
import json, sys
path = sys.argv[1]
r = json.load(open(path))
h, d = r["hato"], r["dovecot"]
def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None
r["ratio_ops_per_s"] = ratio(h and h["ops_per_s"], d and d["ops_per_s"])
json.dump(r, open(path, "w"), indent=1)

def cell(x, key, fmt="{:.1f}"):
    return "failed" if x is None else fmt.format(x[key])
print()
print(f"IMAP load: {r['users']} users x {r['prefill']} messages, {r['clients']} clients, "
      f"{r['seconds']} s")
print(f"{'':26} {'Hato':>18} {'Dovecot':>18}")
for label, key, fmt in [("ops/s", "ops_per_s", "{:.1f}"),
                        ("errors (NO/BAD/IO)", "errors", "{}"),
                        ("server CPU ms/op", "cpu_ms_per_op", "{:.3f}"),
                        ("client CPU s", "client_cpu_s", "{:.1f}"),
                        ("prefill APPEND/s", "prefill_appends_per_s", "{:.1f}"),
                        ("INBOX avg at end", "inbox_end_avg", "{:.0f}")]:
    print(f"{label:26} {cell(h, key, fmt):>18} {cell(d, key, fmt):>18}")
print(f"{'p50 / p99 ms':26} {'':>18} {'':>18}")
names = list((h or d or {"commands": {}})["commands"].keys())
for n in names:
    def lat(x):
        if x is None:
            return "failed"
        c = x["commands"][n]
        s = f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f}"
        return s + (f" ({c['no'] + c['bad']} err)" if c["no"] + c["bad"] else "")
    print(f"  {n + ' (' + str((h or d)['commands'][n]['weight']) + '%)':24} {lat(h):>18} {lat(d):>18}")
rt = r["ratio_ops_per_s"]
print(f"Hato/Dovecot ops/s: x{rt if rt is not None else 'n/a'} (goal >= 2)")
if r["mix"] == "login":
    # Each SESSION is session_commands IMAP commands (LOGIN, SELECT, FETCH, LOGOUT).
    def cmds(x):
        return x["commands"]["SESSION"]["per_s"] * x["session_commands"] if x else None
    print()
    print("Login load: IMAP commands/s (each SESSION: a new connection, LOGIN, SELECT, FETCH, LOGOUT)")
    hc = cmds(h)
    import os
    cache = "off" if os.environ.get("IMAP_BENCH_HATO_CREDENTIAL_CACHE") == "0" else "on"
    label = f"Hato (Argon2id, credential cache {cache})"
    print(f"  {label:40} {hc:10.1f}" if hc else "  Hato failed")
    for scheme, x in r["dovecot_schemes"].items():
        dc = cmds(x)
        if dc:
            print(f"  {'Dovecot (' + scheme + ')':40} {dc:10.1f}   Hato x{hc / dc:.2f}"
                  f"   server CPU ms/session {x['cpu_ms_per_op']:.3f}")
        else:
            print(f"  Dovecot ({scheme}) failed")
    if h:
        print(f"  Hato server CPU ms/session {h['cpu_ms_per_op']:.3f}; goal: Hato >= 2x Dovecot (PLAIN)")
for x, name in ((h, "Hato"), (d, "Dovecot")):
    if x and x.get("error_samples"):
        print(f"{name} errors: " + "; ".join(x["error_samples"][:5]))

print()
print("IDLE memory (server process tree, VmRSS / Pss from /proc, before and with connections open)")
print(f"{'':10} {'conns':>7} {'idling':>7} {'RSS before':>11} {'RSS after':>11} {'RSS/conn':>10} {'Pss/conn':>10} {'procs':>6}")
for name in ("hato", "dovecot"):
    x = r["idle"][name]
    if x is None:
        print(f"{name.capitalize():10} failed or skipped")
        continue
    print(f"{name.capitalize():10} {x['connections']:7} {x['idling']:7} {x['rss_before_kb']:>8} kB "
          f"{x['rss_after_kb']:>8} kB {x['rss_per_conn_kb']:>7.1f} kB {x['pss_per_conn_kb']:>7.1f} kB "
          f"{x['processes_after']:>6}")
    if x["idling"] != x["connections"] or x["done_failed"]:
        print(f"  {name}: {x['connections'] - x['idling']} failed to set up, "
              f"{x['done_failed']} dead after the hold; first error: {x['first_error']}")
hi = r["idle"]["hato"]
if hi:
    print(f"Hato RSS per IDLE connection: {hi['rss_per_conn_kb']:.1f} kB (goal <= 16 kB)")
j = r.get("hato_jmap")
if j:
    print()
    print(f"JMAP list view on Hato (Email/query sort receivedAt desc limit {j['limit']} + "
          f"Email/get with preview), {j['messages']} Emails, {j['clients']} clients")
    print(f"  requests/s {j['ops_per_s']:.1f}, p50 {j['p50_ms']:.2f} ms, p99 {j['p99_ms']:.2f} ms, "
          f"errors {j['errors'] + j['io_errors']}, server CPU {j['cpu_ms_per_op']:.3f} ms/request, "
          f"client CPU {j['client_cpu_s']:.1f} s")
    dl = d and d["commands"].get("LIST_VIEW")
    if dl and dl["count"]:
        print(f"  Dovecot IMAP list view: {dl['per_s']:.1f}/s, p50 {dl['p50_ms']:.2f} ms, "
              f"p99 {dl['p99_ms']:.2f} ms; Hato JMAP / Dovecot IMAP: "
              f"x{j['ops_per_s'] / dl['per_s']:.2f} (goal >= 2; p50 < 20 ms, p99 < 100 ms)")
    for s in j.get("error_samples", [])[:5]:
        print(f"  JMAP error: {s}")
EOF
echo "imap-bench: results in $RESULT" >&2
exit $status
