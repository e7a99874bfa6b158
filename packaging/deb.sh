#!/usr/bin/env bash
# `make deb`: builds hato_VERSION_ARCH.deb from the built binary with a plain
# dpkg-deb layout (no debian/ source package needed).
#   deb.sh HATO_BINARY OUTDIR
# The package installs /usr/bin/hato, /lib/systemd/system/hato.service,
# /etc/hato/hato.env (a conffile), /var/lib/hato, the man page and the bash
# completion; its postinst creates the `hato` system user. Depends are the
# Debian packages of the shared libraries the binary links (via ldd and dpkg -S).
set -euo pipefail
BIN=$(readlink -f "$1")
OUT=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=$("$BIN" --version | awk '{print $2}')
ARCH=$(dpkg --print-architecture)
ROOT=$OUT/deb-root
rm -rf "$ROOT"
DESTDIR=$ROOT PREFIX=/usr UNITDIR=/lib/systemd/system bash "$HERE/install.sh" "$BIN"
install -d "$ROOT/DEBIAN"

deps=()
while read -r lib; do
  pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1) || true
  [ -z "$pkg" ] && pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1) || true
  [ -n "$pkg" ] && deps+=("$pkg")
done < <(ldd "$BIN" | awk '/=> \//{print $3}')
depends=$(printf '%s\n' "${deps[@]}" adduser | sort -u | paste -sd, | sed 's/,/, /g')

cat >"$ROOT/DEBIAN/control" <<CTRL
Package: hato
Version: $VERSION
Architecture: $ARCH
Maintainer: Hato developers <postmaster@localhost>
Section: mail
Priority: optional
Depends: $depends
Recommends: publicsuffix
Provides: mail-transport-agent, imap-server, pop3-server
Installed-Size: $(du -sk "$ROOT" | cut -f1)
Description: mail server in one binary (SMTP, submission, IMAP, POP3)
 Hato is a complete mail service with a durable embedded store: inbound MX
 with SPF, DKIM and DMARC, authenticated submission with DKIM signing and a
 durable outbound queue, IMAP and POP3, online backups and migration.
CTRL
echo "/etc/hato/hato.env" >"$ROOT/DEBIAN/conffiles"
install -m 0755 "$HERE/postinst" "$ROOT/DEBIAN/postinst"
install -m 0755 "$HERE/postrm" "$ROOT/DEBIAN/postrm"
# Files owned by root (dpkg-deb --root-owner-group), whoever builds.
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$OUT/hato_${VERSION}_${ARCH}.deb" >/dev/null
echo "$OUT/hato_${VERSION}_${ARCH}.deb"
