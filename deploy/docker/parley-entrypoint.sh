#!/bin/sh
# parley-entrypoint: the entrypoint of the gateway and router images. When
# the token secret comes from a file (PARLEY_SECRET_FILE, PARLEY_SECRET
# unset), waits for the compose stack's init service to have written it (up
# to 60 s: podman-compose starts services in order without waiting for init
# to finish), then runs the program ("$@") in its place.
if [ -z "${PARLEY_SECRET:-}" ] && [ -n "${PARLEY_SECRET_FILE:-}" ]; then
    i=0
    while [ ! -s "$PARLEY_SECRET_FILE" ] && [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
fi
exec "$@"
