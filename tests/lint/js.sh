#!/usr/bin/env bash
# tests/lint/js.sh: the JavaScript lint. Two checks over the web client
# (web/src, web/vite.config.js) and every JS test (tests/**/*.mjs):
#   eslint     tests/lint/eslint.config.mjs (ESLint's recommended rules, and
#              react-hooks' on the client's components)
#   prettier   prettier --check with tests/lint/prettier.config.mjs; each file
#              it would change is listed with the diff it would make
# The tools are tests/lint's own npm packages: `npm ci` runs there first when
# node_modules is missing or older than package-lock.json. Runs from the repo
# root whatever the current directory. Prints every problem, ends with
# "N passed, N failed" (one per check) and exits non-zero on any problem.
#
# Usage: tests/lint/js.sh [--help] [--fix] [--skip DIR]...
#   --fix       rewrite instead of checking: eslint --fix, prettier --write
#               (what eslint cannot fix itself is still reported)
#   --skip DIR  leave DIR (a directory under the repo root, e.g.
#               tests/integration) out of both checks; repeatable
set -uo pipefail

if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT" || exit 1

fix=0
skips=()
while [ $# -gt 0 ]; do
    case $1 in
    --fix) fix=1 ;;
    --skip)
        [ $# -ge 2 ] || { echo "js.sh: --skip needs a directory" >&2; exit 2; }
        skips+=("${2%/}"); shift ;;
    *) echo "js.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# what is checked: eslint takes directories (its config says which files in
# them are JavaScript), prettier takes globs (so that it leaves CSS, JSON and
# Markdown alone); both skip node_modules and what .gitignore ignores
eslint_paths=(web/src web/vite.config.js tests)
prettier_globs=('web/src/**/*.{js,jsx}' web/vite.config.js 'tests/**/*.{js,mjs}')
eslint_skip=()
for d in "${skips[@]}"; do
    [ -d "$d" ] || { echo "js.sh: --skip $d: no such directory" >&2; exit 2; }
    eslint_skip+=(--ignore-pattern "$d/")
    prettier_globs+=("!$d/**")
done

passed=0
failed=0
finish() {
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit $?
}

node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
    { echo "js.sh: node $(node --version) is too old: ESLint 10 needs Node >= 20.19" >&2; failed=1; finish; }
if [ ! -d "$HERE/node_modules" ] || [ "$HERE/package-lock.json" -nt "$HERE/node_modules" ]; then
    echo "== npm ci in tests/lint"
    (cd "$HERE" && npm ci --no-audit --no-fund >/dev/null) && touch "$HERE/node_modules" ||
        { echo "js.sh: npm ci in tests/lint failed" >&2; failed=1; finish; }
fi
bin=$HERE/node_modules/.bin

echo "== eslint ${eslint_paths[*]}${skips[*]:+ (skipping ${skips[*]})}"
eslint_opts=(--config "$HERE/eslint.config.mjs" --max-warnings 0 "${eslint_skip[@]}")
[ $fix = 0 ] || eslint_opts+=(--fix)
if "$bin/eslint" "${eslint_opts[@]}" "${eslint_paths[@]}"; then
    echo "eslint: no problems"
    passed=$((passed + 1))
else
    echo "eslint: problems above"
    failed=$((failed + 1))
fi

prettier=("$bin/prettier" --config "$HERE/prettier.config.mjs" --no-error-on-unmatched-pattern)
echo "== prettier ${prettier_globs[*]}"
if [ $fix = 1 ]; then
    "${prettier[@]}" --write --log-level warn "${prettier_globs[@]}" && passed=$((passed + 1)) || failed=$((failed + 1))
    finish
fi
# --list-different names each file whose formatting differs; show the change
bad=$("${prettier[@]}" --list-different "${prettier_globs[@]}")
rc=$?
if [ "$rc" = 0 ] && [ -z "$bad" ]; then
    echo "prettier: every file formatted"
    passed=$((passed + 1))
else
    n=0
    while IFS= read -r f; do
        [ -n "$f" ] || continue
        n=$((n + 1))
        d=$("${prettier[@]}" "$f" | diff -u --label "$f" --label "$f (prettier)" "$f" -)
        lines=$(wc -l <<<"$d")
        if [ "$lines" -gt 60 ]; then
            head -n 60 <<<"$d"
            echo "... ($((lines - 60)) more lines of diff)"
        else
            echo "$d"
        fi
    done <<<"$bad"
    [ "$rc" = 0 ] || [ "$rc" = 1 ] || echo "prettier: exited $rc (see above)"
    echo "prettier: $n file(s) not formatted; tests/lint/js.sh --fix rewrites them"
    failed=$((failed + 1))
fi
finish
