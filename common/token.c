/* token.c - signed, expiring tokens "<user>:<sid>:<exp>:<sig>" (token.h).
 *
 * sig is the lowercase hex HMAC-SHA256 of "<user>:<sid>:<exp>" keyed with the
 * whole secret string (libsodium's HMAC accepts keys of any length). Parsing
 * is strict and canonical: a user name per the protocol rule, a sid of
 * exactly 32 lowercase hex digits, exp as plain decimal digits without sign
 * or leading zeros, exactly 64 lowercase hex digits of signature. Anything
 * else is TOKEN_MALFORMED before any crypto. */
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

static int token_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

int token_valid_sid(const char *s, size_t len)
{
    return s && len == TOKEN_SID_LEN && token_hex(s, len);
}

int token_new_sid(char *sid)
{
    unsigned char b[TOKEN_SID_LEN / 2];
    if (sodium_init() < 0) return -1;
    randombytes_buf(b, sizeof b);
    sodium_bin2hex(sid, TOKEN_SID_LEN + 1, b, sizeof b);
    return 0;
}

int token_bulk_sid(const char *secret, const char *user, char *sid)
{
    char msg[64];
    if (!secret || !user || sodium_init() < 0) return -1;
    int n = snprintf(msg, sizeof msg, "bulk-session:%s", user);
    if (n < 0 || (size_t)n >= sizeof msg) return -1;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    token_sign(secret, msg, (size_t)n, mac);
    sodium_bin2hex(sid, TOKEN_SID_LEN + 1, mac, TOKEN_SID_LEN / 2);
    return 0;
}

int token_mint(const char *secret, const char *user, const char *sid, int64_t exp, char *out,
               size_t size)
{
    /* verify accepts at most 18 digits of exp; never mint what it refuses */
    if (!secret || !user || !sid || exp < 0 || exp > 999999999999999999LL || sodium_init() < 0)
        return -1;
    size_t ulen = strlen(user);
    if (!proto_valid_user(user, ulen) || !token_valid_sid(sid, strlen(sid))) return -1;

    char body[TOKEN_MAX];
    int blen = snprintf(body, sizeof body, "%s:%s:%lld", user, sid, (long long)exp);
    if (blen < 0 || (size_t)blen + 1 + TOKEN_SIG_HEX + 1 > size) return -1;

    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    token_sign(secret, body, (size_t)blen, mac);
    memcpy(out, body, (size_t)blen);
    out[blen] = ':';
    sodium_bin2hex(out + blen + 1, TOKEN_SIG_HEX + 1, mac, sizeof mac);
    return blen + 1 + TOKEN_SIG_HEX;
}

token_status token_verify(const char *secret, const char *tok, size_t len, int64_t now, char *user,
                          char *sid, int64_t *exp)
{
    if (!secret || !tok || len >= TOKEN_MAX || sodium_init() < 0) return TOKEN_MALFORMED;

    /* user ':' sid ':' exp ':' sig; sig is hex, so a fourth ':' fails the hex check. */
    const char *end = tok + len;
    const char *c1 = memchr(tok, ':', len);
    if (!c1) return TOKEN_MALFORMED;
    size_t ulen = (size_t)(c1 - tok);
    if (!proto_valid_user(tok, ulen)) return TOKEN_MALFORMED;

    const char *s = c1 + 1;
    if ((size_t)(end - s) < TOKEN_SID_LEN + 1 || !token_valid_sid(s, TOKEN_SID_LEN) ||
        s[TOKEN_SID_LEN] != ':')
        return TOKEN_MALFORMED;

    const char *e = s + TOKEN_SID_LEN + 1;
    const char *c3 = memchr(e, ':', (size_t)(end - e));
    if (!c3) return TOKEN_MALFORMED;
    size_t elen = (size_t)(c3 - e);
    if (elen < 1 || elen > 18) return TOKEN_MALFORMED; /* 18 digits cannot overflow */
    if (elen > 1 && e[0] == '0') return TOKEN_MALFORMED;
    int64_t ev = 0;
    for (size_t i = 0; i < elen; i++) {
        if (e[i] < '0' || e[i] > '9') return TOKEN_MALFORMED;
        ev = ev * 10 + (e[i] - '0');
    }

    const char *sig = c3 + 1;
    if ((size_t)(end - sig) != TOKEN_SIG_HEX || !token_hex(sig, TOKEN_SIG_HEX))
        return TOKEN_MALFORMED;

    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char hex[TOKEN_SIG_HEX + 1];
    token_sign(secret, tok, (size_t)(c3 - tok), mac);
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    if (sodium_memcmp(hex, sig, TOKEN_SIG_HEX) != 0) return TOKEN_BAD_SIG;
    if (ev <= now) return TOKEN_EXPIRED;

    if (user) {
        memcpy(user, tok, ulen);
        user[ulen] = '\0';
    }
    if (sid) {
        memcpy(sid, s, TOKEN_SID_LEN);
        sid[TOKEN_SID_LEN] = '\0';
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
