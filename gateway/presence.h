/* presence.h - who follows whose presence on this gateway.
 *
 * Each local session follows the presence of its contacts (from hello, plus
 * whoever it exchanges texts with, plus the members of its groups), except
 * those in a block with its user (either way): their frames are dropped. The
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

/* s follows name, whose state s was told (1 online, 0 offline, -1 unknown);
 * hidden: 1 when a block (either way) hides name's presence from s, 0 when
 * not, -1 unknown (asked before name's next presence frame is forwarded). */
void presence_follow_known(gw_session *s, const char *name, size_t len, int online, int hidden);
/* A contact learned from a frame: s gets its current state at once (unless
 * a block hides it). */
void presence_follow(gw_session *s, const char *name, size_t len);
/* A block began (hide 1) or ended (0) between s's user and name ({t:"h"}):
 * name's presence frames stop or start at once; s is told name is offline
 * when it was shown online, and its current state when shown again. */
void presence_hide(gw_session *s, const char *name, size_t len, int hide);
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
