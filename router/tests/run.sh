#!/usr/bin/env bash
# router/tests/run.sh: the router, script and CLI tests against a private
# redis-server (python3 only, no packages). Starts and stops its own Redis.
#
# usage: router/tests/run.sh [BUILD_DIR]   (default build; needs parley-router and parley)
# Environment: PARLEY_TEST_REDIS_PORT (default: a free port; the scripts test
# uses another free port). Ends with "N passed, N failed" (tests/run.sh tallies it).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=${PARLEY_TEST_REDIS_PORT:-$(free_port)}
SPORT=$(free_port)
[ "$SPORT" != "$PORT" ] || SPORT=$(free_port)
LOG=$(mktemp)

redis-server --port "$SPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait $RPID 2>/dev/null' EXIT
for _ in $(seq 50); do redis-cli -p "$SPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

rc=0
echo "== scripts (redis :$SPORT)"
python3 "$HERE/test_scripts.py" "$SPORT" "$BUILD/parley" 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
echo "== router (redis :$PORT)"
python3 "$HERE/test_router.py" "$BUILD" "$PORT" 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
ok=$(grep -c '^ok ' "$LOG"); bad=$(grep -c '^FAIL ' "$LOG")
rm -f "$LOG"
# a script that died before printing a check still fails the stage
[ "$rc" = 0 ] || [ "$bad" -gt 0 ] || bad=1
echo "$ok passed, $bad failed"
exit $rc
