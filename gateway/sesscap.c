/* sesscap.c - the users at their session limit (sesscap.h).
 *
 * States of what this gateway knows: "learning" from the subscription's
 * confirmation (or a lost subscriber) until the read of parley:sessions:full
 * is applied: announcements are kept in `pending` meanwhile and the set is
 * not used to refuse; then "known": announcements are applied as they come.
 * Each read carries a number: the reply of an older one is ignored. A read
 * whose announcements overflow `pending` is dropped and made again.
 *
 * A mark is trusted for SESSCAP_PROBE_MS after it was announced: then one
 * upgrade of the user goes through to session_open, which either refuses it
 * (4029; "full" again, trusted again) or finds the mark left behind, deletes
 * it and announces "free". So no mark can lock a user out for good, whatever
 * left it (a close by an older script version, a set changed by hand). */
#include "sesscap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "keys.h"
#include "log.h"
#include "proto.h"
#include "redis_link.h"
#include "session.h"
#include "walltime.h"

#define SESSCAP_PENDING_MAX 4096 /* announcements kept while a read is pending */
#define SESSCAP_RETRY_MS    1000
#define SESSCAP_PROBE_MS    10000 /* a mark's age after which one upgrade goes to the script */

typedef struct sesscap_user {
    char name[PROTO_NAME_MAX + 1];
    long long mark;    /* the limit the user is at */
    uint64_t trust_ms; /* when it was announced, or last probed */
    UT_hash_handle hh;
} sesscap_user;

/* One announcement received while learning: mark 0 is "free". */
typedef struct sesscap_event {
    char name[PROTO_NAME_MAX + 1];
    long long mark;
} sesscap_event;

static struct {
    long long limit;
    struct event *retry;
    sesscap_user *full; /* uthash by name */
    size_t nfull;
    int learning;      /* the set is not trusted until a read is applied */
    int subscribed;    /* the subscription is confirmed */
    int want_read;     /* a read is to be sent (the command connection was down) */
    uintptr_t read_no; /* the number of the latest read sent */
    int overflow;      /* pending overflowed: the read in flight is useless */
    sesscap_event *pending;
    size_t npending, cap;
} sc;

static void sesscap_read(void);

long long sesscap_limit(void)
{
    return sc.limit;
}

size_t sesscap_full_count(void)
{
    return sc.nfull;
}

static sesscap_user *sesscap_find(const char *name, size_t len)
{
    sesscap_user *u;
    HASH_FIND(hh, sc.full, name, len, u);
    return u;
}

static void sesscap_clear(void)
{
    sesscap_user *u, *tmp;
    HASH_ITER(hh, sc.full, u, tmp)
    {
        HASH_DEL(sc.full, u);
        free(u);
    }
    sc.nfull = 0;
}

/* name is at mark (0: it is free). */
static void sesscap_set(const char *name, size_t len, long long mark)
{
    sesscap_user *u = sesscap_find(name, len);
    if (!mark) {
        if (u) {
            HASH_DEL(sc.full, u);
            free(u);
            sc.nfull--;
        }
        return;
    }
    if (u) {
        u->mark = mark;
        u->trust_ms = walltime_ms();
        return;
    }
    u = calloc(1, sizeof *u);
    if (!u) return; /* not known: the script refuses instead (4029) */
    memcpy(u->name, name, len);
    u->mark = mark;
    u->trust_ms = walltime_ms();
    HASH_ADD(hh, sc.full, name, len, u);
    if (sesscap_find(name, len) != u) { /* out of memory (HASH_NONFATAL_OOM) */
        free(u);
        return;
    }
    sc.nfull++;
}

int sesscap_refuse(const char *user)
{
    if (sc.limit <= 0) return 0;
    size_t len = strlen(user), here = 0;
    for (gw_session *s = sess_of_user(user, len); s; s = s->next_of_user)
        here++;
    if (here >= (size_t)sc.limit) return 1;
    if (sc.learning) return 0;
    sesscap_user *u = sesscap_find(user, len);
    if (!u || u->mark < sc.limit) return 0;
    uint64_t now = walltime_ms();
    if (now - u->trust_ms < SESSCAP_PROBE_MS) return 1;
    u->trust_ms = now; /* this one probes the mark */
    return 0;
}

/* "full NAME LIMIT" or "free NAME": 0 with name/mark set, or -1. */
static int sesscap_parse(const char *p, size_t n, const char **name, size_t *len, long long *mark)
{
    const char *end = p + n;
    int full = n > 5 && !memcmp(p, "full ", 5);
    if (!full && !(n > 5 && !memcmp(p, "free ", 5))) return -1;
    p += 5;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    *name = p;
    *len = (size_t)((full && sp ? sp : end) - p);
    if (!proto_valid_user(*name, *len)) return -1;
    *mark = 0;
    if (!full) return 0;
    if (!sp) return -1;
    for (p = sp + 1; p < end && *p >= '0' && *p <= '9' && *mark < 1000000000; p++)
        *mark = *mark * 10 + (*p - '0');
    return p == end && *mark > 0 ? 0 : -1;
}

static void sesscap_announced(const char *data, size_t n)
{
    const char *name;
    size_t len;
    long long mark;
    if (sesscap_parse(data, n, &name, &len, &mark) < 0) {
        log_warn("%s: unreadable announcement '%.*s'", CHAN_SESSION_LIMIT, (int)(n > 80 ? 80 : n),
                 data);
        return;
    }
    if (!sc.learning) {
        sesscap_set(name, len, mark);
        return;
    }
    if (sc.overflow) return;
    if (sc.npending == sc.cap) {
        size_t cap = sc.cap ? sc.cap * 2 : 64;
        sesscap_event *nb =
            cap <= SESSCAP_PENDING_MAX ? realloc(sc.pending, cap * sizeof *nb) : NULL;
        if (!nb) {
            sc.overflow = 1; /* the read in flight is useless: another one follows it */
            return;
        }
        sc.pending = nb;
        sc.cap = cap;
    }
    sesscap_event *e = &sc.pending[sc.npending++];
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    e->mark = mark;
}

static void sesscap_retry_later(void)
{
    struct timeval tv = {SESSCAP_RETRY_MS / 1000, (SESSCAP_RETRY_MS % 1000) * 1000};
    if (sc.retry) evtimer_add(sc.retry, &tv);
}

static void sesscap_read_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if ((uintptr_t)priv != sc.read_no || !sc.learning || !sc.subscribed) return; /* stale */
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep) log_warn("HGETALL %s: %s", KEY_SESSIONS_FULL, rep->str ? rep->str : "?");
        sc.want_read = 1; /* a lost connection: its commands_up sends it again */
        if (rep) sesscap_retry_later();
        return;
    }
    if (sc.overflow) { /* too much came meanwhile: read again */
        sesscap_read();
        return;
    }
    sesscap_clear();
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        redisReply *k = rep->element[i];
        long long mark;
        if (k->type != REDIS_REPLY_STRING || !proto_valid_user(k->str, k->len) ||
            rl_reply_int(rep->element[i + 1], &mark) < 0 || mark <= 0)
            continue;
        sesscap_set(k->str, k->len, mark);
    }
    for (size_t i = 0; i < sc.npending; i++)
        sesscap_set(sc.pending[i].name, strlen(sc.pending[i].name), sc.pending[i].mark);
    sc.npending = 0;
    sc.learning = 0;
    log_debug("%zu user(s) at their session limit", sc.nfull);
}

/* A new read of the marks; announcements from now on are replayed on it. */
static void sesscap_read(void)
{
    const char *argv[] = {"HGETALL", KEY_SESSIONS_FULL};
    sc.learning = 1;
    sc.overflow = 0;
    sc.npending = 0;
    sc.want_read = 0;
    sc.read_no++;
    if (rl_command(sesscap_read_cb, (void *)sc.read_no, 2, argv, NULL) < 0) sc.want_read = 1;
}

static void sesscap_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    if (sc.want_read && sc.subscribed) sesscap_read();
}

static void sesscap_chan_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rl_pubsub m;
    if (!r) { /* the subscriber connection is gone: nothing is known until re-read */
        sc.subscribed = 0;
        sc.learning = 1;
        sc.want_read = 0;
        sc.npending = 0;
        return;
    }
    if (rl_pubsub_parse(r, &m) < 0) return;
    if (rl_pubsub_is(&m, "message")) {
        if (m.data) sesscap_announced(m.data, m.data_len);
    } else if (rl_pubsub_is(&m, "subscribe")) {
        sc.subscribed = 1;
        sesscap_read();
    }
}

void sesscap_on_subscriber_up(void)
{
    if (sc.limit <= 0) return;
    sc.subscribed = 0;
    sc.learning = 1;
    rl_subscribe(CHAN_SESSION_LIMIT, sesscap_chan_cb, NULL);
}

void sesscap_on_commands_up(void)
{
    if (sc.want_read && sc.subscribed) sesscap_read();
}

int sesscap_init(struct event_base *base, long long limit)
{
    sc.limit = limit;
    sc.learning = 1;
    sc.retry = evtimer_new(base, sesscap_retry_cb, NULL);
    return sc.retry ? 0 : -1;
}

void sesscap_free(void)
{
    sesscap_clear();
    free(sc.pending);
    sc.pending = NULL;
    sc.npending = sc.cap = 0;
    if (sc.retry) event_free(sc.retry);
    sc.retry = NULL;
}
