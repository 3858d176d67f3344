#!/usr/bin/env bash
# The scoped proxy's cost, side by side in one run on the same backend (release build, wrk):
#   direct   wrk -> the site's Kubernetes (an `archipel cluster` process)
#   archipel wrk -> the site's front door, no scope (this site only) -> the same cluster
#   nginx    wrk -> nginx as a plain reverse proxy (keep-alive upstream) -> the same cluster
# on GET of one ConfigMap; then `&` over three sites against the slowest single site, through
# the front door of the first (two sites reached over the peer channel). Each figure is the
# median of RUNS runs; the three local cases run back to back in each round, and their ratios
# are taken per round (this machine's speed drifts between rounds more than within one).
# Usage: [ONLY_LOCAL=1] [NGINX_WORKERS=2] bench/proxy_bench.sh [RUNS=3] [SECONDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
seconds=${2:-5}
only_local=${ONLY_LOCAL:-}  # set: the local comparison only (no scopes over three sites)

source bench/proxy_common.sh

sites=(paris nantes rennes)
federation_init "$bin" "$tmp" "${sites[@]}"
declare -A site_pid
for s in "${sites[@]}"; do
  "$bin" cluster --listen "127.0.0.1:${cluster[$s]}" --data "$tmp/var/$s-cluster" \
    --log-level warn >"$tmp/$s-cluster.log" 2>&1 &
  pids+=($!)
  federation_config "$s" "{mode: external, url: \"http://127.0.0.1:${cluster[$s]}\"}" \
    "log: {level: warn}"
done
for s in "${sites[@]}"; do
  wait_http "http://127.0.0.1:${cluster[$s]}/version"
  "$bin" site --config "$tmp/$s.yaml" >"$tmp/$s.log" 2>&1 &
  pids+=($!)
  site_pid[$s]=$!
done
for s in "${sites[@]}"; do wait_http "http://127.0.0.1:${api[$s]}/healthz"; done

# One ConfigMap per site, named alike.
for s in "${sites[@]}"; do
  create_bench_configmap "${cluster[$s]}"
done
# Wait until paris sees both peers connected.
for _ in $(seq 200); do
  n=$(curl -sf "http://127.0.0.1:${api[paris]}/metrics" | grep -c '^archipel_peer_connected{peer="[a-z]*"} 1' || true)
  [[ $n -eq 2 ]] && break
  sleep 0.05
done

start_nginx "${cluster[paris]}"

# CPU time (user + system, clock ticks) of processes, all their threads.
cpu_ticks() { local p; for p in "$@"; do cat /proc/"$p"/task/*/stat; done | awk '{t += $14 + $15} END {print t + 0}'; }
# run_once URL CONNECTIONS HEADER [PID...]: "req/s p50 p99 cpu" of one wrk run, cpu being the
# CPU microseconds the given processes spent per request ("-" without them): steadier than
# throughput on a machine whose cores wrk, the proxy and the cluster share.
run_once() {
  local url=$1 conns=$2 header=$3
  shift 3
  local args=(-t"$((conns < 2 ? conns : 2))" -c"$conns" -d"${seconds}s" --latency)
  [[ -n $header ]] && args+=(-H "$header")
  local text before after
  before=$( (($#)) && cpu_ticks "$@" || echo 0)
  text=$(wrk "${args[@]}" "$url")
  after=$( (($#)) && cpu_ticks "$@" || echo 0)
  if grep -q 'Non-2xx' <<<"$text"; then echo "non-2xx answers from $url" >&2; exit 1; fi
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v has=$# \
    '/^Requests\/sec/ {r=$2} $1 == "50%" {p=$2} $1 == "99%" {q=$2} / requests in / {n=$1}
     END {print r, p, q, (has > 0 && n > 0) ? sprintf("%.1fus", ticks * 1e6 / hz / n) : "-"}' <<<"$text"
}
# median_run LINE...: the line of the median run (by req/s).
median_run() { printf '%s\n' "$@" | sort -n | awk -v n=$# 'NR == int((n + 1) / 2) {print}'; }
# measure URL CONNECTIONS HEADER [PID...]: the median of RUNS runs.
measure() {
  local results=() i
  for ((i = 0; i < runs; i++)); do results+=("$(run_once "$@")"); done
  median_run "${results[@]}"
}
# to_us 1.23ms -> 1230
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1000000 }'; }

path=/api/v1/namespaces/default/configmaps/bench
printf 'proxy benchmark: GET one ConfigMap, %d rounds of %ds runs (median run), wrk -t2 (-t1 for one connection)\n' "$runs" "$seconds"
printf 'each round runs direct, archipel and nginx back to back (in a rotating order), so that they\n'
printf 'share the machine'"'"'s moments; ratios are per round, then their median [min, max]\n'
printf '%-34s %6s %10s %9s %9s %12s\n' case conns req/s p50 p99 "proxy CPU"
rows=()
for conns in 1 16; do
  direct=() archipel=() nginx=() ratios=()
  for ((i = 0; i < runs; i++)); do
    for k in 0 1 2; do
      case $(((i + k) % 3)) in
        0) d=$(run_once "http://127.0.0.1:${cluster[paris]}$path" $conns "") ;;
        # shellcheck disable=SC2086 # one pid per word
        1) a=$(run_once "http://127.0.0.1:${api[paris]}$path" $conns "" ${site_pid[paris]}) ;;
        # shellcheck disable=SC2086
        2) x=$(run_once "http://127.0.0.1:$nginx_port$path" $conns "" $nginx_workers) ;;
      esac
    done
    direct+=("$d") archipel+=("$a") nginx+=("$x")
    read -r a_rps a50 _ a_cpu <<<"$a"; read -r n_rps n50 _ n_cpu <<<"$x"; read -r _ d50 _ _ <<<"$d"
    ratios+=("$(awk -v a="$a_rps" -v n="$n_rps" -v ac="${a_cpu%us}" -v nc="${n_cpu%us}" \
      -v a50="$(to_us "$a50")" -v n50="$(to_us "$n50")" -v d50="$(to_us "$d50")" \
      'BEGIN {print a / n, ac / nc, a50 - d50, n50 - d50}')")
  done
  for pair in "direct:$(median_run "${direct[@]}")" "archipel (no scope):$(median_run "${archipel[@]}")" \
    "nginx reverse proxy:$(median_run "${nginx[@]}")"; do
    read -r rps p50 p99 cpu <<<"${pair#*:}"
    printf '%-34s %6s %10s %9s %9s %12s\n' "${pair%%:*}" $conns "$rps" "$p50" "$p99" "$cpu"
  done
  rows+=("$(printf '%s\n' "${ratios[@]}" | awk -v c=$conns '
    function med(col,   n, i, j, v, t) { n = 0
      for (i = 1; i <= NR; i++) { t = x[i, col]; for (j = ++n; j > 1 && v[j - 1] > t; j--) v[j] = v[j - 1]; v[j] = t }
      return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
    function lo(col,   i, m) { m = x[1, col]; for (i = 2; i <= NR; i++) if (x[i, col] < m) m = x[i, col]; return m }
    function hi(col,   i, m) { m = x[1, col]; for (i = 2; i <= NR; i++) if (x[i, col] > m) m = x[i, col]; return m }
    { for (j = 1; j <= 4; j++) x[NR, j] = $j }
    END { printf "  %2d conns: archipel/nginx throughput %.2f [%.2f, %.2f], CPU per request %.2f [%.2f, %.2f]; added p50 archipel %+.0f us, nginx %+.0f us\n",
      c, med(1), lo(1), hi(1), med(2), lo(2), hi(2), med(3), med(4) }')")
done
printf '%s\n' "${rows[@]}"

[[ -n $only_local ]] && exit 0
echo
printf '%-34s %6s %10s %9s %9s\n' "scope (through paris)" conns req/s p50 p99
declare -A single
slowest=""
for s in paris nantes rennes; do
  single[$s]=$(measure "http://127.0.0.1:${api[paris]}$path" 1 "X-Archipel-Scope: $s")
  read -r rps p50 p99 _ <<<"${single[$s]}"
  printf '%-34s %6s %10s %9s %9s\n' "$s" 1 "$rps" "$p50" "$p99"
done
all=$(measure "http://127.0.0.1:${api[paris]}$path" 1 "X-Archipel-Scope: paris & nantes & rennes")
read -r rps p50 p99 _ <<<"$all"
printf '%-34s %6s %10s %9s %9s\n' "paris & nantes & rennes" 1 "$rps" "$p50" "$p99"
slow50=0
for s in paris nantes rennes; do
  read -r _ p50 _ _ <<<"${single[$s]}"
  v=$(to_us "$p50")
  slow50=$(awk -v a="$v" -v b="$slow50" 'BEGIN {print (a > b) ? a : b}')
done
read -r _ all50 _ _ <<<"$all"
awk -v a="$(to_us "$all50")" -v s="$slow50" 'BEGIN {printf "  & over 3 sites p50 / slowest single site p50: %.2f\n", a / s}'
