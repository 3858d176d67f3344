#!/usr/bin/env bash
# Two real sites (archipel site) with identities and pinned keys: they connect over the peer
# channel, see each other Reachable, and when one stops the other declares it Down and itself
# Isolated. The front door shows it the Kubernetes way: the Sites API (list, get, watch, and
# kubectl get sites), /metrics and /healthz. Usage: site_peers_test.sh PATH/TO/archipel
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
failures=0
check() {  # check NAME FILE PATTERN: waits up to 20 s for PATTERN in FILE
  local name=$1 file=$2 pattern=$3
  for _ in $(seq 400); do
    if grep -Eq -- "$pattern" "$file"; then
      echo "ok   $name"; passed=$((passed + 1)); return
    fi
    sleep 0.05
  done
  echo "FAIL $name: $file lacks /$pattern/"; sed 's/^/    /' "$file" | tail -15; failures=$((failures + 1))
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$bin" keygen --site paris --out "$tmp/keys" >/dev/null
"$bin" keygen --site nantes --out "$tmp/keys" >/dev/null
key() { awk '{print $3}' "$tmp/keys/$1.pub"; }
declare -A peer_port=([paris]=$(free_port) [nantes]=$(free_port))
declare -A api_port=([paris]=$(free_port) [nantes]=$(free_port))
for site in paris nantes; do
  other=$([[ $site == paris ]] && echo nantes || echo paris)
  cat >"$tmp/$site.yaml" <<YAML
site: $site
listen: {api: "127.0.0.1:${api_port[$site]}", peer: "127.0.0.1:${peer_port[$site]}"}
data: $tmp/var/$site
identity: $tmp/keys/$site.key
peers:
  - {name: $other, address: "127.0.0.1:${peer_port[$other]}", public_key: "$(key "$other")"}
cluster: {mode: embedded, listen: "127.0.0.1:0"}
YAML
done

"$bin" site --config "$tmp/paris.yaml" >"$tmp/paris.log" 2>&1 &
pids+=($!)
"$bin" site --config "$tmp/nantes.yaml" >"$tmp/nantes.log" 2>&1 &
nantes=$!
pids+=($nantes)
check paris-sees-nantes "$tmp/paris.log" 'peer nantes: Down -> Reachable'
check nantes-sees-paris "$tmp/nantes.log" 'peer paris: Down -> Reachable'

api="http://127.0.0.1:${api_port[paris]}"
expect() {  # expect NAME COMMAND...: the command succeeds
  local name=$1; shift
  if out=$("$@" 2>&1); then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name: $out" | head -20; failures=$((failures + 1))
  fi
}
expect healthz bash -c "curl -sf $api/healthz | grep -qx ok"
expect sites-list /usr/bin/python3 -c "
import json, sys, urllib.request
l = json.load(urllib.request.urlopen('$api/apis/archipel.io/v1/sites'))
assert l['kind'] == 'SiteList', l
s = {i['metadata']['name']: i['status'] for i in l['items']}
assert s['nantes']['state'] == 'Reachable' and s['nantes']['connected'], s
assert s['paris']['state'] == 'Local' and s['paris']['local'], s
"
expect site-get-unknown-is-404 bash -c "curl -s -o /dev/null -w '%{http_code}' $api/apis/archipel.io/v1/sites/lyon | grep -qx 404"
expect kubectl-get-sites bash -c "kubectl --server $api get sites 2>&1 | tee /dev/stderr | grep -Eq '^nantes +Reachable +true'"
expect metrics bash -c "curl -sf $api/metrics | grep -q 'archipel_peer_state{peer=\"nantes\",state=\"Reachable\"} 1'"
curl -sN "$api/apis/archipel.io/v1/sites?watch=1" >"$tmp/watch.out" 2>/dev/null &
pids+=($!)
check watch-starts-with-added "$tmp/watch.out" '"type":"ADDED".*"name":"nantes"'

kill "$nantes"
check paris-detects-down "$tmp/paris.log" 'peer nantes: (Reachable|Suspected) -> Down'
check paris-isolated "$tmp/paris.log" 'is Isolated'
check watch-sees-down "$tmp/watch.out" '"type":"MODIFIED".*"name":"nantes".*"state":"Down"'
check watch-sees-isolated "$tmp/watch.out" '"type":"MODIFIED".*"name":"paris".*"state":"Isolated"'
expect metrics-isolated bash -c "curl -sf $api/metrics | grep -qx 'archipel_site_isolated 1'"

# A site whose configuration lacks a peer's key is refused at start, naming the key.
sed 's/, public_key: "[^"]*"//' "$tmp/paris.yaml" >"$tmp/nokey.yaml"
"$bin" site --config "$tmp/nokey.yaml" >"$tmp/nokey.log" 2>&1
code=$?
if [[ $code -eq 2 ]] && grep -q 'peers\[0\].public_key' "$tmp/nokey.log"; then
  echo "ok   missing-key"; passed=$((passed + 1))
else
  echo "FAIL missing-key: exit $code"; cat "$tmp/nokey.log"; failures=$((failures + 1))
fi

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
