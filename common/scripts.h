/* scripts.h - the Lua scripts Parley runs in Redis, one typed call each.
 *
 * Each script is a file in common/lua/ (helpers in common/lua/lib/), whose
 * header comment is its contract: KEYS, ARGV, reply, what it publishes and
 * why. The build embeds them (common/lua/embed.cmake). The functions here
 * build a script's KEYS and ARGV from named arguments (the one place each
 * script's are built) and run it with EVALSHA, or FCALL for the `send`
 * function, loading it again when Redis answers NOSCRIPT / function not found.
 *
 * Asynchronous calls take a hiredis async context, a callback and its
 * privdata; cb receives the final reply (after a reload retry) exactly as
 * redisAsyncCommandArgv would deliver it, including NULL on a disconnect.
 * They return REDIS_OK, or REDIS_ERR when the command could not be queued
 * (ac NULL or not connected, out of memory): then cb is never called. Strings are
 * NUL-terminated and copied before the call returns. Names are valid user,
 * #group and gateway names (proto.h), as every caller has checked. */
#ifndef PARLEY_SCRIPTS_H
#define PARLEY_SCRIPTS_H

#include "proto.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SCRIPT_SEND = 0,
    SCRIPT_SESSION_OPEN,
    SCRIPT_SESSION_CLOSE,
    SCRIPT_SYNC,
    SCRIPT_TYPING,
    SCRIPT_REGISTER,
    SCRIPT_CONTACTS,
    SCRIPT_RELEASE_SLOT,
    SCRIPT_RENEW_SLOT,
    SCRIPT_FORGET_GATEWAY,
    SCRIPT_HISTORY,
    SCRIPT_READ,
    SCRIPT_GROUP,
    SCRIPT_FANOUT,
    SCRIPT_LOGIN_CREATE,
    SCRIPT_LOGIN_REVOKE,
    SCRIPT_LOGIN_LIST,
    SCRIPT_LOGIN_TOUCH,
    SCRIPT_THROTTLE,
    SCRIPT_BLOCK,
    SCRIPT_INBOX_REFS,
    SCRIPT_REGISTER_INDEX,
    SCRIPT_SEND_STEP,
    /* steps of the reads (named by the first step's continuations, never
     * called from C): history.lua's, sync.lua's, contacts.lua's */
    SCRIPT_HISTORY_PAGE,
    SCRIPT_SYNC_MEMBER,
    SCRIPT_SYNC_HIST,
    SCRIPT_SYNC_CUT,
    SCRIPT_SYNC_PAGE,
    SCRIPT_CONTACTS_LIST,
    SCRIPT_CONTACTS_MEMBERS,
    SCRIPT_CONTACTS_IN,
    SCRIPT_CONTACTS_PEER,
    SCRIPT_CONTACTS_LAST,
    SCRIPT_CONTACTS_GROUP,
    SCRIPT_CONTACTS_GONLINE,
    SCRIPT_CONTACTS_ONLINE,
    SCRIPT_CONTACTS_PAGE,
    /* later steps of the account and session chains (scripts_account.c) */
    SCRIPT_GW_SESSION,
    SCRIPT_ONLINE,
    SCRIPT_SESSIONS_FULL,
    SCRIPT_REAP_CHECK,
    SCRIPT_REVOKED_ADD,
    SCRIPT_LOGIN_STORE,
    SCRIPT_LOGIN_DROP,
    /* later steps of group, read, typing and block (named by their continuations) */
    SCRIPT_NOTIFY_GW,
    SCRIPT_NOTIFY_FAN,
    SCRIPT_NOTIFY_ALL,
    SCRIPT_BLOCK_BY,
    SCRIPT_BLOCK_PEER,
    SCRIPT_TYPING_GATE,
    SCRIPT_TYPING_SEND,
    SCRIPT_READ_POS,
    SCRIPT_READ_HIST,
    SCRIPT_READ_SET,
    SCRIPT_GROUP_BY,
    SCRIPT_GROUP_USERS,
    SCRIPT_GROUP_BLOCKS,
    SCRIPT_GROUP_APPLY,
    SCRIPT_GROUP_RUN,
    SCRIPT_GROUP_MEMBER,
    SCRIPT_GROUP_INDEX,
    SCRIPT_GROUP_DONE,
    SCRIPT__COUNT
} script_id;

/* A sender of commands other than one context: a cluster link routing each
 * to the node of its first key (common/clink.h), with the hiredis callback
 * contract (cb exactly once, NULL when the connection carrying it was lost;
 * REDIS_ERR when it cannot be queued: cb not called). */
typedef int scripts_sender(void *priv, redisCallbackFn *cb, void *cbpriv, int argc,
                           const char **argv, const size_t *argvlen);
/* Every script call of this process goes through fn (NULL: back to the
 * context each call is given; the ac argument must still be non-NULL as a
 * sign the link is up). A NOSCRIPT is answered on the node that said it (the
 * load there) and the call sent again through fn. WAIT goes to the node that
 * ran the step. */
void scripts_set_sender(scripts_sender *fn, void *priv);

/* Durable security writes (the gateway's --wait-replicas / --wait-timeout; issue 15, F4):
 * scripts_block, scripts_group of a `remove`, scripts_login_revoke and scripts_login_create
 * of a password change (new_hash) then run every step followed by WAIT replicas timeout_ms
 * (scripts_eval_wait): the call's reply (and a frame its last steps publish) comes only after
 * the earlier steps' writes reached that many replicas; fewer in time end it with an error
 * reply "NOREPLICAS ..." (the writes may stay on the master; what comes after does not run).
 * replicas 0 (the default): none, each call answers once the master has it. At most
 * max_in_flight such calls run at once (WAIT blocks the connection that sent it, so a replica
 * down would queue every command behind one timeout per call): one more returns REDIS_ERR
 * (cb not called; the caller answers `unavailable`). */
void scripts_set_durable(int replicas, int timeout_ms, int max_in_flight);

/* ---- the scripts, one call each (common/lua/NAME.lua says what each does) ---- */

/* session_open.lua: a session of user opens on gateway gwid. sessid is
 * "gwid#conn", member "user#conn". reopen: 1 for a live session opened again
 * (no offline entries, pushed unchanged), 0 for a new one. session_limit: the
 * most live sessions a user may have (0: none); a session that would pass it
 * is refused (the reply is then an integer, the user's session count).
 * login: the signed-in session its token names ("" none: --dev-auth); when it
 * no longer exists the reply is -1 (revoked); else its last-seen becomes
 * now_ms. */
int scripts_session_open(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                         const char *sessid, const char *member, const char *gwid, int reopen,
                         int64_t session_limit, const char *login, int64_t now_ms);

/* ---- signed-in sessions ("logins": the sessions tokens name) ---- */

/* login_create.lua: a new login sid of user (token expiry exp_s, agent: the
 * client's User-Agent, already cut); at most cap per user (the oldest are
 * revoked). verified_hash / new_hash: "" or a password change (the hash the
 * old password was checked against; the new one: every other login is
 * revoked). rate, window_ms: at most rate logins made per window_ms per user
 * (rate 0: no limit, and this one not counted: the CLI). Reply 0 no
 * account, -1 disabled, -2 the password changed meanwhile; or the array
 * {-3, ms}: over the rate, the next one possible in ms (nothing changed).
 * Made: {1, sid, exp, ...}, the sessions it revoked (past cap, or all at a
 * password change) with their tokens' expiry, as login_revoke's reply. */
typedef struct scripts_login {
    const char *user, *sid, *agent;
    int64_t now_ms, exp_s, cap;
    int64_t rate, window_ms;
    const char *verified_hash, *new_hash; /* NULL or "": no change */
} scripts_login;
int scripts_login_create(redisAsyncContext *ac, redisCallbackFn *cb, void *priv,
                         const scripts_login *l);
redisReply *scripts_login_create_sync(redisContext *rc, const scripts_login *l);
int scripts_login_create_append(redisContext *rc, const scripts_login *l);

/* login_revoke.lua: what is "one" (sid; exp_s > 0: the token's expiry, entered
 * as revoked even when the login is gone), "all", "disable" or "enable" (the
 * account). Reply {n, sid, exp, sid, exp, ...}: n the logins revoked (-1 no
 * account: disable/enable), then every session id entered as revoked with its
 * token's expiry (s). */
int scripts_login_revoke(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                         const char *what, const char *sid, int64_t exp_s, int64_t now_ms);
redisReply *scripts_login_revoke_sync(redisContext *rc, const char *user, const char *what,
                                      const char *sid, int64_t exp_s, int64_t now_ms);

/* login_list.lua: user's logins, oldest first: a flat array of sid, created
 * ms, last seen ms, agent, expiry s for each. */
int scripts_login_list(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                       int64_t now_ms);
redisReply *scripts_login_list_sync(redisContext *rc, const char *user, int64_t now_ms);

/* login_touch.lua: user's logins sids[0..n) are in use: last seen = now_ms.
 * Reply the number touched. */
int scripts_login_touch(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                        int64_t now_ms, const char *const *sids, size_t n);

/* session_close.lua: the session closes. reaping: 1 from the router's reaper
 * (then nothing changes while the gateway's alive key exists), else 0. */
int scripts_session_close(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                          const char *sessid, const char *member, const char *gwid, int reaping);

/* sync.lua: one page of user's inbox entries after seq `after`, if epoch is
 * still its epoch: at most max_entries entries and, past the first, at most
 * max_bytes bytes of them (more remain when the last one's seq is below the
 * reply's seq), as the frames a client gets. An entry whose message has left
 * its history: with stand_ins, the frame {kind:"gone", seq, id, with} (the
 * offline push and gap fetches: clients ignore kinds they do not know);
 * without, the page is not recovered (a client's sync). Steps: the inbox on
 * user's tag, then per conversation and group the page names the sizes of its
 * messages, then only the page's messages (sync.lua). */
int scripts_sync(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                 int64_t after, const char *epoch, int64_t max_entries, int64_t max_bytes,
                 int stand_ins);

/* typing.lua: from is typing to `to` (a user, or a #group); frame is the
 * client frame the recipients get (msgpack, frame_len bytes). Throttle, per
 * user and conversation across all his sessions and gateways (KEY_TYPING):
 * one notice per interval_ms, per big_interval_ms to a group of 64 members
 * or more (0: no throttle); a notice over it is dropped and the reply is the
 * same as when sent (1). A 1:1 notice between users in a block (either way)
 * is refused: the reply is -2. */
int scripts_typing(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *from,
                   const char *to, const char *frame, size_t frame_len, int64_t interval_ms,
                   int64_t big_interval_ms);

/* history.lua: up to limit messages of user's conversation with `with` (a
 * user or a #group) older than id `before` (0: the newest), and past the
 * newest one at most max_bytes bytes of them (`more` is then 1). Two steps:
 * the access check on with's tag, the page on the conversation's. */
int scripts_history(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                    const char *with, int64_t before, int64_t limit, int64_t max_bytes);

/* read.lua: reader (in session sessid) has read its conversation with `with`
 * up to message id upto; its unread count never rises. The receipt reaches
 * the reader's other sessions and the other participant(s), except in a group
 * of 64 members or more: the reader's other sessions only. */
int scripts_read(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *reader,
                 const char *sessid, const char *with, int64_t upto);

/* group.lua: `by` runs op on the group `name` (#name); open: create's open
 * flag (1/0); now_ms: the creation time; group_max: the most members a group
 * may have; groups_created: the most existing groups one user may have
 * created (a create past it: error forbidden). members (nmembers names, lengths in member_lens)
 * count for every op but join and leave; they are copied. Roles (owner, admins) and blocks are
 * checked by the script (group.lua says the rules). A newcomer's read position
 * starts at the group's newest id; a leaver's read and unread go. Throttle, per user across all
 * his sessions, gateways and groups (KEY_GROUP_OP): one op on a group of 64 members or more
 * (create: those named) per op_interval_ms (0: no throttle); over it {"error", "rate_limited",
 * message}, nothing changed. */
int scripts_group(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, proto_group_op op,
                  const char *name, const char *by, int open, int64_t now_ms, int64_t group_max,
                  int64_t groups_created, int64_t op_interval_ms, const char *const *members,
                  const size_t *member_lens, size_t nmembers);

/* block.lua: `by` blocks (on 1) or unblocks (on 0) `user`; max_blocks: the
 * most users one may block (0: no limit). The reply is {"ok"} or {"error",
 * code, message}; by's sessions get {kind:"block", user, on} through their
 * gateways, and the gateways of both users hide (or show again) each one's
 * presence from the other ({t:"h"} envelopes, bus.h). */
int scripts_block(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *by,
                  const char *user, int on, int64_t max_blocks);

/* register.lua: creates the account `name` with a password hash (password.h)
 * and its creation time, and announces it. */
int scripts_register(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *name,
                     const char *hash, int64_t created_ms);
/* The same, synchronously: the reply (the caller frees it), or NULL on a
 * connection error (c->errstr says why). */
/* inbox_refs.lua: the full-copy entries [first, first + n) of user's inbox
 * made references. The reply is {next index (0: done), converted}; NULL or an
 * error reply as redisCommand gives them. */
redisReply *scripts_inbox_refs_sync(redisContext *c, const char *user, int64_t first, int64_t n);

redisReply *scripts_register_sync(redisContext *c, const char *name, const char *hash,
                                  int64_t created_ms);
/* A reply read from a pipeline of *_append calls (redisGetReply) may be a
 * step's continuation (docs/internals.md "Scripts in steps"): this runs the
 * rest of the chain synchronously on c and returns its last reply (r is
 * consumed; the result is the caller's to free; NULL on a connection error or
 * a malformed continuation). A reply that is no continuation is returned as
 * it is. */
redisReply *scripts_follow_sync(redisContext *c, redisReply *r);
/* A synchronous sender (the CLI on a cluster: the node of the command's first
 * key, following MOVED/ASK): sends argv, returns the reply (the caller's to
 * free; NULL on a connection error) and in *answered the context that gave it.
 * Set, every synchronous script call and step goes through it (c only says
 * the link is there), a NOSCRIPT reload to the node that answered. */
typedef redisReply *scripts_sync_sender(void *priv, int argc, const char **argv,
                                        const size_t *argvlen, redisContext **answered);
void scripts_set_sync_sender(scripts_sync_sender *fn, void *priv);
/* The same, pipelined (redisAppendCommandArgv; read the reply with
 * redisGetReply): with EVALSHA only, so load the script first
 * (scripts_load_argv). REDIS_OK or REDIS_ERR. */
int scripts_register_append(redisContext *c, const char *name, const char *hash,
                            int64_t created_ms);

/* contacts.lua: one page of what user's hello lists; everyone_limit: up to
 * this many users, everyone is everyone's contact. cursor: "" for the first
 * page, else the cursor the previous page's reply gave; about page entries a
 * page (at most 500); previews: the bytes of data kept in each `last`. The
 * reply is {mode, cursor, blocked (the first page: the users user blocks),
 * then 8 fields per entry: name, online, unread, read, peer_read, last, roles,
 * mentions} (a person's online -1: hidden by a block; roles: 0 for a person,
 * for a group {owner or "", the user's role, 1 when the admins were cut else
 * 0, [admins]}). A chain of steps, each inside one hash slot (contacts.lua). */
int scripts_contacts(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                     int64_t everyone_limit, const char *cursor, int64_t page,
                     int64_t preview_bytes);

/* release_slot.lua / renew_slot.lua: the lease of routing slot `slot`, if
 * router_id holds it; renew sets it to lease_ms. */
int scripts_release_slot(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, unsigned slot,
                         const char *router_id);
int scripts_renew_slot(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, unsigned slot,
                       const char *router_id, int64_t lease_ms);

/* forget_gateway.lua: the reaper's last step for the gateway gwid. */
int scripts_forget_gateway(redisAsyncContext *ac, redisCallbackFn *cb, void *priv,
                           const char *gwid);

/* throttle.lua: attempt budgets of one login, registration or password
 * change (gateway/throttle.h), per window_ms. user: the account (NULL: no
 * per-account budget); addr: the client address (clientaddr.h). A budget of
 * 0 is not checked (its key is not passed). give 0 ("take"): the reply is 0
 * when the attempt may go on (every counter incremented), else the ms until
 * it may be tried again; give 1: the attempt succeeded, the counters go back
 * down (reply 0). */
int scripts_throttle(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, int give,
                     const char *user, const char *addr, int64_t window_ms, int64_t addr_budget,
                     int64_t account_budget, int64_t account_addr_budget);

/* ---- send.lua (a batch of messages) and fanout.lua (one step of a queued
 * group fan-out) ---- */

/* What bounds the work and the storage of sending (router flags, README
 * "Configuration"; docs/internals.md "Bounded work"). Counts are entries,
 * bytes are bytes, rates are per second with their bucket size (burst); a
 * rate of 0 turns that budget off. */
typedef struct scripts_send_limits {
    int64_t inbox_cap, history_cap;     /* entries kept per inbox / history */
    int64_t inbox_bytes, history_bytes; /* bytes kept per inbox / history */
    int64_t dedupe_ttl_s;               /* how long a cid is remembered */
    int64_t fanout_chunk;               /* member inbox writes per call */
    int64_t user_rate, user_burst;      /* messages of one user */
    int64_t fanout_rate, fanout_burst;  /* inbox writes of one user's messages */
    int64_t byte_rate, byte_burst;      /* data bytes x copies of one user */
} scripts_send_limits;

/* fanout.lua: one step (at most limits->fanout_chunk + 1 member writes) of
 * the head job of `group`'s queue. The reply is {"more", id, written},
 * {"done", id, written, jobs left} or {"idle"}. */
int scripts_fanout(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *group,
                   const scripts_send_limits *limits);

/* ---- send.lua: one call carries a batch of messages ---- */

/* Strings in one growing buffer (a batch's KEYS or ARGV). */
typedef struct scripts_list {
    char *buf;
    size_t len, cap;
    size_t *off, *lens;
    int n, ncap;
} scripts_list;

/* A batch of messages being gathered for one send call. Init once, add
 * messages, call (which empties it for the next batch), free at the end.
 * Owns its buffers; everything added is copied. */
typedef struct scripts_send_batch {
    scripts_list keys, args; /* per message, in order */
    int count;               /* messages in it */
    int steps;               /* 1: send_step.lua's chains (a cluster), 0: send.lua */
    int wait_n, wait_ms;     /* steps: WAIT wait_n wait_ms after each step (0: none) */
    char num[12][24];        /* the limits, as ARGV strings */
} scripts_send_batch;

/* The per-call values: the limits (copied). */
void scripts_send_batch_init(scripts_send_batch *b, const scripts_send_limits *limits);
/* steps 1: the batches that follow (this one must be empty) run as send_step.lua's chains, each
 * step inside one hash slot, what a Redis Cluster needs (docs/internals.md "The send path on a
 * cluster"); 0: as one send.lua call (one Redis). */
void scripts_send_batch_steps(scripts_send_batch *b, int steps);
/* Durable mode (steps only): every step's writes reach `replicas` replicas (WAIT replicas
 * timeout_ms after each step) before the next runs, and the ack is published only after the
 * last one's; fewer replicas in time end the message's chain unacked (the client retries).
 * replicas 0: off. */
void scripts_send_batch_wait(scripts_send_batch *b, int replicas, int timeout_ms);
void scripts_send_batch_free(scripts_send_batch *b);
/* Adds one message or change from `from` to `to` (a user or a #group): its
 * data (a text's or an edit's; a reaction's emoji; "" for a delete) and cid
 * (cid_len 0: none), sent by connection conn of gateway gw. kind: PROTO_TEXT
 * (ref: its reply_to, 0 none), PROTO_EDIT, PROTO_DELETE or PROTO_REACT (ref:
 * the target message's id; on: a reaction added, else taken back). 0, or -1
 * when out of memory (the batch is then as it was). */
int scripts_send_batch_add(scripts_send_batch *b, const char *from, const char *to,
                           const char *data, size_t data_len, const char *cid, size_t cid_len,
                           const char *gw, size_t gw_len, uint64_t conn, proto_kind kind,
                           int64_t ref, int on);
/* Sends the batch as one FCALL (steps: a chain of them) and empties it,
 * whatever the outcome. The reply has one entry per message, in order
 * (send.lua; send_step.lua answers alike). REDIS_ERR when it
 * was empty or could not be queued (cb is not called). */
int scripts_send_batch_call(scripts_send_batch *b, redisAsyncContext *ac, redisCallbackFn *cb,
                            void *priv);
/* Drops the messages gathered (keeps the memory). */
void scripts_send_batch_clear(scripts_send_batch *b);

/* ---- loading and listing ---- */

/* 0 when every script_id has its embedded script and every common/lua/NAME.lua
 * has an id; else -1 with a one-line reason in err (a script added to
 * common/lua but not to the enum above and to scripts_run.c's table).
 * Programs check it at start; a unit test does too. */
int scripts_check(char *err, size_t size);

/* fills argv with the command that loads id (SCRIPT LOAD, or FUNCTION LOAD
 * REPLACE); returns its argc. Its reply is scripts_sha(id). */
int scripts_load_argv(script_id id, const char *argv[4]);
/* A new connection's set-up, the same for the gateway and the router, on one
 * Redis and on each cluster connection: CLIENT SETNAME name, then, when
 * with_scripts is 1, the load of every script (scripts_load_argv; first on
 * the pipe, so that later calls never meet NOSCRIPT). Each command is queued
 * with send(ctx, what, argc, argv, lens) (what names it for an error
 * message: "CLIENT SETNAME", "script load"), which answers REDIS_OK or
 * REDIS_ERR. Returns how many were queued (their replies are the caller's to
 * count), or -1 when send refused one (the ones before it stay queued). */
typedef int scripts_setup_send(void *ctx, const char *what, int argc, const char **argv,
                               const size_t *lens);
int scripts_conn_setup(scripts_setup_send *send, void *ctx, const char *name, int with_scripts);
/* the file name without .lua (`parley scripts` prints NAME SHA) */
const char *scripts_name(script_id id);
/* what calls it: EVALSHA's SHA1, or FCALL's function (= library) name */
const char *scripts_sha(script_id id);
/* what loads it: the script, or a function's whole library */
const char *scripts_source(script_id id);
/* 1 when id is a Redis function (FCALL), 0 for an EVAL script */
int scripts_is_function(script_id id);
/* 1 when an error reply says the script or function is not loaded */
int scripts_missing(const char *err, size_t len);

#endif
