/* logins.h - the signed-in sessions routes of the HTTP API (docs/protocol.md,
 * "Sessions"): POST /api/logout-all, GET /api/sessions, DELETE
 * /api/sessions/ID. Each needs a token (cookie or Bearer) of a session that
 * is not revoked (else 401 unauthorized). Revocations go through
 * login_revoke.lua; this gateway refuses the revoked tokens and closes their
 * sockets at once (revoke.h), the others when the announcement reaches them. */
#ifndef PARLEY_GW_LOGINS_H
#define PARLEY_GW_LOGINS_H

#include "pss.h"
#include "req.h"

struct lws;

/* POST /api/logout-all (the body, if any, ignored): 204, cookie cleared. */
void logins_logout_all(gw_req *h);
/* GET /api/sessions: 200 [{"id","created","last_seen","agent","current"}],
 * oldest first (times in ms). The lws HTTP callback's return value. */
int logins_list(struct lws *wsi, gw_pss *pss);
/* DELETE /api/sessions/ID (id: what follows the last '/'): 204, or 404
 * not_found when the user has no such session. The lws HTTP callback's
 * return value. */
int logins_delete(struct lws *wsi, gw_pss *pss, const char *id);

#endif
