#!/usr/bin/env bash
# tests/bench/run.sh: the "bench" stage of tests/run.sh. Proves parley-bench
# works against a real stack: tools/bench/run-stack.sh starts redis-server, a
# router and two gateways on free ports (400 users), and runs node --test on
# tests/bench/bench.test.mjs inside it. One named test per check: --help, bad
# flag, unknown mode, bad --ops, connect, pair, fanout, pair and fanout --ops (text, edit,
# react, delete), ramp, noisy, wrong-secret, plot, cluster (run-stack.sh
# --redis-cluster 2 --replicas 1 in a stack of its own, with cluster/stats.sh) (each
# mode a few seconds at a small scale: completes, loses nothing, valid JSON;
# a wrong secret is failed connections, exit 1; plot.py turns a ramp into an
# SVG). Speed is never asserted: that is docs/benchmarks.md.
#
#   tests/bench/run.sh [BUILD_DIR]     (default: $PARLEY_BUILD_DIR or <repo>/build)
#   PARLEY_TEST_ONLY='^ramp' tests/bench/run.sh    # only the tests whose name matches
#
# Ends with "N passed, N failed"; exits non-zero when a test failed.
# Environment: PARLEY_ARTIFACTS (default <repo>/tests/artifacts): JSON, logs
# and the TAP report (tap.log) go to bench/ there, the stack's logs to bench/stack;
# PARLEY_TEST_ONLY: a regular expression, passed as --test-name-pattern.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

export PARLEY_BUILD_DIR=${1:-${PARLEY_BUILD_DIR:-$ROOT/build}}
ART=${PARLEY_ARTIFACTS:-$ROOT/tests/artifacts}/bench
rm -rf "$ART" && mkdir -p "$ART"
export PARLEY_BENCH_ART=$ART

# spec on the terminal, TAP (whose "# pass N" / "# fail N" are counted) in a file
args=(--test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout
    --test-reporter=tap --test-reporter-destination="$ART/tap.log")
[ -z "${PARLEY_TEST_ONLY:-}" ] || args+=(--test-name-pattern="$PARLEY_TEST_ONLY")
PARLEY_STACK_LOGS=$ART/stack "$ROOT/tools/bench/run-stack.sh" --gateways 2 --routers 1 --users 400 \
    -- node "${args[@]}" "$ROOT/tests/bench/bench.test.mjs"
rc=$?

p=$(grep -E '^# pass [0-9]+' "$ART/tap.log" 2>/dev/null | tail -1 | awk '{print $3}')
f=$(grep -E '^# fail [0-9]+' "$ART/tap.log" 2>/dev/null | tail -1 | awk '{print $3}')
p=${p:-0} f=${f:-0}
if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    # nothing failed yet the run did: the stack did not start, a server died
    # during the run, or the test file did not load
    echo "bench: the run failed outside the tests (exit status $rc): see above and $ART/stack"
    f=1
fi
if [ "$p" = 0 ] && [ "$f" = 0 ]; then
    echo "bench: no test ran${PARLEY_TEST_ONLY:+ (PARLEY_TEST_ONLY='$PARLEY_TEST_ONLY' matches no name)}"
    f=1
fi
echo "$p passed, $f failed" | tee "$ART/summary.txt"
[ "$f" = 0 ]
