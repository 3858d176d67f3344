#!/usr/bin/env bash
# The object CRDT against Automerge, side by side on the same trace of ConfigMap/Deployment field
# edits at two replicas (bench/crdt_bench.cpp writes the trace and measures Archipel;
# bench/automerge/bench.mjs plays it with Automerge). Runs both RUNS times, alternating, and
# prints each run's figures, then the medians and the ratios.
# Usage: bench/crdt_bench.sh [RUNS] [OPS] [ROUND]   (defaults: 3 100000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
ops=${2:-100000}
round=${3:-1000}

cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DARCHIPEL_TESTS=OFF >/dev/null
out=$(cmake --build build/bench --target crdt_bench 2>&1) || { echo "$out" >&2; exit 1; }
if [[ ! -d bench/automerge/node_modules/@automerge/automerge ]]; then
  (cd bench/automerge && npm ci --no-audit --no-fund --loglevel=error)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/bench/bench/crdt_bench --ops "$ops" --round "$round" --trace "$tmp/trace.jsonl" >/dev/null
for ((i = 1; i <= runs; i++)); do
  build/bench/bench/crdt_bench --ops "$ops" --round "$round" | tee -a "$tmp/archipel.jsonl"
  node bench/automerge/bench.mjs "$tmp/trace.jsonl" | tee -a "$tmp/automerge.jsonl"
done

python3 - "$tmp/archipel.jsonl" "$tmp/automerge.jsonl" <<'PY'
import json, statistics, sys
a = [json.loads(l) for l in open(sys.argv[1])]
m = [json.loads(l) for l in open(sys.argv[2])]
med = lambda rows, k: statistics.median(r[k] for r in rows)
print(f"\nmedians of {len(a)} runs, {a[0]['ops']} field operations on {a[0]['objects']} objects, "
      f"rounds of {a[0]['round']}; converged: archipel {all(r['converged'] for r in a)}, "
      f"automerge {all(r['converged'] for r in m)}")
print(f"{'':28}{'archipel':>12}{'automerge':>12}{'ratio':>9}")
def row(label, ka, km, higher_better=True):
    x, y = med(a, ka), med(m, km)
    ratio = x / y if higher_better else y / x
    print(f"{label:28}{x:12.0f}{y:12.0f}{ratio:8.1f}x")
def row2(label, k):
    x, y = med(a, k), med(m, k)
    print(f"{label:28}{x:12.2f}{y:12.2f}{y / x:8.1f}x")
row("local ops/s", "local_ops_per_s", "local_ops_per_s")
row("decode+merge ops/s", "decode_merge_ops_per_s", "decode_merge_ops_per_s")
print(f"{'merge ops/s (join only)':28}{med(a, 'merge_ops_per_s'):12.0f}{'':>12}")
row2("wire bytes / op", "wire_bytes_per_op")
row2("state bytes / field", "state_bytes_per_field")
PY
