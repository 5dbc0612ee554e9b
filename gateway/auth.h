/* auth.h - who an HTTP request or WebSocket upgrade is for.
 *
 * A valid token (token.h) from the parley_token cookie, an Authorization:
 * Bearer header (when allowed), or the ?token= query argument, whose session
 * is not revoked (revset.h: memory only, no Redis); with --dev-auth, an
 * upgrade may instead name its user as /ws?user=NAME. The cookie counts only
 * when the request's Origin is allowed (origin.h): a page of another site
 * gets the browser to send it, not to use it. */
#ifndef PARLEY_GW_AUTH_H
#define PARLEY_GW_AUTH_H

struct lws;

#include <stdint.h>

#define AUTH_COOKIE "parley_token"

/* secret is kept (not copied): it lives as long as the options. */
void auth_init(const char *secret, int dev_auth);
enum {
    AUTH_OK = 0,
    AUTH_NONE = -1,           /* no valid credential: 401 */
    AUTH_FOREIGN_ORIGIN = -2, /* none but the cookie, sent by a foreign page: 403 */
    AUTH_UNAVAILABLE = -3,    /* a valid token, but the revoked sessions are not loaded yet
                                 (revset_loaded): 503 */
};

/* AUTH_OK and user filled (size >= PROTO_NAME_MAX + 1), or AUTH_NONE /
 * AUTH_FOREIGN_ORIGIN, or AUTH_UNAVAILABLE. */
int auth_token_user(struct lws *wsi, char *user, int allow_bearer);
/* The same, with the token's session id (size >= TOKEN_SID_LEN + 1) and
 * expiry (Unix seconds; exp may be NULL). The same answers. */
int auth_token(struct lws *wsi, char *user, char *sid, int64_t *exp, int allow_bearer);
/* The upgrade's user and session id: a token, else (--dev-auth) ?user=NAME,
 * which sets *dev_account (the account may have to be made) and sid "". The
 * same answers. */
int auth_ws_user(struct lws *wsi, char *user, char *sid, int *dev_account);

/* The message of a 403 forbidden_origin answer. */
#define AUTH_FOREIGN_ORIGIN_MSG "this origin may not use the session cookie"

/* The message of a 503 unavailable answer to AUTH_UNAVAILABLE. */
#define AUTH_UNAVAILABLE_MSG "starting: revoked sessions not loaded yet, retry later"

/* The answer to a failed authentication (rc < 0 from auth_token*, auth_ws_user):
 * its status (403 forbidden_origin, 503 unavailable or 401 unauthorized), with
 * the error code and message in *code and *msg (static strings). */
int auth_refusal(int rc, const char **code, const char **msg);

/* Answers a failed authentication (auth_refusal) now, and ends the
 * transaction (req_fail_now's return). */
int auth_fail_now(struct lws *wsi, int rc);

struct gw_req;
/* The same answer stored in a request answered later (req_error). */
void auth_fail(struct gw_req *h, int rc);

#endif
