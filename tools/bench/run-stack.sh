#!/usr/bin/env bash
# tools/bench/run-stack.sh: start a private Parley stack on free ports (one
# redis-server in a temp dir, routers, gateways, bench users), run
# parley-bench (or any command) against it, then stop everything it started.
#
#   tools/bench/run-stack.sh [options] -- MODE [parley-bench flags]
#   tools/bench/run-stack.sh [options] -- COMMAND [ARGS]   # any command, with the env below
#
# The command gets PARLEY_BENCH_GATEWAYS (host:port,...), PARLEY_BENCH_GATEWAY_PIDS,
# PARLEY_SECRET, PARLEY_REDIS_URL, PARLEY_BENCH_REDIS_PID, PARLEY_BENCH_ROUTER_PIDS and
# PARLEY_BENCH_CPU_PIDS (redis, routers, gateways: CPU time per message) and
# PARLEY_BUILD_DIR, so parley-bench needs no --gateways/--pids/--secret.
#
# Options (environment variable in brackets):
#   --gateways K     gateways to start [PARLEY_STACK_GATEWAYS, default 2]
#   --routers M      routers to start [PARLEY_STACK_ROUTERS, default 1]
#   --users N        bench users to create: bench0..bench(N-1) [PARLEY_STACK_USERS, default 2000]
#   --prefix P       user name prefix [PARLEY_BENCH_PREFIX, default bench]
#   --aof MODE       redis appendfsync: everysec, always, or no (no AOF) [PARLEY_STACK_AOF, default everysec]
#   --redis-link L   how routers and gateways reach Redis: unix (a Unix socket, the cheaper link
#                    when everything runs on one machine) or tcp (127.0.0.1) [PARLEY_STACK_REDIS_LINK,
#                    default unix]; redis-cli and the CLI use TCP either way
#   --gateway-args S extra flags for every gateway [PARLEY_STACK_GATEWAY_ARGS]
#                    (the stack already sets --rate 1000000 --burst 1000000: the per-socket
#                    rate limit is a client-protection policy, not what is being measured)
#   --router-args S  extra flags for every router [PARLEY_STACK_ROUTER_ARGS]
#   --redis-args S   extra flags for redis-server, e.g. "--io-threads 2" [PARLEY_STACK_REDIS_ARGS]
#   --logs DIR       where process logs go [PARLEY_STACK_LOGS, default a temp dir, kept on failure]
#   --help
# Environment: PARLEY_BUILD_DIR (default <repo>/build).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${PARLEY_BUILD_DIR:-$ROOT/build}
NGW=${PARLEY_STACK_GATEWAYS:-2}
NRT=${PARLEY_STACK_ROUTERS:-1}
USERS=${PARLEY_STACK_USERS:-2000}
PREFIX=${PARLEY_BENCH_PREFIX:-bench}
AOF=${PARLEY_STACK_AOF:-everysec}
LINK=${PARLEY_STACK_REDIS_LINK:-unix}
GW_ARGS=${PARLEY_STACK_GATEWAY_ARGS:-}
RT_ARGS=${PARLEY_STACK_ROUTER_ARGS:-}
REDIS_ARGS=${PARLEY_STACK_REDIS_ARGS:-}
LOGS=${PARLEY_STACK_LOGS:-}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "run-stack: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
    --gateways) NGW=$2; shift 2 ;;
    --routers) NRT=$2; shift 2 ;;
    --users) USERS=$2; shift 2 ;;
    --prefix) PREFIX=$2; shift 2 ;;
    --aof) AOF=$2; shift 2 ;;
    --redis-link) LINK=$2; shift 2 ;;
    --gateway-args) GW_ARGS=$2; shift 2 ;;
    --router-args) RT_ARGS=$2; shift 2 ;;
    --redis-args) REDIS_ARGS=$2; shift 2 ;;
    --logs) LOGS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ $# -gt 0 ] || die "nothing to run: give -- MODE [flags] or -- COMMAND (see --help)"
[[ $NGW =~ ^[1-9][0-9]*$ && $NRT =~ ^[1-9][0-9]*$ && $USERS =~ ^[0-9]+$ ]] || die "--gateways, --routers, --users take numbers"
case $AOF in everysec|always|no) ;; *) die "--aof takes everysec, always or no" ;; esac
case $LINK in unix|tcp) ;; *) die "--redis-link takes unix or tcp" ;; esac
for b in parley-gateway parley-router parley parley-bench; do
    [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: run deploy/setup.sh first"
done
command -v redis-server >/dev/null || die "redis-server is missing: run deploy/setup.sh first"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/parley-stack.XXXXXX")
[ -n "$LOGS" ] || LOGS=$WORK/logs
mkdir -p "$LOGS"
PIDS=()
SECRET="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
status=1

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "$status" = 0 ] && [ -z "${PARLEY_STACK_LOGS:-}" ] && [ "$LOGS" = "$WORK/logs" ]; then
        rm -rf "$WORK"
    else
        echo "run-stack: logs kept in $LOGS" >&2
        rm -rf "$WORK/redis"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # what, tries(0.1 s each), command...
    local what=$1 n=$2; shift 2
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "timed out waiting for $what (logs: $LOGS)"
}

# redis
RPORT=$(free_port)
mkdir -p "$WORK/redis"
raof=(--appendonly yes --appendfsync "$AOF")
[ "$AOF" = no ] && raof=(--appendonly no)
# shellcheck disable=SC2086
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK/redis" --save '' "${raof[@]}" \
    --unixsocket "$WORK/redis/redis.sock" --unixsocketperm 700 \
    --client-output-buffer-limit "pubsub 256mb 128mb 60" \
    --maxclients 10000 --daemonize no $REDIS_ARGS >"$LOGS/redis.log" 2>&1 &
PIDS+=($!); REDIS_PID=$!
wait_for redis 100 redis-cli -p "$RPORT" ping
export PARLEY_REDIS_URL=redis://127.0.0.1:$RPORT
SERVER_REDIS_URL=$PARLEY_REDIS_URL
[ "$LINK" = unix ] && SERVER_REDIS_URL=unix://$WORK/redis/redis.sock
export PARLEY_SECRET=$SECRET

if [ "$USERS" -gt 0 ]; then
    "$BUILD/parley" bulk-users "$USERS" --prefix "$PREFIX" --password bench-password-0 >"$LOGS/users.log" 2>&1 \
        || die "parley bulk-users failed: $(tail -1 "$LOGS/users.log")"
fi

ROUTER_PIDS=()
for i in $(seq "$NRT"); do
    # shellcheck disable=SC2086
    "$BUILD/parley-router" --id "bench-rt$i" --log-level warn --redis-url "$SERVER_REDIS_URL" \
        $RT_ARGS >"$LOGS/router$i.log" 2>&1 &
    PIDS+=($!); ROUTER_PIDS+=($!)
done
slots_owned() {
    local n
    n=$("$BUILD/parley" routers 2>/dev/null | sed -n 's/.*slots=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
    [ "${n:-0}" = 64 ]
}
wait_for "routers to own all 64 slots" 200 slots_owned

GWS=(); GW_PIDS=()
for i in $(seq "$NGW"); do
    port=$(free_port)
    # shellcheck disable=SC2086
    "$BUILD/parley-gateway" --port "$port" --id "bench-gw$i" --rate 1000000 --burst 1000000 \
        --log-level warn --web-root "$WORK/none" --redis-url "$SERVER_REDIS_URL" $GW_ARGS \
        >"$LOGS/gateway$i.log" 2>&1 &
    PIDS+=($!); GW_PIDS+=($!); GWS+=("127.0.0.1:$port")
done
for g in "${GWS[@]}"; do wait_for "gateway $g /healthz" 200 curl -fsS "http://$g/healthz"; done

export PARLEY_BUILD_DIR=$BUILD
export PARLEY_BENCH_GATEWAYS=$(IFS=,; echo "${GWS[*]}")
export PARLEY_BENCH_GATEWAY_PIDS=$(IFS=,; echo "${GW_PIDS[*]}")
export PARLEY_BENCH_ROUTER_PIDS=$(IFS=,; echo "${ROUTER_PIDS[*]}")
export PARLEY_BENCH_REDIS_PID=$REDIS_PID
export PARLEY_BENCH_PREFIX=$PREFIX
cpu="redis=$REDIS_PID"
for i in "${!ROUTER_PIDS[@]}"; do cpu+=",router$((i + 1))=${ROUTER_PIDS[$i]}"; done
for i in "${!GW_PIDS[@]}"; do cpu+=",gw$((i + 1))=${GW_PIDS[$i]}"; done
export PARLEY_BENCH_CPU_PIDS=$cpu
echo "run-stack: redis :$RPORT (aof $AOF, servers over $LINK), $NRT router(s), gateways $PARLEY_BENCH_GATEWAYS, $USERS users, logs $LOGS" >&2

case $1 in
connect|pair|1:1|fanout|ramp|noisy) cmd=("$BUILD/parley-bench" "$@") ;;
*) cmd=("$@") ;;
esac
set +e
"${cmd[@]}"
status=$?
set -e
for p in "${GW_PIDS[@]}" "${ROUTER_PIDS[@]}" "$REDIS_PID"; do
    kill -0 "$p" 2>/dev/null || { echo "run-stack: process $p died during the run (logs: $LOGS)" >&2; status=1; }
done
exit $status
