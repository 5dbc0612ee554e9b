#!/usr/bin/env bash
# tools/bench/figures.sh: run every benchmark of docs/benchmarks.md, several
# times, each against a fresh stack (tools/bench/run-stack.sh), keeping every
# JSON result; then print the medians (tools/bench/summarize.py) and draw the
# ramp plot (tools/bench/plot.py).
#
#   tools/bench/figures.sh [--runs N] [--out DIR] [--only NAME,NAME]
#
# Names: connect100k connect20k pair5k pair50k ramp ramp20 fanout fanout100 noisy, and the message
# lifecycle's life-pair life-fan100 life-fan1000 (--ops text,edit,react,delete: one table per op).
# Options (environment in brackets): --runs N [PARLEY_FIGURES_RUNS, default 3],
# --out DIR [PARLEY_FIGURES_OUT, default /tmp/parley-figures-<UTC time>], --only LIST.
# A run that misses a target or loses its stack still leaves its JSON: the
# figures report what was reached. Takes about 5 minutes per round.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${PARLEY_FIGURES_RUNS:-3}
OUT=${PARLEY_FIGURES_OUT:-${TMPDIR:-/tmp}/parley-figures-$(date -u +%Y%m%dT%H%M%SZ)}
ONLY=""
while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "figures.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
STACK=$ROOT/tools/bench/run-stack.sh
# throughput figures: a bench user sends far more than a person (50 to 2,500 texts/s), so the
# routers' per-user send budgets (docs/protocol.md) are off unless the caller sets router flags
export PARLEY_STACK_ROUTER_ARGS=${PARLEY_STACK_ROUTER_ARGS-"--user-rate 0 --user-fanout-rate 0 --user-byte-rate 0"}

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
# bench NAME RUN STACK_OPTS... -- BENCH_ARGS...
bench() {
    local name=$1 run=$2; shift 2
    local json=$OUT/$name-$run.json
    echo "=== $name run $run ($(cut -d' ' -f1-3 /proc/loadavg))" >&2
    PARLEY_STACK_LOGS=$OUT/logs/$name-$run "$STACK" "$@" --json "$json" --label "$name run $run" --progress 0 \
        >"$OUT/$name-$run.txt" 2>&1
    grep -E 'handshakes|delivered/s|send -> (delivery|last)|highest|lost|first problem|bytes per|^  [a-z+]+ +ack p50|^  step [0-9]' "$OUT/$name-$run.txt" | head -40 >&2
}

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -srm), $(nproc) cpus, $(awk '/MemTotal/{print $2" kB"}' /proc/meminfo)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
    echo "redis: $(redis-server --version | awk '{print $3}')"
} >"$OUT/machine.txt"

for run in $(seq "$RUNS"); do
    want connect100k && bench connect100k "$run" --gateways 6 --users 100000 -- \
        connect --connections 100000 --procs 6 --sources 8 --hold 5
    want connect20k && bench connect20k "$run" --gateways 2 --users 20000 -- \
        connect --connections 20000 --procs 2 --sources 8
    want pair5k && bench pair5k "$run" --gateways 2 --users 2000 -- \
        pair --pairs 1000 --rate 5000 --duration 10
    want pair50k && bench pair50k "$run" --gateways 2 --users 2000 -- \
        pair --pairs 1000 --rate 50000 --duration 10 --procs 2
    want ramp && bench ramp "$run" --gateways 2 --users 2000 -- \
        ramp --pairs 1000 --rate-start 2500 --rate-step 2500 --rate-max 50000 --step-seconds 5 \
        --p99-bound-us 10000 --drain-ms 5000
    # the same 1:1 ramp with 20 busy pairs: frames share socket writes, Redis is the limit
    want ramp20 && bench ramp20 "$run" --gateways 2 --users 200 -- \
        ramp --pairs 20 --rate-start 5000 --rate-step 5000 --rate-max 50000 --step-seconds 5 \
        --p99-bound-us 10000 --drain-ms 5000
    want fanout && bench fanout "$run" --gateways 2 --users 1000 -- \
        fanout --members 1000 --rate 20 --duration 10
    # a 100-member group, texts only (the baseline of life-fan100)
    want fanout100 && bench fanout100 "$run" --gateways 2 --users 100 -- \
        fanout --members 100 --rate 100 --duration 10
    # the message lifecycle: texts, then an edit, a reaction and a delete of each (one step each)
    want life-pair && bench life-pair "$run" --gateways 2 --users 2000 -- \
        pair --pairs 1000 --rate 5000 --duration 10 --ops text,edit,react,delete
    want life-fan100 && bench life-fan100 "$run" --gateways 2 --users 100 -- \
        fanout --members 100 --rate 100 --duration 10 --ops text,edit,react,delete
    want life-fan1000 && bench life-fan1000 "$run" --gateways 2 --users 1000 -- \
        fanout --members 1000 --rate 20 --duration 10 --ops text,edit,react,delete
    # noisy neighbour: 50 bystander pairs at 500 msg/s; one attacker in a 5,000-member group,
    # its inbox 1,000 x 60 KB, up to 500 sessions; phases off, group, sync, sessions, all.
    # The routers keep their default per-user budgets here: the attacker acts within every limit
    # (a bystander sends 10 texts/s, under them)
    want noisy && PARLEY_STACK_ROUTER_ARGS=${PARLEY_NOISY_ROUTER_ARGS-} bench noisy "$run" --gateways 2 --users 5200 -- \
        noisy --pairs 50 --rate 500 --members 5000 --duration 10
done

python3 "$ROOT/tools/bench/summarize.py" "$OUT" | tee "$OUT/summary.md"
ramps=("$OUT"/ramp-*.json)
[ -e "${ramps[0]}" ] && python3 "$ROOT/tools/bench/plot.py" "${ramps[@]}" -o "$OUT/ramp.svg" \
    --title "Parley 1:1, 1,000 pairs: latency against offered rate ($(nproc) cores, one machine)"
ramps=("$OUT"/ramp20-*.json)
[ -e "${ramps[0]}" ] && python3 "$ROOT/tools/bench/plot.py" "${ramps[@]}" -o "$OUT/ramp20.svg" \
    --title "Parley 1:1, 20 busy pairs: latency against offered rate ($(nproc) cores, one machine)"
echo "results in $OUT" >&2
