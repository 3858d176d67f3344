#!/usr/bin/env bash
# Planned migrations between real sites: paris, nantes and rennes run as `archipel site`
# processes with embedded clusters. A shopping cart (HTTP, in-memory) moves around them in every
# mode — cold, warm, live, app — and keeps every item; a counter moves and goes on counting
# without starting again; a stateless API answers from its new site; a migration whose restore
# fails leaves the pod running at its source with its state; Migrations work through kubectl (create, get, describe, label; bad input is
# refused) and through `archipel migrate`; metrics count them.
# Usage: migration_test.sh PATH/TO/archipel PATH/TO/cart PATH/TO/counter PATH/TO/api
# Needs a working CRIU (root): skipped without one (exit 77), except under CI=true.
set -uo pipefail
bin=$1
cart=$2
counter=$3
api_bin=$4
here=$(cd "$(dirname "$0")" && pwd)
source "$here/federation.sh"
source "$here/checks.sh"

require_criu "$bin"

tmp=$(mktemp -d)
declare -A site_pid
cleanup() {
  for p in "${site_pid[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  # Restored containers are not the sites' children: stop what is left of ours.
  pkill -9 -f "$cart --port $cart_port" 2>/dev/null
  pkill -9 -f "$cart --port $app_port" 2>/dev/null
  pkill -9 -f "$counter --interval-ms 37" 2>/dev/null
  pkill -9 -f "$api_bin --port $api_port" 2>/dev/null
  rm -rf "$tmp"
}
cart_port=$(free_port)
app_port=$(free_port)
api_port=$(free_port)
trap cleanup EXIT

sites=(paris nantes rennes)
federation_init "$bin" "$tmp" "${sites[@]}"
for s in "${sites[@]}"; do
  federation_config "$s" "{mode: embedded, listen: \"127.0.0.1:${cluster[$s]}\"}"
  "$bin" site --config "$tmp/$s.yaml" >"$tmp/$s.log" 2>&1 &
  site_pid[$s]=$!
done
k() { local s=$1; shift; kubectl --server "http://127.0.0.1:${api[$s]}" "$@"; }
migrate() { local s=$1; shift; "$bin" migrate --server "http://127.0.0.1:${api[$s]}" "$@"; }
for s in "${sites[@]}"; do
  eventually "$s-up" bash -c "curl -sf http://127.0.0.1:${api[$s]}/readyz"
done
eventually peers-connected bash -c "curl -sf http://127.0.0.1:${api[paris]}/metrics |
  grep -q 'archipel_peer_state{peer=\"rennes\",state=\"Reachable\"} 1' &&
  curl -sf http://127.0.0.1:${api[paris]}/metrics |
  grep -q 'archipel_peer_state{peer=\"nantes\",state=\"Reachable\"} 1'"

pod() {  # pod NAME MODE PORT COMMAND...: a pod manifest
  local name=$1 mode=$2 port=$3
  shift 3
  local args
  args=$(printf '"%s",' "$@")
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $name, namespace: default, annotations: {archipel.io/migrate: $mode}}
spec:
  containers:
  - name: $name
    image: local
    command: [${args%,}]
YAML
  ((port)) && echo "    ports: [{containerPort: $port}]"
}
items() { curl -sf "http://127.0.0.1:$1/items"; }
runs_at() {  # runs_at SITE POD: the pod is Running there, and nowhere else
  local s o
  [[ $(k "$1" get pod "$2" -o jsonpath='{.status.phase}' 2>/dev/null) == Running ]] || return 1
  for o in "${sites[@]}"; do
    [[ $o == "$1" ]] && continue
    k "$o" get pod "$2" >/dev/null 2>&1 && return 1
  done
  return 0
}

# The cart starts at paris with three items.
pod cart criu "$cart_port" "$cart" --port "$cart_port" | k paris apply -f - >/dev/null
eventually cart-serves curl -sf "http://127.0.0.1:$cart_port/healthz"
for item in apple pear pear; do curl -sf -X POST "http://127.0.0.1:$cart_port/items/$item" >/dev/null; done
want='"apple":1,"pear":2'

# Cold, warm and live, around the three sites: every item stays.
from=paris
for step in cold:nantes warm:rennes live:paris; do
  mode=${step%%:*}
  to=${step#*:}
  check "$mode-$from-to-$to" 0 "pod cart runs at $to: downtime [0-9.]+ ms \\($mode" -- \
    migrate "$from" pod/cart --to "$to" --mode "$mode"
  check "$mode-items-kept" 0 "$want" -- items "$cart_port"
  eventually "$mode-runs-only-at-$to" runs_at "$to" cart
  check "$mode-migrated-from" 0 "^$from\$" -- \
    k "$to" get pod cart -o jsonpath='{.metadata.annotations.archipel\.io/migrated-from}'
  from=$to
done
check cart-still-counts 0 '"served":[0-9]+' -- curl -sf -X POST "http://127.0.0.1:$cart_port/items/plum"
want='"apple":1,"pear":2,"plum":1'

# The steps and the downtime are in the Migration's status; kubectl shows them.
check kubectl-get-migrations 0 'cart-[a-z0-9]+ +cart +rennes +paris +live +Succeeded +[0-9]+ms' -- \
  k rennes get migrations
check status-downtime 0 '^[0-9]+(\.[0-9]+)?$' -- \
  k paris get migrations -o jsonpath='{.items[0].status.downtimeMs}'
check status-steps 0 'Accepted Checkpointed Transferred Restored SourceRemoved Done' -- \
  k paris get migrations -o jsonpath='{.items[0].status.steps[*].name}'
check metrics 0 'archipel_migrations_total\{mode="warm",result="succeeded"\} 1' -- \
  curl -sf "http://127.0.0.1:${api[nantes]}/metrics"
check metrics-downtime 0 'archipel_migration_downtime_seconds_count\{mode="live"\} 1' -- \
  curl -sf "http://127.0.0.1:${api[rennes]}/metrics"

# kubectl creates one from a manifest; bad ones are refused with the field.
cat >"$tmp/migration.yaml" <<YAML
apiVersion: archipel.io/v1
kind: Migration
metadata: {name: to-nantes}
spec: {pod: cart, to: nantes, mode: cold}
YAML
check kubectl-create 0 'migration.archipel.io/to-nantes created' -- k paris create -f "$tmp/migration.yaml"
eventually kubectl-created-succeeds bash -c "kubectl --server http://127.0.0.1:${api[paris]} get migration to-nantes -o jsonpath='{.status.phase}' | grep -qx Succeeded"
check kubectl-items-kept 0 "$want" -- items "$cart_port"
check kubectl-label 0 'labeled' -- k paris label migration to-nantes team=shop
check immutable-spec 1 'spec: Forbidden: field is immutable' -- \
  k paris patch migration to-nantes --type merge -p '{"spec":{"to":"rennes"}}'
check bad-mode 1 'spec.mode: Unsupported value: "hot"' -- \
  bash -c "sed 's/mode: cold/mode: hot/; s/to-nantes/bad/' '$tmp/migration.yaml' | kubectl --server http://127.0.0.1:${api[nantes]} create -f -"
check unknown-field 1 'strict decoding error: unknown field "spec.speed"' -- \
  bash -c "sed 's/mode: cold/mode: cold, speed: 3/; s/to-nantes/bad/' '$tmp/migration.yaml' | kubectl --server http://127.0.0.1:${api[nantes]} create -f -"
check unknown-site 1 'spec.to: Unsupported value: "lyon": not a site of the federation' -- \
  migrate nantes pod/cart --to lyon
check pod-elsewhere 1 'pod default/nope at nantes: 404 pods "nope" not found' -- \
  migrate nantes pod/nope --to paris

# A counter goes on counting where it was.
pod counter criu 0 "$counter" --interval-ms 37 | k paris apply -f - >/dev/null
eventually counter-counts bash -c "kubectl --server http://127.0.0.1:${api[paris]} logs counter | tail -1 | awk '\$1 >= 20 {ok=1} END {exit !ok}'"
check counter-moves 0 'pod counter runs at nantes' -- migrate paris pod/counter --to nantes --mode live
eventually counter-counts-at-nantes bash -c "kubectl --server http://127.0.0.1:${api[nantes]} logs counter | wc -l | awk '\$1 >= 5 {ok=1} END {exit !ok}'"
# The log at nantes starts after the restore: its numbers follow on from paris's, one by one.
check counter-no-reset 0 '^continues$' -- bash -c "kubectl --server http://127.0.0.1:${api[nantes]} logs counter |
  awk 'NR == 1 && \$1 < 20 {bad=1} NR > 1 && \$1 != prev + 1 {bad=1} {prev=\$1} END {print bad ? \"reset\" : \"continues\"}'"

# A stateless API moves with its process (pid 1 of its own namespace, there as here).
pod api criu "$api_port" "$api_bin" --port "$api_port" | k paris apply -f - >/dev/null
eventually api-serves curl -sf "http://127.0.0.1:$api_port/hello"
check api-moves 0 'pod api runs at nantes' -- migrate paris pod/api --to nantes --mode cold
check api-answers-at-nantes 0 '"hello":"world","pid":1\}' -- curl -sf "http://127.0.0.1:$api_port/hello"
eventually api-runs-only-at-nantes runs_at nantes api

# Application-level: the cart's own state, through its /checkpoint and /restore.
pod cart-app app "$app_port" "$cart" --port "$app_port" | k nantes apply -f - >/dev/null
eventually app-serves curl -sf "http://127.0.0.1:$app_port/healthz"
for item in fig fig kiwi; do curl -sf -X POST "http://127.0.0.1:$app_port/items/$item" >/dev/null; done
check app-nantes-to-rennes 0 'pod cart-app runs at rennes: downtime [0-9.]+ ms \(app' -- \
  migrate nantes pod/cart-app --to rennes --mode app
check app-items-kept 0 '"fig":2,"kiwi":1' -- items "$app_port"
eventually app-runs-only-at-rennes runs_at rennes cart-app
check criu-mode-needs-annotation 1 'is not annotated archipel.io/migrate: criu' -- \
  migrate rennes pod/cart-app --to paris --mode cold

# A restore that fails leaves the pod running where it was, with its state: nantes already runs
# another pod named shop/cart, which the migration must neither replace nor remove.
k nantes delete pod cart --wait=true >/dev/null  # one cart on the port
k paris create namespace shop >/dev/null
k nantes create namespace shop >/dev/null
pod cart criu 0 sleep 600 | sed 's/namespace: default/namespace: shop/' | k nantes apply -f - >/dev/null
pod cart criu "$cart_port" "$cart" --port "$cart_port" | sed 's/namespace: default/namespace: shop/' |
  k paris apply -f - >/dev/null
eventually shop-cart-serves bash -c "curl -sf http://127.0.0.1:$cart_port/items | grep -q '\"items\":{}'"
curl -sf -X POST "http://127.0.0.1:$cart_port/items/melon" >/dev/null
check failed-restore 1 'already exists at nantes.*goes on at paris' -- \
  migrate paris pod/cart -n shop --to nantes --mode cold
check failed-source-runs 0 '^Running$' -- k paris -n shop get pod cart -o jsonpath='{.status.phase}'
check failed-state-kept 0 '"melon":1' -- items "$cart_port"
check failed-nantes-pod-untouched 0 '^sleep 600$' -- \
  k nantes -n shop get pod cart -o jsonpath='{.spec.containers[0].command[*]}'
check failed-status 0 '^Failed$' -- k paris -n shop get migrations -o jsonpath='{.items[0].status.phase}'
check failed-still-moves 0 'pod cart runs at rennes' -- \
  bash -c "kubectl --server http://127.0.0.1:${api[rennes]} create namespace shop >/dev/null &&
    '$bin' migrate --server http://127.0.0.1:${api[paris]} pod/cart -n shop --to rennes --mode live"
check failed-then-moved-items 0 '"melon":1' -- items "$cart_port"

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
