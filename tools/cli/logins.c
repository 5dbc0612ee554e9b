/* logins.c - the CLI commands on signed-in sessions (the sessions tokens
 * name): logins (list), revoke (one or all), disable and enable (a disabled
 * user cannot log in; disabling revokes every session). Revocations go
 * through login_revoke.lua, which announces them: every gateway refuses the
 * tokens and closes their sockets (4001) at once. */
#include "cli.h"
#include "keys.h"
#include "proto.h"
#include "token.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static long long cli_logins_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The one positional NAME (and up to `more` others) of a command. */
static int cli_logins_args(cli_ctx *ctx, const char *prog, int argc, char **argv,
                           const config_opt *opts, int nopts, char **pos, int *npos, int more)
{
    if (cli_args(prog, ctx->usage, opts, nopts, argc, argv, pos, npos, 1 + more) != 0)
        return CLI_USAGE;
    if (*npos < 1) return cli_usage_error(prog, "usage: %s %s", prog, ctx->usage);
    if (!proto_valid_user(pos[0], strlen(pos[0])))
        return cli_usage_error(prog, "bad user name '%s'", pos[0]);
    return CLI_OK;
}

static void cli_logins_time(long long ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cli_cmd_logins(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char *pos[1];
    int npos;
    int rc = cli_logins_args(ctx, prog, argc, argv, NULL, 0, pos, &npos, 0);
    if (rc != CLI_OK) return rc;
    char key[KEYS_MAX];
    redisContext *c = cli_redis_for(ctx, keys_fmt(key, sizeof key, KEY_LOGINS, pos[0]));
    if (!c) return CLI_FAIL;
    redisReply *r = scripts_login_list_sync(c, pos[0], cli_logins_now_ms());
    if (!r) return cli_fail("redis: %s", c->errstr);
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 5) {
        rc = cli_fail("redis: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return rc;
    }
    printf("%zu signed-in session(s) of %s\n", r->elements / 5, pos[0]);
    for (size_t i = 0; i + 4 < r->elements; i += 5) {
        char created[32], seen[32], expires[32];
        cli_logins_time(r->element[i + 1]->integer, created, sizeof created);
        cli_logins_time(r->element[i + 2]->integer, seen, sizeof seen);
        cli_logins_time(r->element[i + 4]->integer * 1000, expires, sizeof expires);
        printf("  %s  created %s  last seen %s  expires %s  %s\n",
               r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "?", created, seen,
               expires,
               r->element[i + 3]->type == REDIS_REPLY_STRING ? r->element[i + 3]->str : "");
    }
    freeReplyObject(r);
    return CLI_OK;
}

/* Runs login_revoke for what (and sid): the reply's count, or -2 after
 * printing an error. */
static long long cli_logins_revoke(cli_ctx *ctx, const char *user, const char *what,
                                   const char *sid)
{
    redisContext *c = cli_redis(ctx);
    if (!c) return -2;
    redisReply *r = scripts_login_revoke_sync(c, user, what, sid, 0, cli_logins_now_ms());
    if (!r) {
        cli_fail("redis: %s", c->errstr);
        return -2;
    }
    long long n = -2;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        n = r->element[0]->integer;
    else
        cli_fail("redis: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return n;
}

int cli_cmd_revoke(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    int all = 0;
    const config_opt opts[] = {
        {"all", NULL, CONFIG_BOOL, &all, 0, 0, "every signed-in session of the user"},
    };
    char *pos[2];
    int npos;
    int rc = cli_logins_args(ctx, prog, argc, argv, opts, 1, pos, &npos, 1);
    if (rc != CLI_OK) return rc;
    if (all == (npos == 2))
        return cli_usage_error(prog, "give a session id or --all: %s %s", prog, ctx->usage);
    if (!all && !token_valid_sid(pos[1], strlen(pos[1])))
        return cli_usage_error(prog, "'%s' is not a session id (%d hex digits)", pos[1],
                               TOKEN_SID_LEN);
    long long n = cli_logins_revoke(ctx, pos[0], all ? "all" : "one", all ? NULL : pos[1]);
    if (n < 0) return CLI_FAIL;
    if (!all && n == 0) return cli_fail("%s has no session %s", pos[0], pos[1]);
    printf("revoked %lld session(s) of %s\n", n, pos[0]);
    return CLI_OK;
}

int cli_cmd_disable(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char *pos[1];
    int npos;
    int rc = cli_logins_args(ctx, prog, argc, argv, NULL, 0, pos, &npos, 0);
    if (rc != CLI_OK) return rc;
    long long n = cli_logins_revoke(ctx, pos[0], "disable", NULL);
    if (n == -1) return cli_fail("no such user: %s", pos[0]);
    if (n < 0) return CLI_FAIL;
    printf("disabled %s; revoked %lld session(s)\n", pos[0], n);
    return CLI_OK;
}

int cli_cmd_enable(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    char *pos[1];
    int npos;
    int rc = cli_logins_args(ctx, prog, argc, argv, NULL, 0, pos, &npos, 0);
    if (rc != CLI_OK) return rc;
    long long n = cli_logins_revoke(ctx, pos[0], "enable", NULL);
    if (n == -1) return cli_fail("no such user: %s", pos[0]);
    if (n < 0) return CLI_FAIL;
    printf("enabled %s\n", pos[0]);
    return CLI_OK;
}
