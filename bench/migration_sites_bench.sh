#!/usr/bin/env bash
# Migration between real sites, side by side in one run (issue #8's targets): two `archipel site`
# processes (paris, nantes), each peer connection through an `archipel link` emulator, and a pod
# of tests/workloads/memory (100 MiB resident, 16 pages dirtied and the wall-clock time written
# every millisecond).
#   1. downtime of cold, warm and live migrations, interleaved, back and forth (the Migration's
#      status.downtimeMs, measured by the source: freeze → images delivered + restore time);
#   2. failover: the pod protected by 'nantes', paris's links stalled; from the stall to the
#      first time stamp the restored process writes at nantes (wall clock, both);
#   3. checkpoint overhead: time stamps written per second by the pod over a window, protected
#      (checkpoints paced at 5% frozen time) against not protected, interleaved.
# Usage: bench/migration_sites_bench.sh [--runs N] [--mib N] [--window S] [--latency D]
#        [--bandwidth B] (needs root and a working CRIU; builds the release tree if needed)
# Prints a table and writes build/bench/migration_sites.json.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=3
mib=100
window=20
latency=0
bandwidth=0
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --mib) mib=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --latency) latency=$2; shift 2 ;;
    --bandwidth) bandwidth=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--mib N] [--window S] [--latency D] [--bandwidth B]" >&2; exit 2 ;;
  esac
done
build=$root/build/bench
if [[ ! -x $build/archipel || ! -x $build/tests/workloads/memory ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DARCHIPEL_TESTS=OFF >/dev/null &&
    cmake --build "$build" --target archipel memory >/dev/null || exit 1
fi
bin=$build/archipel
memory=$build/tests/workloads/memory
"$bin" criu check >/dev/null || { echo "no working CRIU (scripts/setup installs one)" >&2; exit 1; }
source "$root/tests/e2e/federation.sh"

tmp=$(mktemp -d)
declare -A site_pid
pids=()
cleanup() {
  for p in "${pids[@]}" "${site_pid[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pkill -9 -f "^$memory --mib $mib" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
sites=(paris nantes)
federation_init "$bin" "$tmp" "${sites[@]}"
federation_pids=()
federation_links "$bin"
pids+=("${federation_pids[@]}")
link paris nantes "latency $latency"
link paris nantes "bandwidth $bandwidth"
for s in "${sites[@]}"; do
  federation_config "$s" "{mode: embedded, listen: \"127.0.0.1:${cluster[$s]}\"}" "log: {level: warn}"
  federation_route "$s"
  "$bin" site --config "$tmp/$s.yaml" >"$tmp/$s.log" 2>&1 &
  site_pid[$s]=$!
done
k() { local s=$1; shift; kubectl --server "http://127.0.0.1:${api[$s]}" "$@"; }
wait_for() {  # wait_for SECONDS COMMAND...
  local n=$(($1 * 20)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}
reachable() { curl -sf "http://127.0.0.1:${api[$1]}/metrics" | grep -q "archipel_peer_state{peer=\"$2\",state=\"Reachable\"} 1"; }
wait_for 30 reachable paris nantes || { echo "the sites did not connect" >&2; cat "$tmp"/*.log >&2; exit 1; }

pod() {  # pod NAME [FAILOVER]
  local notes="archipel.io/migrate: criu"
  [[ -n ${2:-} ]] && notes="$notes, archipel.io/failover: \"$2\""
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: default, annotations: {$notes}}
spec:
  containers:
  - {name: memory, image: local, command: ["$memory", "--mib", "$mib", "--stamp-us", "1000", "--dirty-pages", "16"]}
YAML
}
running() { [[ $(k "$1" get pod "$2" -o jsonpath='{.status.phase}' 2>/dev/null) == Running ]] && [[ -n $(k "$1" logs "$2" --tail=1 2>/dev/null) ]]; }
gone() { ! k "$1" get pod "$2" >/dev/null 2>&1; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) {print "nan"} else if (NR % 2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }

# 1. Downtime, cold / warm / live, interleaved, back and forth.
pod memory | k paris apply -f - >/dev/null
wait_for 60 running paris memory || {
  echo "the workload did not start:" >&2
  k paris get pod memory -o yaml >&2
  exit 1
}
declare -A downtimes bytes
at=paris
for run in $(seq "$runs"); do
  for mode in cold warm live; do
    to=nantes; [[ $at == nantes ]] && to=paris
    out=$("$bin" migrate pod/memory --to "$to" --mode "$mode" --server "http://127.0.0.1:${api[$at]}" 2>&1)
    if ! grep -q "runs at $to" <<<"$out"; then echo "$mode migration failed: $out" >&2; exit 1; fi
    d=$(sed -n 's/.*downtime \([0-9.]*\) ms.*/\1/p' <<<"$out")
    downtimes[$mode]+="$d "
    name=$(sed -n 's|^migration.archipel.io/\([^ ]*\) created.*|\1|p' <<<"$out")
    bytes[$mode]+="$(k "$at" get migration "$name" -o jsonpath='{.status.imageBytes}') "
    wait_for 30 gone "$at" memory
    at=$to
    echo "run $run: $mode -> $to: ${d} ms" >&2
  done
done
k "$at" delete pod memory --wait=true >/dev/null

# 3. Checkpoint overhead: stamps written per second over the window, interleaved.
stamps_in_window() {  # stamps_in_window SITE POD FROM_US: stamps written in [FROM, FROM + window)
  k "$1" logs "$2" | awk -v from="$3" -v to="$(($3 + window * 1000000))" '$1 >= from && $1 < to {n++} END {print n + 0}'
}
declare -A rate
for run in $(seq "$runs"); do
  for kind in plain protected; do
    failover=""; [[ $kind == protected ]] && failover=nantes
    pod "rate-$kind" "$failover" | k paris apply -f - >/dev/null
    wait_for 60 running paris "rate-$kind" || { echo "rate-$kind did not start" >&2; exit 1; }
    sleep 3  # past the start, and (protected) the first checkpoint
    from=$(($(date +%s%N) / 1000))
    sleep "$window"
    sleep 1
    n=$(stamps_in_window paris "rate-$kind" "$from")
    rate[$kind]+="$(awk -v n="$n" -v w="$window" 'BEGIN {printf "%.1f", n / w}') "
    k paris delete pod "rate-$kind" --wait=true >/dev/null
    echo "run $run: $kind: $n stamps in $window s" >&2
  done
done
checkpoints=$(curl -s "http://127.0.0.1:${api[paris]}/metrics" | awk '$1 == "archipel_protection_checkpoints_total" {print $2}')
frozen=$(curl -s "http://127.0.0.1:${api[paris]}/metrics" | awk '$1 == "archipel_protection_frozen_seconds_total" {print $2}')

# 2. Failover: stall paris's links once nantes holds a checkpoint.
failovers=""
for run in $(seq "$runs"); do
  name=guarded-$run
  pod "$name" nantes | k paris apply -f - >/dev/null
  wait_for 60 running paris "$name" || { echo "$name did not start" >&2; exit 1; }
  standby() { curl -s "http://127.0.0.1:${api[nantes]}/metrics" | awk '$1 == "archipel_standby_checkpoints" && $2 >= 1 {ok=1} END {exit !ok}'; }
  wait_for 60 standby || { echo "no checkpoint reached nantes" >&2; exit 1; }
  stall_us=$(($(date +%s%N) / 1000))
  link paris nantes stall
  wait_for 30 running nantes "$name" || { echo "no failover" >&2; cat "$tmp/nantes.log" >&2; exit 1; }
  first=$(k nantes logs "$name" | head -1)
  ms=$(awk -v a="$first" -v b="$stall_us" 'BEGIN {printf "%.0f", (a - b) / 1000}')
  failovers+="$ms "
  echo "run $run: failover ${ms} ms" >&2
  link paris nantes resume
  wait_for 60 gone paris "$name" || echo "paris's copy of $name was not fenced" >&2
  k nantes delete pod "$name" --wait=true >/dev/null
  wait_for 30 reachable paris nantes
done

cold=$(tr ' ' '\n' <<<"${downtimes[cold]}" | grep . | median)
warm=$(tr ' ' '\n' <<<"${downtimes[warm]}" | grep . | median)
live=$(tr ' ' '\n' <<<"${downtimes[live]}" | grep . | median)
plain=$(tr ' ' '\n' <<<"${rate[plain]}" | grep . | median)
protected=$(tr ' ' '\n' <<<"${rate[protected]}" | grep . | median)
failover=$(tr ' ' '\n' <<<"$failovers" | grep . | median)
ratio=$(awk -v c="$cold" -v l="$live" 'BEGIN {printf "%.2f", c / l}')
overhead=$(awk -v p="$plain" -v q="$protected" 'BEGIN {printf "%.1f", (1 - q / p) * 100}')
printf '\n%s MiB workload, %s runs, links: latency %s, bandwidth %s\n' "$mib" "$runs" "$latency" "$bandwidth"
printf '%-34s %10s   %s\n' "measure" "median" "runs"
printf '%-34s %8s ms   %s\n' "cold downtime" "$cold" "${downtimes[cold]}"
printf '%-34s %8s ms   %s\n' "warm downtime" "$warm" "${downtimes[warm]}"
printf '%-34s %8s ms   %s\n' "live (post-copy) downtime" "$live" "${downtimes[live]}"
printf '%-34s %10s   (target >= 5)\n' "cold / live" "$ratio"
printf '%-34s %8s ms   %s (target <= 2000)\n' "failover (stall -> first stamp)" "$failover" "$failovers"
printf '%-34s %8s /s   %s\n' "throughput, not protected" "$plain" "${rate[plain]}"
printf '%-34s %8s /s   %s\n' "throughput, protected" "$protected" "${rate[protected]}"
printf '%-34s %9s %%   (target <= 5; %s checkpoints, %s s frozen)\n' "checkpoint overhead" "$overhead" "$checkpoints" "$frozen"
for mode in cold warm live; do
  printf '%-34s %10s B   %s\n' "image bytes sent, $mode" "$(tr ' ' '\n' <<<"${bytes[$mode]}" | grep . | median)" "${bytes[$mode]}"
done
mkdir -p "$root/build/bench"
cat >"$root/build/bench/migration_sites.json" <<JSON
{"mib": $mib, "runs": $runs, "latency": "$latency", "bandwidth": "$bandwidth",
 "downtime_ms": {"cold": $cold, "warm": $warm, "live": $live}, "cold_over_live": $ratio,
 "failover_ms": $failover, "stamps_per_second": {"plain": $plain, "protected": $protected},
 "checkpoint_overhead_percent": $overhead, "checkpoints": ${checkpoints:-0}, "frozen_seconds": ${frozen:-0}}
JSON
