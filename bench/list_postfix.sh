#!/usr/bin/env bash
# List broadcast beside Postfix (issue 14): one post to N members (default 100,000) on D
# domains (default 1,000), delivered to Postfix's smtp-sink, through Hato and through Postfix.
# Usage: bash bench/list_postfix.sh BUILD_DIR   (needs root for Postfix)
# Env: BENCH_LIST_MEMBERS (100000), BENCH_LIST_DOMAINS (1000), BENCH_TIMEOUT (1800 s),
#      BENCH_STORE ("" = embedded; "postgres" = a throw-away PostgreSQL cluster),
#      BENCH_POSTFIX (1; 0 = Hato only), BENCH_BULK_CONNECTIONS (Hato's
#      lists.max_bulk_connections; "" = the default, 75; outbound.max_connections is set 25 above),
#      BENCH_LIST_ONECLICK (0; 1 = RFC 8058 one-click unsubscribe on, so every copy is
#      DKIM-signed per member), BENCH_LIST_DKIM (with one-click: the [lists] copy_dkim value,
#      "key" = the RSA-2048 key `hato init` made, "ed25519" or "rsa+ed25519" add an Ed25519 key).
#
# Hato: a discussion list all@bench.test with the N members (`hato list members import`),
# `hato serve` with MX lookups of d0..d(D-1).bench-remote.example through the local test DNS
# (tests/integration/fakemx.py; every MX is 127.0.0.1, where smtp-sink listens); the post
# comes on port 25 from a member. Each member gets its own transaction (VERP envelope
# sender), so the sink counts one message per recipient (-c: its running counter). Not
# smtp-sink -M N: it exits as soon as it has read the Nth message's final dot, before its
# 250, so Hato rightly deferred that copy (no reply to the dot: not accepted, RFC 5321
# section 6.1) and every run ended with one recipient deferred.
# Postfix: the same post to all@bench.test expanded by a virtual alias map (all@ -> 100
# groups -> the N members) and relayed to the same sink (relayhost, concurrency 100:
# Postfix cannot be pointed at a test DNS server without changing the system resolver).
# Postfix runs three times: with smtp_destination_recipient_limit = 1 (one transaction per
# recipient, as VERP list servers send), with its default (up to 50 recipients per
# transaction), and with XVERP on the post's MAIL FROM (Postfix's own VERP, VERP_README;
# smtpd_authorized_verp_clients = $mynetworks): one transaction per recipient with a
# per-recipient envelope sender, the job Hato does; done when its queue is empty.
# Timed: accept_s = connect .. the 250 after DATA (for both, every recipient is then queued
# durably), delivered_s = DATA sent .. every recipient at the sink. During Hato's broadcast,
# person-to-person mail (one every BENCH_P2P_INTERVAL s, default 0.5, submitted by a
# user to bob@p2p.bench-remote.example, whose MX is a small recorder on 127.0.0.2, same
# port): p2p_p50_s/p2p_p99_s = its 250 at submission .. the recorder has it.
# cpu_ms_per_rcpt: the `hato serve` process's utime+stime (/proc/PID/stat) from just before
# the post until every copy is at the sink, over the members; thread_cpu_s: the same span's
# CPU seconds per thread name (/proc/PID/task/*/stat; hato-loop-N, the writer, the pool).
# Prints JSON lines.
set -euo pipefail

BUILD=$(cd "${1:?usage: bash bench/list_postfix.sh BUILD_DIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/loopback.sh"  # loopback_only TOML, only_loopback_listeners PID
MEMBERS=${BENCH_LIST_MEMBERS:-100000}
DOMAINS=${BENCH_LIST_DOMAINS:-1000}
TIMEOUT=${BENCH_TIMEOUT:-1800}
STORE=${BENCH_STORE:-}
HATO=$BUILD/hato
SINK=24035 HATO_SMTP=24036 HATO_SUB=24037 HATO_POP3=24111 HATO_IMAP=24144 PF_SMTP=24535
LIST=all@bench.test POSTER=m0@d0.bench-remote.example
ONECLICK=${BENCH_LIST_ONECLICK:-0} COPY_DKIM=${BENCH_LIST_DKIM:-key}
P2P_USER=p2p@bench.test P2P_PASS=bench-password P2P_INTERVAL=${BENCH_P2P_INTERVAL:-0.5}

[ -x "$HATO" ] || { echo "list-bench: $HATO not built" >&2; exit 1; }
command -v smtp-sink >/dev/null || { echo "list-bench: smtp-sink (postfix) missing" >&2; exit 1; }

WORK=$(mktemp -d /tmp/hato-listbench.XXXXXX)
chmod 755 "$WORK"
SINK_PID="" HATO_PID="" DNS_PID="" PF_UP="" PG_PID="" P2P_PID=""
cleanup() {
  set +e
  [ -n "$HATO_PID" ] && kill -TERM "$HATO_PID" 2>/dev/null && wait "$HATO_PID" 2>/dev/null
  [ -n "$SINK_PID" ] && kill -TERM "$SINK_PID" 2>/dev/null
  [ -n "$P2P_PID" ] && kill -TERM "$P2P_PID" 2>/dev/null
  [ -n "$DNS_PID" ] && kill -TERM "$DNS_PID" 2>/dev/null
  [ -n "$PG_PID" ] && kill -TERM "$PG_PID" 2>/dev/null && wait "$PG_PID" 2>/dev/null
  [ -n "$PF_UP" ] && postfix -c "$WORK/postfix" stop >/dev/null 2>&1
  if [ -n "${BENCH_KEEP:-}" ]; then echo "list-bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 300); do port_open "$1" && return 0; sleep 0.1; done
  echo "list-bench: nothing listening on 127.0.0.1:$1" >&2
  return 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# post PORT SENDER RCPT [XVERP]: one message to the list; prints "t_start t_250".
cat >"$WORK/post.py" <<'PY'
import smtplib, sys, time
port, sender, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
mail_options = sys.argv[4:]  # "XVERP": Postfix's VERP (one sender per recipient)
t0 = time.time()
with smtplib.SMTP("127.0.0.1", port, timeout=1800) as s:
    s.sendmail(sender, [rcpt], f"From: {sender}\r\nTo: {rcpt}\r\nSubject: broadcast\r\n"
               "Message-ID: <bench-broadcast@bench-remote.example>\r\n\r\n" + "news\r\n" * 50,
               mail_options=mail_options)
print(f"{t0:.6f} {time.time():.6f}")
PY

# p2p.py SINK_PORT SUB_PORT USER PASSWORD INTERVAL STOP_FILE OUT: person-to-person mail
# during the broadcast (see the header); the recorder answers 250 once it has the message.
cat >"$WORK/p2p.py" <<'PY'
import json, os, smtplib, socketserver, sys, threading, time
sink, sub, user, password, interval, stop_file, out = sys.argv[1:]
received, lock = {}, threading.Lock()
class Recorder(socketserver.StreamRequestHandler):
    def handle(self):
        w = lambda line: self.wfile.write(line.encode() + b"\r\n")
        w("220 p2p.recorder ESMTP")
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                w("250 p2p.recorder")
            elif verb == b"DATA":
                w("354 go ahead")
                subject = None
                while True:
                    l = self.rfile.readline(1 << 20)
                    if not l or l == b".\r\n":
                        break
                    if l.lower().startswith(b"subject: "):
                        subject = l[9:].strip().decode()
                with lock:
                    received[subject] = time.time()
                w("250 2.0.0 Ok")
            elif verb == b"QUIT":
                w("221 bye")
                return
            else:
                w("250 Ok")
class Srv(socketserver.ThreadingTCPServer):
    allow_reuse_address, daemon_threads = True, True
srv = Srv(("127.0.0.2", int(sink)), Recorder)
threading.Thread(target=srv.serve_forever, daemon=True).start()
sent, n = {}, 0
while not os.path.exists(stop_file) and n < 100000:
    subject = f"p2p {n}"
    with smtplib.SMTP("127.0.0.1", int(sub), timeout=60) as s:
        s.login(user, password)
        s.sendmail(user, ["bob@p2p.bench-remote.example"],
                   f"From: {user}\r\nTo: bob@p2p.bench-remote.example\r\n"
                   f"Subject: {subject}\r\n\r\nhello\r\n")
        sent[subject] = time.time()  # the 250 to its DATA
    n += 1
    time.sleep(float(interval))
deadline = time.time() + 60
while time.time() < deadline:
    with lock:
        if all(k in received for k in sent):
            break
    time.sleep(0.05)
with lock:
    lat = sorted(received.get(k, float("inf")) - t for k, t in sent.items()) or [0.0]
json.dump({"p2p_samples": len(sent), "p2p_missing": sum(1 for x in lat if x == float("inf")),
           "p2p_p50_s": round(lat[len(lat) // 2], 3),
           "p2p_p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3),
           "p2p_max_s": round(lat[-1], 3)}, open(out, "w"))
PY

# sink_count: messages smtp-sink has read to the final dot (its -c counter line
# "sess=S quit=Q mesg=M", rewritten after each message; the 250 follows at once).
sink_count() {
  tail -c 80 "$WORK/sink.out" 2>/dev/null | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\)$/\1/p' | tail -1
}
# wait_for_sink: until the sink has read every member's copy, bounded by TIMEOUT.
wait_for_sink() {
  local waited=0
  while [ "$(sink_count)" != "$MEMBERS" ]; do
    sleep 0.05
    waited=$((waited + 1))
    if [ "$waited" -gt $((TIMEOUT * 20)) ]; then
      echo "list-bench: the sink did not get every recipient in ${TIMEOUT}s" >&2
      return 1
    fi
  done
}

# ---- test DNS: dK.bench-remote.example MX mx.bench-remote.example, A 127.0.0.1 ----
cat >"$WORK/dns.py" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
from fakemx import FakeDNS
zone = {"mx.bench-remote.example": [("A", "127.0.0.1")]}
for i in range(int(sys.argv[2])):
    zone[f"d{i}.bench-remote.example"] = [("MX", "10 mx.bench-remote.example.")]
# Person-to-person mail: its own MX host on another loopback address.
zone["p2p.bench-remote.example"] = [("MX", "10 p2pmx.bench-remote.example.")]
zone["p2pmx.bench-remote.example"] = [("A", "127.0.0.2")]
dns = FakeDNS(zone, ttl=3600)
open(sys.argv[3], "w").write(str(dns.port))
while True:
    time.sleep(3600)
PY
python3 "$WORK/dns.py" "$HERE/../tests/integration" "$DOMAINS" "$WORK/dns.port" >/dev/null 2>&1 &
DNS_PID=$!
for _ in $(seq 100); do [ -s "$WORK/dns.port" ] && break; sleep 0.1; done
DNS_PORT=$(cat "$WORK/dns.port")

# The members, one a line.
awk -v n="$MEMBERS" -v d="$DOMAINS" 'BEGIN { for (i = 0; i < n; i++)
  printf "m%d@d%d.bench-remote.example\n", i, i % d }' >"$WORK/members.txt"

# ---- Hato ----
init_args=()
if [ "$STORE" = postgres ]; then
  cat >"$WORK/pg.py" <<'PY'
import signal, sys, time
sys.path.insert(0, sys.argv[1])
import pg_cluster
# SIGTERM (the script's cleanup) exits normally, so atexit stops and removes the cluster.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
url = pg_cluster.shared_database()
open(sys.argv[2], "w").write(url)
while True:
    time.sleep(3600)
PY
  python3 "$WORK/pg.py" "$HERE/../tests/integration" "$WORK/pg.url" >/dev/null 2>&1 &
  PG_PID=$!
  for _ in $(seq 600); do [ -s "$WORK/pg.url" ] && break; sleep 0.1; done
  init_args=(--postgres "$(cat "$WORK/pg.url")")
fi
"$HATO" init --data "$WORK/hato" --domain bench.test "${init_args[@]}" >/dev/null
cat >"$WORK/edit.py" <<'PY'
import re, sys
path, dns, sink, bulk, oneclick, copy_dkim = sys.argv[1:]
text = open(path).read()
def setkey(text, key, value):
    return re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
text = setkey(text, "resolver", f'"127.0.0.1@{dns}"')
# Only the listeners the run uses: another server on this host may hold the
# standard ports of the others.
for key in ("submissions", "imaps", "pop3s", "managesieve", "http"):
    text = setkey(text, key, '""')
if bulk:
    text = setkey(text, "max_bulk_connections", bulk)
    text = re.sub(r"^(\[outbound\][^\[]*?)^max_connections = [^\n]*$",
                  rf"\g<1>max_connections = {int(bulk) + 25}", text, count=1, flags=re.M | re.S)
text = text.replace("[outbound]\n", f"[outbound]\nsmtp_port = {sink}\n", 1)
if oneclick == "1":  # the URL is only text in the copies: no HTTP listener is needed
    text = setkey(text, "unsubscribe_url", '"http://127.0.0.1/lists/unsubscribe"')
    text = setkey(text, "copy_dkim", f'"{copy_dkim}"')
open(path, "w").write(text)
PY
python3 "$WORK/edit.py" "$WORK/hato/hato.toml" "$DNS_PORT" "$SINK" "${BENCH_BULK_CONNECTIONS:-}" \
  "$ONECLICK" "$COPY_DKIM"
if [ "$ONECLICK" = 1 ] && [ "$COPY_DKIM" != key ]; then
  "$HATO" dkim generate bench.test --selector ed --algorithm ed25519 --data "$WORK/hato" >/dev/null
fi
loopback_only "$WORK/hato/hato.toml"
"$HATO" list create "$LIST" --mode discussion --data "$WORK/hato" >/dev/null
"$HATO" user add "$P2P_USER" --password "$P2P_PASS" --data "$WORK/hato" >/dev/null
t=$(now)
"$HATO" list members import "$LIST" "$WORK/members.txt" --data "$WORK/hato" >/dev/null
import_s=$(elapsed "$t" "$(now)")
"$HATO" serve --data "$WORK/hato" --smtp "127.0.0.1:$HATO_SMTP" --pop3 "127.0.0.1:$HATO_POP3" \
  --imap "127.0.0.1:$HATO_IMAP" --submission "127.0.0.1:$HATO_SUB" 2>"$WORK/hato.log" &
HATO_PID=$!
wait_port "$HATO_SMTP"
only_loopback_listeners "$HATO_PID"
smtp-sink -u nobody -c "127.0.0.1:$SINK" 1000 >"$WORK/sink.out" 2>&1 &
SINK_PID=$!
wait_port "$SINK"
python3 "$WORK/p2p.py" "$SINK" "$HATO_SUB" "$P2P_USER" "$P2P_PASS" "$P2P_INTERVAL" \
  "$WORK/p2p.stop" "$WORK/p2p.json" 2>"$WORK/p2p.log" &
P2P_PID=$!
# utime + stime of `hato serve`, in clock ticks (/proc/PID/stat fields 14 and 15).
hato_ticks() { awk '{ print $14 + $15 }' "/proc/$HATO_PID/stat"; }
# Per thread (name: utime + stime ticks, /proc/PID/task/*/stat), for the CPU of each loop.
thread_ticks() {
  python3 - "$HATO_PID" <<'PY'
import glob, sys, collections
t = collections.Counter()
for f in glob.glob(f"/proc/{sys.argv[1]}/task/*/stat"):
    try:
        s = open(f).read()
    except OSError:
        continue
    name, rest = s[s.index("(") + 1:s.rindex(")")], s[s.rindex(")") + 2:].split()
    t[name.replace(" ", "_")] += int(rest[11]) + int(rest[12])
for k, v in t.items():
    print(k, v)
PY
}
ticks0=$(hato_ticks)
thread_ticks >"$WORK/threads0"
read -r t0 t250 < <(python3 "$WORK/post.py" "$HATO_SMTP" "$POSTER" "$LIST")
wait_for_sink
t1=$(now)
ticks1=$(hato_ticks)
thread_ticks >"$WORK/threads1"
cpu_ms_per_rcpt=$(awk -v a="$ticks0" -v b="$ticks1" -v hz="$(getconf CLK_TCK)" -v n="$MEMBERS" \
  'BEGIN { printf "%.4f", (b - a) * 1000 / hz / n }')
touch "$WORK/p2p.stop"
wait "$P2P_PID" || { echo "list-bench: the person-to-person probe failed:" >&2; tail -5 "$WORK/p2p.log" >&2; }
P2P_PID=""
# The report once every outcome is recorded (the sink has the last copy a moment before
# Hato has its 250 and records it).
for _ in $(seq 100); do
  report=$("$HATO" list report "$LIST" --json --data "$WORK/hato")
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(r["delivered"]+r["failed"] < int(sys.argv[2]))' \
    "$report" "$MEMBERS" && break
  sleep 0.1
done
kill -TERM "$SINK_PID" 2>/dev/null
SINK_PID=""
kill -TERM "$HATO_PID"
wait "$HATO_PID" 2>/dev/null || true
HATO_PID=""
python3 - "$MEMBERS" "$DOMAINS" "$t0" "$t250" "$t1" "$import_s" "${STORE:-embedded}" \
  "$report" "$WORK/p2p.json" "$cpu_ms_per_rcpt" "$ONECLICK" "$COPY_DKIM" "$WORK/threads0" \
  "$WORK/threads1" <<'PY'
import json, os, sys
n, d, t0, t250, t1, imp, store, rep, p2p, cpu, oneclick, copy_dkim, th0, th1 = sys.argv[1:]
n, d, t0, t250, t1 = int(n), int(d), float(t0), float(t250), float(t1)
rep = json.loads(rep)
out = {"server": "hato", "store": store, "members": n, "domains": d,
       "import_s": float(imp), "accept_s": round(t250 - t0, 3),
       "delivered_s": round(t1 - t0, 3), "rate_per_s": round(n / (t1 - t0), 1),
       "report_delivered": rep["delivered"], "report_deferred": rep["deferred"],
       "report_failed": rep["failed"], "cpu_ms_per_rcpt": float(cpu),
       "oneclick": oneclick == "1"}
if oneclick == "1":
    out["copy_dkim"] = copy_dkim
# CPU seconds of the fan-out per thread name (threads of one name summed).
hz = os.sysconf("SC_CLK_TCK")
ticks = lambda f: {k: int(v) for k, v in (l.split() for l in open(f) if l.strip())}
a, b = ticks(th0), ticks(th1)
out["thread_cpu_s"] = {k: round((b[k] - a.get(k, 0)) / hz, 2) for k in sorted(b)
                       if b[k] - a.get(k, 0) > 0}
if os.path.exists(p2p):
    out.update(json.load(open(p2p)))
print(json.dumps(out))
PY

# ---- Postfix ----
[ "${BENCH_POSTFIX:-1}" = 0 ] && exit 0
pf=$WORK/postfix
mkdir -p "$pf" "$WORK/spool" "$WORK/pfdata"
chown postfix "$WORK/pfdata"
# all@ -> g0..g99@ -> the members (lines of at most ~N/100 addresses).
awk -v n="$MEMBERS" 'BEGIN { g = 100; printf "all@bench.test"
  for (k = 0; k < g; k++) printf "%s g%d@bench.test", (k ? "," : ""), k; printf "\n" }
  { grp[(NR - 1) % 100] = grp[(NR - 1) % 100] (grp[(NR - 1) % 100] == "" ? "" : ",") $0 }
  END { for (k = 0; k < 100; k++) if (grp[k] != "") printf "g%d@bench.test %s\n", k, grp[k] }' \
  "$WORK/members.txt" >"$pf/virtual"
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

# postfix_run LIMIT [XVERP]: the post through Postfix with smtp_destination_recipient_limit
# LIMIT; with XVERP, the post's MAIL FROM asks for VERP (one transaction per recipient).
postfix_run() {
  local limit=$1 verp=${2:-}
  rm -rf "$WORK/spool" && mkdir -p "$WORK/spool"
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
smtpd_authorized_verp_clients = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_alias_domains = bench.test
virtual_alias_maps = hash:$pf/virtual
virtual_alias_expansion_limit = $((MEMBERS + 1000))
virtual_alias_recursion_limit = 10
relay_domains =
relayhost = [127.0.0.1]:$SINK
smtp_destination_concurrency_limit = 100
smtp_destination_recipient_limit = $limit
default_process_limit = 100
local_recipient_maps =
alias_maps =
alias_database =
biff = no
CF
  postmap -c "$pf" "hash:$pf/virtual"
  if ! postfix -c "$pf" start >/dev/null 2>&1; then
    echo "list-bench: postfix failed to start" >&2
    tail -20 "$WORK/postfix.log" >&2
    exit 1
  fi
  PF_UP=1
  wait_port "$PF_SMTP"
  smtp-sink -u nobody -c "127.0.0.1:$SINK" 1000 >"$WORK/pfsink.out" 2>&1 &
  SINK_PID=$!
  wait_port "$SINK"
  local t0 t250 t1 waited=0
  read -r t0 t250 < <(python3 "$WORK/post.py" "$PF_SMTP" "$POSTER" "$LIST" $verp)
  # Done when no queue file is left (incoming, active, deferred).
  while [ -n "$(find "$WORK/spool/incoming" "$WORK/spool/active" "$WORK/spool/deferred" \
    -type f -print -quit 2>/dev/null)" ]; do
    sleep 0.05
    waited=$((waited + 1))
    if [ "$waited" -gt $((TIMEOUT * 20)) ]; then
      echo "list-bench: postfix did not empty its queue in ${TIMEOUT}s" >&2
      exit 1
    fi
  done
  t1=$(now)
  postfix -c "$pf" stop >/dev/null 2>&1
  PF_UP=""
  kill -TERM "$SINK_PID" 2>/dev/null
  SINK_PID=""
  local sent deferred
  sent=$(grep -c "status=sent" "$WORK/postfix.log" || true)
  # Transactions at the sink (its -c counter): N when each recipient had its own.
  local transactions
  transactions=$(tail -c 80 "$WORK/pfsink.out" | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\)$/\1/p' | tail -1)
  deferred=$(grep -Ec "status=(deferred|bounced)" "$WORK/postfix.log" || true)
  : >"$WORK/postfix.log"
  awk -v n="$MEMBERS" -v d="$DOMAINS" -v a="$t0" -v b="$t250" -v c="$t1" -v l="$limit" \
    -v s="$sent" -v f="$deferred" -v x="${verp:+true}" -v v="${transactions:-0}" 'BEGIN {
    printf "{\"server\": \"postfix\", \"recipient_limit\": %d, \"xverp\": %s, ", l, x ? x : "false"
    printf "\"sink_transactions\": %d, ", v
    printf "\"members\": %d, \"domains\": %d, ", n, d
    printf "\"accept_s\": %.3f, \"delivered_s\": %.3f, \"rate_per_s\": %.1f, ", b - a, c - a, n / (c - a)
    printf "\"log_sent\": %d, \"log_deferred_or_bounced\": %d}\n", s, f }'
}
postfix_run 1
postfix_run 50
postfix_run 50 XVERP
