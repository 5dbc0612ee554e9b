#!/usr/bin/env bash
# tools/bench/cluster/shards.sh: issue 15's benchmark. Runs parley-bench 1:1
# traffic on fresh stacks (tools/bench/run-stack.sh) for each Redis setup below,
# a fixed rate (`pair`), a ramp (`ramp`, bound p99 as docs/benchmarks.md's
# ramps) and an overload (`max`: far more offered than carried, the most
# delivered per second: what the stack carries when latency is not bounded, the
# figure a loaded machine moves least) and an idle stack (`idle`: no client for
# 10 s, the CPU each node spends per second on its own: cluster bus, router
# leases, heartbeats), keeping every JSON result and every Redis node's counters
# (cluster/stats.sh); then prints the tables of docs/benchmarks.md "Redis
# Cluster (issue 15)" (cluster/shards.py): throughput held, p50/p99, CPU per
# message of each Redis node, router and gateway, and the per-shard arithmetic.
#
#   tools/bench/cluster/shards.sh [--runs N] [--out DIR] [--only SETUPS] [--benches pair,ramp,max,idle]
#
# Setups (--only takes a comma list; default all, in this order, one round
# after the other so a noisy moment hits every setup alike):
#   one        one Redis, send.lua (one batched call per router batch: today's mode)
#   one-steps  one Redis, router --send-steps (send_step.lua: the cost of the steps alone)
#   c1 c2 c3   a Redis Cluster of 1, 2, 3 masters (redis-cluster://; the router in steps)
#   c3r        3 masters with a replica each (the replicas' cost, acks not waiting)
#   c3r-wait   the same with router --wait-replicas 1 (WAIT after every step)
# Options (environment in brackets): --runs N [PARLEY_SHARDS_RUNS, default 3],
# --out DIR [PARLEY_SHARDS_OUT, default /tmp/parley-shards-<UTC time>],
# --rate R fixed rate of `pair` [PARLEY_SHARDS_RATE, default 1000 msg/s, 1,000 pairs, 10 s],
# --ramp "START STEP MAX" [PARLEY_SHARDS_RAMP, default "1000 1000 20000": msg/s, 5 s steps,
# p99 <= 10 ms, 1,000 pairs], --max R offered rate of `max` [PARLEY_SHARDS_MAX, default 20000
# msg/s, 1,000 pairs, 10 s, 2 generator processes, 5 s drain]. Routers run without per-user send budgets (as figures.sh).
# PARLEY_BUILD_DIR picks another build. Takes about 8-10 minutes per round.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
RUNS=${PARLEY_SHARDS_RUNS:-3}
OUT=${PARLEY_SHARDS_OUT:-${TMPDIR:-/tmp}/parley-shards-$(date -u +%Y%m%dT%H%M%SZ)}
RATE=${PARLEY_SHARDS_RATE:-1000}
RAMP=${PARLEY_SHARDS_RAMP:-"1000 1000 20000"}
MAX=${PARLEY_SHARDS_MAX:-20000}
ONLY=""
BENCHES=pair,ramp,max,idle
ALL="one one-steps c1 c2 c3 c3r c3r-wait"
while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --benches) BENCHES=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --ramp) RAMP=$2; shift 2 ;;
    --max) MAX=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "shards.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
read -r R0 RSTEP RMAX <<<"$RAMP"
mkdir -p "$OUT"
STACK=$ROOT/tools/bench/run-stack.sh
ROUTER_BASE="--user-rate 0 --user-fanout-rate 0 --user-byte-rate 0"

# setup NAME: the run-stack.sh options of a setup
setup() {
    case $1 in
    one) echo "" ;;
    one-steps) echo "--router-args=--send-steps" ;;
    c1) echo "--redis-cluster 1" ;;
    c2) echo "--redis-cluster 2" ;;
    c3) echo "--redis-cluster 3" ;;
    c3r) echo "--redis-cluster 3 --replicas 1" ;;
    c3r-wait) echo "--redis-cluster 3 --replicas 1 --router-args=--wait-replicas=1" ;;
    *) return 1 ;;
    esac
}
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
for s in ${ONLY//,/ }; do setup "$s" >/dev/null || { echo "shards.sh: unknown setup '$s'" >&2; exit 2; }; done

# bench SETUP BENCH RUN -- parley-bench args
bench() {
    local name=$1-$2-$3 extra=() rargs=$ROUTER_BASE o
    shift 4
    for o in $(setup "${name%-*-*}"); do
        case $o in
        --router-args=*) rargs+=" ${o#--router-args=}" ;;
        *) extra+=("$o") ;;
        esac
    done
    rargs=${rargs//=/ }
    echo "=== $name ($(cut -d' ' -f1-3 /proc/loadavg))" >&2
    local flags=(--json "$OUT/$name.json" --label "$name" --progress 1)
    [ "$1" = sleep ] && flags=()
    PARLEY_STACK_LOGS=$OUT/logs/$name PARLEY_STACK_ROUTER_ARGS=$rargs \
        "$STACK" "${extra[@]}" --users 2000 -- "$HERE/stats.sh" "$OUT/$name" \
        "$@" "${flags[@]}" >"$OUT/$name.txt" 2>&1
    echo "    exit $?: $(grep -E 'highest|delivered/s|first problem' "$OUT/$name.txt" | tr -s ' ' | paste -sd';')" >&2
}

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -srm), $(nproc) cpus"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
    b=${PARLEY_BUILD_DIR:-$ROOT/build}
    echo "build: $b (source $(git -C "$b/.." rev-parse --short HEAD 2>/dev/null))"
    echo "redis: $(redis-server --version | awk '{print $3}')"
    echo "rate: $RATE, ramp: $RAMP, max: $MAX"
} >"$OUT/machine.txt"

for run in $(seq "$RUNS"); do
    for s in $ALL; do
        want "$s" || continue
        [[ ",$BENCHES," == *,pair,* ]] && bench "$s" pair "$run" -- \
            pair --pairs 1000 --rate "$RATE" --duration 10
        [[ ",$BENCHES," == *,ramp,* ]] && bench "$s" ramp "$run" -- \
            ramp --pairs 1000 --rate-start "$R0" --rate-step "$RSTEP" --rate-max "$RMAX" \
            --step-seconds 5 --p99-bound-us 10000 --drain-ms 5000
        [[ ",$BENCHES," == *,idle,* ]] && bench "$s" idle "$run" -- sleep 10
        [[ ",$BENCHES," == *,max,* ]] && bench "$s" max "$run" -- \
            pair --pairs 1000 --rate "$MAX" --duration 10 --procs 2 --drain-ms 5000
    done
done
python3 "$HERE/shards.py" "$OUT" | tee "$OUT/tables.md"
echo "results in $OUT" >&2
