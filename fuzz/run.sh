#!/usr/bin/env bash
# Runs Hato's libFuzzer targets (see fuzz/README.md).
#
#   fuzz/run.sh BUILD_DIR SECONDS   fuzz each target for SECONDS (`make fuzz`)
#   fuzz/run.sh --smoke BUILD_DIR   run every seed once, then a short deterministic
#                                   mutation run per target (for `make test`)
#
# BUILD_DIR is a tree configured with -DHATO_FUZZ=ON (`make fuzz-build`).
# Each target fuzzes a working copy of fuzz/corpus/<target>/ in a temp dir, so
# fuzz/corpus is never written to. Crashing inputs are kept in
# BUILD_DIR/fuzz-artifacts/<target>/ and the libFuzzer log in
# BUILD_DIR/fuzz-logs/<target>.log. Exits non-zero if any target fails.
#
# Environment: FUZZ_TARGETS="smtp_data config" runs a subset;
# FUZZ_SMOKE_RUNS (default 10000) sets the smoke run's mutation count;
# FUZZ_KEEP_CORPUS=DIR keeps each grown working corpus in DIR/<target>/.
set -uo pipefail

usage() {
  echo "usage: $0 BUILD_DIR SECONDS | $0 --smoke BUILD_DIR" >&2
  exit 2
}

smoke=0
if [[ "${1:-}" == "--smoke" ]]; then
  smoke=1
  shift
  [[ $# -eq 1 ]] || usage
  build="$1"
  seconds=0
else
  [[ $# -eq 2 ]] || usage
  build="$1"
  seconds="$2"
  [[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || usage
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$(cd "$build" 2>/dev/null && pwd)" || { echo "no such build dir: $1" >&2; exit 2; }
all_targets=$(cd "$here" && for f in fuzz_*.cc; do t=${f#fuzz_}; echo "${t%.cc}"; done)
targets="${FUZZ_TARGETS:-$all_targets}"
smoke_runs="${FUZZ_SMOKE_RUNS:-10000}"

max_len_for() {
  case "$1" in
    smtp_data | config | mime) echo 65536 ;;
    imap_command) echo 65536 ;;
    address) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

work="$(mktemp -d "${TMPDIR:-/tmp}/hato-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/fuzz-logs" "$build/fuzz-artifacts"

failed=()
printf '%-14s %-7s %12s %10s %8s  %s\n' target result execs exec/s corpus notes
for t in $targets; do
  bin="$build/fuzz_$t"
  seeds="$here/corpus/$t"
  log="$build/fuzz-logs/$t.log"
  artifacts="$build/fuzz-artifacts/$t"
  if [[ ! -x "$bin" ]]; then
    printf '%-14s %-7s %12s %10s %8s  %s\n' "$t" MISSING - - - "no $bin (run make fuzz-build)"
    failed+=("$t")
    continue
  fi
  mkdir -p "$artifacts" "$work/$t"
  [[ -d "$seeds" ]] && cp -R "$seeds/." "$work/$t/"
  flags=(-timeout=10 -rss_limit_mb=2048 "-max_len=$(max_len_for "$t")"
         "-artifact_prefix=$artifacts/" -print_final_stats=1)
  [[ -f "$here/dict/$t.dict" ]] && flags+=("-dict=$here/dict/$t.dict")

  rc=0
  if [[ $smoke -eq 1 ]]; then
    # Every seed (including regression inputs) once, then a deterministic short run.
    mapfile -t files < <(find "$seeds" -type f 2>/dev/null | sort)
    : >"$log"
    if [[ ${#files[@]} -gt 0 ]]; then
      "$bin" "${flags[@]}" "${files[@]}" >>"$log" 2>&1 || rc=$?
    fi
    if [[ $rc -eq 0 ]]; then
      "$bin" "${flags[@]}" -runs="$smoke_runs" -seed=1 "$work/$t" >>"$log" 2>&1 || rc=$?
    fi
  else
    "$bin" "${flags[@]}" -max_total_time="$seconds" "$work/$t" >"$log" 2>&1 || rc=$?
  fi

  execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
  [[ -n "$execs" ]] || execs="$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')"
  rate="$(grep -o 'stat::average_exec_per_sec: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
  [[ -n "$rate" ]] || rate="$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | awk '{print $2}')"
  corp="$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | awk '{print $2}')"
  if [[ $rc -eq 0 ]]; then
    printf '%-14s %-7s %12s %10s %8s  %s\n' "$t" ok "${execs:--}" "${rate:--}" "${corp:--}" ""
  else
    crash="$(grep -oE 'Test unit written to .*' "$log" | tail -1 | sed 's/^Test unit written to //')"
    reason="$(grep -m1 -E 'fuzz invariant violated|runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' \
      "$log" | sed -E 's/^=+ ?//; s/^[0-9]*=+ //; s|'"$here"'/||')"
    printf '%-14s %-7s %12s %10s %8s  %s\n' "$t" FAIL "${execs:--}" "${rate:--}" "${corp:--}" \
      "exit $rc; ${reason:-see log}"
    echo "    log:   $log"
    # A seed that fails in --smoke mode is reported as the file libFuzzer was running.
    [[ -n "$crash" ]] || crash="$(grep -oE '^Running: .*' "$log" | tail -1 | sed 's/^Running: //')"
    [[ -n "$crash" ]] && echo "    input: $crash"
    failed+=("$t")
  fi
  if [[ -n "${FUZZ_KEEP_CORPUS:-}" ]]; then
    mkdir -p "$FUZZ_KEEP_CORPUS/$t" && cp -R "$work/$t/." "$FUZZ_KEEP_CORPUS/$t/"
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "FAILED: ${failed[*]} (reproduce: BUILD_DIR/fuzz_<target> <input>; see fuzz/README.md)"
  exit 1
fi
echo "all fuzz targets passed"
