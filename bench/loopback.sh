# Sourced by the bench scripts that start `hato serve` from a `hato init`
# data directory: nothing they start listens beyond 127.0.0.1. `hato init`
# writes public listeners (0.0.0.0:25, :587, :143, ...); a bench passes each
# listener it uses to `hato serve` as 127.0.0.1:PORT and needs no other.
# (The peers are configured for loopback in each script: Postfix
# inet_interfaces = loopback-only, Dovecot listen = 127.0.0.1, smtp-sink and
# the test DNS on 127.0.0.1.)

# loopback_only HATO_TOML: empties every [listen] address not on 127.0.0.1.
loopback_only() {
  sed -i -E '/^\[listen\]/,/^\[/ { /= "127\.0\.0\.1:/! s/^([a-z0-9_]+) = "[^"]+"/\1 = ""/ }' "$1"
}

# only_loopback_listeners PID: fails, naming them, when process PID has a
# listening TCP socket on an address other than 127.0.0.1 or ::1.
only_loopback_listeners() {
  local outside
  outside=$(ss -ltnpH 2>/dev/null | grep -F "pid=$1," | awk '{print $4}' |
    grep -v -E '^(127\.0\.0\.1|\[::1\]):' || true)
  if [ -n "$outside" ]; then
    echo "bench: process $1 listens beyond loopback: $(echo $outside)" >&2
    return 1
  fi
}
