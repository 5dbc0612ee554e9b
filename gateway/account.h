/* account.h - the account routes of the HTTP API: POST /api/register,
 * /api/login and /api/logout (docs/protocol.md; errors in gateway/README.md).
 * A token answer is {"username", "token"} plus the parley_token cookie. */
#ifndef PARLEY_GW_ACCOUNT_H
#define PARLEY_GW_ACCOUNT_H

#include "req.h"

/* secret is kept (it lives as long as the options); token_ttl in seconds. */
void account_init(const char *secret, long long token_ttl);
/* Each takes the complete body in h and answers through h (req.h). */
void account_register(gw_req *h);
void account_login(gw_req *h);
void account_logout(gw_req *h);

#endif
