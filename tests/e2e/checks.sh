# Sourced by end-to-end tests: named checks that print "ok   NAME" or "FAIL NAME: why", counted
# in $passed and $failures.
#   check NAME EXPECTED_EXIT REGEX -- COMMAND...   the command exits so and its output matches
#   eventually NAME COMMAND...                     the command succeeds within 20 s
#   eventually_for SECONDS NAME COMMAND...         ... within SECONDS
#   require_criu BIN                               exits 77 (skipped) without a working CRIU,
#                                                  or fails under CI=true, where it must be
# Commands run in the calling shell: they may be its functions.
passed=0
failures=0

check() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local out code
  out=$("$@" 2>&1)
  code=$?
  if [[ $code -eq $want ]] && grep -Eq -- "$pattern" <<<"$out"; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name: exit $code (want $want), output lacks /$pattern/"
    sed 's/^/    /' <<<"$out" | head -20
    failures=$((failures + 1))
  fi
}

eventually_for() {
  local seconds=$1 name=$2
  shift 2
  for _ in $(seq $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then
      echo "ok   $name"
      passed=$((passed + 1))
      return 0
    fi
    sleep 0.1
  done
  echo "FAIL $name: not within $seconds s"
  "$@" 2>&1 | sed 's/^/    /' | head -20
  failures=$((failures + 1))
  return 1
}

eventually() { eventually_for 20 "$@"; }

require_criu() {
  "$1" criu check >/dev/null 2>&1 && return 0
  if [[ ${CI:-} == true ]]; then
    echo "FAIL no working CRIU on this machine (scripts/setup installs one)"
    exit 1
  fi
  echo "skipped: no working CRIU"
  exit 77
}
