#!/usr/bin/env bash
# `archipel criu check`: says what the machine's CRIU can do and exits 0, or says why there is
# none and exits 1. Usage: cli_criu_test.sh PATH/TO/archipel
# The working-CRIU half is skipped where there is none (not root, nothing installed), except
# under CI=true, where the machine must have one.
set -uo pipefail
bin=$1
passed=0
failures=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }

out=$("$bin" criu check --criu /nonexistent/criu 2>&1)
code=$?
[ "$code" -eq 1 ] && ok "no-criu-exits-1" || fail "no-criu-exits-1: exit $code"
grep -q "checkpoint   no   /nonexistent/criu is not executable" <<<"$out" &&
  ok "no-criu-says-why" || fail "no-criu-says-why: $out"
grep -q "post-copy    no   needs a working CRIU" <<<"$out" &&
  ok "no-criu-no-features" || fail "no-criu-no-features: $out"

out=$("$bin" criu check --criu 2>&1)
code=$?
[ "$code" -eq 2 ] && ok "missing-value-is-usage" || fail "missing-value-is-usage: exit $code"

out=$("$bin" criu check 2>&1)
code=$?
if [ "$code" -eq 0 ]; then
  grep -Eq "^criu +/.+ \([0-9]+\.[0-9]+" <<<"$out" && ok "found-with-version" ||
    fail "found-with-version: $out"
  grep -q "^checkpoint   yes" <<<"$out" && ok "checkpoint-yes" || fail "checkpoint-yes: $out"
  grep -Eq "^pre-copy     (yes|no) " <<<"$out" && grep -Eq "^post-copy    (yes|no) " <<<"$out" &&
    ok "features-reported" || fail "features-reported: $out"
elif [ "${CI:-}" = "true" ]; then
  fail "working-criu (required under CI): $out"
else
  echo "skip working-criu: $(head -2 <<<"$out" | tail -1)"
fi

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
