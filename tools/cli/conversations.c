/* conversations.c - CLI commands that show conversations: `group` (a group's
 * settings, owner, members with the admins marked, and who is online) and
 * `history` (the newest messages of a 1:1 conversation or a group, decoded,
 * each in its current state: edited, deleted, reactions, replies with a quote
 * of the message replied to when it is shown too, mentions), plus each user's
 * unread count, read position and unread mentions there. */
#include "cli.h"
#include "keys.h"
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long cli_int_reply(redisReply *r)
{
    long long v = 0;
    if (r && r->type == REDIS_REPLY_INTEGER) v = r->integer;
    if (r && r->type == REDIS_REPLY_STRING) v = strtoll(r->str, NULL, 10);
    if (r) freeReplyObject(r);
    return v;
}

int cli_cmd_group(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char *pos[1], key[KEYS_MAX], key2[KEYS_MAX];
    int npos;
    if (cli_args(prog, ctx->usage, NULL, 0, argc, argv, pos, &npos, 1) != 0) return CLI_USAGE;
    if (npos != 1) return cli_usage_error(prog, "usage: %s %s", prog, ctx->usage);
    if (!proto_valid_group(pos[0], strlen(pos[0])))
        return cli_usage_error(prog, "bad group name '%s' (#name)", pos[0]);
    redisContext *c = cli_redis_for(ctx, keys_fmt(key, sizeof(key), KEY_GROUP_META, pos[0]));
    if (!c) return CLI_FAIL;
    redisReply *m = redisCommand(c, "HMGET %s open created by owner",
                                 keys_fmt(key, sizeof(key), KEY_GROUP_META, pos[0]));
    if (!m) return cli_fail("redis: %s", c->errstr);
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 4 || !m->element[1]->str) {
        freeReplyObject(m);
        return cli_fail("no such group: %s", pos[0]);
    }
    printf("%s: %s, created by %s at %s, owner %s\n", pos[0],
           m->element[0]->str && !strcmp(m->element[0]->str, "1") ? "open" : "closed",
           m->element[2]->str ? m->element[2]->str : "?", m->element[1]->str,
           m->element[3]->str ? m->element[3]->str : "none yet (a group from before roles)");
    freeReplyObject(m);
    char admins[KEYS_MAX];
    keys_fmt(admins, sizeof(admins), KEY_GROUP_ADMINS, pos[0]);
    redisReply *mem =
        redisCommand(c, "SORT %s ALPHA", keys_fmt(key, sizeof(key), KEY_GROUP_MEMBERS, pos[0]));
    if (!mem || mem->type != REDIS_REPLY_ARRAY) {
        if (mem) freeReplyObject(mem);
        return cli_fail("redis: cannot read the members");
    }
    printf("%zu member(s):\n", mem->elements);
    for (size_t i = 0; i < mem->elements; i++) {
        const char *u = mem->element[i]->str;
        /* other slots than the group's on a cluster: cli_command follows MOVED */
        long long on = cli_int_reply(cli_command(ctx, "SISMEMBER %s %s", KEY_ONLINE, u));
        long long unread = cli_int_reply(
            cli_command(ctx, "HGET %s %s", keys_fmt(key, sizeof(key), KEY_UNREAD, u), pos[0]));
        long long read = cli_int_reply(
            cli_command(ctx, "HGET %s %s", keys_fmt(key2, sizeof(key2), KEY_READ, u), pos[0]));
        redisReply *adm = redisCommand(c, "ZSCORE %s %s", admins, u);
        int admin = adm && adm->type == REDIS_REPLY_STRING;
        if (adm) freeReplyObject(adm);
        printf("  %-32s %-7s unread=%lld read=%lld%s\n", u, on ? "online" : "offline", unread, read,
               admin ? " admin" : "");
    }
    freeReplyObject(mem);
    return CLI_OK;
}

int cli_cmd_history(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    long long count = 20;
    const config_opt opts[] = {
        {"count", NULL, CONFIG_INT, &count, 1, 100000, "messages to show (the newest)"},
    };
    char *pos[2], conv[KEYS_MAX], key[KEYS_MAX];
    int npos;
    if (cli_args(prog, ctx->usage, opts, 1, argc, argv, pos, &npos, 2) != 0) return CLI_USAGE;
    if (npos == 1 && proto_valid_group(pos[0], strlen(pos[0]))) {
        snprintf(conv, sizeof(conv), "%s", pos[0]);
    } else if (npos == 2 && proto_valid_user(pos[0], strlen(pos[0])) &&
               proto_valid_user(pos[1], strlen(pos[1]))) {
        keys_conv_pair(conv, sizeof(conv), pos[0], pos[1]);
    } else {
        return cli_usage_error(prog, "usage: %s %s", prog, ctx->usage);
    }
    keys_fmt(key, sizeof(key), KEY_HISTORY, conv);
    redisContext *c = cli_redis_for(ctx, key);
    if (!c) return CLI_FAIL;
    long long total = cli_int_reply(redisCommand(c, "ZCARD %s", key));
    printf("%s: %lld message(s) kept\n", conv, total);
    redisReply *l = redisCommand(c, "ZRANGE %s %lld -1", key, -count);
    if (!l) return cli_fail("redis: %s", c->errstr);
    size_t n = l->type == REDIS_REPLY_ARRAY ? l->elements : 0;
    cli_page page = {0}; /* the shown messages, for the quotes of replies */
    for (size_t i = 0; i < n; i++) {
        if (cli_page_add(&page, l->element[i]->str, l->element[i]->len) != 0) {
            cli_page_free(&page);
            freeReplyObject(l);
            return cli_fail("out of memory");
        }
    }
    for (size_t i = 0; i < n; i++) {
        cli_entry_print(stdout, l->element[i]->str, l->element[i]->len, &page);
        putchar('\n');
    }
    cli_page_free(&page);
    freeReplyObject(l);
    if (npos == 2) { /* each side's unread and mention counts and read position */
        for (int s = 0; s < 2; s++) {
            char k1[KEYS_MAX], k2[KEYS_MAX], k3[KEYS_MAX];
            const char *me = pos[s], *other = pos[1 - s];
            /* each user's slot on a cluster: cli_command follows MOVED */
            long long unread = cli_int_reply(
                cli_command(ctx, "HGET %s %s", keys_fmt(k1, sizeof(k1), KEY_UNREAD, me), other));
            long long read = cli_int_reply(
                cli_command(ctx, "HGET %s %s", keys_fmt(k2, sizeof(k2), KEY_READ, me), other));
            long long mentions = cli_int_reply(
                cli_command(ctx, "HGET %s %s", keys_fmt(k3, sizeof(k3), KEY_MENTIONS, me), other));
            printf("%s: unread=%lld read=%lld mentions=%lld\n", me, unread, read, mentions);
        }
    }
    return CLI_OK;
}
