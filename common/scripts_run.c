/* scripts_run.c - the runner of the scripts module: which scripts exist (the
 * build embeds common/lua/NAME.lua as scripts_lua_NAME), how they are loaded,
 * and how one call reaches Redis: EVALSHA, or FCALL for a function, loading
 * the script again and retrying once when Redis answers NOSCRIPT or "Function
 * not found" (after a Redis restart or a FUNCTION FLUSH). */
#include "scripts_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const scripts_lua scripts_lua_send, scripts_lua_session_open, scripts_lua_session_close,
    scripts_lua_sync, scripts_lua_typing, scripts_lua_register, scripts_lua_contacts,
    scripts_lua_release_slot, scripts_lua_renew_slot, scripts_lua_forget_gateway,
    scripts_lua_history, scripts_lua_read, scripts_lua_group, scripts_lua_fanout,
    scripts_lua_login_create, scripts_lua_login_revoke, scripts_lua_login_list,
    scripts_lua_login_touch, scripts_lua_throttle, scripts_lua_block, scripts_lua_inbox_refs,
    scripts_lua_notify_gw, scripts_lua_notify_fan, scripts_lua_notify_all, scripts_lua_block_by,
    scripts_lua_block_peer, scripts_lua_typing_gate, scripts_lua_typing_send, scripts_lua_read_pos,
    scripts_lua_read_hist, scripts_lua_read_set, scripts_lua_group_by, scripts_lua_group_users,
    scripts_lua_group_blocks, scripts_lua_group_apply, scripts_lua_group_run,
    scripts_lua_group_member, scripts_lua_group_index, scripts_lua_group_done;

static const scripts_lua *const scripts_table[SCRIPT__COUNT] = {
    [SCRIPT_SEND] = &scripts_lua_send,
    [SCRIPT_SESSION_OPEN] = &scripts_lua_session_open,
    [SCRIPT_SESSION_CLOSE] = &scripts_lua_session_close,
    [SCRIPT_SYNC] = &scripts_lua_sync,
    [SCRIPT_TYPING] = &scripts_lua_typing,
    [SCRIPT_REGISTER] = &scripts_lua_register,
    [SCRIPT_CONTACTS] = &scripts_lua_contacts,
    [SCRIPT_RELEASE_SLOT] = &scripts_lua_release_slot,
    [SCRIPT_RENEW_SLOT] = &scripts_lua_renew_slot,
    [SCRIPT_FORGET_GATEWAY] = &scripts_lua_forget_gateway,
    [SCRIPT_HISTORY] = &scripts_lua_history,
    [SCRIPT_READ] = &scripts_lua_read,
    [SCRIPT_GROUP] = &scripts_lua_group,
    [SCRIPT_FANOUT] = &scripts_lua_fanout,
    [SCRIPT_LOGIN_CREATE] = &scripts_lua_login_create,
    [SCRIPT_LOGIN_REVOKE] = &scripts_lua_login_revoke,
    [SCRIPT_LOGIN_LIST] = &scripts_lua_login_list,
    [SCRIPT_LOGIN_TOUCH] = &scripts_lua_login_touch,
    [SCRIPT_THROTTLE] = &scripts_lua_throttle,
    [SCRIPT_BLOCK] = &scripts_lua_block,
    [SCRIPT_INBOX_REFS] = &scripts_lua_inbox_refs,
    [SCRIPT_NOTIFY_GW] = &scripts_lua_notify_gw,
    [SCRIPT_NOTIFY_FAN] = &scripts_lua_notify_fan,
    [SCRIPT_NOTIFY_ALL] = &scripts_lua_notify_all,
    [SCRIPT_BLOCK_BY] = &scripts_lua_block_by,
    [SCRIPT_BLOCK_PEER] = &scripts_lua_block_peer,
    [SCRIPT_TYPING_GATE] = &scripts_lua_typing_gate,
    [SCRIPT_TYPING_SEND] = &scripts_lua_typing_send,
    [SCRIPT_READ_POS] = &scripts_lua_read_pos,
    [SCRIPT_READ_HIST] = &scripts_lua_read_hist,
    [SCRIPT_READ_SET] = &scripts_lua_read_set,
    [SCRIPT_GROUP_BY] = &scripts_lua_group_by,
    [SCRIPT_GROUP_USERS] = &scripts_lua_group_users,
    [SCRIPT_GROUP_BLOCKS] = &scripts_lua_group_blocks,
    [SCRIPT_GROUP_APPLY] = &scripts_lua_group_apply,
    [SCRIPT_GROUP_RUN] = &scripts_lua_group_run,
    [SCRIPT_GROUP_MEMBER] = &scripts_lua_group_member,
    [SCRIPT_GROUP_INDEX] = &scripts_lua_group_index,
    [SCRIPT_GROUP_DONE] = &scripts_lua_group_done,
};

extern const int scripts_lua_count; /* the build's count of common/lua/NAME.lua */

int scripts_check(char *err, size_t size)
{
    if (scripts_lua_count != SCRIPT__COUNT) {
        snprintf(err, size,
                 "common/lua has %d scripts but script_id names %d: add the new one to the enum "
                 "of common/scripts.h and the table of common/scripts_run.c",
                 scripts_lua_count, (int)SCRIPT__COUNT);
        return -1;
    }
    for (int i = 0; i < SCRIPT__COUNT; i++)
        if (!scripts_table[i] || !scripts_table[i]->source) {
            snprintf(err, size, "script id %d has no entry in the table of common/scripts_run.c",
                     i);
            return -1;
        }
    return 0;
}

static const scripts_lua *scripts_get(script_id id)
{
    return (unsigned)id < SCRIPT__COUNT ? scripts_table[id] : NULL;
}

const char *scripts_name(script_id id)
{
    const scripts_lua *s = scripts_get(id);
    return s ? s->name : NULL;
}

const char *scripts_sha(script_id id)
{
    const scripts_lua *s = scripts_get(id);
    return s ? s->handle : NULL;
}

const char *scripts_source(script_id id)
{
    const scripts_lua *s = scripts_get(id);
    return s ? s->source : NULL;
}

int scripts_is_function(script_id id)
{
    const scripts_lua *s = scripts_get(id);
    return s && s->function;
}

int scripts_load_argv(script_id id, const char *argv[4])
{
    if (scripts_is_function(id)) {
        argv[0] = "FUNCTION";
        argv[1] = "LOAD";
        argv[2] = "REPLACE";
        argv[3] = scripts_source(id);
        return 4;
    }
    argv[0] = "SCRIPT";
    argv[1] = "LOAD";
    argv[2] = scripts_source(id);
    return 3;
}

int scripts_missing(const char *err, size_t len)
{
    static const char fn[] = "ERR Function not found";
    return (len >= 8 && memcmp(err, "NOSCRIPT", 8) == 0) ||
           (len >= sizeof fn - 1 && memcmp(err, fn, sizeof fn - 1) == 0);
}

/* A whole command, EVALSHA sha nkeys keys... args... (or FCALL), in one
 * allocation with a copy of the strings, so it can be sent again after
 * NOSCRIPT. head: room the caller uses before it (scripts_call). */
typedef struct scripts_command {
    int argc;
    const char **argv;
    size_t *argvlen;
    char nkeys[12];
} scripts_command;

static void *scripts_command_new(size_t head, script_id id, int nkeys, int nargs, const char **argv,
                                 const size_t *argvlen)
{
    const int n = nkeys + nargs;
    const int argc = 3 + n;
    const scripts_lua *s = scripts_get(id);
    size_t bytes = 0;

    if (!s || nkeys < 0 || nargs < 0) return NULL;
    for (int i = 0; i < n; i++)
        bytes += argvlen ? argvlen[i] : strlen(argv[i]);
    char *mem = malloc(head + sizeof(scripts_command) +
                       (size_t)argc * (sizeof(char *) + sizeof(size_t)) + bytes);
    if (!mem) return NULL;
    scripts_command *cmd = (scripts_command *)(mem + head);
    cmd->argc = argc;
    cmd->argv = (const char **)(cmd + 1);
    cmd->argvlen = (size_t *)(cmd->argv + argc);
    char *data = (char *)(cmd->argvlen + argc);

    cmd->argv[0] = s->function ? "FCALL" : "EVALSHA";
    cmd->argvlen[0] = strlen(cmd->argv[0]);
    cmd->argv[1] = s->handle;
    cmd->argvlen[1] = strlen(s->handle);
    cmd->argvlen[2] = (size_t)snprintf(cmd->nkeys, sizeof(cmd->nkeys), "%d", nkeys);
    cmd->argv[2] = cmd->nkeys;
    for (int i = 0; i < n; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        memcpy(data, argv[i], len);
        cmd->argv[3 + i] = data;
        cmd->argvlen[3 + i] = len;
        data += len;
    }
    return mem;
}

/* Turns cmd into the reload step for id: for a function, returns the
 * FUNCTION LOAD to send first (cmd is then sent as it is); for a script,
 * cmd becomes EVAL of the source and 0 is returned. */
static int scripts_command_reload(scripts_command *cmd, script_id id, const char *load[4])
{
    if (scripts_is_function(id)) return scripts_load_argv(id, load);
    cmd->argv[0] = "EVAL";
    cmd->argvlen[0] = 4;
    cmd->argv[1] = scripts_source(id);
    cmd->argvlen[1] = strlen(cmd->argv[1]);
    return 0;
}

/* One in-flight scripts_eval call, followed by its command. Freed after the
 * user callback ran. */
typedef struct scripts_call {
    redisCallbackFn *cb;
    void *privdata;
    script_id id;
} scripts_call;

static scripts_command *scripts_call_cmd(scripts_call *call)
{
    return (scripts_command *)(call + 1);
}

static void scripts_finish(redisAsyncContext *ac, scripts_call *call, void *reply)
{
    if (call->cb) call->cb(ac, reply, call->privdata);
    free(call);
}

static void scripts_retry_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    scripts_finish(ac, privdata, r);
}

static void scripts_eval_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    scripts_call *call = privdata;
    scripts_command *cmd = scripts_call_cmd(call);
    redisReply *reply = r;

    if (reply && reply->type == REDIS_REPLY_ERROR && scripts_missing(reply->str, reply->len)) {
        const char *load[4];
        int n = scripts_command_reload(cmd, call->id, load);
        /* a function: load the library, then the same FCALL; a script: EVAL */
        int ok = n == 0 || redisAsyncCommandArgv(ac, NULL, NULL, n, load, NULL) == REDIS_OK;
        if (ok && redisAsyncCommandArgv(ac, scripts_retry_cb, call, cmd->argc, cmd->argv,
                                        cmd->argvlen) == REDIS_OK)
            return;
        /* the context is going away: report it like a disconnect */
        reply = NULL;
    }
    scripts_finish(ac, call, reply);
}

int scripts_eval(redisAsyncContext *ac, script_id id, redisCallbackFn *cb, void *privdata,
                 int nkeys, int nargs, const char **argv, const size_t *argvlen)
{
    if (!ac) return REDIS_ERR; /* not connected */
    scripts_call *call = scripts_command_new(sizeof(scripts_call), id, nkeys, nargs, argv, argvlen);
    if (!call) return REDIS_ERR;
    call->cb = cb;
    call->privdata = privdata;
    call->id = id;
    scripts_command *cmd = scripts_call_cmd(call);
    if (redisAsyncCommandArgv(ac, scripts_eval_cb, call, cmd->argc, cmd->argv, cmd->argvlen) !=
        REDIS_OK) {
        free(call);
        return REDIS_ERR;
    }
    return REDIS_OK;
}

redisReply *scripts_eval_sync(redisContext *c, script_id id, int nkeys, int nargs,
                              const char **argv, const size_t *argvlen)
{
    scripts_command *cmd = scripts_command_new(0, id, nkeys, nargs, argv, argvlen);
    if (!cmd) return NULL;
    redisReply *r = redisCommandArgv(c, cmd->argc, cmd->argv, cmd->argvlen);
    if (r && r->type == REDIS_REPLY_ERROR && scripts_missing(r->str, r->len)) {
        const char *load[4];
        int n = scripts_command_reload(cmd, id, load);
        freeReplyObject(r);
        r = n ? redisCommandArgv(c, n, load, NULL) : NULL;
        if (r) freeReplyObject(r);
        r = redisCommandArgv(c, cmd->argc, cmd->argv, cmd->argvlen);
    }
    free(cmd);
    return r;
}

int scripts_append_sync(redisContext *c, script_id id, int nkeys, int nargs, const char **argv,
                        const size_t *argvlen)
{
    scripts_command *cmd = scripts_command_new(0, id, nkeys, nargs, argv, argvlen);
    if (!cmd) return REDIS_ERR;
    int rc = redisAppendCommandArgv(c, cmd->argc, cmd->argv, cmd->argvlen);
    free(cmd);
    return rc;
}
