#!/usr/bin/env bash
# Sharing between real sites: paris, nantes and rennes run as `archipel site` processes with
# embedded clusters, every peer connection through its own `archipel link` emulator. paris
# shares namespace team-a with nantes; the two are partitioned; both edit the same ConfigMap
# (different keys and the same key) and nantes deletes another object; the links heal; both
# converge to identical objects (by digest) with the conflict shown, and rennes, outside the
# group, received nothing. Then nantes is killed (-9) and restarted: it loses nothing.
# Usage: sharing_test.sh PATH/TO/archipel
set -uo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/federation.sh"
source "$here/checks.sh"
tmp=$(mktemp -d)
pids=()
declare -A site_pid
cleanup() {
  for p in "${pids[@]}" "${site_pid[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

sites=(paris nantes rennes)
federation_init "$bin" "$tmp" "${sites[@]}"

federation_pids=()
federation_links "$bin"
pids+=("${federation_pids[@]}")

start() {
  local s=$1
  "$bin" site --config "$tmp/$s.yaml" >>"$tmp/$s.log" 2>&1 &
  site_pid[$s]=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:${api[$s]}/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "site $s did not start:"
  cat "$tmp/$s.log"
  exit 1
}
for s in "${sites[@]}"; do
  federation_config "$s" "{mode: embedded, listen: \"127.0.0.1:${cluster[$s]}\"}"
  federation_route "$s"
  start "$s"
done

k() { local s=$1; shift; kubectl --server "http://127.0.0.1:${api[$s]}" "$@"; }
has() { [[ $(k "$1" -n team-a get configmap "$2" -o jsonpath="$3" 2>/dev/null) == "$4" ]]; }
gone() { ! k "$1" -n team-a get configmap "$2" >/dev/null 2>&1; }
# A digest of what the group replicates of team-a's configmaps (names, labels, data; the
# conflicts annotation included).
digest() {
  k "$1" -n team-a get configmaps -o json | /usr/bin/python3 -c '
import hashlib, json, sys
items = json.load(sys.stdin)["items"]
view = sorted((i["metadata"]["name"], i["metadata"].get("labels", {}),
               i["metadata"].get("annotations", {}), i.get("data", {})) for i in items)
print(hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest())'
}
same_digest() { [[ $(digest paris) == $(digest nantes) ]]; }
metric() {  # metric SITE NAME{LABELS}: its value, or nothing
  curl -s "http://127.0.0.1:${api[$1]}/metrics" | awk -v m="$2" '$1 == m {print $2}'
}

k paris create namespace team-a >/dev/null
k paris -n team-a create configmap app --from-literal=color=red >/dev/null
k paris -n team-a create configmap other --from-literal=k=v >/dev/null

check share 0 'namespace.team-a shared by nantes, paris' -- \
  "$bin" share namespace team-a --with nantes --server "http://127.0.0.1:${api[paris]}"
eventually app-on-nantes has nantes app '{.data.color}' red
eventually other-on-nantes has nantes other '{.data.k}' v
check shared-objects-table 0 'namespace.team-a +nantes,paris +1/1 +2 ' -- k nantes get sharedobjects
check bad-share-site 1 "unknown site 'lyon'" -- \
  "$bin" share namespace team-a --with 'nantes & lyon' --server "http://127.0.0.1:${api[paris]}"
check bad-share-scope 2 "takes site names joined by '&'" -- \
  "$bin" share namespace team-a --with 'nantes | rennes' --server "http://127.0.0.1:${api[paris]}"

# Partition paris | nantes; edits on both sides, one key each, the same key on both, a delete.
link paris nantes cut
for _ in $(seq 100); do
  k paris get sites nantes -o jsonpath='{.status.connected}' 2>/dev/null | grep -q false && break
  sleep 0.1
done
k paris -n team-a patch configmap app --type merge -p '{"data":{"p":"paris","size":"S"}}' >/dev/null
k nantes -n team-a patch configmap app --type merge -p '{"data":{"n":"nantes","size":"XL"}}' >/dev/null
k nantes -n team-a delete configmap other >/dev/null
sleep 0.5
check partitioned-paris-keeps-other 0 '^v$' -- k paris -n team-a get configmap other -o jsonpath='{.data.k}'
check partitioned-nantes-lacks-p 0 '^$' -- k nantes -n team-a get configmap app -o jsonpath='{.data.p}'
link paris nantes heal

eventually nantes-gets-paris-key has nantes app '{.data.p}' paris
eventually paris-gets-nantes-key has paris app '{.data.n}' nantes
eventually delete-reaches-paris gone paris other
eventually identical-digests same_digest
check conflict-annotated 0 'data\.size' -- k paris -n team-a get configmap app \
  -o jsonpath='{.metadata.annotations.archipel\.io/conflicts}'
check conflict-in-shared-objects 0 '/configmaps/team-a/app' -- k paris get sharedobjects namespace.team-a \
  -o jsonpath='{.status.conflicts}'
check same-winner 0 "^$(k paris -n team-a get configmap app -o jsonpath='{.data.size}')\$" -- \
  k nantes -n team-a get configmap app -o jsonpath='{.data.size}'

# rennes is in no group: nothing was sent to it, it received nothing, it holds nothing.
check rennes-sent-nothing-by-paris 0 '^$' -- metric paris 'archipel_sharing_sent_bytes_total{site="rennes"}'
check rennes-sent-nothing-by-nantes 0 '^$' -- metric nantes 'archipel_sharing_sent_bytes_total{site="rennes"}'
check rennes-received-nothing 0 '^0$' -- bash -c \
  "curl -s http://127.0.0.1:${api[rennes]}/metrics | grep -c '^archipel_sharing_received_bytes_total' || true"
check rennes-has-no-team-a 1 'not found' -- k rennes get namespace team-a

# kill -9 nantes; an edit at paris meanwhile, one at nantes's cluster before it stops: both
# survive its restart.
kill -9 "${site_pid[nantes]}"
wait "${site_pid[nantes]}" 2>/dev/null
k paris -n team-a patch configmap app --type merge -p '{"data":{"while":"down"}}' >/dev/null
start nantes
eventually after-restart-nantes-gets-edit has nantes app '{.data.while}' down
k nantes -n team-a patch configmap app --type merge -p '{"data":{"back":"yes"}}' >/dev/null
eventually after-restart-paris-gets-edit has paris app '{.data.back}' yes
eventually identical-after-restart same_digest

# Unshare: nantes leaves the group and keeps its copy; later edits at paris stay at paris.
check unshare 0 'namespace.team-a now only at paris' -- \
  "$bin" unshare namespace team-a --server "http://127.0.0.1:${api[paris]}"
eventually nantes-left bash -c "[[ -z \$(kubectl --server http://127.0.0.1:${api[nantes]} get sharedobjects -o name) ]]"
k paris -n team-a patch configmap app --type merge -p '{"data":{"after":"unshare"}}' >/dev/null
sleep 0.5
check unshared-copy-stays 0 '^red$|^paris$' -- k nantes -n team-a get configmap app -o jsonpath='{.data.p}'
check unshared-edit-stays-home 0 '^$' -- k nantes -n team-a get configmap app -o jsonpath='{.data.after}'

# A create scoped 'nantes & rennes', sent to paris (which is not among them): the object is
# shared by nantes and rennes, and edits follow between them.
scoped() { kubectl --server "http://127.0.0.1:${api[paris]}/scope/nantes%20%26%20rennes" "$@"; }
scoped create namespace team-b >/dev/null
check create-together 0 'configmap/together created' -- scoped -n team-b create configmap together --from-literal=k=v
eventually shared-by-both bash -c "kubectl --server http://127.0.0.1:${api[rennes]} get sharedobjects \
  configmaps.team-b.together -o jsonpath='{.spec.sites}' | grep -q '\"nantes\",\"rennes\"'"
k nantes -n team-b patch configmap together --type merge -p '{"data":{"from":"nantes"}}' >/dev/null
eventually edit-follows bash -c "[[ \$(kubectl --server http://127.0.0.1:${api[rennes]} -n team-b \
  get configmap together -o jsonpath='{.data.from}') == nantes ]]"
check paris-not-in-it 0 '^$' -- k paris get sharedobjects -o name

# A Jepsen-style set: the three sites share namespace jepsen; through rounds of partitions and
# kill -9 restarts, each site's client adds keys to ConfigMap set at its own site. An add is
# acknowledged when the site's Kubernetes accepted it. At the end (links healed, every site
# up), every acknowledged add is present at every site.
k paris create namespace jepsen >/dev/null
k paris -n jepsen create configmap set >/dev/null
check share-jepsen 0 'shared by nantes, paris, rennes' -- \
  "$bin" share namespace jepsen --with 'nantes & rennes' --server "http://127.0.0.1:${api[paris]}"
eventually jepsen-on-all bash -c "kubectl --server http://127.0.0.1:${api[nantes]} -n jepsen get configmap set &&
  kubectl --server http://127.0.0.1:${api[rennes]} -n jepsen get configmap set"
acked=()
down=""
pairs=("paris nantes" "paris rennes" "nantes rennes")
RANDOM=7
for round in 1 2 3 4 5 6; do
  case $((RANDOM % 3)) in
    0) pair=${pairs[RANDOM % 3]}
       link ${pair% *} ${pair#* } cut ;;
    1) down=${sites[RANDOM % 3]}
       kill -9 "${site_pid[$down]}"; wait "${site_pid[$down]}" 2>/dev/null ;;
    2) ;;
  esac
  for i in 1 2 3 4; do
    for s in "${sites[@]}"; do
      key="$s-$round-$i"
      if k "$s" -n jepsen patch configmap set --type merge -p "{\"data\":{\"$key\":\"1\"}}" \
        --request-timeout=3s >/dev/null 2>&1; then
        acked+=("$key")
      fi
    done
  done
  for pair in "${pairs[@]}"; do link ${pair% *} ${pair#* } heal; done
  if [[ -n $down ]]; then start "$down"; down=""; fi
done
holds_all() {  # holds_all SITE: every acknowledged key is in its set
  local data
  data=$(k "$1" -n jepsen get configmap set -o jsonpath='{.data}') || return 1
  for key in "${acked[@]}"; do grep -q "\"$key\"" <<<"$data" || return 1; done
}
echo "     (${#acked[@]} adds acknowledged of 72)"
check some-adds-acknowledged 0 'yes' -- bash -c "(( ${#acked[@]} >= 48 )) && echo yes"
for s in "${sites[@]}"; do eventually "jepsen-every-ack-at-$s" holds_all "$s"; done

# rennes is removed from jepsen and told to delete its copies; the others keep theirs.
check unshare-delete-copies 0 'namespace.jepsen shared by nantes, paris' -- \
  "$bin" unshare namespace jepsen --from rennes --delete-copies --server "http://127.0.0.1:${api[paris]}"
eventually rennes-copy-deleted bash -c "! kubectl --server http://127.0.0.1:${api[rennes]} -n jepsen get configmap set"
check nantes-keeps-jepsen 0 '^set$' -- k nantes -n jepsen get configmap set -o jsonpath='{.metadata.name}'

echo "$passed passed, $failures failed"
if ((failures)); then
  for s in "${sites[@]}"; do
    echo "--- $s.log (last lines)"
    tail -20 "$tmp/$s.log"
  done
fi
((failures == 0))
