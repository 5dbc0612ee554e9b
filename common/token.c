/* token.c - signed, expiring session tokens "<user>:<exp>:<sig>".
 *
 * sig is the lowercase hex HMAC-SHA256 of "<user>:<exp>" keyed with the whole
 * secret string (libsodium's HMAC accepts keys of any length). Parsing is
 * strict and canonical: a user name per the protocol rule, exp as plain
 * decimal digits without sign or leading zeros, exactly 64 lowercase hex
 * digits of signature. Anything else is TOKEN_MALFORMED before any crypto. */
#include "token.h"

#include "proto.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define TOKEN_SIG_HEX 64

static void token_sign(const char *secret, const char *msg, size_t len,
                       unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

int token_mint(const char *secret, const char *user, int64_t exp, char *out, size_t size)
{
    /* verify accepts at most 18 digits of exp; never mint what it refuses */
    if (!secret || !user || exp < 0 || exp > 999999999999999999LL || sodium_init() < 0) return -1;
    size_t ulen = strlen(user);
    if (!proto_valid_user(user, ulen)) return -1;

    char body[TOKEN_MAX];
    int blen = snprintf(body, sizeof body, "%s:%lld", user, (long long)exp);
    if (blen < 0 || (size_t)blen + 1 + TOKEN_SIG_HEX + 1 > size) return -1;

    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    token_sign(secret, body, (size_t)blen, mac);
    memcpy(out, body, (size_t)blen);
    out[blen] = ':';
    sodium_bin2hex(out + blen + 1, TOKEN_SIG_HEX + 1, mac, sizeof mac);
    return blen + 1 + TOKEN_SIG_HEX;
}

token_status token_verify(const char *secret, const char *tok, size_t len, int64_t now, char *user,
                          int64_t *exp)
{
    if (!secret || !tok || len >= TOKEN_MAX || sodium_init() < 0) return TOKEN_MALFORMED;

    /* user ':' exp ':' sig; sig is hex, so a third ':' fails the hex check. */
    const char *c1 = memchr(tok, ':', len);
    if (!c1) return TOKEN_MALFORMED;
    size_t ulen = (size_t)(c1 - tok);
    if (!proto_valid_user(tok, ulen)) return TOKEN_MALFORMED;

    const char *e = c1 + 1;
    const char *end = tok + len;
    const char *c2 = memchr(e, ':', (size_t)(end - e));
    if (!c2) return TOKEN_MALFORMED;
    size_t elen = (size_t)(c2 - e);
    if (elen < 1 || elen > 18) return TOKEN_MALFORMED; /* 18 digits cannot overflow */
    if (elen > 1 && e[0] == '0') return TOKEN_MALFORMED;
    int64_t ev = 0;
    for (size_t i = 0; i < elen; i++) {
        if (e[i] < '0' || e[i] > '9') return TOKEN_MALFORMED;
        ev = ev * 10 + (e[i] - '0');
    }

    const char *sig = c2 + 1;
    if ((size_t)(end - sig) != TOKEN_SIG_HEX) return TOKEN_MALFORMED;
    for (size_t i = 0; i < TOKEN_SIG_HEX; i++) {
        char h = sig[i];
        if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f'))) return TOKEN_MALFORMED;
    }

    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char hex[TOKEN_SIG_HEX + 1];
    token_sign(secret, tok, (size_t)(c2 - tok), mac);
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    if (sodium_memcmp(hex, sig, TOKEN_SIG_HEX) != 0) return TOKEN_BAD_SIG;
    if (ev <= now) return TOKEN_EXPIRED;

    if (user) {
        memcpy(user, tok, ulen);
        user[ulen] = '\0';
    }
    if (exp) *exp = ev;
    return TOKEN_OK;
}

const char *token_status_str(token_status st)
{
    switch (st) {
    case TOKEN_OK:
        return "ok";
    case TOKEN_MALFORMED:
        return "malformed";
    case TOKEN_BAD_SIG:
        return "bad signature";
    case TOKEN_EXPIRED:
        return "expired";
    }
    return "unknown";
}
