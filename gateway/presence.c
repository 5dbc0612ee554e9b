/* presence.c - presence subscriptions and forwarding (presence.h).
 *
 * Unsubscribing is lazy, because hiredis drops a channel's callback when the
 * UNSUBSCRIBE confirmation arrives: an immediate SUBSCRIBE issued before that
 * confirmation would silently lose its messages. So an entry nobody follows
 * stays for a sweep period, then is unsubscribed and kept until the
 * confirmation (presence_unsubscribed); a follower arriving meanwhile gets a
 * new SUBSCRIBE only then.
 *
 * Blocks: each follow says whether the name is hidden from the session (its
 * user and the name are in a block, either way: KEY_HIDDEN). Known from hello
 * (contacts.lua), from {t:"h"} envelopes (presence_hide, at every change),
 * or asked once (SISMEMBER) for a name learned from a frame, before the
 * first frame about it would be forwarded: O(1) per forwarded frame. */
#include "presence.h"

#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "redis_link.h"

typedef enum { PRES_SUBSCRIBED = 0, PRES_UNSUBSCRIBING } presence_sub_state;

/* One follower of an entry: the session, and where the entry sits in the
 * session's follows (so unfollowing is O(1)). */
typedef struct presence_sub {
    gw_session *s;
    uint32_t fidx;
} presence_sub;

typedef struct presence_entry {
    char name[PROTO_NAME_MAX + 1];
    presence_sub *subs; /* followers, in no order */
    size_t n, cap;
    presence_sub_state sub;
    int stale;    /* no follower at the last sweep */
    int online;   /* last state known here: 1, 0, or -1 unknown */
    uint64_t gen; /* presence messages received for this name */
    UT_hash_handle hh;
} presence_entry;

/* One name a session follows: the entry, and where the session sits in its
 * subs. A session's follows are an array plus an open-addressing set of
 * indexes keyed by the entry's address (is it followed already?): 16 bytes
 * and a few of set per followed name, which matters in large groups (a
 * 1,000-member group makes each member session follow 999 names). Names are
 * only ever added to a session, and all dropped at its close. */
typedef struct presence_follow {
    presence_entry *e;
    uint32_t sidx;
    int8_t hidden; /* presence_hidden_state */
} presence_follow_t;

/* Whether a followed name is hidden from the session. */
enum { PRES_ASKING = -2, PRES_UNKNOWN = -1, PRES_SHOWN = 0, PRES_HIDDEN = 1 };

struct presence_sess {
    presence_follow_t *follows; /* in the order followed */
    uint32_t n, cap;
    uint32_t *set;    /* open addressing on the entry: follows index + 1, 0 empty */
    uint32_t set_cap; /* a power of two, 0 before the first follow */
    int everyone;     /* hello listed every user: newcomers become contacts too */
};

static struct {
    presence_entry *entries; /* uthash by name */
    size_t n;
    long long everyone_limit;
} pres;

static void presence_chan_cb(redisAsyncContext *ac, void *r, void *priv);

void presence_init(long long everyone_limit)
{
    pres.everyone_limit = everyone_limit;
}

static presence_entry *presence_find(const char *name, size_t len)
{
    presence_entry *e;
    HASH_FIND(hh, pres.entries, name, len, e);
    return e;
}

static uint32_t presence_hash(const presence_entry *e)
{
    return (uint32_t)(((uint64_t)(uintptr_t)e * 0x9E3779B97F4A7C15ull) >> 32);
}

/* The session's follow of e, or NULL. */
static presence_follow_t *presence_follow_of(const struct presence_sess *p, const presence_entry *e)
{
    if (!p || !p->set_cap || !e) return NULL;
    uint32_t mask = p->set_cap - 1;
    for (uint32_t i = presence_hash(e) & mask;; i = (i + 1) & mask) {
        uint32_t v = p->set[i];
        if (!v) return NULL;
        if (p->follows[v - 1].e == e) return &p->follows[v - 1];
    }
}

static void presence_set_put(uint32_t *set, uint32_t cap, const presence_follow_t *f, uint32_t idx)
{
    uint32_t mask = cap - 1, i = presence_hash(f[idx].e) & mask;
    while (set[i])
        i = (i + 1) & mask;
    set[i] = idx + 1;
}

static struct presence_sess *presence_state(gw_session *s)
{
    if (!s->pr) s->pr = calloc(1, sizeof *s->pr);
    return s->pr;
}

/* Room for one more follow: the array doubles, the set keeps a load <= 3/4. */
static int presence_reserve(struct presence_sess *p)
{
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 8;
        presence_follow_t *f = realloc(p->follows, cap * sizeof *f);
        if (!f) return -1;
        p->follows = f;
        p->cap = cap;
    }
    if ((uint64_t)(p->n + 1) * 4 > (uint64_t)p->set_cap * 3) {
        uint32_t cap = p->set_cap ? p->set_cap * 2 : 16;
        uint32_t *set = calloc(cap, sizeof *set);
        if (!set) return -1;
        for (uint32_t j = 0; j < p->n; j++)
            presence_set_put(set, cap, p->follows, j);
        free(p->set);
        p->set = set;
        p->set_cap = cap;
    }
    return 0;
}

static void presence_chan(char *buf, size_t size, const char *name)
{
    keys_fmt(buf, size, CHAN_PRESENCE, name);
}

static void presence_subscribe(const presence_entry *e)
{
    char chan[KEYS_MAX];
    presence_chan(chan, sizeof chan, e->name);
    rl_subscribe(chan, presence_chan_cb, NULL);
}

/* {kind: online/offline, from: name} into a fresh sb (the caller destroys it) */
static void presence_frame(msgpack_sbuffer *sb, const char *name, int online)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    proto_enc_presence(&pk, online, name, strlen(name));
}

/* One SISMEMBER parley:online NAME in flight: for one session (conn), or for
 * every follower (conn 0). gen is the entry's count of presence messages when
 * it was asked: if a message arrived since, it is at least as new as the
 * answer (the two travel on different connections and may be processed in
 * either order), so the answer is dropped. */
typedef struct presence_query {
    uint64_t conn;
    uint64_t gen;
    char name[PROTO_NAME_MAX + 1];
} presence_query;

static void presence_forward(presence_entry *e, const presence_sub *sub, const char *buf,
                             size_t len);

/* The presence frame of e's last known state to s (asked when unknown). */
static void presence_tell(presence_entry *e, gw_session *s);

static void presence_query_cb(redisAsyncContext *ac, void *r, void *priv)
{
    presence_query *q = priv;
    presence_entry *e = presence_find(q->name, strlen(q->name));
    long long on;
    if (!e || e->gen != q->gen || rl_reply_int(r, &on) < 0) goto out;
    msgpack_sbuffer sb;
    if (q->conn) {
        gw_session *s = sess_find(q->conn);
        presence_follow_t *f = s ? presence_follow_of(s->pr, e) : NULL;
        if (!s || s->state != SESS_LIVE || !f || f->hidden != PRES_SHOWN) goto out;
        presence_frame(&sb, q->name, on != 0);
        sess_send(s, sb.data, sb.size);
    } else {
        if (e->online == (on != 0)) goto out;
        e->online = on != 0;
        presence_frame(&sb, e->name, e->online);
        for (size_t i = 0; i < e->n; i++)
            presence_forward(e, &e->subs[i], sb.data, sb.size);
    }
    msgpack_sbuffer_destroy(&sb);
out:
    free(q);
}

static void presence_ask(presence_entry *e, uint64_t conn)
{
    presence_query *q = calloc(1, sizeof *q);
    if (!q) return;
    q->conn = conn;
    q->gen = e->gen;
    memcpy(q->name, e->name, sizeof q->name);
    const char *argv[] = {"SISMEMBER", KEY_ONLINE, q->name};
    if (rl_command(presence_query_cb, q, 3, argv, NULL) < 0) free(q);
}

/* One SISMEMBER KEY_HIDDEN(user) NAME in flight for one follow (its state
 * PRES_ASKING); tell: the session gets the name's state when it is shown. */
typedef struct presence_check_q {
    uint64_t conn;
    int tell;
    char name[PROTO_NAME_MAX + 1];
} presence_check_q;

static void presence_check_cb(redisAsyncContext *ac, void *r, void *priv)
{
    presence_check_q *q = priv;
    presence_entry *e = presence_find(q->name, strlen(q->name));
    gw_session *s = sess_find(q->conn);
    presence_follow_t *f = s && e ? presence_follow_of(s->pr, e) : NULL;
    long long hidden;
    if (f && f->hidden == PRES_ASKING) { /* else presence_hide said since */
        if (rl_reply_int(r, &hidden) < 0) {
            f->hidden = PRES_UNKNOWN; /* asked again with the next frame */
        } else {
            f->hidden = hidden ? PRES_HIDDEN : PRES_SHOWN;
            if (!hidden && q->tell && s->state == SESS_LIVE) presence_tell(e, s);
        }
    }
    free(q);
}

/* Asks whether f (s's follow of e) is hidden; the frames about e wait for
 * the answer (dropped meanwhile; with tell the answer brings the state). */
static void presence_check(presence_entry *e, gw_session *s, presence_follow_t *f, int tell)
{
    presence_check_q *q = calloc(1, sizeof *q);
    if (!q) return;
    q->conn = s->conn;
    q->tell = tell;
    memcpy(q->name, e->name, sizeof q->name);
    char key[KEYS_MAX];
    keys_fmt(key, sizeof key, KEY_HIDDEN, s->user);
    const char *argv[] = {"SISMEMBER", key, q->name};
    f->hidden = PRES_ASKING;
    if (rl_command(presence_check_cb, q, 3, argv, NULL) < 0) {
        f->hidden = PRES_UNKNOWN;
        free(q);
    }
}

static void presence_tell(presence_entry *e, gw_session *s)
{
    if (e->online < 0) {
        presence_ask(e, s->conn);
        return;
    }
    msgpack_sbuffer sb;
    presence_frame(&sb, e->name, e->online);
    sess_send(s, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* A presence frame about e to one follower: sent when e is shown to it; a
 * follow not known yet is asked about first (the answer brings the state). */
static void presence_forward(presence_entry *e, const presence_sub *sub, const char *buf,
                             size_t len)
{
    gw_session *s = sub->s;
    if (s->state != SESS_LIVE) return;
    presence_follow_t *f = &s->pr->follows[sub->fidx];
    if (f->hidden == PRES_SHOWN)
        sess_send(s, buf, len);
    else if (f->hidden == PRES_UNKNOWN)
        presence_check(e, s, f, 1);
}

/* Makes s follow name (online: the state s was told, -1 unknown; hidden: a
 * PRES_* state). Returns the entry, or NULL when s already follows name, name
 * is s's own user or not a user name, or memory ran out. */
static presence_entry *presence_add(gw_session *s, const char *name, size_t len, int online,
                                    int hidden)
{
    if (!name || !proto_valid_user(name, len) ||
        (len == strlen(s->user) && memcmp(name, s->user, len) == 0))
        return NULL;
    struct presence_sess *p = presence_state(s);
    if (!p) return NULL;
    presence_entry *e = presence_find(name, len);
    if ((e && presence_follow_of(p, e)) || presence_reserve(p) < 0) return NULL;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) return NULL;
        memcpy(e->name, name, len);
        e->online = online;
        HASH_ADD(hh, pres.entries, name, len, e);
        if (presence_find(name, len) != e) { /* out of memory (HASH_NONFATAL_OOM) */
            free(e);
            return NULL;
        }
        pres.n++;
        presence_subscribe(e);
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        presence_sub *subs = realloc(e->subs, cap * sizeof *subs);
        if (!subs) return NULL;
        e->subs = subs;
        e->cap = cap;
    }
    uint32_t fidx = p->n++;
    p->follows[fidx] = (presence_follow_t){e, (uint32_t)e->n, (int8_t)hidden};
    presence_set_put(p->set, p->set_cap, p->follows, fidx);
    e->subs[e->n++] = (presence_sub){s, fidx};
    return e;
}

void presence_follow_known(gw_session *s, const char *name, size_t len, int online, int hidden)
{
    int st = hidden < 0 ? PRES_UNKNOWN : hidden ? PRES_HIDDEN : PRES_SHOWN;
    if (presence_add(s, name, len, hidden > 0 ? -1 : online, st) || hidden < 0) return;
    /* followed already, perhaps not knowing yet whether it is hidden */
    presence_follow_t *f = presence_follow_of(s->pr, presence_find(name, len));
    if (f && f->hidden == PRES_UNKNOWN) f->hidden = (int8_t)st;
}

void presence_follow(gw_session *s, const char *name, size_t len)
{
    presence_entry *e = presence_add(s, name, len, -1, PRES_UNKNOWN);
    if (!e) return;
    /* the state once the check answered "shown" (asked then if unknown): on a
     * cluster the two answers come from different masters, in either order */
    presence_check(e, s, presence_follow_of(s->pr, e), 1);
}

void presence_hide(gw_session *s, const char *name, size_t len, int hide)
{
    presence_entry *e = presence_find(name, len);
    presence_follow_t *f = presence_follow_of(s->pr, e);
    if (!f) { /* a later follow must not take an older "shown" for the truth */
        if (hide) presence_add(s, name, len, -1, PRES_HIDDEN);
        return;
    }
    int was = f->hidden;
    f->hidden = hide ? PRES_HIDDEN : PRES_SHOWN;
    if (s->state != SESS_LIVE) return;
    if (hide && was == PRES_SHOWN && e->online == 1) { /* as hello would say now */
        msgpack_sbuffer sb;
        presence_frame(&sb, e->name, 0);
        sess_send(s, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    } else if (!hide && was != PRES_SHOWN) {
        presence_tell(e, s);
    }
}

void presence_set_everyone(gw_session *s)
{
    struct presence_sess *p = presence_state(s);
    if (p) p->everyone = 1;
}

void presence_unfollow_all(gw_session *s)
{
    struct presence_sess *p = s->pr;
    if (!p) return;
    for (uint32_t j = 0; j < p->n; j++) {
        presence_entry *e = p->follows[j].e;
        uint32_t sidx = p->follows[j].sidx;
        presence_sub last = e->subs[--e->n];
        e->subs[sidx] = last;
        last.s->pr->follows[last.fidx].sidx = sidx;
    }
    free(p->follows);
    free(p->set);
    free(p);
    s->pr = NULL;
}

static void presence_drop(presence_entry *e)
{
    HASH_DEL(pres.entries, e);
    pres.n--;
    free(e->subs);
    free(e);
}

void presence_sweep(void)
{
    presence_entry *e, *tmp;
    HASH_ITER(hh, pres.entries, e, tmp)
    {
        if (e->n || e->sub != PRES_SUBSCRIBED) {
            e->stale = 0;
            continue;
        }
        if (!e->stale) {
            e->stale = 1;
            continue;
        }
        if (!rl_subscriber_up()) { /* nothing to unsubscribe from */
            presence_drop(e);
            continue;
        }
        char chan[KEYS_MAX];
        presence_chan(chan, sizeof chan, e->name);
        e->sub = PRES_UNSUBSCRIBING;
        rl_unsubscribe(chan);
    }
}

/* The entry of a parley:presence:NAME channel, or NULL. */
static presence_entry *presence_of_chan(const char *chan, size_t clen)
{
    size_t plen = strlen(CHAN_PRESENCE_PREFIX);
    if (clen <= plen || memcmp(chan, CHAN_PRESENCE_PREFIX, plen) != 0) return NULL;
    return presence_find(chan + plen, clen - plen);
}

static void presence_unsubscribed(presence_entry *e)
{
    if (e->sub != PRES_UNSUBSCRIBING) return;
    if (e->n == 0) {
        presence_drop(e);
        return;
    }
    e->sub = PRES_SUBSCRIBED;
    e->stale = 0;
    presence_subscribe(e);
}

static void presence_message(presence_entry *e, const char *buf, size_t len)
{
    proto_str kind = {0};
    proto_peek_fields(buf, len, &kind, NULL, NULL, NULL, NULL);
    e->gen++;
    if (kind.len == 6 && !memcmp(kind.p, "online", 6)) e->online = 1;
    if (kind.len == 7 && !memcmp(kind.p, "offline", 7)) e->online = 0;
    for (size_t i = 0; i < e->n; i++)
        presence_forward(e, &e->subs[i], buf, len);
}

/* Everything on a parley:presence:NAME channel. A confirmed SUBSCRIBE: a
 * change of NAME between the followers' hello (or a Redis outage) and now
 * was not seen, so NAME's state is read once more and the followers are
 * told when it differs from the last state known here (from hello or a
 * presence message; unknown for a contact learned from a text, which then
 * gets the state at once). */
static void presence_chan_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rl_pubsub m;
    if (rl_pubsub_parse(r, &m) < 0) return;
    presence_entry *e = presence_of_chan(m.chan, m.chan_len);
    if (!e) return;
    if (rl_pubsub_is(&m, "message")) {
        if (m.data) presence_message(e, m.data, m.data_len);
    } else if (rl_pubsub_is(&m, "subscribe")) {
        if (e->n) presence_ask(e, 0);
    } else if (rl_pubsub_is(&m, "unsubscribe")) {
        presence_unsubscribed(e);
    }
}

static void presence_new_user_one(gw_session *s, void *arg)
{
    const proto_str *name = arg;
    if (s->state == SESS_LIVE && s->pr && s->pr->everyone) presence_follow(s, name->p, name->len);
}

/* A user registered ("NAME COUNT" on parley:users:new): while COUNT is within
 * --everyone-limit, sessions whose hello listed everyone follow NAME. */
static void presence_users_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rl_pubsub m;
    if (rl_pubsub_parse(r, &m) < 0 || !rl_pubsub_is(&m, "message") || !m.data) return;
    const char *buf = m.data;
    size_t len = m.data_len;
    const char *sp = memchr(buf, ' ', len);
    if (!sp || sp == buf) return;
    size_t nlen = (size_t)(sp - buf);
    char num[24];
    size_t dl = len - nlen - 1;
    if (!proto_valid_user(buf, nlen) || dl == 0 || dl >= sizeof num) return;
    memcpy(num, sp + 1, dl);
    num[dl] = '\0';
    char *end;
    long long count = strtoll(num, &end, 10);
    if (*end || count > pres.everyone_limit) return; /* beyond it: contacts only */
    proto_str name = {buf, nlen};
    sess_each(presence_new_user_one, &name);
}

void presence_on_subscriber_up(void)
{
    rl_subscribe(CHAN_USERS, presence_users_cb, NULL);
    presence_entry *e, *tmp;
    HASH_ITER(hh, pres.entries, e, tmp)
    {
        e->sub = PRES_SUBSCRIBED;
        e->stale = 0;
        presence_subscribe(e);
    }
}

void presence_free(void)
{
    presence_entry *e, *tmp;
    HASH_ITER(hh, pres.entries, e, tmp)
    {
        HASH_DEL(pres.entries, e);
        free(e->subs);
        free(e);
    }
    pres.n = 0;
}
