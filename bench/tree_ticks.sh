# Sourced by bench scripts (run.sh, pg_run.sh): server CPU from /proc.
# shellcheck shell=bash

# tree_ticks PID...: utime+stime+cutime+cstime (clock ticks) summed over the PIDs and all their
# descendants. Children that exited are included through their parent's cutime/cstime.
tree_ticks() {
  local -A kids=() ticks=()
  local f line pid rest total=0 queue=("$@") p
  local -a c
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    pid=${line%% *}
    rest=${line##*) }  # fields after "pid (comm) "; comm may contain spaces
    read -r -a c <<<"$rest"
    kids[${c[1]}]+=" $pid"
    ticks[$pid]=$((c[11] + c[12] + c[13] + c[14]))
  done
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    total=$((total + ${ticks[$p]:-0}))
    # shellcheck disable=SC2206  # word-splitting the child list is intended
    queue+=(${kids[$p]:-})
  done
  echo "$total"
}
