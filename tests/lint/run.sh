#!/usr/bin/env bash
# tests/lint/run.sh: the lint stage of tests/run.sh. Each check prints what
# is wrong and counts as one pass or one failure:
#   c-format   clang-format --dry-run -Werror over every C file in git (and new
#              ones git does not ignore)
#              (.clang-format at the root; fix: clang-format -i FILE)
#   c-werror   a RelWithDebInfo build with -Werror (-Wall -Wextra -Wshadow)
#              into build-lint/ (optimised: -O2 finds what -O0 does not)
#   layers     no import circle among the gateway's modules (layers.sh on
#              build-lint's objects)
#   lua        luacheck over the Lua scripts (lua.sh)
#   js         ESLint + Prettier over the web client and the JS tests (js.sh)
# Ends with "N passed, N failed"; exits non-zero when any check failed.
#
# usage: tests/lint/run.sh [CHECK...]   (default: all, in the order above)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT" || exit 1
CHECKS=${*:-c-format c-werror layers lua js}
passed=0 failed=0 failures=()

check() { # name command...
    local name=$1
    shift
    printf -- '--- lint %s\n' "$name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$name")
    fi
}

c_format() {
    local files
    # tracked and new (untracked, not ignored) files
    mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h')
    clang-format --dry-run -Werror "${files[@]}" && echo "c-format: ${#files[@]} files formatted"
}

c_werror() {
    PARLEY_BUILD_DIR="$ROOT/build-lint" PARLEY_WERROR=1 PARLEY_BUILD_TYPE=RelWithDebInfo \
        "$ROOT/deploy/setup.sh" >"$ROOT/tests/artifacts/lint-build.log" 2>&1 &&
        echo "c-werror: clean build, no warning" ||
        {
            grep -E 'error|warning' "$ROOT/tests/artifacts/lint-build.log" | head -40
            return 1
        }
}

mkdir -p "$ROOT/tests/artifacts"
for c in $CHECKS; do
    case $c in
    c-format) check c-format c_format ;;
    c-werror) check c-werror c_werror ;;
    layers) check layers "$HERE/layers.sh" "$ROOT/build-lint" ;;
    lua) check lua "$HERE/lua.sh" ;;
    js) check js "$HERE/js.sh" ;;
    *) echo "lint: unknown check '$c'" >&2; exit 2 ;;
    esac
done
[ ${#failures[@]} -eq 0 ] || echo "lint: failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
