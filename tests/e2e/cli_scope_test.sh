#!/usr/bin/env bash
# The archipel command line, end to end: scope explain/check, site --check, exit codes, --help.
# Usage: cli_scope_test.sh PATH/TO/archipel   (run from the repository root)
set -uo pipefail
bin=$1
failures=0
passed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect NAME WANTED_EXIT PATTERN -- command...   (PATTERN: extended regex over stdout+stderr)
expect() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local out code
  out=$("$@" 2>&1)
  code=$?
  if [[ $code -ne $want ]]; then
    echo "FAIL $name: exit $code, wanted $want"; echo "$out" | sed 's/^/    /'; failures=$((failures + 1))
  elif ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "FAIL $name: output lacks /$pattern/"; echo "$out" | sed 's/^/    /'; failures=$((failures + 1))
  else
    echo "ok   $name"; passed=$((passed + 1))
  fi
}

expect explain-canonical 0 '^canonical: paris & \(nantes \| rennes\)$' -- \
  "$bin" scope explain 'paris&(nantes|rennes)' --sites paris,nantes,rennes
expect explain-plan 0 '2\. paris \(here\) \+ rennes \(unreachable\)' -- \
  "$bin" scope explain 'paris & (nantes | rennes)' --sites paris,nantes,rennes --down rennes
expect explain-binding 0 "plan for 'configmaps' \(binding 'configmaps'\)" -- \
  "$bin" scope explain 'pods: paris, configmaps: nantes' --resource configmaps --sites paris,nantes
expect explain-no-binding 0 'receiving site only' -- \
  "$bin" scope explain 'pods: nantes' --resource secrets --sites paris,nantes
expect explain-config-sites 0 'nantes, paris \(here\), rennes' -- \
  "$bin" scope explain 'nantes & .' --config sites/paris.yaml
expect explain-bad-scope 1 "after '&' at column 9" -- "$bin" scope explain 'paris & & nantes'
expect explain-caret 1 '^          \^$' -- "$bin" scope explain 'paris & & nantes'
expect explain-unknown-site 1 "unknown site 'lyon' \(known: nantes, paris\)" -- \
  "$bin" scope explain 'paris | lyon' --sites paris,nantes

printf 'paris & nantes\n# a comment\n\nrennes|.\n' >"$tmp/good"
printf 'paris\npods: paris,\nnantes\n' >"$tmp/bad"
expect check-good 0 '^rennes \| \.$' -- bash -c "\"$bin\" scope check <\"$tmp/good\""
expect check-bad 1 "^stdin:2: expected 'resource: expression'" -- \
  bash -c "\"$bin\" scope check <\"$tmp/bad\""
expect check-sites 1 "stdin:1: unknown site 'lyon'" -- \
  bash -c "echo lyon | \"$bin\" scope check --sites paris"

expect site-check 0 'configuration of site paris is valid' -- \
  "$bin" site --config sites/paris.yaml --check
sed 's/mode: embedded/mode: kind/' sites/nantes.yaml >"$tmp/nantes.yaml"
expect site-bad-config 2 "nantes.yaml:1[0-9]: cluster.mode: expected 'embedded' or 'external', got 'kind'" -- \
  "$bin" site --config "$tmp/nantes.yaml" --check
expect site-missing-config 2 'cannot read the file' -- "$bin" site --config "$tmp/none.yaml"

expect keygen 0 'public_key: [A-Za-z0-9+/]{43}=' -- "$bin" keygen --site paris --out "$tmp/keys"
expect keygen-no-overwrite 1 'exists' -- "$bin" keygen --site paris --out "$tmp/keys"
expect keygen-bad-name 2 'DNS-1123' -- "$bin" keygen --site Paris --out "$tmp/keys"
expect help 0 'scope' -- "$bin" --help
expect help-scope 0 'explain' -- "$bin" scope --help
expect help-explain 0 '--resource' -- "$bin" scope explain --help
expect help-check 0 'stdin' -- "$bin" scope check --help
expect help-site 0 '--config' -- "$bin" site --help
expect usage-error 2 'required' -- "$bin" scope explain

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
