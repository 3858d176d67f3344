# Sourced by the proxy benchmarks (from the repository root). Builds the release binary ($bin),
# makes a scratch directory ($tmp) removed at exit with every process listed in $pids, and
# defines:
#   wait_http URL                   waits (up to 40 s) for URL to answer 2xx
#   nginx_conf …                    nginx as the plain reverse proxy they compare against:
#   nginx_conf FILE LISTEN_PORT UPSTREAM_PORT WORKERS [EXTRA_LINE]
#                                   writes an nginx configuration to FILE: listening on 127.0.0.1:LISTEN_PORT, proxying every
# request to 127.0.0.1:UPSTREAM_PORT over keep-alive connections, unbuffered, no access log,
# WORKERS worker processes, EXTRA_LINE (e.g. "master_process off;") at the top level.
#   start_nginx UPSTREAM_PORT       runs that nginx with NGINX_WORKERS (default 2) workers in
#                                   front of the cluster at UPSTREAM_PORT and waits for it; sets
#                                   $nginx_port and $nginx_workers (their pids)
#   create_bench_configmap PORT     creates ConfigMap default/bench on the cluster at PORT
nginx_conf() {
  local file=$1 listen=$2 upstream=$3 workers=$4 extra=${5:-}
  local dir
  dir=$(dirname "$file")
  cat >"$file" <<CONF
daemon off;
$extra
user root;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  upstream cluster { server 127.0.0.1:$upstream; keepalive 64; }
  server {
    listen 127.0.0.1:$listen;
    location / {
      proxy_pass http://cluster;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
}

cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DARCHIPEL_TESTS=OFF >/dev/null
out=$(cmake --build build/bench --target archipel 2>&1) || { echo "$out" >&2; exit 1; }
bin=build/bench/archipel

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
source tests/e2e/federation.sh
wait_http() { for _ in $(seq 400); do curl -sf -o /dev/null "$1" && return; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
start_nginx() {
  nginx_port=$(free_port)
  nginx_conf "$tmp/nginx.conf" "$nginx_port" "$1" "${NGINX_WORKERS:-2}"
  nginx -c "$tmp/nginx.conf" &
  pids+=($!)
  local master=$!
  wait_http "http://127.0.0.1:$nginx_port/version"
  nginx_workers=$(pgrep -P "$master" | tr '\n' ' ')
}
create_bench_configmap() {
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bench"},"data":{"k":"v"}}' \
    "http://127.0.0.1:$1/api/v1/namespaces/default/configmaps"
}
