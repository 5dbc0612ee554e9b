/* frame_group.c - `group`: create, join, leave, add, remove, promote, demote
 * (the group script, which also judges the roles and the blocks). The group
 * frame reaches every member, this session too (and those removed), through
 * their gateways; "nothing changed" answers this session alone.
 *
 * The rate of group work: an op naming k members costs k /
 * FRAME_GROUP_PER_TOKEN more tokens of the session's --rate bucket (a create
 * of 5,000 members: 50 more), so a socket cannot repeat big changes at the
 * frame rate; short of tokens: error rate_limited, nothing done. Per user
 * across sessions, the group script allows one change of a group of 64
 * members or more per --group-op-interval: its rate_limited is answered and
 * counted the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "frame_handlers.h"
#include "log.h"
#include "metrics.h"
#include "redis_link.h"
#include "scripts.h"
#include "walltime.h"

#define FRAME_GROUP_PER_TOKEN 100.0 /* members named per extra token */

static void frame_group_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    gw_session *s = sess_find((uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("group script: %s", rep->str);
        frame_unavailable(s, "group change not stored: retry later");
        return;
    }
    redisReply *st = rep->element[0];
    if (st->len == 4 && !memcmp(st->str, "same", 4) && rep->elements >= 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING) {
        deliver_send(s, DQ_CONN, rep->element[1]->str, rep->element[1]->len);
    } else if (st->len == 5 && !memcmp(st->str, "error", 5) && rep->elements >= 3 &&
               rep->element[1]->type == REDIS_REPLY_STRING &&
               rep->element[2]->type == REDIS_REPLY_STRING) {
        char code[24], msg[128];
        snprintf(code, sizeof code, "%.*s", (int)rep->element[1]->len, rep->element[1]->str);
        snprintf(msg, sizeof msg, "%.*s", (int)rep->element[2]->len, rep->element[2]->str);
        if (!strcmp(code, "rate_limited")) metrics_inc(METRIC_RATE_LIMITED);
        sess_send_error(s, code, msg, NULL);
    }
    /* "ok": the group frame reaches every member (this session too) through
     * its gateway channel */
}

void frame_group(gw_session *s, const proto_frame *f)
{
    char name[PROTO_NAME_MAX + 2];
    memcpy(name, f->name.p, f->name.len);
    name[f->name.len] = '\0';
    uint32_t nm = f->members ? f->nmembers : 0;
    if (nm && frame_spend(s, (double)nm / FRAME_GROUP_PER_TOKEN) < 0) {
        metrics_inc(METRIC_RATE_LIMITED);
        sess_send_error(s, "rate_limited", "group change too big for the rate limit: retry later",
                        NULL);
        return;
    }
    const char **members = calloc(nm ? nm : 1, sizeof *members);
    size_t *lens = calloc(nm ? nm : 1, sizeof *lens);
    if (!members || !lens) {
        free(members);
        free(lens);
        sess_send_error(s, "unavailable", "out of memory", NULL);
        return;
    }
    for (uint32_t i = 0; i < nm; i++) {
        members[i] = f->members->via.array.ptr[i].via.str.ptr;
        lens[i] = f->members->via.array.ptr[i].via.str.size;
    }
    if (scripts_group(rl_commands(), frame_group_cb, (void *)(uintptr_t)s->conn, f->op, name,
                      s->user, f->open, (int64_t)walltime_ms(), frame_cfg()->group_max,
                      frame_cfg()->groups_created, frame_cfg()->group_op_interval, members, lens,
                      nm) != REDIS_OK)
        frame_unavailable(s, "group change not stored: retry later");
    free(members);
    free(lens);
}
