/* presence.h - who follows whose presence on this gateway.
 *
 * Each local session follows the presence of its contacts (from hello, plus
 * whoever it exchanges texts with, plus the members of its groups). The
 * gateway holds one SUBSCRIBE parley:presence:NAME per followed NAME,
 * refcounted by the sessions following it, and forwards each online/offline
 * frame published there to every following session that is live. A session
 * never follows its own user. In "everyone" mode (hello listed every user)
 * a user who registers later is followed too (parley:users:new).
 *
 * Per-session state (struct presence_sess) is allocated at the first follow
 * and freed by presence_unfollow_all at the session's close. */
#ifndef PARLEY_GW_PRESENCE_H
#define PARLEY_GW_PRESENCE_H

#include <stddef.h>

#include "session.h"

/* everyone_limit: --everyone-limit (the most users for "everyone" mode). */
void presence_init(long long everyone_limit);
void presence_free(void);

/* s follows name, whose state s was told (1 online, 0 offline, -1 unknown). */
void presence_follow_known(gw_session *s, const char *name, size_t len, int online);
/* A contact learned from a frame: s gets its current state at once. */
void presence_follow(gw_session *s, const char *name, size_t len);
/* s's hello listed every user: newcomers are followed too. */
void presence_set_everyone(gw_session *s);
/* s is closing: drops every follow (lazily unsubscribed, see presence_sweep). */
void presence_unfollow_all(gw_session *s);

/* A new subscriber connection: SUBSCRIBE parley:users:new and every
 * followed name again. */
void presence_on_subscriber_up(void);
/* Unsubscribes channels nobody followed for a whole sweep period (run with
 * the heartbeat). */
void presence_sweep(void);

#endif
