#!/usr/bin/env bash
# deploy/run.sh: run Parley on this machine, in the foreground.
#
# Installs what is missing and builds (deploy/setup.sh), then starts a private
# redis-server (AOF on, data in .run/redis), one router and two gateways, and
# prints the URL. Ctrl-C stops everything.
#
# Environment: PARLEY_REDIS_PORT (6390), PARLEY_PORT (8080; the second gateway
# takes the next port), PARLEY_LISTEN (127.0.0.1), PARLEY_SECRET (unset: a
# random secret generated on the first run into $PARLEY_RUN_DIR/secret, mode
# 0600, and kept across runs so logins survive a restart), PARLEY_RUN_DIR (.run).
#
# Usage: deploy/run.sh [--help]
set -euo pipefail

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi
[ $# -eq 0 ] || { echo "run: unexpected argument '$1' (see --help)" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/deploy/setup.sh"
BUILD=${PARLEY_BUILD_DIR:-$ROOT/build}
RUN=${PARLEY_RUN_DIR:-$ROOT/.run}
RPORT=${PARLEY_REDIS_PORT:-6390}
PORT=${PARLEY_PORT:-8080}
LISTEN=${PARLEY_LISTEN:-127.0.0.1}
export PARLEY_REDIS_URL=redis://127.0.0.1:$RPORT

# the web client, when it exists and npm can build it
if [ -f "$ROOT/web/package.json" ] && [ ! -f "$ROOT/web/dist/index.html" ]; then
    (cd "$ROOT/web" && npm ci --no-audit --no-fund && npm run build) >&2 || echo "run: web client build failed; serving the API only" >&2
fi

mkdir -p "$RUN/redis"
# the token secret: PARLEY_SECRET if given, else $RUN/secret (made once: 32
# random bytes as hex; the gateways and the CLI read it with --secret-file)
SECRET_ARGS=()
if [ -z "${PARLEY_SECRET:-}" ]; then
    if [ ! -s "$RUN/secret" ]; then
        (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$RUN/secret.tmp" && mv "$RUN/secret.tmp" "$RUN/secret")
    fi
    chmod 600 "$RUN/secret"
    export PARLEY_SECRET_FILE=$RUN/secret
    SECRET_ARGS=(--secret-file "$RUN/secret")
fi
pids=()
cleanup() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# pubsub output buffer: a router that pauses reading under load (backpressure,
# router/route.c) lets Redis buffer for it; the default 32 MB cut would drop it
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$RUN/redis" --appendonly yes \
    --client-output-buffer-limit "pubsub 256mb 128mb 60" \
    --appendfsync everysec --save '' --daemonize no --logfile "$RUN/redis.log" &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$RPORT" ping >/dev/null || { echo "run: redis-server did not start (see $RUN/redis.log)" >&2; exit 1; }
# inbox entries stored as copies by an older Parley become references (idempotent; a no-op on a
# fresh or migrated store): a delete then leaves a text in no key
"$BUILD/parley" migrate-inboxes >/dev/null || { echo "run: parley migrate-inboxes failed" >&2; exit 1; }

"$BUILD/parley-router" --id router1 &
pids+=($!)
"$BUILD/parley-gateway" --listen "$LISTEN" --port "$PORT" --id gw1 --web-root "$ROOT/web/dist" &
pids+=($!)
"$BUILD/parley-gateway" --listen "$LISTEN" --port $((PORT + 1)) --id gw2 --web-root "$ROOT/web/dist" &
pids+=($!)

# where the gateways answer: the listen address, or loopback for a wildcard
HOST=$LISTEN
case $HOST in 0.0.0.0 | :: | '[::]') HOST=127.0.0.1 ;; esac
case $HOST in *:*) HOST="[$HOST]" ;; esac
healthy=0
for _ in $(seq 100); do
    if curl -sf "http://$HOST:$PORT/healthz" >/dev/null 2>&1 &&
        curl -sf "http://$HOST:$((PORT + 1))/healthz" >/dev/null 2>&1; then
        healthy=1
        break
    fi
    # a process that refused to start (a bad flag, a refused secret) ends the wait
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || break 2; done
    sleep 0.2
done
if [ "$healthy" != 1 ]; then
    echo "run: the gateways did not become healthy (their errors are above); stopping" >&2
    exit 1
fi
cat <<MSG

Parley is running:
  web client   http://$LISTEN:$PORT/   (second gateway: http://$LISTEN:$((PORT + 1))/)
  redis        redis-cli -p $RPORT   (try: SMEMBERS parley:online)
  admin CLI    $BUILD/parley --redis-url redis://127.0.0.1:$RPORT ${SECRET_ARGS[*]} --help
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "run: a process exited; stopping" >&2
