/* deliver.h - router and script envelopes (parley:gw:ID) to local sessions,
 * in inbox order.
 *
 * Each session tracks last_seq, the highest inbox seq it was sent. An
 * envelope with seq s is sent when s == last_seq + 1, skipped when s <=
 * last_seq (an entry the session already had, e.g. in the offline push or a
 * sync), and when s > last_seq + 1 the missing entries are first fetched
 * with the `sync` script, one bounded page at a time (--page-entries,
 * --page-bytes): the next page is fetched only once the previous one drained
 * from the session's queues (sess_when_drained). Acks ('c' envelopes) carry the seq of the sender's
 * own inbox copy: they advance last_seq the same way but are always sent,
 * and the fetched copy of that entry is never sent as a text to the session
 * that wrote it. Until hello is out (OPENING) and while a fetch is in
 * flight (or a client's sync is under way), envelopes wait in the session's
 * queue, bounded like the send queue (over it: close 1008). Every frame sent teaches the session's
 * contacts (presence.h).
 *
 * Per-session state (struct deliver_sess) is allocated when first needed
 * and freed by deliver_detach at the session's close. */
#ifndef PARLEY_GW_DELIVER_H
#define PARLEY_GW_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

/* How an envelope reached the session: its user's (or a multi-user)
 * delivery, or addressed to this connection (acks, answers). */
typedef enum { DQ_PLAIN = 0, DQ_USER, DQ_CONN } dq_kind;

/* gw_chan: this gateway's channel; send_queue: --send-queue bytes;
 * page_entries, page_bytes: the bounds of one page of the sync script. */
void deliver_init(const char *gw_chan, size_t send_queue, int64_t page_entries, int64_t page_bytes);
/* A new subscriber connection: SUBSCRIBE the gateway channel (its
 * confirmation completes rl_ok()). */
void deliver_on_subscriber_up(void);

/* An envelope's frame for s with inbox seq (0: none): sent, skipped, or
 * queued behind a fetch or hello. */
void deliver_push(gw_session *s, dq_kind kind, int64_t seq, const char *frame, size_t len);
/* Sends what waits, once s is live and no fetch is in flight. */
void deliver_drain(gw_session *s);
/* Sends one frame now and learns contacts from it. */
void deliver_send(gw_session *s, dq_kind kind, const char *frame, size_t len);
/* The same for an entry of a replay (paced through the session's backlog). */
void deliver_send_replay(gw_session *s, const char *frame, size_t len);
/* Makes sure every entry below target reaches s: fetches (last_seq, ...]
 * with the sync script when last_seq < target - 1. */
void deliver_catch_up(gw_session *s, int64_t target);
/* A client's `sync {after, epoch}`: the entries after `after`, page by page
 * as the session drains, then {kind:"sync", recovered, seq}; envelopes wait
 * behind it, so seq order holds. One more sync may wait for the current one
 * (or a gap fetch); 0 when started or queued, -2 when one already waits
 * (the caller answers rate_limited), -1 when Redis is down. */
int deliver_sync(gw_session *s, int64_t after, const char *epoch);
/* The session's replay drained (session.h's drained hook): the next page. */
void deliver_on_drained(gw_session *s);
/* Forgets a fetch in flight (its connection is gone: the re-open fetches; a
 * client's sync in flight is answered `unavailable`). */
void deliver_forget_fetch(gw_session *s);
/* s is closing: frees what waits and the module state. */
void deliver_detach(gw_session *s);

#endif
