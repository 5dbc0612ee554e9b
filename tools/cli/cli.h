/* cli.h - shared state and helpers of the `parley` admin CLI (tools/cli).
 *
 * main.c parses the global flags, picks the command and connects; users.c
 * creates users and tokens; logins.c lists and revokes signed-in sessions and
 * disables users; inspect.c prints what Redis holds. Every command
 * returns the process exit status: 0 ok, 1 Redis or data error, 2 bad usage. */
#ifndef PARLEY_CLI_H
#define PARLEY_CLI_H

#include "config.h"
#include "scripts.h"

#include <hiredis/hiredis.h>
#include <stddef.h>

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

/* the signed-in sessions a user keeps (the gateways' --user-logins default) */
#define CLI_USER_LOGINS 50

typedef struct cli_ctx {
    const char *redis_url;
    const char *secret;
    redisContext *rc;  /* connected lazily by cli_redis() */
    const char *usage; /* the running command's usage line (after its name) */
} cli_ctx;

typedef struct cli_cmd {
    const char *name;
    const char *usage; /* "NAME [--password P]": what follows the command name */
    const char *help;  /* one line */
    int (*run)(cli_ctx *ctx, const char *prog, int argc, char **argv);
} cli_cmd;

/* Connects (once) to --redis-url; prints the reason and returns NULL on error. */
redisContext *cli_redis(cli_ctx *ctx);

/* Splits a command's argv (after the command name) into positionals and flags
 * of opts, then runs config_parse on the flags (exits 0 on --help). Returns 0
 * and the positionals (pointers into argv) in pos/npos, or -1 after printing
 * the error. npos_max bounds the positionals accepted. */
int cli_args(const char *prog, const char *usage, const config_opt *opts, int nopts, int argc,
             char **argv, char **pos, int *npos, int npos_max);

/* Prints "parley: <what>" to stderr and returns CLI_USAGE / CLI_FAIL. */
int cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads a password: flag value, else PARLEY_PASSWORD, else one line of stdin.
 * Checks the protocol's length bounds. Returns 0 or CLI_USAGE after printing. */
int cli_password(const char *prog, const char *flag, char *out, size_t size, size_t *len);

/* Prints one stored frame (inbox or history entry) decoded, on one line. */
void cli_print_entry(const char *buf, size_t len);

int cli_cmd_group(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_migrate_inboxes(cli_ctx *ctx, const char *prog, int argc, char **argv); /* migrate.c */
int cli_cmd_keyslot(cli_ctx *ctx, const char *prog, int argc, char **argv);         /* cluster.c */
int cli_cmd_slots(cli_ctx *ctx, const char *prog, int argc, char **argv);           /* cluster.c */
int cli_cmd_history(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_useradd(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_bulk_users(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_token(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_online(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_sessions(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_logins(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_revoke(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_disable(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_enable(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_inbox(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_gateways(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_routers(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_scripts(cli_ctx *ctx, const char *prog, int argc, char **argv);

#endif
