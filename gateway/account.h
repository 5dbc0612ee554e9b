/* account.h - the account routes of the HTTP API: POST /api/register,
 * /api/login, /api/logout and /api/password (docs/protocol.md; errors in
 * gateway/README.md). A token answer is {"username", "token"} plus the
 * parley_token cookie, for a new signed-in session (login_create.lua) made
 * before it is written: 403 account_disabled when the account is disabled. */
#ifndef PARLEY_GW_ACCOUNT_H
#define PARLEY_GW_ACCOUNT_H

#include "req.h"

/* secret is kept (it lives as long as the options); token_ttl in seconds;
 * user_logins: --user-logins, the signed-in sessions a user keeps (the
 * oldest are revoked past it); login_rate per login_window seconds: the
 * signed-in sessions made per user (--user-login-rate: more are answered 429
 * rate_limited with Retry-After; 0: no limit). */
void account_init(const char *secret, long long token_ttl, long long user_logins,
                  long long login_rate, long long login_window);
/* Each takes the complete body in h and answers through h (req.h). */
void account_register(gw_req *h);
void account_login(gw_req *h);
/* Revokes the session of the token presented (cookie or Bearer; none, or a
 * revoked one: nothing to revoke), 204 with the cookie cleared. */
void account_logout(gw_req *h);
/* {"old_password","new_password"} for the token presented (401 without
 * one): the old one checked (401 bad_credentials), the new one hashed (400
 * invalid_password), set, every session of the user revoked and a new one
 * answered (200, a token answer). */
void account_password(gw_req *h);

/* The Set-Cookie value that clears the token cookie (with "; Secure" under
 * --cookie-secure, like the cookie it clears); a static string. */
const char *account_cookie_clear(void);

struct redisAsyncContext;
/* The login_revoke reply of a logout (one session, or all of the user's):
 * the revoked ids entered here at once (revoke_reply), then 204 and the
 * clearing cookie, or 503. priv: the gw_req, whose reference it drops. */
void account_signed_out_cb(struct redisAsyncContext *ac, void *r, void *priv);

#endif
