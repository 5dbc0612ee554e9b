#!/usr/bin/env bash
# tests/containers/run.sh: the docker compose stack, end to end, in containers.
#
# Runs the project's own docker-compose.yml with podman + podman-compose (no
# Docker engine needed) and tests it through the load balancer:
#   1. installs what it needs (podman, podman-compose, runc, the CNI dnsname
#      plugin, debootstrap; node/npm for the test client's packages; Debian's
#      docker-compose, only to validate docker-compose.yml as Docker Compose
#      reads it) and writes /etc/containers/containers.conf when there is none;
#   2. builds local stand-ins for the official base images when they are
#      missing (base-images.sh; cached: kept from one run to the next);
#   3. builds web/dist on the host when web/ has a package.json (the images
#      take it through the Dockerfile's web-prebuilt stage), and the test
#      client's node_modules (npm ci here);
#   4. builds the gateway and router images (podman-compose build), brings the
#      stack up under a unique project name with 3 gateways and free published
#      ports (https and the plain HTTP redirect), an env file without a secret
#      (the init service generates one) and a self-signed certificate the init
#      service makes for "lb"; checks the generated secret and certificate
#      (owners, modes), https and the redirect from the host;
#   5. runs e2e.mjs, a node:test file, in a node container on the stack's
#      network (`node --test-reporter=tap e2e.mjs`, in-process), through
#      haproxy's TLS (https/wss, the generated certificate trusted through
#      NODE_EXTRA_CA_CERTS, nothing else): register,
#      chat across gateways, presence, offline delivery, the README's
#      redis-cli monitoring commands, a gateway stopped mid-conversation, a
#      gateway crashing (SIGKILL) mid-conversation, a Redis restart, the
#      redirect and the Secure cookie, no token in any container's log (the
#      last test). Each test
#      has its own users; the stack is the fixture they share. The tests ask
#      this script to stop/start/crash containers and run redis-cli / the
#      parley CLI in them: a request is a line "@@ ID OP ARGS" on the
#      container's stderr, the answer a line on its stdin (handle_op). The
#      container's stdout is the TAP report: shown as it comes, kept in
#      $PARLEY_CT_ARTIFACTS/e2e.tap, and its summary (# pass / # fail /
#      # cancelled) is what this script counts;
#   6. runs the init service again: the secret and the certificate are kept;
#   7. tears everything down (containers, volumes, network), even on failure;
#   8. the cluster variant (docker-compose.cluster.yml: 3 Redis masters and 3
#      replicas, a random PARLEY_REDIS_PASSWORD, routers with
#      PARLEY_WAIT_REPLICAS=1) under its own project name: checks that the
#      cluster formed, runs a subset of e2e.mjs against it
#      ($PARLEY_CT_CLUSTER_TESTS: register, presence, chat and a group
#      across gateways, offline delivery, and the failover test: the master
#      holding a user's keys SIGKILLed, its replica promoted, chat resumes,
#      nothing acked lost),
#      restarts every node at once (cluster-init meets them again at their new
#      addresses: the cluster and its data are kept), tears it down; then ends
#      with "N passed, N failed" (exit status 1 if any failed).
#
# Usage: tests/containers/run.sh [--keep] [--single | --cluster] [--help]
#   --keep     leave the (last) stack running at the end (prints how to remove it)
#   --single   only the single-Redis stack (docker-compose.yml)
#   --cluster  only the cluster variant (docker-compose.cluster.yml)
# One test by name (a regular expression over the test names, node's
# --test-name-pattern; the others are reported as skipped; no match is a
# failure):
#   PARLEY_TEST_ONLY='chat across gateways' tests/containers/run.sh
# Environment:
#   PARLEY_TEST_ONLY     run only the e2e tests whose names match (in each variant)
#   PARLEY_CT_VARIANTS   the stacks to run, in order: "single cluster" (default),
#                        "single" or "cluster" (as --single, --cluster)
#   PARLEY_CT_CLUSTER_TESTS  the e2e tests the cluster variant runs (a regular
#                        expression over the names; default: the subset above)
#   PARLEY_CT_GATEWAYS   gateway replicas, 3..32 (3)
#   PARLEY_CT_PROJECT    compose project name (parleyct<pid>)
#   PARLEY_CT_TAG        tag of the parley/gateway and parley/router images (ct)
#   PARLEY_CT_ARTIFACTS  logs of every container (tests/artifacts/containers)
#   PARLEY_CT_REBUILD_BASE=1  rebuild the stand-in base images
#   PARLEY_CT_KEEP=1     same as --keep
#   PARLEY_SKIP_APT=1    do not install packages
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KEEP=${PARLEY_CT_KEEP:-0}
VARIANTS=${PARLEY_CT_VARIANTS:-single cluster}
for arg in "$@"; do
    case $arg in
    --keep) KEEP=1 ;;
    --single) VARIANTS=single ;;
    --cluster) VARIANTS=cluster ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done
for v in $VARIANTS; do
    case $v in single | cluster) ;; *) echo "run.sh: unknown variant '$v' (single, cluster)" >&2; exit 2 ;; esac
done
CLUSTER_TESTS=${PARLEY_CT_CLUSTER_TESTS:-^(load balancer|register and login|presence across gateways|chat across gateways|a group across|offline delivery|cluster failover)}
GATEWAYS=${PARLEY_CT_GATEWAYS:-3}
[[ $GATEWAYS =~ ^[0-9]+$ ]] && [ "$GATEWAYS" -ge 3 ] && [ "$GATEWAYS" -le 32 ] ||
    { echo "run.sh: PARLEY_CT_GATEWAYS must be 3..32 (the tests spread three users over three gateways)" >&2; exit 2; }
P0=${PARLEY_CT_PROJECT:-parleyct$$}
P=$P0
# the variant under test: VARIANT (single, cluster), its compose file, its
# project name (the cluster's: $P0 with a "c" after "parleyct") and the
# suffix of its phase names and logs ("" or "-cluster")
VARIANT=single
FILE=docker-compose.yml
SUF=""
TAG=${PARLEY_CT_TAG:-ct}
ART=${PARLEY_CT_ARTIFACTS:-$ROOT/tests/artifacts/containers}
NODE_IMAGE=docker.io/library/node:18-bookworm-slim
PKGS=(podman podman-compose runc containernetworking-plugins
      golang-github-containernetworking-plugin-dnsname debootstrap python3 curl openssl
      docker-compose)

passed=0
failed=0
timings=()
T0=$(date +%s)
mkdir -p "$ART"
rm -f "$ART"/*.log "$ART"/e2e*.tap

say() { printf '[containers] %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$*"; }
not_ok() { failed=$((failed + 1)); printf 'not ok - %s\n' "$*"; }
# phase NAME CMD...: run a step, time it, count it; output goes to $ART/NAME.log
phase() {
    local name=$1 t rc
    t=$(date +%s)
    shift
    "$@" >"$ART/$name.log" 2>&1
    rc=$?
    timings+=("$name $(($(date +%s) - t))s")
    if [ $rc = 0 ]; then
        ok "$name ($(($(date +%s) - t)) s)"
    else
        not_ok "$name (exit $rc; last lines of $ART/$name.log:)"
        tail -25 "$ART/$name.log" | sed 's/^/    /'
    fi
    return $rc
}
finish() {
    echo "timings: ${timings[*]} total $(($(date +%s) - T0))s"
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

# ------------------------------------------------------------ 1. tools

install_tools() {
    [ "${PARLEY_SKIP_APT:-0}" = 1 ] && return 0
    local missing=() p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
}

# podman's defaults fail where setrlimit is not permitted (its default
# ulimits) and crun may be missing: runc, no default ulimits. Only written
# when the machine has no containers.conf of its own.
configure_podman() {
    local conf=/etc/containers/containers.conf sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    if [ ! -f "$conf" ]; then
        $sudo mkdir -p /etc/containers
        printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' | $sudo tee "$conf" >/dev/null
        echo "wrote $conf"
    fi
    podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.NetworkBackend}}'
}

# ------------------------------------------------------------ 3. web + node_modules

build_web() {
    mkdir -p "$ROOT/web/dist"
    if [ ! -f "$ROOT/web/package.json" ]; then
        echo "web/ has no package.json: the gateway image serves its placeholder page"
        return 0
    fi
    if [ -f "$ROOT/web/dist/index.html" ] && [ -z "$(find "$ROOT/web" -newer "$ROOT/web/dist/index.html" \
        -type f -not -path '*/node_modules/*' -not -path "$ROOT/web/dist/*" -print -quit)" ]; then
        echo "web/dist is up to date"
        return 0
    fi
    (cd "$ROOT/web" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build)
}

client_modules() {
    [ -d "$HERE/node_modules/ws" ] && [ -d "$HERE/node_modules/@msgpack/msgpack" ] && return 0
    (cd "$HERE" && npm ci --no-audit --no-fund)
}

# ------------------------------------------------------------ 4. stack

compose() { (cd "$ROOT" && podman-compose -f "$FILE" -p "$P" "$@"); }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

running() { # service: names of its running containers
    podman ps --filter "label=io.podman.compose.project=$P" --filter "label=com.docker.compose.service=$1" \
        --format '{{.Names}}'
}

# the long-running services of the variant
services() {
    if [ "$VARIANT" = cluster ]; then echo redis-1 redis-2 redis-3 redis-4 redis-5 redis-6 router lb gateway
    else echo redis router lb gateway; fi
}
exited_ok() { [ "$(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$1" 2>/dev/null)" = "exited 0" ]; }
stack_up() {
    compose up -d --no-build || return 1
    local svc want n all end run
    all=$(services | wc -w)
    end=$(($(date +%s) + 120))
    while [ "$(date +%s)" -lt "$end" ]; do
        exited_ok "${P}_init_1" || { sleep 1; continue; }
        [ "$VARIANT" = cluster ] && ! exited_ok "${P}_cluster-init_1" && { sleep 1; continue; }
        # the service of each running container, one podman call per round
        run=$(podman ps --filter "label=io.podman.compose.project=$P" --format '{{index .Labels "com.docker.compose.service"}}')
        n=0
        for svc in $(services); do
            want=1
            [ $svc = gateway ] && want=$GATEWAYS
            [ "$(grep -cx -- "$svc" <<<"$run")" = "$want" ] && n=$((n + 1))
        done
        [ $n = "$all" ] && { podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}} {{.Status}}'; return 0; }
        sleep 1
    done
    podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}} {{.Status}}'
    [ "$VARIANT" = cluster ] && podman logs "${P}_cluster-init_1" 2>&1 | tail -20
    return 1
}

# ------------------------------------------------------------ 4b. the cluster

# a running Redis container of the stack: the single one, or the first
# cluster node up (the failover test stops one)
redis_container() {
    local n
    if [ "$VARIANT" != cluster ]; then echo "${P}_redis_1"; return 0; fi
    for n in 1 2 3 4 5 6; do
        [ "$(podman inspect -f '{{.State.Status}}' "${P}_redis-${n}_1" 2>/dev/null)" = running ] && { echo "${P}_redis-${n}_1"; return 0; }
    done
    echo "${P}_redis-1_1"
}
# what cluster-init made: every slot served by 3 masters with a replica each,
# and clients sent to the nodes by name (CLUSTER SLOTS names redis-N)
cluster_formed() {
    local c
    c=$(redis_container)
    podman logs "${P}_cluster-init_1" 2>&1 | grep redis-cluster-init
    podman exec "$c" redis-cli CLUSTER INFO | tr -d '\r' | grep -E '^cluster_(state|slots_ok|known_nodes|size):'
    podman exec "$c" redis-cli CLUSTER INFO | tr -d '\r' | grep -qx cluster_state:ok || return 1
    podman exec "$c" redis-cli CLUSTER INFO | tr -d '\r' | grep -qx cluster_size:3 || return 1
    [ "$(podman exec "$c" redis-cli CLUSTER NODES | grep -c ' slave ')" = 3 ] || { echo "not 3 replicas"; return 1; }
    podman exec "$c" redis-cli CLUSTER SLOTS | grep -qx 'redis-[1-6]' || { echo "CLUSTER SLOTS names no redis-N"; return 1; }
    # nothing answers without the password
    podman exec "$c" env -u REDISCLI_AUTH redis-cli GET x 2>&1 | grep -q NOAUTH || { echo "a node answered without the password"; return 1; }
    echo "CLUSTER SLOTS names the nodes by service name; NOAUTH without the password"
}
# every node restarted at once (new container addresses): cluster-init meets
# them again, the cluster and a key written before are kept, and every
# replica replicates from its master again
cluster_restart() {
    local c n key=parley:ct-restart-probe
    c=$(redis_container)
    podman exec "$c" redis-cli -c SET "$key" kept >/dev/null || return 1
    podman stop -t 10 $(for n in 1 2 3 4 5 6; do echo "${P}_redis-${n}_1"; done) >/dev/null || return 1
    podman start $(for n in 6 5 4 3 2 1; do echo "${P}_redis-${n}_1"; done) >/dev/null || return 1
    podman start -a "${P}_cluster-init_1" | grep redis-cluster-init || return 1
    c=$(redis_container)
    [ "$(podman exec "$c" redis-cli -c GET "$key" | tr -d '\r')" = kept ] || { echo "$key lost"; return 1; }
    podman exec "$c" redis-cli -c DEL "$key" >/dev/null
    # every replica linked to its master again: a link left on its master's
    # old address never comes up (redis/redis#14633; cluster-init moves it)
    local end=$(($(date +%s) + 30)) down
    while :; do
        down=""
        for n in 1 2 3 4 5 6; do
            podman exec "${P}_redis-${n}_1" redis-cli INFO replication | tr -d '\r' |
                grep -qx master_link_status:down && down="$down redis-$n"
        done
        [ -z "$down" ] && break
        [ "$(date +%s)" -lt "$end" ] || { echo "replicas not linked to their masters after 30 s:$down"; return 1; }
        sleep 1
    done
    echo "cluster restarted, $key kept, every replica linked to its master"
}

images_ok() {
    local img user
    for img in "parley/gateway:$TAG" "parley/router:$TAG"; do
        user=$(podman image inspect -f '{{.Config.User}}' "$img") || return 1
        echo "$img runs as '$user', $(podman image inspect -f '{{.Size}}' "$img") bytes"
        [ "$user" = parley ] || return 1
    done
}

# What the init service made (docker-compose.yml, deploy/docker/parley-init.sh):
# the token secret (64 hex digits, 0400, uid 10001) and the certificate
# haproxy serves (0600, uid 99), whose public part goes to $CA for the clients.
vol_path() { podman volume inspect -f '{{.Mountpoint}}' "${P}_$1"; }
init_made() {
    local sec tls
    sec=$(vol_path secrets)/secret
    tls=$(vol_path tls)
    podman logs "${P}_init_1"
    echo "secret: $(stat -c '%a %u' "$sec"), certificate: $(stat -c '%a %u' "$tls/parley.pem"), $(cat "$tls/source")"
    grep -Eq '^[0-9a-f]{64}$' "$sec" || { echo "the secret is not 64 hex digits"; return 1; }
    [ "$(stat -c '%a %u' "$sec")" = "400 10001" ] || return 1
    [ "$(stat -c '%a %u' "$tls/parley.pem")" = "600 99" ] || return 1
    SECRET=$(cat "$sec")
    cp "$tls/cert.pem" "$CA" && chmod 644 "$CA"
    openssl x509 -in "$CA" -noout -subject -ext subjectAltName
    openssl x509 -in "$CA" -noout -checkhost lb | grep -q 'does match' || return 1
    sha256sum "$sec" "$tls/parley.pem" >"$ART/init-made.sha256"
}
# the init service run again (a later `docker compose up`) keeps both
init_again() {
    podman start -a "${P}_init_1" || return 1
    (cd / && sha256sum -c "$ART/init-made.sha256")
}
# from the host: https with the generated certificate, plain HTTP redirected
host_tls() {
    curl -sSf --max-time 5 --retry 20 --retry-delay 1 --retry-all-errors --cacert "$CA" \
        -o /dev/null "https://localhost:$PORT/healthz" || return 1
    echo "https://localhost:$PORT/healthz: 200 with the generated certificate"
    local loc
    loc=$(curl -s --max-time 5 -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$HTTP_PORT/healthz?a=1")
    echo "http://127.0.0.1:$HTTP_PORT/healthz?a=1: $loc"
    [ "$loc" = "301 https://127.0.0.1:$PORT/healthz?a=1" ] || return 1
    ! curl -s --max-time 5 -o /dev/null "https://localhost:$PORT/healthz" ||
        { echo "https without the certificate trusted was accepted"; return 1; }
}

# ------------------------------------------------------------ 5. host ops for e2e.mjs

gateway_container() { # gateway id "<hostname>:<port>" -> container name
    local name
    for name in $(running gateway); do
        [ "$(podman inspect -f '{{.Config.Hostname}}' "$name")" = "${1%:*}" ] && { echo "$name"; return 0; }
    done
    echo "no running gateway container has hostname ${1%:*}" >&2
    return 1
}

# handle_op ID OP ARGS...: prints "ID STATUS BASE64(OUTPUT)"
handle_op() {
    local id=$1 op=$2 out rc name state
    shift 2
    out=$(mktemp)
    case $op in
    redis-cli) # on a cluster: -c, following MOVED to the key's node
        if [ "$VARIANT" = cluster ]; then podman exec "$(redis_container)" redis-cli -c "$@" >"$out" 2>&1
        else podman exec "${P}_redis_1" redis-cli "$@" >"$out" 2>&1; fi
        rc=$?
        ;;
    redis-cli-all) # a cluster: the command on every node up, each output after "== NODE"
        rc=0
        : >"$out"
        for n in 1 2 3 4 5 6; do
            name="${P}_redis-${n}_1"
            [ "$(podman inspect -f '{{.State.Status}}' "$name" 2>/dev/null)" = running ] || continue
            printf '== %s\n' "$name" >>"$out"
            podman exec "$name" redis-cli "$@" >>"$out" 2>&1 || rc=1
        done
        ;;
    kill-redis) # SIGKILL of a cluster node's container (redis-N), left down: podman kill
        # counts as stopped by the user, the restart policy does not bring it back
        podman kill -s KILL "${P}_${1}_1" >"$out" 2>&1
        rc=$?
        ;;
    start-redis) # a cluster node's container started again, then cluster-init
        # (it meets the nodes again at their addresses; the node rejoins)
        name="${P}_${1}_1"
        { podman start "$name" && podman start -a "${P}_cluster-init_1"; } >"$out" 2>&1
        rc=$?
        ;;
    redis-cli-1s) # commands that run until stopped (MONITOR, --stat): one second of
        # them; stdbuf because without a terminal redis-cli --stat buffers its output
        podman exec "$(redis_container)" timeout 1 stdbuf -oL redis-cli "$@" >"$out" 2>&1
        rc=$?
        [ $rc = 124 ] && rc=0
        ;;
    parley) podman exec "${P}_router_1" parley "$@" >"$out" 2>&1; rc=$? ;;
    stop-gateway)
        if name=$(gateway_container "$1" 2>"$out"); then
            printf '%s ' "$name" >"$out"
            podman stop -t 15 "$name" >/dev/null 2>>"$out"
            rc=$?
        else rc=1; fi
        ;;
    crash-gateway) # SIGKILL of the gateway process itself (not `podman kill`, which
        # counts as stopped by the user): the restart policy must bring it back
        if name=$(gateway_container "$1" 2>"$out"); then
            printf '%s ' "$name" >"$out"
            kill -9 "$(podman inspect -f '{{.State.Pid}}' "$name")" 2>>"$out"
            rc=$?
        else rc=1; fi
        ;;
    start) podman start "$1" >"$out" 2>&1; rc=$? ;;
    start-stopped) # the cleanup after a test that stopped or killed a container:
        # every container of the stack not running is started (a failed start
        # is reported in the output, not in the status: the test then checks
        # the stack's health itself)
        rc=0
        : >"$out"
        for name in $(podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}}'); do
            # one-shots: exited is their normal state
            [[ $name == "${P}_init_"* || $name == "${P}_cluster-init_"* ]] && continue
            state=$(podman inspect -f '{{.State.Status}}' "$name" 2>&1)
            case $state in
            running) ;;
            exited | stopped | created | configured)
                if podman start "$name" >/dev/null 2>&1; then printf '%s ' "$name" >>"$out"
                else printf '%s (%s, start failed) ' "$name" "$state" >>"$out"; fi
                ;;
            *) printf '%s (%s, left alone) ' "$name" "$state" >>"$out" ;;
            esac
        done
        # a cluster node started again: cluster-init meets the nodes again
        if [ "$VARIANT" = cluster ] && grep -q "_redis-" "$out"; then
            podman start -a "${P}_cluster-init_1" >/dev/null 2>&1 || printf '(cluster-init failed) ' >>"$out"
        fi
        ;;
    readme) cat "$ROOT/README.md" >"$out"; rc=$? ;;
    logs) # every container's log, each after a line "== NAME"
        rc=0
        for name in $(podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}}'); do
            printf '== %s\n' "$name" >>"$out"
            podman logs "$name" >>"$out" 2>&1 || rc=1
        done
        ;;
    restart-redis) podman restart -t 15 "$(redis_container)" >"$out" 2>&1; rc=$? ;;
    *) echo "unknown op $op" >"$out"; rc=2 ;;
    esac
    printf '  host: %s %s -> %s\n' "$op" "$*" "$rc" >&2
    printf '%s %s %s\n' "$id" "$rc" "$(base64 -w0 "$out")"
    rm -f "$out"
}

# The container's stderr comes here through the coprocess: requests ("@@ ")
# are answered on its stdin, anything else (node's own warnings or a crash)
# is shown. Its stdout, the TAP report, goes through tee to our stdout and to
# $ART/e2e.tap, whose last "# pass N", "# fail N" and "# cancelled N" (a test
# that timed out) are then counted.
tap_count() { # pass|fail|cancelled|skipped: node's summary line in e2e$SUF.tap
    grep -E "^# $1 [0-9]+$" "$ART/e2e$SUF.tap" | tail -1 | awk '{print $3}'
}
run_e2e() {
    local in out so line pid rc=0 words pass fail cancelled skipped
    local node_args=(--test-reporter=tap)
    if [ -n "${PARLEY_TEST_ONLY:-}" ]; then node_args+=("--test-name-pattern=$PARLEY_TEST_ONLY")
    elif [ "$VARIANT" = cluster ]; then node_args+=("--test-name-pattern=$CLUSTER_TESTS"); fi
    exec {so}>&1
    # timeout: a test run that never ends (a handle left open) is stopped,
    # and then has no summary; the tests themselves take about 40 s
    coproc E2E {
        podman run --rm -i --name "${P}_e2e" --network "${P}_default" --user 1000:1000 \
            -v "$HERE:/t:ro" -w /t \
            -v "$CA:/ca/cert.pem:ro" -e NODE_EXTRA_CA_CERTS=/ca/cert.pem \
            -e PARLEY_URL=https://lb:8443 -e PARLEY_HTTP_URL=http://lb:8080 -e "PARLEY_HTTPS_PORT=$PORT" \
            -e "PARLEY_LB_STATS=http://lb:8404/stats;csv" \
            -e "PARLEY_GATEWAYS=$GATEWAYS" -e "PARLEY_RUN_ID=$P" \
            -e "PARLEY_TEST_SECRET=$SECRET" -e "PARLEY_DEFAULT_SECRET=$DEFAULT_SECRET" \
            -e "PARLEY_WEB_INDEX_SHA256=$WEB_SHA" \
            -e "PARLEY_REDIS_MODE=$VARIANT" -e "PARLEY_WAIT_REPLICAS=${PARLEY_WAIT_REPLICAS:-0}" \
            "$NODE_IMAGE" timeout 1200 node "${node_args[@]}" /t/e2e.mjs 2>&1 > >(tee "$ART/e2e$SUF.tap" >&"$so")
        rc=$?
        wait # for tee, to the end of the report
        exit $rc
    }
    pid=$E2E_PID
    exec {in}<&"${E2E[0]}" {out}>&"${E2E[1]}"
    while IFS= read -r line <&"$in"; do
        case $line in
        '@@ '*)
            read -r -a words <<<"${line#@@ }"
            handle_op "${words[@]}" 1>&"$out" 2>>"$ART/e2e$SUF-ops.log"
            ;;
        *) printf '%s\n' "$line" ;;
        esac
    done
    wait "$pid" || rc=$?
    exec {in}<&- {out}>&- {so}>&-
    pass=$(tap_count pass)
    fail=$(tap_count fail)
    cancelled=$(tap_count cancelled)
    skipped=$(tap_count skipped)
    if [ -z "$pass" ] || [ -z "$fail" ]; then
        not_ok "e2e.mjs ended (exit $rc) without node's summary (# pass / # fail in $ART/e2e$SUF.tap)"
        return 1
    fi
    passed=$((passed + pass))
    failed=$((failed + fail + ${cancelled:-0}))
    echo "e2e$SUF: $pass passed, $fail failed, ${cancelled:-0} cancelled (timed out), ${skipped:-0} skipped"
    if [ $((pass + fail + ${cancelled:-0})) = 0 ]; then
        not_ok "e2e: no test ran${PARLEY_TEST_ONLY:+ (PARLEY_TEST_ONLY='$PARLEY_TEST_ONLY' matches no test name)}"
    elif [ "$rc" != 0 ] && [ $((fail + ${cancelled:-0})) = 0 ]; then
        not_ok "e2e.mjs exited with status $rc although no test failed"
    fi
    return $rc
}

# ------------------------------------------------------------ 6. teardown

teardown() { # [last]: the last variant (--keep keeps only that one)
    trap - EXIT INT TERM
    local name keep=$KEEP
    [ "${1:-last}" = last ] || keep=0
    podman rm -f "${P}_e2e" >/dev/null 2>&1
    for name in $(podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}}'); do
        podman logs -t "$name" >"$ART/$name.log" 2>&1
    done
    if [ "$keep" = 1 ]; then
        say "kept stack $P on https port ${PORT:-?} (http ${HTTP_PORT:-?}; certificate $CA); remove it with: podman rm -f \$(podman ps -aq --filter label=io.podman.compose.project=$P); podman volume rm \$(podman volume ls -q --filter label=io.podman.compose.project=$P); podman network rm ${P}_default"
        return 0
    fi
    local ids
    ids=$(podman ps -aq --filter "label=io.podman.compose.project=$P")
    [ -n "$ids" ] && podman rm -f -t 3 $ids >/dev/null
    podman volume ls -q --filter "label=io.podman.compose.project=$P" | xargs -r podman volume rm -f >/dev/null
    podman network exists "${P}_default" 2>/dev/null && podman network rm -f "${P}_default" >/dev/null
    rm -f "${ENV_FILE:-}" "${CA:-}"
    local left
    left=$( (podman ps -aq --filter "label=io.podman.compose.project=$P"
        podman volume ls -q --filter "label=io.podman.compose.project=$P"
        podman network ls -q --filter "name=^${P}_") | wc -l)
    if [ "$left" = 0 ]; then ok "teardown$SUF: no container, volume or network of $P left"; else not_ok "teardown$SUF: $left objects of $P left"; fi
}
abort() {
    not_ok "interrupted"
    teardown
    finish
}

# Projects of earlier runs killed before their teardown (parleyct<pid> whose
# run.sh is gone): removed, so that a re-run on the same machine starts clean.
reap_stale() {
    local proj pid ids
    for proj in $( (podman ps -a --format '{{index .Labels "io.podman.compose.project"}}'
        podman volume ls --format '{{index .Labels "io.podman.compose.project"}}') | sort -u); do
        [[ $proj =~ ^parleyctc?([0-9]+)$ ]] || continue
        pid=${BASH_REMATCH[1]}
        [ "$pid" = $$ ] && continue
        kill -0 "$pid" 2>/dev/null && [ "$(ps -o args= -p "$pid" 2>/dev/null | grep -c containers/run.sh)" = 1 ] && continue
        echo "removing the leftovers of $proj"
        ids=$(podman ps -aq --filter "label=io.podman.compose.project=$proj")
        [ -n "$ids" ] && podman rm -f -t 0 $ids >/dev/null
        podman volume ls -q --filter "label=io.podman.compose.project=$proj" | xargs -r podman volume rm -f >/dev/null
        podman network exists "${proj}_default" 2>/dev/null && podman network rm -f "${proj}_default" >/dev/null
    done
    return 0
}

# ------------------------------------------------------------ main

say "project $P, $GATEWAYS gateways, artifacts in $ART"
phase install install_tools || finish
phase podman configure_podman || finish
phase stale reap_stale
phase base-images "$HERE/base-images.sh" || finish
phase web build_web # a failed web build leaves the placeholder page; counted, not fatal
phase client-modules client_modules || finish

# the files as Docker Compose reads them (schema, interpolation, merge keys)
phase compose-config docker-compose -f "$ROOT/docker-compose.yml" config -q
case " $VARIANTS " in *" cluster "*)
    phase compose-config-cluster env PARLEY_REDIS_PASSWORD=x docker-compose -f "$ROOT/docker-compose.cluster.yml" config -q
    # its init, router, gateway and lb as docker-compose.yml's
    phase compose-same python3 "$HERE/compose-same.py" "$ROOT/docker-compose.yml" "$ROOT/docker-compose.cluster.yml" ;;
esac

export PARLEY_TAG=$TAG PARLEY_GATEWAYS=$GATEWAYS PARLEY_WEB_SOURCE=prebuilt
phase images compose build router gateway || finish
phase image-user images_ok

PORT=$(free_port)
HTTP_PORT=$(free_port)
while [ "$HTTP_PORT" = "$PORT" ]; do HTTP_PORT=$(free_port); done
WEB_SHA=""
[ -f "$ROOT/web/dist/index.html" ] && WEB_SHA=$(sha256sum "$ROOT/web/dist/index.html" | cut -d' ' -f1)
# the built-in local-only secret a stack without PARLEY_SECRET uses
DEFAULT_SECRET=$(sed -n 's/^#define TOKEN_DEV_SECRET "\(.*\)"$/\1/p' "$ROOT/common/token.h")
[ -n "$DEFAULT_SECRET" ] || { echo "containers: TOKEN_DEV_SECRET not found in common/token.h" >&2; exit 1; }
export PARLEY_HTTPS_PORT=$PORT PARLEY_HTTP_PORT=$HTTP_PORT
export PARLEY_TLS_NAMES=lb,localhost,127.0.0.1

# run_variant single|cluster [last]: one stack up, its tests, torn down
run_variant() {
    VARIANT=$1
    if [ "$VARIANT" = cluster ]; then
        FILE=docker-compose.cluster.yml
        P=${P0/#parleyct/parleyctc}
        [ "$P" = "$P0" ] && P=${P0}c
        SUF=-cluster
        # the nodes' password (random per run); acknowledgements wait for a replica
        PARLEY_REDIS_PASSWORD=$(openssl rand -hex 24)
        export PARLEY_REDIS_PASSWORD PARLEY_WAIT_REPLICAS=1
    else
        FILE=docker-compose.yml
        P=$P0
        SUF=""
        unset PARLEY_REDIS_PASSWORD PARLEY_WAIT_REPLICAS
    fi
    say "$VARIANT: $FILE, project $P"
    trap abort INT TERM
    trap teardown EXIT
    # no PARLEY_SECRET: the stack's init service generates the secret (read
    # back from its volume by init_made)
    SECRET=""
    ENV_FILE=$(mktemp /tmp/parley-ct-env.XXXXXX)
    CA=$(mktemp /tmp/parley-ct-ca.XXXXXX)
    printf 'PARLEY_LOG_LEVEL=info\n' >"$ENV_FILE"
    export PARLEY_ENV_FILE=$ENV_FILE
    if phase "up$SUF" stack_up && phase "init-made$SUF" init_made; then
        if [ "$VARIANT" = cluster ]; then
            phase cluster-formed cluster_formed
        else
            phase host-tls host_tls
        fi
        t=$(date +%s)
        run_e2e
        timings+=("e2e$SUF $(($(date +%s) - t))s")
        if [ "$VARIANT" = cluster ]; then
            phase cluster-restart cluster_restart
        else
            phase init-again init_again
        fi
    fi
    teardown "${2:-}"
}

n=$(echo "$VARIANTS" | wc -w)
for v in $VARIANTS; do
    n=$((n - 1))
    if [ $n = 0 ]; then run_variant "$v" last; else run_variant "$v" more; fi
done
finish
