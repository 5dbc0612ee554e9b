#!/usr/bin/env bash
# tools/bench/cluster/stats.sh: run a command inside a run-stack.sh stack with
# every Redis node's counters read before and after it, for shards.sh: INFO
# commandstats (script calls, PUBLISH, WAIT per node), INFO stats, INFO cpu and, on a
# cluster node, CLUSTER INFO (cluster_stats_messages_publish_received: the
# classic PUBLISHes the bus relayed to the node).
#
#   run-stack.sh [options] -- tools/bench/cluster/stats.sh PREFIX COMMAND [ARGS]
#
# Writes PREFIX.before.txt and PREFIX.after.txt (the whole run: connections
# and their hellos and closes included), and PREFIX.snap.N.txt each time a
# parley-bench progress line (--progress 1, every second of a traffic step)
# shows a new count N of messages sent: the first and the last of those bound
# the traffic alone (shards.py: counters per message = difference / messages
# sent in between). Each file: for each node a line "== NAME PORT", then its
# INFO and CLUSTER INFO. COMMAND is a parley-bench mode (run as
# $PARLEY_BUILD_DIR/parley-bench) or any command; its stderr passes through.
# Exits with the command's status. Needs PARLEY_BENCH_REDIS_PORTS and
# PARLEY_BENCH_CPU_PIDS (set by run-stack.sh).
set -uo pipefail

[ $# -ge 2 ] || { echo "usage: $0 PREFIX COMMAND [ARGS]" >&2; exit 2; }
PREFIX=$1; shift
IFS=, read -r -a PORTS <<<"${PARLEY_BENCH_REDIS_PORTS:?run inside tools/bench/run-stack.sh}"
# node names in the order of the ports: the redis entries of PARLEY_BENCH_CPU_PIDS
IFS=, read -r -a CPU <<<"${PARLEY_BENCH_CPU_PIDS:-}"
NAMES=()
for e in "${CPU[@]}"; do [[ ${e%%=*} == redis* ]] && NAMES+=("${e%%=*}"); done

snapshot() {
    local i
    for i in "${!PORTS[@]}"; do
        echo "== ${NAMES[$i]:-node$i} ${PORTS[$i]}"
        redis-cli -p "${PORTS[$i]}" INFO commandstats | tr -d '\r'
        redis-cli -p "${PORTS[$i]}" INFO stats | tr -d '\r'
        redis-cli -p "${PORTS[$i]}" INFO cpu | tr -d '\r'
        echo "snapshot_ms:$(date +%s%3N)"
        redis-cli -p "${PORTS[$i]}" CLUSTER INFO 2>/dev/null | tr -d '\r' | grep '^cluster_'
    done >"$1"
}

case $1 in
connect|pair|1:1|fanout|ramp|noisy) cmd=("$PARLEY_BUILD_DIR/parley-bench" "$@") ;;
*) cmd=("$@") ;;
esac
progress() { # stderr of the command: passed on; a new "sent N" takes a snapshot
    local line last=""
    while IFS= read -r line; do
        printf '%s\n' "$line" >&2
        if [[ $line =~ \]\ sent\ ([0-9]+) ]] && [ "${BASH_REMATCH[1]}" != "$last" ]; then
            last=${BASH_REMATCH[1]}
            snapshot "$PREFIX.snap.$last.txt"
        fi
    done
}
snapshot "$PREFIX.before.txt"
exec 3> >(progress)
reader=$!
"${cmd[@]}" 2>&3
status=$?
exec 3>&-
wait "$reader" 2>/dev/null
snapshot "$PREFIX.after.txt"
exit $status
