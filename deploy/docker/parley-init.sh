#!/bin/sh
# parley-init: the compose stack's one-shot first step (docker-compose.yml,
# service "init"; runs as root so that it can give each file its reader, then
# exits). Idempotent: run on every `docker compose up`, it only fills in what
# is missing.
#
# 1. The token secret, unless PARLEY_SECRET is set (the env file wins): 32
#    random bytes as hex in $SECRETS/secret, made once and kept in the volume,
#    owned by the user "parley" (uid 10001: gateways, router, CLI), mode 0400.
# 2. The TLS certificate haproxy serves, $TLS/parley.pem (certificate chain
#    and key in one file, owned by uid 99, haproxy's user, mode 0600):
#    - a certificate mounted at $GIVEN (PARLEY_TLS_CERT: a PEM with the chain
#      and the unencrypted key) is checked and copied in, on every start;
#    - otherwise a self-signed one (EC P-256, 825 days) for the names in
#      PARLEY_TLS_NAMES (comma-separated host names or IP addresses;
#      localhost) is made on first start and kept while the names are the
#      same. Its certificate alone is $TLS/cert.pem, for clients to trust.
# Environment: PARLEY_SECRET, PARLEY_TLS_NAMES; PARLEY_INIT_DIR (/var/lib/parley:
# secrets/, tls/ and given.pem below it).
set -eu
DIR=${PARLEY_INIT_DIR:-/var/lib/parley}
SECRETS=$DIR/secrets
TLS=$DIR/tls
GIVEN=$DIR/given.pem
PARLEY_UID=10001
HAPROXY_UID=99
say() { echo "parley-init: $*"; }

# ---- 1. the token secret
if [ -n "${PARLEY_SECRET:-}" ]; then
    say "PARLEY_SECRET is set in the env file: it is the token secret"
elif [ -s "$SECRETS/secret" ]; then
    say "keeping the token secret in the volume"
else
    (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$SECRETS/secret.tmp")
    chown "$PARLEY_UID:$PARLEY_UID" "$SECRETS/secret.tmp"
    chmod 0400 "$SECRETS/secret.tmp"
    mv "$SECRETS/secret.tmp" "$SECRETS/secret"
    say "generated a random token secret (kept in the volume)"
fi

# ---- 2. the TLS certificate
install_pem() { # FILE: becomes $TLS/parley.pem, haproxy's
    install -m 0600 -o "$HAPROXY_UID" -g "$HAPROXY_UID" "$1" "$TLS/parley.pem.tmp"
    mv "$TLS/parley.pem.tmp" "$TLS/parley.pem"
}
NAMES=${PARLEY_TLS_NAMES:-localhost}
if grep -q -- '-----BEGIN' "$GIVEN" 2>/dev/null; then
    openssl x509 -in "$GIVEN" -noout 2>/dev/null || { say "$GIVEN (PARLEY_TLS_CERT) holds no certificate"; exit 1; }
    openssl pkey -in "$GIVEN" -noout -passin pass: 2>/dev/null ||
        { say "$GIVEN (PARLEY_TLS_CERT) holds no unencrypted private key"; exit 1; }
    install_pem "$GIVEN"
    openssl x509 -in "$GIVEN" -out "$TLS/cert.pem"
    chmod 0644 "$TLS/cert.pem"
    echo "mounted" >"$TLS/source"
    say "using the mounted certificate: $(openssl x509 -in "$GIVEN" -noout -subject -enddate | tr '\n' ' ')"
elif [ -s "$TLS/parley.pem" ] && [ "$(cat "$TLS/source" 2>/dev/null)" = "self-signed $NAMES" ]; then
    say "keeping the self-signed certificate for $NAMES"
else
    san=""
    first=""
    for n in $(echo "$NAMES" | tr ',' ' '); do
        case $n in
        *[!0-9.]* | '') case $n in *:*) kind=IP ;; *) kind=DNS ;; esac ;;
        *) kind=IP ;;
        esac
        san="$san${san:+,}$kind:$n"
        [ -n "$first" ] || first=$n
    done
    [ -n "$first" ] || { say "PARLEY_TLS_NAMES is empty"; exit 1; }
    work=$(mktemp -d)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
        -subj "/CN=$first" -addext "subjectAltName=$san" \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    cat "$work/cert.pem" "$work/key.pem" >"$work/parley.pem"
    install_pem "$work/parley.pem"
    install -m 0644 "$work/cert.pem" "$TLS/cert.pem"
    rm -rf "$work"
    echo "self-signed $NAMES" >"$TLS/source"
    say "generated a self-signed certificate for $san"
fi
