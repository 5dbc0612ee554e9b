/* auth.h - who an HTTP request or WebSocket upgrade is for.
 *
 * A valid token (token.h) from the parley_token cookie, an Authorization:
 * Bearer header (when allowed), or the ?token= query argument, whose session
 * is not revoked (revset.h: memory only, no Redis); with --dev-auth, an
 * upgrade may instead name its user as /ws?user=NAME. */
#ifndef PARLEY_GW_AUTH_H
#define PARLEY_GW_AUTH_H

struct lws;

#include <stdint.h>

#define AUTH_COOKIE "parley_token"

/* secret is kept (not copied): it lives as long as the options. */
void auth_init(const char *secret, int dev_auth);
/* 0 and user filled (size >= PROTO_NAME_MAX + 1), or -1. */
int auth_token_user(struct lws *wsi, char *user, int allow_bearer);
/* The same, with the token's session id (size >= TOKEN_SID_LEN + 1) and
 * expiry (Unix seconds; exp may be NULL). */
int auth_token(struct lws *wsi, char *user, char *sid, int64_t *exp, int allow_bearer);
/* The upgrade's user and session id: a token, else (--dev-auth) ?user=NAME,
 * which sets *dev_account (the account may have to be made) and sid "". 0,
 * or -1. */
int auth_ws_user(struct lws *wsi, char *user, char *sid, int *dev_account);

#endif
