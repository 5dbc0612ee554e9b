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
    SCRIPT_RELEASE_SLOT,   /* KEYS: slot key; ARGV: router id: DEL if owned */
    SCRIPT_RENEW_SLOT,     /* KEYS: slot key; ARGV: router id, lease ms: PEXPIRE if owned */
    SCRIPT_FORGET_GATEWAY, /* KEYS: gateways, alive, gateway sessions; ARGV: id */
    SCRIPT_HISTORY,
    SCRIPT_READ,
    SCRIPT_GROUP,
    SCRIPT__COUNT
} script_id;

/* Computes the SHA1 of every script (once; idempotent). */
void scripts_init(void);
/* what loads it: the script, or a function's whole library */
const char *scripts_source(script_id id);
/* what calls it: EVALSHA's SHA1, or FCALL's function (= library) name */
const char *scripts_sha(script_id id);
const char *scripts_name(script_id id);
/* 1 when id is a Redis function (FCALL), 0 for an EVAL script */
int scripts_is_function(script_id id);
/* fills argv with the command that loads id (SCRIPT LOAD, or FUNCTION LOAD
 * REPLACE); returns its argc. Its reply is scripts_sha(id). */
int scripts_load_argv(script_id id, const char *argv[4]);
/* 1 when an error reply says the script or function is not loaded */
int scripts_missing(const char *err, size_t len);

/* Runs a script asynchronously (EVALSHA, or FCALL for a function): argv
 * holds nkeys keys then nargs args (with lengths). cb receives the final
 * reply (after a NOSCRIPT / not-found retry) exactly as
 * redisAsyncCommandArgv would deliver it, including NULL on disconnect.
 * Returns REDIS_OK or REDIS_ERR (not connected). */
int scripts_eval(redisAsyncContext *ac, script_id id, redisCallbackFn *cb, void *privdata,
                 int nkeys, int nargs, const char **argv, const size_t *argvlen);

/* Queues SCRIPT LOAD / FUNCTION LOAD of every script (replies ignored). Call
 * first on every new command connection: later calls then never meet
 * NOSCRIPT, whose retry could otherwise let a message overtake an earlier
 * one. */
int scripts_load(redisAsyncContext *ac);

/* Runs session_close for one session (docs/internals.md): user, its session
 * id (gwid#conn), its member in the gateway's set (user#conn), the gateway.
 * With reaping set (the router's reaper) the reply is -1 and nothing changes
 * when the gateway's alive key exists. */
int scripts_session_close(redisAsyncContext *ac, redisCallbackFn *cb, void *privdata,
                          const char *user, const char *sessid, const char *member,
                          const char *gwid, int reaping);

#endif
