/* migrate.c - `parley migrate-inboxes`: turns the inbox entries written before
 * inbox entries became references (full copies of texts) into references
 * (common/lua/inbox_refs.lua), for every user, so that a later delete leaves
 * the text in no key (docs/protocol.md "Deleted means gone"). Safe to run on a
 * live deployment, and again: an entry that is a reference already is left
 * alone. deploy/run.sh and the compose file's init service run it at start. */
#include "cli.h"
#include "keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MIGRATE_BATCH 200 /* inbox entries per script call */

/* One user's inbox; adds to *converted. 0, or CLI_FAIL after printing. */
static int cli_migrate_user(redisContext *c, const char *user, long long *converted)
{
    int64_t first = 0;
    do {
        redisReply *r = scripts_inbox_refs_sync(c, user, first, MIGRATE_BATCH);
        if (!r) return cli_fail("redis: %s", c->errstr);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER) {
            int rc = cli_fail("redis: inbox of %s: %s", user,
                              r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            freeReplyObject(r);
            return rc;
        }
        first = r->element[0]->integer;
        *converted += r->element[1]->integer;
        freeReplyObject(r);
    } while (first > 0);
    return 0;
}

int cli_cmd_migrate_inboxes(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char *pos[1];
    int npos;
    if (cli_args(prog, ctx->usage, NULL, 0, argc, argv, pos, &npos, 0) != 0) return CLI_USAGE;
    redisContext *c = cli_redis(ctx);
    if (!c) return CLI_FAIL;
    long long users = 0, converted = 0;
    char cursor[32] = "0";
    do { /* every registered user (parley:users), a ZSCAN batch at a time */
        redisReply *r = redisCommand(c, "ZSCAN %s %s COUNT 500", KEY_USERS, cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            int rc = cli_fail("redis: ZSCAN %s: %s", KEY_USERS,
                              r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
            if (r) freeReplyObject(r);
            return rc;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *names = r->element[1];
        for (size_t i = 0; i + 1 < names->elements; i += 2) { /* name, score */
            if (cli_migrate_user(c, names->element[i]->str, &converted) != 0) {
                freeReplyObject(r);
                return CLI_FAIL;
            }
            users++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    printf("inboxes=%lld converted=%lld\n", users, converted);
    return CLI_OK;
}
