/* secret.h - where the token secret comes from, and whether it may be used.
 *
 * The gateway and the admin CLI take the token HMAC secret from --secret
 * (PARLEY_SECRET) or from a file (--secret-file, PARLEY_SECRET_FILE: the
 * compose stack and deploy/run.sh generate one). Without either they fall back
 * to TOKEN_DEV_SECRET (token.h), which is public. A process that others can
 * reach (a gateway listening beyond loopback, the CLI talking to a Redis
 * beyond loopback) refuses that default, an empty secret and one shorter than
 * SECRET_MIN_BYTES: anyone could mint tokens for any user. On loopback those
 * are allowed with a warning (a laptop, the tests). */
#ifndef PARLEY_SECRET_H
#define PARLEY_SECRET_H

#include <stddef.h>

#define SECRET_MIN_BYTES 32   /* `openssl rand -hex 32` gives 64 */
#define SECRET_FILE_MAX  4096 /* bytes read from --secret-file, at most */

typedef struct secret {
    const char *value; /* the secret in use: the flag's string, buf, or TOKEN_DEV_SECRET */
    int is_default;    /* value is TOKEN_DEV_SECRET (nothing given, or an empty value) */
    char buf[SECRET_FILE_MAX + 1];
} secret;

/* Resolves the secret: `given` (--secret) when non-empty, else the contents
 * of `file` (--secret-file; trailing whitespace and newlines dropped) when
 * non-NULL and non-empty, else TOKEN_DEV_SECRET. `exposed`: the process is
 * reachable beyond loopback (secret_addr_is_loopback). Returns 0; or -1 with a
 * one-line reason in err (an unreadable or oversize file; exposed with the
 * default, an empty or a short secret). `warn` (may be NULL) gets a one-line
 * warning, or "", for a loopback process using the default or a short one. */
int secret_resolve(secret *s, const char *given, const char *file, int exposed, char *err,
                   size_t errlen, char *warn, size_t warnlen);

/* 1 when addr is a loopback address or name: 127.0.0.0/8, ::1, "localhost";
 * 0 otherwise (0.0.0.0, ::, "", any other address or host name). */
int secret_addr_is_loopback(const char *addr);

#endif
