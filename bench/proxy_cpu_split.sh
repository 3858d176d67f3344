#!/usr/bin/env bash
# Where the machine's CPU goes while wrk drives GETs of one ConfigMap at CONNS connections
# (default 16): direct to the cluster, through the site's front door (no scope), through nginx
# as a plain reverse proxy (NGINX_WORKERS, default 2), back to back in each of RUNS rounds.
# Per request: the cluster's CPU, the proxy's (and of it, system time), the rest (wrk, kernel
# work outside these processes), and the share of the run the machine's cores sat idle, which
# shows a proxy thread waiting for a core while the pipeline behind it starves.
# Usage: [CONNS=16] [NGINX_WORKERS=2] bench/proxy_cpu_split.sh [RUNS=3] [SECONDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
seconds=${2:-5}
conns=${CONNS:-16}

source bench/proxy_common.sh

federation_init "$bin" "$tmp" paris
"$bin" cluster --listen "127.0.0.1:${cluster[paris]}" --data "$tmp/var/cluster" --log-level warn \
  >"$tmp/cluster.log" 2>&1 &
pids+=($!)
cluster_pid=$!
federation_config paris "{mode: external, url: \"http://127.0.0.1:${cluster[paris]}\"}" "log: {level: warn}"
wait_http "http://127.0.0.1:${cluster[paris]}/version"
"$bin" site --config "$tmp/paris.yaml" >"$tmp/paris.log" 2>&1 &
pids+=($!)
site_pid=$!
wait_http "http://127.0.0.1:${api[paris]}/healthz"
create_bench_configmap "${cluster[paris]}"
start_nginx "${cluster[paris]}"

# ticks FIELD PID...: clock ticks of all the processes' threads (14: user, 15: system).
ticks() {
  local f=$1 p
  shift
  (($#)) || { echo 0; return; }
  for p in "$@"; do cat /proc/"$p"/task/*/stat; done | awk -v f="$f" '{t += (f == 0) ? $14 + $15 : $f} END {print t + 0}'
}
# machine: "idle total" ticks of all cores.
machine() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
path=/api/v1/namespaces/default/configmaps/bench
# one NAME URL [PROXY_PID...]
one() {
  local name=$1 url=$2
  shift 2
  local c0 p0 s0 i0 t0 c1 p1 s1 i1 t1 n
  c0=$(ticks 0 "$cluster_pid"); p0=$(ticks 0 "$@"); s0=$(ticks 15 "$@"); read -r i0 t0 < <(machine)
  n=$(wrk -t"$((conns < 2 ? conns : 2))" -c"$conns" -d"${seconds}s" "$url" | awk '/ requests in / {print $1}')
  c1=$(ticks 0 "$cluster_pid"); p1=$(ticks 0 "$@"); s1=$(ticks 15 "$@"); read -r i1 t1 < <(machine)
  awk -v nm="$name" -v n="$n" -v s="$seconds" -v c=$((c1 - c0)) -v p=$((p1 - p0)) -v sy=$((s1 - s0)) \
    -v i=$((i1 - i0)) -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
      us = 1e6 / hz / n
      printf "%-9s %8.0f %9.1f %9.1f %9.1f %9.1f %6.1f%%\n", nm, n / s, c * us, p * us, sy * us, (t - i - c - p) * us, 100 * i / t }'
}
printf 'GET of one ConfigMap, %d connections, %d rounds of %ds; CPU in microseconds per request\n' "$conns" "$runs" "$seconds"
printf '%-9s %8s %9s %9s %9s %9s %7s\n' case req/s cluster proxy "(system)" rest idle
for ((r = 0; r < runs; r++)); do
  one direct "http://127.0.0.1:${cluster[paris]}$path"
  one archipel "http://127.0.0.1:${api[paris]}$path" "$site_pid"
  # shellcheck disable=SC2086 # one pid per word
  one nginx "http://127.0.0.1:$nginx_port$path" $nginx_workers
done
