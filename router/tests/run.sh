#!/usr/bin/env bash
# router/tests/run.sh: the router, script and CLI tests against a private
# redis-server (python3 only, no packages). Starts and stops its own Redis.
#
# usage: router/tests/run.sh [BUILD_DIR]   (default build; needs parley-router and parley)
# Environment: PARLEY_TEST_REDIS_PORT (default 7651; the scripts test uses the next port).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
PORT=${PARLEY_TEST_REDIS_PORT:-7651}
SPORT=$((PORT + 1))

redis-server --port "$SPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait $RPID 2>/dev/null' EXIT
for _ in $(seq 50); do redis-cli -p "$SPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

rc=0
echo "== scripts (redis :$SPORT)"
python3 "$HERE/test_scripts.py" "$SPORT" "$BUILD/parley" || rc=1
echo "== router (redis :$PORT)"
python3 "$HERE/test_router.py" "$BUILD" "$PORT" || rc=1
exit $rc
