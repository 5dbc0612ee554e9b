/* lifecycle.h - a session's open and close sequences.
 *
 * Open: ESTABLISHED -> OPENING (reading paused) -> session_open (registers
 * the session, reports the inbox seq and epoch, and the offline entries when
 * it is the user's first session) and contacts (who to list in hello) ->
 * hello, the offline entries, then whatever was delivered meanwhile -> LIVE
 * (reading resumed). Close: the socket is gone -> out of the table, presence
 * unfollowed, session_close (offline announced when it was the user's last
 * session), freed. Re-open: after a Redis reconnect or a lapsed heartbeat
 * every live session runs session_open again: a changed epoch, or a seq
 * lower than what the session was sent, closes it with 1012; otherwise what
 * it missed is fetched. */
#ifndef PARLEY_GW_LIFECYCLE_H
#define PARLEY_GW_LIFECYCLE_H

#include "session.h"

struct lws;

/* gwid: this gateway's id; everyone_limit: --everyone-limit. */
void lifecycle_init(const char *gwid, long long everyone_limit);
/* A socket upgraded for user (already authenticated). dev_account: the user
 * came from --dev-auth's ?user= and may need an account made. Returns the
 * new session (reading paused until hello), or NULL (refuse the socket). */
gw_session *lifecycle_open(struct lws *wsi, const char *user, int dev_account);
/* The socket of s is closed: s is freed. */
void lifecycle_closed(gw_session *s);
/* session_close replies a drain still waits for. */
int lifecycle_closes_pending(void);
/* Every live session runs session_open again and catches up. */
void lifecycle_reopen_all(void);

#endif
