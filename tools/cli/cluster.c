/* cluster.c - the CLI commands about Redis Cluster (common/cluster.h):
 * `keyslot` (the hash slot of keys, and the master serving it when
 * --redis-url is a cluster node) and `slots` (which master serves which
 * slots, as the node asked reports them). For an operator finding a key:
 * `redis-cli -c` follows the redirections itself; these say where without
 * sending a command to the key. */
#include "cluster.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_cluster_map(cli_ctx *ctx, cluster_map **out)
{
    static cluster_map m;
    char err[200];
    redisContext *c = cli_redis(ctx);
    if (!c) return CLI_FAIL;
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    if (!r) return cli_fail("redis: %s", c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
        int rc = cli_fail("redis: CLUSTER SLOTS: %s", r->str);
        freeReplyObject(r);
        return rc;
    }
    int rc = cluster_map_from_slots(&m, r, c->tcp.host, err, sizeof err);
    freeReplyObject(r);
    if (rc < 0) return cli_fail("%s", err);
    *out = &m;
    return 0;
}

int cli_cmd_keyslot(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    enum { KEYS_ARGS_MAX = 64 };
    int local = 0;
    const config_opt opts[] = {
        {"local", NULL, CONFIG_BOOL, &local, 0, 0, "only compute the slots (no Redis)"},
    };
    char *pos[KEYS_ARGS_MAX];
    int npos;
    if (cli_args(prog, ctx->usage, opts, 1, argc, argv, pos, &npos, KEYS_ARGS_MAX) != 0)
        return CLI_USAGE;
    if (npos == 0) return cli_usage_error(prog, "keyslot: name at least one key");
    cluster_map *m = NULL;
    if (!local) {
        int rc = cli_cluster_map(ctx, &m);
        if (rc) return rc;
    }
    for (int i = 0; i < npos; i++) {
        unsigned slot = cluster_keyslot(pos[i], strlen(pos[i]));
        printf("%s slot=%u", pos[i], slot);
        if (m) {
            int n = cluster_map_owner(m, slot);
            if (n < 0)
                printf(" node=none");
            else
                printf(" node=%s:%d", m->nodes[n].host, m->nodes[n].port);
        }
        putchar('\n');
    }
    return CLI_OK;
}

int cli_cmd_slots(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char *pos[1];
    int npos;
    if (cli_args(prog, ctx->usage, NULL, 0, argc, argv, pos, &npos, 0) != 0) return CLI_USAGE;
    cluster_map *m;
    int rc = cli_cluster_map(ctx, &m);
    if (rc) return rc;
    for (int n = 0; n < m->nnodes; n++) {
        unsigned count = 0;
        printf("%s:%d id=%s [", m->nodes[n].host, m->nodes[n].port,
               m->nodes[n].id[0] ? m->nodes[n].id : "?");
        const char *sep = "";
        for (unsigned s = 0; s < CLUSTER_SLOTS;) {
            if (m->owner[s] != n) {
                s++;
                continue;
            }
            unsigned e = s;
            while (e + 1 < CLUSTER_SLOTS && m->owner[e + 1] == n)
                e++;
            if (e == s)
                printf("%s%u", sep, s);
            else
                printf("%s%u-%u", sep, s, e);
            sep = ",";
            count += e - s + 1;
            s = e + 1;
        }
        printf("] slots=%u\n", count);
    }
    printf("covered=%d of %d\n", m->covered, CLUSTER_SLOTS);
    return m->covered == CLUSTER_SLOTS ? CLI_OK : CLI_FAIL;
}
