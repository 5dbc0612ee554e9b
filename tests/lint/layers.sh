#!/usr/bin/env bash
# tests/lint/layers.sh: checks that the gateway's modules call each other one
# way only (no import circle).
#
# A module is a header and the .c files that implement it (gateway/x.h and
# gateway/x.c; the frame layer's frames.h, frame_handlers.h and frame_*.c are
# one module, "frames"). Module A depends on module B when an object file of
# A refers to a symbol (a function or variable) that an object file of B
# defines: read with nm(1) from the build, so it sees every real call, even
# through a shared header. tsort(1) orders the modules so that each comes
# after what it depends on, and reports a loop if there is one: that is an
# import circle, and this script fails naming it. --print prints the order,
# lowest layer first, and each module's dependencies (gateway/README.md's
# map follows it).
#
# usage: tests/lint/layers.sh [--print] [BUILD_DIR]   (default: build; needs
# a build of parley-gateway)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
print=0
[ "${1:-}" = --print ] && { print=1; shift; }
BUILD=${1:-$ROOT/build}
OBJ=$BUILD/CMakeFiles/parley-gateway.dir/gateway
ls "$OBJ"/*.o >/dev/null 2>&1 || { echo "layers: no objects in $OBJ: build first" >&2; exit 2; }

module() { # gateway/x.c.o -> module name
    local stem
    stem=$(basename "$1")
    stem=${stem%%.*}
    case $stem in frame_* | frames) stem=frames ;; esac
    printf '%s' "$stem"
}

defs=$(mktemp) uses=$(mktemp) err=$(mktemp)
trap 'rm -f "$defs" "$uses" "$err"' EXIT
for o in "$OBJ"/*.o; do
    m=$(module "$o")
    nm --defined-only -g "$o" | awk -v m="$m" 'NF == 3 { print $3, m }' >>"$defs"
    nm --undefined-only "$o" | awk -v m="$m" '{ print $NF, m }' >>"$uses"
    printf '%s %s\n' "$m" "$m" >>"$uses.self"
done
# edges "B A" (A uses B) for symbols defined in another module
edges=$( (
    cat "$uses.self"
    sort "$defs" | join - <(sort "$uses") | awk '$2 != $3 { print $2, $3 }' | sort -u
))
rm -f "$uses.self"
if ! order=$(tsort <<<"$edges" 2>"$err") || [ -s "$err" ]; then
    # tsort names the modules of each loop it breaks, one a line: say each once
    in_loops=$(grep -v 'input contains a loop' "$err" | sed 's/^tsort: //' | sort -u)
    echo "layers: import circle through these $(wc -l <<<"$in_loops") modules of gateway/:" \
        $in_loops >&2
    exit 1
fi
if [ "$print" = 1 ]; then
    for m in $order; do
        deps=$(awk -v m="$m" '$2 == m && $1 != m { print $1 }' <<<"$edges" | sort | tr '\n' ' ')
        printf '%-12s -> %s\n' "$m" "${deps:-(common/ and libraries only)}"
    done
fi
echo "layers: no import circle among the $(wc -w <<<"$order") modules of gateway/"
