#!/usr/bin/env bash
# Installs the Debian 12 packages Hato needs to build, test and benchmark.
# Idempotent: installs only what is missing. Run as root (or with sudo available).
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config git ccache
  libboost1.81-dev libssl-dev libsqlite3-dev libsodium-dev libcrypt-dev
  libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev libzstd-dev
  libunbound-dev libidn2-dev libxapian-dev libpq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang clang-format clang-tidy libclang-rt-14-dev
  python3 openssl publicsuffix
)
# nodejs (with npm): the independent JMAP client of test_jmap_client.py (jmap-jam, npm ci).
# dovecot-core, dovecot-imapd: the source server of the hato migrate test (test_migrate.py).
# chromium, fonts-noto-cjk: the webmail's browser tests (tests/browser/, Playwright drives
# Debian's chromium by its path; never a downloaded browser) and Japanese text in screenshots.
# libnet-ssleay-perl, libio-socket-ssl-perl, libauthen-sasl-perl: swaks --tls and --auth (make run's example).
# rspamd, redis-server (rspamd's Bayes statistics), clamav-daemon: the spam and virus
# checks' tests start their own instances in temporary folders (tests/integration/scanners.py;
# no signatures are downloaded: the test writes its own EICAR signature).
# sieve-connect: a real ManageSieve client (RFC 5804) for tests/integration/test_managesieve.py.
# pebble: the ACME test server (RFC 8555) that tests/integration/test_acme.py starts on loopback.
TEST_PKGS=(nodejs swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl sqlite3 isync fetchmail mutt dovecot-core dovecot-imapd python3-dnslib python3-dkim python3-spf python3-authheaders python3-yaml python3-nacl gsasl postgresql-15 chromium fonts-noto-cjk rspamd redis-server clamav-daemon sieve-connect pebble)
# postgresql-15: the PostgreSQL store tests start throw-away clusters (tests/integration/pg_cluster.py,
# tests/unit/pg_cluster.h) as the system user hato-pgtest (created below): PostgreSQL
# refuses to run as root.
BENCH_PKGS=(postfix dovecot-core dovecot-pop3d dovecot-lmtpd dovecot-imapd dovecot-fts-xapian python3-xapian)

# npm comes with nodesource's nodejs; Debian's nodejs needs the npm package.
command -v npm >/dev/null 2>&1 || TEST_PKGS+=(npm)
want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
if [ "${1:-}" = "--bench" ]; then want+=("${BENCH_PKGS[@]}"); fi

ensure_pgtest_user() {
  if ! id hato-pgtest >/dev/null 2>&1; then
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo useradd --system --no-create-home --shell /usr/sbin/nologin hato-pgtest
  fi
}

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then ensure_pgtest_user; exit 0; fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself; the bench configures its own instance.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
ensure_pgtest_user
