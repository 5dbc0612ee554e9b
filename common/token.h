/* token.h - signed, expiring tokens, each naming one server-side session.
 *
 * A token is "<user>:<sid>:<exp>:<sig>" where sid is the session's id (32
 * lowercase hex digits: 16 random bytes), exp is Unix seconds and sig is the
 * lowercase hex HMAC-SHA256 (libsodium) of "<user>:<sid>:<exp>" under the
 * shared secret. Any gateway checks the signature and expiry without Redis;
 * whether the session still exists (it was not revoked) is the gateway's
 * revocation set (gateway/revset.h) and session_open.lua. ':' cannot appear
 * in a user name, so the token splits unambiguously. */
#ifndef PARLEY_TOKEN_H
#define PARLEY_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_SID_LEN 32  /* hex digits of a session id */
#define TOKEN_MAX     176 /* 32 + 1 + 32 + 1 + 18 + 1 + 64 + NUL fits */

/* The secret the gateway, the CLI and parley-bench use when none is given
 * (--secret / PARLEY_SECRET unset or empty): published, so for a laptop
 * only. Written here and nowhere else. */
#define TOKEN_DEV_SECRET "parley-local-only-secret-do-not-deploy"

typedef enum {
    TOKEN_OK = 0,
    TOKEN_MALFORMED, /* not user:sid:exp:hex64, or bad user name */
    TOKEN_BAD_SIG,   /* signature does not match (forged) */
    TOKEN_EXPIRED,   /* exp <= now */
} token_status;

/* A new random session id (libsodium) into sid (TOKEN_SID_LEN + 1 bytes).
 * 0, or -1 when libsodium cannot start. */
int token_new_sid(char *sid);
/* The session id of user's "bulk" session (parley bulk-users makes it,
 * parley-bench and tests mint tokens for it): the first TOKEN_SID_LEN hex
 * digits of HMAC-SHA256("bulk-session:" user) under the secret, so whoever
 * holds the secret can name it and nobody else can. 0, or -1. */
int token_bulk_sid(const char *secret, const char *user, char *sid);
/* 1 when s[0..len) is a session id (TOKEN_SID_LEN lowercase hex digits). */
int token_valid_sid(const char *s, size_t len);

/* Writes the token of session sid of user into out (size >= TOKEN_MAX).
 * Returns its length or -1. */
int token_mint(const char *secret, const char *user, const char *sid, int64_t exp, char *out,
               size_t size);

/* Verifies tok[0..len). On TOKEN_OK copies the user (NUL-terminated) into user
 * (size >= 33), the session id into sid (size >= TOKEN_SID_LEN + 1) and the
 * expiry into *exp (each may be NULL). Constant-time compare. */
token_status token_verify(const char *secret, const char *tok, size_t len, int64_t now, char *user,
                          char *sid, int64_t *exp);

const char *token_status_str(token_status st);

#endif
