#!/usr/bin/env bash
# Simulation against emulation, for the same three-site situation: edits of a ConfigMap shared by
# paris, nantes and rennes, 10 ms apart. The emulation (sim/scenarios/cross-check.yaml, real
# sites over link emulators) and the simulation (sim/studies/cross-check.yaml, the same sharing
# protocol in SimGrid) must agree on the steady-state convergence time within the tolerance:
# the emulation adds what the simulation does not model (each site's Kubernetes watch and write,
# the peer channel's encryption, the runner's 5 ms polling), a few milliseconds.
# A measurement, not a test (it compares times): run it by hand, on a quiet machine.
# Usage: bench/sim_crosscheck.sh [PATH/TO/archipel] [--tolerance MS]
#        (default build/default/archipel, 10)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/default/archipel
tolerance=10
while (($#)); do
  case $1 in
    --tolerance) tolerance=$2; shift 2 ;;
    *) bin=$1; shift ;;
  esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$bin" sim run sim/scenarios/cross-check.yaml --out "$out/emulation" >/dev/null 2>&1 ||
  { echo "crosscheck: the emulation failed (see $out/emulation)" >&2; exit 1; }
"$bin" sim study sim/studies/cross-check.yaml --out "$out/simulation" >/dev/null 2>&1 ||
  { echo "crosscheck: the simulation failed" >&2; exit 1; }
# The emulation's edits (the first convergence is the share itself).
emulation=$(jq '[.convergence[1:][].ms] | sort | .[(length / 2 | floor)]' "$out/emulation/report.json")
simulation=$(jq '.results.points[0].convergeP50Ms' "$out/simulation/report.json")
python3 - "$emulation" "$simulation" "$tolerance" <<'PY'
import sys
emulation, simulation, tolerance = map(float, sys.argv[1:])
gap = emulation - simulation
print(f"convergence of an edit, median: emulation {emulation:.1f} ms, simulation {simulation:.1f} ms, "
      f"gap {gap:+.1f} ms (tolerance {tolerance:.0f} ms)")
sys.exit(0 if abs(gap) <= tolerance else 1)
PY
