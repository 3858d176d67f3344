#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: deterministic where wall-clock
# throughput on a shared 2-core machine is not. Side by side on the same backend: the site's
# front door without a scope, and nginx as a plain reverse proxy (one worker, no master), both
# run under callgrind; after a warm-up the counters are zeroed, N GETs of one ConfigMap are sent
# over 4 keep-alive connections, and the counters dumped. Usage: bench/proxy_instructions.sh [N=2000]
# With PROFILE_DIR set, the callgrind profiles are kept there (archipel.out, nginx.out) for
# callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}

source bench/proxy_common.sh

federation_init "$bin" "$tmp" paris
"$bin" cluster --listen "127.0.0.1:${cluster[paris]}" --data "$tmp/var/cluster" --log-level warn \
  >"$tmp/cluster.log" 2>&1 &
pids+=($!)
federation_config paris "{mode: external, url: \"http://127.0.0.1:${cluster[paris]}\"}" "log: {level: warn}"
wait_http "http://127.0.0.1:${cluster[paris]}/version"
path=/api/v1/namespaces/default/configmaps/bench
create_bench_configmap "${cluster[paris]}"

nginx_port=$(free_port)
nginx_conf "$tmp/nginx.conf" "$nginx_port" "${cluster[paris]}" 1 "master_process off;"

# count NAME PORT COMMAND...: runs COMMAND under callgrind and prints the instructions it spent
# per request.
count() {
  local name=$1 port=$2
  shift 2
  valgrind --tool=callgrind --callgrind-out-file="$tmp/$name.out" --dump-instr=no "$@" \
    >"$tmp/$name.log" 2>&1 &
  local vpid=$!
  pids+=($vpid)
  wait_http "http://127.0.0.1:$port$path"
  wrk -t1 -c4 -d2s "http://127.0.0.1:$port$path" >/dev/null  # warm-up: pools, caches
  callgrind_control -z "$vpid" >/dev/null 2>&1
  /usr/bin/python3 - "$port" "$path" "$n" <<'PY'
import http.client, sys, threading
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def run(k):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(k):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit(f"HTTP {r.status}")
threads = [threading.Thread(target=run, args=(n // 4,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
PY
  callgrind_control -d "$vpid" >/dev/null 2>&1
  local total
  total=$(callgrind_annotate "$tmp/$name.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  [[ -n ${PROFILE_DIR:-} ]] && mkdir -p "$PROFILE_DIR" && cp "$tmp/$name.out.1" "$PROFILE_DIR/$name.out"
  kill "$vpid"
  wait "$vpid" 2>/dev/null || true
  echo $((total / (n / 4 * 4)))
}

a=$(count archipel "${api[paris]}" "$bin" site --config "$tmp/paris.yaml")
x=$(count nginx "$nginx_port" nginx -c "$tmp/nginx.conf")
printf 'instructions per proxied GET (callgrind, %d requests over 4 connections)\n' "$n"
printf '  archipel (no scope)   %8d\n  nginx reverse proxy   %8d\n  ratio                 %8.2f\n' \
  "$a" "$x" "$(awk -v a="$a" -v x="$x" 'BEGIN {print a / x}')"
