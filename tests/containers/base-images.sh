#!/usr/bin/env bash
# tests/containers/base-images.sh: local stand-ins for the official base images
# that deploy/docker/ and the container tests start from, for machines where no
# container registry can be reached. FOR TESTS ONLY: they are built from
# Debian bookworm packages and tagged with the official names, so that
# `FROM debian:bookworm-slim` and docker-compose.yml's `image:` lines resolve
# locally and stay exactly what a Docker user runs.
#
#   docker.io/library/debian:bookworm-slim   debootstrap --variant=minbase
#   docker.io/library/redis:7.0-bookworm     Debian's redis-server (7.0.x)
#   docker.io/library/haproxy:2.6            Debian's haproxy (2.6.x)
#   docker.io/library/node:18-bookworm-slim  Debian's nodejs (18.x), runs the test client
#
# An image that is already present (a stand-in from an earlier run, or the
# real one) is kept: nothing is rebuilt unless --rebuild is given. Stand-ins
# carry the label org.parley.standin=1 (`podman images --filter
# label=org.parley.standin=1` lists them).
#
# Usage: tests/containers/base-images.sh [--rebuild] [--help]
# Environment: PARLEY_CT_MIRROR (default: the Debian mirror this machine's apt
# uses), PARLEY_CT_REBUILD_BASE=1 (same as --rebuild).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REBUILD=${PARLEY_CT_REBUILD_BASE:-0}
case ${1:-} in
--rebuild) REBUILD=1 ;;
-h | --help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "base-images.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

say() { printf 'base-images: %s\n' "$*" >&2; }

debian_mirror() {
    local m=${PARLEY_CT_MIRROR:-}
    [ -n "$m" ] || m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$m" ] || m=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$m" ] || { say "cannot find the Debian mirror in /etc/apt (set PARLEY_CT_MIRROR)"; exit 1; }
    printf '%s\n' "$m"
}

wanted() { # image: true when it must be built
    [ "$REBUILD" = 1 ] && return 0
    ! podman image exists "$1"
}

build_debian() {
    local img=docker.io/library/debian:bookworm-slim
    wanted "$img" || return 0
    local mirror root
    mirror=$(debian_mirror)
    root=$(mktemp -d /var/tmp/parley-debootstrap.XXXXXX)
    say "debootstrap bookworm (minbase) from $mirror"
    if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1; then
        tail -20 "$root.log" >&2; rm -rf "$root" "$root.log"; return 1
    fi
    # what the official slim image does: no docs, no apt caches, no host files
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
    printf 'deb %s bookworm main\n' "$mirror" >"$root/etc/apt/sources.list"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
    : >"$root/etc/resolv.conf"
    : >"$root/etc/hostname"
    tar -C "$root" -c . | podman import -q --change 'CMD ["bash"]' \
        --change 'LABEL org.parley.standin=1' - "$img" >/dev/null
    rm -rf "$root" "$root.log"
    say "built $img"
}

build_standin() { # name image
    local img=$2
    wanted "$img" || return 0
    say "building stand-in $img from Debian packages"
    podman build -q -t "$img" -f "$HERE/standins/$1.Containerfile" "$HERE/standins" >/dev/null
    say "built $img"
}

command -v podman >/dev/null || { say "podman is not installed (tests/containers/run.sh installs it)"; exit 1; }
build_debian
build_standin redis docker.io/library/redis:7.0-bookworm
build_standin haproxy docker.io/library/haproxy:2.6
build_standin node docker.io/library/node:18-bookworm-slim
