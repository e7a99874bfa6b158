#!/usr/bin/env bash
# JMAP list-view benchmark (issue 12): one account with JMAP_BENCH_MESSAGES messages in its
# INBOX (100,000 by default; prefilled identically over IMAP APPEND, not timed), then for
# JMAP_BENCH_SECONDS each, JMAP_BENCH_CLIENTS keep-alive clients run
#   Hato JMAP:     Email/query (sort receivedAt desc, limit 50) + Email/get with preview
#                  (bench/jmap_load.cc, hato-jmap-load)
#   Hato IMAP and Dovecot IMAP: UID SEARCH ALL + UID FETCH of the 50 highest UIDs (ENVELOPE)
#                  (hato-imap-load --mix list)
# Goals: JMAP p50 < 20 ms, p99 < 100 ms, >= 2x Dovecot's IMAP rate for the same work.
# Usage: bash bench/jmap_bench.sh BUILD_DIR   (Dovecot needs root; without it, Hato only)
# Env: JMAP_BENCH_MESSAGES (100000), JMAP_BENCH_CLIENTS (50), JMAP_BENCH_SECONDS (30),
# plus bench/imap_run.sh's (IMAP_BENCH_HATO_ONLY, IMAP_BENCH_KEEP, HATO_EVENT_LOOPS, ...).
# Results: BUILD_DIR/jmap-list-bench-results.json ("hato_jmap"; "hato" and "dovecot" hold
# the IMAP runs, command LIST_VIEW). The EventSource memory test is in bench/jmap_run.py.
set -euo pipefail
BUILD=${1:?usage: bash bench/jmap_bench.sh BUILD_DIR}
export IMAP_BENCH_USERS=1
export IMAP_BENCH_PREFILL=${JMAP_BENCH_MESSAGES:-100000}
export IMAP_BENCH_CLIENTS=${JMAP_BENCH_CLIENTS:-50}
export IMAP_BENCH_SECONDS=${JMAP_BENCH_SECONDS:-30}
export IMAP_BENCH_MIX=list
export IMAP_BENCH_JMAP=1
export IDLE_CONNECTIONS=0 IDLE_CONNECTIONS_DOVECOT=0
export IMAP_BENCH_RESULT=jmap-list-bench-results.json
exec bash "$(dirname "$0")/imap_run.sh" "$BUILD"
