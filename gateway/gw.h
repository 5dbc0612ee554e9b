/* gw.h - the gateway's shared state: one gw_server per process, one
 * gw_session per WebSocket, one gw_http per HTTP request in flight.
 *
 * Everything runs on one libevent loop (lws as a foreign loop, hiredis through
 * its libevent adapter); only pwpool.c owns a second thread, and it touches
 * nothing here but its own queues.
 *
 * Lifetimes, written down once:
 * - gw_server lives for the whole process (main.c).
 * - gw_session is malloc'd at LWS_CALLBACK_ESTABLISHED and freed at
 *   LWS_CALLBACK_CLOSED. Redis callbacks never hold a session pointer: they
 *   carry its connection id and look it up (ws_session_find), so a reply that
 *   arrives after the socket closed finds nothing and is dropped.
 * - gw_http is malloc'd when a request needs async work (Redis, pwpool) and is
 *   refcounted: one reference for the lws connection (dropped at
 *   LWS_CALLBACK_CLOSED_HTTP, which also clears wsi) and one per pending
 *   operation. */
#ifndef PARLEY_GW_H
#define PARLEY_GW_H

#include <event2/event.h>
#include <hiredis/async.h>
#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "keys.h"
#include "proto.h"
#include "redisurl.h"
#include "strmap.h"
#include "token.h"

/* ---- configuration (flags of docs/internals.md) ---- */
typedef struct gw_config {
    const char *listen;
    long long port;
    const char *id;
    const char *redis_url;
    const char *secret;
    long long token_ttl;
    long long max_frame;
    long long send_queue;
    long long ping_interval;
    long long heartbeat_ttl;
    long long rate;
    long long burst;
    long long everyone_limit;
    long long group_max;
    const char *web_root;
    long long drain_timeout;
    int dev_auth;
    const char *log_level;
} gw_config;

/* ---- send queue (sendq.c) ---- */
typedef struct sendq_item {
    struct sendq_item *next;
    size_t len;
    int live;            /* in a backlog: a live frame queued behind a replay */
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then len bytes of frame */
} sendq_item;

typedef struct sendq {
    sendq_item *head, *tail;
    size_t bytes;
    size_t count;
} sendq;

/* ---- deliveries waiting for the session to be ready (deliver.c) ---- */
typedef enum { DQ_PLAIN = 0, DQ_USER, DQ_CONN } dq_kind;

typedef struct dq_item {
    struct dq_item *next;
    dq_kind kind;
    int64_t seq; /* 0: no seq */
    size_t len;
    char frame[];
} dq_item;

/* a text sent by this session and not acked yet: cid -> recipient */
typedef struct gw_pending_text {
    struct gw_pending_text *next;
    char cid[PROTO_CID_MAX + 1];
    char to[PROTO_NAME_MAX + 2];
} gw_pending_text;

typedef enum {
    SESS_OPENING = 0, /* upgraded; session_open/contacts in flight; rx paused */
    SESS_LIVE,        /* hello sent */
    SESS_CLOSING,     /* a close was requested; waiting for the writable callback */
} gw_session_state;

#define GW_SESSID_MAX (64 + 1 + 20 + 1)

typedef struct gw_session {
    struct gw_server *g;
    struct lws *wsi;
    uint64_t conn;
    char user[PROTO_NAME_MAX + 1];
    char sessid[GW_SESSID_MAX];           /* gwid#conn */
    char member[PROTO_NAME_MAX + 1 + 21]; /* user#conn */
    gw_session_state state;
    struct gw_session *next_of_user; /* list of this user's local sessions */
    int flush_queued;                /* in g->flushq: written at the end of this turn */

    int everyone; /* hello listed every user: newcomers become contacts too */

    /* inbox position */
    int64_t last_seq; /* highest inbox seq sent to this session */
    char epoch[PROTO_EPOCH_MAX + 1];
    int opened;    /* session_open answered at least once */
    int reopening; /* session_open re-run after a Redis reconnect */

    /* hello in the making */
    int64_t open_seq;
    char **pending; /* offline entries from session_open */
    size_t *pending_len;
    size_t npending;

    /* deliveries waiting for hello or for a gap fetch */
    dq_item *dq_head, *dq_tail;
    size_t dq_bytes;
    int fetching; /* a gap fetch (sync script) is in flight */
    int64_t fetch_target;

    /* presence: the names this session follows (presence.c) */
    struct presence_follow *follows; /* in the order followed */
    uint32_t nfollows, capfollows;
    uint32_t *follow_set;    /* open addressing on the entry: follows index + 1, 0 empty */
    uint32_t follow_set_cap; /* a power of two, 0 before the first follow */
    gw_pending_text *texts;
    int ntexts;

    /* incoming frame assembly */
    char *rx;
    size_t rx_len, rx_cap;
    int rx_skip; /* the current message is being refused */

    /* token bucket */
    double tokens;
    uint64_t bucket_ms;

    sendq q; /* the wire queue, bounded by --send-queue */
    /* Replays (offline push, sync, gap fetch) can be far bigger than the send
     * queue: they wait here and are moved into q as it drains (ws_pump).
     * While it is not empty every other frame queues behind them, so order
     * holds; those live frames (backlog_live bytes) count against the bound. */
    sendq backlog;
    size_t backlog_live;
    int close_code; /* nonzero: close with this code at the next writable */
    char close_reason[64];
    int close_after_flush; /* close once q is empty (1007 after an error frame) */
    int close_started;     /* close frame handed to lws */
    int logged_bad;
} gw_session;

/* ---- HTTP request state (http_api.c) ---- */
#define GW_BODY_MAX 8192

typedef struct gw_http {
    struct gw_server *g;
    struct lws *wsi; /* NULL once the connection closed */
    int refs;
    int route;
    char body[GW_BODY_MAX];
    size_t body_len;
    int too_large;
    /* the answer, once known */
    int status;
    const char *ctype;
    char *resp;
    size_t resp_len;
    char cookie[TOKEN_MAX + 128];
    int has_answer;
    int sent;
    /* login / register in progress */
    char user[PROTO_NAME_MAX + 1];
    char *password;
    size_t password_len;
    char hash[128];
    int ok;
} gw_http;

/* per-connection storage handed to lws */
typedef struct gw_pss {
    gw_session *s;
    gw_http *h;
    int is_ws;
} gw_pss;

/* ---- metrics (metrics.c) ---- */
typedef struct gw_metrics {
    uint64_t connections_total;
    uint64_t frames_in;
    uint64_t frames_out;
    uint64_t messages_published;
    uint64_t unavailable;
    uint64_t slow_consumers;
    uint64_t bad_frames;
    uint64_t rate_limited;
    uint64_t http_requests;
    uint64_t redis_reconnects;
    uint64_t heartbeat_lapses;
} gw_metrics;

/* ---- Redis link (redis_link.c) ---- */
typedef struct rl_conn {
    struct gw_server *g;
    redisAsyncContext *ac;
    int up; /* connected and ready */
    int connecting;
    uint32_t backoff_ms;
    struct event *retry;
    const char *name; /* "commands" / "subscriber" */
} rl_conn;

/* ---- texts to the routers, batched per slot (rtq.c) ---- */
typedef struct rtq_batch rtq_batch;
typedef struct rtq_slot {
    msgpack_sbuffer sb; /* envelopes, one after the other */
    rtq_batch *batch;   /* their senders; NULL when empty */
} rtq_slot;

typedef struct gw_server {
    gw_config cfg;
    redisurl rurl;
    char gwid[65];
    char gw_chan[KEYS_MAX];
    struct event_base *base;
    struct lws_context *ctx;
    struct event *sig_term, *sig_int;

    rl_conn cmd, sub;
    struct event *beat;
    uint64_t beat_sent_ms;   /* oldest heartbeat not answered yet, 0 if none */
    int beat_known;          /* a heartbeat was answered on this command connection */
    int beat_lapsed;         /* the last one found the alive key gone */
    struct event *dup_timer; /* start-up check that no live gateway has our id */
    long long dup_pttl, dup_wait;
    int ready;     /* leftover sessions closed: /ws is served */
    int cleaning;  /* startup cleanup in flight */
    int ever_up;   /* both connections were usable at least once */
    int sub_ready; /* SUBSCRIBE of the gateway channel confirmed */

    uint64_t next_conn;
    strmap sessions_by_user; /* name -> gw_session* (list head) */
    strmap sessions_by_conn; /* decimal conn id -> gw_session* */
    size_t nsessions;
    size_t nhttp;    /* HTTP requests waiting for Redis or the password pool */
    size_t nws;      /* upgraded sockets not yet destroyed (a closed session's
                      * socket lives on until its close handshake ends) */
    strmap presence; /* name -> presence_entry* */

    /* sessions with frames queued in this loop turn (ws_session.c) */
    uint64_t *flushq; /* their conn ids */
    size_t nflush, flushcap;
    struct event *flush_ev;

    rtq_slot rtq[PARLEY_SLOTS];
    uint64_t rtq_dirty;   /* slots with texts waiting */
    struct event *rtq_ev; /* publishes them at the end of this loop turn */

    int draining;
    int drain_pending; /* session_close / final replies outstanding */
    int finishing;
    struct event *drain_timer;
    int exit_code;

    gw_metrics m;
} gw_server;

/* ---- main.c ---- */
uint64_t gw_now_ms(void);
void gw_drain_check(gw_server *g);
void gw_fatal(gw_server *g); /* stop with exit code 1 */

/* ---- redis_link.c ---- */
/* both connections usable and the gateway channel subscribed */
int rl_ok(gw_server *g);
int rl_start(gw_server *g);
void rl_stop(gw_server *g);
void rl_free(gw_server *g);
int rl_cmd_argv(gw_server *g, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                const size_t *argvlen);
int rl_eval(gw_server *g, int script, redisCallbackFn *cb, void *priv, int nkeys, int nargs,
            const char **argv, const size_t *argvlen);
void rl_subscribe(gw_server *g, const char *chan);
void rl_unsubscribe(gw_server *g, const char *chan);
int rl_reply_int(const struct redisReply *r, long long *out);

/* ---- ws_session.c ---- */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, gw_pss *pss, void *in,
                size_t len);
gw_session *ws_session_find(gw_server *g, uint64_t conn);
gw_session *ws_sessions_of(gw_server *g, const char *user);
void ws_send(gw_session *s, const char *frame, size_t len);
void ws_send_replay(gw_session *s, const char *frame, size_t len);
void ws_close(gw_session *s, int code, const char *reason);
int ws_forget_text(gw_session *s, const char *cid, size_t len, char *to);
/* error unavailable to the sender of a text that was not stored */
void ws_unavailable(gw_session *s, const char *cid, size_t cid_len);
void ws_on_redis_up(gw_server *g);
void ws_flush_free(gw_server *g);
void ws_close_all(gw_server *g, int code, const char *reason);
int ws_confirm_upgrade(struct lws *wsi, gw_server *g);

/* ---- rtq.c ---- */
struct bus_text;
int rtq_init(gw_server *g);
void rtq_free(gw_server *g);
/* queues a text for slot's router; -1 when out of memory */
int rtq_add(gw_server *g, unsigned slot, const struct bus_text *m);
void rtq_flush(gw_server *g); /* publish everything queued now */

/* ---- sendq.c ---- */
int sendq_push(sendq *q, const char *frame, size_t len);
/* writes queued frames until the pipe chokes; returns -1 on a write error */
int sendq_flush(sendq *q, struct lws *wsi, uint64_t *frames_out);
void sendq_clear(sendq *q);
/* moves the head item of src to the tail of dst (no copy) */
void sendq_move_head(sendq *src, sendq *dst);

/* ---- deliver.c ---- */
void deliver_envelope(gw_server *g, const char *buf, size_t len);
void deliver_push(gw_session *s, dq_kind kind, int64_t seq, const char *frame, size_t len);
void deliver_drain(gw_session *s);
void deliver_send(gw_session *s, dq_kind kind, const char *frame, size_t len);
/* the same for an entry of a replay (paced through the session's backlog) */
void deliver_send_replay(gw_session *s, const char *frame, size_t len);
void deliver_catch_up(gw_session *s, int64_t target);
void deliver_clear(gw_session *s);
int deliver_frame_fields(const char *buf, size_t len, proto_str *kind, proto_str *from,
                         proto_str *to, proto_str *cid, int64_t *seq);

/* ---- presence.c ---- */
void presence_follow(gw_session *s, const char *name, size_t len);
/* the same, knowing the state hello reported (1 online, 0 offline, -1 unknown) */
void presence_follow_known(gw_session *s, const char *name, size_t len, int online);
void presence_unfollow_all(gw_session *s);
void presence_message(gw_server *g, const char *chan, const char *buf, size_t len);
void presence_resubscribe(gw_server *g);
void presence_sweep(gw_server *g);
void presence_unsubscribed(gw_server *g, const char *chan, size_t len);
/* a user registered ("NAME COUNT" on CHAN_USERS): while COUNT is within
 * --everyone-limit, sessions whose hello listed everyone follow NAME */
void presence_new_user(gw_server *g, const char *buf, size_t len);
void presence_subscribed(gw_server *g, const char *chan, size_t len);
void presence_free(gw_server *g);

/* ---- http_api.c ---- */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, gw_pss *pss, void *in,
                  size_t len);
void http_write_simple(struct lws *wsi, int status, const char *ctype, const char *body,
                       size_t len);
int http_token_user(struct lws *wsi, gw_server *g, char *user, int allow_bearer);

/* ---- pwpool.c ---- */
typedef void pwpool_cb(void *priv, int ok, const char *hash);
int pwpool_start(gw_server *g);
void pwpool_stop(void);
/* hash (hash == NULL) or verify against hash; cb runs on the loop. Returns -1
 * when the queue is full. */
int pwpool_submit(const char *pw, size_t len, const char *hash, pwpool_cb *cb, void *priv);

/* ---- static.c ---- */
int static_serve(struct lws *wsi, gw_server *g, const char *path);

/* ---- metrics.c ---- */
size_t metrics_render(gw_server *g, char *out, size_t cap);

#endif
