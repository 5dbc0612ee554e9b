/* token.h - signed, expiring session tokens.
 *
 * A token is "<user>:<exp>:<sig>" where exp is Unix seconds and sig is the
 * lowercase hex HMAC-SHA256 (libsodium) of "<user>:<exp>" under the shared
 * secret. Any gateway verifies a token without Redis. ':' cannot appear in a
 * user name, so the token splits unambiguously. */
#ifndef PARLEY_TOKEN_H
#define PARLEY_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_MAX 128 /* 32 + 1 + 20 + 1 + 64 + NUL fits */

/* The secret the gateway, the CLI and parley-bench use when none is given
 * (--secret / PARLEY_SECRET unset or empty): published, so for a laptop
 * only. Written here and nowhere else. */
#define TOKEN_DEV_SECRET "parley-local-only-secret-do-not-deploy"

typedef enum {
    TOKEN_OK = 0,
    TOKEN_MALFORMED, /* not user:exp:hex64, or bad user name */
    TOKEN_BAD_SIG,   /* signature does not match (forged) */
    TOKEN_EXPIRED,   /* exp <= now */
} token_status;

/* Writes the token into out (size >= TOKEN_MAX). Returns its length or -1. */
int token_mint(const char *secret, const char *user, int64_t exp, char *out, size_t size);

/* Verifies tok[0..len). On TOKEN_OK copies the user (NUL-terminated) into user
 * (size >= 33) and the expiry into *exp (may be NULL). Constant-time compare. */
token_status token_verify(const char *secret, const char *tok, size_t len, int64_t now, char *user,
                          int64_t *exp);

const char *token_status_str(token_status st);

#endif
