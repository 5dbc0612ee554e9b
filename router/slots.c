/* slots.c - which routing slots this router serves.
 *
 * Every lease/3 ms (and right after connecting) one "tick":
 *   TIME; ZADD parley:routers now ID; drop members silent for 3 leases;
 *   ZCOUNT members that beat within one lease (= live routers, n);
 *   GET parley:slot:0..63 (one GET each: on a Redis Cluster the 64 lease keys
 *   are in 64 hash slots, which no one command may span), then, once all
 *   have answered (or at the next beat, with what answered: on a cluster
 *   with a master away the GETs of its lease keys wait, then fail; a slot
 *   whose owner is not known this tick is neither claimed, dropped nor
 *   re-adopted, and its lease, if ours, is renewed: nobody can claim it
 *   while its master is away), decide with share = ceil(64 / n):
 *   - renew every lease we hold (renew_slot script),
 *   - drop a slot whose lease no longer names us,
 *   - re-adopt a slot whose lease still names us (after a reconnect),
 *   - claim free slots (SET NX PX) up to the share, lowest first,
 *   - release slots above the share, highest first;
 *   then SMEMBERS parley:fanouts: the queued fan-outs of held slots (fanout.c).
 * A slot is served from its claim until its release: SUBSCRIBE parley:rt:N
 * right after the claim; a release first UNSUBSCRIBEs, and only when Redis
 * confirms it (every message published before is then already queued on the
 * command connection) runs release_slot, so the next owner starts after the
 * last message of this one. Every slot change is logged on one line.
 *
 * The subscriber connection also holds one permanent subscription (channel
 * parley:routers): hiredis 0.14 leaves subscribed mode when the count of
 * subscriptions reaches 0 and then aborts on a SUBSCRIBE reply already in
 * flight, so the count must never reach 0. */
#include "router.h"

#include "log.h"
#include "scripts.h"
#include "walltime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int slots_held(const router *r, unsigned slot)
{
    return slot < PARLEY_SLOTS && r->slot[slot] == SLOT_HELD;
}

static unsigned slots_count(const router *r, slot_state st)
{
    unsigned n = 0;
    for (unsigned i = 0; i < PARLEY_SLOTS; i++)
        n += r->slot[i] == st;
    return n;
}

static void slots_leave(router *r);

/* Shutdown progress: once nothing is claimed, held or being released. */
static void slots_check_done(router *r)
{
    if (!r->stopping || r->leaving) return;
    if (slots_count(r, SLOT_FREE) == PARLEY_SLOTS) slots_leave(r);
}

/* --- release ----------------------------------------------------------------- */

static void slots_release_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    slot_ref *ref = privdata;
    router *r = ref->r;
    (void)ac;
    (void)reply;
    if (r->slot[ref->slot] == SLOT_RELEASING) r->slot[ref->slot] = SLOT_FREE;
    slots_check_done(r);
}

static void slots_release_now(router *r, unsigned slot)
{
    route_flush(r); /* the slot's last messages go before the release */
    if (!r->cmd || scripts_release_slot(r->cmd, slots_release_cb, &r->slot_refs[slot], slot,
                                        r->cfg.id) != REDIS_OK) {
        r->slot[slot] = SLOT_FREE;
        slots_check_done(r);
    }
}

/* Messages, subscribe and unsubscribe confirmations of parley:rt:N. */
static void slots_sub_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    router *r = privdata;
    redisReply *rep = reply;
    unsigned slot;
    (void)ac;

    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) return;
    const redisReply *kind = rep->element[0], *chan = rep->element[1];
    if (kind->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING) return;
    if (sscanf(chan->str, CHAN_ROUTER, &slot) != 1 || slot >= PARLEY_SLOTS) return;

    if (strcmp(kind->str, "message") == 0) {
        if (rep->element[2]->type == REDIS_REPLY_STRING)
            route_message(r, slot, rep->element[2]->str, rep->element[2]->len);
    } else if (strcmp(kind->str, "unsubscribe") == 0 && r->slot[slot] == SLOT_RELEASING) {
        slots_release_now(r, slot);
    }
}

static void slots_subscribe(router *r, unsigned slot)
{
    char chan[KEYS_MAX];
    keys_fmt(chan, sizeof(chan), CHAN_ROUTER, slot);
    if (r->sub) redisAsyncCommand(r->sub, slots_sub_cb, r, "SUBSCRIBE %s", chan);
}

/* Stop serving a slot: UNSUBSCRIBE now, release_slot once confirmed. */
static void slots_drop(router *r, unsigned slot, const char *why)
{
    char chan[KEYS_MAX];
    keys_fmt(chan, sizeof(chan), CHAN_ROUTER, slot);
    log_info("released slot %u (%s)", slot, why);
    r->slot[slot] = SLOT_RELEASING;
    if (!r->sub || redisAsyncCommand(r->sub, NULL, NULL, "UNSUBSCRIBE %s", chan) != REDIS_OK)
        slots_release_now(r, slot);
}

/* --- claim and renew ------------------------------------------------------------ */

static void slots_claim_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    slot_ref *ref = privdata;
    router *r = ref->r;
    redisReply *rep = reply;
    unsigned slot = ref->slot;
    (void)ac;

    if (r->slot[slot] != SLOT_CLAIMING) return;
    if (!rep || rep->type != REDIS_REPLY_STATUS) { /* nil: another router was faster */
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_warn("claim of slot %u: %s (the next tick tries again)", slot, rep->str);
        r->slot[slot] = SLOT_FREE;
        slots_check_done(r);
        return;
    }
    if (r->stopping) { /* claimed while shutting down: give it straight back */
        r->slot[slot] = SLOT_RELEASING;
        slots_release_now(r, slot);
        return;
    }
    r->slot[slot] = SLOT_HELD;
    slots_subscribe(r, slot);
    log_info("claimed slot %u (holding %u)", slot, slots_count(r, SLOT_HELD));
}

static void slots_claim_one(router *r, unsigned slot, const char *lease)
{
    char key[KEYS_MAX];
    const char *argv[] = {"SET", keys_fmt(key, sizeof(key), KEY_SLOT, slot), r->cfg.id, "NX", "PX",
                          lease};
    r->slot[slot] = SLOT_CLAIMING;
    if (conn_command(r, slots_claim_cb, &r->slot_refs[slot], 6, argv, NULL) != REDIS_OK)
        r->slot[slot] = SLOT_FREE;
}

static void slots_renew_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    slot_ref *ref = privdata;
    router *r = ref->r;
    redisReply *rep = reply;
    (void)ac;
    if (!rep) return;
    if (rep->type == REDIS_REPLY_ERROR) {
        log_warn("renew_slot %u: %s", ref->slot, rep->str);
    } else if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 0 &&
               r->slot[ref->slot] == SLOT_HELD) {
        slots_drop(r, ref->slot, "lease expired before renewal");
    }
}

static void slots_renew(router *r, unsigned slot)
{
    scripts_renew_slot(r->cmd, slots_renew_cb, &r->slot_refs[slot], slot, r->cfg.id,
                       r->cfg.lease_ms);
}

/* The decision step, on every slot's owner (r->owner). */
static void slots_decide(router *r)
{
    const char *id = r->cfg.id;
    long long n = r->live_routers > 0 ? r->live_routers : 1;
    unsigned share = (unsigned)((PARLEY_SLOTS + n - 1) / n);
    unsigned held = 0;
    char lease[24];

    snprintf(lease, sizeof(lease), "%lld", r->cfg.lease_ms);
    for (unsigned i = 0; i < PARLEY_SLOTS; i++) {
        const char *o = r->owner[i];
        if (!r->owner_known[i]) { /* its lease key's master is away: keep what we had */
            if (r->slot[i] == SLOT_HELD || r->slot[i] == SLOT_RELEASING) slots_renew(r, i);
            held += r->slot[i] == SLOT_HELD;
            continue;
        }
        int ours = o[0] && strcmp(o, id) == 0;
        if (r->slot[i] == SLOT_HELD && !ours) {
            char why[160];
            snprintf(why, sizeof(why), "lease lost, owner now %s", o[0] ? o : "nobody");
            slots_drop(r, i, why);
        } else if (r->slot[i] == SLOT_FREE && ours) {
            /* our lease outlived a reconnect: serve it again */
            r->slot[i] = SLOT_HELD;
            slots_subscribe(r, i);
            log_info("re-adopted slot %u", i);
        }
        if ((r->slot[i] == SLOT_HELD || r->slot[i] == SLOT_RELEASING) && ours) slots_renew(r, i);
        held += r->slot[i] == SLOT_HELD;
    }

    if (held > share) {
        char why[64];
        snprintf(why, sizeof(why), "rebalance: %lld routers, share %u", n, share);
        for (unsigned i = PARLEY_SLOTS; i-- > 0 && held > share;) {
            if (r->slot[i] != SLOT_HELD) continue;
            slots_drop(r, i, why);
            held--;
        }
        return;
    }
    unsigned pending = slots_count(r, SLOT_CLAIMING);
    for (unsigned i = 0; i < PARLEY_SLOTS && held + pending < share; i++) {
        if (r->slot[i] != SLOT_FREE || !r->owner_known[i] || r->owner[i][0]) continue;
        slots_claim_one(r, i, lease);
        pending++;
    }
}

/* --- the tick ------------------------------------------------------------------ */

/* The tick decides with the owners it knows (every GET answered, or the next
 * beat came first), and ends. */
static void slots_tick_end(router *r)
{
    int gets = r->tick_gets;
    r->tick_busy = 0;
    r->tick_gets = 0;
    if (!gets || r->stopping || !conn_ready(r)) return;
    slots_decide(r);
    fanout_poll(r); /* queued fan-outs of the slots held now (another router's, too) */
}

/* One lease's GET answered; the last one decides. */
static void slots_owner_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    slot_ref *ref = privdata;
    router *r = ref->r;
    redisReply *rep = reply;
    char *o = r->owner[ref->slot];
    (void)ac;
    r->owner_wait[ref->slot] = 0;
    if (!r->tick_busy || !r->tick_gets || r->owner_tick[ref->slot] != r->tick_no)
        return; /* of a tick that decided without it */
    if (rep && rep->type == REDIS_REPLY_STRING && rep->len > 0) {
        /* an id too long to keep is not ours (ours fits): keep a prefix */
        size_t n = rep->len < ROUTER_OWNER_MAX - 1 ? rep->len : ROUTER_OWNER_MAX - 1;
        memcpy(o, rep->str, n);
        o[n] = '\0';
        r->owner_known[ref->slot] = 1;
    } else if (rep && rep->type == REDIS_REPLY_NIL) {
        o[0] = '\0';
        r->owner_known[ref->slot] = 1;
    } else {
        if (rep && rep->type == REDIS_REPLY_ERROR && !r->owners_failed)
            log_warn("slot owners: GET of slot %u: %s (the next tick tries again)", ref->slot,
                     rep->str);
        r->owners_failed = 1;
    }
    if (--r->owners_left > 0) return;
    slots_tick_end(r);
}

static void slots_count_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    router *r = privdata;
    redisReply *rep = reply;
    (void)ac;
    if (rep && rep->type == REDIS_REPLY_INTEGER) {
        if (rep->integer != r->live_routers)
            log_info("%lld live router%s", rep->integer, rep->integer == 1 ? "" : "s");
        r->live_routers = rep->integer;
    }
}

/* What a TIME names: its router (the first TIME answered while the tick is
 * at its TIME step drives it: see slots_tick). */
typedef struct slots_time_ref {
    router *r;
} slots_time_ref;

static void slots_time_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    slots_time_ref *ref = privdata;
    router *r = ref->r;
    redisReply *rep = reply;
    char now_s[24], old_s[24], live_s[24], key[KEYS_MAX];
    (void)ac;

    int stale = !r->tick_busy || r->tick_gets;
    free(ref);
    if (stale) return;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || !conn_ready(r) ||
        r->stopping) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_warn("TIME: %s (the next tick tries again)", rep->str);
        r->tick_busy = 0;
        return;
    }
    conn_healthy(r);
    long long now = atoll(rep->element[0]->str) * 1000 + atoll(rep->element[1]->str) / 1000;
    snprintf(now_s, sizeof(now_s), "%lld", now);
    snprintf(old_s, sizeof(old_s), "(%lld", now - 3 * r->cfg.lease_ms);
    snprintf(live_s, sizeof(live_s), "%lld", now - r->cfg.lease_ms);
    conn_commandf(r, NULL, NULL, "ZADD %s %s %s", KEY_ROUTERS, now_s, r->cfg.id);
    conn_commandf(r, NULL, NULL, "ZREMRANGEBYSCORE %s -inf %s", KEY_ROUTERS, old_s);
    conn_commandf(r, slots_count_cb, r, "ZCOUNT %s %s +inf", KEY_ROUTERS, live_s);
    r->owners_left = 1; /* held until every GET is queued */
    r->owners_failed = 0;
    r->tick_gets = 1;
    for (unsigned i = 0; i < PARLEY_SLOTS; i++) {
        const char *argv[] = {"GET", keys_fmt(key, sizeof(key), KEY_SLOT, i)};
        r->owner_known[i] = 0;
        if (r->owner_wait[i]) continue; /* the last tick's still waits (its master is away) */
        r->owner_tick[i] = r->tick_no;
        r->owner_wait[i] = 1;
        r->owners_left++;
        if (conn_command(r, slots_owner_cb, &r->slot_refs[i], 2, argv, NULL) == REDIS_OK) continue;
        r->owner_wait[i] = 0; /* not queued: unknown this tick */
        r->owners_left--;
        r->owners_failed = 1;
    }
    if (--r->owners_left == 0) slots_tick_end(r);
}

static void slots_tick(router *r)
{
    uint64_t now = walltime_ms();
    if (r->stopping || !conn_ready(r)) return;
    int again = 0; /* another TIME for the tick at its TIME step */
    if (r->tick_busy) {
        /* the last one still waits for GETs (a master away, or hung until the link's reply
         * timeout): decide with what it knows, then a new one, so that the leases on the other
         * masters are renewed in time. At its TIME step: one TIME more (the first answered
         * goes on; a slow Redis is not abandoned) */
        if (now - r->tick_start_ms < (uint64_t)r->cfg.lease_ms / 6) return;
        if (r->tick_gets) {
            slots_tick_end(r);
            if (r->stopping || !conn_ready(r)) return;
        } else {
            again = 1;
        }
    }
    slots_time_ref *ref = malloc(sizeof *ref);
    if (!ref) return;
    ref->r = r;
    if (!again) ++r->tick_no;
    r->tick_start_ms = now;
    if (conn_commandf(r, slots_time_cb, ref, "TIME") != REDIS_OK) {
        free(ref);
        if (!again) r->tick_busy = 0;
        return;
    }
    r->tick_busy = 1;
    r->tick_gets = 0;
}

static void slots_beat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slots_tick(arg);
}

/* The permanent subscription (see the top of this file); its messages are
 * ignored. */
static void slots_anchor_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    (void)reply;
    (void)privdata;
}

void slots_init(router *r)
{
    long long ms = r->cfg.lease_ms / 3;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    for (unsigned i = 0; i < PARLEY_SLOTS; i++) {
        r->slot[i] = SLOT_FREE;
        r->slot_refs[i].r = r;
        r->slot_refs[i].slot = i;
    }
    r->beat_ev = event_new(r->base, -1, EV_PERSIST, slots_beat, r);
    event_add(r->beat_ev, &tv);
}

void slots_on_ready(router *r)
{
    redisAsyncCommand(r->sub, slots_anchor_cb, NULL, "SUBSCRIBE %s", KEY_ROUTERS);
    slots_tick(r);
}

void slots_on_down(router *r)
{
    unsigned n = PARLEY_SLOTS - slots_count(r, SLOT_FREE);
    if (n) log_info("dropped %u slot%s with the redis link", n, n == 1 ? "" : "s");
    for (unsigned i = 0; i < PARLEY_SLOTS; i++)
        r->slot[i] = SLOT_FREE;
    r->tick_busy = 0;
    r->tick_gets = 0;
    r->live_routers = 0;
}

static void slots_zrem_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    router *r = privdata;
    (void)ac;
    if (reply) log_info("left %s", KEY_ROUTERS);
    router_exit(r);
}

static void slots_leave(router *r)
{
    r->leaving = 1;
    if (!r->cmd ||
        conn_commandf(r, slots_zrem_cb, r, "ZREM %s %s", KEY_ROUTERS, r->cfg.id) != REDIS_OK)
        router_exit(r);
}

/* Shutdown: release every slot (UNSUBSCRIBE first), then ZREM ourselves. */
void slots_shutdown(router *r)
{
    if (r->beat_ev) event_del(r->beat_ev);
    if (!conn_ready(r)) {
        router_exit(r);
        return;
    }
    for (unsigned i = 0; i < PARLEY_SLOTS; i++)
        if (r->slot[i] == SLOT_HELD) slots_drop(r, i, "shutting down");
    slots_check_done(r);
}
