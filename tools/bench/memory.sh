#!/usr/bin/env bash
# tools/bench/memory.sh: Redis memory per message (docs/benchmarks.md, "Message lifecycle").
# Starts a private stack (tools/bench/run-stack.sh, AOF off), then
#   1. 1:1: parley-bench pair (--pairs P, --rate R1 for --duration D s: P pairs, R1 x D texts),
#   2. a group: parley-bench fanout (--members G other users, --rate R2 for D s),
# reading Redis's INFO memory used_memory before and after each, and MEMORY USAGE (SAMPLES 0:
# every element) of the inbox and history keys written. Prints one table: bytes per message in
# all (used_memory growth / messages), in the inboxes (per message and per inbox entry) and in
# the history. Run it against two builds to compare them:
#
#   tools/bench/memory.sh [--pairs 1000] [--pair-rate 2000] [--members 100] [--group-rate 50]
#                         [--duration 10] [--size 100]
#   PARLEY_BUILD_DIR=/path/to/other/build tools/bench/memory.sh ...
#
# The users' sessions are closed (their keys gone) when each parley-bench run ends, so what
# grows is what the messages leave: history entries, inbox entries, the senders' cids (24 h
# dedupe), unread counters. Exit status: parley-bench's, or 2 on bad flags.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PAIRS=1000 PAIR_RATE=2000 MEMBERS=100 GROUP_RATE=50 DURATION=10 SIZE=100
while [ $# -gt 0 ]; do
    case $1 in
    --pairs) PAIRS=$2; shift 2 ;;
    --pair-rate) PAIR_RATE=$2; shift 2 ;;
    --members) MEMBERS=$2; shift 2 ;;
    --group-rate) GROUP_RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --inside) INSIDE=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "memory.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$PAIRS" "$PAIR_RATE" "$MEMBERS" "$GROUP_RATE" "$DURATION" "$SIZE"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "memory.sh: flags take positive numbers" >&2; exit 2; }
done
if [ -z "${INSIDE:-}" ]; then
    export PARLEY_STACK_ROUTER_ARGS=${PARLEY_STACK_ROUTER_ARGS-"--user-rate 0 --user-fanout-rate 0 --user-byte-rate 0"}
    exec "$ROOT/tools/bench/run-stack.sh" --aof no --users $((2 * PAIRS + MEMBERS)) -- \
        "$0" --inside --pairs "$PAIRS" --pair-rate "$PAIR_RATE" --members "$MEMBERS" \
        --group-rate "$GROUP_RATE" --duration "$DURATION" --size "$SIZE"
fi

# inside the stack: PARLEY_REDIS_URL, PARLEY_BUILD_DIR and the parley-bench variables are set
BENCH=$PARLEY_BUILD_DIR/parley-bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/parley-memory.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
rc() { redis-cli -u "$PARLEY_REDIS_URL" "$@"; }
used() { rc INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }
# keys on stdin -> "count bytes entries" (MEMORY USAGE SAMPLES 0, and LLEN or ZCARD as LEN says)
usage() {
    local len=$1 keys
    keys=$(cat)
    [ -n "$keys" ] || { echo "0 0 0"; return; }
    local n bytes entries
    n=$(printf '%s\n' "$keys" | wc -l)
    bytes=$(printf '%s\n' "$keys" | sed 's/^/MEMORY USAGE /; s/$/ SAMPLES 0/' | rc | awk '{s += $1} END {print s + 0}')
    entries=$(printf '%s\n' "$keys" | sed "s/^/$len /" | rc | awk '{s += $1} END {print s + 0}')
    echo "$n $bytes $entries"
}
sent() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["steps"][0]["acked"] if d["steps"] else 0)' "$1"; }
users() { for i in $(seq "$1" $(($1 + $2 - 1))); do echo "parley:{u:${PARLEY_BENCH_PREFIX}$i}:inbox"; done; }

m0=$(used)
"$BENCH" pair --pairs "$PAIRS" --rate "$PAIR_RATE" --duration "$DURATION" --size "$SIZE" \
    --procs 1 --progress 0 --json "$WORK/pair.json" >"$WORK/pair.txt" 2>&1 ||
    { cat "$WORK/pair.txt" >&2; exit 1; }
m1=$(used)
n1=$(sent "$WORK/pair.json")
read -r _ ib1 ie1 < <(users 0 $((2 * PAIRS)) | usage LLEN)
read -r hk1 hb1 he1 < <(rc --scan --pattern 'parley:{c:*}:history' | usage ZCARD)

"$BENCH" fanout --members "$MEMBERS" --user-offset $((2 * PAIRS)) --rate "$GROUP_RATE" \
    --duration "$DURATION" --size "$SIZE" --progress 0 --json "$WORK/fanout.json" >"$WORK/fanout.txt" 2>&1 ||
    { cat "$WORK/fanout.txt" >&2; exit 1; }
m2=$(used)
n2=$(sent "$WORK/fanout.json")
read -r _ ib2 ie2 < <(users $((2 * PAIRS)) "$MEMBERS" | usage LLEN)
read -r _ hb2 he2 < <(rc --scan --pattern 'parley:{c:#*}:history' | usage ZCARD)

per() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (b > 0) ? a / b : 0}'; }
echo "memory.sh: build $PARLEY_BUILD_DIR (source commit $(git -C "$PARLEY_BUILD_DIR/.." rev-parse --short HEAD 2>/dev/null)), data $SIZE bytes, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| messages | sent | used_memory growth | per message | inbox entries | inbox bytes | per inbox entry | inbox bytes per message | history bytes per message |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| 1:1, $PAIRS pairs | $n1 | $((m1 - m0)) | $(per $((m1 - m0)) "$n1") | $ie1 | $ib1 | $(per "$ib1" "$ie1") | $(per "$ib1" "$n1") | $(per "$hb1" "$he1") ($hk1 conversations) |"
echo "| group of $MEMBERS | $n2 | $((m2 - m1)) | $(per $((m2 - m1)) "$n2") | $ie2 | $ib2 | $(per "$ib2" "$ie2") | $(per "$ib2" "$n2") | $(per "$hb2" "$he2") |"
