#!/usr/bin/env bash
# tests/lint/lua.sh - lints the Lua that Parley runs in Redis (common/lua/) with luacheck
# (Debian package lua-check) and the repository's .luacheckrc. Exits 0 when clean, 1 on any
# finding, 2 when it cannot run.
#
# It checks each script as Redis runs it: common/lua/embed.cmake (the build's own assembler)
# writes them to a temporary directory, helpers pasted in front and the send library wrapped;
# luacheck checks those, and every finding is printed at its line in common/lua/ (a finding in a
# helper once, however many scripts include it). It also fails on a helper no script includes.
#
# usage: tests/lint/lua.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
for tool in luacheck cmake; do
    command -v "$tool" >/dev/null || { echo "lua.sh: $tool not found" >&2; exit 2; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cmake -DLUA_DIR=common/lua -DOUT_DIR="$TMP" -P common/lua/embed.cmake || exit 2

rc=0
luacheck --config .luacheckrc --formatter plain --codes --no-color "$TMP"/*.lua >"$TMP/found"
case $? in
    0) ;;
    1 | 2) rc=1 ;; # warnings, errors
    *) cat "$TMP/found" >&2; echo "lua.sh: luacheck failed" >&2; exit 2 ;;
esac

# "$TMP/NAME.lua:LINE:COL: message" -> "FILE:LINE:COL: message", with NAME.map's
# "START FILE" lines (the line of NAME.lua where each part starts)
while IFS= read -r found; do
    file=${found%%:*}
    rest=${found#*:}
    line=${rest%%:*}
    rest=${rest#*:}
    map="${file%.lua}.map"
    where="$file (the library wrapper)"
    if [[ -f $map && $line =~ ^[0-9]+$ ]]; then
        while read -r start part; do
            ((start <= line)) && where="$part:$((line - start + 1))"
        done <"$map"
    else
        where="$file:$line"
    fi
    echo "$where:$rest"
done <"$TMP/found" | sort -u | sort -t: -k1,1 -k2,2n -k3,3n

# every helper is included by some script
for lib in common/lua/lib/*.lua; do
    name=$(basename "$lib" .lua)
    if ! grep -Eq "^-- include:.*[[:space:]]$name([[:space:]]|\$)" common/lua/*.lua; then
        echo "$lib: no script includes it"
        rc=1
    fi
done

nscripts=$(ls common/lua/*.lua | wc -l)
if [ "$rc" = 0 ]; then
    echo "lua lint: $nscripts scripts clean"
else
    echo "lua lint: problems above" >&2
fi
exit $rc
