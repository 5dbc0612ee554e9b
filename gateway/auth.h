/* auth.h - who an HTTP request or WebSocket upgrade is for.
 *
 * A valid token (token.h) from the parley_token cookie, an Authorization:
 * Bearer header (when allowed), or the ?token= query argument; with
 * --dev-auth, an upgrade may instead name its user as /ws?user=NAME. */
#ifndef PARLEY_GW_AUTH_H
#define PARLEY_GW_AUTH_H

struct lws;

#define AUTH_COOKIE "parley_token"

/* secret is kept (not copied): it lives as long as the options. */
void auth_init(const char *secret, int dev_auth);
/* 0 and user filled (size >= PROTO_NAME_MAX + 1), or -1. */
int auth_token_user(struct lws *wsi, char *user, int allow_bearer);
/* The upgrade's user: a token, else (--dev-auth) ?user=NAME, which sets
 * *dev_account (the account may have to be made). 0, or -1. */
int auth_ws_user(struct lws *wsi, char *user, int *dev_account);

#endif
