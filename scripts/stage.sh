# Sourced by the suite scripts: run a named stage, print its wall time, remember failures.
# Usage: stage "name" command args...   then: stages_summary (exits non-zero if any failed)
_stage_report=()
_stage_failed=0
stage() {
  local name=$1; shift
  local start=$SECONDS rc=0
  printf '\n=== stage: %s\n' "$name"
  "$@" || rc=$?
  local took=$((SECONDS - start))
  if [ "$rc" -eq 0 ]; then
    _stage_report+=("$(printf '  %-28s ok     %4ss' "$name" "$took")")
  else
    _stage_report+=("$(printf '  %-28s FAILED %4ss (exit %s)' "$name" "$took" "$rc")")
    _stage_failed=1
  fi
  printf '=== stage: %s took %ss (exit %s)\n' "$name" "$took" "$rc"
}
stages_summary() {
  printf '\n=== stage times\n'
  printf '%s\n' "${_stage_report[@]}"
  return "$_stage_failed"
}
