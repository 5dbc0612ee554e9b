/* sesscap.h - the per-user limit of live sessions (--user-sessions), all
 * tokens and all gateways together.
 *
 * The authority is session_open.lua: it counts the user's session set
 * atomically and refuses a session that would pass the limit (the gateway
 * then closes that socket with SESSCAP_CLOSE_CODE before hello). An upgrade
 * cannot wait for Redis (lws confirms it synchronously), so this module
 * keeps what the scripts announce on parley:sessions:limit: the users at
 * their limit ("full NAME LIMIT" from session_open, "free NAME" from
 * session_close, whoever ran it: this gateway, another, a router's reaper).
 * An upgrade of such a user, or of a user this gateway alone already holds
 * the limit of, is answered 429 before any WebSocket exists.
 *
 * Kept right across reconnects: each (re)subscription is followed by a read
 * of the whole parley:sessions:full hash (the marks the scripts keep with
 * the sets, so it survives a gateway restart and follows a Redis restart);
 * announcements that arrive meanwhile are replayed on top of it, in order.
 * While the subscriber is down or the read is pending, the set is not used
 * to refuse (it may be stale): upgrades go on to the script, which refuses
 * exactly (4029 instead of 429). A failed read is retried after 1 s. A mark
 * older than 10 s lets one upgrade through to the script, which confirms it
 * (4029) or deletes a mark left behind (sesscap.c). */
#ifndef PARLEY_GW_SESSCAP_H
#define PARLEY_GW_SESSCAP_H

#include <event2/event.h>
#include <stddef.h>

#define SESSCAP_CLOSE_CODE   4029 /* a session the script refused: over the limit */
#define SESSCAP_CLOSE_REASON "too many sessions"
#define SESSCAP_RETRY_AFTER  5 /* seconds, the 429's Retry-After */

/* limit: --user-sessions (0: no limit; then nothing is subscribed). 0, or
 * -1 when the retry timer cannot be made. */
int sesscap_init(struct event_base *base, long long limit);
void sesscap_free(void);

/* --user-sessions, for session_open. */
long long sesscap_limit(void);
/* 1 when an upgrade of user must be refused with 429: the user is known to
 * be at the limit, or this gateway holds that many of its sessions. */
int sesscap_refuse(const char *user);
/* Users known to be at their limit now (a gauge). */
size_t sesscap_full_count(void);

/* A new subscriber connection: SUBSCRIBE parley:sessions:limit (its
 * confirmation starts the read of the marks). */
void sesscap_on_subscriber_up(void);
/* A new command connection: a read that could not be sent is sent now. */
void sesscap_on_commands_up(void);

#endif
