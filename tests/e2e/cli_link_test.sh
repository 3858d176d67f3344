#!/usr/bin/env bash
# `archipel link` as a process: relays to an echo server, obeys cut / heal / latency on stdin,
# reports bad arguments and bad commands clearly. Usage: cli_link_test.sh PATH/TO/archipel
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
  exec 3>&- 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
failures=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }

/usr/bin/python3 - "$tmp/echo.port" <<'PY' &
import socket, sys, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
def serve(c):
    while (d := c.recv(65536)):
        c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
pids+=($!)
for _ in $(seq 100); do [[ -s $tmp/echo.port ]] && break; sleep 0.05; done
mkfifo "$tmp/commands"
"$bin" link --to "127.0.0.1:$(cat "$tmp/echo.port")" --latency 20ms <"$tmp/commands" >"$tmp/link.out" 2>&1 &
pids+=($!)
exec 3>"$tmp/commands"
for _ in $(seq 100); do grep -q 'listening on' "$tmp/link.out" && break; sleep 0.05; done
port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/link.out")

roundtrip() {  # prints the echo of "hello" through the link, or an error
  /usr/bin/python3 -c "
import socket, sys
s = socket.create_connection(('127.0.0.1', $port), timeout=2)
s.sendall(b'hello'); d = s.recv(5)
print(d.decode() if d else 'closed')" 2>&1 | tail -1
}
wait_for() {  # wait_for PATTERN: the link printed it
  for _ in $(seq 100); do grep -q -- "$1" "$tmp/link.out" && return 0; sleep 0.05; done
  return 1
}

[[ $(roundtrip) == hello ]] && ok relays || fail "relays: $(roundtrip)"
echo cut >&3
wait_for ', cut,' && [[ $(roundtrip) != hello ]] && ok cut-refuses || fail cut-refuses
echo heal >&3
wait_for ', up,' && [[ $(roundtrip) == hello ]] && ok heal || fail heal
echo "latency 5parsecs" >&3
wait_for "error: invalid duration '5parsecs'" && ok bad-command-is-reported || fail bad-command
echo "latency 40ms" >&3
wait_for 'latency 40ms' && ok latency-changes || fail latency-changes
echo quit >&3
for _ in $(seq 100); do kill -0 "${pids[1]}" 2>/dev/null || break; sleep 0.05; done
kill -0 "${pids[1]}" 2>/dev/null && fail quit || ok quit

"$bin" link --to 127.0.0.1:1 --bandwidth fast >"$tmp/bad.out" 2>&1
code=$?
[[ $code -eq 2 ]] && grep -q "invalid bandwidth 'fast'" "$tmp/bad.out" && ok bad-bandwidth-exit-2 ||
  { fail "bad-bandwidth: exit $code"; cat "$tmp/bad.out"; }

echo "$passed passed, $failures failed"
[[ $failures -eq 0 ]]
