/* restore.c - `parley after-restore`: what a store restored from a backup
 * needs before Parley runs on it again (docs/deploy.md "Backups"), on one
 * Redis or a Redis Cluster.
 *
 * A backup is a point in the past: the message ids and inbox seqs handed out
 * after it are handed out again after the restore, to other messages. A
 * client that saw the lost ones would take a new message for one it has (same
 * id), and its `sync` from its last seq would skip the new entries below that
 * seq in the same epoch. So:
 * - every id counter goes up by --ids N (one Redis: parley:ids, and the
 *   per-slot counters that exist, from --send-steps; a cluster: all 16,384
 *   per-slot counters parley:{TAG}:ids): new ids are above the lost ones;
 * - every user's inbox epoch (the `epoch` field of parley:{u:NAME}:meta) is
 *   deleted: the next session open makes a new one, so a client's `sync`
 *   answers recovered: false and the client reloads what it shows through
 *   `history` (docs/protocol.md "Recovery"); the inbox and its seqs stay.
 * Run it once per restore, gateways and routers stopped; running it again
 * raises the ids once more (harmless) and resets the epochs again. */
#include "cli.h"
#include "keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the Redis of --redis-url is a cluster node: 1, 0, or -1 after
 * printing. */
static int restore_is_cluster(cli_ctx *ctx)
{
    redisContext *c = cli_redis(ctx);
    if (!c) return -1;
    redisReply *r = redisCommand(c, "INFO cluster");
    if (!r || r->type != REDIS_REPLY_STRING) {
        cli_fail("redis: INFO cluster: %s", !r                             ? c->errstr
                                            : r->type == REDIS_REPLY_ERROR ? r->str
                                                                           : "unexpected reply");
        if (r) freeReplyObject(r);
        return -1;
    }
    int yes = strstr(r->str, "cluster_enabled:1") != NULL;
    freeReplyObject(r);
    return yes;
}

/* Deletes every registered user's inbox epoch; *users counts them. 0 or
 * CLI_FAIL. */
static int restore_epochs(cli_ctx *ctx, int dry_run, long long *users)
{
    char cursor[32] = "0", key[KEYS_MAX];
    do { /* parley:users, a ZSCAN batch at a time */
        redisReply *r = cli_command(ctx, "ZSCAN %s %s COUNT 500", KEY_USERS, cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            int rc = cli_fail("redis: ZSCAN %s: %s", KEY_USERS,
                              r && r->type == REDIS_REPLY_ERROR ? r->str : cli_errstr(ctx));
            if (r) freeReplyObject(r);
            return rc;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *names = r->element[1];
        for (size_t i = 0; i + 1 < names->elements; i += 2) { /* name, score */
            (*users)++;
            if (dry_run) continue;
            keys_fmt(key, sizeof key, KEY_META, names->element[i]->str);
            redisReply *d = cli_command(ctx, "HDEL %s epoch", key);
            if (!d || d->type != REDIS_REPLY_INTEGER) {
                int rc = cli_fail("redis: HDEL %s epoch: %s", key,
                                  d && d->type == REDIS_REPLY_ERROR ? d->str : cli_errstr(ctx));
                if (d) freeReplyObject(d);
                freeReplyObject(r);
                return rc;
            }
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int cli_cmd_after_restore(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    long long add = 1000000000LL;
    int dry_run = 0;
    const config_opt opts[] = {
        {"ids", NULL, CONFIG_INT, &add, 1, 100000000000LL,
         "how far every id counter goes up: at least the ids (per cluster slot) handed out "
         "between the backup and the restore"},
        {"dry-run", NULL, CONFIG_BOOL, &dry_run, 0, 0, "say what would change, change nothing"},
    };
    char *pos[1];
    int npos;
    if (cli_args(prog, ctx->usage, opts, 2, argc, argv, pos, &npos, 0) != 0) return CLI_USAGE;

    int cluster = restore_is_cluster(ctx);
    if (cluster < 0) return CLI_FAIL;
    ids_run run = {.add = add, .existing_only = !cluster, .dry_run = dry_run};
    long long top = 0, users = 0;
    if (cluster) {
        cluster_map *m;
        if (cli_cluster_map(ctx, &m) != 0) return CLI_FAIL;
        if (m->covered != CLUSTER_SLOTS)
            return cli_fail("the cluster serves %d of %d slots: run this once `redis-cli "
                            "--cluster check` is clean",
                            m->covered, CLUSTER_SLOTS);
        if (cli_ids_adjust(ctx, &run, m) != 0) return CLI_FAIL;
    } else {
        redisReply *r = dry_run ? cli_command(ctx, "GET %s", KEY_IDS)
                                : cli_command(ctx, "INCRBY %s %lld", KEY_IDS, add);
        if (!r || (r->type != REDIS_REPLY_INTEGER && r->type != REDIS_REPLY_STRING &&
                   r->type != REDIS_REPLY_NIL)) {
            int rc = cli_fail("redis: %s %s: %s", dry_run ? "GET" : "INCRBY", KEY_IDS,
                              r && r->type == REDIS_REPLY_ERROR ? r->str : cli_errstr(ctx));
            if (r) freeReplyObject(r);
            return rc;
        }
        top = r->type == REDIS_REPLY_INTEGER  ? r->integer
              : r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10)
                                              : 0;
        freeReplyObject(r);
        if (cli_ids_adjust(ctx, &run, NULL) != 0) return CLI_FAIL;
    }
    if (restore_epochs(ctx, dry_run, &users) != 0) return CLI_FAIL;
    if (cluster)
        printf("cluster: every slot's id counter +%lld (%lld counters)", add, run.changed);
    else
        printf("one Redis: %s %s %lld, per-slot counters +%lld (%lld of them)", KEY_IDS,
               dry_run ? "is" : "now", top, add, run.changed);
    printf("; inbox epochs reset: users=%lld%s\n", users,
           dry_run ? " (dry run: nothing changed)" : "");
    return CLI_OK;
}
