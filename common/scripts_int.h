/* scripts_int.h - what the files of the scripts module share (scripts_run.c,
 * scripts_cmd.c, scripts.c, scripts_send.c and the build's scripts_lua.c);
 * not for callers, which use scripts.h. */
#ifndef PARLEY_SCRIPTS_INT_H
#define PARLEY_SCRIPTS_INT_H

#include "scripts.h"

#include <stddef.h>

/* One script as the build embedded it (common/lua/embed.cmake writes a
 * `const scripts_lua scripts_lua_NAME` for every common/lua/NAME.lua). */
typedef struct scripts_lua {
    const char *name;   /* NAME */
    const char *handle; /* EVALSHA's SHA1 of source, or the function (= library) name */
    int function;       /* 1: a function library (FUNCTION LOAD, FCALL); 0: an EVAL script */
    const char *source; /* exactly what SCRIPT LOAD, FUNCTION LOAD or EVAL sends */
} scripts_lua;

/* Runs a script synchronously, as scripts_eval does asynchronously (reload
 * and retry once when it is not loaded). The reply is the caller's to free;
 * NULL on a connection error. */
redisReply *scripts_eval_sync(redisContext *c, script_id id, int nkeys, int nargs,
                              const char **argv, const size_t *argvlen);
/* The script common/lua/NAME.lua (name[0..len)), or SCRIPT__COUNT. */
script_id scripts_by_name(const char *name, size_t len);
/* Queues EVALSHA / FCALL on a pipeline (no retry: load it first). */
int scripts_append_sync(redisContext *c, script_id id, int nkeys, int nargs, const char **argv,
                        const size_t *argvlen);

/* ---- one call's KEYS and ARGV being built ---- */

#define SCRIPTS_CMD_INLINE  24   /* strings before the arrays move to the heap */
#define SCRIPTS_CMD_SCRATCH 2048 /* bytes for formatted keys and numbers */

/* KEYS first (scripts_cmd_key), then ARGV (the others). Strings added with
 * scripts_cmd_arg/_str are pointed to, not copied: they must live until the
 * command is run (which copies everything). Formatted ones live in the
 * struct, so it lives on the caller's stack and is never copied. A string
 * that does not fit, or a key after an ARGV, marks it failed: running it then
 * returns REDIS_ERR. Running frees what it allocated. */
typedef struct scripts_cmd {
    script_id id;
    int nkeys; /* the first nkeys strings are KEYS */
    int n;     /* strings */
    int cap;   /* room in v and len */
    int failed;
    const char **v;
    size_t *len;
    size_t used; /* of scratch */
    const char *v_inline[SCRIPTS_CMD_INLINE];
    size_t len_inline[SCRIPTS_CMD_INLINE];
    char scratch[SCRIPTS_CMD_SCRATCH];
} scripts_cmd;

void scripts_cmd_init(scripts_cmd *c, script_id id);
/* a KEYS entry: a key name format of keys.h and its arguments */
void scripts_cmd_key(scripts_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ARGV entries: bytes, a C string, a formatted string */
void scripts_cmd_arg(scripts_cmd *c, const char *p, size_t len);
void scripts_cmd_str(scripts_cmd *c, const char *s);
void scripts_cmd_fmt(scripts_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs it (scripts_eval / scripts_eval_sync / scripts_append_sync) and
 * releases it. */
int scripts_cmd_run(scripts_cmd *c, redisAsyncContext *ac, redisCallbackFn *cb, void *priv);
/* As scripts_cmd_run, with the durability of scripts_set_durable (scripts.h):
 * each step WAITed for that many replicas (none set: as scripts_cmd_run). */
int scripts_cmd_run_durable(scripts_cmd *c, redisAsyncContext *ac, redisCallbackFn *cb, void *priv);
redisReply *scripts_cmd_run_sync(scripts_cmd *c, redisContext *rc);
int scripts_cmd_append(scripts_cmd *c, redisContext *rc);

/* Runs a script asynchronously (EVALSHA, or FCALL for a function): argv
 * holds nkeys keys then nargs args (with lengths, or NULL for strlen); they
 * are copied. The one asynchronous runner behind the typed calls of
 * scripts.h; REDIS_ERR (cb never called) when ac is NULL or the command
 * cannot be queued. */
int scripts_eval(redisAsyncContext *ac, script_id id, redisCallbackFn *cb, void *privdata,
                 int nkeys, int nargs, const char **argv, const size_t *argvlen);
/* The same, each step of its chain followed by WAIT wait_n wait_ms on the
 * connection that ran it: a step's reply goes on (to the next step, or to cb)
 * only once wait_n replicas acknowledged everything written so far on that
 * connection; fewer within wait_ms end the call with an error reply
 * "NOREPLICAS ...". wait_n 0: as scripts_eval. */
int scripts_eval_wait(redisAsyncContext *ac, script_id id, redisCallbackFn *cb, void *privdata,
                      int wait_n, int wait_ms, int nkeys, int nargs, const char **argv,
                      const size_t *argvlen);

#endif
