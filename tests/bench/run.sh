#!/usr/bin/env bash
# tests/bench/run.sh: the "bench" stage of tests/run.sh. Proves parley-bench
# works against a real stack (redis-server, a router, two gateways started by
# tools/bench/run-stack.sh on free ports): each mode runs a few seconds at a
# small scale, must complete, report nothing lost and write valid JSON; a
# wrong secret must be reported as failed connections (exit 1); plot.py must
# turn a ramp into an SVG. Speed is never asserted: that is docs/benchmarks.md.
#
#   tests/bench/run.sh [BUILD_DIR]     (default: $PARLEY_BUILD_DIR or <repo>/build)
#
# Ends with "N passed, N failed"; exits non-zero when a check failed.
# Environment: PARLEY_ARTIFACTS (default <repo>/tests/artifacts): JSON and logs go to bench/ there.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi

if [ "${1:-}" != --inside ]; then
    export PARLEY_BUILD_DIR=${1:-${PARLEY_BUILD_DIR:-$ROOT/build}}
    ART=${PARLEY_ARTIFACTS:-$ROOT/tests/artifacts}/bench
    rm -rf "$ART" && mkdir -p "$ART"
    export PARLEY_BENCH_ART=$ART
    PARLEY_STACK_LOGS=$ART/stack "$ROOT/tools/bench/run-stack.sh" --gateways 2 --routers 1 \
        --users 400 -- "$0" --inside
    rc=$?
    tail -1 "$ART/summary.txt" 2>/dev/null || echo "0 passed, 1 failed"
    [ "$rc" = 0 ] || { grep -q ' 0 failed$' "$ART/summary.txt" 2>/dev/null && echo "(the stack reported a problem: see $ART/stack)"; }
    exit $rc
fi

# --- inside the stack: PARLEY_BENCH_GATEWAYS etc. are set by run-stack.sh
ART=$PARLEY_BENCH_ART
BENCH=$PARLEY_BUILD_DIR/parley-bench
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

# check NAME EXPECTED_RC JSON_CHECK -- parley-bench args...
# JSON_CHECK is a python expression over d (the JSON document) and s (its first
# step); empty: no JSON.
check() {
    local name=$1 want=$2 expr=$3; shift 4
    local json=$ART/$name.json log=$ART/$name.log
    "$BENCH" "$@" --progress 0 ${expr:+--json "$json"} >"$log" 2>&1
    local rc=$?
    if [ "$rc" != "$want" ]; then
        bad "$name: exit status $rc, expected $want"; tail -15 "$log" | sed 's/^/     /'; return
    fi
    if [ -n "$expr" ]; then
        local why
        why=$(python3 - "$json" "$expr" <<'PY' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
if not eval(sys.argv[2], {}, {"d": d, "s": (d.get("steps") or [None])[0]}):
    print("condition false: " + sys.argv[2]); sys.exit(1)
PY
) || { bad "$name: $why"; tail -15 "$log" | sed 's/^/     /'; return; }
    fi
    ok "$name"
}

if "$BENCH" --help >"$ART/help.log" 2>&1 && grep -q 'MODE' "$ART/help.log"; then ok "--help"; else bad "--help"; fi
"$BENCH" pair --rate nope >"$ART/badflag.log" 2>&1
[ $? = 2 ] && ok "a bad flag exits 2" || bad "a bad flag exits 2"
"$BENCH" teleport >"$ART/badmode.log" 2>&1
[ $? = 2 ] && ok "an unknown mode exits 2" || bad "an unknown mode exits 2"

check connect 0 'd["connect"]["opened"] == 300 and d["connect"]["failed"] == 0 and d["connect"]["handshakes_per_s"] > 0 and len(d["connect"]["gateways"]) == 2 and all(g["connections"] == 150 and g["rss_after_kib"] > 0 for g in d["connect"]["gateways"])' \
    -- connect --connections 300 --procs 2 --sources 4 --hold 1
check pair 0 's["sent"] > 0 and s["acked"] == s["sent"] and s["delivered"] == s["sent"] and s["lost"] == 0 and s["unacked"] == 0 and s["latency"]["n"] == s["delivered"] and s["latency"]["p50_ms"] <= s["latency"]["p99_ms"] <= s["latency"]["max_ms"]' \
    -- pair --pairs 20 --rate 400 --duration 2 --procs 2
check fanout 0 's["acked"] == s["sent"] > 0 and s["delivered"] == s["acked"] * 29 and s["lost"] == 0 and s["last_member"]["n"] == s["sent"]' \
    -- fanout --members 30 --rate 10 --duration 2
check ramp 0 'len(d["steps"]) == 3 and all(s["held"] and s["lost"] == 0 for s in d["steps"]) and d["highest_rate_held"] == 300' \
    -- ramp --pairs 10 --rate-start 100 --rate-step 100 --rate-max 300 --step-seconds 1 --p99-bound-us 5000000
check wrong-secret 1 'd["connect"]["failed"] == 20 and d["connect"]["opened"] == 0 and "401" in d["error"]' \
    -- connect --connections 20 --secret not-the-stack-secret --hold 0

if python3 "$ROOT/tools/bench/plot.py" "$ART/ramp.json" -o "$ART/ramp.svg" &&
    python3 -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); sys.exit(0 if d.getElementsByTagName("polyline") else 1)' "$ART/ramp.svg"; then
    ok "plot.py writes an SVG from a ramp"
else
    bad "plot.py writes an SVG from a ramp"
fi

echo "$passed passed, $failed failed" | tee "$ART/summary.txt"
[ "$failed" = 0 ]
