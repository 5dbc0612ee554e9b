/* rtq.h - texts on their way to the routers, batched per routing slot.
 *
 * The texts that arrive in one turn of the event loop are packed per slot
 * and published at the end of the turn: one PUBLISH on parley:rt:N carries
 * every envelope for slot N, one after the other (docs/internals.md). Under
 * load that is one Redis command, one fan-out and one socket write for many
 * messages; an idle gateway still publishes each text at once.
 *
 * PUBLISH answers how many routers got the payload: 0 (no router owns the
 * slot right now) or an error means none of its texts was stored, and each
 * sender still connected gets `error unavailable` with its cid. On a Redis
 * Cluster the count is one node's subscribers only: a 0 there is followed
 * by EXISTS on the slot's lease (parley:slot:N), and only a lease nobody
 * holds (or a failed check) refuses the payload. A payload
 * whose connection dropped unanswered may or may not have reached a router:
 * no answer, the clients retry with their cids (protocol.md). */
#ifndef PARLEY_GW_RTQ_H
#define PARLEY_GW_RTQ_H

#include <event2/event.h>
#include <stddef.h>

#include "bus.h"
#include "session.h"

int rtq_init(struct event_base *base);
void rtq_free(void);
/* Queues a text for slot's router: 0, or -1 when out of memory. */
int rtq_add(unsigned slot, const bus_text *m);
/* Publishes everything queued now (before the link closes). */
void rtq_flush(void);
/* Tells the sender of a text that was not stored: error unavailable with
 * the cid (retry later with the same cid); forgets the pending text. */
void rtq_refuse_text(gw_session *s, const char *cid, size_t cid_len);

#endif
