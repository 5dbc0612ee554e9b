/* scripts.h - the Lua scripts Parley runs in Redis, and a hiredis async helper
 * that runs them with EVALSHA, falling back to EVAL when Redis answers NOSCRIPT
 * (for instance after a Redis restart). KEYS and ARGV of each script are
 * documented in docs/internals.md. */
#ifndef PARLEY_SCRIPTS_H
#define PARLEY_SCRIPTS_H

#include <hiredis/async.h>
#include <stddef.h>

typedef enum {
    SCRIPT_SEND = 0,
    SCRIPT_SESSION_OPEN,
    SCRIPT_SESSION_CLOSE,
    SCRIPT_SYNC,
    SCRIPT_TYPING,
    SCRIPT_REGISTER,
    SCRIPT_CONTACTS,
    SCRIPT_RELEASE_SLOT, /* KEYS: slot key; ARGV: router id: DEL if owned */
    SCRIPT_RENEW_SLOT,   /* KEYS: slot key; ARGV: router id, lease ms: PEXPIRE if owned */
    SCRIPT_HISTORY,
    SCRIPT_READ,
    SCRIPT_GROUP,
    SCRIPT__COUNT
} script_id;

/* Computes the SHA1 of every script (once; idempotent). */
void scripts_init(void);
const char *scripts_source(script_id id);
const char *scripts_sha(script_id id);
const char *scripts_name(script_id id);

/* Runs a script asynchronously: argv holds nkeys keys then nargs args (with
 * lengths). cb receives the final reply (after a NOSCRIPT retry) exactly as
 * redisAsyncCommandArgv would deliver it, including NULL on disconnect.
 * Returns REDIS_OK or REDIS_ERR (not connected). */
int scripts_eval(redisAsyncContext *ac, script_id id, redisCallbackFn *cb, void *privdata,
                 int nkeys, int nargs, const char **argv, const size_t *argvlen);

/* Queues SCRIPT LOAD of every script (replies ignored). Call first on every
 * new command connection: later EVALSHAs then never meet NOSCRIPT, whose
 * EVAL retry could otherwise let a message overtake an earlier one. */
int scripts_load(redisAsyncContext *ac);

#endif
