#!/bin/sh
# redis-cluster-init: the one-shot service "cluster-init" of
# docker-compose.cluster.yml. It runs in the redis image (redis-cli), on every
# `docker compose up`, and exits 0 once the cluster of the nodes in
# PARLEY_CLUSTER_NODES serves every slot; the gateways and routers start after
# it. Idempotent:
#
# - no node knows another and none has a slot (a new stack): forms the
#   cluster, `redis-cli --cluster create ... --cluster-replicas 1`, the first
#   part of the nodes masters (a half with 1 replica each, a third with 2), the
#   others their replicas;
# - formed before (nodes.conf in each node's volume): nothing is created
#   again. The nodes are introduced to each other again at their current
#   addresses (CLUSTER MEET to each node's address now): a container
#   restarted gets a new address, and nodes that all restarted at once would
#   otherwise never find each other (the cluster bus is reached by address;
#   the names in CLUSTER SLOTS are for clients). A known node met at a new
#   address only has its address updated;
# - formed, and a node is empty and alone (its volume lost, or a node added
#   to the list): it joins as a replica of the master with the fewest
#   (`redis-cli --cluster add-node --cluster-slave`);
# - anything else (some slots assigned but not all, a half-made cluster):
#   says what it found and exits 1 (docs/deploy.md, "Redis Cluster").
#
# Then waits until every node reports cluster_state:ok, knows exactly the
# listed nodes (no more: a node added by hand must be listed too) and
# `redis-cli --cluster check` finds every slot served and agreed. Nodes
# restarting while it runs (`compose restart` restarts it and them at once)
# are waited for and met again, and a replica still linked to its master's
# old address is moved to the new one (CLUSTER REPLICATE).
#
# Environment: PARLEY_CLUSTER_NODES (space-separated host:port, the masters
# first), PARLEY_CLUSTER_REPLICAS (1), REDISCLI_AUTH (the nodes' password),
# PARLEY_CLUSTER_WAIT (seconds to wait for the nodes and the cluster, 120).
set -eu
NODES=${PARLEY_CLUSTER_NODES:?PARLEY_CLUSTER_NODES: the nodes, host:port ...}
REPLICAS=${PARLEY_CLUSTER_REPLICAS:-1}
WAIT=${PARLEY_CLUSTER_WAIT:-120}
say() { echo "redis-cluster-init: $*"; }
# an empty password: podman-compose 1.0.3 lets `${VAR:?}` pass an empty
# value, and the nodes then run without one, in protected mode, refusing
# every client (DENIED): say why at once instead of timing out
[ -n "${REDISCLI_AUTH:-}" ] || {
    say "no password: set PARLEY_REDIS_PASSWORD (not empty) in .env or the environment"
    exit 1
}
cli() { # host:port args...
    _hp=$1
    shift
    redis-cli --no-auth-warning -h "${_hp%:*}" -p "${_hp##*:}" "$@"
}
info() { # host:port field: a field of CLUSTER INFO
    cli "$1" CLUSTER INFO | tr -d '\r' | sed -n "s/^$2://p"
}
ip_of() { # host:port -> ip:port (CLUSTER MEET and --cluster create take addresses)
    _ip=$(getent hosts "${1%:*}" | awk '{print $1; exit}')
    [ -n "$_ip" ] || return 1
    echo "$_ip:${1##*:}"
}
deadline=$(($(date +%s) + WAIT))
until_ok() { # what cmd...: retry cmd every 0.5 s until it succeeds or the deadline
    _what=$1
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || { say "timed out waiting for $_what"; return 1; }
        sleep 0.5
    done
}

# ---- every node up (answering, its AOF loaded) and resolvable
n=0
for hp in $NODES; do
    until_ok "$hp to answer" sh -c "[ \"\$(redis-cli --no-auth-warning -h ${hp%:*} -p ${hp##*:} PING)\" = PONG ]"
    until_ok "$hp to resolve" ip_of "$hp"
    n=$((n + 1))
done
say "$n nodes answer"

# ---- what the nodes know. Asked until a node answers all three with
# numbers: a `compose restart` restarts this script and the nodes at once,
# so a node that answered PING above may be restarting (refused) or loading
# its AOF (LOADING) now
is_num() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }
node_state() { # host:port: sets known, slots, keys
    while :; do
        known=$(info "$1" cluster_known_nodes 2>/dev/null)
        slots=$(info "$1" cluster_slots_assigned 2>/dev/null)
        keys=$(cli "$1" DBSIZE 2>/dev/null | tr -d '\r')
        is_num "$known" && is_num "$slots" && is_num "$keys" && return 0
        [ "$(date +%s)" -lt "$deadline" ] || { say "timed out waiting for $1 to answer CLUSTER INFO and DBSIZE"; return 1; }
        sleep 0.5
    done
}
formed=""
alone=""
for hp in $NODES; do
    node_state "$hp"
    say "$hp: knows $known nodes, $slots slots assigned, $keys keys"
    if [ "$known" -gt 1 ] || [ "$slots" -gt 0 ]; then
        formed="$formed $hp"
    elif [ "$keys" = 0 ]; then
        alone="$alone $hp"
    else
        say "$hp is alone but holds $keys keys: not a node this script can place"
        exit 1
    fi
done

# the formed nodes meet again at their current addresses; a node that does
# not answer now (restarting) is met on the next round (the wait below)
# (its own variable names: sh has no locals, and the wait below calls it
# inside a loop over the nodes)
meet_formed() {
    for _m in $formed; do
        for _o in $formed; do
            [ "$_o" = "$_m" ] && continue
            _a=$(ip_of "$_o") || continue
            cli "$_m" CLUSTER MEET "${_a%:*}" "${_a##*:}" >/dev/null 2>&1 || true
        done
    done
}

if [ -z "$formed" ]; then
    addrs=""
    for hp in $NODES; do addrs="$addrs $(ip_of "$hp")"; done
    say "forming the cluster:$addrs, $REPLICAS replica(s) per master"
    # shellcheck disable=SC2086 # one argument per address
    redis-cli --no-auth-warning --cluster create $addrs --cluster-replicas "$REPLICAS" --cluster-yes
else
    first=${formed# }
    first=${first%% *}
    meet_formed
    say "the cluster was formed before:$formed met again at their current addresses"
    until_ok "every slot assigned" sh -c "redis-cli --no-auth-warning -h ${first%:*} -p ${first##*:} CLUSTER INFO | grep -q '^cluster_slots_assigned:16384'" || {
        say "the cluster has slots no node serves: $(cli "$first" CLUSTER INFO | grep slots_assigned)"
        exit 1
    }
    for hp in $alone; do
        a=$(ip_of "$hp")
        b=$(ip_of "$first")
        # the node that had this name before (its volume lost) is forgotten
        # by every node first: it would stay in CLUSTER NODES as failed
        for id in $(cli "$first" CLUSTER NODES | awk -v n=",${hp%:*}" 'substr($2, length($2) - length(n) + 1) == n {print $1}'); do
            say "$hp: forgetting the node $id that had its name"
            for other in $formed; do cli "$other" CLUSTER FORGET "$id" >/dev/null || true; done
        done
        say "$hp is new (empty, alone): joins as a replica"
        redis-cli --no-auth-warning --cluster add-node "$a" "$b" --cluster-slave
    done
fi

# ---- the cluster is ok, from every node's point of view
total=$(echo "$NODES" | wc -w)
node_ok() { # host:port: cluster_state ok and exactly the listed nodes known
    _i=$(cli "$1" CLUSTER INFO 2>/dev/null | tr -d '\r')
    echo "$_i" | grep -qx cluster_state:ok && echo "$_i" | grep -qx "cluster_known_nodes:$total"
}
for hp in $NODES; do
    round=0
    while ! node_ok "$hp"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "timed out waiting for $hp: cluster_state ok, $total nodes known; it says: $(cli "$hp" CLUSTER INFO 2>&1 | tr -d '\r' | grep -E '^cluster_(state|known_nodes):' | tr '\n' ' ')"
            k=$(info "$hp" cluster_known_nodes 2>/dev/null)
            if is_num "$k" && [ "$k" -gt "$total" ]; then
                say "it knows more nodes than the $total of PARLEY_CLUSTER_NODES: list every node there (docs/deploy.md, \"Scaling\", step 4)"
            fi
            exit 1
        fi
        # nodes restarted while this ran are met again every 5 s
        round=$((round + 1))
        [ -n "$formed" ] && [ $((round % 10)) = 0 ] && meet_formed
        sleep 0.5
    done
done
# ---- every replica replicates from its master's address now. Redis 7.0
# takes a node's new address from another node's gossip without moving the
# replication link to it (redis/redis#14633): after every node restarted
# with a new address, a replica kept retrying its master's old one
# (master_link_status:down, seen here on every `down` + `up`): no copy, no
# failover for those slots, and --wait-replicas answers nothing. CLUSTER
# REPLICATE, to the master it already has, moves the link.
replica_ok() { # host:port: a master, or a replica linked to its master's current address
    _nodes=$(cli "$1" CLUSTER NODES 2>/dev/null | tr -d '\r')
    _me=$(echo "$_nodes" | awk '$3 ~ /myself/')
    case $(echo "$_me" | awk '{print $3}') in *slave*) ;; *) return 0 ;; esac
    _mid=$(echo "$_me" | awk '{print $4}')
    _mline=$(echo "$_nodes" | awk -v id="$_mid" '$1 == id')
    _mname=$(echo "$_mline" | awk '{split($2, a, ","); print a[2]}')
    _maddr=$(echo "$_mline" | awk '{split($2, a, "@"); print a[1]}')
    [ -n "$_mname" ] && [ -n "$_maddr" ] || return 1
    _now=$(ip_of "$_mname:${_maddr##*:}") || return 1
    _rep=$(cli "$1" INFO replication 2>/dev/null | tr -d '\r')
    _at="$(echo "$_rep" | sed -n 's/^master_host://p'):$(echo "$_rep" | sed -n 's/^master_port://p')"
    [ "$_at" = "$_now" ] && return 0
    # once this node's own table has the master's new address
    if [ "$_maddr" = "$_now" ]; then
        say "$1 replicates from $_at, its master $_mname is at $_now: CLUSTER REPLICATE"
        cli "$1" CLUSTER REPLICATE "$_mid" >/dev/null 2>&1 || true
    fi
    return 1
}
for hp in $NODES; do
    round=0
    while ! replica_ok "$hp"; do
        [ "$(date +%s)" -lt "$deadline" ] || { say "timed out waiting for $hp to replicate from its master's current address"; exit 1; }
        round=$((round + 1))
        [ -n "$formed" ] && [ $((round % 10)) = 0 ] && meet_formed
        sleep 0.5
    done
done
first=$(echo "$NODES" | awk '{print $1}')
until_ok "redis-cli --cluster check to pass" redis-cli --no-auth-warning --cluster check "$(ip_of "$first")"
redis-cli --no-auth-warning --cluster check "$(ip_of "$first")" | grep -e '->' || true
say "cluster ok"
