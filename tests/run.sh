#!/usr/bin/env bash
# tests/run.sh: run every Parley test. This is the README's test command and
# what .ci/run calls.
#
# Stages (each must pass), in this order by default:
#   unit         build (deploy/setup.sh installs what is missing), ctest unit tests
#   lint         clang-format, a -Werror build, the gateway's layers, luacheck,
#                ESLint + Prettier (tests/lint/run.sh)
#   integration  real redis-server, router and two gateways, driven by a Node
#                WebSocket client; the router and the Lua scripts also driven
#                directly through Redis (tests/integration)
#   chaos        every fault of issue 12 in turn (Redis SIGSTOPped for 2x the
#                heartbeat TTL six times, Redis and both gateways paused so the
#                reaper closes live gateways, a router and a gateway SIGSTOPped,
#                SIGKILL + restart of a router and a gateway, also during a
#                Redis stall, a Redis restart)
#                under 1:1 and group load: every acked message reaches every
#                session once, in order; counts per fault (tests/chaos, ~1 min)
#   cluster      Redis Cluster (issue 15): 25 integration files again against a local
#                cluster of 3 masters (PARLEY_TEST_REDIS=cluster3: gateways, router and CLI on a
#                redis-cluster:// URL; CLUSTER3_FILES below says which and why), then
#                the chaos test on 3 masters with a replica each (PARLEY_CHAOS_REDIS=cluster3:
#                masters SIGKILLed and slots resharded under load, routers --wait-replicas 1)
#   web          the web client: unit tests (tests/web), vite build, chromium end-to-end
#                through haproxy (tests/e2e)
#   bench        parley-bench, each mode briefly against a real stack: it works
#                and loses nothing (figures: docs/benchmarks.md, never asserted)
#   asan         the unit and integration tests again under ASan + UBSan
#   fuzz         a short, bounded libFuzzer run of the frame decoder
#   containers   docker-compose.yml under podman: 3 gateways behind haproxy,
#                end-to-end (https/wss) from a container on the stack's network
# Stages that run a script of their own follow one rule: the script's last
# line is "N passed, N failed" and its exit status says whether the stage
# passed (run_script below).
#
# usage: tests/run.sh [--stages "STAGE..."] [--only PATTERN] [--help]
#   --stages  run these stages only (also PARLEY_TEST_STAGES), e.g. "unit integration"
#   --only    run only the tests whose name matches PATTERN: ctest -R PATTERN
#             (C unit tests, names like proto.decode_text) and node --test
#             --test-name-pattern=PATTERN (integration, web unit and browser
#             tests; the chaos, bench and containers stages too when named with
#             --stages, where a pattern that matches nothing fails); without
#             --stages it runs unit integration web (tests/README.md)
# Environment: PARLEY_TEST_STAGES, PARLEY_FUZZ_SECONDS (default 60).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ONLY=
while [ $# -gt 0 ]; do
    case $1 in
    --only) [ $# -ge 2 ] || { echo "tests/run.sh: --only needs a pattern" >&2; exit 2; }; ONLY=$2; shift ;;
    --stages) [ $# -ge 2 ] || { echo "tests/run.sh: --stages needs a list" >&2; exit 2; }; PARLEY_TEST_STAGES=$2; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "tests/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -n "$ONLY" ]; then
    STAGES=${PARLEY_TEST_STAGES:-unit integration web}
    export PARLEY_TEST_ONLY=$ONLY # tests/e2e/run.sh passes it to node --test
else
    STAGES=${PARLEY_TEST_STAGES:-unit lint integration chaos cluster web bench asan fuzz containers}
fi
ART=$ROOT/tests/artifacts
mkdir -p "$ART"
passed=0
failed=0
failures=()

note() { printf '\n=== %s ===\n' "$*"; }
# count "N passed" style results out of a runner's log
tally_ctest() { # log
    local line p f
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$1" | tail -1)
    if [ -n "$line" ]; then
        f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
        p=$(( $(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line") - f ))
        passed=$((passed + p)); failed=$((failed + f))
    fi
}
tally_node() { # log
    local p f
    p=$(grep -E '^# pass [0-9]+' "$1" | tail -1 | awk '{print $3}')
    f=$(grep -E '^# fail [0-9]+' "$1" | tail -1 | awk '{print $3}')
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
}
tally_line() { # log: the last "N passed, N failed" line
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -1)
    passed=$((passed + $(awk '{print $1}' <<<"${line:-0 passed, 0 failed}")))
    failed=$((failed + $(awk '{print $3}' <<<"${line:-0 passed, 0 failed}")))
}
stage_failed() { failures+=("$1"); }

# built_script_stage LABEL BINARY SCRIPT: run_script SCRIPT build/ once the
# unit stage has built BINARY
built_script_stage() {
    if [ -x "$ROOT/build/$2" ]; then
        run_script "$1" "$3" "$ROOT/build"
    else
        stage_failed "$1 setup (no build/$2: run the unit stage first)"; failed=$((failed + 1))
    fi
}

# run_script LABEL SCRIPT ARGS...: a stage implemented by its own script
run_script() {
    local label=$1; shift
    local log=$ART/$label.log
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    tally_line "$log"
    if [ "$rc" != 0 ]; then
        stage_failed "$label"
        grep -qE '^[0-9]+ passed, [1-9][0-9]* failed$' "$log" || failed=$((failed + 1))
    fi
}

build() { # dir, extra env...
    local dir=$1; shift
    env PARLEY_BUILD_DIR="$dir" "$@" "$ROOT/deploy/setup.sh"
}

integration_deps() {
    if [ ! -d tests/integration/node_modules ]; then
        (cd tests/integration && npm ci --no-audit --no-fund >/dev/null) || return 1
    fi
}

run_unit() { # build dir, label
    local log=$ART/ctest-$2.log
    ctest --test-dir "$1" --output-on-failure ${ONLY:+-R "$ONLY"} 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    tally_ctest "$log"
    [ "$rc" = 0 ] || stage_failed "unit tests ($2)"
}

# The integration files run again on a 3-master Redis Cluster (the cluster stage): every frame
# kind and HTTP route, sessions, crashes of gateways, edits/deletes/reactions, groups, reads. The
# others drive one Redis itself (restarts, stalls, its persistence, direct calls of one-Redis
# scripts, scans of its keys) or measure send.lua's queued fan-outs; clink.test.mjs,
# redis_cluster.test.mjs and cluster_mode.test.mjs start clusters of their own in every run.
CLUSTER3_FILES="bad_frames block cluster_mode contacts conversations dev_auth gateway_crash
    gateway_drain group_roles history_read_groups http_auth http_hygiene lifecycle lifecycle_caps
    lifecycle_delivery lifecycle_mentions lifecycle_rights lifecycle_sync login_throttle login_work
    messaging open_rate origins send_limits unread_membership"

run_integration() { # build dir, label [env...]; INTEGRATION_FILES: the files (default: all)
    local log=$ART/integration-$2.log files=tests/integration/ f
    if [ -n "${INTEGRATION_FILES:-}" ]; then
        files=
        for f in $INTEGRATION_FILES; do files="$files tests/integration/$f.test.mjs"; done
    fi
    env "${@:3}" PARLEY_BUILD_DIR=$1 PARLEY_ARTIFACTS=$ART/$2 node --test --test-concurrency=1 \
        ${ONLY:+--test-name-pattern="$ONLY"} $files 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    tally_node "$log"
    [ "$rc" = 0 ] || stage_failed "integration tests ($2)"
}

for stage in $STAGES; do
    case $stage in
    unit)
        note "build + unit tests"
        if build "$ROOT/build"; then run_unit "$ROOT/build" release; else stage_failed "build"; failed=$((failed + 1)); fi
        ;;
    lint)
        note "lint: clang-format, -Werror build, gateway layers, luacheck, ESLint + Prettier"
        run_script lint "$ROOT/tests/lint/run.sh"
        ;;
    integration)
        note "integration tests (real redis, router, two gateways)"
        if integration_deps && [ -x "$ROOT/build/parley-gateway" ]; then
            run_integration "$ROOT/build" release
        else
            stage_failed "integration setup"; failed=$((failed + 1))
        fi
        ;;
    cluster)
        note "cluster: the integration suite on a 3-master Redis Cluster, chaos on it (failover, resharding)"
        if integration_deps && [ -x "$ROOT/build/parley-gateway" ]; then
            INTEGRATION_FILES=$CLUSTER3_FILES run_integration "$ROOT/build" cluster3 PARLEY_TEST_REDIS=cluster3
            log=$ART/chaos-cluster.log
            PARLEY_CHAOS_REDIS=cluster3 PARLEY_BUILD_DIR=$ROOT/build PARLEY_ARTIFACTS=$ART node --test \
                --test-concurrency=1 ${ONLY:+--test-name-pattern="$ONLY"} tests/chaos/ 2>&1 | tee "$log"
            rc=${PIPESTATUS[0]}
            tally_node "$log"
            [ "$rc" = 0 ] || stage_failed "chaos on a cluster"
        else
            stage_failed "cluster setup (no build/parley-gateway: run the unit stage first)"; failed=$((failed + 1))
        fi
        ;;
    chaos)
        note "chaos: faults under load, nothing acked lost (tests/chaos)"
        if integration_deps && [ -x "$ROOT/build/parley-gateway" ]; then
            log=$ART/chaos.log
            PARLEY_BUILD_DIR=$ROOT/build PARLEY_ARTIFACTS=$ART node --test --test-concurrency=1 \
                ${ONLY:+--test-name-pattern="$ONLY"} tests/chaos/ 2>&1 | tee "$log"
            rc=${PIPESTATUS[0]}
            tally_node "$log"
            [ "$rc" = 0 ] || stage_failed "chaos"
            if [ -n "$ONLY" ] && grep -qE '^# pass 0$' "$log"; then
                stage_failed "chaos (no test matched --only)"; failed=$((failed + 1))
            fi
        else
            stage_failed "chaos setup (no build/parley-gateway: run the unit stage first)"; failed=$((failed + 1))
        fi
        ;;
    web)
        note "web client: unit tests, vite build, chromium end-to-end through haproxy"
        built_script_stage web parley-gateway "$ROOT/tests/e2e/run.sh"
        ;;
    bench)
        note "parley-bench: each mode briefly against a real stack (works, loses nothing, valid JSON)"
        built_script_stage bench parley-bench "$ROOT/tests/bench/run.sh"
        ;;
    asan)
        note "ASan + UBSan build: unit and integration tests"
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
        export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}
        if build "$ROOT/build-asan" PARLEY_SANITIZE=1 PARLEY_BUILD_TYPE=Debug; then
            run_unit "$ROOT/build-asan" asan
            integration_deps && run_integration "$ROOT/build-asan" asan
        else
            stage_failed "asan build"; failed=$((failed + 1))
        fi
        unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
        ;;
    fuzz)
        note "libFuzzer: frame decoder (${PARLEY_FUZZ_SECONDS:-60} s)"
        if build "$ROOT/build-fuzz" PARLEY_FUZZ=1 PARLEY_BUILD_TYPE=Debug; then
            work=$(mktemp -d)
            cp tests/fuzz/corpus/proto/* "$work"/ 2>/dev/null || true
            if "$ROOT/build-fuzz/tests/fuzz_proto" -max_total_time="${PARLEY_FUZZ_SECONDS:-60}" \
                -timeout=5 -rss_limit_mb=2048 -artifact_prefix="$ART/" "$work" >"$ART/fuzz.log" 2>&1; then
                tail -3 "$ART/fuzz.log"; passed=$((passed + 1))
            else
                tail -40 "$ART/fuzz.log"; stage_failed "fuzz"; failed=$((failed + 1))
            fi
            rm -rf "$work"
        else
            stage_failed "fuzz build"; failed=$((failed + 1))
        fi
        ;;
    containers)
        note "containers: docker-compose.yml under podman, three gateways behind haproxy (tests/containers)"
        run_script containers "$ROOT/tests/containers/run.sh"
        ;;
    *) echo "tests/run.sh: unknown stage '$stage'" >&2; exit 2 ;;
    esac
done

echo
[ ${#failures[@]} -eq 0 ] || printf 'FAILED: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ ${#failures[@]} -eq 0 ]
