/* cli.h - shared state and helpers of the `parley` admin CLI (tools/cli).
 *
 * main.c parses the global flags, picks the command and connects; users.c
 * creates users and tokens; logins.c lists and revokes signed-in sessions and
 * disables users; inspect.c prints what Redis holds; conversations.c shows
 * groups and histories; entry.c formats one stored frame; cluster.c and
 * cluster_ids.c are about Redis Cluster (slots, the per-slot id counters). Every command
 * returns the process exit status: 0 ok, 1 Redis or data error, 2 bad usage. */
#ifndef PARLEY_CLI_H
#define PARLEY_CLI_H

#include "cluster.h"
#include "config.h"
#include "scripts.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

/* the signed-in sessions a user keeps (the gateways' --user-logins default) */
#define CLI_USER_LOGINS 50

/* A cluster node a MOVED or ASK named, connected once (cli_command). */
#define CLI_NODES_MAX 16
typedef struct cli_node {
    char host[CLUSTER_HOST_MAX];
    int port;
    redisContext *rc;
} cli_node;

typedef struct cli_ctx {
    const char *redis_url;
    int cluster; /* a redis-cluster:// URL: scripts go key by key (scripts_set_sync_sender) */
    const char *secret;
    redisContext *rc;  /* connected lazily by cli_redis() */
    const char *usage; /* the running command's usage line (after its name) */
    /* cli_command: the nodes redirections named (owned), and the connection
     * that answered the last command (rc or one of them) */
    cli_node nodes[CLI_NODES_MAX];
    int nnodes;
    redisContext *last;
} cli_ctx;

typedef struct cli_cmd {
    const char *name;
    const char *usage; /* "NAME [--password P]": what follows the command name */
    const char *help;  /* one line */
    int (*run)(cli_ctx *ctx, const char *prog, int argc, char **argv);
} cli_cmd;

/* Connects (once) to --redis-url; prints the reason and returns NULL on error. */
redisContext *cli_redis(cli_ctx *ctx);

/* A command (hiredis's format, or argv) on --redis-url that follows a
 * cluster's redirections: on MOVED/ASK it connects to the node named (once
 * per node, with the URL's password; kept until cli_close) and sends it there,
 * at most 3 times. Returns the reply (the caller frees it; an error reply
 * too), or NULL with the reason in cli_errstr (not connected, I/O error). On
 * one Redis it is redisCommand on cli_redis. */
redisReply *cli_command(cli_ctx *ctx, const char *fmt, ...);
redisReply *cli_command_argv(cli_ctx *ctx, int argc, const char **argv, const size_t *lens);
/* Why the last cli_command answered NULL. */
const char *cli_errstr(const cli_ctx *ctx);
/* The connection to the node that serves key (on one Redis: cli_redis), for
 * a script whose first key is key; NULL after printing the error. */
redisContext *cli_redis_for(cli_ctx *ctx, const char *key);
/* The slot map the node of --redis-url reports (cluster.c): 0, or CLI_FAIL
 * after printing why (not a cluster node: its error). *out is static storage,
 * overwritten by the next call. */
int cli_cluster_map(cli_ctx *ctx, cluster_map **out);
/* Closes every connection. */
void cli_close(cli_ctx *ctx);

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

/* One message of a history page, for the quote of a reply to it. */
typedef struct cli_msg {
    uint64_t id;
    int deleted;      /* the message was deleted: nothing to quote */
    int cut;          /* quote holds only the start of the data */
    size_t quote_len; /* bytes in quote */
    char quote[48];   /* the data's first bytes (cut on a UTF-8 boundary) */
} cli_msg;

/* The messages of one history page, in id order (as ZRANGE returns them).
 * Zero-initialise; cli_page_free releases msgs. */
typedef struct cli_page {
    cli_msg *msgs; /* owned, grown by cli_page_add */
    size_t n, cap;
} cli_page;

/* Adds one history entry (msgpack text map) to the page; an entry without an
 * id is left out. Returns 0, or -1 when out of memory. */
int cli_page_add(cli_page *page, const char *buf, size_t len);
void cli_page_free(cli_page *page);

typedef enum cli_entry_type {
    CLI_ENTRY_BAD,      /* not a msgpack map */
    CLI_ENTRY_FRAME,    /* a whole frame: a history message, an old inbox copy */
    CLI_ENTRY_TEXT_REF, /* inbox {seq, id, w}: a text of the conversation w */
    CLI_ENTRY_EVENT,    /* inbox {seq, k: "e"|"d"|"r", id, w, ...} */
} cli_entry_type;

/* A reference's target: message id in the conversation the user calls with
 * (a peer's name or "#group"); ok is 0 when the entry lacks either. */
typedef struct cli_ref {
    int ok;
    uint64_t id;
    char with[64];
} cli_ref;

/* Prints one stored frame (history or inbox entry) decoded on one line,
 * without the newline, to out. A history message shows its current state:
 * "[message deleted by U at T]" in place of a deleted one's data, edited=T,
 * reactions={"E": u1,u2; ...}, mentions=a,b, reply_to=ID with a short quote
 * of that message when page (may be NULL) holds it. An inbox reference shows
 * "seq=N text|edit|delete|react id=ID with=W" and the event's fields.
 * Returns what the entry was. */
cli_entry_type cli_entry_print(FILE *out, const char *buf, size_t len, const cli_page *page);

/* Decodes an inbox entry's target (*ref, zeroed first) when it is a
 * reference. Returns what the entry was. */
cli_entry_type cli_entry_ref(const char *buf, size_t len, cli_ref *ref);

/* ms since the epoch as 2026-01-31T12:00:00.000Z */
void cli_ftime(FILE *out, long long ms);

int cli_cmd_group(cli_ctx *ctx, const char *prog, int argc, char **argv);
int cli_cmd_migrate_inboxes(cli_ctx *ctx, const char *prog, int argc, char **argv); /* migrate.c */
/* A pass over the 16,384 per-slot id counters parley:{TAG}:ids (keys.h
 * KEY_SLOT_IDS), cluster_ids.c. Each counter goes up by `add` when add > 0
 * (an absent key too, unless existing_only), else up to `need` when below it;
 * never down. dry_run counts without writing. */
typedef struct ids_run {
    long long need, add;
    int existing_only, dry_run;
    long long changed, kept; /* counters raised (or that would be), and left as they were */
} ids_run;
/* Runs it on the masters of map m (a cluster; per master pipelined, a key
 * redirected meanwhile on its own) or, m NULL, on the one Redis. 0, or
 * CLI_FAIL after printing (a counter that is not a number, a lost link). */
int cli_ids_adjust(cli_ctx *ctx, ids_run *run, const cluster_map *m);
int cli_cmd_after_restore(cli_ctx *ctx, const char *prog, int argc, char **argv); /* restore.c */
int cli_cmd_cluster_ids(cli_ctx *ctx, const char *prog, int argc, char **argv); /* cluster_ids.c */
int cli_cmd_keyslot(cli_ctx *ctx, const char *prog, int argc, char **argv);     /* cluster.c */
int cli_cmd_slots(cli_ctx *ctx, const char *prog, int argc, char **argv);       /* cluster.c */
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
