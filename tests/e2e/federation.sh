# Sourced by end-to-end tests and benchmarks that run several sites on loopback:
#   federation_init BIN DIR SITE...   identities for the sites (DIR/keys) and free ports in the
#                                     arrays api, peer and cluster (one of each per site)
#   federation_config SITE CLUSTER [LINE...]
#                                     writes DIR/SITE.yaml: the site, its ports, data in
#                                     DIR/var/SITE, its identity, every other site as a peer with
#                                     its key pinned, `cluster: CLUSTER`, then each LINE as is
#   free_port                         a free TCP port on 127.0.0.1

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

federation_init() {
  local bin=$1 s
  federation_dir=$2
  shift 2
  federation_sites=("$@")
  declare -gA api peer cluster
  for s in "${federation_sites[@]}"; do
    api[$s]=$(free_port); peer[$s]=$(free_port); cluster[$s]=$(free_port)
    "$bin" keygen --site "$s" --out "$federation_dir/keys" >/dev/null
  done
}

federation_config() {
  local s=$1 cluster_yaml=$2 o
  shift 2
  {
    echo "site: $s"
    echo "listen: {api: \"127.0.0.1:${api[$s]}\", peer: \"127.0.0.1:${peer[$s]}\"}"
    echo "data: $federation_dir/var/$s"
    echo "identity: $federation_dir/keys/$s.key"
    echo "peers:"
    for o in "${federation_sites[@]}"; do
      [[ $o == "$s" ]] && continue
      echo "  - {name: $o, address: \"127.0.0.1:${peer[$o]}\", public_key: \"$(awk '{print $3}' "$federation_dir/keys/$o.pub")\"}"
    done
    echo "cluster: $cluster_yaml"
    (($#)) && printf '%s\n' "$@"
  } >"$federation_dir/$s.yaml"
}

# federation_links BIN: one `archipel link` per direction between the sites (A dials B through
# link A-B), controlled through fifos; their ports in link_port[A-B].
# federation_route SITE: rewrites DIR/SITE.yaml so that the site dials its peers through them.
# link A B COMMAND: sends COMMAND (cut, heal, stall…) to both links between A and B.
federation_links() {
  local bin=$1 a b fd
  declare -gA link_port link_fd
  for a in "${federation_sites[@]}"; do
    for b in "${federation_sites[@]}"; do
      [[ $a == "$b" ]] && continue
      mkfifo "$federation_dir/$a-$b.cmd"
      "$bin" link --to "127.0.0.1:${peer[$b]}" <"$federation_dir/$a-$b.cmd" \
        >"$federation_dir/$a-$b.out" 2>&1 &
      federation_pids+=($!)
      exec {fd}>"$federation_dir/$a-$b.cmd"
      link_fd[$a-$b]=$fd
      for _ in $(seq 100); do grep -q 'listening on' "$federation_dir/$a-$b.out" && break; sleep 0.05; done
      link_port[$a-$b]=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$federation_dir/$a-$b.out")
    done
  done
}

federation_route() {
  local s=$1 o
  for o in "${federation_sites[@]}"; do
    [[ $o == "$s" ]] && continue
    sed -i "s/127.0.0.1:${peer[$o]}\"/127.0.0.1:${link_port[$s-$o]}\"/" "$federation_dir/$s.yaml"
  done
}

link() {
  echo "$3" >&"${link_fd[$1-$2]}"
  echo "$3" >&"${link_fd[$2-$1]}"
}
