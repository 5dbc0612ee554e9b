/* presence.c - who follows whose presence on this gateway.
 *
 * Each local session follows the presence of its contacts (from the contacts
 * script at hello, plus whoever it exchanges texts with). The gateway holds one
 * SUBSCRIBE parley:presence:NAME per followed NAME, refcounted by the sessions
 * following it: the first follower subscribes, the last one leaving
 * unsubscribes (lazily: see presence_sweep). A presence frame ({kind: online/offline, from})
 * published on that channel is forwarded as is to every following session. A session never follows
 * its own user. */
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "keys.h"
#include "log.h"

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
} presence_entry;

/* One name a session follows: the entry, and where the session sits in its
 * subs. A session's follows are an array plus an open-addressing set of
 * indexes keyed by the entry's address (is it followed already?): 16 bytes
 * and a few of set per followed name, which matters in large groups (a
 * 1,000-member group makes each member session follow 999 names). Names are
 * only ever added to a session, and all dropped at its close. */
struct presence_follow {
    presence_entry *e;
    uint32_t sidx;
};

static uint32_t presence_hash(const presence_entry *e)
{
    return (uint32_t)(((uint64_t)(uintptr_t)e * 0x9E3779B97F4A7C15ull) >> 32);
}

static int presence_follows(const gw_session *s, const presence_entry *e)
{
    if (!s->follow_set_cap) return 0;
    uint32_t mask = s->follow_set_cap - 1;
    for (uint32_t i = presence_hash(e) & mask;; i = (i + 1) & mask) {
        uint32_t v = s->follow_set[i];
        if (!v) return 0;
        if (s->follows[v - 1].e == e) return 1;
    }
}

static void presence_set_put(uint32_t *set, uint32_t cap, const struct presence_follow *f,
                             uint32_t idx)
{
    uint32_t mask = cap - 1, i = presence_hash(f[idx].e) & mask;
    while (set[i])
        i = (i + 1) & mask;
    set[i] = idx + 1;
}

/* Room for one more follow: the array doubles, the set keeps a load <= 3/4. */
static int presence_reserve(gw_session *s)
{
    if (s->nfollows == s->capfollows) {
        uint32_t cap = s->capfollows ? s->capfollows * 2 : 8;
        struct presence_follow *f = realloc(s->follows, cap * sizeof *f);
        if (!f) return -1;
        s->follows = f;
        s->capfollows = cap;
    }
    if ((uint64_t)(s->nfollows + 1) * 4 > (uint64_t)s->follow_set_cap * 3) {
        uint32_t cap = s->follow_set_cap ? s->follow_set_cap * 2 : 16;
        uint32_t *set = calloc(cap, sizeof *set);
        if (!set) return -1;
        for (uint32_t j = 0; j < s->nfollows; j++)
            presence_set_put(set, cap, s->follows, j);
        free(s->follow_set);
        s->follow_set = set;
        s->follow_set_cap = cap;
    }
    return 0;
}

static void presence_chan(char *buf, size_t size, const char *name)
{
    keys_fmt(buf, size, CHAN_PRESENCE, name);
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

static void presence_query_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    presence_query *q = priv;
    presence_entry *e = strmap_get(&g->presence, q->name, strlen(q->name));
    long long on;
    if (!e || e->gen != q->gen || rl_reply_int(r, &on) < 0) goto out;
    msgpack_sbuffer sb;
    if (q->conn) {
        gw_session *s = ws_session_find(g, q->conn);
        if (!s || s->state != SESS_LIVE || !presence_follows(s, e)) goto out;
        presence_frame(&sb, q->name, on != 0);
        ws_send(s, sb.data, sb.size);
    } else {
        if (e->online == (on != 0)) goto out;
        e->online = on != 0;
        presence_frame(&sb, e->name, e->online);
        for (size_t i = 0; i < e->n; i++)
            if (e->subs[i].s->state == SESS_LIVE) ws_send(e->subs[i].s, sb.data, sb.size);
    }
    msgpack_sbuffer_destroy(&sb);
out:
    free(q);
}

static void presence_ask(gw_server *g, presence_entry *e, uint64_t conn)
{
    presence_query *q = calloc(1, sizeof *q);
    if (!q) return;
    q->conn = conn;
    q->gen = e->gen;
    memcpy(q->name, e->name, sizeof q->name);
    const char *argv[] = {"SISMEMBER", KEY_ONLINE, q->name};
    if (rl_cmd_argv(g, presence_query_cb, q, 3, argv, NULL) < 0) free(q);
}

/* Makes s follow name (online: the state s was told, -1 unknown). Returns
 * the entry, or NULL when s already follows name, name is s's own user or
 * not a user name, or memory ran out. */
static presence_entry *presence_add(gw_session *s, const char *name, size_t len, int online)
{
    gw_server *g = s->g;
    if (!name || !proto_valid_user(name, len) ||
        (len == strlen(s->user) && memcmp(name, s->user, len) == 0))
        return NULL;
    presence_entry *e = strmap_get(&g->presence, name, len);
    if ((e && presence_follows(s, e)) || presence_reserve(s) < 0) return NULL;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) return NULL;
        memcpy(e->name, name, len);
        e->online = online;
        if (strmap_put(&g->presence, name, len, e) < 0) {
            free(e);
            return NULL;
        }
        char chan[KEYS_MAX];
        presence_chan(chan, sizeof chan, e->name);
        rl_subscribe(g, chan);
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        presence_sub *subs = realloc(e->subs, cap * sizeof *subs);
        if (!subs) return NULL;
        e->subs = subs;
        e->cap = cap;
    }
    uint32_t fidx = s->nfollows++;
    s->follows[fidx] = (struct presence_follow){e, (uint32_t)e->n};
    presence_set_put(s->follow_set, s->follow_set_cap, s->follows, fidx);
    e->subs[e->n++] = (presence_sub){s, fidx};
    return e;
}

void presence_follow_known(gw_session *s, const char *name, size_t len, int online)
{
    presence_add(s, name, len, online);
}

/* A contact learned from a text: the session has never been told its state,
 * so it gets the current one (later changes come from the channel). */
void presence_follow(gw_session *s, const char *name, size_t len)
{
    presence_entry *e = presence_add(s, name, len, -1);
    if (e) presence_ask(s->g, e, s->conn);
}

void presence_unfollow_all(gw_session *s)
{
    for (uint32_t j = 0; j < s->nfollows; j++) {
        presence_entry *e = s->follows[j].e;
        uint32_t sidx = s->follows[j].sidx;
        presence_sub last = e->subs[--e->n];
        e->subs[sidx] = last;
        last.s->follows[last.fidx].sidx = sidx;
    }
    free(s->follows);
    free(s->follow_set);
    s->follows = NULL;
    s->follow_set = NULL;
    s->nfollows = s->capfollows = s->follow_set_cap = 0;
}

static void presence_drop(gw_server *g, presence_entry *e)
{
    strmap_del(&g->presence, e->name, strlen(e->name));
    free(e->subs);
    free(e);
}

/* Unsubscribes channels nobody followed for a whole sweep period (run with the
 * heartbeat). Lazily, because hiredis drops a channel's callback when the
 * UNSUBSCRIBE confirmation arrives: an immediate SUBSCRIBE issued before that
 * confirmation would silently lose its messages. So an entry stays until its
 * UNSUBSCRIBE is confirmed (presence_unsubscribed), and a follower arriving
 * meanwhile gets a new SUBSCRIBE only then. */
void presence_sweep(gw_server *g)
{
    size_t i, k = 0;
    presence_entry **gone = NULL;
    if (!g->presence.n) return;
    for (strmap_node *n = strmap_first(&g->presence, &i); n; n = strmap_next(&g->presence, n, &i)) {
        presence_entry *e = n->val;
        if (e->n || e->sub != PRES_SUBSCRIBED) {
            e->stale = 0;
            continue;
        }
        if (!e->stale) {
            e->stale = 1;
            continue;
        }
        if (!g->sub.up) {
            if (!gone) gone = calloc(g->presence.n, sizeof *gone);
            if (gone) gone[k++] = e;
            continue;
        }
        char chan[KEYS_MAX];
        presence_chan(chan, sizeof chan, e->name);
        e->sub = PRES_UNSUBSCRIBING;
        rl_unsubscribe(g, chan);
    }
    for (size_t j = 0; j < k; j++)
        presence_drop(g, gone[j]);
    free(gone);
}

void presence_unsubscribed(gw_server *g, const char *chan, size_t clen)
{
    size_t plen = strlen(CHAN_PRESENCE_PREFIX);
    if (clen <= plen || memcmp(chan, CHAN_PRESENCE_PREFIX, plen) != 0) return;
    presence_entry *e = strmap_get(&g->presence, chan + plen, clen - plen);
    if (!e || e->sub != PRES_UNSUBSCRIBING) return;
    if (e->n == 0) {
        presence_drop(g, e);
        return;
    }
    e->sub = PRES_SUBSCRIBED;
    e->stale = 0;
    char c[KEYS_MAX];
    presence_chan(c, sizeof c, e->name);
    rl_subscribe(g, c);
}

void presence_message(gw_server *g, const char *chan, const char *buf, size_t len)
{
    size_t plen = strlen(CHAN_PRESENCE_PREFIX);
    size_t clen = strlen(chan);
    if (clen <= plen || memcmp(chan, CHAN_PRESENCE_PREFIX, plen) != 0) return;
    presence_entry *e = strmap_get(&g->presence, chan + plen, clen - plen);
    if (!e) return;
    proto_str kind = {0};
    deliver_frame_fields(buf, len, &kind, NULL, NULL, NULL, NULL);
    e->gen++;
    if (kind.len == 6 && !memcmp(kind.p, "online", 6)) e->online = 1;
    if (kind.len == 7 && !memcmp(kind.p, "offline", 7)) e->online = 0;
    for (size_t i = 0; i < e->n; i++)
        if (e->subs[i].s->state == SESS_LIVE) ws_send(e->subs[i].s, buf, len);
}

/* Redis confirmed SUBSCRIBE parley:presence:NAME. A change of NAME between
 * the followers' hello (or a Redis outage) and now was not seen: read NAME's
 * state once more and tell the followers when it differs from the last state
 * known here (from hello or a presence message; unknown for a contact learned
 * from a text, which then gets the state at once). */
void presence_subscribed(gw_server *g, const char *chan, size_t len)
{
    size_t plen = strlen(CHAN_PRESENCE_PREFIX);
    if (len <= plen || memcmp(chan, CHAN_PRESENCE_PREFIX, plen) != 0) return;
    presence_entry *e = strmap_get(&g->presence, chan + plen, len - plen);
    if (e && e->n) presence_ask(g, e, 0);
}

/* After the subscriber reconnected (a fresh connection has no subscription). */
void presence_resubscribe(gw_server *g)
{
    size_t i;
    char chan[KEYS_MAX];
    for (strmap_node *n = strmap_first(&g->presence, &i); n; n = strmap_next(&g->presence, n, &i)) {
        presence_entry *e = n->val;
        e->sub = PRES_SUBSCRIBED;
        e->stale = 0;
        presence_chan(chan, sizeof chan, e->name);
        rl_subscribe(g, chan);
    }
}

void presence_free(gw_server *g)
{
    size_t i;
    for (strmap_node *n = strmap_first(&g->presence, &i); n; n = strmap_next(&g->presence, n, &i)) {
        presence_entry *e = n->val;
        free(e->subs);
        free(e);
    }
    strmap_free(&g->presence);
}

void presence_new_user(gw_server *g, const char *buf, size_t len)
{
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
    if (*end || count > g->cfg.everyone_limit) return; /* beyond it: contacts only */
    size_t i;
    for (strmap_node *n = strmap_first(&g->sessions_by_conn, &i); n;
         n = strmap_next(&g->sessions_by_conn, n, &i)) {
        gw_session *s = n->val;
        if (s->state == SESS_LIVE && s->everyone) presence_follow(s, buf, nlen);
    }
}
