/* attacker.c - the noisy neighbour of mode noisy: one user who, within
 * whatever limits the server enforces, hammers a big group, syncs a full
 * inbox and opens as many sessions as it is allowed, while the bystanders
 * (pair traffic in the other workers) measure their latency. It runs in a
 * process of its own, so its work never delays the bystanders' clocks.
 *
 * Users (numbers after --prefix): atk_user = --user-offset + 2 x --pairs is
 * the attacker; the next --members - 1 are the other group members (never
 * connected); the BENCH_FILLERS after them send the attacker's inbox its big
 * entries.
 *
 * Set-up, before the first step: the control connection (the attacker's, open
 * for the whole run, so no later session of the attacker gets an offline push)
 * creates the group (create, then add, ATK_CHUNK names per frame), and the
 * fillers fill the attacker's inbox with --attacker-inbox texts of
 * --attacker-inbox-size bytes. Before a step that syncs, the inbox is filled
 * again if the attacker's own group texts (each one an entry of its inbox too)
 * have displaced fill entries since the last fill.
 *
 * During a step, the activities of the step's bit set (bench_ctl.attack):
 *  group     texts to the group from the control connection, at most
 *            --attacker-window unanswered. `error rate_limited` (or
 *            `unavailable`) is answered as a client should: the same cid again
 *            after a backoff (50 ms doubling to 2 s, or the frame's
 *            retry_after_ms when larger; an ack resets it).
 *  sync      a connection that opens, sends `sync {after: hello seq - depth,
 *            epoch}` (depth = 9/10 of --attacker-inbox, leaving room for entries
 *            that arrive between hello and sync; halved on each `recovered:
 *            false`), reads every entry to the end (following pages: a `more`
 *            flag, or a recovered end short of its seq), closes, and again
 *            (while the sessions activity runs too, it keeps its place: the
 *            next sync goes on the same connection, from the end's seq). A
 *            refusal of the session limit (429 at the upgrade, or a close 4029
 *            before hello) closes one of the attacker's extra sessions to make
 *            room and tries again after Retry-After (else a second).
 *  sessions  more connections of the attacker, at most ATK_OPEN_AT_ONCE
 *            opening at a time (none while the sync connection waits for a
 *            place), until the session limit refuses one or
 *            --attacker-sessions are open; held. After a refusal it waits
 *            Retry-After (else a second) and then tries one at a time.
 * At the end of the step it waits for the answers to its texts (at most
 * --drain-ms), closes its sync and extra connections and publishes step_done.
 * Nothing the attacker meets fails the run: it is counted (bench_astat). */
#include "bench.h"
#include "mpack.h"
#include "wconn.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define ATK_CHUNK        1000 /* member names per group frame (~11 KB) */
#define ATK_OPEN_AT_ONCE 32
/* unanswered fill texts per filler: the attacker's control connection gets
 * every one of them live, and a gateway drops a session whose send queue
 * holds over --send-queue (1 MiB) */
#define ATK_FILL_WINDOW    2
#define ATK_BACKOFF_MIN_NS 50000000ull
#define ATK_BACKOFF_MAX_NS 2000000000ull
#define ATK_NS             1000000000ull

enum { Q_NEW, Q_SENT, Q_RETRY, Q_ACKED, Q_FAILED };

/* Texts sent with retries: cid "<nonce><tag>-<k>", k indexing the tables. */
typedef struct atk_q {
    char cidp[24];
    size_t cidp_len;
    uint64_t *sent_ns;
    uint8_t *state;
    uint64_t n, cap; /* cids made so far */
    uint64_t *retry; /* refused cids, sent again before new ones */
    uint64_t nretry;
    uint64_t inflight;
    uint64_t backoff_ns, resume_ns;
    uint64_t acked, limited, failed; /* cumulative */
} atk_q;

typedef struct atk {
    const bench_cfg *cfg;
    bench_ctl *ctl;
    bench_wstat *ws;
    bench_astat *st;
    wc_engine *eng;
    wc_conn *conns; /* [0] control, [1..F] fillers, [F+1] sync, then the extra sessions */
    uint32_t nconns, nsess;
    int attack;  /* bits of the running step; 0 between steps */
    int step;    /* the last step started (0: set-up) */
    int closing; /* a close we asked for (not counted as the server's) */
    char to_user[48];
    char *data, *fill_data;
    atk_q g, f;
    uint64_t displaced; /* group texts acked since the last fill */
    /* group set-up */
    int group_answer; /* 0 waiting, 1 group frame, 2 error */
    mp_str group_err_code;
    char group_err[120];
    /* sync */
    int sync_waiting;
    uint64_t sync_t0, sync_after, sync_max_seq, sync_depth, sync_retry_ns, sync_entries, sync_bytes;
    char epoch[130];
    size_t epoch_len;
    /* sessions */
    uint32_t sess_cursor, sess_open, sess_pending;
    uint64_t sess_next_ns;
    int sess_probe;
} atk;

static void atk_note(atk *a, const char *what)
{
    if (a->st->err[0]) return;
    if (a->step)
        snprintf(a->st->err, sizeof a->st->err, "(phase %d) %.170s", a->step, what);
    else
        snprintf(a->st->err, sizeof a->st->err, "(set-up) %.180s", what);
}

static wc_conn *atk_control(atk *a)
{
    return &a->conns[0];
}

static wc_conn *atk_sync(atk *a)
{
    return &a->conns[1 + BENCH_FILLERS];
}

static int atk_is_session(atk *a, wc_conn *c)
{
    return c->idx >= 2 + BENCH_FILLERS;
}

static int atk_open(const wc_conn *c)
{
    return c->state == WC_OPEN && c->hello;
}

static void atk_close(atk *a, wc_conn *c, const char *why)
{
    if (c->state == WC_CLOSED || c->state == WC_IDLE) return;
    a->closing = 1;
    wc_close(a->eng, c, why);
    a->closing = 0;
}

static int atk_q_grow(atk_q *q, uint64_t need)
{
    if (need <= q->cap) return 0;
    uint64_t n = q->cap ? q->cap * 2 : 4096;
    while (n < need)
        n *= 2;
    uint64_t *s = realloc(q->sent_ns, n * sizeof(*s));
    if (s) q->sent_ns = s;
    uint8_t *m = realloc(q->state, n);
    if (m) q->state = m;
    uint64_t *r = realloc(q->retry, n * sizeof(*r)); /* each cid is in it at most once */
    if (r) q->retry = r;
    if (!s || !m || !r) return -1;
    q->cap = n;
    return 0;
}

/* The cid of q that `cid` names: 0 and *k, or -1. */
static int atk_q_of(const atk_q *q, mp_str cid, uint64_t *k)
{
    return mp_cid_index(cid, q->cidp, q->cidp_len, q->n, k);
}

/* Sends q's next text (a refused one again, else a new one when new_ok) on c;
 * returns 1 if one was sent. */
static int atk_q_send(atk *a, atk_q *q, wc_conn *c, const char *to, const char *data, size_t len,
                      int new_ok, uint64_t now)
{
    uint64_t k;
    if (q->nretry) {
        k = q->retry[--q->nretry];
    } else {
        if (!new_ok || atk_q_grow(q, q->n + 1) < 0) return 0;
        k = q->n++;
    }
    char *frame = malloc(len + 256), *p = frame, cid[48];
    if (!frame) return 0;
    int cl = snprintf(cid, sizeof cid, "%s%llu", q->cidp, (unsigned long long)k);
    p = mp_put_text(p, to, data, len, cid, (size_t)cl);
    wc_queue(a->eng, c, frame, (size_t)(p - frame));
    free(frame);
    q->sent_ns[k] = now;
    q->state[k] = Q_SENT;
    q->inflight++;
    return 1;
}

/* An answer to q's text k: 1 acked, 0 to send again (rate_limited,
 * unavailable), -1 refused for good. Returns 1 if k was waiting for it. */
static int atk_q_answer(atk_q *q, uint64_t k, int how, uint64_t retry_after_ns, uint64_t now)
{
    if (q->state[k] != Q_SENT) return 0;
    q->inflight--;
    if (how > 0) {
        q->state[k] = Q_ACKED;
        q->acked++;
        q->backoff_ns = 0;
    } else if (how == 0) {
        q->state[k] = Q_RETRY;
        q->retry[q->nretry++] = k; /* room: grown with every new cid */
        q->limited++;
        q->backoff_ns = q->backoff_ns ? q->backoff_ns * 2 : ATK_BACKOFF_MIN_NS;
        if (q->backoff_ns > ATK_BACKOFF_MAX_NS) q->backoff_ns = ATK_BACKOFF_MAX_NS;
        uint64_t wait = retry_after_ns > q->backoff_ns ? retry_after_ns : q->backoff_ns;
        if (now + wait > q->resume_ns) q->resume_ns = now + wait;
    } else {
        q->state[k] = Q_FAILED;
        q->failed++;
    }
    return 1;
}

/* A connection carrying q's texts closed: what it had in flight goes again. */
static void atk_q_lost(atk_q *q)
{
    for (uint64_t k = 0; k < q->n && q->inflight; k++)
        if (q->state[k] == Q_SENT) {
            q->state[k] = Q_RETRY;
            q->retry[q->nretry++] = k;
            q->inflight--;
        }
    q->inflight = 0;
}

static void atk_sync_send(atk *a, wc_conn *c, uint64_t after, mp_str epoch)
{
    char frame[256], *p = frame;
    p = mp_put_map(p, 3);
    p = mp_put_cstr(p, "kind");
    p = mp_put_cstr(p, "sync");
    p = mp_put_cstr(p, "after");
    p = mp_put_uint(p, after);
    p = mp_put_cstr(p, "epoch");
    p = mp_put_str(p, epoch.p, epoch.len < 128 ? epoch.len : 128);
    wc_queue(a->eng, c, frame, (size_t)(p - frame));
    a->sync_after = after;
}

/* A full sync from `seq` - depth on the sync connection. */
static void atk_sync_start(atk *a, wc_conn *c, uint64_t seq, uint64_t now)
{
    a->sync_waiting = 1;
    a->sync_t0 = now;
    a->sync_max_seq = 0;
    a->sync_entries = a->sync_bytes = 0;
    atk_sync_send(a, c, seq > a->sync_depth ? seq - a->sync_depth : 0,
                  (mp_str){a->epoch, a->epoch_len});
}

/* The end of one sync answer (page) on the sync connection. */
static void atk_sync_end(atk *a, wc_conn *c, const char *buf, size_t len, uint64_t now)
{
    uint64_t recovered = 0, seq = 0, more = 0;
    mp_pick_uint(buf, len, "recovered", &recovered);
    mp_pick_uint(buf, len, "seq", &seq);
    int has_more = mp_pick_uint(buf, len, "more", &more) == 1;
    if (!recovered) {
        a->st->s_not_recovered++;
        a->sync_depth = a->sync_depth > 1 ? a->sync_depth / 2 : 1;
    } else if ((has_more && more) ||
               (!has_more && a->sync_max_seq > a->sync_after && a->sync_max_seq < seq)) {
        a->st->s_pages++;
        atk_sync_send(a, c, a->sync_max_seq, (mp_str){a->epoch, a->epoch_len});
        return;
    } else {
        a->st->s_done++;
        a->st->s_entries += a->sync_entries;
        a->st->s_bytes += a->sync_bytes;
        hist_add(&a->st->s_time_h, now - a->sync_t0);
    }
    if (a->attack & ATK_SESSIONS) {
        /* the extra sessions hold every other place the session limit leaves:
         * sync again on this connection instead of competing for a new one */
        atk_sync_start(a, c, seq, now);
        return;
    }
    a->sync_waiting = 0;
    atk_close(a, c, "sync done");
    a->sync_retry_ns = now;
}

static void atk_on_msg(void *ctx, wc_conn *c, const char *buf, size_t len)
{
    static const char *const keys[] = {"kind", "cid", "code", "message", "epoch"};
    atk *a = ctx;
    mp_str f[5];
    uint64_t now = bench_now_ns(), k;
    if (mp_pick_strs(buf, len, keys, f, 5) < 0 || !f[0].len) {
        atk_note(a, "undecodable frame from the gateway");
        return;
    }
    const mp_str kind = f[0];
    int is_sync = c == atk_sync(a);
#define KIND(s) (kind.len == sizeof(s) - 1 && !memcmp(kind.p, s, sizeof(s) - 1))
    if (KIND("text")) {
        if (is_sync && a->sync_waiting) {
            uint64_t seq = 0;
            a->sync_entries++;
            a->sync_bytes += len;
            if (mp_pick_uint(buf, len, "seq", &seq) == 1 && seq > a->sync_max_seq)
                a->sync_max_seq = seq;
        }
        if (atk_q_of(&a->g, f[1], &k) == 0 && c != atk_control(a)) a->st->copies++;
    } else if (KIND("ack")) {
        if (atk_q_of(&a->g, f[1], &k) == 0) {
            if (atk_q_answer(&a->g, k, 1, 0, now)) {
                a->st->g_acked++;
                a->displaced++;
                hist_add(&a->st->g_ack_h, now - a->g.sent_ns[k]);
            }
        } else if (atk_q_of(&a->f, f[1], &k) == 0 && atk_q_answer(&a->f, k, 1, 0, now)) {
            a->st->fill_entries++;
            a->st->fill_bytes += (uint64_t)a->cfg->atk_inbox_size;
        }
    } else if (KIND("hello")) {
        if (c->hello) return;
        c->hello = 1;
        wc_ready(a->eng, c);
        if (atk_is_session(a, c)) {
            a->sess_pending--;
            a->sess_open++;
            a->st->c_opened++;
            a->st->c_open = a->sess_open;
            if (a->sess_open > a->st->c_peak) a->st->c_peak = a->sess_open;
            a->sess_probe = 0;
        } else if (is_sync) {
            uint64_t seq = 0;
            a->st->s_hellos++;
            mp_pick_uint(buf, len, "seq", &seq);
            a->epoch_len = f[4].len < sizeof a->epoch ? f[4].len : sizeof a->epoch - 1;
            memcpy(a->epoch, f[4].p, a->epoch_len);
            atk_sync_start(a, c, seq, now);
        }
    } else if (KIND("sync")) {
        if (is_sync && a->sync_waiting) atk_sync_end(a, c, buf, len, now);
    } else if (KIND("error")) {
        char b[200];
        int limited = f[2].len == 12 && !memcmp(f[2].p, "rate_limited", 12);
        int again = limited || (f[2].len == 11 && !memcmp(f[2].p, "unavailable", 11));
        uint64_t ra = 0;
        if (mp_pick_uint(buf, len, "retry_after_ms", &ra) == 1)
            ra *= 1000000ull;
        else if (mp_pick_uint(buf, len, "retry_after", &ra) == 1)
            ra *= ATK_NS;
        if (atk_q_of(&a->g, f[1], &k) == 0) {
            if (atk_q_answer(&a->g, k, again ? 0 : -1, ra, now)) {
                if (limited)
                    a->st->g_rate_limited++;
                else if (again)
                    a->st->g_unavailable++;
                else
                    a->st->g_errors++;
            }
        } else if (atk_q_of(&a->f, f[1], &k) == 0) {
            if (atk_q_answer(&a->f, k, again ? 0 : -1, ra, now) && limited)
                a->st->fill_rate_limited++;
        } else if (is_sync && a->sync_waiting) { /* the sync refused (unavailable) */
            a->st->s_failed++;
            a->sync_waiting = 0;
            atk_close(a, c, "sync refused");
            a->sync_retry_ns = now + ATK_NS / 10;
        } else if (c == atk_control(a) && !a->group_answer) {
            a->group_answer = 2;
            snprintf(a->group_err, sizeof a->group_err, "%.*s %.*s", (int)f[2].len, f[2].p,
                     (int)(f[3].len > 80 ? 80 : f[3].len), f[3].p);
            if (limited) a->g.resume_ns = now + (ra > ATK_NS / 10 ? ra : ATK_NS / 10);
        }
        if (!again) {
            snprintf(b, sizeof b, "error from the gateway: %.*s %.*s", (int)f[2].len, f[2].p,
                     (int)(f[3].len > 120 ? 120 : f[3].len), f[3].p);
            atk_note(a, b);
        }
    } else if (KIND("group")) {
        if (c == atk_control(a)) a->group_answer = 1;
    }
#undef KIND
}

/* A refusal of the session limit: the upgrade answered 429, or the socket
 * closed with 4029 before hello. Returns 1 and sets *wait_ns (Retry-After, else
 * a second). */
static int atk_refused(const wc_conn *c, const char *why, uint64_t *wait_ns)
{
    if (c->hello || (!strstr(why, " 429") && !strstr(why, ": 4029"))) return 0;
    const char *ra = strstr(why, "Retry-After: ");
    long s = ra ? strtol(ra + 13, NULL, 10) : 0;
    *wait_ns = (s > 0 && s < 3600 ? (uint64_t)s : 1) * ATK_NS;
    return 1;
}

static void atk_on_close(void *ctx, wc_conn *c, const char *why)
{
    atk *a = ctx;
    uint64_t wait_ns = 0;
    int refused = atk_refused(c, why, &wait_ns);
    int had_hello = c->hello;
    char b[200];
    c->hello = 0;
    if (atk_is_session(a, c)) {
        if (had_hello) {
            a->sess_open--;
            a->st->c_open = a->sess_open;
            if (!a->closing) a->st->c_closed++;
        } else {
            a->sess_pending--;
            if (refused) {
                a->st->c_refused++;
                a->sess_probe = 1;
                a->sess_next_ns = bench_now_ns() + wait_ns;
            } else if (!a->closing) {
                a->st->c_failed++;
            }
        }
    } else if (c == atk_sync(a)) {
        if (a->sync_waiting && !a->closing) a->st->s_cut++;
        a->sync_waiting = 0;
        if (refused) {
            a->st->s_refused++;
            a->sync_retry_ns = bench_now_ns() + wait_ns;
            /* make room: one of our extra sessions goes */
            for (uint32_t i = 0; i < a->nsess; i++) {
                wc_conn *s = &a->conns[2 + BENCH_FILLERS + i];
                if (atk_open(s)) {
                    atk_close(a, s, "room for the sync connection");
                    break;
                }
            }
        } else if (!a->closing) {
            a->st->s_failed++;
            a->sync_retry_ns = bench_now_ns() + ATK_NS / 10;
        }
    } else if (c == atk_control(a)) {
        atk_q_lost(&a->g);
    } else {
        atk_q_lost(&a->f);
    }
    if (!a->closing && !refused) {
        snprintf(b, sizeof b, "attacker connection %u (user %s%u): %s", c->idx, a->cfg->prefix,
                 c->user, why);
        atk_note(a, b);
    }
}

static void atk_poll(atk *a, int timeout_ms)
{
    struct epoll_event ev[512];
    wc_flush(a->eng);
    int n = epoll_wait(wc_epfd(a->eng), ev, 512, timeout_ms);
    for (int i = 0; i < n; i++)
        wc_event(a->eng, ev[i].data.ptr, ev[i].events);
    wc_flush(a->eng);
}

/* Starts c if it is not open or opening. */
static void atk_start(atk *a, wc_conn *c)
{
    if (c->state != WC_CLOSED && c->state != WC_IDLE) return;
    c->hello = 0;
    wc_start(a->eng, c);
}

/* Opens the control connection and the fillers; 0 when all said hello. */
static int atk_connect_base(atk *a, uint64_t deadline)
{
    for (uint32_t i = 0; i <= BENCH_FILLERS; i++)
        atk_start(a, &a->conns[i]);
    while (!a->ctl->stop && bench_now_ns() < deadline) {
        int all = 1;
        for (uint32_t i = 0; i <= BENCH_FILLERS; i++) {
            wc_conn *c = &a->conns[i];
            all &= atk_open(c);
            if (c->state == WC_CLOSED) return -1;
        }
        if (all) return 0;
        atk_poll(a, 10);
    }
    return -1;
}

/* One group frame (create or add) with members [from, to) of the attacker's
 * fellow members; waits for its answer (backing off on rate_limited).
 * Returns 0 when the group frame came back. */
static int atk_group_frame(atk *a, const char *op, uint32_t from, uint32_t to)
{
    const bench_cfg *cfg = a->cfg;
    char *frame = malloc(256 + (size_t)(to - from) * 48), *p, name[64];
    if (!frame) return -1;
    for (int tries = 0; tries < 50 && !a->ctl->stop; tries++) {
        while (!a->ctl->stop && bench_now_ns() < a->g.resume_ns)
            atk_poll(a, 5);
        p = frame;
        p = mp_put_map(p, 4);
        p = mp_put_cstr(p, "kind");
        p = mp_put_cstr(p, "group");
        p = mp_put_cstr(p, "op");
        p = mp_put_cstr(p, op);
        p = mp_put_cstr(p, "name");
        p = mp_put_cstr(p, cfg->group);
        p = mp_put_cstr(p, "members");
        p = mp_put_array(p, to - from);
        for (uint32_t m = from; m < to; m++) {
            snprintf(name, sizeof name, "%s%u", cfg->prefix, a->conns[0].user + 1 + m);
            p = mp_put_cstr(p, name);
        }
        a->group_answer = 0;
        wc_queue(a->eng, atk_control(a), frame, (size_t)(p - frame));
        uint64_t deadline = bench_now_ns() + (uint64_t)cfg->connect_timeout_s * ATK_NS;
        while (!a->ctl->stop && !a->group_answer && atk_open(atk_control(a)) &&
               bench_now_ns() < deadline)
            atk_poll(a, 10);
        if (a->group_answer == 1) {
            free(frame);
            return 0;
        }
        if (a->group_answer != 2 || strncmp(a->group_err, "rate_limited", 12) != 0) break;
    }
    free(frame);
    char b[200];
    snprintf(b, sizeof b, "group %s %s: %s", op, cfg->group,
             a->group_answer == 2 ? a->group_err : "no answer");
    atk_note(a, b);
    return -1;
}

static void atk_group_setup(atk *a)
{
    uint64_t t0 = bench_now_ns();
    uint32_t others = (uint32_t)a->cfg->members - 1, done = 0;
    while (done < others || done == 0) {
        uint32_t to = done + ATK_CHUNK < others ? done + ATK_CHUNK : others;
        if (atk_group_frame(a, done == 0 ? "create" : "add", done, to) < 0) break;
        done = to;
        a->st->group_members = 1 + done;
        if (to == others) break;
    }
    a->st->group_setup_s = (double)(bench_now_ns() - t0) / 1e9;
}

/* Sends --attacker-inbox big texts from the fillers to the attacker and waits
 * for their acks (refusals retried; gives up after --connect-timeout s without
 * an answer). */
static void atk_fill(atk *a)
{
    const bench_cfg *cfg = a->cfg;
    uint64_t t0 = bench_now_ns(), n0 = a->f.n, last = t0;
    uint64_t seen = a->f.acked + a->f.limited + a->f.failed;
    uint32_t rr = 0;
    while (!a->ctl->stop) {
        uint64_t now = bench_now_ns();
        int new_ok = a->f.n - n0 < (uint64_t)cfg->atk_inbox;
        if (!new_ok && a->f.nretry == 0 && a->f.inflight == 0) break;
        for (uint32_t i = 0; i < BENCH_FILLERS && now >= a->f.resume_ns; i++) {
            wc_conn *c = &a->conns[1 + (rr++ % BENCH_FILLERS)];
            if (!atk_open(c)) {
                atk_start(a, c);
                continue;
            }
            if (a->f.inflight >= (uint64_t)ATK_FILL_WINDOW * BENCH_FILLERS) break;
            new_ok = a->f.n - n0 < (uint64_t)cfg->atk_inbox;
            atk_q_send(a, &a->f, c, a->to_user, a->fill_data, (size_t)cfg->atk_inbox_size, new_ok,
                       now);
        }
        uint64_t answered = a->f.acked + a->f.limited + a->f.failed;
        if (answered != seen) {
            seen = answered;
            last = now;
        } else if (now - last > (uint64_t)cfg->connect_timeout_s * ATK_NS) {
            atk_note(a, "filling the inbox: no answer within --connect-timeout");
            break;
        }
        atk_poll(a, 1);
    }
    a->st->fills++;
    a->st->fill_s = (double)(bench_now_ns() - t0) / 1e9;
    a->displaced = 0;
}

static void atk_group_pump(atk *a, uint64_t now)
{
    wc_conn *c = atk_control(a);
    if (!atk_open(c)) {
        atk_start(a, c);
        return;
    }
    while (a->g.inflight < (uint64_t)a->cfg->atk_window && now >= a->g.resume_ns) {
        if (!atk_q_send(a, &a->g, c, a->cfg->group, a->data, (size_t)a->cfg->size, 1, now)) break;
        a->st->g_sent++;
    }
}

static void atk_sync_pump(atk *a, uint64_t now)
{
    wc_conn *c = atk_sync(a);
    if ((c->state == WC_CLOSED || c->state == WC_IDLE) && now >= a->sync_retry_ns) atk_start(a, c);
}

static void atk_sessions_pump(atk *a, uint64_t now)
{
    if (now < a->sess_next_ns) return;
    /* while syncing too, the sync connection has the first claim on a place */
    wc_conn *y = atk_sync(a);
    if ((a->attack & ATK_SYNC) && (y->state == WC_CLOSED || y->state == WC_IDLE)) return;
    uint32_t at_once = a->sess_probe ? 1 : ATK_OPEN_AT_ONCE;
    for (uint32_t tried = 0;
         tried < a->nsess && a->sess_pending < at_once && a->sess_open + a->sess_pending < a->nsess;
         tried++) {
        wc_conn *c = &a->conns[2 + BENCH_FILLERS + (a->sess_cursor++ % a->nsess)];
        if (c->state != WC_CLOSED && c->state != WC_IDLE) continue;
        a->sess_pending++;
        a->st->c_attempted++;
        atk_start(a, c);
        if (a->sess_probe) a->sess_next_ns = now + ATK_NS;
    }
}

static void atk_step(atk *a, int step)
{
    bench_astat *st = a->st;
    const bench_cfg *cfg = a->cfg;
    st->g_sent = st->g_acked = st->g_rate_limited = st->g_unavailable = st->g_errors = 0;
    st->g_unanswered = 0;
    st->s_hellos = st->s_open_ns = 0;
    st->s_done = st->s_cut = st->s_not_recovered = st->s_entries = st->s_bytes = st->s_pages = 0;
    st->s_refused = st->s_failed = 0;
    st->c_attempted = st->c_opened = st->c_refused = st->c_failed = st->c_closed = 0;
    st->c_open = st->c_peak = st->copies = 0;
    hist_reset(&st->g_ack_h);
    hist_reset(&st->s_time_h);
    a->attack = a->ctl->attack;
    a->step = step;
    a->sync_retry_ns = a->sess_next_ns = 0;
    a->sess_probe = 0;
    uint64_t t0 = bench_now_ns(), t1 = t0 + (uint64_t)(a->ctl->duration_s * 1e9);
    while (!a->ctl->stop) {
        uint64_t now = bench_now_ns();
        if (now >= t1) break;
        if (a->attack & ATK_GROUP) atk_group_pump(a, now);
        if (a->attack & ATK_SYNC) atk_sync_pump(a, now);
        if (a->attack & ATK_SESSIONS) atk_sessions_pump(a, now);
        atk_poll(a, 1);
    }
    a->attack = 0;
    uint64_t deadline = bench_now_ns() + (uint64_t)cfg->drain_ms * 1000000ull;
    while (!a->ctl->stop && a->g.inflight && atk_open(atk_control(a)) && bench_now_ns() < deadline)
        atk_poll(a, 2);
    st->g_unanswered = a->g.inflight;
    if (a->sync_waiting) st->s_open_ns = bench_now_ns() - a->sync_t0;
    for (uint32_t i = 1 + BENCH_FILLERS; i < a->nconns; i++)
        atk_close(a, &a->conns[i], "end of the step");
    a->sess_open = a->sess_pending = 0;
    st->c_open = 0;
    atk_poll(a, 0);
    a->ws->step_done = step;
}

static void atk_build(atk *a)
{
    const bench_cfg *cfg = a->cfg;
    a->nsess = (uint32_t)cfg->atk_sessions;
    a->nconns = 2 + BENCH_FILLERS + a->nsess;
    a->conns = calloc(a->nconns, sizeof(wc_conn));
    a->data = malloc((size_t)cfg->size + 1);
    a->fill_data = malloc((size_t)cfg->atk_inbox_size + 1);
    if (!a->conns || !a->data || !a->fill_data) {
        fprintf(stderr, "parley-bench: out of memory\n");
        _exit(1);
    }
    for (long long i = 0; i < cfg->size; i++)
        a->data[i] = (char)('A' + i % 26);
    for (long long i = 0; i < cfg->atk_inbox_size; i++)
        a->fill_data[i] = (char)('a' + i % 26);
    for (uint32_t i = 0; i < a->nconns; i++) {
        wc_conn *c = &a->conns[i];
        c->fd = -1;
        c->idx = i;
        c->user = cfg->atk_user;
        if (i >= 1 && i <= BENCH_FILLERS)
            c->user = cfg->atk_user + (uint32_t)cfg->members + (i - 1);
        c->gw = (uint8_t)(i % (uint32_t)cfg->ngw);
        c->src = cfg->sources > 0 ? (uint32_t)(2 + i % (uint32_t)cfg->sources) : 0;
    }
    snprintf(a->to_user, sizeof a->to_user, "%s%u", cfg->prefix, cfg->atk_user);
    a->g.cidp_len = (size_t)snprintf(a->g.cidp, sizeof a->g.cidp, "%sg-", cfg->nonce);
    a->f.cidp_len = (size_t)snprintf(a->f.cidp, sizeof a->f.cidp, "%sf-", cfg->nonce);
    /* a tenth of margin for the entries that arrive between hello and sync */
    a->sync_depth = (uint64_t)(cfg->atk_inbox - cfg->atk_inbox / 10);
}

void attacker_main(const bench_cfg *cfg, bench_shm *shm, int w)
{
    atk a = {.cfg = cfg, .ctl = &shm->ctl, .ws = &shm->w[w], .st = &shm->atk};
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* the parent handles Ctrl-C and sets stop */
    wc_callbacks cb = {atk_on_msg, atk_on_close};
    a.eng = wc_new(cfg->gw, cfg->ngw, cfg->secret, cfg->prefix, &cb, &a);
    if (!a.eng) {
        snprintf(a.st->err, sizeof a.st->err, "cannot create epoll: %s", strerror(errno));
        a.ws->exited = 1;
        _exit(1);
    }
    atk_build(&a);
    a.ws->ready = 1;
    uint64_t deadline = bench_now_ns() + (uint64_t)cfg->connect_timeout_s * ATK_NS;
    if (atk_connect_base(&a, deadline) == 0) {
        atk_group_setup(&a);
        if (cfg->atk_inbox > 0) atk_fill(&a);
    } else {
        atk_note(&a, "the attacker's control or filler connections did not open");
    }
    a.ws->ready = 2;
    int step = 0, prep = 0;
    while (!a.ctl->stop) {
        if (a.ctl->prep > prep) {
            prep = a.ctl->prep;
            if ((a.ctl->attack & ATK_SYNC) && a.displaced && cfg->atk_inbox > 0) atk_fill(&a);
            a.st->prep_done = prep;
            continue;
        }
        if (a.ctl->step > step) {
            step = a.ctl->step;
            atk_step(&a, step);
            continue;
        }
        atk_poll(&a, 20);
    }
    a.ws->exited = 1;
    _exit(0);
}
