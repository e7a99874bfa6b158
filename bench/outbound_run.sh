#!/usr/bin/env bash
# Outbound benchmark: N messages (default 10,000) over D destination domains (default 100),
# submitted on 127.0.0.1 and relayed to Postfix's smtp-sink, through Hato and through Postfix.
# Usage: bash bench/outbound_run.sh BUILD_DIR   (needs root for Postfix; `make bench` runs it)
# Env: BENCH_OUT_MESSAGES (10000), BENCH_OUT_DOMAINS (100), BENCH_CONNECTIONS (20),
#      BENCH_SIZE (4096), BENCH_TIMEOUT (600 s).
#
# Hato: submission with AUTH PLAIN; MX lookups of d0..d(D-1).bench-remote.example through a
# local test DNS server (python3-dnslib, tests/integration/fakemx.py) whose MX records point
# at 127.0.0.1, where smtp-sink listens; outbound.max_connections 100, 10 per destination.
# Postfix: the same messages accepted from mynetworks and relayed to the same sink
# (relayhost [127.0.0.1]:SINK, smtp_destination_concurrency_limit 100): Postfix cannot be
# pointed at a test DNS server without changing the system resolver.
# Timed: from the first message submitted until smtp-sink has received all N (-M N makes it
# exit). Prints messages/s for both and the ratio.
set -euo pipefail

BUILD=$(cd "${1:?usage: bash bench/outbound_run.sh BUILD_DIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/loopback.sh"  # loopback_only TOML, only_loopback_listeners PID
MESSAGES=${BENCH_OUT_MESSAGES:-10000}
DOMAINS=${BENCH_OUT_DOMAINS:-100}
CONNECTIONS=${BENCH_CONNECTIONS:-20}
SIZE=${BENCH_SIZE:-4096}
TIMEOUT=${BENCH_TIMEOUT:-600}
LOAD=$BUILD/bench/hato-smtp-load
HATO=$BUILD/hato
SINK=24025 HATO_SUB=24587 HATO_SMTP=24026 HATO_POP3=24110 HATO_IMAP=24143 PF_SMTP=24525
SENDER=sender@bench.test PASS=bench-password RCPT=rcpt@bench-remote.example

for b in "$LOAD" "$HATO"; do
  [ -x "$b" ] || { echo "outbound-bench: $b not built" >&2; exit 1; }
done
command -v smtp-sink >/dev/null || { echo "outbound-bench: smtp-sink (postfix) missing" >&2; exit 1; }

WORK=$(mktemp -d /tmp/hato-outbench.XXXXXX)
chmod 755 "$WORK"
SINK_PID="" HATO_PID="" DNS_PID="" PF_UP=""
cleanup() {
  set +e
  [ -n "$HATO_PID" ] && kill -TERM "$HATO_PID" 2>/dev/null && wait "$HATO_PID" 2>/dev/null
  [ -n "$SINK_PID" ] && kill -TERM "$SINK_PID" 2>/dev/null
  [ -n "$DNS_PID" ] && kill -TERM "$DNS_PID" 2>/dev/null
  [ -n "$PF_UP" ] && postfix -c "$WORK/postfix" stop >/dev/null 2>&1
  if [ -n "${BENCH_KEEP:-}" ]; then echo "outbound-bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 150); do port_open "$1" && return 0; sleep 0.1; done
  echo "outbound-bench: nothing listening on 127.0.0.1:$1" >&2
  return 1
}
now() { date +%s.%N; }

# start_sink: an smtp-sink that exits after MESSAGES messages.
start_sink() {
  smtp-sink -u nobody -M "$MESSAGES" "127.0.0.1:$SINK" 1000 >/dev/null 2>&1 &
  SINK_PID=$!
  wait_port "$SINK"
}

# timed_run PORT [LOAD ARGS...]: submits, waits for the sink to exit; prints the seconds.
timed_run() {
  local port=$1 t0 t1 out waited=0
  shift
  t0=$(now)
  if ! out=$("$LOAD" --host 127.0.0.1 --port "$port" --connections "$CONNECTIONS" \
    --messages "$MESSAGES" --size "$SIZE" --rcpt "$RCPT" --rcpt-domains "$DOMAINS" \
    --from "$SENDER" --timeout "$TIMEOUT" --json "$@"); then
    echo "outbound-bench: load generator failed: $out" >&2
    return 1
  fi
  while kill -0 "$SINK_PID" 2>/dev/null; do
    sleep 0.05
    waited=$((waited + 1))
    if [ "$waited" -gt $((TIMEOUT * 20)) ]; then
      echo "outbound-bench: the sink did not get every message in ${TIMEOUT}s" >&2
      return 1
    fi
  done
  t1=$(now)
  SINK_PID=""
  echo "$out" >"$WORK/load-$port.json"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

# ---- test DNS: dK.bench-remote.example MX mx.bench-remote.example, A 127.0.0.1 ----
cat >"$WORK/dns.py" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
from fakemx import FakeDNS
zone = {"mx.bench-remote.example": [("A", "127.0.0.1")]}
for i in range(int(sys.argv[2])):
    zone[f"d{i}.bench-remote.example"] = [("MX", "10 mx.bench-remote.example.")]
dns = FakeDNS(zone)
open(sys.argv[3], "w").write(str(dns.port))
while True:
    time.sleep(3600)
PY
python3 "$WORK/dns.py" "$HERE/../tests/integration" "$DOMAINS" "$WORK/dns.port" >/dev/null 2>&1 &
DNS_PID=$!
for _ in $(seq 100); do [ -s "$WORK/dns.port" ] && break; sleep 0.1; done
DNS_PORT=$(cat "$WORK/dns.port")

# ---- Hato ----
"$HATO" init --data "$WORK/hato" --domain bench.test >/dev/null
"$HATO" user add "$SENDER" --password "$PASS" --data "$WORK/hato" >/dev/null
cat >"$WORK/edit.py" <<'PY'
import re, sys
path, dns, sink = sys.argv[1:]
text = open(path).read()
def setkey(text, key, value):
    return re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
text = setkey(text, "resolver", f'"127.0.0.1@{dns}"')
text = setkey(text, "max_messages_per_hour", "0")
text = setkey(text, "max_messages_per_day", "0")
# Only the listeners the run uses: another server on this host may hold the
# standard ports of the others.
for key in ("submissions", "imaps", "pop3s", "managesieve", "http"):
    text = setkey(text, key, '""')
text = text.replace("[outbound]\n", f"[outbound]\nsmtp_port = {sink}\n", 1)
open(path, "w").write(text)
PY
python3 "$WORK/edit.py" "$WORK/hato/hato.toml" "$DNS_PORT" "$SINK"
loopback_only "$WORK/hato/hato.toml"
"$HATO" serve --data "$WORK/hato" --smtp "127.0.0.1:$HATO_SMTP" --pop3 "127.0.0.1:$HATO_POP3" \
  --imap "127.0.0.1:$HATO_IMAP" --submission "127.0.0.1:$HATO_SUB" 2>"$WORK/hato.log" &
HATO_PID=$!
wait_port "$HATO_SUB"
only_loopback_listeners "$HATO_PID"
start_sink
hato_s=$(timed_run "$HATO_SUB" --auth-user "$SENDER" --auth-pass "$PASS")
kill -TERM "$HATO_PID"
wait "$HATO_PID" 2>/dev/null || true
HATO_PID=""

# ---- Postfix ----
pf=$WORK/postfix
mkdir -p "$pf" "$WORK/spool" "$WORK/pfdata"
chown postfix "$WORK/pfdata"
cat >"$pf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $WORK/spool
data_directory = $WORK/pfdata
maillog_file = $WORK/postfix.log
maillog_file_prefixes = $WORK
myhostname = postfix.bench.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relay_domains =
relayhost = [127.0.0.1]:$SINK
smtp_destination_concurrency_limit = 100
default_process_limit = 100
local_recipient_maps =
alias_maps =
alias_database =
biff = no
CF
cat >"$pf/master.cf" <<CF
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
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
CF
if ! postfix -c "$pf" start >/dev/null 2>&1; then
  echo "outbound-bench: postfix failed to start" >&2
  tail -20 "$WORK/postfix.log" >&2
  exit 1
fi
PF_UP=1
wait_port "$PF_SMTP"
start_sink
pf_s=$(timed_run "$PF_SMTP")

awk -v n="$MESSAGES" -v d="$DOMAINS" -v h="$hato_s" -v p="$pf_s" 'BEGIN {
  printf "outbound: %d messages over %d destinations to smtp-sink (submitted over loopback)\n", n, d
  printf "  %-8s %10s %12s\n", "server", "seconds", "messages/s"
  printf "  %-8s %10.2f %12.0f\n", "hato", h, n / h
  printf "  %-8s %10.2f %12.0f\n", "postfix", p, n / p
  printf "  ratio hato/postfix: %.2f\n", (n / h) / (n / p)
}'
