/* cluster_ids.c - `parley cluster-ids`: after a store moved from one Redis to
 * a Redis Cluster (docs/deploy.md "Moving a store from one Redis to a
 * cluster"), raises the message id counter of every cluster slot,
 * parley:{TAG}:ids (keys.h KEY_SLOT_IDS), to at least top / 16384, top being
 * the last id the one Redis handed out (its parley:ids). On a cluster an id is
 * counter x 16384 + slot (common/lua/send_step.lua), so every id stored from
 * then on is above every id of the old store, and ids keep increasing within
 * each conversation.
 *
 * The top: --top N, or --from URL (the old Redis: its parley:ids), and in any
 * case the cluster's own copy of parley:ids when the import brought one: the
 * largest wins. A counter is only ever raised (GET, then INCRBY of the
 * difference: a concurrent INCR makes it higher still, never lower), so the
 * command is safe to repeat and on a running cluster. It refuses while the
 * old store (--from) or the cluster holds queued group fan-outs
 * (parley:fanouts: send.lua's jobs, which a cluster's routers cannot run), and
 * while a router still beats in the old store (parley:routers). Each master gets its slots'
 * commands pipelined; a slot that moved meanwhile is done on its own with cli_command (which
 * follows MOVED/ASK). */
#include "cli.h"
#include "keys.h"
#include "redisurl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* ids are Lua numbers (doubles) in the scripts: exact below 2^53 */
#define IDS_TOP_MAX ((1LL << 53) - 1)

/* How much a counter (value v; absent: the key does not exist) goes up. */
static long long ids_delta(const ids_run *run, long long v, int absent)
{
    if (run->add > 0) return absent && run->existing_only ? 0 : run->add;
    return v < run->need ? run->need - v : 0;
}

/* *out = the integer value of a GET reply (nil: 0, and *absent = 1). 0, or -1
 * after printing when it is not a counter (the message names key). */
static int ids_value(const redisReply *r, const char *key, long long *out, int *absent)
{
    *absent = r->type == REDIS_REPLY_NIL;
    *out = 0;
    if (*absent) return 0;
    if (r->type == REDIS_REPLY_STRING) {
        char *end;
        errno = 0;
        long long v = strtoll(r->str, &end, 10);
        if (errno == 0 && end != r->str && *end == '\0' && v >= 0) {
            *out = v;
            return 0;
        }
    }
    if (r->type == REDIS_REPLY_ERROR)
        cli_fail("redis: GET %s: %s", key, r->str);
    else
        cli_fail("%s holds %s, not a counter: a key Parley did not write; look at it "
                 "(redis-cli -c GET '%s') before going on",
                 key, r->type == REDIS_REPLY_STRING ? r->str : "a non-string", key);
    return -1;
}

/* Counts a counter of value v that goes up by d (> 0) or stays. */
static void ids_count(ids_run *run, long long d)
{
    if (d > 0)
        run->changed++;
    else
        run->kept++;
}

/* An INCRBY reply for a counter that was v and went up by d. 0 or CLI_FAIL. */
static int ids_check_incr(const redisReply *r, const char *key, long long v, long long d,
                          const char *why)
{
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= v + d) return 0;
    return cli_fail("redis: INCRBY %s: %s", key,
                    !r                             ? why
                    : r->type == REDIS_REPLY_ERROR ? r->str
                                                   : "unexpected reply");
}

/* One counter on its own, following redirections. 0 or CLI_FAIL. */
static int ids_adjust_one(cli_ctx *ctx, ids_run *run, const char *key)
{
    long long v;
    int absent;
    redisReply *r = cli_command(ctx, "GET %s", key);
    if (!r) return cli_fail("redis: GET %s: %s", key, cli_errstr(ctx));
    int bad = ids_value(r, key, &v, &absent);
    freeReplyObject(r);
    if (bad) return CLI_FAIL;
    long long d = ids_delta(run, v, absent);
    ids_count(run, d);
    if (d == 0 || run->dry_run) return 0;
    r = cli_command(ctx, "INCRBY %s %lld", key, d);
    int rc = ids_check_incr(r, key, v, d, cli_errstr(ctx));
    if (r) freeReplyObject(r);
    return rc;
}

/* Whether r redirects (the slot moved, or is moving): then the key is done on
 * its own. */
static int ids_redirected(const redisReply *r)
{
    cluster_redirect rd;
    return r->type == REDIS_REPLY_ERROR && (cluster_parse_redirect(r->str, r->len, &rd) == 1 ||
                                            strncmp(r->str, "TRYAGAIN", 8) == 0);
}

/* The counters of the slots with owner n in owner[] (every slot when owner is
 * NULL), pipelined on c: every GET, then an INCRBY for each that goes up; a
 * key redirected meanwhile again on its own. 0 or CLI_FAIL. */
static int ids_adjust_node(cli_ctx *ctx, ids_run *run, redisContext *c, const int16_t *owner, int n)
{
    enum { BATCH = 1024 };
    static long long vals[BATCH], deltas[BATCH];
    static unsigned slots[BATCH];
    static char redirected[BATCH];
    char key[KEYS_MAX];
    unsigned s = 0;
    while (s < CLUSTER_SLOTS) {
        int count = 0, sent = 0;
        for (; s < CLUSTER_SLOTS && count < BATCH; s++) {
            if (owner && owner[s] != n) continue;
            keys_fmt(key, sizeof key, KEY_SLOT_IDS, cluster_slot_tag(s));
            if (redisAppendCommand(c, "GET %s", key) != REDIS_OK)
                return cli_fail("redis: %s", c->errstr);
            slots[count++] = s;
        }
        for (int i = 0; i < count; i++) { /* the GETs' replies */
            void *reply;
            if (redisGetReply(c, &reply) != REDIS_OK) return cli_fail("redis: %s", c->errstr);
            redisReply *r = reply;
            int absent = 0, bad = 0;
            keys_fmt(key, sizeof key, KEY_SLOT_IDS, cluster_slot_tag(slots[i]));
            redirected[i] = (char)ids_redirected(r);
            if (!redirected[i]) bad = ids_value(r, key, &vals[i], &absent);
            freeReplyObject(r);
            if (bad) return CLI_FAIL;
            deltas[i] = redirected[i] ? 0 : ids_delta(run, vals[i], absent);
        }
        for (int i = 0; i < count; i++) {
            if (redirected[i]) continue;
            ids_count(run, deltas[i]);
            if (deltas[i] == 0 || run->dry_run) continue;
            keys_fmt(key, sizeof key, KEY_SLOT_IDS, cluster_slot_tag(slots[i]));
            if (redisAppendCommand(c, "INCRBY %s %lld", key, deltas[i]) != REDIS_OK)
                return cli_fail("redis: %s", c->errstr);
            sent++;
        }
        for (int i = 0; i < count && sent > 0; i++) { /* the INCRBYs' replies, in order */
            if (redirected[i] || deltas[i] == 0) continue;
            void *reply;
            if (redisGetReply(c, &reply) != REDIS_OK) return cli_fail("redis: %s", c->errstr);
            redisReply *r = reply;
            sent--;
            keys_fmt(key, sizeof key, KEY_SLOT_IDS, cluster_slot_tag(slots[i]));
            int rc = 0;
            if (ids_redirected(r)) { /* moved since the GET: again on its own */
                run->changed--;
                redirected[i] = 1;
            } else {
                rc = ids_check_incr(r, key, vals[i], deltas[i], "");
            }
            freeReplyObject(r);
            if (rc) return rc;
        }
        for (int i = 0; i < count; i++) {
            if (!redirected[i]) continue;
            keys_fmt(key, sizeof key, KEY_SLOT_IDS, cluster_slot_tag(slots[i]));
            if (ids_adjust_one(ctx, run, key) != 0) return CLI_FAIL;
        }
    }
    return 0;
}

int cli_ids_adjust(cli_ctx *ctx, ids_run *run, const cluster_map *m)
{
    if (!m) {
        redisContext *c = cli_redis(ctx);
        return c ? ids_adjust_node(ctx, run, c, NULL, 0) : CLI_FAIL;
    }
    for (int n = 0; n < m->nnodes; n++) {
        unsigned first = 0;
        while (first < CLUSTER_SLOTS && m->owner[first] != n)
            first++;
        if (first == CLUSTER_SLOTS) continue; /* a master without slots */
        char key[KEYS_MAX];
        keys_fmt(key, sizeof key, KEY_SLOT_IDS, cluster_slot_tag(first));
        redisContext *c = cli_redis_for(ctx, key); /* that master's connection (made once) */
        if (!c) return CLI_FAIL;
        if (ids_adjust_node(ctx, run, c, m->owner, n) != 0) return CLI_FAIL;
    }
    return 0;
}

/* Refuses (CLI_FAIL after printing) while a router still beats in the old
 * store's parley:routers (within IDS_ROUTER_LIVE_MS of its TIME): what it
 * stores after the import would not be on the cluster. */
#define IDS_ROUTER_LIVE_MS 30000
static int ids_from_routers(redisContext *c)
{
    redisReply *t = redisCommand(c, "TIME");
    redisReply *z = redisCommand(c, "ZRANGE %s -1 -1 WITHSCORES", KEY_ROUTERS);
    int rc = 0;
    if (!t || !z || t->type != REDIS_REPLY_ARRAY || t->elements != 2 ||
        z->type != REDIS_REPLY_ARRAY) {
        rc = cli_fail("--from: TIME / ZRANGE %s: %s", KEY_ROUTERS,
                      z && z->type == REDIS_REPLY_ERROR ? z->str : c->errstr);
    } else if (z->elements == 2) { /* the newest beat: id, ms */
        long long now = strtoll(t->element[0]->str, NULL, 10) * 1000 +
                        strtoll(t->element[1]->str, NULL, 10) / 1000;
        long long ago = now - strtoll(z->element[1]->str, NULL, 10);
        if (ago < IDS_ROUTER_LIVE_MS)
            rc = cli_fail("the old store (--from) has a live router: %s beat %lld ms ago (%s). "
                          "Stop its routers (after the gateways, once %s is empty), import "
                          "again, then run this again: what they store after the import is "
                          "not on the cluster",
                          z->element[0]->str, ago, KEY_ROUTERS, KEY_FANOUTS);
    }
    if (t) freeReplyObject(t);
    if (z) freeReplyObject(z);
    return rc;
}

/* The top id of the old Redis at url (its parley:ids; 0 when absent), after
 * checking that it has no queued fan-outs. 0, or CLI_USAGE / CLI_FAIL after
 * printing. */
static int ids_from(const char *prog, const char *url, long long *top)
{
    char err[512];
    redisurl u;
    struct timeval tv = {5, 0};
    if (redisurl_parse(url, &u, err, sizeof err) != 0)
        return cli_usage_error(prog, "--from: %s", err);
    if (u.cluster)
        return cli_usage_error(prog, "--from names the old one-Redis store (redis:// or unix://), "
                                     "not a cluster");
    redisContext *c = redisurl_connect(&u, &tv, err, sizeof err);
    if (!c) return cli_fail("--from: %s", err);
    int rc = CLI_FAIL;
    redisReply *r = redisCommand(c, "GET %s", KEY_IDS);
    if (!r) {
        cli_fail("--from: %s", c->errstr);
        goto out;
    }
    int absent;
    int bad = ids_value(r, "--from: " KEY_IDS, top, &absent);
    freeReplyObject(r);
    if (bad || ids_from_routers(c) != 0) goto out;
    r = redisCommand(c, "SCARD %s", KEY_FANOUTS);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        cli_fail("--from: SCARD %s: %s", KEY_FANOUTS,
                 !r                             ? c->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
    } else if (r->integer > 0) {
        cli_fail("the old store (--from) has queued group fan-outs (%lld groups in %s): keep its "
                 "routers running, gateways stopped, until `redis-cli SCARD %s` says 0, then "
                 "import again (--cluster-replace) and run this again",
                 r->integer, KEY_FANOUTS, KEY_FANOUTS);
    } else {
        rc = 0;
    }
    if (r) freeReplyObject(r);
out:
    redisFree(c);
    return rc;
}

/* The cluster's SCARD parley:fanouts (what an import brought). 0 or CLI_FAIL. */
static int ids_check_fanouts(cli_ctx *ctx)
{
    redisReply *r = cli_command(ctx, "SCARD %s", KEY_FANOUTS);
    if (!r) return cli_fail("redis: SCARD %s: %s", KEY_FANOUTS, cli_errstr(ctx));
    int rc = 0;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = cli_fail("redis: SCARD %s: %s", KEY_FANOUTS,
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    else if (r->integer > 0)
        rc = cli_fail("the cluster holds %lld groups with queued fan-outs (%s, from the old "
                      "store): a cluster's routers do not run them. Drain them on the old Redis "
                      "(its routers running, gateways stopped, until `redis-cli SCARD %s` says "
                      "0), import again with --cluster-replace, then run this again",
                      r->integer, KEY_FANOUTS, KEY_FANOUTS);
    freeReplyObject(r);
    return rc;
}

int cli_cmd_cluster_ids(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    const char *from = NULL;
    long long top_flag = 0; /* 0: not given */
    int dry_run = 0;
    const config_opt opts[] = {
        {"from", NULL, CONFIG_STR, &from, 0, 0,
         "the old one-Redis store (redis://...): its parley:ids is the top id"},
        {"top", NULL, CONFIG_INT, &top_flag, 0, IDS_TOP_MAX, "the top id, given as a number"},
        {"dry-run", NULL, CONFIG_BOOL, &dry_run, 0, 0, "say what would be raised, change nothing"},
    };
    char *pos[1];
    int npos;
    if (cli_args(prog, ctx->usage, opts, 3, argc, argv, pos, &npos, 0) != 0) return CLI_USAGE;

    long long top = top_flag, from_top = 0, copy = 0;
    if (from) {
        int rc = ids_from(prog, from, &from_top);
        if (rc) return rc;
        if (from_top > top) top = from_top;
    }
    cluster_map *m;
    int rc = cli_cluster_map(ctx, &m);
    if (rc) {
        fprintf(stderr, "%s: --redis-url must name the Redis Cluster (redis-cluster://node,...)\n",
                prog);
        return rc;
    }
    if (m->covered != CLUSTER_SLOTS)
        return cli_fail("the cluster serves %d of %d slots: run this once `redis-cli --cluster "
                        "check` is clean",
                        m->covered, CLUSTER_SLOTS);
    rc = ids_check_fanouts(ctx);
    if (rc) return rc;
    redisReply *r = cli_command(ctx, "GET %s", KEY_IDS); /* the import's copy, if any */
    if (!r) return cli_fail("redis: GET %s: %s", KEY_IDS, cli_errstr(ctx));
    int absent;
    int bad = ids_value(r, KEY_IDS, &copy, &absent);
    freeReplyObject(r);
    if (bad) return CLI_FAIL;
    if (absent && !from && top_flag == 0)
        return cli_usage_error(prog,
                               "no %s on the cluster (nothing imported?): name the old store "
                               "with --from URL, or the top id with --top N",
                               KEY_IDS);
    if (copy > top) top = copy;
    if (top > IDS_TOP_MAX) return cli_fail("top id %lld is past 2^53: ids would lose digits", top);

    ids_run run = {.need = top / CLUSTER_SLOTS, .dry_run = dry_run};
    if (cli_ids_adjust(ctx, &run, m) != 0) return CLI_FAIL;
    printf("top=%lld (from=%lld copy=%lld given=%lld) counters>=%lld: slots=%d raised=%lld "
           "kept=%lld%s\n",
           top, from_top, copy, top_flag, run.need, CLUSTER_SLOTS, run.changed, run.kept,
           dry_run ? " (dry run: nothing changed)" : "");
    printf("next id of slot S at least %lld x 16384 + S > %lld\n", run.need + 1, top);
    return CLI_OK;
}
