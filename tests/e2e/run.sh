#!/usr/bin/env bash
# tests/e2e/run.sh: the web client's tests, the `web` stage of tests/run.sh.
#
#   1. npm ci in web/, tests/e2e/ and tests/integration/ (whose cluster
#      library the e2e suite reuses) when node_modules is missing or older
#      than package-lock.json
#   2. node --test tests/web/: the client's state logic (web/src/lib), with
#      web/node_modules providing what those modules import
#   3. vite build of web/ into web/dist (what the gateways serve)
#   4. the browser suite (tests/e2e/*.test.mjs): Debian's chromium driven by
#      playwright-core against redis, a router, two gateways and haproxy;
#      screenshots go to tests/artifacts/screenshots/
# Ends with "N passed, N failed" (unit + e2e; skipped tests are not
# counted) and exits non-zero on any failure.
#
# Usage: tests/e2e/run.sh [--help] [BUILD_DIR]
# Environment: PARLEY_BUILD_DIR (default build; the argument wins),
# PARLEY_ARTIFACTS (default tests/artifacts), PARLEY_CHROMIUM
# (default /usr/bin/chromium), PARLEY_HAPROXY (default haproxy),
# PARLEY_E2E_SKIP_BUILD=1 to use web/dist as it is.
set -uo pipefail

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export PARLEY_BUILD_DIR=${1:-${PARLEY_BUILD_DIR:-$ROOT/build}}
export PARLEY_ARTIFACTS=${PARLEY_ARTIFACTS:-$ROOT/tests/artifacts}
ART=$PARLEY_ARTIFACTS
mkdir -p "$ART/screenshots"
passed=0
failed=0
say() { printf '\n--- web: %s ---\n' "$*"; }
fail_setup() { echo "web: $*" >&2; failed=$((failed + 1)); }

deps() { # dir
    local d=$1
    if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules" ]; then
        (cd "$d" && npm ci --no-audit --no-fund >/dev/null) && touch "$d/node_modules"
    fi
}

finish() {
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit $?
}

for t in "${PARLEY_CHROMIUM:-/usr/bin/chromium}" "${PARLEY_HAPROXY:-haproxy}"; do
    command -v "$t" >/dev/null || { fail_setup "$t not found: run deploy/setup.sh"; finish; }
done
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
    { fail_setup "node $(node --version) is too old: vite 7 and playwright-core need Node >= 20.19"; finish; }
[ -x "$PARLEY_BUILD_DIR/parley-gateway" ] || { fail_setup "no $PARLEY_BUILD_DIR/parley-gateway: run deploy/setup.sh"; finish; }

say "npm dependencies"
for d in web tests/e2e tests/integration; do
    deps "$ROOT/$d" || { fail_setup "npm ci in $d failed"; finish; }
done

# node_test LOG ARGS...: node --test ARGS from the repo root, its TAP output
# in LOG; adds its pass/fail counts to the tally (a non-zero exit without a
# failed test, e.g. a file that does not load, counts as one failure)
node_test() {
    local log=$1; shift
    (cd "$ROOT" && node --test ${PARLEY_TEST_ONLY:+--test-name-pattern="$PARLEY_TEST_ONLY"} "$@") 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]} p f
    p=$(grep -E '^# pass [0-9]+' "$log" | tail -1 | awk '{print $3}')
    f=$(grep -E '^# fail [0-9]+' "$log" | tail -1 | awk '{print $3}')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    [ "$rc" = 0 ] || [ "${f:-0}" != 0 ] || failed=$((failed + 1))
}

say "unit tests (client state logic, node --test tests/web/)"
node_test "$ART/web-unit.log" tests/web/

if [ "${PARLEY_E2E_SKIP_BUILD:-0}" != 1 ]; then
    say "vite build (web/dist)"
    (cd "$ROOT/web" && npm run build) || { fail_setup "web build failed"; finish; }
fi

say "browser end-to-end (chromium + haproxy + real gateways)"
log=$ART/web-e2e.log
node_test "$log" --test-concurrency=1 tests/e2e/
s=$(grep -E '^# skipped [0-9]+' "$log" | tail -1 | awk '{print $3}')
[ "${s:-0}" = 0 ] || echo "web: ${s} e2e test(s) skipped (see the # SKIP lines above for why)"
echo "web: screenshots in $ART/screenshots/"
finish
