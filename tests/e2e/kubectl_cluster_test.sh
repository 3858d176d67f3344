#!/usr/bin/env bash
# The real kubectl against a fresh embedded cluster (`archipel cluster`), end to end:
# namespaces, apply-free create/get/list/watch/replace/delete of ConfigMaps and Secrets,
# conflicts, Status errors, namespace cascade, and kill -9 + restart keeping every write.
# Usage: kubectl_cluster_test.sh PATH/TO/archipel
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
pid=""
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
failures=0

start() {  # start [EXTRA ARCHIPEL CLUSTER ARGS...]
  : >"$tmp/out"  # before launching: the previous instance's port must not be read
  port=""
  "$bin" cluster --listen 127.0.0.1:0 --data "$tmp/data" --bookmark-seconds 1 "$@" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  for _ in $(seq 400); do  # up to 20 s: sanitizer builds start slowly
    port=$(sed -n 's/^listening on 127.0.0.1://p' "$tmp/out")
    [[ -n $port ]] && break
    sleep 0.05
  done
  [[ -n $port ]] || { echo "cluster did not start"; cat "$tmp/err"; exit 1; }
  # A kubeconfig like any user's, pointing at the embedded cluster.
  cat >"$tmp/kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters: [{name: embedded, cluster: {server: "http://127.0.0.1:$port"}}]
users: [{name: me, user: {}}]
contexts: [{name: embedded, context: {cluster: embedded, user: me, namespace: default}}]
current-context: embedded
KCFG
}

k() { kubectl --kubeconfig "$tmp/kubeconfig" "$@"; }

# check NAME WANTED_EXIT PATTERN -- command...
check() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local out code
  out=$("$@" 2>&1)
  code=$?
  if [[ $code -ne $want ]]; then
    echo "FAIL $name: exit $code, wanted $want"; echo "$out" | sed 's/^/    /'; failures=$((failures + 1))
  elif ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "FAIL $name: output lacks /$pattern/"; echo "$out" | sed 's/^/    /'; failures=$((failures + 1))
  else
    echo "ok   $name"; passed=$((passed + 1))
  fi
}

start
check version 0 'Server Version: v1\.31' -- k version
check get-namespaces 0 'default +Active' -- k get namespaces
check create-namespace 0 'namespace/team-a created' -- k create namespace team-a
check create-configmap 0 'configmap/web created' -- \
  k -n team-a create configmap web --from-literal=mode=fast --from-literal=level=3
check label 0 'configmap/web labeled' -- k -n team-a label configmap web app=web
check get-table 0 '^web +2 +[0-9]+s' -- k -n team-a get configmaps
check get-json 0 '"mode": "fast"' -- k -n team-a get configmap web -o json
check get-yaml 0 'resourceVersion: "[0-9]+"' -- k -n team-a get cm web -o yaml
check get-wide 0 'web +2' -- k -n team-a get cm -o wide
check get-selector 0 '^web' -- k -n team-a get cm -l app=web
check get-selector-none 0 'No resources found' -- k -n team-a get cm -l app=db
check get-all-namespaces 0 'team-a +web' -- k get cm -A
check create-secret 0 'secret/token created' -- k -n team-a create secret generic token --from-literal=pw=hunter2
check secret-base64 0 'aHVudGVyMg==' -- k -n team-a get secret token -o jsonpath='{.data.pw}'
check not-found 1 'configmaps "nope" not found' -- k -n team-a get cm nope
check already-exists 1 'configmaps "web" already exists' -- k -n team-a create configmap web
check missing-namespace 1 'namespaces "nowhere" not found' -- k -n nowhere create configmap x

# apply (create, then a strategic merge patch), and the three patch types.
cat >"$tmp/manifest.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: applied, namespace: team-a, labels: {app: web}}
data: {mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: applied, namespace: team-a}
stringData: {token: abc}
YAML
check apply-create 0 'configmap/applied created' -- k apply -f "$tmp/manifest.yaml"
check apply-unchanged 0 'configmap/applied unchanged' -- k apply -f "$tmp/manifest.yaml"
sed -i 's/mode: fast/mode: slow/' "$tmp/manifest.yaml"
check apply-configure 0 'configmap/applied configured' -- k apply -f "$tmp/manifest.yaml"
check applied-value 0 '^slow$' -- k -n team-a get cm applied -o jsonpath='{.data.mode}'
check patch-merge 0 'patched' -- k -n team-a patch cm applied --type=merge -p '{"data":{"x":"1"}}'
check patch-json 0 'patched' -- k -n team-a patch cm applied --type=json -p '[{"op":"remove","path":"/data/x"}]'
check patch-strategic 0 'patched' -- k -n team-a patch cm applied -p '{"data":{"y":"2"}}'
check patched-value 0 '^\{"mode":"slow","y":"2"\}$' -- k -n team-a get cm applied -o jsonpath='{.data}'
check patch-test-fails 1 'test failed' -- k -n team-a patch cm applied --type=json -p '[{"op":"test","path":"/data/y","value":"3"}]'

# kubectl explain reads the OpenAPI v3 schemas.
check explain 0 'Configuration data for pods' -- k explain configmap
check explain-nested 0 'FIELD: env <\[\]EnvVar>' -- k explain deployment.spec.template.spec.containers.env

# Bad input over HTTP: a Status each time, nothing stored.
api="http://127.0.0.1:$port/api/v1/namespaces/team-a/configmaps"
list_rv() { curl -s "$api?limit=1" | grep -o '^{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"[0-9]*"'; }
rv_bad_before=$(list_rv)
check http-malformed 0 '"reason":"BadRequest"' -- curl -s -X POST -H 'Content-Type: application/json' --data '{"kind":' "$api"
head -c 3145729 /dev/zero | tr '\0' ' ' >"$tmp/big"
check http-too-large 0 '"code":413' -- curl -s -X POST -H 'Content-Type: application/json' --data-binary @"$tmp/big" "$api"
check http-garbage 0 '"reason":"BadRequest"' -- bash -c "printf 'NOT HTTP\r\n\r\n' | timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$port; cat >&3; cat <&3'"
check http-nothing-stored 0 'unchanged' -- bash -c "[[ '$rv_bad_before' == \"\$(curl -s '$api?limit=1' | grep -o '^{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"[0-9]*\"')\" ]] && echo unchanged"

# Watch sees ADDED, MODIFIED and DELETED.
k -n team-a get configmaps -w --output-watch-events >"$tmp/watch" 2>&1 &
watcher=$!
for _ in $(seq 200); do grep -q 'ADDED' "$tmp/watch" && break; sleep 0.05; done  # watch is live
k -n team-a create configmap watched >/dev/null
k -n team-a label configmap watched tier=x >/dev/null
k -n team-a delete configmap watched >/dev/null
for _ in $(seq 50); do grep -q 'DELETED' "$tmp/watch" && break; sleep 0.1; done
kill "$watcher" 2>/dev/null
check watch-added 0 'ADDED +watched' -- cat "$tmp/watch"
check watch-modified 0 'MODIFIED +watched' -- cat "$tmp/watch"
check watch-deleted 0 'DELETED +watched' -- cat "$tmp/watch"

# Bookmarks on request, carrying the latest resourceVersion.
check watch-bookmark 0 '"type":"BOOKMARK".*"resourceVersion":"[0-9]+"' -- \
  curl -s --max-time 10 "http://127.0.0.1:$port/api/v1/namespaces/team-a/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=2"
check watch-timeout-ends 0 'ended' -- bash -c \
  "curl -s --max-time 10 'http://127.0.0.1:$port/api/v1/namespaces/team-a/configmaps?watch=1&timeoutSeconds=1' >/dev/null && echo ended"

# An update carrying a stale resourceVersion is refused with 409 Conflict.
k -n team-a get cm web -o json >"$tmp/web.json"
k -n team-a label cm web rev=2 >/dev/null
sed 's/"mode": "fast"/"mode": "slow"/' "$tmp/web.json" >"$tmp/web-stale.json"
check replace-conflict 1 'the object has been modified' -- k replace -f "$tmp/web-stale.json"
check replace-ok 0 'configmap/web replaced' -- bash -c \
  "kubectl --kubeconfig '$tmp/kubeconfig' -n team-a get cm web -o json | sed 's/\"fast\"/\"slow\"/' | kubectl --kubeconfig '$tmp/kubeconfig' replace -f -"
check replaced 0 '^slow$' -- k -n team-a get cm web -o jsonpath='{.data.mode}'

# kill -9, restart: every acknowledged write is there and resourceVersion goes on.
rv_before=$(k -n team-a get cm web -o jsonpath='{.metadata.resourceVersion}')
kill -9 "$pid"
wait "$pid" 2>/dev/null
start
check survives-kill 0 '^slow$' -- k -n team-a get cm web -o jsonpath='{.data.mode}'
k -n team-a create configmap after-restart >/dev/null
rv_after=$(k -n team-a get cm after-restart -o jsonpath='{.metadata.resourceVersion}')
check rv-continues 0 'yes' -- bash -c "[[ $rv_after -gt $rv_before ]] && echo yes"

# Pods run as processes: logs, logs -f, phases, graceful delete; after a kill -9 of the site a
# running container is taken over, and a clean stop leaves no process behind.
marker=$((RANDOM + 40000))
check run-pod 0 'pod/hello created' -- k run hello --image=busybox --command -- sh -c "echo hello; exec sleep $marker"
wait_for() {  # wait_for JSONPATH VALUE ARGS...
  local path=$1 want=$2
  shift 2
  for _ in $(seq 100); do
    [[ $(k "$@" -o jsonpath="$path" 2>/dev/null) == "$want" ]] && return 0
    sleep 0.1
  done
  return 1
}
wait_for '{.status.phase}' Running get pod hello
check pod-running 0 'hello +1/1 +Running +0' -- k get pods
check pod-logs 0 '^hello$' -- k logs hello
check pod-process 0 "sleep $marker" -- pgrep -a -f "sleep $marker"
timeout 20 kubectl --kubeconfig "$tmp/kubeconfig" logs -f hello >"$tmp/follow" 2>&1 &
follower=$!
for _ in $(seq 100); do grep -q '^hello$' "$tmp/follow" && break; sleep 0.1; done
kill -9 "$pid"
wait "$pid" 2>/dev/null
start
check pod-taken-over 0 'hello +1/1 +Running +0' -- k get pods
check pod-single-process 0 '^1$' -- bash -c "pgrep -f '^sleep $marker' | wc -l"
check pod-delete 0 'pod "hello" deleted' -- k delete pod hello --grace-period=1
check pod-gone 1 'pods "hello" not found' -- k get pod hello
check pod-process-gone 1 '^$' -- pgrep -f "^sleep $marker"
wait "$follower" 2>/dev/null
check logs-follow 0 '^hello$' -- cat "$tmp/follow"
check run-once 0 'pod/once created' -- k run once --restart=Never --image=busybox --command -- sh -c 'echo done'
wait_for '{.status.phase}' Succeeded get pod once
check pod-succeeded 0 'once +0/1 +Completed' -- k get pod once
check run-failing 0 'pod/fails created' -- k run fails --restart=Never --image=busybox --command -- sh -c 'exit 3'
wait_for '{.status.phase}' Failed get pod fails
check pod-exit-code 0 '^3$' -- k get pod fails -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}'
check pod-invalid 1 'spec.containers\[0\].image: Required value' -- bash -c \
  "echo '{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"bad\"},\"spec\":{\"containers\":[{\"name\":\"c\"}]}}' | kubectl --kubeconfig '$tmp/kubeconfig' create -f -"
k run lingering --image=busybox --command -- sh -c "exec sleep $((marker + 1))" >/dev/null
wait_for '{.status.phase}' Running get pod lingering
kill -TERM "$pid"
wait "$pid" 2>/dev/null
check no-orphans 1 '^$' -- pgrep -f "^sleep $((marker + 1))"
start

# Deployments: replicas kept by pods it owns, rolling replacement, scale, cascading delete;
# applied in one manifest with a ConfigMap and a Secret.
cat >"$tmp/deploy.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: team-a}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: web-secret, namespace: team-a}
stringData: {password: s3cret}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team-a}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: busybox, command: [sh, -c, "echo v1; exec sleep $((marker + 2))"]}
YAML
check deploy-apply 0 'configmap/web-config created.*secret/web-secret created.*deployment.apps/web created' -- \
  bash -c "kubectl --kubeconfig '$tmp/kubeconfig' apply -f '$tmp/deploy.yaml' | tr '\n' ' '"
check deploy-rollout 0 'successfully rolled out' -- k -n team-a rollout status deploy/web --timeout=20s
check deploy-pods 0 '^2$' -- bash -c "kubectl --kubeconfig '$tmp/kubeconfig' -n team-a get pods -l app=web --no-headers | wc -l"
check deploy-owner 0 'Deployment' -- k -n team-a get pods -l app=web -o jsonpath='{.items[0].metadata.ownerReferences[0].kind}'
check deploy-set-env 0 'env updated' -- k -n team-a set env deploy/web VERSION=2
check deploy-rollout-2 0 'successfully rolled out' -- k -n team-a rollout status deploy/web --timeout=30s
wait_pods() {  # wait_pods COUNT SELECTOR: the count of pods not terminating
  for _ in $(seq 100); do
    [[ $(k -n team-a get pods -l "$2" --no-headers 2>/dev/null | grep -vc Terminating) == "$1" ]] && return 0
    sleep 0.1
  done
}
wait_pods 2 app=web
check deploy-rolled 0 '^VERSION VERSION $' -- k -n team-a get pods -l app=web -o jsonpath='{range .items[*]}{.spec.containers[0].env[0].name} {end}'
check deploy-scale 0 'scaled' -- k -n team-a scale deploy web --replicas=3
wait_pods 3 app=web
check deploy-scaled 0 'web +3/3' -- k -n team-a get deploy web
check deploy-invalid 1 'spec.template.metadata.labels: Invalid value' -- bash -c \
  "sed 's/matchLabels: {app: web}/matchLabels: {app: other}/; s/name: web, namespace/name: bad, namespace/' '$tmp/deploy.yaml' | kubectl --kubeconfig '$tmp/kubeconfig' apply -f - 2>&1"
check deploy-delete 0 'deployment.apps "web" deleted' -- k -n team-a delete deploy web
wait_pods 0 app=web
check deploy-cascade 0 'No resources found' -- k -n team-a get pods -l app=web

# Deleting a namespace deletes what it holds.
check delete-namespace 0 'namespace "team-a" deleted' -- k delete namespace team-a
check cascade 0 'No resources found' -- k -n team-a get configmaps,secrets
check namespace-gone 1 'namespaces "team-a" not found' -- k get namespace team-a

# TLS: the same API over HTTPS with a certificate kubectl verifies.
kill "$pid"; wait "$pid" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=archipel -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
start --tls-cert "$tmp/tls.crt" --tls-key "$tmp/tls.key"
cat >"$tmp/kubeconfig-tls" <<KCFG
apiVersion: v1
kind: Config
clusters: [{name: embedded, cluster: {server: "https://127.0.0.1:$port", certificate-authority: "$tmp/tls.crt"}}]
users: [{name: me, user: {token: not-checked}}]  # https without credentials makes kubectl prompt
contexts: [{name: embedded, context: {cluster: embedded, user: me}}]
current-context: embedded
KCFG
check tls-kubectl 0 'default +Active' -- kubectl --kubeconfig "$tmp/kubeconfig-tls" get namespaces
check tls-rejects-plain 0 '^000$|Empty reply|reset' -- bash -c "curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:$port/version; true"

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
