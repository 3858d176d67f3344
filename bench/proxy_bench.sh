#!/usr/bin/env bash
# The scoped proxy's cost, side by side in one run on the same backend (release build, wrk):
#   direct   wrk -> the site's Kubernetes (an `archipel cluster` process)
#   archipel wrk -> the site's front door, no scope (this site only) -> the same cluster
#   nginx    wrk -> nginx as a plain reverse proxy (keep-alive upstream) -> the same cluster
# on GET of one ConfigMap; then `&` over three sites against the slowest single site, through
# the front door of the first (two sites reached over the peer channel). Each figure is the
# median of RUNS runs. Usage: [ONLY_LOCAL=1] bench/proxy_bench.sh [RUNS=3] [SECONDS=5]
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
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bench"},"data":{"k":"v"}}' \
    "http://127.0.0.1:${cluster[$s]}/api/v1/namespaces/default/configmaps"
done
# Wait until paris sees both peers connected.
for _ in $(seq 200); do
  n=$(curl -sf "http://127.0.0.1:${api[paris]}/metrics" | grep -c '^archipel_peer_connected{peer="[a-z]*"} 1' || true)
  [[ $n -eq 2 ]] && break
  sleep 0.05
done

nginx_port=$(free_port)
nginx_conf "$tmp/nginx.conf" "$nginx_port" "${cluster[paris]}" 2
nginx -c "$tmp/nginx.conf" &
pids+=($!)
nginx_pid=$!
wait_http "http://127.0.0.1:$nginx_port/version"
nginx_workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')

# CPU time (user + system, clock ticks) of processes, all their threads.
cpu_ticks() { local p; for p in "$@"; do cat /proc/"$p"/task/*/stat; done | awk '{t += $14 + $15} END {print t + 0}'; }
# measure URL CONNECTIONS HEADER [PID...]: "req/s p50 p99 cpu" of the median run (by req/s),
# cpu being the CPU microseconds the given processes spent per request ("-" without them):
# steadier than throughput on a machine whose cores wrk, the proxy and the cluster share.
measure() {
  local url=$1 conns=$2 header=$3
  shift 3
  local results=()
  for _ in $(seq "$runs"); do
    local args=(-t"$((conns < 2 ? conns : 2))" -c"$conns" -d"${seconds}s" --latency)
    [[ -n $header ]] && args+=(-H "$header")
    local text before after
    before=$( (($#)) && cpu_ticks "$@" || echo 0)
    text=$(wrk "${args[@]}" "$url")
    after=$( (($#)) && cpu_ticks "$@" || echo 0)
    if grep -q 'Non-2xx' <<<"$text"; then echo "non-2xx answers from $url" >&2; exit 1; fi
    results+=("$(awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v has=$# \
      '/^Requests\/sec/ {r=$2} $1 == "50%" {p=$2} $1 == "99%" {q=$2} / requests in / {n=$1}
       END {print r, p, q, (has > 0 && n > 0) ? sprintf("%.1fus", ticks * 1e6 / hz / n) : "-"}' <<<"$text")")
  done
  printf '%s\n' "${results[@]}" | sort -n | awk -v n="$runs" 'NR == int((n + 1) / 2) {print}'
}
# to_us 1.23ms -> 1230
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1000000 }'; }

path=/api/v1/namespaces/default/configmaps/bench
printf 'proxy benchmark: GET one ConfigMap, %d runs of %ds each (median run), wrk -t2 (-t1 for one connection)\n' "$runs" "$seconds"
printf '%-34s %6s %10s %9s %9s %12s\n' case conns req/s p50 p99 "proxy CPU"
rows=()
for conns in 1 16; do
  direct=$(measure "http://127.0.0.1:${cluster[paris]}$path" $conns "")
  # shellcheck disable=SC2086 # one pid per word
  archipel=$(measure "http://127.0.0.1:${api[paris]}$path" $conns "" ${site_pid[paris]})
  # shellcheck disable=SC2086
  nginx=$(measure "http://127.0.0.1:$nginx_port$path" $conns "" $nginx_workers)
  for pair in "direct:$direct" "archipel (no scope):$archipel" "nginx reverse proxy:$nginx"; do
    read -r rps p50 p99 cpu <<<"${pair#*:}"
    printf '%-34s %6s %10s %9s %9s %12s\n' "${pair%%:*}" $conns "$rps" "$p50" "$p99" "$cpu"
  done
  read -r d_rps d50 _ _ <<<"$direct"; read -r a_rps a50 _ a_cpu <<<"$archipel"; read -r n_rps n50 _ n_cpu <<<"$nginx"
  rows+=("$(awk -v c=$conns -v a="$a_rps" -v n="$n_rps" -v a50="$(to_us "$a50")" -v d50="$(to_us "$d50")" -v n50="$(to_us "$n50")" \
    -v ac="${a_cpu%us}" -v nc="${n_cpu%us}" \
    'BEGIN {printf "  %2d conns: archipel/nginx throughput %.2f, CPU per request %.2f; added p50 archipel %+.0f us, nginx %+.0f us\n", c, a / n, ac / nc, a50 - d50, n50 - d50}')")
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
