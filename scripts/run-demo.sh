#!/usr/bin/env bash
# `make run`: creates ./var with domain example.test and a demo account on
# first use, prints how to connect, and runs Hato in the foreground. Every
# listener is on loopback and an unprivileged port (RUN_* in the Makefile).
set -euo pipefail
HATO=$1 DATA=$2 SMTP=$3 POP3=$4 IMAP=$5 USER=$6 PASS=$7
SUBMISSION=${RUN_SUBMISSION:-127.0.0.1:1587} SUBMISSIONS=${RUN_SUBMISSIONS:-127.0.0.1:1465}
IMAPS=${RUN_IMAPS:-127.0.0.1:1993} POP3S=${RUN_POP3S:-127.0.0.1:1995} HTTP=${RUN_HTTP:-127.0.0.1:8080}
HTTPS=${RUN_HTTPS:-127.0.0.1:1443} MANAGESIEVE=${RUN_MANAGESIEVE:-127.0.0.1:14190}
if [ ! -f "$DATA/hato.toml" ]; then
  "$HATO" init --data "$DATA" --domain "${USER#*@}" --hostname localhost >/dev/null
  printf '%s\n' "$PASS" | "$HATO" user add "$USER" --admin --password-stdin --data "$DATA"
fi
# The demo account runs the admin console too (also in a ./var made before it existed).
"$HATO" admin grant "$USER" --data "$DATA" >/dev/null
cat <<MSG

  Hato is starting with its data in $DATA (every port on loopback).
    SMTP (inbound)  $SMTP     e.g.  swaks --server $SMTP --from someone@example.net --to $USER
    submission      $SUBMISSION (STARTTLS), $SUBMISSIONS (TLS)
                    e.g.  swaks --server $SUBMISSION --tls --auth-user $USER --auth-password $PASS --from $USER --to $USER
    POP3            $POP3 (POP3S $POP3S)  e.g.  python3 -c 'import poplib; p=poplib.POP3("${POP3%:*}", ${POP3##*:}); p.user("$USER"); p.pass_("$PASS"); print(p.stat())'
    IMAP            $IMAP (IMAPS $IMAPS)  e.g.  mutt -f imap://${USER/@/%40}@$IMAP/INBOX
    webmail         http://$HTTP/   (sign in with the account below)
    my account      http://$HTTP/account   (password, app passwords, download all mail)
    admin console   http://$HTTP/admin     (the demo account is an admin)
    status page     http://$HTTP/status
    account         $USER
    password        $PASS
  Stop with Ctrl-C.

MSG
exec "$HATO" serve --data "$DATA" --smtp "$SMTP" --pop3 "$POP3" --imap "$IMAP" \
  --submission "$SUBMISSION" --submissions "$SUBMISSIONS" --imaps "$IMAPS" --pop3s "$POP3S" --managesieve "$MANAGESIEVE" \
  --http "$HTTP" --https "$HTTPS"
