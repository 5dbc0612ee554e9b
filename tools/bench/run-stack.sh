#!/usr/bin/env bash
# tools/bench/run-stack.sh: start a private Parley stack on free ports (one
# redis-server in a temp dir, or a local Redis Cluster; routers, gateways, bench
# users), run parley-bench (or any command) against it, then stop everything it
# started.
#
#   tools/bench/run-stack.sh [options] -- MODE [parley-bench flags]
#   tools/bench/run-stack.sh [options] -- COMMAND [ARGS]   # any command, with the env below
#
# The command gets PARLEY_BENCH_GATEWAYS (host:port,...), PARLEY_BENCH_GATEWAY_PIDS,
# PARLEY_SECRET, PARLEY_REDIS_URL, PARLEY_BENCH_REDIS_PID, PARLEY_BENCH_ROUTER_PIDS and
# PARLEY_BENCH_CPU_PIDS (redis, routers, gateways: CPU time per message) and
# PARLEY_BUILD_DIR, so parley-bench needs no --gateways/--pids/--secret.
# With --redis-cluster N: PARLEY_REDIS_URL is redis-cluster://127.0.0.1:P1,...
# (the masters), PARLEY_BENCH_CPU_PIDS names every node (redis1..redisN the
# masters, redis1r1.. their replicas: CPU per message per shard),
# PARLEY_BENCH_REDIS_PID is the first master's, PARLEY_BENCH_REDIS_PORTS lists
# every node's port (masters first) and PARLEY_BENCH_REDIS_PIDS their pids.
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
#   --redis-cluster N  a local Redis Cluster of N masters instead of one Redis
#                    [PARLEY_STACK_REDIS_CLUSTER, default 0: one Redis]: nodes on free ports and
#                    cluster-bus ports (AOF, output limits and --redis-args as above), the 16384
#                    slots split in N equal ranges, joined with CLUSTER MEET (redis-cli --cluster
#                    create refuses fewer than 3 masters); servers reach it over TCP
#                    (redis-cluster://, --redis-link does not apply). The bench users are made by
#                    `parley bulk-users` on a scratch Redis and copied in with `redis-cli --cluster
#                    import` (bulk-users pipelines its scripts on one connection: on a cluster
#                    of 2+ masters it meets MOVED)
#   --replicas R     replicas per master in cluster mode [PARLEY_STACK_REPLICAS, default 0]
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
NCLUSTER=${PARLEY_STACK_REDIS_CLUSTER:-0}
NREPLICAS=${PARLEY_STACK_REPLICAS:-0}

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
    --redis-cluster) NCLUSTER=$2; shift 2 ;;
    --replicas) NREPLICAS=$2; shift 2 ;;
    --logs) LOGS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ $# -gt 0 ] || die "nothing to run: give -- MODE [flags] or -- COMMAND (see --help)"
[[ $NGW =~ ^[1-9][0-9]*$ && $NRT =~ ^[1-9][0-9]*$ && $USERS =~ ^[0-9]+$ ]] || die "--gateways, --routers, --users take numbers"
[[ $NCLUSTER =~ ^[0-9]+$ && $NREPLICAS =~ ^[0-9]+$ && $NCLUSTER -le 16 && $NREPLICAS -le 4 ]] \
    || die "--redis-cluster takes 0..16 masters, --replicas 0..4"
[ "$NREPLICAS" = 0 ] || [ "$NCLUSTER" -gt 0 ] || die "--replicas needs --redis-cluster N"
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

TAKEN=" "
distinct_port() { # a free port not handed out before by this script (free_port releases its port)
    local p
    p=$(free_port)
    while [[ $TAKEN == *" $p "* ]]; do p=$(free_port); done
    TAKEN+="$p "
    echo "$p"
}
raof=(--appendonly yes --appendfsync "$AOF")
[ "$AOF" = no ] && raof=(--appendonly no)
rflags=(--bind 127.0.0.1 --save '' "${raof[@]}" --client-output-buffer-limit "pubsub 256mb 128mb 60"
    --maxclients 10000 --daemonize no)
REDIS_PIDS=(); REDIS_PORTS=(); REDIS_NAMES=()
mkdir -p "$WORK/redis"

# one redis-server node: name port [more redis-server flags]
start_redis() {
    local name=$1 port=$2; shift 2
    mkdir -p "$WORK/redis/$name"
    # shellcheck disable=SC2086
    redis-server --port "$port" --dir "$WORK/redis/$name" "${rflags[@]}" "$@" $REDIS_ARGS \
        >"$LOGS/$name.log" 2>&1 &
    PIDS+=($!); REDIS_PIDS+=($!); REDIS_PORTS+=("$port"); REDIS_NAMES+=("$name")
}
rcli() { redis-cli -p "$1" "${@:2}"; }
cluster_info_has() { # port pattern...
    local info p
    info=$(rcli "$1" CLUSTER INFO) || return 1
    for p in "${@:2}"; do [[ $info == *"$p"* ]] || return 1; done
}
every_node() { local p; for p in "${REDIS_PORTS[@]}"; do "$@" "$p" || return 1; done; }
node_known_all() { cluster_info_has "$1" "cluster_known_nodes:${#REDIS_PORTS[@]}"$'\r'; }
node_ok() {
    cluster_info_has "$1" cluster_state:ok cluster_slots_ok:16384 || return 1
    local repl
    repl=$(rcli "$1" INFO replication) || return 1
    [[ $repl != *role:slave* || $repl == *master_link_status:up* ]]
}

if [ "$NCLUSTER" = 0 ]; then
    RPORT=$(distinct_port)
    start_redis redis "$RPORT" --unixsocket "$WORK/redis/redis/redis.sock" --unixsocketperm 700
    wait_for redis 100 rcli "$RPORT" ping
    export PARLEY_REDIS_URL=redis://127.0.0.1:$RPORT
    SERVER_REDIS_URL=$PARLEY_REDIS_URL
    [ "$LINK" = unix ] && SERVER_REDIS_URL=unix://$WORK/redis/redis/redis.sock
else
    # masters redis1..redisN, then replica j of master m: redis<m>r<j>
    names=()
    for m in $(seq "$NCLUSTER"); do names+=("redis$m"); done
    for j in $(seq "$NREPLICAS"); do for m in $(seq "$NCLUSTER"); do names+=("redis${m}r$j"); done; done
    for name in "${names[@]}"; do
        # a port free when picked can be taken (another program's outgoing connection) before
        # redis-server binds it: a node that exits at once is started again on other ports
        for try in 1 2 3; do
            port=$(distinct_port); bus=$(distinct_port)
            start_redis "$name" "$port" --cluster-port "$bus" --cluster-enabled yes \
                --cluster-config-file "$WORK/redis/$name/nodes.conf" --cluster-node-timeout 5000 \
                --cluster-require-full-coverage no
            pid=${REDIS_PIDS[-1]}
            for _ in $(seq 50); do
                rcli "$port" ping >/dev/null 2>&1 && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && break
            [ "$try" = 3 ] && die "redis $name would not start (logs: $LOGS)"
            unset 'PIDS[-1]' 'REDIS_PIDS[-1]' 'REDIS_PORTS[-1]' 'REDIS_NAMES[-1]'
            rm -f "$WORK/redis/$name/nodes.conf"
        done
        eval "BUS_$port=$bus"
    done
    for p in "${REDIS_PORTS[@]}"; do wait_for "redis :$p" 100 rcli "$p" ping; done
    for m in $(seq 0 $((NCLUSTER - 1))); do
        rcli "${REDIS_PORTS[$m]}" CLUSTER ADDSLOTSRANGE $((m * 16384 / NCLUSTER)) \
            $(((m + 1) * 16384 / NCLUSTER - 1)) >/dev/null || die "CLUSTER ADDSLOTSRANGE failed"
    done
    for p in "${REDIS_PORTS[@]:1}"; do
        bvar=BUS_$p
        rcli "${REDIS_PORTS[0]}" CLUSTER MEET 127.0.0.1 "$p" "${!bvar}" >/dev/null || die "CLUSTER MEET failed"
    done
    wait_for "every cluster node to know the others" 300 every_node node_known_all
    for i in $(seq "$NCLUSTER" $((${#REDIS_PORTS[@]} - 1))); do
        master=$(rcli "${REDIS_PORTS[$(((i - NCLUSTER) % NCLUSTER))]}" CLUSTER MYID)
        [ "$(rcli "${REDIS_PORTS[$i]}" CLUSTER REPLICATE "$master")" = OK ] || die "CLUSTER REPLICATE failed"
    done
    wait_for "cluster_state:ok on every node, replicas in sync" 300 every_node node_ok
    seeds=()
    for p in "${REDIS_PORTS[@]:0:$NCLUSTER}"; do seeds+=("127.0.0.1:$p"); done
    export PARLEY_REDIS_URL=redis-cluster://$(IFS=,; echo "${seeds[*]}")
    SERVER_REDIS_URL=$PARLEY_REDIS_URL
fi
REDIS_PID=${REDIS_PIDS[0]}
export PARLEY_SECRET=$SECRET

if [ "$USERS" -gt 0 ]; then
    users_url=$PARLEY_REDIS_URL
    if [ "$NCLUSTER" -gt 0 ]; then # on a scratch Redis, then copied into the cluster
        sport=$(distinct_port)
        mkdir -p "$WORK/redis/scratch"
        redis-server --port "$sport" --bind 127.0.0.1 --dir "$WORK/redis/scratch" --save '' \
            --appendonly no --daemonize no >"$LOGS/scratch-redis.log" 2>&1 &
        SCRATCH_PID=$!; PIDS+=("$SCRATCH_PID")
        wait_for "scratch redis" 100 rcli "$sport" ping
        users_url=redis://127.0.0.1:$sport
    fi
    PARLEY_REDIS_URL=$users_url "$BUILD/parley" bulk-users "$USERS" --prefix "$PREFIX" \
        --password bench-password-0 >"$LOGS/users.log" 2>&1 \
        || die "parley bulk-users failed: $(tail -1 "$LOGS/users.log")"
    if [ "$NCLUSTER" -gt 0 ]; then
        redis-cli --cluster import "127.0.0.1:${REDIS_PORTS[0]}" --cluster-from "127.0.0.1:$sport" \
            --cluster-copy --cluster-replace >"$LOGS/import.log" 2>&1 \
            || die "redis-cli --cluster import failed (logs: $LOGS)"
        want=$(rcli "$sport" DBSIZE); got=0
        for p in "${REDIS_PORTS[@]:0:$NCLUSTER}"; do got=$((got + $(rcli "$p" DBSIZE))); done
        [ "$got" = "$want" ] || die "the cluster holds $got keys after the import, not $want"
        kill -TERM "$SCRATCH_PID"; wait "$SCRATCH_PID" 2>/dev/null || true
    fi
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
    if [ "$NCLUSTER" -gt 0 ]; then # the 64 lease keys are on several masters: redis-cli -c follows MOVED
        n=$(for s in $(seq 0 63); do echo "GET parley:slot:$s"; done | redis-cli -c -p "${REDIS_PORTS[0]}" 2>/dev/null \
            | grep -v -e '^-> Redirected' -e '^$' -c)
    else
        n=$("$BUILD/parley" routers 2>/dev/null | sed -n 's/.*slots=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
    fi
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
export PARLEY_BENCH_REDIS_PIDS=$(IFS=,; echo "${REDIS_PIDS[*]}")
export PARLEY_BENCH_REDIS_PORTS=$(IFS=,; echo "${REDIS_PORTS[*]}")
cpu=""
for i in "${!REDIS_PIDS[@]}"; do cpu+="${cpu:+,}${REDIS_NAMES[$i]}=${REDIS_PIDS[$i]}"; done
for i in "${!ROUTER_PIDS[@]}"; do cpu+=",router$((i + 1))=${ROUTER_PIDS[$i]}"; done
for i in "${!GW_PIDS[@]}"; do cpu+=",gw$((i + 1))=${GW_PIDS[$i]}"; done
export PARLEY_BENCH_CPU_PIDS=$cpu
if [ "$NCLUSTER" = 0 ]; then
    what="redis :$RPORT (aof $AOF, servers over $LINK)"
else
    what="redis cluster of $NCLUSTER master(s) x $NREPLICAS replica(s), ports ${PARLEY_BENCH_REDIS_PORTS} (aof $AOF)"
fi
echo "run-stack: $what, $NRT router(s), gateways $PARLEY_BENCH_GATEWAYS, $USERS users, logs $LOGS" >&2

case $1 in
connect|pair|1:1|fanout|ramp|noisy) cmd=("$BUILD/parley-bench" "$@") ;;
*) cmd=("$@") ;;
esac
set +e
"${cmd[@]}"
status=$?
set -e
for p in "${GW_PIDS[@]}" "${ROUTER_PIDS[@]}" "${REDIS_PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "run-stack: process $p died during the run (logs: $LOGS)" >&2; status=1; }
done
exit $status
