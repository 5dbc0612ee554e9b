/* scripts_run.c - the runner of the scripts module: which scripts exist (the
 * build embeds common/lua/NAME.lua as scripts_lua_NAME), how they are loaded,
 * and how one call reaches Redis: EVALSHA, or FCALL for a function, loading
 * the script again and retrying once when Redis answers NOSCRIPT or "Function
 * not found" (after a Redis restart or a FUNCTION FLUSH); and the dispatcher
 * that bounds the steps in flight and serves the calls' queued steps in turn
 * (docs/internals.md "Scripts in steps": dispatch). */
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
    scripts_lua_register_index, scripts_lua_send_step;
/* the steps of the reads */
extern const scripts_lua scripts_lua_history_page, scripts_lua_sync_member, scripts_lua_sync_hist,
    scripts_lua_sync_cut, scripts_lua_sync_page, scripts_lua_contacts_list,
    scripts_lua_contacts_members, scripts_lua_contacts_in, scripts_lua_contacts_peer,
    scripts_lua_contacts_last, scripts_lua_contacts_group, scripts_lua_contacts_gonline,
    scripts_lua_contacts_online, scripts_lua_contacts_page;
extern const scripts_lua scripts_lua_gw_session, scripts_lua_online, scripts_lua_sessions_full,
    scripts_lua_reap_check, scripts_lua_revoked_add, scripts_lua_login_store,
    scripts_lua_login_drop;
/* the steps of group, read, typing and block */
extern const scripts_lua scripts_lua_notify_gw, scripts_lua_notify_fan, scripts_lua_notify_all,
    scripts_lua_block_by, scripts_lua_block_peer, scripts_lua_typing_gate, scripts_lua_typing_send,
    scripts_lua_read_pos, scripts_lua_read_hist, scripts_lua_read_set, scripts_lua_group_by,
    scripts_lua_group_users, scripts_lua_group_blocks, scripts_lua_group_apply,
    scripts_lua_group_run, scripts_lua_group_member, scripts_lua_group_index,
    scripts_lua_group_done;

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
    [SCRIPT_REGISTER_INDEX] = &scripts_lua_register_index,
    [SCRIPT_SEND_STEP] = &scripts_lua_send_step,
    [SCRIPT_HISTORY_PAGE] = &scripts_lua_history_page,
    [SCRIPT_SYNC_MEMBER] = &scripts_lua_sync_member,
    [SCRIPT_SYNC_HIST] = &scripts_lua_sync_hist,
    [SCRIPT_SYNC_CUT] = &scripts_lua_sync_cut,
    [SCRIPT_SYNC_PAGE] = &scripts_lua_sync_page,
    [SCRIPT_CONTACTS_LIST] = &scripts_lua_contacts_list,
    [SCRIPT_CONTACTS_MEMBERS] = &scripts_lua_contacts_members,
    [SCRIPT_CONTACTS_IN] = &scripts_lua_contacts_in,
    [SCRIPT_CONTACTS_PEER] = &scripts_lua_contacts_peer,
    [SCRIPT_CONTACTS_LAST] = &scripts_lua_contacts_last,
    [SCRIPT_CONTACTS_GROUP] = &scripts_lua_contacts_group,
    [SCRIPT_CONTACTS_GONLINE] = &scripts_lua_contacts_gonline,
    [SCRIPT_CONTACTS_ONLINE] = &scripts_lua_contacts_online,
    [SCRIPT_CONTACTS_PAGE] = &scripts_lua_contacts_page,
    [SCRIPT_GW_SESSION] = &scripts_lua_gw_session,
    [SCRIPT_ONLINE] = &scripts_lua_online,
    [SCRIPT_SESSIONS_FULL] = &scripts_lua_sessions_full,
    [SCRIPT_REAP_CHECK] = &scripts_lua_reap_check,
    [SCRIPT_REVOKED_ADD] = &scripts_lua_revoked_add,
    [SCRIPT_LOGIN_STORE] = &scripts_lua_login_store,
    [SCRIPT_LOGIN_DROP] = &scripts_lua_login_drop,
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

int scripts_conn_setup(scripts_setup_send *send, void *ctx, const char *name, int with_scripts)
{
    const char *argv[] = {"CLIENT", "SETNAME", name};
    if (send(ctx, "CLIENT SETNAME", 3, argv, NULL) != REDIS_OK) return -1;
    int n = 1;
    for (int i = 0; with_scripts && i < SCRIPT__COUNT; i++, n++) {
        const char *load[4];
        int argc = scripts_load_argv((script_id)i, load);
        if (send(ctx, "script load", argc, load, NULL) != REDIS_OK) return -1;
    }
    return n;
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

/* One in-flight scripts_eval call (one step of a chain), followed by its
 * command. Freed after its reply was handled. */
/* What a step carries along its chain: its depth, and the durability asked
 * for (scripts_eval_wait). */
typedef struct scripts_disp scripts_disp;
typedef struct scripts_hop {
    int hops;            /* steps run before this one in its chain */
    int wait_n, wait_ms; /* WAIT wait_n wait_ms after each step (wait_n 0: none) */
    scripts_disp *d;     /* its dispatcher (a reference held by its holder) */
    int bulk;            /* a branch of a big fork, or a step of its chain: the bulk queue */
} scripts_hop;

typedef struct scripts_call {
    redisCallbackFn *cb;
    void *privdata;
    script_id id;
    scripts_hop hop;
    redisReply *held;               /* the step's reply, kept (a copy) while its WAIT runs */
    int sent;                       /* counted in its dispatcher's steps in flight */
    struct scripts_call *next;      /* in its dispatch queue */
    struct scripts_call *next_wait; /* its connection's queue of steps waiting (below) */
} scripts_call;

/* ---- dispatch: at most SCRIPTS_WINDOW steps in flight per context, the rest queued in two
 * FIFO queues served in turn ----
 *
 * A dispatcher per redisAsyncContext given to scripts_eval / scripts_eval_wait (one Redis: the
 * command connection; a cluster link: its stand-in context, so one per link, whose masters share
 * the window: the runner does not see which master a step goes to). Every step of every call
 * started on that context goes through it: sent at once while fewer than SCRIPTS_WINDOW are in
 * flight and nothing is queued, else queued. A step stays in flight until its reply (after its
 * WAIT, or its reload and retry) was handled.
 *
 * Two queues, each first in, first out: *bulk* holds the branches of big forks (more than
 * SCRIPTS_BULK_FORK branches; a router batch's split fork has at most 128) and of forks a script
 * marks bulk ("parley:bulk", lib/fork.lua: a group message's parts and member steps, whatever the
 * group's size: a burst to a 128-member group held everyone's steps and the router's lease
 * renewals behind it, tester15b F1b) and every later step of their chains; *calls* holds every
 * other step (the callers' calls, their chains, small forks, the joins of big forks). When a slot
 * frees, the next step comes from the queues in turn, one each while both wait. So a caller's next
 * step waits behind the steps in flight, the steps of other calls queued before it (about one per
 * busy chain: a chain has one step at a time) and as many bulk steps, never behind a whole big
 * fork; and each queue keeps the order steps were named in, as one connection did before: chains of
 * equal length started in order (the router's batches) still run each step in that order, and the
 * copies of two group messages still go out in id order. Not kept: the order between a bulk
 * step and a calls step (they pass each other; no step needs it).
 *
 * A queued step is its built command (scripts_command), as a step sent at once holds it: nothing
 * new per step, nothing sized by a peer's input beyond the steps the scripts named. A lost
 * connection: the steps in flight get NULL from hiredis (or the cluster link); the pump after
 * each tries the next queued step, whose send fails on the dying context, which ends it as a lost
 * connection (its callback NULL, once), and so on until the queues are empty: nothing stays
 * queued on a context that is gone (the queues are non-empty only while the window is full, so
 * some step in flight always gets that NULL). On a cluster link a lost master's steps get NULL
 * and the queues go on to the others; a link being freed refuses sends, so its queues end as a
 * dying context's. */
/* steps in flight per dispatcher (-DSCRIPTS_WINDOW=N builds another, for a test) */
#ifndef SCRIPTS_WINDOW
#define SCRIPTS_WINDOW 256
#endif
#define SCRIPTS_BULK_FORK 128 /* a fork of more branches is bulk */

typedef struct scripts_queue {
    scripts_call *head, *tail;
} scripts_queue;

struct scripts_disp {
    redisAsyncContext *ac;
    int refs;            /* calls and forks alive, pumps running */
    int inflight;        /* steps sent, not yet handled */
    int pumping;         /* a pump loop runs */
    int turn;            /* the queue the next step comes from while both wait: 1 bulk */
    scripts_queue calls; /* the callers' steps */
    scripts_queue bulk;  /* big forks' steps */
    scripts_disp *next;  /* in scripts_disps */
};

static scripts_disp *scripts_disps; /* the dispatchers with calls alive */

/* The dispatcher of ac (made when there is none), NULL when out of memory. */
static scripts_disp *scripts_disp_of(redisAsyncContext *ac)
{
    for (scripts_disp *d = scripts_disps; d; d = d->next)
        if (d->ac == ac) return d;
    scripts_disp *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->ac = ac;
    d->next = scripts_disps;
    scripts_disps = d;
    return d;
}

/* Unlinks and frees d (no calls, forks or pumps left). Not inlined: GCC's -Wuse-after-free
 * cannot see that scripts_finish's and scripts_pump's own references keep d alive across the
 * calls that drop others. */
__attribute__((noinline)) static void scripts_disp_drop(scripts_disp *d)
{
    scripts_disp **pp = &scripts_disps;
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp) *pp = d->next;
    free(d);
}

static void scripts_disp_unref(scripts_disp *d)
{
    if (--d->refs == 0) scripts_disp_drop(d);
}

static int scripts_disp_busy(const scripts_disp *d)
{
    return d->calls.head || d->bulk.head;
}

static void scripts_enqueue(scripts_call *call)
{
    scripts_queue *q = call->hop.bulk ? &call->hop.d->bulk : &call->hop.d->calls;
    call->next = NULL;
    if (q->tail)
        q->tail->next = call;
    else
        q->head = call;
    q->tail = call;
}

/* The next queued step (d busy): from each queue in turn while both wait. */
static scripts_call *scripts_dequeue(scripts_disp *d)
{
    scripts_queue *q = !d->bulk.head    ? &d->calls
                       : !d->calls.head ? &d->bulk
                       : d->turn        ? &d->bulk
                                        : &d->calls;
    d->turn = q == &d->calls;
    scripts_call *call = q->head;
    q->head = call->next;
    if (!q->head) q->tail = NULL;
    call->next = NULL;
    return call;
}

static scripts_command *scripts_call_cmd(scripts_call *call)
{
    return (scripts_command *)(call + 1);
}

static int scripts_eval_hop(redisAsyncContext *ac, script_id id, redisCallbackFn *cb,
                            void *privdata, scripts_hop hop, int nkeys, int nargs,
                            const char **argv, const size_t *argvlen);

/* ---- steps: the continuations a script may answer (lib/step.lua, lib/fork.lua) ---- */

#define SCRIPTS_NEXT     "parley:next"
#define SCRIPTS_FORK     "parley:fork"
#define SCRIPTS_BULK     "parley:bulk" /* a fork whose steps are bulk work, whatever their number */
#define SCRIPTS_HOPS_MAX 64            /* steps in one chain */
#define SCRIPTS_FORK_MAX 4096          /* steps of one fork */

static int scripts_is_str(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->len == n &&
           memcmp(r->str, s, n) == 0;
}

/* 1 when reply is a continuation (the first element "parley:next" or "parley:fork"). */
static int scripts_is_step(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
           (scripts_is_str(r->element[0], SCRIPTS_NEXT) ||
            scripts_is_str(r->element[0], SCRIPTS_FORK) ||
            scripts_is_str(r->element[0], SCRIPTS_BULK));
}

script_id scripts_by_name(const char *name, size_t len)
{
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        const char *n = scripts_table[i] ? scripts_table[i]->name : NULL;
        if (n && strlen(n) == len && memcmp(n, name, len) == 0) return (script_id)i;
    }
    return SCRIPT__COUNT;
}

/* One step named in a reply, {NAME, NKEYS, key..., arg...} from element
 * `first` of r (an integer element becomes its decimal text in num, which
 * must hold 24 bytes per element), plus `extra` strings after its args.
 * Returns 0 with the parts in *st; -1 when malformed. */
typedef struct scripts_step {
    script_id id;
    int nkeys, nargs;
    const char **argv;
    size_t *argvlen;
} scripts_step;

static int scripts_step_parse(const redisReply *r, size_t first, scripts_step *st, char *num,
                              size_t extra)
{
    if (r->elements < first + 2) return -1;
    const redisReply *name = r->element[first], *nk = r->element[first + 1];
    if (name->type != REDIS_REPLY_STRING || nk->type != REDIS_REPLY_INTEGER) return -1;
    st->id = scripts_by_name(name->str, name->len);
    if (st->id == SCRIPT__COUNT) return -1;
    size_t n = r->elements - first - 2;
    if (nk->integer < 0 || (size_t)nk->integer > n) return -1;
    st->nkeys = (int)nk->integer;
    st->nargs = (int)(n - (size_t)nk->integer);
    st->argv = malloc((n + extra + 1) * sizeof(char *));
    st->argvlen = malloc((n + extra + 1) * sizeof(size_t));
    if (!st->argv || !st->argvlen) {
        free(st->argv);
        free(st->argvlen);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = r->element[first + 2 + i];
        if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
            st->argv[i] = e->str;
            st->argvlen[i] = e->len;
        } else if (e->type == REDIS_REPLY_INTEGER) {
            char *d = num + 24 * i;
            st->argvlen[i] = (size_t)snprintf(d, 24, "%lld", e->integer);
            st->argv[i] = d;
        } else {
            free(st->argv);
            free(st->argvlen);
            return -1;
        }
    }
    return 0;
}

/* A running fork: its branches' last replies (copied), the join to run. */
typedef struct scripts_fork {
    redisCallbackFn *cb;
    void *privdata;
    scripts_hop hop;
    int done;    /* the caller's callback has run (an error or a lost connection) */
    size_t n;    /* branches */
    size_t left; /* branches still running */
    char **out;  /* their replies */
    size_t *outlen;
    scripts_command *join; /* the join's step, as parsed, copied */
    script_id join_id;
    int join_nkeys;
} scripts_fork;

typedef struct scripts_branch {
    scripts_fork *fork;
    size_t index;
} scripts_branch;

static void scripts_fork_free(scripts_fork *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->out[i]);
    free(f->out);
    free(f->outlen);
    free(f->join);
    if (f->hop.d) scripts_disp_unref(f->hop.d);
    free(f);
}

static void scripts_fork_join(redisAsyncContext *ac, scripts_fork *f)
{
    scripts_command *j = f->join;
    int nargs = j->argc - 3 - f->join_nkeys;
    size_t n = (size_t)(j->argc - 3) + f->n;
    const char **argv = malloc(n * sizeof(char *));
    size_t *argvlen = malloc(n * sizeof(size_t));
    int rc = REDIS_ERR;
    if (argv && argvlen) {
        for (int i = 0; i < j->argc - 3; i++) {
            argv[i] = j->argv[3 + i];
            argvlen[i] = j->argvlen[3 + i];
        }
        for (size_t i = 0; i < f->n; i++) {
            argv[(size_t)(j->argc - 3) + i] = f->out[i];
            argvlen[(size_t)(j->argc - 3) + i] = f->outlen[i];
        }
        scripts_hop h = f->hop;
        h.hops++;
        rc = scripts_eval_hop(ac, f->join_id, f->cb, f->privdata, h, f->join_nkeys,
                              nargs + (int)f->n, argv, argvlen);
    }
    free(argv);
    free(argvlen);
    if (rc != REDIS_OK && f->cb) f->cb(ac, NULL, f->privdata);
    scripts_fork_free(f);
}

static void scripts_branch_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    scripts_branch *b = privdata;
    scripts_fork *f = b->fork;
    redisReply *reply = r;
    size_t i = b->index;
    free(b);
    if (!f->done) {
        if (!reply || reply->type == REDIS_REPLY_ERROR ||
            !(reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
              reply->type == REDIS_REPLY_INTEGER || reply->type == REDIS_REPLY_NIL)) {
            /* the caller gets this reply (an error, a lost connection) now, once */
            f->done = 1;
            if (f->cb)
                f->cb(ac, reply && reply->type == REDIS_REPLY_ERROR ? reply : NULL, f->privdata);
        } else {
            char num[24];
            const char *p = "";
            size_t len = 0;
            if (reply->type == REDIS_REPLY_INTEGER) {
                len = (size_t)snprintf(num, sizeof num, "%lld", reply->integer);
                p = num;
            } else if (reply->type != REDIS_REPLY_NIL) {
                p = reply->str;
                len = reply->len;
            }
            f->out[i] = malloc(len + 1);
            if (f->out[i]) {
                memcpy(f->out[i], p, len);
                f->out[i][len] = '\0';
                f->outlen[i] = len;
            } else {
                f->done = 1;
                if (f->cb) f->cb(ac, NULL, f->privdata);
            }
        }
    }
    if (--f->left > 0) return;
    if (f->done)
        scripts_fork_free(f);
    else
        scripts_fork_join(ac, f);
}

/* Starts what a continuation reply names, taking over call's callback.
 * Returns 0 when it did (the callback runs later, with the chain's last
 * reply), -1 when the reply is malformed or cannot be sent (the caller then
 * answers the callback itself). */
static int scripts_follow(redisAsyncContext *ac, scripts_call *call, const redisReply *r)
{
    if (call->hop.hops + 1 >= SCRIPTS_HOPS_MAX) return -1;
    scripts_hop next = call->hop;
    next.hops++;
    if (scripts_is_str(r->element[0], SCRIPTS_NEXT)) {
        char *num = malloc(24 * (r->elements + 1));
        scripts_step st;
        if (!num) return -1;
        if (scripts_step_parse(r, 1, &st, num, 0) != 0) {
            free(num);
            return -1;
        }
        int rc = scripts_eval_hop(ac, st.id, call->cb, call->privdata, next, st.nkeys, st.nargs,
                                  st.argv, st.argvlen);
        free(st.argv);
        free(st.argvlen);
        free(num);
        return rc == REDIS_OK ? 0 : -1;
    }
    /* fork: elements 1..n are the branches, the last one the join */
    size_t n = r->elements >= 2 ? r->elements - 2 : 0;
    if (n > SCRIPTS_FORK_MAX) return -1;
    for (size_t i = 1; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_ARRAY) return -1;
    scripts_fork *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->cb = call->cb;
    f->privdata = call->privdata;
    f->hop = next;
    f->hop.d->refs++;
    f->n = n;
    f->out = calloc(n ? n : 1, sizeof(char *));
    f->outlen = calloc(n ? n : 1, sizeof(size_t));
    const redisReply *jr = r->element[r->elements - 1];
    char *num = malloc(24 * (jr->elements + 1));
    scripts_step st;
    if (!f->out || !f->outlen || !num || scripts_step_parse(jr, 0, &st, num, 0) != 0) {
        free(num);
        scripts_fork_free(f);
        return -1;
    }
    f->join = scripts_command_new(0, st.id, st.nkeys, st.nargs, st.argv, st.argvlen);
    f->join_id = st.id;
    f->join_nkeys = st.nkeys;
    free(st.argv);
    free(st.argvlen);
    free(num);
    if (!f->join) {
        scripts_fork_free(f);
        return -1;
    }
    /* every branch parsed before any is sent: a bad one sends none */
    scripts_step *sts = calloc(n ? n : 1, sizeof *sts);
    char **nums = calloc(n ? n : 1, sizeof(char *));
    int bad = !sts || !nums;
    for (size_t i = 0; !bad && i < n; i++) {
        const redisReply *br = r->element[1 + i];
        nums[i] = malloc(24 * (br->elements + 1));
        if (!nums[i] || scripts_step_parse(br, 0, &sts[i], nums[i], 0) != 0) {
            free(nums[i]);
            nums[i] = NULL;
            bad = 1;
            n = i; /* the parsed ones are freed below */
        }
    }
    int rc = bad ? -1 : 0;
    if (!bad && n == 0) {
        scripts_fork_join(ac, f); /* nothing to wait for */
        f = NULL;
    }
    if (!bad && f) {
        f->left = n;
        for (size_t i = 0; i < n; i++) {
            scripts_branch *b = malloc(sizeof *b);
            scripts_hop bh = f->hop;
            /* the join stays in the chain's queue */
            if (n > SCRIPTS_BULK_FORK || scripts_is_str(r->element[0], SCRIPTS_BULK)) bh.bulk = 1;
            if (b) {
                b->fork = f;
                b->index = i;
            }
            if (!b || scripts_eval_hop(ac, sts[i].id, scripts_branch_cb, b, bh, sts[i].nkeys,
                                       sts[i].nargs, sts[i].argv, sts[i].argvlen) != REDIS_OK) {
                /* this one and the ones not sent count as failed: the caller gets NULL once */
                free(b);
                if (!f->done && f->cb) f->cb(ac, NULL, f->privdata);
                f->done = 1;
                f->left -= n - i;
                if (f->left == 0) scripts_fork_free(f);
                break;
            }
        }
    } else if (bad) {
        scripts_fork_free(f);
    }
    for (size_t i = 0; sts && nums && i < n; i++) {
        free(sts[i].argv);
        free(sts[i].argvlen);
        free(nums[i]);
    }
    free(sts);
    free(nums);
    return rc;
}

static void scripts_call_free(scripts_call *call)
{
    scripts_disp *d = call->hop.d;
    free(call);
    scripts_disp_unref(d);
}

static void scripts_pump(scripts_disp *d);

/* A step's end (its reply, an error, or NULL: a lost connection or a send that failed): what it
 * names runs next, or the caller's callback; then its slot in flight goes to the next queued
 * step. */
static void scripts_finish(redisAsyncContext *ac, scripts_call *call, void *reply)
{
    scripts_disp *d = call->hop.d;
    redisReply *r = reply;
    d->refs++; /* d outlives the callbacks below */
    if (call->sent) d->inflight--;
    call->sent = 0;
    int followed = 0;
    if (scripts_is_step(r)) {
        followed = scripts_follow(ac, call, r) == 0; /* the chain's last step answers */
        reply = NULL; /* else a malformed continuation, too many steps, or nothing sent */
    }
    if (!followed && call->cb) call->cb(ac, reply, call->privdata);
    scripts_call_free(call);
    scripts_pump(d);
    scripts_disp_unref(d);
}

/* A copy of r that outlives the callback (hiredis frees r after it), freed
 * with freeReplyObject; NULL when out of memory. */
static redisReply *scripts_reply_copy(const redisReply *r)
{
    redisReply *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->type = r->type;
    c->integer = r->integer;
    if (r->type == REDIS_REPLY_ARRAY) {
        c->element = calloc(r->elements ? r->elements : 1, sizeof(redisReply *));
        if (!c->element) {
            free(c);
            return NULL;
        }
        c->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            if (!(c->element[i] = scripts_reply_copy(r->element[i]))) {
                freeReplyObject(c);
                return NULL;
            }
    } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
               r->type == REDIS_REPLY_ERROR) {
        c->str = malloc(r->len + 1);
        if (!c->str) {
            free(c);
            return NULL;
        }
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
    }
    return c;
}

/* An error reply of ours (freed with freeReplyObject). */
static redisReply *scripts_reply_error(const char *msg)
{
    redisReply *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->type = REDIS_REPLY_ERROR;
    c->len = strlen(msg);
    c->str = strdup(msg);
    if (!c->str) {
        free(c);
        return NULL;
    }
    return c;
}

/* Durability by WAIT, one WAIT at a time per connection (a group commit). WAIT N T answers how
 * many replicas have every write its connection made before it, so one WAIT covers every step
 * whose reply came before it was sent. A step asking for durability (scripts_eval_wait) queues on
 * its connection; one WAIT is out at a time and covers the steps queued when it was sent; those
 * queued meanwhile go with the next one. Redis serves one client's commands in order and a WAIT
 * blocks its connection until it answers, so this keeps a connection blocked by one WAIT at a
 * time (a WAIT per step, pipelined, blocked it a timeout each in turn when replicas were missing:
 * every other user's step and the router's lease renewals behind them); with a master left
 * without its replica by a failover, a connection is blocked one --wait-timeout per round and the
 * steps of the round fail (NOREPLICAS: no ack, the client retries). (A shorter WAIT after a
 * short one was tried: on a loaded machine a replica late by more than it kept every round
 * failing, p50 935 ms in a benchmark run.) One entry per connection (a master) in a small table;
 * a connection the table cannot hold WAITs per step as before. */
#define SCRIPTS_WAITQ_MAX 64
typedef struct scripts_waitq {
    const redisAsyncContext *ac; /* NULL: a free entry */
    scripts_call *out;           /* the steps the WAIT that is out covers */
    scripts_call *next, *tail;   /* the steps for the next WAIT */
    int sent;                    /* a WAIT is out */
} scripts_waitq;
static scripts_waitq scripts_waitqs[SCRIPTS_WAITQ_MAX];

static scripts_waitq *scripts_waitq_of(const redisAsyncContext *ac, int add)
{
    scripts_waitq *free_q = NULL;
    for (int i = 0; i < SCRIPTS_WAITQ_MAX; i++) {
        if (scripts_waitqs[i].ac == ac) return &scripts_waitqs[i];
        if (!scripts_waitqs[i].ac && !free_q) free_q = &scripts_waitqs[i];
    }
    if (!add || !free_q) return NULL;
    memset(free_q, 0, sizeof *free_q);
    free_q->ac = ac;
    return free_q;
}

/* Ends step call after its WAIT w (NULL: the connection went, or no WAIT could be sent). */
static void scripts_wait_end(redisAsyncContext *ac, scripts_call *call, const redisReply *w,
                             int wait_ms)
{
    redisReply *held = call->held;
    call->held = NULL;
    if (!w) { /* as for the step itself */
        freeReplyObject(held);
        scripts_finish(ac, call, NULL);
        return;
    }
    if (w->type != REDIS_REPLY_INTEGER || w->integer < call->hop.wait_n) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "NOREPLICAS the step's writes reached %lld of %d replicas within %d ms",
                 w->type == REDIS_REPLY_INTEGER ? w->integer : -1LL, call->hop.wait_n, wait_ms);
        freeReplyObject(held);
        held = scripts_reply_error(msg);
    }
    scripts_finish(ac, call, held);
    if (held) freeReplyObject(held);
}

static void scripts_waitq_send(redisAsyncContext *ac, scripts_waitq *q);

/* The answer to a connection's WAIT: every step it covers goes on (or ends with NOREPLICAS),
 * then the next WAIT, for the steps queued meanwhile. */
static void scripts_waitq_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    scripts_waitq *q = privdata;
    const redisReply *w = r;
    scripts_call *list = q->out;
    int wait_ms = list ? list->hop.wait_ms : 0;
    q->out = NULL;
    q->sent = 0;
    while (list) { /* in their order; a step's callback may queue more on q */
        scripts_call *c = list;
        list = c->next_wait;
        c->next_wait = NULL;
        scripts_wait_end(ac, c, w, wait_ms);
    }
    if (!w) { /* the connection went: whatever queued meanwhile ends too */
        while (q->next) {
            scripts_call *c = q->next;
            q->next = c->next_wait;
            c->next_wait = NULL;
            scripts_wait_end(ac, c, NULL, 0);
        }
        q->tail = NULL;
        q->ac = NULL;
        return;
    }
    if (q->next && !q->sent) scripts_waitq_send(ac, q);
    if (!q->next && !q->sent) q->ac = NULL; /* idle: the entry is free */
}

static void scripts_waitq_send(redisAsyncContext *ac, scripts_waitq *q)
{
    scripts_call *list = q->next;
    int n = 0, ms = list->hop.wait_ms;
    for (scripts_call *c = list; c; c = c->next_wait)
        if (c->hop.wait_n > n) n = c->hop.wait_n;
    char nb[16], msb[16];
    snprintf(nb, sizeof nb, "%d", n);
    snprintf(msb, sizeof msb, "%d", ms);
    const char *argv[3] = {"WAIT", nb, msb};
    q->out = list;
    q->next = q->tail = NULL;
    q->sent = 1;
    if (redisAsyncCommandArgv(ac, scripts_waitq_cb, q, 3, argv, NULL) != REDIS_OK)
        scripts_waitq_cb(ac, NULL, q); /* cannot wait: as a lost connection */
}

/* The answer to WAIT after one step (a connection the table could not hold). */
static void scripts_wait_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    scripts_call *call = privdata;
    scripts_wait_end(ac, call, r, call->hop.wait_ms);
}

/* A step's own reply: with a durability asked for, WAIT first (the reply
 * kept meanwhile), else on at once. */
static void scripts_step_done(redisAsyncContext *ac, scripts_call *call, redisReply *reply)
{
    if (reply && ac && call->hop.wait_n > 0) { /* ac NULL: a cluster link's give-up (an error) */
        call->held = scripts_reply_copy(reply);
        call->next_wait = NULL;
        scripts_waitq *q = call->held ? scripts_waitq_of(ac, 1) : NULL;
        if (q) {
            if (q->tail)
                q->tail->next_wait = call;
            else
                q->next = call;
            q->tail = call;
            if (!q->sent) scripts_waitq_send(ac, q);
            return;
        }
        char n[16], ms[16];
        snprintf(n, sizeof n, "%d", call->hop.wait_n);
        snprintf(ms, sizeof ms, "%d", call->hop.wait_ms);
        const char *argv[3] = {"WAIT", n, ms};
        if (call->held &&
            redisAsyncCommandArgv(ac, scripts_wait_cb, call, 3, argv, NULL) == REDIS_OK)
            return;
        if (call->held) freeReplyObject(call->held);
        call->held = NULL;
        reply = NULL; /* cannot wait: as a lost connection */
    }
    scripts_finish(ac, call, reply);
}

static void scripts_retry_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    scripts_step_done(ac, privdata, r);
}

/* Where a step goes: through the owner's sender (a cluster link: the node of
 * its first key) when one is set, else on the context given. */
static scripts_sender *scripts_send_fn;
static void *scripts_send_priv;

void scripts_set_sender(scripts_sender *fn, void *priv)
{
    scripts_send_fn = fn;
    scripts_send_priv = priv;
}

static int scripts_send(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, int argc,
                        const char **argv, const size_t *argvlen)
{
    if (scripts_send_fn) return scripts_send_fn(scripts_send_priv, cb, priv, argc, argv, argvlen);
    return redisAsyncCommandArgv(ac, cb, priv, argc, argv, argvlen);
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
        /* the load on the node that answered (ac), the retry wherever the key lives now */
        int ok = n == 0 || redisAsyncCommandArgv(ac, NULL, NULL, n, load, NULL) == REDIS_OK;
        if (ok && scripts_send(ac, scripts_retry_cb, call, cmd->argc, cmd->argv, cmd->argvlen) ==
                      REDIS_OK)
            return;
        /* the context is going away: report it like a disconnect */
        reply = NULL;
    }
    scripts_step_done(ac, call, reply);
}

/* Sends a step now (on its dispatcher's context), counted in flight; REDIS_ERR when it cannot
 * be sent (nothing counted then). */
static int scripts_call_send(scripts_disp *d, scripts_call *call)
{
    scripts_command *cmd = scripts_call_cmd(call);
    d->inflight++;
    call->sent = 1;
    if (scripts_send(d->ac, scripts_eval_cb, call, cmd->argc, cmd->argv, cmd->argvlen) == REDIS_OK)
        return REDIS_OK;
    d->inflight--;
    call->sent = 0;
    return REDIS_ERR;
}

/* Sends queued steps while the window has room, in turn; one whose send fails (the context is
 * going) ends as a lost connection. Not re-entered: a callback run meanwhile leaves the queue to
 * the loop already running. */
static void scripts_pump(scripts_disp *d)
{
    if (d->pumping) return;
    d->pumping = 1;
    d->refs++;
    while (d->inflight < SCRIPTS_WINDOW && scripts_disp_busy(d)) {
        scripts_call *call = scripts_dequeue(d);
        if (scripts_call_send(d, call) != REDIS_OK) scripts_finish(d->ac, call, NULL);
    }
    d->pumping = 0;
    scripts_disp_unref(d);
}

/* A step of a chain (hop.d, hop.bulk): sent at once when the window has room and nothing waits,
 * else queued (REDIS_OK: the callback runs once, NULL if it is never sent). REDIS_ERR (cb never
 * called) when it cannot be built or sent now. */
static int scripts_eval_hop(redisAsyncContext *ac, script_id id, redisCallbackFn *cb,
                            void *privdata, scripts_hop hop, int nkeys, int nargs,
                            const char **argv, const size_t *argvlen)
{
    if (!ac) return REDIS_ERR; /* not connected */
    scripts_call *call = scripts_command_new(sizeof(scripts_call), id, nkeys, nargs, argv, argvlen);
    if (!call) return REDIS_ERR;
    call->cb = cb;
    call->privdata = privdata;
    call->id = id;
    call->hop = hop;
    call->held = NULL;
    call->sent = 0;
    call->next = NULL;
    scripts_disp *d = hop.d;
    d->refs++;
    if (d->inflight < SCRIPTS_WINDOW && !scripts_disp_busy(d)) {
        if (scripts_call_send(d, call) == REDIS_OK) return REDIS_OK;
        scripts_call_free(call);
        return REDIS_ERR;
    }
    scripts_enqueue(call);
    return REDIS_OK;
}

int scripts_eval(redisAsyncContext *ac, script_id id, redisCallbackFn *cb, void *privdata,
                 int nkeys, int nargs, const char **argv, const size_t *argvlen)
{
    return scripts_eval_wait(ac, id, cb, privdata, 0, 0, nkeys, nargs, argv, argvlen);
}

int scripts_eval_wait(redisAsyncContext *ac, script_id id, redisCallbackFn *cb, void *privdata,
                      int wait_n, int wait_ms, int nkeys, int nargs, const char **argv,
                      const size_t *argvlen)
{
    if (!ac) return REDIS_ERR; /* not connected */
    scripts_disp *d = scripts_disp_of(ac);
    if (!d) return REDIS_ERR;
    d->refs++;
    scripts_hop hop = {0, wait_n > 0 ? wait_n : 0, wait_ms, d, 0};
    int rc = scripts_eval_hop(ac, id, cb, privdata, hop, nkeys, nargs, argv, argvlen);
    scripts_disp_unref(d); /* d goes when nothing of it is left (the step failed) */
    return rc;
}

/* One step, synchronously, reloaded and retried once when it is not loaded. */
static scripts_sync_sender *scripts_sync_fn;
static void *scripts_sync_priv;

void scripts_set_sync_sender(scripts_sync_sender *fn, void *priv)
{
    scripts_sync_fn = fn;
    scripts_sync_priv = priv;
}

static redisReply *scripts_eval_one_sync(redisContext *c, script_id id, int nkeys, int nargs,
                                         const char **argv, const size_t *argvlen)
{
    scripts_command *cmd = scripts_command_new(0, id, nkeys, nargs, argv, argvlen);
    if (!cmd) return NULL;
    redisReply *r;
    if (scripts_sync_fn) { /* the node of its first key answers; a reload goes there */
        redisContext *at = NULL;
        r = scripts_sync_fn(scripts_sync_priv, cmd->argc, cmd->argv, cmd->argvlen, &at);
        if (at) c = at;
    } else {
        r = redisCommandArgv(c, cmd->argc, cmd->argv, cmd->argvlen);
    }
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

/* A fork synchronously: the branches one after the other, then the join. */
static redisReply *scripts_fork_sync(redisContext *c, redisReply *r, int hops)
{
    size_t n = r->elements >= 2 ? r->elements - 2 : 0;
    if (n > SCRIPTS_FORK_MAX) return NULL;
    for (size_t i = 1; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_ARRAY) return NULL;
    redisReply **outs = calloc(n ? n : 1, sizeof *outs);
    if (!outs) return NULL;
    redisReply *res = NULL;
    size_t i = 0;
    for (; i < n; i++) {
        const redisReply *br = r->element[1 + i];
        char *num = malloc(24 * (br->elements + 1));
        scripts_step st;
        if (!num || scripts_step_parse(br, 0, &st, num, 0) != 0) {
            free(num);
            break;
        }
        outs[i] = scripts_follow_sync(
            c, scripts_eval_one_sync(c, st.id, st.nkeys, st.nargs, st.argv, st.argvlen));
        free(st.argv);
        free(st.argvlen);
        free(num);
        if (!outs[i]) break;
        int t = outs[i]->type;
        if (t == REDIS_REPLY_ERROR) { /* the call's answer */
            res = outs[i];
            outs[i] = NULL;
            break;
        }
        if (t != REDIS_REPLY_STRING && t != REDIS_REPLY_STATUS && t != REDIS_REPLY_INTEGER &&
            t != REDIS_REPLY_NIL)
            break;
    }
    if (i == n) {
        const redisReply *jr = r->element[r->elements - 1];
        char *num = malloc(24 * (jr->elements + n + 1));
        scripts_step st;
        if (num && scripts_step_parse(jr, 0, &st, num, n) == 0) {
            int base = st.nkeys + st.nargs;
            char *extra = num + 24 * jr->elements;
            for (size_t k = 0; k < n; k++) {
                const redisReply *o = outs[k];
                if (o->type == REDIS_REPLY_INTEGER) {
                    st.argvlen[base + (int)k] =
                        (size_t)snprintf(extra + 24 * k, 24, "%lld", o->integer);
                    st.argv[base + (int)k] = extra + 24 * k;
                } else if (o->type == REDIS_REPLY_NIL) {
                    st.argv[base + (int)k] = "";
                    st.argvlen[base + (int)k] = 0;
                } else {
                    st.argv[base + (int)k] = o->str;
                    st.argvlen[base + (int)k] = o->len;
                }
            }
            redisReply *j =
                scripts_eval_one_sync(c, st.id, st.nkeys, st.nargs + (int)n, st.argv, st.argvlen);
            free(st.argv);
            free(st.argvlen);
            res = j && scripts_is_step(j) && hops + 1 < SCRIPTS_HOPS_MAX ? scripts_follow_sync(c, j)
                                                                         : j;
        }
        free(num);
    }
    for (size_t k = 0; k < n; k++)
        if (outs[k]) freeReplyObject(outs[k]);
    free(outs);
    return res;
}

redisReply *scripts_follow_sync(redisContext *c, redisReply *r)
{
    for (int hops = 0; r && scripts_is_step(r); hops++) {
        redisReply *next = NULL;
        if (hops + 1 < SCRIPTS_HOPS_MAX) {
            if (scripts_is_str(r->element[0], SCRIPTS_NEXT)) {
                char *num = malloc(24 * (r->elements + 1));
                scripts_step st;
                if (num && scripts_step_parse(r, 1, &st, num, 0) == 0) {
                    next = scripts_eval_one_sync(c, st.id, st.nkeys, st.nargs, st.argv, st.argvlen);
                    free(st.argv);
                    free(st.argvlen);
                }
                free(num);
            } else {
                next = scripts_fork_sync(c, r, hops);
            }
        }
        freeReplyObject(r);
        r = next;
    }
    return r;
}

redisReply *scripts_eval_sync(redisContext *c, script_id id, int nkeys, int nargs,
                              const char **argv, const size_t *argvlen)
{
    return scripts_follow_sync(c, scripts_eval_one_sync(c, id, nkeys, nargs, argv, argvlen));
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
