/* revoke.h - revoked signed-in sessions reach every gateway: their tokens are
 * refused from memory (revset.h) and their sockets closed 4001.
 *
 * The authority is Redis: login_revoke.lua / login_create.lua delete the
 * session's record, add "USER SID" to parley:revoked (score: the token's
 * expiry) and publish "USER SID EXP" on parley:sessions:revoked. This module
 * subscribes to that channel; each announcement enters the sid in the set and
 * closes this gateway's sockets of that session (REVOKE_CLOSE_CODE).
 * After each (re)subscription (a start, a lost subscriber, a Redis restart)
 * the whole zset is read again (ZSCAN, pages of REVOKE_PAGE) and the local
 * sockets of what it holds are closed: whatever was announced while this
 * gateway was not listening is caught up. What is still missed (a socket
 * whose revocation came during the read) is refused by session_open at the
 * socket's open or re-open (4001). A failed read is retried after 1 s. The
 * first whole read after start makes the gateway ready (revset_loaded). */
#ifndef PARLEY_GW_REVOKE_H
#define PARLEY_GW_REVOKE_H

#include <event2/event.h>

#include "session.h"

#define REVOKE_PAGE         1000 /* zset entries per ZSCAN call */
#define REVOKE_CLOSE_CODE   4001 /* a socket of a revoked session (and session_open's -1) */
#define REVOKE_CLOSE_REASON "session revoked"

/* 0, or -1 when the retry timer cannot be made. */
int revoke_init(struct event_base *base);
void revoke_free(void);

/* A new subscriber connection: SUBSCRIBE parley:sessions:revoked (its
 * confirmation starts the read). */
void revoke_on_subscriber_up(void);
/* A new command connection: a read that could not go on goes on now. */
void revoke_on_commands_up(void);
/* A login_revoke.lua reply {n, sid, exp, ...} of user's sessions: the ids it
 * entered as revoked go into the set and this gateway's sockets of them are
 * closed at once (the announcement comes back later). n, or -1 when rep is
 * not such a reply (an error, a lost connection). */
struct redisReply;
long long revoke_reply(const char *user, const struct redisReply *rep);
/* Closes s with REVOKE_CLOSE_CODE (also while it is still opening). */
void revoke_close(gw_session *s);
#endif
