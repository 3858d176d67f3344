#!/usr/bin/env bash
# Protection against isolation between real sites: paris, nantes and rennes run as `archipel
# site` processes, every peer connection through its own `archipel link` emulator. The cart runs
# at paris, protected by 'nantes | rennes': paris checkpoints it and ships the checkpoints. Then
# every link of paris stalls (bytes held, connections open: a cable cut, which only the failure
# detectors notice): paris keeps its pod running (it sees no failover site), nantes
# (first in the scope) declares paris Down and restores the cart from the last checkpoint, one
# epoch higher, and rennes does not. When the links heal, paris stops its stale copy (fencing):
# one copy runs, at nantes, with every item the last checkpoint held. Then a pod whose policy
# is to leave when the links degrade: paris loses rennes only, and moves it to nantes itself.
# Usage: failover_test.sh PATH/TO/archipel PATH/TO/cart
# Needs a working CRIU (root): skipped without one (exit 77), except under CI=true.
set -uo pipefail
bin=$1
cart=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/federation.sh"
source "$here/checks.sh"

require_criu "$bin"

tmp=$(mktemp -d)
pids=()
declare -A site_pid
port=$(free_port)
cleanup() {
  for p in "${pids[@]}" "${site_pid[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pkill -9 -f "$cart --port $port" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

sites=(paris nantes rennes)
federation_init "$bin" "$tmp" "${sites[@]}"
federation_pids=()
federation_links "$bin"
pids+=("${federation_pids[@]}")
for s in "${sites[@]}"; do
  federation_config "$s" "{mode: embedded, listen: \"127.0.0.1:${cluster[$s]}\"}"
  federation_route "$s"
  "$bin" site --config "$tmp/$s.yaml" >"$tmp/$s.log" 2>&1 &
  site_pid[$s]=$!
done
k() { local s=$1; shift; kubectl --server "http://127.0.0.1:${api[$s]}" "$@"; }
metric() {  # metric SITE NAME: its value, or nothing
  curl -s "http://127.0.0.1:${api[$1]}/metrics" | awk -v m="$2" '$1 == m {print $2}'
}
reachable() {  # reachable SITE PEER
  curl -sf "http://127.0.0.1:${api[$1]}/metrics" |
    grep -q "archipel_peer_state{peer=\"$2\",state=\"Reachable\"} 1"
}
for s in "${sites[@]}"; do
  eventually_for 20 "$s-up" curl -sf "http://127.0.0.1:${api[$s]}/readyz"
done
connected() { reachable paris nantes && reachable paris rennes && reachable nantes rennes; }
eventually_for 20 connected connected

cat <<YAML | k paris apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata:
  name: cart
  namespace: default
  annotations: {archipel.io/migrate: criu, archipel.io/failover: "nantes | rennes"}
spec:
  containers:
  - {name: cart, image: local, command: ["$cart", "--port", "$port"], ports: [{containerPort: $port}]}
YAML
eventually_for 20 cart-serves curl -sf "http://127.0.0.1:$port/healthz"
for item in apple pear pear; do curl -sf -X POST "http://127.0.0.1:$port/items/$item" >/dev/null; done
# A checkpoint taken after the items, at both failover sites.
taken=$(metric paris archipel_protection_checkpoints_total)
checkpointed() { (($(metric paris archipel_protection_checkpoints_total) >= ${taken:-0} + 2)); }
eventually_for 30 checkpointed checkpointed
check standby-at-nantes 0 '^1$' -- metric nantes archipel_standby_checkpoints
check standby-at-rennes 0 '^1$' -- metric rennes archipel_standby_checkpoints
check interval-metric 0 '^[0-9.]+$' -- metric paris 'archipel_protection_interval_seconds{namespace="default",pod="cart"}'

# paris is cut off from everyone, silently.
cut_at=$(date +%s%N)
link paris nantes stall
link paris rennes stall
running_at() { [[ $(k "$1" get pod cart -o jsonpath='{.status.phase}' 2>/dev/null) == Running ]]; }
eventually_for 20 restored-at-nantes running_at nantes
failover_ms=$((($(date +%s%N) - cut_at) / 1000000))
echo "     (links stalled -> Running at nantes: ${failover_ms} ms)"
check epoch-raised 0 '^2$' -- k nantes get pod cart -o jsonpath='{.metadata.annotations.archipel\.io/epoch}'
check failed-over-from 0 '^paris$' -- \
  k nantes get pod cart -o jsonpath='{.metadata.annotations.archipel\.io/failed-over-from}'
check failover-metric 0 '^1$' -- metric nantes archipel_failovers_total
check rennes-did-not 1 'NotFound|not found' -- k rennes get pod cart
check paris-keeps-running 0 '^Running$' -- k paris get pod cart -o jsonpath='{.status.phase}'

# The links come back: paris's copy, at the older epoch, goes.
link paris nantes resume
link paris rennes resume
gone_at() { ! k "$1" get pod cart >/dev/null 2>&1; }
eventually_for 30 paris-fenced gone_at paris
check fenced-metric 0 '^1$' -- metric paris archipel_fenced_total
check nantes-runs 0 '^Running$' -- k nantes get pod cart -o jsonpath='{.status.phase}'
one_copy() { [[ $(pgrep -fc "^$cart --port $port\$") == 1 ]]; }
eventually_for 20 one-copy one_copy
check items-of-the-checkpoint 0 '"apple":1,"pear":2' -- curl -sf "http://127.0.0.1:$port/items"

# nantes now protects it towards rennes; once deleted, no site keeps a checkpoint of it (a
# later failover must not bring it back).
shipped_by_nantes() { (($(metric nantes archipel_protection_checkpoints_total) >= 1)); }
eventually_for 30 protected-from-nantes shipped_by_nantes
k nantes delete pod cart >/dev/null
no_standby() { [[ $(metric "$1" archipel_standby_checkpoints) == 0 ]]; }
eventually checkpoint-dropped-at-rennes no_standby rennes
eventually checkpoint-dropped-at-nantes no_standby nantes

# A pod whose policy is to leave when its site's links degrade: paris loses rennes but still
# reaches nantes, so paris moves the cart to nantes itself (a warm migration whose base is the
# checkpoint nantes keeps), with everything it held at the freeze, not only what the last
# checkpoint had.
no_cart() { ! pgrep -f "^$cart --port $port\$" >/dev/null; }
eventually no-cart-left no_cart
cat <<YAML | k paris apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata:
  name: cart
  namespace: default
  annotations:
    archipel.io/migrate: criu
    archipel.io/failover: "nantes | rennes"
    archipel.io/on-degraded: evacuate
spec:
  containers:
  - {name: cart, image: local, command: ["$cart", "--port", "$port"], ports: [{containerPort: $port}]}
YAML
eventually_for 20 cart-serves-again curl -sf "http://127.0.0.1:$port/healthz"
for item in fig fig; do curl -sf -X POST "http://127.0.0.1:$port/items/$item" >/dev/null; done
taken=$(metric paris archipel_protection_checkpoints_total)
eventually_for 30 checkpointed-again checkpointed
curl -sf -X POST "http://127.0.0.1:$port/items/kiwi" >/dev/null  # after the checkpoint
link paris rennes stall
eventually_for 20 evacuated-to-nantes running_at nantes
check evacuated-from-paris 0 '^paris$' -- \
  k nantes get pod cart -o jsonpath='{.metadata.annotations.archipel\.io/migrated-from}'
check evacuation-migration 0 'evacuate-cart-[a-z0-9]+ +cart +paris +nantes +warm +Succeeded' -- \
  k paris get migrations -l archipel.io/reason=degraded-links
check evacuation-used-standby 0 '^standby-then-delta$' -- \
  k paris get migrations -l archipel.io/reason=degraded-links -o jsonpath='{.items[0].status.strategy}'
eventually_for 20 gone-from-paris gone_at paris
echo "     (evacuation: downtime $(k paris get migrations -l archipel.io/reason=degraded-links \
  -o jsonpath='{.items[0].status.downtimeMs}') ms, $(k paris get migrations \
  -l archipel.io/reason=degraded-links -o jsonpath='{.items[0].status.imageBytes}') bytes)"
check items-at-the-freeze 0 '"fig":2,"kiwi":1' -- curl -sf "http://127.0.0.1:$port/items"
check rennes-stays-out 1 'NotFound|not found' -- k rennes get pod cart
link paris rennes resume
eventually_for 20 one-copy-after-evacuation one_copy

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
