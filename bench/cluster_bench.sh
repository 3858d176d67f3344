#!/usr/bin/env bash
# Embedded cluster benchmark over loopback: GET of one ConfigMap, LIST of 1,000 ConfigMaps, and
# create throughput, measured with wrk against `archipel cluster` (release build). Side by side,
# nginx serves the very same response bytes from files: the ratio says what the API semantics
# cost over a static HTTP server on this machine. Each figure is the median of RUNS runs.
# Usage: bench/cluster_bench.sh [RUNS=3] [SECONDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
seconds=${2:-5}

cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DARCHIPEL_TESTS=OFF >/dev/null
out=$(cmake --build build/bench --target archipel 2>&1) || { echo "$out" >&2; exit 1; }

tmp=$(mktemp -d)
cluster_pid=""
nginx_pid=""
cleanup() {
  [[ -n $cluster_pid ]] && kill "$cluster_pid" 2>/dev/null
  [[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

build/bench/archipel cluster --listen 127.0.0.1:0 --data "$tmp/data" --log-level warn >"$tmp/out" &
cluster_pid=$!
for _ in $(seq 100); do
  port=$(sed -n 's/^listening on 127.0.0.1://p' "$tmp/out")
  [[ -n $port ]] && break
  sleep 0.05
done
base="http://127.0.0.1:$port"
post() { curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' --data "$2" "$base$1"; }
post /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"list"}}'
post /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"create"}}'
seq 1000 | xargs -P 8 -I{} curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
  --data '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-{}","labels":{"app":"bench"}},"data":{"key":"value-{}","mode":"fast"}}' \
  "$base/api/v1/namespaces/list/configmaps"

# The same bytes, for nginx.
mkdir -p "$tmp/www"
curl -sf "$base/api/v1/namespaces/list/configmaps/cm-1" >"$tmp/www/get.json"
curl -sf "$base/api/v1/namespaces/list/configmaps" >"$tmp/www/list.json"
count=$(grep -o '"kind":"ConfigMap"' "$tmp/www/list.json" | wc -l)
cat >"$tmp/nginx.conf" <<CONF
daemon off;
user root;
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:0; root $tmp/www; }
}
CONF
# nginx cannot bind port 0 and report it: pick a free port the kernel gives us.
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s/listen 127.0.0.1:0/listen 127.0.0.1:$nginx_port/" "$tmp/nginx.conf"
nginx -c "$tmp/nginx.conf" &
nginx_pid=$!
sleep 0.5

cat >"$tmp/create.lua" <<'LUA'
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c-%d-%d"},"data":{"k":"v"}}', id, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
LUA

# run NAME URL CONNECTIONS [SCRIPT]: prints "req/s p50 p99" medians over the runs.
measure() {
  local url=$1 conns=$2 script=${3:-}
  local results=()
  for _ in $(seq "$runs"); do
    local args=(-t2 -c"$conns" -d"${seconds}s" --latency)
    [[ -n $script ]] && args+=(-s "$script")
    local text
    text=$(wrk "${args[@]}" "$url")
    local rps p50 p99
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$text")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$text")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$text")
    results+=("$rps $p50 $p99")
  done
  printf '%s\n' "${results[@]}" | sort -n | awk -v n="$runs" 'NR == int((n + 1) / 2) {print}'
}

printf 'embedded cluster benchmark: %d runs of %ds each, median run shown; %d ConfigMaps listed\n' \
  "$runs" "$seconds" "$count"
printf '%-28s %12s %10s %10s %14s\n' "case" "req/s" "p50" "p99" "vs nginx req/s"
row() {
  local name=$1 archipel=$2 nginx=${3:-}
  read -r a_rps a50 a99 <<<"$archipel"
  local ratio="-"
  if [[ -n $nginx ]]; then
    read -r n_rps _ _ <<<"$nginx"
    ratio=$(awk -v a="$a_rps" -v b="$n_rps" 'BEGIN {printf "%.2f", a / b}')
  fi
  printf '%-28s %12s %10s %10s %14s\n' "$name" "$a_rps" "$a50" "$a99" "$ratio"
}
get_a=$(measure "$base/api/v1/namespaces/list/configmaps/cm-1" 16)
get_n=$(measure "http://127.0.0.1:$nginx_port/get.json" 16)
row "GET configmap (archipel)" "$get_a" "$get_n"
row "GET same bytes (nginx)" "$get_n"
list_a=$(measure "$base/api/v1/namespaces/list/configmaps" 4)
list_n=$(measure "http://127.0.0.1:$nginx_port/list.json" 4)
row "LIST 1000 (archipel)" "$list_a" "$list_n"
row "LIST same bytes (nginx)" "$list_n"
create_a=$(measure "$base/api/v1/namespaces/create/configmaps" 8 "$tmp/create.lua")
row "CREATE configmap (archipel)" "$create_a"
