#!/usr/bin/env bash
# SMTP benchmark: Hato vs Postfix+Dovecot, both on 127.0.0.1, driven by hato-smtp-load.
# Usage: bash bench/run.sh BUILD_DIR   (what `make bench` runs; needs root for Postfix+Dovecot)
# Env: BENCH_MESSAGES (5000), BENCH_CONNECTIONS (50), BENCH_SIZE (4096), BENCH_TIMEOUT (600 s),
# BENCH_MSGAUTH (0; 1 = Hato checks SPF/DKIM/DMARC of every message against a local test DNS),
# HATO_EVENT_LOOPS (Hato's --event-loops; unset: its configured default).
# Each server gets a fresh temp dir; server CPU is utime+stime+cutime+cstime from /proc of the
# server's whole process tree, sampled before and after the load. Prints a table and writes
# BUILD_DIR/bench-results.json. See bench/README.md.
set -euo pipefail

BUILD=$(cd "${1:?usage: bash bench/run.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MESSAGES=${BENCH_MESSAGES:-5000}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
SIZE=${BENCH_SIZE:-4096}
TIMEOUT=${BENCH_TIMEOUT:-600}
MSGAUTH=${BENCH_MSGAUTH:-0}
FROM=loadgen@hato-bench.example
LOAD=$BUILD/bench/hato-smtp-load
RCPT=bench@bench.test
PASS=bench-password
HATO_SMTP=22525 HATO_POP3=22110
PF_SMTP=23525 PF_LMTP=23024 PF_POP3=23110
TICK=$(getconf CLK_TCK)
MAIL_USER=hatobench

if [ ! -x "$LOAD" ]; then
  echo "bench: $LOAD not built (cmake --build $BUILD --target hato-smtp-load)" >&2
  exit 1
fi

# ---- cleanup: stop whatever we started, remove temp dirs ----
HATO_PID="" HATO_DIR="" PF_DIR="" DNS_PID=""
cleanup() {
  set +e
  if [ -n "$DNS_PID" ]; then kill -TERM "$DNS_PID" 2>/dev/null; wait "$DNS_PID" 2>/dev/null; fi
  if [ -n "$HATO_PID" ]; then kill -TERM "$HATO_PID" 2>/dev/null; wait "$HATO_PID" 2>/dev/null; fi
  if [ -n "$PF_DIR" ]; then
    local dpid
    stop_pid "$(pidfile "$PF_DIR/spool/pid/master.pid")" postfix -c "$PF_DIR/postfix" stop
    dpid=$(pidfile "$PF_DIR/dovecot/base/master.pid")
    stop_pid "$dpid" kill -TERM "$dpid"
  fi
  [ -n "$HATO_DIR" ] && rm -rf "$HATO_DIR"
  [ -n "$PF_DIR" ] && rm -rf "$PF_DIR"
  HATO_PID="" HATO_DIR="" PF_DIR="" DNS_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid PID CMD...: runs CMD to stop the daemon PID, waits up to 10 s, then SIGKILLs it.
stop_pid() {
  local pid=$1; shift
  [ -n "$pid" ] && alive "$pid" || return 0
  "$@" >/dev/null 2>&1 || true
  for _ in $(seq 100); do alive "$pid" || return 0; sleep 0.1; done
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
  echo "bench: nothing listening on 127.0.0.1:$1" >&2; return 1
}
ports_free() {
  local p
  for p in "$@"; do
    if port_open "$p"; then echo "bench: port 127.0.0.1:$p already in use" >&2; return 1; fi
  done
}

# shellcheck source=bench/tree_ticks.sh
source "$(dirname "$0")/tree_ticks.sh"  # tree_ticks PID...
source "$(dirname "$0")/loopback.sh"    # loopback_only TOML, only_loopback_listeners PID

# load PORT POP3PORT ROOTPID...: runs the load generator, prints its JSON extended with
# cpu_ms_per_msg for the process trees under ROOTPID...
load() {
  local port=$1 pop3=$2 out before after accepted; shift 2
  before=$(tree_ticks "$@")
  out=$("$LOAD" --host 127.0.0.1 --port "$port" --connections "$CONNECTIONS" \
    --messages "$MESSAGES" --size "$SIZE" --rcpt "$RCPT" --from "$FROM" --pop3-port "$pop3" \
    --pop3-user "$RCPT" --pop3-pass "$PASS" --timeout "$TIMEOUT" --json) || true
  sleep 1  # let the servers finish trailing work (queue cleanup, LMTP/POP3 logout)
  after=$(tree_ticks "$@")
  case "$out" in "{"*) ;; *) echo "bench: load generator failed" >&2; return 1 ;; esac
  accepted=$(jget accepted "$out")
  echo "${out%\}}, \"cpu_ms_per_msg\": $(awk -v t=$((after - before)) -v hz="$TICK" \
    -v n="$accepted" 'BEGIN { printf "%.3f", (n > 0 ? t * 1000 / hz / n : 0) }')}"
}
jget() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p" <<<"$2"; }  # flat JSON field

# ---- Hato ----
run_hato() {
  local hato=$BUILD/hato
  [ -x "$hato" ] || { echo "bench: $hato not built" >&2; return 1; }
  ports_free "$HATO_SMTP" "$HATO_POP3" || return 1
  HATO_DIR=$(mktemp -d /tmp/hato-bench.XXXXXX)
  if ! "$hato" init --data "$HATO_DIR/data" --domain bench.test >"$HATO_DIR/init.log" 2>&1 ||
    ! "$hato" user add "$RCPT" --password "$PASS" --data "$HATO_DIR/data" \
      >>"$HATO_DIR/init.log" 2>&1; then
    echo "bench: hato init/user add failed:" >&2; tail -20 "$HATO_DIR/init.log" >&2; return 1
  fi
  loopback_only "$HATO_DIR/data/hato.toml"
  if [ "$MSGAUTH" = 1 ]; then
    # The sender's SPF (pass from 127.0.0.1) and DMARC records on a local test DNS
    # (tests/integration/fakemx.py); Hato checks mail from loopback too.
    local dns_port=22053
    python3 -c "
import sys, time; sys.path.insert(0, '$ROOT/tests/integration'); import fakemx, logging
fakemx.free_port = lambda: $dns_port
d = fakemx.FakeDNS({'hato-bench.example': [('TXT', 'v=spf1 ip4:127.0.0.1 -all')],
                    '_dmarc.hato-bench.example': [('TXT', 'v=DMARC1; p=reject')]}, ttl=3600)
time.sleep(86400)" >/dev/null 2>&1 &
    DNS_PID=$!
    sed -i -e "s|^resolver = \"\"|resolver = \"127.0.0.1@$dns_port\"|" \
      -e "s|^check_loopback = false|check_loopback = true|" "$HATO_DIR/data/hato.toml"
    sleep 1
  fi
  "$hato" serve --data "$HATO_DIR/data" --smtp "127.0.0.1:$HATO_SMTP" \
    --pop3 "127.0.0.1:$HATO_POP3" ${HATO_EVENT_LOOPS:+--event-loops "$HATO_EVENT_LOOPS"} \
    2>"$HATO_DIR/hato.log" &
  HATO_PID=$!
  if ! wait_port "$HATO_SMTP" "$HATO_PID" || ! wait_port "$HATO_POP3" "$HATO_PID"; then
    echo "bench: hato serve did not start:" >&2; tail -20 "$HATO_DIR/hato.log" >&2; return 1
  fi
  only_loopback_listeners "$HATO_PID" || return 1
  hato_json=$(load "$HATO_SMTP" "$HATO_POP3" "$HATO_PID") ||
    { tail -20 "$HATO_DIR/hato.log" >&2; return 1; }
}

# ---- Postfix + Dovecot ----
run_postfix() {
  local d pf dv uid
  ports_free "$PF_SMTP" "$PF_LMTP" "$PF_POP3" || return 1
  id "$MAIL_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
  uid=$(id -u "$MAIL_USER")
  PF_DIR=$(mktemp -d /tmp/pfdc-bench.XXXXXX)
  d=$PF_DIR pf=$PF_DIR/postfix dv=$PF_DIR/dovecot
  chmod 755 "$d"  # the postfix and dovecot users must traverse it
  mkdir -p "$pf" "$d/spool" "$d/pfdata" "$dv/base" "$dv/state" "$d/mail"
  chown postfix "$d/pfdata"
  chown "$MAIL_USER:$MAIL_USER" "$d/mail"

  # Postfix: own config_directory, queue and data dirs; everything else default.
  cat >"$pf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/pfdata
maillog_file = $d/postfix.log
maillog_file_prefixes = $d
myhostname = postfix.bench.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = bench.test
virtual_transport = lmtp:inet:127.0.0.1:$PF_LMTP
local_recipient_maps =
alias_maps =
alias_database =
biff = no
EOF
  # The stock master.cf services, no chroot (no copies of /etc needed), SMTP on our port.
  cat >"$pf/master.cf" <<EOF
127.0.0.1:$PF_SMTP inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
lmtp       unix  - - n -  - lmtp
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
  # Dovecot: LMTP + POP3, static user db, Maildir owned by $MAIL_USER.
  cat >"$dv/dovecot.conf" <<EOF
protocols = lmtp pop3
listen = 127.0.0.1
base_dir = $dv/base
state_dir = $dv/state
log_path = $dv/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = $uid
mail_location = maildir:~/Maildir
passdb {
  driver = static
  args = password=$PASS
}
userdb {
  driver = static
  args = uid=$MAIL_USER gid=$MAIL_USER home=$d/mail/%d/%n
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $PF_LMTP
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $PF_POP3
  }
}
EOF
  dovecot -c "$dv/dovecot.conf" ||
    { echo "bench: dovecot failed to start" >&2; tail -20 "$dv/dovecot.log" >&2; return 1; }
  postfix -c "$pf" start >/dev/null 2>&1 ||
    { echo "bench: postfix failed to start" >&2; tail -20 "$d/postfix.log" >&2; return 1; }
  wait_port "$PF_SMTP" && wait_port "$PF_LMTP" && wait_port "$PF_POP3" || return 1
  pf_json=$(load "$PF_SMTP" "$PF_POP3" "$(pidfile "$d/spool/pid/master.pid")" \
    "$(pidfile "$dv/base/master.pid")") || return 1
}

echo "bench: $MESSAGES messages of $SIZE bytes over $CONNECTIONS connections" \
  "(Hato inbound checks: $([ "$MSGAUTH" = 1 ] && echo on || echo off))" >&2
status=0
echo "bench: running Hato..." >&2
hato_json="" pf_json=""
run_hato || { hato_json=""; status=1; }
cleanup
if command -v postfix >/dev/null && command -v dovecot >/dev/null &&
  [ -x /usr/lib/dovecot/lmtp ] && [ -x /usr/lib/dovecot/pop3 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "bench: running Postfix+Dovecot..." >&2
    run_postfix || { pf_json=""; status=1; }
    cleanup
  else
    echo "bench: Postfix+Dovecot needs root; skipped" >&2
  fi
else
  echo "bench: postfix/dovecot (dovecot-lmtpd, dovecot-pop3d) not installed; only Hato ran" \
    "(scripts/install-deps.sh --bench)" >&2
fi

# ---- report ----
row() {  # row NAME JSON
  if [ -z "$2" ]; then printf '%-16s %s\n' "$1" "failed or skipped"; return; fi
  local k v=()
  for k in msgs_per_s msgs_per_s_e2e p50_ms p99_ms cpu_ms_per_msg errors; do
    v+=("$(jget $k "$2")")
  done
  awk -v name="$1" -v v="${v[*]}" 'BEGIN {
    split(v, f, " ")
    printf "%-16s", name
    for (i = 1; i <= 5; i++) if (f[i] == "null") printf " %10s", "n/a"; else printf " %10.1f", f[i]
    printf " %7d\n", f[6] }'
}
ratio() {  # ratio KEY: Hato / Postfix+Dovecot, or null
  local a b
  a=$(jget "$1" "$hato_json") b=$(jget "$1" "$pf_json")
  awk -v a="$a" -v b="$b" 'BEGIN {
    if (a == "" || b == "" || a == "null" || b == "null" || b + 0 == 0) print "null";
    else printf "%.3g", a / b }'
}
echo
printf '%-16s %10s %10s %10s %10s %10s %7s\n' "" "msgs/s" "msgs/s" "p50" "p99" "CPU" "" \
  "server" "to 250" "end-to-end" "ms" "ms" "ms/msg" "errors"
row Hato "$hato_json"
row Postfix+Dovecot "$pf_json"
r_e2e=$(ratio msgs_per_s_e2e) r_cpu=$(ratio cpu_ms_per_msg)
echo "Hato/Postfix+Dovecot: end-to-end msgs/s x${r_e2e/null/n\/a}," \
  "CPU per message x${r_cpu/null/n\/a}"
cat >"$BUILD/bench-results.json" <<EOF
{"messages": $MESSAGES, "connections": $CONNECTIONS, "size": $SIZE,
 "hato": ${hato_json:-null},
 "postfix_dovecot": ${pf_json:-null},
 "ratio_e2e_msgs_per_s": $r_e2e, "ratio_cpu_ms_per_msg": $r_cpu}
EOF
echo "bench: results in $BUILD/bench-results.json" >&2
exit $status
