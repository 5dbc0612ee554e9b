/* worker.c - one load-generator process: opens its share of the
 * connections, then runs the traffic steps the parent asks for.
 *
 * Traffic is open-loop: during a step the worker sends, on every tick of a
 * timerfd, as many messages as the schedule (rate x elapsed time) says are
 * due, whatever the answers do; frames due on one socket in one tick go out in
 * one write. Each message's cid is "<nonce><worker>-<k>", k indexing the
 * worker's message table (send time, state, deliveries), so an ack or a
 * delivery finds its message in O(1). After the sending time the worker
 * drains (waits for every ack and delivery, at most --drain-ms), counts the
 * step (lost = acked but not delivered to everyone it should reach) and
 * publishes step_done.
 *
 * --ops: the texts of the first step are the targets of the later ones. Their
 * acks give each text's server id; an edit, react or delete step sends, as
 * its n-th frame, the op on the n-th text of the first step, from its author
 * (one frame per text: every one changes something). Each such frame has a
 * cid and an entry of its own in the message table (the ack finds it); its
 * deliveries carry no cid, only the text's id, which a hash of id -> text ->
 * the current step's frame (op_k) leads back to it. */
#include "bench.h"
#include "mpack.h"
#include "wconn.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum { MSG_ACKED = 1, MSG_ERROR = 2 };

typedef struct worker {
    const bench_cfg *cfg;
    bench_wstat *st;
    bench_ctl *ctl;
    int w;
    wc_engine *eng;
    wc_conn *conns;
    uint32_t nconns, next; /* next connection to start */
    uint32_t *senders;     /* indexes into conns */
    uint32_t *peer;        /* pair mode: receiver user of each sender (by conn idx) */
    uint32_t nsenders, rr;
    /* message table */
    uint64_t *sent_ns;
    uint16_t *dcount;
    uint8_t *mstate;
    uint32_t *msender;         /* the conn that sent it */
    uint64_t *mid;             /* --ops: a text's server id (from its ack; 0: none) */
    uint64_t *op_k;            /* --ops: a text's frame in the current op step */
    uint64_t seed_k0, seed_k1; /* --ops: the texts of the first step */
    uint64_t *ids;             /* --ops: open-addressing hash, id -> text (0: empty) */
    uint64_t *ids_k;
    uint64_t ids_mask;
    bench_op cur_op; /* what the current step sends */
    uint64_t nmsg, capmsg, step_k0;
    uint64_t answered; /* messages of this step acked or refused */
    uint32_t expect;   /* deliveries per message */
    char cidp[24];     /* "<nonce><w>-" */
    size_t cidp_len;
    char data[65536];
    char edit_data[65536]; /* --ops edit: the new text, as long, other letters */
    int tfd;
    int group_frames;
} worker;

static void worker_note(worker *wk, const char *what)
{
    if (!wk->st->err[0]) snprintf(wk->st->err, sizeof wk->st->err, "%s", what);
}

static void worker_on_close(void *ctx, wc_conn *c, const char *why)
{
    worker *wk = ctx;
    char buf[200];
    if (c->hello) {
        wk->st->closed++;
        wk->st->open_gw[c->gw]--;
        snprintf(buf, sizeof buf, "user %s%u: %s", wk->cfg->prefix, c->user, why);
    } else {
        wk->st->failed++;
        snprintf(buf, sizeof buf, "connecting user %s%u: %s", wk->cfg->prefix, c->user, why);
    }
    worker_note(wk, buf);
}

static int worker_msg_of(worker *wk, mp_str cid, uint64_t *k)
{
    return mp_cid_index(cid, wk->cidp, wk->cidp_len, wk->nmsg, k);
}

/* --ops: the text with server id `id`, as an index in the message table */
static int worker_text_of(worker *wk, uint64_t id, uint64_t *k)
{
    if (!wk->ids || !id) return -1;
    for (uint64_t h = (id * 0x9E3779B97F4A7C15ull) & wk->ids_mask;; h = (h + 1) & wk->ids_mask) {
        if (wk->ids[h] == id) {
            *k = wk->ids_k[h];
            return 0;
        }
        if (!wk->ids[h]) return -1;
    }
}

/* --ops: hashes the ids of the first step's acked texts */
static void worker_index_texts(worker *wk)
{
    uint64_t n = wk->seed_k1 - wk->seed_k0, size = 64;
    while (size < 2 * n)
        size *= 2;
    free(wk->ids);
    free(wk->ids_k);
    wk->ids = calloc(size, sizeof(uint64_t));
    wk->ids_k = calloc(size, sizeof(uint64_t));
    if (!wk->ids || !wk->ids_k) {
        worker_note(wk, "out of memory for the id index");
        free(wk->ids);
        wk->ids = NULL;
        return;
    }
    wk->ids_mask = size - 1;
    for (uint64_t k = wk->seed_k0; k < wk->seed_k1; k++) {
        uint64_t id = wk->mid[k], h = (id * 0x9E3779B97F4A7C15ull) & wk->ids_mask;
        if (!id) continue;
        while (wk->ids[h])
            h = (h + 1) & wk->ids_mask;
        wk->ids[h] = id;
        wk->ids_k[h] = k;
    }
}

/* One delivery of message k of the table (a text, or an op's frame). */
static void worker_delivered(worker *wk, uint64_t k, uint64_t now)
{
    if (k < wk->step_k0) {
        wk->st->late++;
        return;
    }
    wk->dcount[k]++;
    wk->st->delivered++;
    wk->st->tlast_ns = now;
    hist_add(&wk->st->lat_h, now - wk->sent_ns[k]);
    if (wk->dcount[k] == wk->expect) hist_add(&wk->st->last_h, now - wk->sent_ns[k]);
    if (wk->dcount[k] > wk->expect) wk->st->dups++;
}

static void worker_on_msg(void *ctx, wc_conn *c, const char *buf, size_t len)
{
    static const char *const keys[] = {"kind", "cid", "code", "message"};
    worker *wk = ctx;
    mp_str f[4];
    uint64_t now = bench_now_ns(), k;
    if (mp_pick_strs(buf, len, keys, f, 4) < 0 || !f[0].len) {
        worker_note(wk, "undecodable frame from the gateway");
        return;
    }
    const mp_str kind = f[0];
#define KIND(s) (kind.len == sizeof(s) - 1 && !memcmp(kind.p, s, sizeof(s) - 1))
    if (KIND("text")) {
        if (worker_msg_of(wk, f[1], &k) < 0) return; /* not ours (an older run) */
        worker_delivered(wk, k, now);
    } else if (KIND("edit") || KIND("react") || KIND("delete")) {
        uint64_t id, t;
        if (mp_pick_uint(buf, len, "id", &id) != 1 || worker_text_of(wk, id, &t) < 0) return;
        k = wk->op_k[t];
        if (k == UINT64_MAX) return; /* not a target of any step yet */
        if (strlen(bench_op_name(wk->cur_op)) != kind.len ||
            memcmp(bench_op_name(wk->cur_op), kind.p, kind.len) != 0) {
            wk->st->late++; /* an earlier step's */
            return;
        }
        worker_delivered(wk, k, now);
    } else if (KIND("ack")) {
        if (worker_msg_of(wk, f[1], &k) < 0 || k < wk->step_k0) return;
        if (wk->mstate[k] & MSG_ACKED) {
            wk->st->dups++;
            return;
        }
        if (!wk->mstate[k]) wk->answered++;
        wk->mstate[k] |= MSG_ACKED;
        wk->st->acked++;
        hist_add(&wk->st->ack_h, now - wk->sent_ns[k]);
        uint64_t id;
        if (wk->cfg->nops > 1 && mp_pick_uint(buf, len, "id", &id) == 1) wk->mid[k] = id;
    } else if (KIND("hello")) {
        if (c->hello) return;
        c->hello = 1;
        wc_ready(wk->eng, c);
        wk->st->opened++;
        wk->st->open_gw[c->gw]++;
        wk->st->t_last_open_ns = now;
        hist_add(&wk->st->connect_h, now - c->t_start);
    } else if (KIND("error")) {
        char b[200];
        wk->st->errors++;
        if (f[2].len == 12 && !memcmp(f[2].p, "rate_limited", 12)) wk->st->rate_limited++;
        snprintf(b, sizeof b, "error from the gateway: %.*s %.*s", (int)f[2].len, f[2].p,
                 (int)(f[3].len > 120 ? 120 : f[3].len), f[3].p);
        worker_note(wk, b);
        if (worker_msg_of(wk, f[1], &k) == 0 && k >= wk->step_k0) {
            if (!wk->mstate[k]) wk->answered++;
            wk->mstate[k] |= MSG_ERROR;
        }
    } else if (KIND("group")) {
        if (!c->group_seen) wk->group_frames++;
        c->group_seen = 1;
    }
#undef KIND
}

static int worker_tick(worker *wk, long long us)
{
    struct itimerspec it = {{us / 1000000, (us % 1000000) * 1000},
                            {us / 1000000, (us % 1000000) * 1000}};
    return timerfd_settime(wk->tfd, 0, &it, NULL);
}

/* Runs the epoll loop once (at most until the next tick). */
static void worker_poll(worker *wk, int timeout_ms)
{
    struct epoll_event ev[512];
    int n = epoll_wait(wc_epfd(wk->eng), ev, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        if (ev[i].data.ptr == NULL) {
            uint64_t x;
            if (read(wk->tfd, &x, sizeof x) < 0 && errno != EAGAIN) worker_note(wk, "timerfd");
            continue;
        }
        wc_event(wk->eng, ev[i].data.ptr, ev[i].events);
    }
    wc_flush(wk->eng);
}

static void worker_connect_all(worker *wk)
{
    const bench_cfg *cfg = wk->cfg;
    double rate = cfg->connect_rate > 0 ? (double)cfg->connect_rate / (double)cfg->procs : 0;
    uint64_t t0 = bench_now_ns(), last_progress = t0, seen = 0;
    wk->st->t_first_ns = t0;
    worker_tick(wk, 1000);
    while (!wk->ctl->stop) {
        uint64_t now = bench_now_ns();
        uint64_t allowed = rate > 0 ? (uint64_t)((double)(now - t0) * rate / 1e9) + 1 : wk->nconns;
        while (wk->next < wk->nconns && wk->next < allowed &&
               wc_pending(wk->eng) < (uint64_t)cfg->inflight) {
            wc_conn *c = &wk->conns[wk->next++];
            wk->st->attempted++;
            wc_start(wk->eng, c);
        }
        uint64_t done = wk->st->opened + wk->st->failed;
        if (done >= wk->nconns) break;
        if (done != seen) {
            seen = done;
            last_progress = now;
        } else if (now - last_progress > (uint64_t)cfg->connect_timeout_s * 1000000000ull) {
            for (uint32_t i = 0; i < wk->nconns; i++) {
                wc_conn *c = &wk->conns[i];
                if (c->state == WC_CONNECTING || c->state == WC_UPGRADING ||
                    (c->state == WC_OPEN && !c->hello))
                    wc_close(wk->eng, c, "no hello within --connect-timeout");
            }
            break;
        }
        worker_poll(wk, 50);
    }
    worker_tick(wk, 0);
}

static int worker_grow_msgs(worker *wk, uint64_t need)
{
    if (need <= wk->capmsg) return 0;
    uint64_t n = wk->capmsg ? wk->capmsg : 65536;
    while (n < need)
        n *= 2;
    uint64_t *s = realloc(wk->sent_ns, n * sizeof(*s));
    if (s) wk->sent_ns = s;
    uint16_t *d = realloc(wk->dcount, n * sizeof(*d));
    if (d) wk->dcount = d;
    uint8_t *m = realloc(wk->mstate, n);
    if (m) wk->mstate = m;
    uint32_t *ms = realloc(wk->msender, n * sizeof(*ms));
    if (ms) wk->msender = ms;
    uint64_t *id = realloc(wk->mid, n * sizeof(*id));
    if (id) wk->mid = id;
    uint64_t *ok = realloc(wk->op_k, n * sizeof(*ok));
    if (ok) wk->op_k = ok;
    if (!s || !d || !m || !ms || !id || !ok) return -1;
    wk->capmsg = n;
    return 0;
}

/* Builds and queues one frame from sender conn c (index s) to `to`: a text,
 * or (--ops) the op on text t of the first step. */
static void worker_send(worker *wk, uint32_t s, const char *to, bench_op op, uint64_t t,
                        uint64_t now)
{
    char frame[66000], cid[48], *p = frame;
    uint64_t k = wk->nmsg++;
    int cl = snprintf(cid, sizeof cid, "%s%llu", wk->cidp, (unsigned long long)k);
    size_t size = (size_t)wk->cfg->size;
    wk->sent_ns[k] = now;
    wk->dcount[k] = 0;
    wk->mstate[k] = 0;
    wk->msender[k] = s;
    wk->mid[k] = 0;
    wk->op_k[k] = UINT64_MAX;
    if (op == OP_TEXT) {
        p = mp_put_text(p, to, wk->data, size, cid, (size_t)cl);
    } else {
        wk->op_k[t] = k;
        p = mp_put_map(p, op == OP_DELETE ? 4 : op == OP_EDIT ? 5 : 6);
        p = mp_put_cstr(p, "kind");
        p = mp_put_cstr(p, bench_op_name(op));
        p = mp_put_cstr(p, "with");
        p = mp_put_cstr(p, to);
        p = mp_put_cstr(p, "id");
        p = mp_put_uint(p, wk->mid[t]);
        if (op == OP_EDIT) {
            p = mp_put_cstr(p, "data");
            p = mp_put_str(p, wk->edit_data, size);
        } else if (op == OP_REACT) {
            p = mp_put_cstr(p, "emoji");
            p = mp_put_cstr(p, "\xf0\x9f\x91\x8d"); /* U+1F44D thumbs up */
            p = mp_put_cstr(p, "on");
            p = mp_put_bool(p, 1);
        }
        p = mp_put_cstr(p, "cid");
        p = mp_put_str(p, cid, (size_t)cl);
    }
    wc_queue(wk->eng, &wk->conns[s], frame, (size_t)(p - frame));
    wk->st->sent++;
}

static void worker_step(worker *wk, int step)
{
    bench_wstat *st = wk->st;
    const bench_cfg *cfg = wk->cfg;
    bench_op op = cfg->nops > 1 && step <= cfg->nops ? cfg->op[step - 1] : OP_TEXT;
    double rate = wk->ctl->rate / (double)cfg->procs;
    wk->cur_op = op;
    uint64_t dur = (uint64_t)(wk->ctl->duration_s * 1e9);
    st->sent = st->acked = st->delivered = st->errors = st->rate_limited = st->dups = 0;
    st->late = st->lost = st->unacked = st->expected = 0;
    hist_reset(&st->lat_h);
    hist_reset(&st->last_h);
    hist_reset(&st->ack_h);
    hist_reset(&st->lag_h);
    wk->step_k0 = wk->nmsg;
    wk->answered = 0;
    uint64_t total = (uint64_t)(rate * wk->ctl->duration_s) + 16;
    if (worker_grow_msgs(wk, wk->nmsg + total) < 0) {
        worker_note(wk, "out of memory for the message table");
        st->step_done = step;
        return;
    }
    uint64_t t0 = bench_now_ns(), t1 = t0 + dur, nsent = 0;
    st->t0_ns = t0;
    st->t1_ns = t1;
    st->tlast_ns = t0;
    worker_tick(wk, cfg->tick_us);
    char to[64];
    while (!wk->ctl->stop && wk->nsenders > 0) {
        uint64_t now = bench_now_ns();
        if (now >= t1) break;
        uint64_t due = (uint64_t)((double)(now - t0) * rate / 1e9);
        if (due > total - 16) due = total - 16;
        while (nsent < due) {
            /* message n is due once (n + 1) / rate seconds have passed */
            uint64_t sched = t0 + (uint64_t)((double)(nsent + 1) * 1e9 / rate);
            hist_add(&st->lag_h, now > sched ? now - sched : 0);
            /* a text from the next sender, or the op on the next text of the first step
             * (skipped when that text was not acked: it has no id) */
            uint64_t t = wk->seed_k0 + nsent;
            nsent++;
            if (op != OP_TEXT && (t >= wk->seed_k1 || !wk->mid[t])) continue;
            uint32_t s = op == OP_TEXT ? wk->senders[wk->rr++ % wk->nsenders] : wk->msender[t];
            if (cfg->mode == MODE_FANOUT)
                snprintf(to, sizeof to, "%s", cfg->group);
            else
                snprintf(to, sizeof to, "%s%u", cfg->prefix, wk->peer[s]);
            if (wk->conns[s].state == WC_OPEN) worker_send(wk, s, to, op, t, now);
        }
        wc_flush(wk->eng);
        worker_poll(wk, 100);
    }
    st->t1_ns = bench_now_ns();
    /* drain: every message answered and every delivery made, or time out */
    uint64_t deadline = bench_now_ns() + (uint64_t)cfg->drain_ms * 1000000ull;
    uint64_t k1 = wk->nmsg;
    while (!wk->ctl->stop && bench_now_ns() < deadline) {
        if (wk->answered == k1 - wk->step_k0 && st->delivered >= st->acked * wk->expect) break;
        worker_poll(wk, 2);
    }
    worker_tick(wk, 0);
    uint64_t lost = 0, unacked = 0, expected = 0;
    for (uint64_t k = wk->step_k0; k < k1; k++) {
        if (wk->mstate[k] & MSG_ACKED) {
            expected += wk->expect;
            if (wk->dcount[k] < wk->expect) lost++;
        } else if (!(wk->mstate[k] & MSG_ERROR)) {
            unacked++;
        }
    }
    st->lost = lost;
    st->unacked = unacked;
    st->expected = expected;
    if (cfg->nops > 1 && step == 1) { /* the texts the op steps act on */
        wk->seed_k0 = wk->step_k0;
        wk->seed_k1 = k1;
        worker_index_texts(wk);
    }
    st->step_done = step;
}

/* Fan-out: member 0 creates the group with everyone else in it; every member
 * must see the group frame before traffic starts. */
static void worker_group_setup(worker *wk)
{
    char *frame = malloc(64 + (size_t)wk->nconns * 40), *p = frame, name[64];
    if (!frame) {
        worker_note(wk, "out of memory");
        return;
    }
    uint32_t others = 0;
    for (uint32_t i = 1; i < wk->nconns; i++)
        others += wk->conns[i].hello;
    p = mp_put_map(p, 4);
    p = mp_put_cstr(p, "kind");
    p = mp_put_cstr(p, "group");
    p = mp_put_cstr(p, "op");
    p = mp_put_cstr(p, "create");
    p = mp_put_cstr(p, "name");
    p = mp_put_cstr(p, wk->cfg->group);
    p = mp_put_cstr(p, "members");
    p = mp_put_array(p, others);
    for (uint32_t i = 1; i < wk->nconns; i++) {
        if (!wk->conns[i].hello) continue;
        snprintf(name, sizeof name, "%s%u", wk->cfg->prefix, wk->conns[i].user);
        p = mp_put_cstr(p, name);
    }
    wc_queue(wk->eng, &wk->conns[0], frame, (size_t)(p - frame));
    free(frame);
    wc_flush(wk->eng);
    uint64_t deadline = bench_now_ns() + (uint64_t)wk->cfg->connect_timeout_s * 1000000000ull;
    while (!wk->ctl->stop && wk->group_frames < (int)(others + 1) && bench_now_ns() < deadline &&
           !(wk->st->errors && wk->group_frames == 0))
        worker_poll(wk, 20);
    if (wk->group_frames < (int)(others + 1)) {
        char b[160];
        snprintf(b, sizeof b, "group %s: %d of %u members saw the group frame", wk->cfg->group,
                 wk->group_frames, others + 1);
        worker_note(wk, b);
    }
    wk->expect = others; /* the sender's only session is the sending one */
}

static void worker_build(worker *wk)
{
    const bench_cfg *cfg = wk->cfg;
    int w = wk->w, P = (int)cfg->procs;
    uint32_t n = 0;
    uint64_t total = cfg->mode == MODE_CONNECT  ? (uint64_t)cfg->connections
                     : cfg->mode == MODE_FANOUT ? (uint64_t)cfg->members
                                                : (uint64_t)cfg->pairs * 2;
    wk->conns = calloc(total / (uint64_t)P + 2, sizeof(wc_conn));
    wk->senders = calloc(total / (uint64_t)P + 2, sizeof(uint32_t));
    wk->peer = calloc(total / (uint64_t)P + 2, sizeof(uint32_t));
    if (!wk->conns || !wk->senders || !wk->peer) {
        fprintf(stderr, "parley-bench: out of memory\n");
        _exit(1);
    }
    for (uint64_t j = 0; j < total; j++) {
        if (cfg->mode == MODE_PAIR || cfg->mode == MODE_RAMP || cfg->mode == MODE_NOISY) {
            uint64_t pair = j / 2;
            if ((int)(pair % (uint64_t)P) != w) continue;
            wc_conn *c = &wk->conns[n];
            c->user = (uint32_t)(cfg->user_offset + j);
            c->gw = (uint8_t)((pair + (j & 1)) % (uint64_t)cfg->ngw);
            if (!(j & 1)) {
                wk->peer[n] = c->user + 1;
                wk->senders[wk->nsenders++] = n;
            }
        } else {
            if ((int)(j % (uint64_t)P) != w) continue;
            wk->conns[n].user = (uint32_t)(cfg->user_offset + j);
            wk->conns[n].gw = (uint8_t)(j % (uint64_t)cfg->ngw);
            if (cfg->mode == MODE_FANOUT && j == 0) wk->senders[wk->nsenders++] = n;
        }
        wc_conn *c = &wk->conns[n];
        c->fd = -1;
        c->idx = n;
        c->src = cfg->sources > 0 ? (uint32_t)(2 + j % (uint64_t)cfg->sources) : 0;
        n++;
    }
    wk->nconns = n;
    wk->st->conns = n;
    wk->expect = 1;
}

void worker_main(const bench_cfg *cfg, bench_shm *shm, int w)
{
    worker wk = {.cfg = cfg, .st = &shm->w[w], .ctl = &shm->ctl, .w = w};
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* the parent handles Ctrl-C and sets stop */
    wk.cidp_len = (size_t)snprintf(wk.cidp, sizeof wk.cidp, "%s%d-", cfg->nonce, w);
    for (long long i = 0; i < cfg->size; i++) {
        wk.data[i] = (char)('a' + i % 26);
        wk.edit_data[i] = (char)('A' + i % 26);
    }
    wc_callbacks cb = {worker_on_msg, worker_on_close};
    wk.eng = wc_new(cfg->gw, cfg->ngw, cfg->secret, cfg->prefix, &cb, &wk);
    wk.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (!wk.eng || wk.tfd < 0) {
        snprintf(wk.st->err, sizeof wk.st->err, "cannot create epoll/timerfd: %s", strerror(errno));
        wk.st->exited = 1;
        _exit(1);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(wc_epfd(wk.eng), EPOLL_CTL_ADD, wk.tfd, &ev);
    worker_build(&wk);
    worker_connect_all(&wk);
    wk.st->ready = 1;
    if (cfg->mode == MODE_FANOUT && wk.nconns > 0 && wk.conns[0].hello) worker_group_setup(&wk);
    wk.st->ready = 2;
    int step = 0;
    while (!wk.ctl->stop) {
        if (wk.ctl->step > step) {
            step = wk.ctl->step;
            worker_step(&wk, step);
            continue;
        }
        worker_poll(&wk, 20);
    }
    wk.st->exited = 1;
    _exit(0);
}
