/* users.c - the CLI commands that create things: useradd, bulk-users (many
 * users sharing one password hash, pipelined, each with its "bulk" signed-in
 * session) and token (a new signed-in session and its token). */
#include "cli.h"
#include "keys.h"
#include "password.h"
#include "proto.h"
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define CLI_BULK_BATCH 1000
#define CLI_BULK_TTL   (30LL * 86400) /* the bulk sessions' lifetime, seconds */

static long long cli_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int cli_password(const char *prog, const char *flag, char *out, size_t size, size_t *len)
{
    const char *pw = flag ? flag : getenv("PARLEY_PASSWORD");
    if (pw && *pw) {
        *len = strlen(pw);
        if (*len >= size)
            return cli_usage_error(prog, "password longer than %d bytes", PASSWORD_MAX);
        memcpy(out, pw, *len + 1);
    } else {
        if (!fgets(out, (int)size, stdin))
            return cli_usage_error(prog, "no password (--password, PARLEY_PASSWORD or stdin)");
        *len = strcspn(out, "\r\n");
        out[*len] = '\0';
    }
    if (*len < PASSWORD_MIN || *len > PASSWORD_MAX)
        return cli_usage_error(prog, "password must be %d to %d bytes", PASSWORD_MIN, PASSWORD_MAX);
    return 0;
}

int cli_cmd_useradd(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    const char *pwflag = NULL;
    const config_opt opts[] = {
        {"password", NULL, CONFIG_STR, &pwflag, 0, 0, "password (else PARLEY_PASSWORD or stdin)"},
    };
    char *pos[1], pw[PASSWORD_MAX + 2], hash[PASSWORD_HASH_MAX];
    size_t pwlen;
    int npos;

    if (cli_args(prog, ctx->usage, opts, 1, argc, argv, pos, &npos, 1) != 0) return CLI_USAGE;
    if (npos != 1) return cli_usage_error(prog, "usage: %s %s", prog, ctx->usage);
    if (!proto_valid_user(pos[0], strlen(pos[0])))
        return cli_usage_error(prog, "bad user name '%s' (" PROTO_USER_RULE ")", pos[0]);
    if (cli_password(prog, pwflag, pw, sizeof(pw), &pwlen) != 0) return CLI_USAGE;
    redisContext *c = cli_redis(ctx);
    if (!c) return CLI_FAIL;
    if (password_init() != 0 || password_hash(pw, pwlen, hash) != 0)
        return cli_fail("cannot hash the password");
    redisReply *r = scripts_register_sync(c, pos[0], hash, cli_now_ms());
    if (!r) return cli_fail("redis: %s", c->errstr);
    int rc = CLI_OK;
    if (r->type == REDIS_REPLY_ERROR)
        rc = cli_fail("redis: %s", r->str);
    else if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        printf("created %s\n", pos[0]);
    else
        rc = cli_fail("user %s already exists", pos[0]);
    freeReplyObject(r);
    return rc;
}

/* The bulk session of user name (the one parley-bench and tests mint tokens for,
 * token_bulk_sid): its id into sid (TOKEN_SID_LEN + 1 bytes) and login_create's
 * arguments into *l (pointing at name and sid). 0, or -1 when it cannot be named. */
static int cli_bulk_login(const cli_ctx *ctx, const char *name, char *sid, long long created,
                          scripts_login *l)
{
    if (token_bulk_sid(ctx->secret, name, sid) < 0) return -1;
    *l = (scripts_login){.user = name,
                         .sid = sid,
                         .agent = "parley bulk-users",
                         .now_ms = created,
                         .exp_s = created / 1000 + CLI_BULK_TTL,
                         .cap = CLI_USER_LOGINS};
    return 0;
}

static int cli_load_script(redisContext *c, script_id id)
{
    const char *av[4];
    int n = scripts_load_argv(id, av);
    redisReply *r = redisCommandArgv(c, n, av, NULL);
    if (!r) return cli_fail("redis: %s", c->errstr);
    int rc = r->type == REDIS_REPLY_ERROR ? cli_fail("redis: %s", r->str) : CLI_OK;
    freeReplyObject(r);
    return rc;
}

int cli_cmd_bulk_users(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    const char *pwflag = NULL, *prefix = "bench";
    long long start = 0;
    const config_opt opts[] = {
        {"prefix", NULL, CONFIG_STR, &prefix, 0, 0, "name prefix"},
        {"start", NULL, CONFIG_INT, &start, 0, 1000000000000LL, "first number"},
        {"password", NULL, CONFIG_STR, &pwflag, 0, 0, "password (else PARLEY_PASSWORD or stdin)"},
    };
    char *pos[1], *end, pw[PASSWORD_MAX + 2], hash[PASSWORD_HASH_MAX];
    size_t pwlen;
    int npos;
    long long n, made = 0, taken = 0;

    if (cli_args(prog, ctx->usage, opts, 3, argc, argv, pos, &npos, 1) != 0) return CLI_USAGE;
    if (npos != 1) return cli_usage_error(prog, "usage: %s %s", prog, ctx->usage);
    n = strtoll(pos[0], &end, 10);
    if (*pos[0] == '\0' || *end || n < 1 || n > 10000000)
        return cli_usage_error(prog, "N must be an integer in [1, 10000000]");
    {
        char probe[80];
        int plen = snprintf(probe, sizeof(probe), "%s%lld", prefix, start + n - 1);
        if (plen >= (int)sizeof(probe) || !proto_valid_user(probe, (size_t)plen) ||
            !proto_valid_user(prefix, strlen(prefix)))
            return cli_usage_error(prog, "names %s%lld.. are not valid user names", prefix, start);
    }
    if (cli_password(prog, pwflag, pw, sizeof(pw), &pwlen) != 0) return CLI_USAGE;
    redisContext *c = cli_redis(ctx);
    if (!c) return CLI_FAIL;
    /* loaded first, so the pipelined EVALSHAs below never meet NOSCRIPT */
    if (cli_load_script(c, SCRIPT_REGISTER) != CLI_OK ||
        cli_load_script(c, SCRIPT_LOGIN_CREATE) != CLI_OK)
        return CLI_FAIL;
    if (password_init() != 0 || password_hash(pw, pwlen, hash) != 0)
        return cli_fail("cannot hash the password");
    long long created = cli_now_ms();

    if (ctx->cluster) { /* the users' keys are on every master: one call after the other */
        for (long long i = 0; i < n; i++) {
            char name[80], sid[TOKEN_SID_LEN + 1];
            snprintf(name, sizeof(name), "%s%lld", prefix, start + i);
            redisReply *r = scripts_register_sync(c, name, hash, created);
            if (!r || r->type == REDIS_REPLY_ERROR) {
                cli_fail("redis: %s", r ? r->str : cli_errstr(ctx));
                if (r) freeReplyObject(r);
                return CLI_FAIL;
            }
            if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
                made++;
            else
                taken++;
            freeReplyObject(r);
            scripts_login l;
            if (cli_bulk_login(ctx, name, sid, created, &l) != 0)
                return cli_fail("cannot name the session of %s", name);
            r = scripts_login_create_sync(c, &l);
            if (!r || r->type == REDIS_REPLY_ERROR) {
                cli_fail("redis: %s", r ? r->str : cli_errstr(ctx));
                if (r) freeReplyObject(r);
                return CLI_FAIL;
            }
            freeReplyObject(r);
        }
    }
    for (long long base = 0; !ctx->cluster && base < n; base += CLI_BULK_BATCH) {
        long long cnt = n - base < CLI_BULK_BATCH ? n - base : CLI_BULK_BATCH;
        for (long long i = 0; i < cnt; i++) {
            char name[80];
            snprintf(name, sizeof(name), "%s%lld", prefix, start + base + i);
            if (scripts_register_append(c, name, hash, created) != REDIS_OK)
                return cli_fail("redis: %s", c->errstr);
            char sid[TOKEN_SID_LEN + 1];
            scripts_login l;
            if (cli_bulk_login(ctx, name, sid, created, &l) != 0)
                return cli_fail("cannot name the session of %s", name);
            if (scripts_login_create_append(c, &l) != REDIS_OK)
                return cli_fail("redis: %s", c->errstr);
        }
        /* every reply of the pipeline first: a step's continuation is followed only then, on
         * a connection with nothing else in flight (scripts_follow_sync) */
        static redisReply *got[2 * CLI_BULK_BATCH];
        long long ngot = 0;
        for (; ngot < 2 * cnt; ngot++)
            if (redisGetReply(c, (void **)&got[ngot]) != REDIS_OK || !got[ngot]) break;
        int bad = ngot < 2 * cnt;
        for (long long i = 0; i < ngot; i++) {
            if (!bad) got[i] = scripts_follow_sync(c, got[i]);
            if (!got[i]) {
                bad = 1;
                continue;
            }
            if (!bad && got[i]->type == REDIS_REPLY_ERROR) {
                cli_fail("redis: %s", got[i]->str);
                bad = 2;
            }
            if (!bad && i % 2 == 0) { /* register's; the session's matters only as an error */
                if (got[i]->type == REDIS_REPLY_INTEGER && got[i]->integer == 1)
                    made++;
                else
                    taken++;
            }
        }
        for (long long i = 0; i < ngot; i++)
            if (got[i]) freeReplyObject(got[i]);
        if (bad == 1) return cli_fail("redis: %s", c->errstr[0] ? c->errstr : "connection lost");
        if (bad) return CLI_FAIL;
    }
    printf("created %lld users %s%lld..%s%lld (%lld already existed)\n", made, prefix, start,
           prefix, start + n - 1, taken);
    return CLI_OK;
}

int cli_cmd_token(cli_ctx *ctx, const char *prog, int argc, char **argv)
{
    long long ttl = 604800, cap = CLI_USER_LOGINS;
    const config_opt opts[] = {
        {"ttl", NULL, CONFIG_INT, &ttl, 1, 315360000, "token lifetime, seconds"},
        {"user-logins", "PARLEY_USER_LOGINS", CONFIG_INT, &cap, 1, 10000,
         "signed-in sessions a user keeps; past it the oldest is revoked (as the gateways')"},
    };
    char *pos[1], tok[TOKEN_MAX], sid[TOKEN_SID_LEN + 1];
    int npos;

    if (cli_args(prog, ctx->usage, opts, 2, argc, argv, pos, &npos, 1) != 0) return CLI_USAGE;
    if (npos != 1) return cli_usage_error(prog, "usage: %s %s", prog, ctx->usage);
    if (!proto_valid_user(pos[0], strlen(pos[0])))
        return cli_usage_error(prog, "bad user name '%s'", pos[0]);
    if (strcmp(ctx->secret, TOKEN_DEV_SECRET) == 0)
        fprintf(stderr, "parley: warning: using the local-only development secret\n");
    redisContext *c = cli_redis(ctx);
    if (!c) return CLI_FAIL;
    long long now = cli_now_ms();
    if (token_new_sid(sid) < 0) return cli_fail("cannot make a session id");
    scripts_login l = {.user = pos[0],
                       .sid = sid,
                       .agent = "parley token",
                       .now_ms = now,
                       .exp_s = now / 1000 + ttl,
                       .cap = cap};
    redisReply *r = scripts_login_create_sync(c, &l);
    if (!r) return cli_fail("redis: %s", c->errstr);
    /* {1, revoked...} made, or a status */
    long long made = r->type == REDIS_REPLY_INTEGER ? r->integer
                     : r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                             r->element[0]->type == REDIS_REPLY_INTEGER
                         ? r->element[0]->integer
                         : -9;
    if (r->type == REDIS_REPLY_ERROR) cli_fail("redis: %s", r->str);
    freeReplyObject(r);
    if (made == 0) return cli_fail("no such user: %s", pos[0]);
    if (made == -1) return cli_fail("user %s is disabled", pos[0]);
    if (made != 1) return CLI_FAIL;
    if (token_mint(ctx->secret, pos[0], sid, l.exp_s, tok, sizeof(tok)) < 0)
        return cli_fail("cannot mint a token for %s", pos[0]);
    printf("%s\n", tok);
    return CLI_OK;
}
