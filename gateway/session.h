/* session.h - one WebSocket session: its identity, the table of sessions
 * (by connection id, and each user's list), and the write side (bounded
 * queue, replay backlog, end-of-turn writes, the closing handshake).
 *
 * This is the lowest gateway layer after the Redis link: every layer above
 * (delivery, presence, frame handlers, the open/close sequence, the
 * transport) finds sessions and writes frames through it; it calls none of
 * them.
 *
 * Life of a gw_session: made by sess_new() when a socket is upgraded (the
 * transport, via lifecycle.c), freed by sess_free() after the socket closed
 * (lifecycle_closed). Redis callbacks never keep a session pointer: they
 * carry its connection id and look it up (sess_find), so a reply arriving
 * after the close finds nothing and is dropped. Module state (struct
 * deliver_sess, presence_sess, lifecycle_sess) is allocated and freed by
 * its module; this file only holds the pointers. */
#ifndef PARLEY_GW_SESSION_H
#define PARLEY_GW_SESSION_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "pending.h"
#include "proto.h"
#include "sendq.h"
#include "token.h"

struct lws;

typedef enum {
    SESS_OPENING = 0, /* upgraded; session_open/contacts in flight; rx paused */
    SESS_LIVE,        /* hello sent */
    SESS_CLOSING,     /* a close was requested; waiting for the writable callback */
} sess_state;

#define SESS_ID_MAX (PROTO_GWID_MAX + 1 + 20 + 1) /* gwid#conn */

typedef struct gw_session {
    struct lws *wsi; /* NULL once the socket closed */
    uint64_t conn;   /* this gateway's connection id: 1, 2, ... */
    char user[PROTO_NAME_MAX + 1];
    char sessid[SESS_ID_MAX];             /* gwid#conn: in parley:{u:NAME}:sessions */
    char member[PROTO_NAME_MAX + 1 + 21]; /* user#conn: in parley:gw:ID:sessions */
    char login[TOKEN_SID_LEN + 1];        /* the signed-in session its token names ("": dev) */
    sess_state state;
    struct gw_session *next_of_user; /* this user's other local sessions */
    UT_hash_handle hh;               /* the table by conn */

    /* inbox position (deliver.c, lifecycle.c, frame_sync.c) */
    int64_t last_seq; /* highest inbox seq sent to this session */
    char epoch[PROTO_EPOCH_MAX + 1];

    /* rate limit and bad-frame logging (frames.c) */
    double tokens;
    uint64_t bucket_ms;
    int logged_bad;

    pending_texts texts; /* texts not answered yet (pending.h) */

    /* the write side (session.c) */
    sendq q; /* the wire queue, bounded by --send-queue */
    /* Replays (offline push, sync, gap fetch) can be far bigger than the send
     * queue: they wait here and are moved into q as it drains. While it is
     * not empty every other frame queues behind them, so order holds; those
     * live frames (backlog_live bytes) count against the bound. */
    sendq backlog;
    size_t backlog_live;
    int flush_queued;      /* in the end-of-turn list */
    int close_code;        /* nonzero: close with this code at the next writable */
    char close_reason[64]; /* its reason */
    int close_after_flush; /* close once q is empty (1007 after an error frame) */
    int close_started;     /* close frame handed to lws */
    int want_drained;      /* call the drained hook once the replay has drained */

    /* module state, owned by each module */
    struct deliver_sess *dl;
    struct presence_sess *pr;
    struct lifecycle_sess *lc;
} gw_session;

/* base: the loop of the end-of-turn writes; send_queue: --send-queue bytes. */
int sess_init(struct event_base *base, size_t send_queue);
void sess_free_all(void); /* teardown: the write list (sessions are freed at close) */

/* A new session of user on wsi with the next connection id, in the table.
 * NULL when out of memory. */
gw_session *sess_new(struct lws *wsi, const char *user, const char *gwid);
/* Takes s out of the table (the socket closed). */
void sess_remove(gw_session *s);
/* Frees s and its write side; module state must be gone already. */
void sess_free(gw_session *s);

gw_session *sess_find(uint64_t conn);
/* The first local session of user (then next_of_user), or NULL. */
gw_session *sess_of_user(const char *user, size_t len);
size_t sess_count(void);
/* Calls fn for every session; fn may close sessions but not free them. */
void sess_each(void (*fn)(gw_session *s, void *arg), void *arg);

/* Queues a frame (a copy); a reader whose queue would pass --send-queue is
 * cut off (close 1008 "slow consumer"). Written at the end of this loop
 * turn. Nothing once a close was requested (unless close_after_flush). */
void sess_send(gw_session *s, const char *frame, size_t len);
/* A replayed inbox entry: paced through the backlog, never cut off for size
 * (its total is bounded by what one Redis reply held: one page). */
void sess_send_replay(gw_session *s, const char *frame, size_t len);
/* Back-pressure for paged replays: once the backlog is empty and the wire
 * queue holds at most half of --send-queue (the pump's mark), the drained
 * hook is called once for s (from the end-of-turn write or the writable
 * callback, never from inside this call). A reader that does not read
 * never reaches the mark: no further page is fetched for it. */
void sess_when_drained(gw_session *s);
/* The hook (main.c sets it: the delivery layer fetches the next page). */
void sess_set_drained_hook(void (*fn)(gw_session *s));
/* An error frame (proto_enc_error); cid may be NULL. */
void sess_send_error(gw_session *s, const char *code, const char *message, const proto_str *cid);
/* Packs with sb's contents sent and sb destroyed. */
void sess_send_packed(gw_session *s, msgpack_sbuffer *sb);
/* Requests the closing handshake with code and reason (first request wins). */
void sess_close(gw_session *s, int code, const char *reason);
/* Requests a close on every session (drain). */
void sess_close_all(int code, const char *reason);

/* lws says the socket is writable: writes what is queued, or the close
 * frame. Returns the lws callback's return value. */
int sess_on_writable(gw_session *s);

#endif
