/* lifecycle.h - a session's open and close sequences.
 *
 * Open: ESTABLISHED -> OPENING (reading paused) -> session_open (registers
 * the session, reports the inbox seq and epoch, and where the offline
 * entries start when it is the user's first session) and contacts (the first
 * page of who to list in hello) -> hello -> LIVE (reading resumed), then the
 * rest of the list in `users` pages and the offline entries in sync pages,
 * each page fetched once the previous one drained, then whatever was
 * delivered meanwhile. Close: the socket is gone -> out of the table, presence
 * unfollowed, session_close (offline announced when it was the user's last
 * session), freed. Re-open: after a Redis reconnect or a lapsed heartbeat
 * every live session runs session_open again: a changed epoch, or a seq
 * lower than what the session was sent, closes it with 1012; otherwise what
 * it missed is fetched. */
#ifndef PARLEY_GW_LIFECYCLE_H
#define PARLEY_GW_LIFECYCLE_H

#include "session.h"

struct lws;

/* gwid: this gateway's id; everyone_limit: --everyone-limit; hello_entries:
 * --hello-entries (entries per hello / `users` page); preview_bytes:
 * --preview-bytes (data kept in each `last`); last_seen_ms:
 * --last-seen-interval (0: off). */
void lifecycle_init(const char *gwid, long long everyone_limit, long long hello_entries,
                    long long preview_bytes, long long last_seen_ms);
/* A socket upgraded for user (already authenticated) with the token of
 * signed-in session login ("" for --dev-auth). dev_account: the user came
 * from --dev-auth's ?user= and may need an account made. Returns the new
 * session (reading paused until hello), or NULL (refuse the socket). A login
 * that session_open finds revoked closes it REVOKE_CLOSE_CODE (revoke.h), at the
 * open and at every re-open. */
gw_session *lifecycle_open(struct lws *wsi, const char *user, const char *login, int dev_account);
/* The socket of s is closed: s is freed. */
void lifecycle_closed(gw_session *s);
/* session_close replies a drain still waits for. */
int lifecycle_closes_pending(void);
/* The session's queue drained (session.h's drained hook): the next `users`
 * page, if one waits. */
void lifecycle_on_drained(gw_session *s);
/* Every live session runs session_open again and catches up. */
void lifecycle_reopen_all(void);
/* Called often (each heartbeat): once --last-seen-interval has passed since
 * the last time, the signed-in sessions the open sockets use get their last
 * seen moved (login_touch.lua, one call per user, at most
 * LIFECYCLE_TOUCH_MAX sessions each). */
void lifecycle_touch_logins(void);
#define LIFECYCLE_TOUCH_MAX 32

#endif
