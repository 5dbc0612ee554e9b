/* main.c - `parley`, the admin CLI: global flags, command dispatch and the
 * helpers every command shares (Redis connection, argument split, script
 * calls). Uses hiredis's synchronous API: one short-lived connection. */
#include "cli.h"
#include "redisurl.h"
#include "secret.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static const cli_cmd cli_cmds[] = {
    {"useradd", "NAME [--password P]",
     "create a user (password from --password, PARLEY_PASSWORD or stdin)", cli_cmd_useradd},
    {"bulk-users", "N [--prefix bench] [--start 0] [--password P]",
     "create PREFIX<start>..PREFIX<start+N-1> sharing one password, each with a bulk session",
     cli_cmd_bulk_users},
    {"token", "NAME [--ttl S]", "make a signed-in session of a user and print its token",
     cli_cmd_token},
    {"logins", "NAME", "a user's signed-in sessions (id, created, last seen, agent)",
     cli_cmd_logins},
    {"revoke", "NAME ID | NAME --all",
     "revoke a signed-in session, or all (tokens refused, sockets closed 4001)", cli_cmd_revoke},
    {"disable", "NAME", "no more logins for a user; every session revoked", cli_cmd_disable},
    {"enable", "NAME", "let a disabled user log in again", cli_cmd_enable},
    {"online", "", "users online, with their session count", cli_cmd_online},
    {"sessions", "NAME", "a user's sessions and whether each gateway is alive", cli_cmd_sessions},
    {"inbox", "NAME [--count N]",
     "inbox meta and the last N entries, decoded (a text reference with its message's current "
     "state; edit, delete, react events)",
     cli_cmd_inbox},
    {"group", "#NAME",
     "a group: open or closed, owner, members (admins marked), who is online, unread",
     cli_cmd_group},
    {"history", "USER USER | #GROUP [--count N]",
     "the newest messages of a conversation in their current state (edited, deleted, "
     "reactions, replies, mentions), each side's unread, read position and mentions",
     cli_cmd_history},
    {"gateways", "", "gateways with heartbeat TTL and session count", cli_cmd_gateways},
    {"routers", "", "routers with their last beat and the slots they hold", cli_cmd_routers},
    {"scripts", "[--load]", "name and SHA1 of every Lua script; --load loads them",
     cli_cmd_scripts},
    {"migrate-inboxes", "",
     "turn inbox entries stored as copies (before references) into references; once after "
     "an upgrade",
     cli_cmd_migrate_inboxes},
    {"keyslot", "KEY... [--local]",
     "the Redis Cluster hash slot of each key, and the master serving it (--local: no Redis)",
     cli_cmd_keyslot},
    {"cluster-ids", "[--from URL | --top N] [--dry-run]",
     "after moving a one-Redis store to this cluster: raise every slot's id counter above the "
     "old top id (parley:ids / 16384; never lowers one)",
     cli_cmd_cluster_ids},
    {"after-restore", "[--ids N] [--dry-run]",
     "after restoring a backup, before Parley runs on it: every id counter up by N, every "
     "inbox epoch reset (clients reload instead of missing entries)",
     cli_cmd_after_restore},
    {"slots", "", "the masters of the Redis Cluster --redis-url belongs to, and their slots",
     cli_cmd_slots},
};
#define CLI_NCMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

int cli_usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_USAGE;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("parley: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

redisContext *cli_redis(cli_ctx *ctx)
{
    char err[512];
    redisurl u;
    struct timeval tv = {5, 0};

    if (ctx->rc) return ctx->rc;
    if (redisurl_parse(ctx->redis_url, &u, err, sizeof(err)) != 0) {
        cli_fail("%s", err);
        return NULL;
    }
    ctx->rc = redisurl_connect(&u, &tv, err, sizeof(err));
    if (!ctx->rc) {
        cli_fail("%s", err);
        return NULL;
    }
    /* a Redis that cannot serve yet (-LOADING while it loads its data) would
     * answer the commands below with errors some would show as no data:
     * say so on one line and fail instead */
    redisReply *r = redisCommand(ctx->rc, "PING");
    if (!r || r->type == REDIS_REPLY_ERROR) {
        cli_fail("redis at %s: %s", redisurl_describe(&u, err, sizeof(err)),
                 r ? r->str : ctx->rc->errstr);
        if (r) freeReplyObject(r);
        redisFree(ctx->rc);
        ctx->rc = NULL;
        return NULL;
    }
    freeReplyObject(r);
    return ctx->rc;
}

int cli_args(const char *prog, const char *usage, const config_opt *opts, int nopts, int argc,
             char **argv, char **pos, int *npos, int npos_max)
{
    char **flags = calloc((size_t)argc + 2, sizeof(char *));
    int nflags = 1, rc = -1, only_pos = 0;

    if (!flags) return -1;
    flags[0] = (char *)prog;
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*npos >= npos_max) {
                cli_usage_error(prog, "unexpected argument '%s' (try --help)", a);
                goto out;
            }
            pos[(*npos)++] = argv[i];
            continue;
        }
        flags[nflags++] = argv[i];
        if (a[1] == '-' && !strchr(a, '=')) { /* "--name VALUE" takes the next word */
            for (int k = 0; k < nopts; k++) {
                if (strcmp(a + 2, opts[k].name) == 0 && opts[k].type != CONFIG_BOOL &&
                    i + 1 < argc) {
                    flags[nflags++] = argv[++i];
                    break;
                }
            }
        }
    }
    int argi;
    rc = config_parse(prog, usage, opts, nopts, nflags, flags, &argi);
out:
    free(flags);
    return rc;
}

static void cli_help(const char *prog)
{
    printf("usage: %s [--redis-url URL] [--secret S | --secret-file F] COMMAND [ARGS]\n\n"
           "Parley admin CLI.\n\ncommands:\n",
           prog);
    for (size_t i = 0; i < CLI_NCMDS; i++) {
        char line[128];
        snprintf(line, sizeof(line), "%s %s", cli_cmds[i].name, cli_cmds[i].usage);
        printf("  %-58s %s\n", line, cli_cmds[i].help);
    }
    printf("\nflags (each also read from the environment variable shown):\n"
           "  --redis-url URL   env PARLEY_REDIS_URL, default redis://127.0.0.1:6379\n"
           "  --secret S        env PARLEY_SECRET, token HMAC secret, the gateways' (at least %d "
           "bytes\n"
           "                    when Redis is beyond loopback; default: --secret-file, else the\n"
           "                    local-only development secret, loopback only)\n"
           "  --secret-file F   env PARLEY_SECRET_FILE, a file holding the secret\n"
           "  -h, --help        this help; `%s COMMAND --help` for one command\n",
           SECRET_MIN_BYTES, prog);
}

/* The connection to host:port (a node a redirection named), made once. */
static redisContext *cli_node_get(cli_ctx *ctx, const char *host, int port)
{
    char err[512];
    redisurl u;
    struct timeval tv = {5, 0};
    for (int i = 0; i < ctx->nnodes; i++)
        if (ctx->nodes[i].port == port && strcmp(ctx->nodes[i].host, host) == 0)
            return ctx->nodes[i].rc;
    if (ctx->nnodes == CLI_NODES_MAX || redisurl_parse(ctx->redis_url, &u, err, sizeof err) != 0)
        return NULL;
    u.cluster = 0; /* that node alone, with the URL's password */
    u.unix_socket = 0;
    u.db = 0;
    snprintf(u.host, sizeof u.host, "%s", host);
    u.port = port;
    redisContext *c = redisurl_connect(&u, &tv, err, sizeof err);
    if (!c) {
        cli_fail("%s", err);
        return NULL;
    }
    cli_node *n = &ctx->nodes[ctx->nnodes++];
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    n->rc = c;
    return c;
}

/* Sends the formatted command cmd[0..len) to c and reads its reply. */
static redisReply *cli_send(redisContext *c, const char *cmd, size_t len)
{
    void *r = NULL;
    if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK || redisGetReply(c, &r) != REDIS_OK)
        return NULL;
    return r;
}

static redisReply *cli_command_formatted(cli_ctx *ctx, const char *cmd, size_t len)
{
    redisContext *c = cli_redis(ctx);
    if (!c) return NULL;
    ctx->last = c;
    redisReply *r = cli_send(c, cmd, len);
    cluster_redirect rd;
    for (int hop = 0; r && r->type == REDIS_REPLY_ERROR && hop < 3 &&
                      cluster_parse_redirect(r->str, r->len, &rd) == 1;
         hop++) {
        redisContext *n = cli_node_get(ctx, rd.host, rd.port);
        if (!n) break; /* the redirection is the answer */
        freeReplyObject(r);
        if (rd.ask) {
            redisReply *a = redisCommand(n, "ASKING");
            if (a) freeReplyObject(a);
        }
        ctx->last = n;
        r = cli_send(n, cmd, len);
    }
    return r;
}

redisReply *cli_command(cli_ctx *ctx, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    redisReply *r = len > 0 ? cli_command_formatted(ctx, cmd, (size_t)len) : NULL;
    redisFreeCommand(cmd);
    return r;
}

redisReply *cli_command_argv(cli_ctx *ctx, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    redisReply *r = len > 0 ? cli_command_formatted(ctx, cmd, (size_t)len) : NULL;
    redisFreeCommand(cmd);
    return r;
}

/* scripts.h's synchronous sender on a cluster: each script step to the node
 * of its first key (cli_command_argv follows MOVED/ASK). */
static redisReply *cli_sync_send(void *priv, int argc, const char **argv, const size_t *lens,
                                 redisContext **answered)
{
    cli_ctx *ctx = priv;
    redisReply *r = cli_command_argv(ctx, argc, argv, lens);
    *answered = ctx->last;
    return r;
}

const char *cli_errstr(const cli_ctx *ctx)
{
    return ctx->last && ctx->last->errstr[0] ? ctx->last->errstr : "not connected";
}

redisContext *cli_redis_for(cli_ctx *ctx, const char *key)
{
    redisReply *r = cli_command(ctx, "EXISTS %s", key);
    if (!r) {
        if (ctx->last) cli_fail("redis: %s", cli_errstr(ctx));
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) cli_fail("redis: %s", r->str);
    redisContext *c = r->type == REDIS_REPLY_ERROR ? NULL : ctx->last;
    freeReplyObject(r);
    return c;
}

void cli_close(cli_ctx *ctx)
{
    for (int i = 0; i < ctx->nnodes; i++)
        redisFree(ctx->nodes[i].rc);
    ctx->nnodes = 0;
    if (ctx->rc) redisFree(ctx->rc);
    ctx->rc = ctx->last = NULL;
}

int main(int argc, char **argv)
{
    cli_ctx ctx = {.redis_url = "redis://127.0.0.1:6379", .secret = NULL};
    const char *secret_file = NULL;
    static secret sec; /* holds a --secret-file's contents */
    const config_opt opts[] = {
        {"redis-url", "PARLEY_REDIS_URL", CONFIG_STR, &ctx.redis_url, 0, 0,
         "Redis (redis://[:password@]host:port[/db])"},
        {"secret", "PARLEY_SECRET", CONFIG_STR, &ctx.secret, 0, 0,
         "token HMAC secret, the same as the gateways'"},
        {"secret-file", "PARLEY_SECRET_FILE", CONFIG_STR, &secret_file, 0, 0,
         "file holding the token secret (when --secret is not given)"},
    };
    const char *prog = "parley";
    int argi = argc;
    char bad[256];
    if (scripts_check(bad, sizeof bad) < 0) {
        fprintf(stderr, "%s: %s\n", prog, bad);
        return 1;
    }

    for (int i = 1; i < argc; i++) { /* top-level --help lists the commands */
        if (argv[i][0] != '-') break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_help(prog);
            return 0;
        }
        for (int o = 0; o < 3; o++) /* "--redis-url URL": the value is not the command */
            if (strcmp(argv[i] + 2, opts[o].name) == 0 && argv[i][1] == '-') i++;
    }
    if (config_parse(prog, "[--redis-url URL] [--secret S | --secret-file F] COMMAND [ARGS]", opts,
                     3, argc, argv, &argi) != 0)
        return CLI_USAGE;
    if (argi >= argc) return cli_usage_error(prog, "missing command (try --help)");
    {
        char err[512];
        redisurl u;
        if (redisurl_parse(ctx.redis_url, &u, err, sizeof(err)) != 0)
            return cli_usage_error(prog, "--redis-url: %s", err);
        /* a Redis others can reach: the secret must not be guessable (secret.h) */
        int exposed = !u.unix_socket && !secret_addr_is_loopback(u.host);
        if (secret_resolve(&sec, ctx.secret, secret_file, exposed, err, sizeof err, NULL, 0) < 0)
            return cli_usage_error(prog, "%s (Redis at %s)", err, u.host);
        ctx.secret = sec.value;
        ctx.cluster = u.cluster;
        if (u.cluster) scripts_set_sync_sender(cli_sync_send, &ctx);
    }

    int rc = -1;
    for (size_t i = 0; i < CLI_NCMDS; i++) {
        if (strcmp(argv[argi], cli_cmds[i].name) == 0) {
            char sub[64];
            snprintf(sub, sizeof(sub), "%s %s", prog, cli_cmds[i].name);
            ctx.usage = cli_cmds[i].usage;
            for (int a = argi + 1; a < argc; a++) /* "parley CMD --help" says what CMD does first */
                if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
                    printf("%s: %s\n", sub, cli_cmds[i].help);
                    break;
                }
            rc = cli_cmds[i].run(&ctx, sub, argc - argi - 1, argv + argi + 1);
            break;
        }
    }
    if (rc < 0) rc = cli_usage_error(prog, "unknown command '%s' (try --help)", argv[argi]);
    cli_close(&ctx);
    return rc;
}
