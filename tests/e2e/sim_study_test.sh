#!/usr/bin/env bash
# `archipel sim study` end to end: the detection study and a small convergence study run with
# SimGrid, hold their checks and write both reports; the same seed gives the same figures; a
# study with a mistake is refused with its line.
# Usage: sim_study_test.sh PATH/TO/archipel SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/checks.sh"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

check detection 0 'detection: ([0-9]+) of \1 checks held' -- \
  "$bin" sim study "$src/sim/studies/detection.yaml" --out "$out/detection"
check detection-report 0 '"passed":true' -- cat "$out/detection/report.json"
check detection-plots 0 '<svg' -- cat "$out/detection/report.html"
check convergence 0 'convergence-small: ([0-9]+) of \1 checks held' -- \
  "$bin" sim study "$src/sim/studies/convergence-small.yaml" --out "$out/convergence"
"$bin" sim study "$src/sim/studies/convergence-small.yaml" --out "$out/again" >/dev/null 2>&1
results() { jq -c .results "$1/report.json"; }
check deterministic 0 '' -- cmp <(results "$out/convergence") <(results "$out/again")

printf 'name: bad\nkind: detection\nheartbeats: [100ms]\njitters: [soon]\n' >"$out/bad.yaml"
check bad-study 2 "bad.yaml:4: jitters\\[\\]: invalid duration 'soon'" -- \
  "$bin" sim study "$out/bad.yaml" --out "$out/bad"

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
