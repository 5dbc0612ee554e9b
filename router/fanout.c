/* fanout.c - drives the queued group fan-outs of the slots this router holds:
 * calls of the `fanout` function (common/lua/fanout.lua), one bounded step
 * (at most --fanout-chunk + 1 member writes) at a time.
 *
 * Which groups: a `send` reply entry "pending" names one (route.c), and every
 * slot tick reads parley:fanouts (SMEMBERS) and adds each group of a slot
 * held here, so the jobs of a router that died, or of a slot that moved, are
 * finished by the slot's next owner. The groups wait in a ring, at most
 * FANOUT_GROUPS_MAX (more wait in parley:fanouts for a later tick): one step
 * for the group at the head, then it goes to the back if it has more to do
 * (round-robin: a 5,000-member group does not hold up a 100-member one).
 *
 * At most one step is in flight, on the command connection, between the send
 * batches: a 1:1 message, a lease renewal or a heartbeat waits behind at most
 * one send call and one step, never behind a whole fan-out. Steps are atomic
 * and take their members from Redis, so two routers stepping the same group
 * (a slot moving) cannot write a member twice. */
#include "router.h"

#include "log.h"
#include "scripts.h"

#include <stdio.h>
#include <string.h>

static int fanout_find(const router *r, const char *group)
{
    for (int i = 0; i < r->fo_count; i++)
        if (strcmp(r->fo_ring[(r->fo_head + i) % FANOUT_GROUPS_MAX], group) == 0) return i;
    return -1;
}

static void fanout_push(router *r, const char *group)
{
    if (r->fo_count == FANOUT_GROUPS_MAX) return; /* parley:fanouts keeps it for a later tick */
    char *slot = r->fo_ring[(r->fo_head + r->fo_count) % FANOUT_GROUPS_MAX];
    snprintf(slot, sizeof r->fo_ring[0], "%s", group);
    r->fo_count++;
}

static void fanout_kick(router *r);

static void fanout_done(redisAsyncContext *ac, void *reply, void *privdata)
{
    router *r = privdata;
    redisReply *rep = reply;
    (void)ac;
    r->fo_busy = 0;
    int again = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
        rep->element[0]->type == REDIS_REPLY_STRING) {
        const char *st = rep->element[0]->str;
        if (strcmp(st, "more") == 0) {
            again = 1;
        } else if (strcmp(st, "done") == 0 && rep->elements == 4) {
            r->stats.fanned++;
            again = rep->element[3]->integer > 0;
        }
        if (rep->elements >= 3)
            r->stats.fanout_writes += (unsigned long long)rep->element[2]->integer;
        r->stats.fanout_steps++;
    } else if (rep) {
        log_error("fanout %s: %s", r->fo_current,
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    }
    /* an error or a lost link: the group stays in parley:fanouts for a later tick */
    if (again && fanout_find(r, r->fo_current) < 0) fanout_push(r, r->fo_current);
    fanout_kick(r);
}

/* The next step, if none is in flight: the head group of a slot still held. */
static void fanout_kick(router *r)
{
    while (!r->fo_busy && r->fo_count > 0 && !r->stopping && conn_ready(r)) {
        char *group = r->fo_ring[r->fo_head];
        r->fo_head = (r->fo_head + 1) % FANOUT_GROUPS_MAX;
        r->fo_count--;
        if (!slots_held(r, keys_slot(group, strlen(group)))) continue;
        snprintf(r->fo_current, sizeof r->fo_current, "%s", group);
        if (scripts_fanout(r->cmd, fanout_done, r, r->fo_current, &r->limits) == REDIS_OK)
            r->fo_busy = 1;
    }
}

void fanout_want(router *r, const char *group, size_t len)
{
    char name[sizeof r->fo_ring[0]];
    if (len == 0 || len >= sizeof name) return;
    memcpy(name, group, len);
    name[len] = '\0';
    if (strcmp(name, r->fo_current) == 0 && r->fo_busy) {
        /* its step is in flight: it comes back to the ring if it has more */
    } else if (fanout_find(r, name) < 0) {
        fanout_push(r, name);
    }
    fanout_kick(r);
}

static void fanout_members_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    router *r = privdata;
    redisReply *rep = reply;
    (void)ac;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || r->stopping) return;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        if (slots_held(r, keys_slot(e->str, e->len))) fanout_want(r, e->str, e->len);
    }
}

void fanout_poll(router *r)
{
    if (r->cmd) conn_commandf(r, fanout_members_cb, r, "SMEMBERS %s", KEY_FANOUTS);
}
