#!/usr/bin/env bash
# `make install`: installs Hato (docs/operations.md, "Installing").
#   install.sh HATO_BINARY
# Environment: DESTDIR (staging root, e.g. for packages), PREFIX (/usr/local),
# UNITDIR (/lib/systemd/system), SYSCONFDIR (/etc), LOCALSTATEDIR (/var/lib).
# Installs bin/hato, the systemd unit hato.service (hardened), /etc/hato with
# hato.env, /var/lib/hato, the man page and the bash completion (both
# generated from the CLI's own help). Without DESTDIR, and as root, it also
# creates the `hato` system user and gives it /var/lib/hato; with DESTDIR
# (staging) no user is created: the package's postinst does that.
set -euo pipefail
BIN=$1
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
UNITDIR=${UNITDIR:-/lib/systemd/system}
SYSCONFDIR=${SYSCONFDIR:-/etc}
LOCALSTATEDIR=${LOCALSTATEDIR:-/var/lib}
HERE=$(cd "$(dirname "$0")" && pwd)

[ -x "$BIN" ] || { echo "install: $BIN is missing; run make build first" >&2; exit 1; }
install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$UNITDIR" "$DESTDIR$SYSCONFDIR/hato" \
  "$DESTDIR$PREFIX/share/man/man1" "$DESTDIR$PREFIX/share/bash-completion/completions" \
  "$DESTDIR$PREFIX/share/doc/hato"
install -d -m 0750 "$DESTDIR$LOCALSTATEDIR/hato"
install -m 0755 "$BIN" "$DESTDIR$PREFIX/bin/hato"
sed "s|@BINDIR@|$PREFIX/bin|g" "$HERE/hato.service.in" >"$DESTDIR$UNITDIR/hato.service"
chmod 0644 "$DESTDIR$UNITDIR/hato.service"
# Keep an operator's edited hato.env.
[ -e "$DESTDIR$SYSCONFDIR/hato/hato.env" ] || install -m 0644 "$HERE/hato.env" "$DESTDIR$SYSCONFDIR/hato/hato.env"
"$BIN" man >"$DESTDIR$PREFIX/share/man/man1/hato.1"
gzip -9nf "$DESTDIR$PREFIX/share/man/man1/hato.1"
"$BIN" completion bash >"$DESTDIR$PREFIX/share/bash-completion/completions/hato"
for f in README.md docs/operations.md docs/architecture.md docs/storage.md; do
  install -m 0644 "$HERE/../$f" "$DESTDIR$PREFIX/share/doc/hato/$(basename "$f")"
done

if [ -z "$DESTDIR" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install: not root: the hato user was not created (run as root, or create it)" >&2
    exit 0
  fi
  if ! getent passwd hato >/dev/null; then
    useradd --system --user-group --home-dir "$LOCALSTATEDIR/hato" --no-create-home \
      --shell /usr/sbin/nologin --comment "Hato mail server" hato
  fi
  chown hato:hato "$LOCALSTATEDIR/hato"
  command -v systemctl >/dev/null && systemctl daemon-reload 2>/dev/null || true
  echo "installed; next: sudo -u hato $PREFIX/bin/hato init --data $LOCALSTATEDIR/hato --domain DOMAIN"
fi
