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
#   7. tears everything down (containers, volumes, network), even on failure,
#      and ends with "N passed, N failed" (exit status 1 if any failed).
#
# Usage: tests/containers/run.sh [--keep] [--help]
#   --keep   leave the stack running at the end (prints how to remove it)
# One test by name (a regular expression over the test names, node's
# --test-name-pattern; the others are reported as skipped; no match is a
# failure):
#   PARLEY_TEST_ONLY='chat across gateways' tests/containers/run.sh
# Environment:
#   PARLEY_TEST_ONLY     run only the e2e tests whose names match
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
case ${1:-} in
--keep) KEEP=1 ;;
-h | --help) sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac
GATEWAYS=${PARLEY_CT_GATEWAYS:-3}
[[ $GATEWAYS =~ ^[0-9]+$ ]] && [ "$GATEWAYS" -ge 3 ] && [ "$GATEWAYS" -le 32 ] ||
    { echo "run.sh: PARLEY_CT_GATEWAYS must be 3..32 (the tests spread three users over three gateways)" >&2; exit 2; }
P=${PARLEY_CT_PROJECT:-parleyct$$}
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
rm -f "$ART"/*.log "$ART/e2e.tap"

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

compose() { (cd "$ROOT" && podman-compose -p "$P" "$@"); }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

running() { # service: names of its running containers
    podman ps --filter "label=io.podman.compose.project=$P" --filter "label=com.docker.compose.service=$1" \
        --format '{{.Names}}'
}

stack_up() {
    compose up -d --no-build || return 1
    local svc want n
    for _ in $(seq 60); do
        [ "$(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "${P}_init_1" 2>/dev/null)" = "exited 0" ] || { sleep 1; continue; }
        n=0
        for svc in redis router lb gateway; do
            want=1
            [ $svc = gateway ] && want=$GATEWAYS
            [ "$(running $svc | wc -l)" = "$want" ] && n=$((n + 1))
        done
        [ $n = 4 ] && { podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}} {{.Status}}'; return 0; }
        sleep 1
    done
    podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}} {{.Status}}'
    return 1
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
    redis-cli) podman exec "${P}_redis_1" redis-cli "$@" >"$out" 2>&1; rc=$? ;;
    redis-cli-1s) # commands that run until stopped (MONITOR, --stat): one second of
        # them; stdbuf because without a terminal redis-cli --stat buffers its output
        podman exec "${P}_redis_1" timeout 1 stdbuf -oL redis-cli "$@" >"$out" 2>&1
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
            [[ $name == "${P}_init_"* ]] && continue # one-shot: exited is its normal state
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
        ;;
    readme) cat "$ROOT/README.md" >"$out"; rc=$? ;;
    logs) # every container's log, each after a line "== NAME"
        rc=0
        for name in $(podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}}'); do
            printf '== %s\n' "$name" >>"$out"
            podman logs "$name" >>"$out" 2>&1 || rc=1
        done
        ;;
    restart-redis) podman restart -t 15 "${P}_redis_1" >"$out" 2>&1; rc=$? ;;
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
tap_count() { # pass|fail|cancelled|skipped: node's summary line in e2e.tap
    grep -E "^# $1 [0-9]+$" "$ART/e2e.tap" | tail -1 | awk '{print $3}'
}
run_e2e() {
    local in out so line pid rc=0 words pass fail cancelled skipped
    local node_args=(--test-reporter=tap)
    [ -n "${PARLEY_TEST_ONLY:-}" ] && node_args+=("--test-name-pattern=$PARLEY_TEST_ONLY")
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
            "$NODE_IMAGE" timeout 1200 node "${node_args[@]}" /t/e2e.mjs 2>&1 > >(tee "$ART/e2e.tap" >&"$so")
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
            handle_op "${words[@]}" 1>&"$out" 2>>"$ART/e2e-ops.log"
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
        not_ok "e2e.mjs ended (exit $rc) without node's summary (# pass / # fail in $ART/e2e.tap)"
        return 1
    fi
    passed=$((passed + pass))
    failed=$((failed + fail + ${cancelled:-0}))
    echo "e2e: $pass passed, $fail failed, ${cancelled:-0} cancelled (timed out), ${skipped:-0} skipped"
    if [ $((pass + fail + ${cancelled:-0})) = 0 ]; then
        not_ok "e2e: no test ran${PARLEY_TEST_ONLY:+ (PARLEY_TEST_ONLY='$PARLEY_TEST_ONLY' matches no test name)}"
    elif [ "$rc" != 0 ] && [ $((fail + ${cancelled:-0})) = 0 ]; then
        not_ok "e2e.mjs exited with status $rc although no test failed"
    fi
    return $rc
}

# ------------------------------------------------------------ 6. teardown

teardown() {
    trap - EXIT INT TERM
    local name
    podman rm -f "${P}_e2e" >/dev/null 2>&1
    for name in $(podman ps -a --filter "label=io.podman.compose.project=$P" --format '{{.Names}}'); do
        podman logs -t "$name" >"$ART/$name.log" 2>&1
    done
    if [ "$KEEP" = 1 ]; then
        say "kept stack $P on https port ${PORT:-?} (http ${HTTP_PORT:-?}; certificate $CA); remove it with: podman rm -f \$(podman ps -aq --filter label=io.podman.compose.project=$P); podman volume rm ${P}_redis-data ${P}_secrets ${P}_tls; podman network rm ${P}_default"
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
    if [ "$left" = 0 ]; then ok "teardown: no container, volume or network of $P left"; else not_ok "teardown: $left objects of $P left"; fi
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
        [[ $proj =~ ^parleyct([0-9]+)$ ]] || continue
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

# the file as Docker Compose reads it (schema, interpolation, merge keys)
phase compose-config docker-compose -f "$ROOT/docker-compose.yml" config -q

export PARLEY_TAG=$TAG PARLEY_GATEWAYS=$GATEWAYS PARLEY_WEB_SOURCE=prebuilt
phase images compose build router gateway || finish
phase image-user images_ok

trap abort INT TERM
trap teardown EXIT
PORT=$(free_port)
HTTP_PORT=$(free_port)
while [ "$HTTP_PORT" = "$PORT" ]; do HTTP_PORT=$(free_port); done
WEB_SHA=""
[ -f "$ROOT/web/dist/index.html" ] && WEB_SHA=$(sha256sum "$ROOT/web/dist/index.html" | cut -d' ' -f1)
# the built-in local-only secret a stack without PARLEY_SECRET uses
DEFAULT_SECRET=$(sed -n 's/^#define TOKEN_DEV_SECRET "\(.*\)"$/\1/p' "$ROOT/common/token.h")
[ -n "$DEFAULT_SECRET" ] || { echo "containers: TOKEN_DEV_SECRET not found in common/token.h" >&2; exit 1; }
# no PARLEY_SECRET: the stack's init service generates the secret (read
# back from its volume by init_made)
SECRET=""
ENV_FILE=$(mktemp /tmp/parley-ct-env.XXXXXX)
CA=$(mktemp /tmp/parley-ct-ca.XXXXXX)
printf 'PARLEY_LOG_LEVEL=info\n' >"$ENV_FILE"
export PARLEY_HTTPS_PORT=$PORT PARLEY_HTTP_PORT=$HTTP_PORT PARLEY_ENV_FILE=$ENV_FILE
export PARLEY_TLS_NAMES=lb,localhost,127.0.0.1
if phase up stack_up && phase init-made init_made; then
    phase host-tls host_tls
    t=$(date +%s)
    run_e2e
    timings+=("e2e $(($(date +%s) - t))s")
    phase init-again init_again
fi
teardown
finish
