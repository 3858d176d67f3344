#!/usr/bin/env bash
# `archipel sim run` end to end: the three-sites demo in its short form on real sites of this
# machine must hold every expectation and write both reports; a scenario with a mistake is
# refused before any site starts, with its line. The migration and failover steps need a working
# CRIU (root): skipped without one (exit 77), except under CI=true.
# Usage: sim_test.sh PATH/TO/archipel SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/checks.sh"

require_criu "$bin"

out=$(mktemp -d)
cleanup() { rm -rf "$out"; }
trap cleanup EXIT

check three-sites-short 0 'three-sites: ([0-9]+) of \1 expectations held' -- \
  "$bin" sim run "$src/sim/scenarios/three-sites.yaml" --short --out "$out/three-sites"
check report-json 0 '"passed":true' -- cat "$out/three-sites/report.json"
check report-html 0 '<h1>three-sites <span class=.ok.>passed' -- cat "$out/three-sites/report.html"
check report-migration 0 '"phase":"Succeeded"' -- cat "$out/three-sites/report.json"
check long-steps-skipped 0 '"name":"more scoped reads"[^}]*"skipped":true' -- \
  cat "$out/three-sites/report.json"
no_workload_left() { ! pgrep -f "$(dirname "$bin")/tests/workloads/cart --port" >/dev/null; }
check workloads-stopped 0 '' -- no_workload_left

printf 'name: bad\nsites: [paris, nantes]\nsteps:\n  - cut: [paris, lyon]\n' >"$out/bad.yaml"
check bad-scenario 2 "bad.yaml:4: .*'lyon' is not a site of the scenario" -- \
  "$bin" sim run "$out/bad.yaml" --out "$out/bad"
check nothing-started 1 '' -- test -e "$out/bad/sites"

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
