/* revset.h - the revoked signed-in sessions this gateway knows, in memory.
 *
 * Tokens are checked without Redis (common/token.h); whether the session a
 * token names was revoked is asked here, from memory, on every HTTP request
 * and upgrade that presents one (auth.c). Filled by revoke.c from the
 * revocation zset and channel; an entry is kept until its token would have
 * expired anyway, then swept. Entries are only ever added (a revocation is
 * never undone), so no order of loads and announcements can lose one. */
#ifndef PARLEY_GW_REVSET_H
#define PARLEY_GW_REVSET_H

#include <stddef.h>
#include <stdint.h>

/* Session id sid (token.h's TOKEN_SID_LEN hex digits) is revoked; its token
 * expires at exp_s (Unix seconds). Known ids keep the later expiry. 0, or -1
 * out of memory / not a session id. */
int revset_add(const char *sid, size_t len, int64_t exp_s);
/* 1 when sid (NUL-terminated) is revoked and its token not expired at now_s. */
int revset_has(const char *sid, int64_t now_s);
/* Readiness: 0 until revset_set_loaded, then 1 for good. Until the first
 * whole load of the revocation zset after start the set may lack revoked
 * sessions, so nothing may be accepted on a token (auth.h answers 503);
 * after a lost subscription the set is still there and only what was
 * announced meanwhile is caught up, so it stays 1 (docs/internals.md). */
int revset_loaded(void);
void revset_set_loaded(void);
/* Entries held now (a gauge). */
size_t revset_count(void);
/* Teardown. */
void revset_free(void);

#endif
