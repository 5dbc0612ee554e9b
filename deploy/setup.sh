#!/usr/bin/env bash
# deploy/setup.sh: install what Parley needs on a Debian 12 machine and build it.
#
# - installs the Debian packages below (only those missing; apt-get update once);
# - builds libwebsockets 4.1.6 with LWS_WITH_LIBEVENT from Debian's own source
#   package into a project-local prefix (.deps/lws), cached across runs;
# - configures and builds Parley into build/ (or $PARLEY_BUILD_DIR).
#
# Environment: PARLEY_BUILD_DIR (default build), PARLEY_BUILD_TYPE (default
# RelWithDebInfo), PARLEY_SANITIZE=1 for an ASan+UBSan build, PARLEY_WERROR=1
# for warnings as errors (the lint stage), PARLEY_DEPS_DIR
# (default .deps), PARLEY_SKIP_APT=1 to skip the package step,
# PARLEY_SETUP_PKGS=build to install only what compiling needs (container
# builds: no redis, clang, node, chromium or haproxy), PARLEY_NO_BUILD=1 to stop before Parley.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPS=${PARLEY_DEPS_DIR:-$ROOT/.deps}
LWS_VERSION=4.1.6
LWS_PREFIX=$DEPS/lws-$LWS_VERSION

BUILD_PKGS=(build-essential cmake ninja-build pkg-config dpkg-dev patch ca-certificates
      libevent-dev libhiredis-dev libmsgpack-dev libsodium-dev libssl-dev zlib1g-dev
      libjansson-dev uthash-dev libcmocka-dev)
PKGS=("${BUILD_PKGS[@]}" redis-server redis-tools curl clang libclang-rt-14-dev nodejs npm
      chromium fonts-dejavu-core fonts-noto-color-emoji haproxy clang-format lua-check)

say() { printf 'setup: %s\n' "$*" >&2; }

install_packages() {
    [ "${PARLEY_SKIP_APT:-0}" = 1 ] && return 0
    local missing=() want=("${PKGS[@]}")
    [ "${PARLEY_SETUP_PKGS:-all}" = build ] && want=("${BUILD_PKGS[@]}")
    for p in "${want[@]}"; do
        # node may come from elsewhere (nvm, nodesource): accept a working one
        if [ "$p" = nodejs ] || [ "$p" = npm ]; then
            command -v "${p/nodejs/node}" >/dev/null 2>&1 && continue
        fi
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# deploy/lws-patches/*.patch are applied to the lws source before it is built
# (each says why); the cache marker names their hash, so a changed patch set
# rebuilds the library.
lws_patch_id() {
    cat "$ROOT"/deploy/lws-patches/*.patch 2>/dev/null | sha1sum | cut -c1-12
}

build_lws() {
    local marker=$LWS_PREFIX/.parley-ok-$(lws_patch_id)
    if [ -f "$LWS_PREFIX/lib/pkgconfig/libwebsockets.pc" ] && [ -f "$marker" ]; then
        return 0
    fi
    say "building libwebsockets $LWS_VERSION with libevent into $LWS_PREFIX"
    local W=$DEPS/lws-src
    rm -rf "$W" && mkdir -p "$W/apt/lists/partial" "$W/apt/etc"
    local mirror
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    if [ -z "$mirror" ]; then
        mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$mirror" ] || { say "cannot find the Debian mirror in /etc/apt"; exit 1; }
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" >"$W/apt/etc/src.sources"
    local o=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$W/apt/etc" -o "Dir::State::Lists=$W/apt/lists")
    apt-get "${o[@]}" update -qq >/dev/null
    (cd "$W" && apt-get "${o[@]}" source --download-only libwebsockets >/dev/null 2>&1)
    tar xzf "$W/libwebsockets_$LWS_VERSION.orig.tar.gz" -C "$W"
    local p
    for p in "$ROOT"/deploy/lws-patches/*.patch; do
        [ -e "$p" ] || continue
        say "applying $(basename "$p")"
        patch -s -p1 -d "$W/libwebsockets-$LWS_VERSION" <"$p"
    done
    cmake -S "$W/libwebsockets-$LWS_VERSION" -B "$W/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DDISABLE_WERROR=ON -DLWS_WITH_LIBEVENT=ON -DLWS_WITH_EVLIB_PLUGINS=OFF \
        -DLWS_WITHOUT_TESTAPPS=ON -DLWS_WITHOUT_TEST_SERVER=ON -DLWS_WITH_MINIMAL_EXAMPLES=OFF \
        -DLWS_WITH_SHARED=ON -DLWS_WITH_STATIC=OFF -DCMAKE_INSTALL_PREFIX="$LWS_PREFIX" >/dev/null
    cmake --build "$W/build" -j"$(nproc)" >/dev/null
    # installed beside, then swapped in: programs built against the old prefix
    # (other checkouts' tests may be running) lose the library for an instant
    # only, not for the whole build
    DESTDIR="$W/stage" cmake --install "$W/build" >/dev/null
    touch "$W/stage$marker"
    rm -rf "$LWS_PREFIX.old"
    [ -d "$LWS_PREFIX" ] && mv "$LWS_PREFIX" "$LWS_PREFIX.old"
    mkdir -p "$(dirname "$LWS_PREFIX")"
    mv "$W/stage$LWS_PREFIX" "$LWS_PREFIX"
    rm -rf "$LWS_PREFIX.old" "$W"
}

build_parley() {
    local dir=${PARLEY_BUILD_DIR:-$ROOT/build}
    local type=${PARLEY_BUILD_TYPE:-RelWithDebInfo}
    local extra=()
    [ "${PARLEY_SANITIZE:-0}" = 1 ] && extra+=(-DPARLEY_SANITIZE=ON)
    [ "${PARLEY_FUZZ:-0}" = 1 ] && extra+=(-DPARLEY_FUZZ=ON -DCMAKE_C_COMPILER=clang)
    [ "${PARLEY_WERROR:-0}" = 1 ] && extra+=(-DPARLEY_WERROR=ON)
    cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" \
        -DCMAKE_PREFIX_PATH="$LWS_PREFIX" "${extra[@]}" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}

install_packages
build_lws
[ "${PARLEY_NO_BUILD:-0}" = 1 ] || build_parley
