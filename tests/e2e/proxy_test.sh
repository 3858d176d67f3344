#!/usr/bin/env bash
# The scoped proxy end to end: three real sites on loopback (paris in front of an external
# cluster — a separate `archipel cluster` process that the test can stop —, nantes and rennes
# with embedded clusters), connected by their peer channels, and the real kubectl talking to
# paris's front door with scopes in the server URL (/scope/<expr>/). Checks the proof of issue
# #5: merged lists with each item's site, writes on sites that exclude the receiving one, a
# merged watch, failover while paris's cluster is down, a Warning for an unreachable site, 400
# for a bad scope, 401/403 for tokens. Usage: proxy_test.sh PATH/TO/archipel
set -uo pipefail
bin=$(realpath "$1")
# The repository's kubectl plugin (scripts/setup installs the same file).
PATH="$(cd "$(dirname "$0")/../../scripts" && pwd):$PATH"
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
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
wait_for() {  # wait_for NAME FILE PATTERN: up to 20 s for PATTERN in FILE
  local name=$1 file=$2 pattern=$3
  for _ in $(seq 400); do
    if grep -Eq -- "$pattern" "$file" 2>/dev/null; then ok "$name"; return; fi
    sleep 0.05
  done
  fail "$name: $file lacks /$pattern/"; tail -15 "$file" | sed 's/^/    /'
}
check() {  # check NAME EXPECTED_RC PATTERN -- COMMAND...: exit code and output
  local name=$1 rc=$2 pattern=$3; shift 4
  local out code
  out=$("$@" 2>&1); code=$?
  if [[ $code -eq $rc ]] && grep -Eq -- "$pattern" <<<"$out"; then ok "$name"; else
    fail "$name (exit $code, want $rc; want /$pattern/):"; sed 's/^/    /' <<<"$out" | head -20
  fi
}
enc() { /usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
source "$(dirname "$0")/federation.sh"

sites=(paris nantes rennes)
federation_init "$bin" "$tmp" "${sites[@]}"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=rennes \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/rennes.key" -out "$tmp/rennes.crt" 2>/dev/null
printf 'alice-secret\n' >"$tmp/alice.token"
printf 'admin-secret\n' >"$tmp/admin.token"
# paris fronts a separate cluster process the test can stop; rennes serves HTTPS (clients send
# tokens only over TLS) and requires tokens.
federation_config paris "{mode: external, url: \"http://127.0.0.1:${cluster[paris]}\"}"
federation_config nantes "{mode: embedded, listen: \"127.0.0.1:${cluster[nantes]}\"}"
federation_config rennes "{mode: embedded, listen: \"127.0.0.1:${cluster[rennes]}\"}" \
  "tls: {cert_file: $tmp/rennes.crt, key_file: $tmp/rennes.key}" \
  "clients:" \
  "  tokens:" \
  "    - {user: alice, token_file: $tmp/alice.token, sites: [paris]}" \
  "    - {user: admin, token_file: $tmp/admin.token}"

"$bin" cluster --listen "127.0.0.1:${cluster[paris]}" --data "$tmp/var/paris-cluster" \
  >"$tmp/paris-cluster.log" 2>&1 &
paris_cluster=$!
pids+=($paris_cluster)
for s in "${sites[@]}"; do
  "$bin" site --config "$tmp/$s.yaml" >"$tmp/$s.log" 2>&1 &
  pids+=($!)
  eval "pid_$s=$!"
done
wait_for paris-cluster-listens "$tmp/paris-cluster.log" 'listening on'
for s in "${sites[@]}"; do
  for o in "${sites[@]}"; do
    [[ $o == "$s" ]] && continue
    wait_for "$s-sees-$o" "$tmp/$s.log" "peer $o: Down -> Reachable"
  done
done

door="http://127.0.0.1:${api[paris]}"
k() { kubectl --server "$door" "$@"; }
ks() { local scope=$1; shift; kubectl --server "$door/scope/$(enc "$scope")" "$@"; }
direct() { kubectl --server "http://127.0.0.1:${cluster[$1]}" "${@:2}"; }

# Unscoped: this site only, through the proxy exactly as directly.
check unscoped-create 0 'configmap/here created' -- k create configmap here --from-literal=a=1
check metrics-count-requests 0 'archipel_proxy_requests_total\{verb="create",code="201"\} 1' -- curl -sf "$door/metrics"
check unscoped-is-local 0 '^here ' -- direct paris get configmaps --no-headers
check unscoped-not-elsewhere 0 '^$' -- bash -c "kubectl --server http://127.0.0.1:${cluster[nantes]} get configmap here --ignore-not-found -o name"
check discovery-has-archipel-group 0 'archipel.io/v1' -- k api-versions
check discovery-has-core 0 '^configmaps ' -- k api-resources --no-headers

# Pods on two sites, listed together with their site.
check run-pod-paris 0 'pod/web-paris created' -- k run web-paris --image=busybox --command -- sleep 3600
check run-pod-nantes 0 'pod/web-nantes created' -- ks nantes run web-nantes --image=busybox --command -- sleep 3600
check pod-nantes-only-on-nantes 0 '^web-nantes ' -- direct nantes get pods --no-headers
check get-pods-paris-and-nantes 0 'paris +web-paris .*'$'\n''nantes +web-nantes ' -- ks 'paris & nantes' get pods --no-headers
check get-pods-json-has-sites 0 '"archipel.io/site": "nantes"' -- ks 'paris & nantes' get pods -o json
check get-one-pod-from-each-site 0 'nantes +web-nantes' -- ks 'paris & nantes' get pod web-nantes --no-headers
check plugin-scope 0 'paris +web-paris .*'$'\n''nantes +web-nantes ' -- kubectl archipel --server "$door" --scope 'paris & nantes' get pods --no-headers
check plugin-sites 0 'nantes +Reachable' -- kubectl archipel --server "$door" sites
check plugin-needs-scope 2 'give --scope' -- kubectl archipel --server "$door" get pods

# Logs come from the site that runs the pod, and follow without buffering.
check run-talker-nantes 0 'pod/talker created' -- ks nantes run talker --image=busybox --command -- sh -c 'echo hello-from-nantes; sleep 3600'
for _ in $(seq 100); do
  ks nantes logs talker 2>/dev/null | grep -q hello && break
  sleep 0.1
done
check logs-from-the-site-with-the-pod 0 '^hello-from-nantes$' -- ks 'paris & nantes' logs talker
check logs-follow-streams 124 '^hello-from-nantes$' -- timeout 3 kubectl --server "$door/scope/nantes" logs -f talker

# A merged list's composite resourceVersion resumes a watch on every site from there.
rv=$(curl -s -H "X-Archipel-Scope: paris & rennes" "$door/api/v1/namespaces/default/configmaps" |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
check composite-version 0 '^arc1\.' -- echo "$rv"
direct rennes create configmap after-list >/dev/null
direct paris create configmap after-list-paris >/dev/null
check watch-resumes-from-composite 0 'ADDED.*after-list-paris|ADDED.*after-list' -- \
  curl -s -H "X-Archipel-Scope: paris & rennes" \
  "$door/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=2&resourceVersion=$rv"
check resumed-watch-skips-older 0 '^2$' -- bash -c "curl -s -H 'X-Archipel-Scope: paris & rennes' \
  '$door/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=2&resourceVersion=$rv' | grep -c ADDED"

# A write on sites that do not include the receiving one.
check create-on-nantes-and-rennes 0 'configmap/shared created' -- ks 'nantes & rennes' create configmap shared --from-literal=k=v
check shared-on-nantes 0 '^shared ' -- direct nantes get configmaps --no-headers
check shared-on-rennes 0 '^shared ' -- direct rennes get configmaps --no-headers
check shared-not-on-paris 0 '^$' -- direct paris get configmap shared --ignore-not-found -o name
check delete-on-both 0 'configmap "shared" deleted' -- ks 'nantes & rennes' delete configmap shared
check deleted-on-rennes 0 '^$' -- direct rennes get configmap shared --ignore-not-found -o name

# A merged watch sees both sites' events.
ks 'paris & rennes' get configmaps --watch --no-headers >"$tmp/watch.out" 2>&1 &
watcher=$!
pids+=($watcher)
sleep 1
direct paris create configmap seen-in-paris >/dev/null
direct rennes create configmap seen-in-rennes >/dev/null
wait_for watch-sees-paris "$tmp/watch.out" '^paris +seen-in-paris'
wait_for watch-sees-rennes "$tmp/watch.out" '^rennes +seen-in-rennes'
kill $watcher 2>/dev/null

# Bad scopes are 400 with the column (discovery still works, so kubectl shows the message).
check bad-scope-400 1 'BadRequest.*expected a site name or .\(. after .&. at column 9' -- ks 'paris & & nantes' get pods
check unknown-site-400 1 "unknown site 'lyon'" -- ks 'paris & lyon' get pods
check bad-header-scope-400 0 '^400$' -- curl -s -o /dev/null -w '%{http_code}' -H 'X-Archipel-Scope: (paris' "$door/api/v1/pods"

# Tokens (rennes's front door, HTTPS): none is 401; alice may reach paris only.
rdoor="https://127.0.0.1:${api[rennes]}"
kr() { local scope=$1 token=$2; shift 2
  kubectl --server "$rdoor${scope:+/scope/$(enc "$scope")}" --certificate-authority "$tmp/rennes.crt" \
    ${token:+--token "$token"} "$@"; }
check no-token-401 0 '^401$' -- curl -s --cacert "$tmp/rennes.crt" -o /dev/null -w '%{http_code}' "$rdoor/api/v1/namespaces/default/configmaps"
check no-token-kubectl 1 'Unauthorized|provide credentials|Username' -- kr '' '' get configmaps </dev/null
check alice-on-paris 0 '^here ' -- kr paris alice-secret get configmaps --no-headers
check alice-not-on-nantes 1 'Forbidden.*may not run requests on site .?"nantes' -- kr nantes alice-secret get configmaps
check alice-not-unscoped-on-rennes 1 'Forbidden.*site .?"rennes' -- kr '' alice-secret get configmaps
check admin-anywhere 0 'nantes +web-nantes' -- kr 'nantes & paris' admin-secret get pods --no-headers

# Failover: with paris's cluster stopped, 'paris | nantes' answers from nantes.
kill $paris_cluster
wait $paris_cluster 2>/dev/null
check failover-to-nantes 0 '^web-nantes ' -- ks 'paris | nantes' get pods --no-headers
check failover-warns 0 'Warning: .*paris.*answered by nantes' -- ks 'paris | nantes' get pods
check paris-alone-unavailable 1 'ServiceUnavailable|no site of the scope answered|unavailable' -- k get pods

# An unreachable site: the others' answer and a Warning naming it.
kill "$pid_rennes"
wait "$pid_rennes" 2>/dev/null
check unreachable-rennes-warning 0 'Warning: rennes: unreachable' -- ks 'nantes & rennes' get pods
check unreachable-rennes-still-nantes 0 'nantes +web-nantes' -- ks 'nantes & rennes' get pods --no-headers

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
