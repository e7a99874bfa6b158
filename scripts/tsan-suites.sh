#!/usr/bin/env bash
# Runs integration suites against a ThreadSanitizer build of the whole server
# with several event loops (issue 11: sessions on N loops share the store, the
# hubs and the registries; TSan checks that every such access is ordered).
#
#   scripts/tsan-suites.sh TSAN_BUILD_DIR [SUITE...]
#
# TSAN_BUILD_DIR holds a `hato` built with -fsanitize=thread (`make tsan-build`
# makes one in build-tsan). SUITEs are tests/integration modules or classes
# (default: the main suites). Every hato process the suites start (servers
# and CLI calls) writes its TSan reports to a temp dir; the run fails when a
# suite fails or when any report was written, and prints the reports.
#
# Exits 77 when TSAN_BUILD_DIR has no hato (skipped).
# Environment: HATO_EVENT_LOOPS (default 2); TSAN_KEEP=DIR keeps the reports.
set -uo pipefail

[[ $# -ge 1 ]] || { echo "usage: $0 TSAN_BUILD_DIR [SUITE...]" >&2; exit 2; }
# 77: skipped (ctest SKIP_RETURN_CODE) when there is no TSan build.
[[ -x "$1/hato" ]] || { echo "$1/hato is missing (make tsan-build): skipped" >&2; exit 77; }
build="$(cd "$1" && pwd)"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
suites=("$@")
if [[ ${#suites[@]} -eq 0 ]]; then
  suites=(test_smtp test_imap test_pop3 test_jmap test_hostile test_event_loops test_lists test_web)
fi

reports="${TSAN_KEEP:-$(mktemp -d)}"
mkdir -p "$reports"
# halt_on_error=0: a report does not stop the server (the suite goes on and
# every race of the run is listed); exitcode=0 so that a report is judged
# here, from the files, not by each test's view of the exit status.
# scripts/tsan.supp: known false positives outside Hato's code, each explained.
export TSAN_OPTIONS="log_path=$reports/tsan halt_on_error=0 exitcode=0 second_deadlock_stack=1 history_size=4 suppressions=$root/scripts/tsan.supp ${TSAN_OPTIONS:-}"
export HATO_BIN="$build/hato"
export HATO_EVENT_LOOPS="${HATO_EVENT_LOOPS:-2}"
# Sanitized code is several times slower: the suites' own timeouts are
# generous; the probes of test_hostile measure latency and are kept.

status=0
cd "$root/tests/integration" || exit 2
python3 -m unittest -v "${suites[@]}" || status=1

found=0
for f in "$reports"/tsan.*; do
  [[ -e "$f" ]] || continue
  found=$((found + 1))
  echo "==== $f" >&2
  cat "$f" >&2
done
if [[ $found -gt 0 ]]; then
  echo "ThreadSanitizer: $found process(es) reported races or other errors (above)" >&2
  status=1
else
  echo "ThreadSanitizer: no reports (${suites[*]}; $HATO_EVENT_LOOPS event loops)"
fi
[[ -n "${TSAN_KEEP:-}" ]] || rm -rf "$reports"
exit $status
