/* route.c - the per-message path: gateway->router envelopes from
 * parley:rt:N become calls of the `send` function (common/lua/send.lua), in
 * arrival order on the single command connection.
 *
 * Batching (group commit): messages are collected while a call is in flight
 * and sent as one call when its answer comes back, at most ROUTE_BATCH_MAX
 * per call and at most ROUTE_BATCH_GROUPS group messages (a full batch goes
 * at once, whatever is in flight). That bounds one call's work (send.lua:
 * 1:1 messages two inbox writes each, inline group members at most
 * --fanout-chunk in all, and a queued group message one COPY of its member
 * set). With nothing
 * in flight a message goes at the end of the loop turn it arrived in (with
 * the others of that turn): an idle router adds no delay, a busy one makes
 * its batches as large as the time Redis takes for the previous one. The
 * function runs them in order and publishes one payload per gateway, so the
 * per-call costs (the FCALL, a PUBLISH and a socket write per gateway) are
 * paid once per batch, not per message.
 * Before anything else is sent on the command connection that must follow
 * the messages (a slot release), route_flush() sends the open batch.
 *
 * The script stores, delivers and acks atomically (a message to a large
 * group: stores and queues; its reply entry "pending" hands the group to
 * fanout.c, which acks when the last member has it), so this file only decodes,
 * validates and batches: scripts_send_batch_add (common/scripts.h) turns a
 * message into its KEYS and ARGV. The msgpack zone is reused from message to
 * message. A malformed envelope is logged and dropped with the rest of its
 * payload: the sender's gateway gets no answer, so its client retries or
 * gives up; nothing else is affected.
 *
 * Backpressure: with more than ROUTE_MAX_IN_FLIGHT messages unanswered,
 * reading the subscriber socket pauses (Redis buffers for us) until half of
 * them are answered. That bounds the command backlog, so the lease renewals
 * queued behind it stay timely and no other router claims a slot whose
 * messages are still queued here. (hiredis re-arms reads after its own
 * writes, so the pause is re-applied on each message while over the mark.) */
#include "router.h"

#include "bus.h"
#include "log.h"
#include "proto.h"
#include "scripts.h"

#include <stdlib.h>
#include <string.h>

#define ROUTE_MAX_IN_FLIGHT    4096
#define ROUTE_RESUME_IN_FLIGHT (ROUTE_MAX_IN_FLIGHT / 2)

#define ROUTE_CALLS_MAX 1 /* partial batches wait while this many calls are in flight */

/* what route_done needs of one call */
typedef struct route_call {
    router *r;
    int count;
    int counted; /* in calls_in_flight: not a call in steps with a group message, whose member
                  * steps can take seconds; the runner serves the calls' steps in turn
                  * (common/scripts_run.c), so the next batch need not wait for it */
} route_call;

static void route_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    router *r = arg;
    (void)fd;
    (void)what;
    if (r->calls_in_flight < ROUTE_CALLS_MAX) route_flush(r);
}

void route_init(router *r)
{
    r->limits = (scripts_send_limits){
        .inbox_cap = r->cfg.inbox_cap,
        .history_cap = r->cfg.history_cap,
        .inbox_bytes = r->cfg.inbox_bytes,
        .history_bytes = r->cfg.history_bytes,
        .dedupe_ttl_s = r->cfg.dedupe_ttl,
        .fanout_chunk = r->cfg.fanout_chunk,
        .user_rate = r->cfg.user_rate,
        .user_burst = r->cfg.user_burst,
        .fanout_rate = r->cfg.user_fanout_rate,
        .fanout_burst = r->cfg.user_fanout_burst,
        .byte_rate = r->cfg.user_byte_rate,
        .byte_burst = r->cfg.user_byte_burst,
    };
    scripts_send_batch_init(&r->batch, &r->limits);
    scripts_send_batch_wait(&r->batch, (int)r->cfg.wait_replicas, (int)r->cfg.wait_timeout);
    if (r->cfg.send_steps || r->cfg.wait_replicas > 0) {
        scripts_send_batch_steps(&r->batch, 1);
        log_info("messages are stored in steps, each inside one hash slot (send_step)%s",
                 r->cfg.wait_replicas > 0 ? ", each step WAITed for its replicas" : "");
    }
    msgpack_unpacked_init(&r->unpacked);
    r->flush_ev = event_new(r->base, -1, 0, route_flush_cb, r);
}

void route_free(router *r)
{
    msgpack_unpacked_destroy(&r->unpacked);
    if (r->flush_ev) event_free(r->flush_ev);
    r->flush_ev = NULL;
    scripts_send_batch_free(&r->batch);
}

static void route_pause(router *r)
{
    if (!r->sub) return;
    if (!r->paused) log_debug("backpressure: %lld sends in flight, pausing", r->in_flight);
    r->paused = 1;
    r->sub->ev.delRead(r->sub->ev.data);
}

static void route_resume(router *r)
{
    r->paused = 0;
    if (r->sub) r->sub->ev.addRead(r->sub->ev.data);
}

/* One message's entry of the script's reply. */
static void route_count(router *r, const redisReply *rep)
{
    switch (rep->type) {
    case REDIS_REPLY_ARRAY:
        if (rep->elements == 5 && rep->element[4]->type == REDIS_REPLY_STRING) {
            /* stored, its fan-out queued (or a retry of one): fanout.c acks it */
            r->stats.pending++;
            fanout_want(r, rep->element[4]->str, rep->element[4]->len);
        } else if (rep->elements == 4) {
            r->stats.dups++;
        } else {
            r->stats.routed++;
            if (log_enabled(LOG_LVL_DEBUG) && rep->elements == 3)
                log_debug("stored id %lld seq %lld", rep->element[0]->integer,
                          rep->element[1]->integer);
        }
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        if (rep->len > 7 && memcmp(rep->str, "failed:", 7) == 0) {
            r->stats.failed++;
            log_error("send script: one message %s", rep->str);
        } else if (strcmp(rep->str, "rate_limited") == 0) {
            r->stats.limited++;
        } else {
            r->stats.no_user++;
        }
        break;
    default:
        r->stats.failed++;
        log_error("send script: unexpected reply type %d", rep->type);
    }
}

static void route_done(redisAsyncContext *ac, void *reply, void *privdata)
{
    route_call *call = privdata;
    router *r = call->r;
    redisReply *rep = reply;
    (void)ac;

    r->in_flight -= call->count;
    if (r->paused && r->in_flight <= ROUTE_RESUME_IN_FLIGHT) route_resume(r);
    if (!rep) {
        /* the link dropped with the call unanswered: it may or may not
         * have run; the clients retry with their cids either way */
        r->stats.lost += (unsigned long long)call->count;
    } else if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements; i++)
            route_count(r, rep->element[i]);
        if (rep->elements != (size_t)call->count)
            log_error("send script answered %zu entries for %d messages", rep->elements,
                      call->count);
    } else {
        r->stats.failed += (unsigned long long)call->count;
        log_error("send script failed for %d messages: %s", call->count,
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    }
    r->calls_in_flight -= call->counted;
    free(call);
    if (r->batch.count && r->calls_in_flight < ROUTE_CALLS_MAX)
        route_flush(r); /* what gathered meanwhile */
}

void route_set_steps(router *r, int steps)
{
    if (r->cfg.wait_replicas > 0) steps = 1; /* the ack follows WAIT: only steps do that */
    if (steps == r->batch.steps) return;
    if (r->batch.count) { /* gathered for the other mode: the clients retry them */
        r->stats.lost += (unsigned long long)r->batch.count;
        scripts_send_batch_clear(&r->batch);
    }
    scripts_send_batch_steps(&r->batch, steps);
    log_info("messages are stored %s", steps ? "in steps, each inside one hash slot (send_step)"
                                             : "in one call per batch (send)");
}

void route_flush(router *r)
{
    int count = r->batch.count;
    if (!count) return;
    int counted = !(r->batch.steps && r->batch_groups > 0);
    r->batch_groups = 0;
    route_call *call = malloc(sizeof *call);
    if (!call || !conn_ready(r)) {
        free(call);
        r->stats.lost += (unsigned long long)count;
        scripts_send_batch_clear(&r->batch);
        return;
    }
    call->r = r;
    call->count = count;
    call->counted = counted;
    int rc = scripts_send_batch_call(&r->batch, r->cmd, route_done, call);
    r->stats.batches++;
    if (rc != REDIS_OK) {
        free(call);
        r->stats.lost += (unsigned long long)count;
        return;
    }
    r->calls_in_flight += counted;
    r->in_flight += count;
    if (r->in_flight >= ROUTE_MAX_IN_FLIGHT) route_pause(r);
}

/* Copies s into a NUL-terminated buffer (names are at most 33 bytes). */
static const char *route_cstr(char *buf, size_t size, proto_str s)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    memcpy(buf, s.p, n);
    buf[n] = '\0';
    return buf;
}

/* Adds one decoded envelope to the batch. */
static void route_one(router *r, unsigned slot, const bus_text *m)
{
    char from[PROTO_NAME_MAX + 2], to[PROTO_NAME_MAX + 2], conv[2 * PROTO_NAME_MAX + 4];

    route_cstr(from, sizeof(from), m->from);
    route_cstr(to, sizeof(to), m->to);
    if (keys_conv(conv, sizeof(conv), from, to) < 0) {
        r->stats.malformed++;
        log_warn("slot %u: dropped an envelope with unusable names", slot);
        return;
    }
    unsigned want = keys_slot(conv, strlen(conv));
    if (want != slot)
        log_warn("slot %u: %s -> %s belongs to slot %u (gateway %.*s misrouted it)", slot, from, to,
                 want, (int)m->gw.len, m->gw.p);
    if (!conn_ready(r)) {
        r->stats.lost++;
        return;
    }

    if (scripts_send_batch_add(&r->batch, from, to, m->data.p, m->data.len, m->cid.p, m->cid.len,
                               m->gw.p, m->gw.len, m->conn, m->kind, m->ref, m->on) != 0) {
        r->stats.lost++; /* out of memory */
        return;
    }
    if (to[0] == '#') r->batch_groups++;
    if (r->batch.count >= ROUTE_BATCH_MAX || r->batch_groups >= ROUTE_BATCH_GROUPS)
        route_flush(r);
    else if (r->batch.count == 1 && r->calls_in_flight < ROUTE_CALLS_MAX)
        event_active(r->flush_ev, EV_TIMEOUT, 1);
}

void route_message(router *r, unsigned slot, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        bus_text m;
        size_t used = 0;
        if (bus_next_text(buf + off, len - off, &r->unpacked, &m, &used) != 0) {
            r->stats.malformed++;
            log_warn("slot %u: dropped a malformed envelope (%zu of %zu bytes left)", slot,
                     len - off, len);
            return;
        }
        off += used;
        route_one(r, slot, &m);
    }
    if (len == 0) {
        r->stats.malformed++;
        log_warn("slot %u: dropped an empty message", slot);
    }
}
