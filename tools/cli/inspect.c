/* inspect.c - the CLI commands that show what Redis holds, for humans:
 * online, sessions, inbox (msgpack entries decoded, references resolved
 * against the history), gateways, routers, and scripts (their SHA1s,
 * optionally loading them). */
#include "cli.h"
#include "keys.h"
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static int cli_no_args(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char *pos[1];
    int npos;
    if (cli_args(prog, ctx->usage, NULL, 0, argc, argv, pos, &npos, 0) != 0) return CLI_USAGE;
    return 0;
}

static int cli_cmp_reply(const void *a, const void *b)
{
    return strcmp((*(redisReply *const *)a)->str, (*(redisReply *const *)b)->str);
}

/* SMEMBERS key, sorted by name; NULL after printing the error. */
static redisReply *cli_smembers_sorted(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "SMEMBERS %s", key);
    if (!r) {
        cli_fail("redis: %s", c->errstr);
        return NULL;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        cli_fail("redis: SMEMBERS %s: %s", key, r->type == REDIS_REPLY_ERROR ? r->str : "?");
        freeReplyObject(r);
        return NULL;
    }
    if (r->elements > 1) qsort(r->element, r->elements, sizeof(redisReply *), cli_cmp_reply);
    return r;
}

int cli_cmd_online(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char key[KEYS_MAX];
    int rc = cli_no_args(ctx, prog, argc, argv);
    if (rc) return rc;
    redisContext *c = cli_redis(ctx);
    if (!c) return CLI_FAIL;
    redisReply *users = cli_smembers_sorted(c, KEY_ONLINE);
    if (!users) return CLI_FAIL;
    for (size_t i = 0; i < users->elements; i++)
        redisAppendCommand(c, "SCARD %s",
                           keys_fmt(key, sizeof(key), KEY_SESSIONS, users->element[i]->str));
    for (size_t i = 0; i < users->elements; i++) {
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            freeReplyObject(users);
            return cli_fail("redis: %s", c->errstr);
        }
        printf("%s %lld\n", users->element[i]->str,
               r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL);
        freeReplyObject(r);
    }
    freeReplyObject(users);
    return CLI_OK;
}

/* PTTL of a gateway's alive key: -2 when missing (dead). */
static long long cli_gw_pttl(redisContext *c, const char *gw, size_t len)
{
    char key[KEYS_MAX], id[80];
    snprintf(id, sizeof(id), "%.*s", (int)len, gw);
    redisReply *r = redisCommand(c, "PTTL %s", keys_fmt(key, sizeof(key), KEY_GW_ALIVE, id));
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -2;
    if (r) freeReplyObject(r);
    return v;
}

int cli_cmd_sessions(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char *pos[1], key[KEYS_MAX];
    int npos;
    if (cli_args(prog, ctx->usage, NULL, 0, argc, argv, pos, &npos, 1) != 0) return CLI_USAGE;
    if (npos != 1) return cli_usage_error(prog, "usage: %s %s", prog, ctx->usage);
    if (!proto_valid_user(pos[0], strlen(pos[0])))
        return cli_usage_error(prog, "bad user name '%s'", pos[0]);
    redisContext *c = cli_redis(ctx);
    if (!c) return CLI_FAIL;
    redisReply *s = cli_smembers_sorted(c, keys_fmt(key, sizeof(key), KEY_SESSIONS, pos[0]));
    if (!s) return CLI_FAIL;
    if (s->elements == 0) printf("%s has no sessions\n", pos[0]);
    for (size_t i = 0; i < s->elements; i++) {
        const char *sid = s->element[i]->str, *hash = strrchr(sid, '#');
        size_t gwlen = hash ? (size_t)(hash - sid) : strlen(sid);
        long long ttl = cli_gw_pttl(c, sid, gwlen);
        printf("%s %s\n", sid, ttl == -2 ? "gateway-dead" : "gateway-alive");
    }
    freeReplyObject(s);
    return CLI_OK;
}

/* Each entry on one line; a text reference followed by " -> " and the
 * message's current state in the history (one ZRANGEBYSCORE each, pipelined
 * on c, the user's node; on a cluster one answered MOVED is sent again where
 * it names). */
static int cli_print_inbox(cli_ctx *ctx, redisContext *c, const char *user, redisReply *l)
{
    size_t n = l->type == REDIS_REPLY_ARRAY ? l->elements : 0;
    cli_ref *refs = calloc(n ? n : 1, sizeof(*refs));
    char key[KEYS_MAX];
    if (!refs) return cli_fail("out of memory");
    for (size_t i = 0; i < n; i++) { /* the lookups first, in one round trip */
        char conv[KEYS_MAX];
        if (cli_entry_ref(l->element[i]->str, l->element[i]->len, &refs[i]) != CLI_ENTRY_TEXT_REF ||
            !refs[i].ok || keys_conv(conv, sizeof(conv), user, refs[i].with) < 0) {
            refs[i].ok = 0;
            continue;
        }
        redisAppendCommand(c, "ZRANGEBYSCORE %s %llu %llu",
                           keys_fmt(key, sizeof(key), KEY_HISTORY, conv),
                           (unsigned long long)refs[i].id, (unsigned long long)refs[i].id);
    }
    int rc = CLI_OK;
    redisReply **hs = calloc(n ? n : 1, sizeof(*hs));
    if (!hs) rc = cli_fail("out of memory");
    for (size_t i = 0; hs && i < n; i++) { /* every pipelined reply read before anything else */
        if (refs[i].ok && (redisGetReply(c, (void **)&hs[i]) != REDIS_OK || !hs[i])) {
            rc = cli_fail("redis: %s", c->errstr);
            break;
        }
    }
    for (size_t i = 0; hs && rc == CLI_OK && i < n; i++) {
        redisReply *h = hs[i];
        cluster_redirect rd;
        char conv[KEYS_MAX];
        /* on a cluster: a conversation on another node, asked there */
        if (h && h->type == REDIS_REPLY_ERROR && cluster_parse_redirect(h->str, h->len, &rd) == 1 &&
            keys_conv(conv, sizeof(conv), user, refs[i].with) >= 0) {
            freeReplyObject(h);
            h = hs[i] = cli_command(ctx, "ZRANGEBYSCORE %s %llu %llu",
                                    keys_fmt(key, sizeof(key), KEY_HISTORY, conv),
                                    (unsigned long long)refs[i].id, (unsigned long long)refs[i].id);
            if (!h) {
                rc = cli_fail("redis: %s", cli_errstr(ctx));
                break;
            }
        }
        cli_entry_print(stdout, l->element[i]->str, l->element[i]->len, NULL);
        if (h && h->type == REDIS_REPLY_ARRAY && h->elements == 1) {
            fputs(" -> ", stdout);
            cli_entry_print(stdout, h->element[0]->str, h->element[0]->len, NULL);
        } else if (h) {
            fputs(" -> (no longer in the history)", stdout);
        }
        putchar('\n');
    }
    for (size_t i = 0; hs && i < n; i++)
        if (hs[i]) freeReplyObject(hs[i]);
    free(hs);
    free(refs);
    return rc;
}

int cli_cmd_inbox(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    long long count = 20;
    const config_opt opts[] = {
        {"count", NULL, CONFIG_INT, &count, 1, 100000, "entries to show (the newest)"},
    };
    char *pos[1], key[KEYS_MAX];
    int npos;
    if (cli_args(prog, ctx->usage, opts, 1, argc, argv, pos, &npos, 1) != 0) return CLI_USAGE;
    if (npos != 1) return cli_usage_error(prog, "usage: %s %s", prog, ctx->usage);
    if (!proto_valid_user(pos[0], strlen(pos[0])))
        return cli_usage_error(prog, "bad user name '%s'", pos[0]);
    redisContext *c = cli_redis_for(ctx, keys_fmt(key, sizeof(key), KEY_META, pos[0]));
    if (!c) return CLI_FAIL;
    redisReply *m =
        redisCommand(c, "HMGET %s seq epoch pushed", keys_fmt(key, sizeof(key), KEY_META, pos[0]));
    if (!m) return cli_fail("redis: %s", c->errstr);
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 3) {
        freeReplyObject(m);
        return cli_fail("redis: unexpected reply to HMGET");
    }
    printf("%s: seq=%s epoch=%s pushed=%s\n", pos[0], m->element[0]->str ? m->element[0]->str : "0",
           m->element[1]->str ? m->element[1]->str : "(none)",
           m->element[2]->str ? m->element[2]->str : "0");
    freeReplyObject(m);
    redisReply *l =
        redisCommand(c, "LRANGE %s %lld -1", keys_fmt(key, sizeof(key), KEY_INBOX, pos[0]), -count);
    if (!l) return cli_fail("redis: %s", c->errstr);
    int rc = cli_print_inbox(ctx, c, pos[0], l);
    freeReplyObject(l);
    return rc;
}

int cli_cmd_gateways(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char key[KEYS_MAX];
    int rc = cli_no_args(ctx, prog, argc, argv);
    if (rc) return rc;
    redisContext *c = cli_redis(ctx);
    if (!c) return CLI_FAIL;
    redisReply *g = cli_smembers_sorted(c, KEY_GATEWAYS);
    if (!g) return CLI_FAIL;
    if (g->elements == 0) printf("no gateways\n");
    for (size_t i = 0; i < g->elements; i++) {
        const char *id = g->element[i]->str;
        long long ttl = cli_gw_pttl(c, id, strlen(id));
        redisReply *n =
            redisCommand(c, "SCARD %s", keys_fmt(key, sizeof(key), KEY_GW_SESSIONS, id));
        long long sessions = n && n->type == REDIS_REPLY_INTEGER ? n->integer : -1;
        if (n) freeReplyObject(n);
        if (ttl == -2)
            printf("%s dead (no heartbeat, waiting for the reaper) sessions=%lld\n", id, sessions);
        else
            printf("%s alive ttl=%lldms sessions=%lld\n", id, ttl, sessions);
    }
    freeReplyObject(g);
    return CLI_OK;
}

/* "0-3,7,9-12" for the slots with owner[i] == 1. */
static void cli_print_ranges(const unsigned char *mine)
{
    int first = 1;
    for (unsigned i = 0; i < PARLEY_SLOTS; i++) {
        if (!mine[i]) continue;
        unsigned j = i;
        while (j + 1 < PARLEY_SLOTS && mine[j + 1])
            j++;
        printf(first ? "%u" : ",%u", i);
        if (j > i) printf("-%u", j);
        first = 0;
        i = j;
    }
    if (first) printf("-");
}

int cli_cmd_routers(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char key[KEYS_MAX];
    const char *av[2];
    char keys[PARLEY_SLOTS][KEYS_MAX];
    int rc = cli_no_args(ctx, prog, argc, argv);
    if (rc) return rc;
    redisContext *c = cli_redis(ctx);
    if (!c) return CLI_FAIL;
    redisReply *z = redisCommand(c, "ZRANGE %s 0 -1 WITHSCORES", KEY_ROUTERS);
    if (!z || z->type != REDIS_REPLY_ARRAY) {
        if (z) freeReplyObject(z);
        return cli_fail("redis: %s", c->errstr);
    }
    /* one GET per lease, pipelined: on a cluster the 64 keys are in 64 hash
     * slots, which no MGET may span */
    redisReply *own[PARLEY_SLOTS] = {0};
    int bad = 0;
    for (unsigned i = 0; i < PARLEY_SLOTS && !bad; i++) {
        av[0] = "GET";
        av[1] = keys_fmt(keys[i], sizeof(keys[i]), KEY_SLOT, i);
        bad = redisAppendCommandArgv(c, 2, av, NULL) != REDIS_OK;
    }
    for (unsigned i = 0; i < PARLEY_SLOTS && !bad; i++)
        bad = redisGetReply(c, (void **)&own[i]) != REDIS_OK || !own[i] ||
              (own[i]->type != REDIS_REPLY_STRING && own[i]->type != REDIS_REPLY_NIL);
    if (bad) {
        freeReplyObject(z);
        for (unsigned i = 0; i < PARLEY_SLOTS; i++)
            if (own[i]) freeReplyObject(own[i]);
        return cli_fail("redis: %s", c->errstr[0] ? c->errstr : "unexpected reply to GET");
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long now = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    unsigned char seen[PARLEY_SLOTS] = {0};
    if (z->elements == 0) printf("no routers\n");
    for (size_t i = 0; i + 1 < z->elements; i += 2) {
        const char *id = z->element[i]->str;
        unsigned char mine[PARLEY_SLOTS] = {0};
        unsigned n = 0;
        for (unsigned k = 0; k < PARLEY_SLOTS; k++) {
            if (own[k]->str && strcmp(own[k]->str, id) == 0) {
                mine[k] = seen[k] = 1;
                n++;
            }
        }
        printf("%s beat=%lldms-ago slots=%u [", id, now - atoll(z->element[i + 1]->str), n);
        cli_print_ranges(mine);
        printf("]\n");
    }
    unsigned char other[PARLEY_SLOTS] = {0}, free_[PARLEY_SLOTS] = {0};
    unsigned nother = 0, nfree = 0;
    for (unsigned k = 0; k < PARLEY_SLOTS; k++) {
        if (seen[k]) continue;
        if (own[k]->str) {
            other[k] = 1;
            nother++;
        } else {
            free_[k] = 1;
            nfree++;
        }
    }
    if (nother) {
        printf("held by routers not in %s: %u [", KEY_ROUTERS, nother);
        cli_print_ranges(other);
        printf("]\n");
    }
    if (nfree) {
        printf("unowned slots: %u [", nfree);
        cli_print_ranges(free_);
        printf("]\n");
    }
    (void)key;
    freeReplyObject(z);
    for (unsigned k = 0; k < PARLEY_SLOTS; k++)
        freeReplyObject(own[k]);
    return CLI_OK;
}

int cli_cmd_scripts(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    int load = 0;
    const config_opt opts[] = {
        {"load", NULL, CONFIG_BOOL, &load, 0, 0, "load every script (and function) into Redis"},
    };
    char *pos[1];
    int npos;
    if (cli_args(prog, ctx->usage, opts, 1, argc, argv, pos, &npos, 0) != 0) return CLI_USAGE;
    redisContext *c = NULL;
    if (load && !(c = cli_redis(ctx))) return CLI_FAIL;
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        if (load) {
            const char *av[4];
            int n = scripts_load_argv(i, av);
            redisReply *r = redisCommandArgv(c, n, av, NULL);
            if (!r) return cli_fail("redis: %s", c->errstr);
            int bad = r->type != REDIS_REPLY_STRING || strcmp(r->str, scripts_sha(i)) != 0;
            if (bad) cli_fail("%s LOAD %s: %s", av[0], scripts_name(i), r->str ? r->str : "?");
            freeReplyObject(r);
            if (bad) return CLI_FAIL;
        }
        printf("%s %s%s\n", scripts_name(i), scripts_sha(i), load ? " loaded" : "");
    }
    return CLI_OK;
}
