/* scripts.c - one typed call per script (scripts.h): the one place each
 * script's KEYS and ARGV are built, in the order its common/lua/NAME.lua
 * header gives, with every key name from keys.h. send, which carries a batch,
 * is in scripts_send.c; group, read, typing and block in scripts_groups.c;
 * the builder these use in scripts_cmd.c; the runner in scripts_run.c. */
#include "scripts_int.h"

#include "keys.h"

#include <inttypes.h>

int scripts_session_open(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                         const char *sessid, const char *member, const char *gwid, int reopen,
                         int64_t session_limit, const char *login, int64_t now_ms)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_SESSION_OPEN);
    scripts_cmd_key(&c, KEY_SESSIONS, user);
    scripts_cmd_key(&c, KEY_META, user);
    scripts_cmd_key(&c, KEY_INBOX, user);
    scripts_cmd_key(&c, KEY_ONLINE);
    scripts_cmd_key(&c, KEY_GW_SESSIONS, gwid);
    scripts_cmd_key(&c, KEY_SESSIONS_FULL);
    scripts_cmd_key(&c, KEY_LOGINS, user);
    scripts_cmd_str(&c, user);
    scripts_cmd_str(&c, sessid);
    scripts_cmd_str(&c, member);
    scripts_cmd_fmt(&c, CHAN_PRESENCE, user);
    scripts_cmd_str(&c, reopen ? "1" : "0");
    scripts_cmd_fmt(&c, "%" PRId64, session_limit);
    scripts_cmd_str(&c, CHAN_SESSION_LIMIT);
    scripts_cmd_str(&c, login ? login : "");
    scripts_cmd_fmt(&c, "%" PRId64, now_ms);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_session_close(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                          const char *sessid, const char *member, const char *gwid, int reaping)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_SESSION_CLOSE);
    scripts_cmd_key(&c, KEY_SESSIONS, user);
    scripts_cmd_key(&c, KEY_ONLINE);
    scripts_cmd_key(&c, KEY_GW_SESSIONS, gwid);
    scripts_cmd_key(&c, KEY_META, user);
    scripts_cmd_key(&c, KEY_GW_ALIVE, gwid);
    scripts_cmd_key(&c, KEY_SESSIONS_FULL);
    scripts_cmd_str(&c, user);
    scripts_cmd_str(&c, sessid);
    scripts_cmd_str(&c, member);
    scripts_cmd_fmt(&c, CHAN_PRESENCE, user);
    scripts_cmd_str(&c, reaping ? "1" : "0");
    scripts_cmd_str(&c, CHAN_SESSION_LIMIT);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_sync(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                 int64_t after, const char *epoch, int64_t max_entries, int64_t max_bytes,
                 int stand_ins)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_SYNC);
    scripts_cmd_key(&c, KEY_META, user);
    scripts_cmd_key(&c, KEY_INBOX, user);
    scripts_cmd_fmt(&c, "%" PRId64, after);
    scripts_cmd_str(&c, epoch);
    scripts_cmd_fmt(&c, "%" PRId64, max_entries);
    scripts_cmd_fmt(&c, "%" PRId64, max_bytes);
    scripts_cmd_str(&c, user);
    scripts_cmd_str(&c, KEY_HISTORY);
    scripts_cmd_str(&c, stand_ins ? "1" : "0");
    scripts_cmd_str(&c, KEY_GROUP_MEMBERS);
    return scripts_cmd_run(&c, ac, cb, priv);
}

/* The three keys history and read decide access with, for self's
 * conversation with `with`: its history, then for a group its members and
 * meta, for 1:1 the other user's account (twice). Returns is_group "1"/"0". */
static const char *scripts_conv_keys(scripts_cmd *c, const char *self, const char *with)
{
    char conv[KEYS_MAX];
    if (keys_conv(conv, sizeof conv, self, with) < 0) {
        conv[0] = '\0';
        c->failed = 1;
    }
    scripts_cmd_key(c, KEY_HISTORY, conv);
    if (with[0] == '#') {
        scripts_cmd_key(c, KEY_GROUP_MEMBERS, with);
        scripts_cmd_key(c, KEY_GROUP_META, with);
        return "1";
    }
    scripts_cmd_key(c, KEY_ACCOUNT, with);
    scripts_cmd_key(c, KEY_ACCOUNT, with);
    return "0";
}

int scripts_history(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                    const char *with, int64_t before, int64_t limit, int64_t max_bytes)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_HISTORY);
    const char *is_group = scripts_conv_keys(&c, user, with);
    scripts_cmd_str(&c, user);
    scripts_cmd_str(&c, is_group);
    scripts_cmd_fmt(&c, "%" PRId64, before);
    scripts_cmd_fmt(&c, "%" PRId64, limit);
    scripts_cmd_fmt(&c, "%" PRId64, max_bytes);
    return scripts_cmd_run(&c, ac, cb, priv);
}

/* register's KEYS and ARGV, for the asynchronous, synchronous and pipelined
 * calls alike. */
static void scripts_register_cmd(scripts_cmd *c, const char *name, const char *hash,
                                 int64_t created_ms)
{
    scripts_cmd_init(c, SCRIPT_REGISTER);
    scripts_cmd_key(c, KEY_ACCOUNT, name);
    scripts_cmd_str(c, name);
    scripts_cmd_str(c, hash);
    scripts_cmd_fmt(c, "%" PRId64, created_ms);
    scripts_cmd_str(c, KEY_USERS);
    scripts_cmd_str(c, CHAN_USERS);
}

int scripts_register(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *name,
                     const char *hash, int64_t created_ms)
{
    scripts_cmd c;
    scripts_register_cmd(&c, name, hash, created_ms);
    return scripts_cmd_run(&c, ac, cb, priv);
}

redisReply *scripts_inbox_refs_sync(redisContext *c, const char *user, int64_t first, int64_t n)
{
    scripts_cmd cmd;
    scripts_cmd_init(&cmd, SCRIPT_INBOX_REFS);
    scripts_cmd_key(&cmd, KEY_INBOX, user);
    scripts_cmd_key(&cmd, KEY_META, user);
    scripts_cmd_str(&cmd, user);
    scripts_cmd_fmt(&cmd, "%" PRId64, first);
    scripts_cmd_fmt(&cmd, "%" PRId64, n);
    return scripts_cmd_run_sync(&cmd, c);
}

redisReply *scripts_register_sync(redisContext *rc, const char *name, const char *hash,
                                  int64_t created_ms)
{
    scripts_cmd c;
    scripts_register_cmd(&c, name, hash, created_ms);
    return scripts_cmd_run_sync(&c, rc);
}

int scripts_register_append(redisContext *rc, const char *name, const char *hash,
                            int64_t created_ms)
{
    scripts_cmd c;
    scripts_register_cmd(&c, name, hash, created_ms);
    return scripts_cmd_append(&c, rc);
}

int scripts_contacts(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                     int64_t everyone_limit, const char *cursor, int64_t page,
                     int64_t preview_bytes)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_CONTACTS);
    scripts_cmd_key(&c, KEY_USERS);
    scripts_cmd_key(&c, KEY_CONTACTS, user);
    scripts_cmd_key(&c, KEY_ONLINE);
    scripts_cmd_key(&c, KEY_GROUPS_OF, user);
    scripts_cmd_key(&c, KEY_UNREAD, user);
    scripts_cmd_key(&c, KEY_READ, user);
    scripts_cmd_key(&c, KEY_HIDDEN, user);
    scripts_cmd_key(&c, KEY_BLOCKS, user);
    scripts_cmd_key(&c, KEY_MENTIONS, user);
    scripts_cmd_str(&c, user);
    scripts_cmd_fmt(&c, "%" PRId64, everyone_limit);
    scripts_cmd_str(&c, KEY_GROUP_MEMBERS);
    scripts_cmd_str(&c, KEY_READ);
    scripts_cmd_str(&c, KEY_HISTORY);
    scripts_cmd_str(&c, cursor);
    scripts_cmd_fmt(&c, "%" PRId64, page);
    scripts_cmd_fmt(&c, "%" PRId64, preview_bytes);
    scripts_cmd_str(&c, KEY_GROUP_META);
    scripts_cmd_str(&c, KEY_GROUP_ADMINS);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_release_slot(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, unsigned slot,
                         const char *router_id)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_RELEASE_SLOT);
    scripts_cmd_key(&c, KEY_SLOT, slot);
    scripts_cmd_str(&c, router_id);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_renew_slot(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, unsigned slot,
                       const char *router_id, int64_t lease_ms)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_RENEW_SLOT);
    scripts_cmd_key(&c, KEY_SLOT, slot);
    scripts_cmd_str(&c, router_id);
    scripts_cmd_fmt(&c, "%" PRId64, lease_ms);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_forget_gateway(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *gwid)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_FORGET_GATEWAY);
    scripts_cmd_key(&c, KEY_GATEWAYS);
    scripts_cmd_key(&c, KEY_GW_ALIVE, gwid);
    scripts_cmd_key(&c, KEY_GW_SESSIONS, gwid);
    scripts_cmd_str(&c, gwid);
    return scripts_cmd_run(&c, ac, cb, priv);
}

/* ---- logins ---- */

static void scripts_login_create_cmd(scripts_cmd *c, const scripts_login *l)
{
    scripts_cmd_init(c, SCRIPT_LOGIN_CREATE);
    scripts_cmd_key(c, KEY_ACCOUNT, l->user);
    scripts_cmd_key(c, KEY_LOGINS, l->user);
    scripts_cmd_key(c, KEY_REVOKED);
    scripts_cmd_key(c, KEY_LOGIN_TIMES, l->user);
    scripts_cmd_str(c, l->user);
    scripts_cmd_str(c, l->sid);
    scripts_cmd_fmt(c, "%" PRId64, l->now_ms);
    scripts_cmd_fmt(c, "%" PRId64, l->exp_s);
    scripts_cmd_str(c, l->agent ? l->agent : "");
    scripts_cmd_fmt(c, "%" PRId64, l->cap);
    scripts_cmd_str(c, CHAN_REVOKED);
    scripts_cmd_str(c, l->verified_hash ? l->verified_hash : "");
    scripts_cmd_str(c, l->new_hash ? l->new_hash : "");
    scripts_cmd_fmt(c, "%" PRId64, l->rate);
    scripts_cmd_fmt(c, "%" PRId64, l->window_ms);
}

int scripts_login_create(redisAsyncContext *ac, redisCallbackFn *cb, void *priv,
                         const scripts_login *l)
{
    scripts_cmd c;
    scripts_login_create_cmd(&c, l);
    return scripts_cmd_run(&c, ac, cb, priv);
}

redisReply *scripts_login_create_sync(redisContext *rc, const scripts_login *l)
{
    scripts_cmd c;
    scripts_login_create_cmd(&c, l);
    return scripts_cmd_run_sync(&c, rc);
}

int scripts_login_create_append(redisContext *rc, const scripts_login *l)
{
    scripts_cmd c;
    scripts_login_create_cmd(&c, l);
    return scripts_cmd_append(&c, rc);
}

static void scripts_login_revoke_cmd(scripts_cmd *c, const char *user, const char *what,
                                     const char *sid, int64_t exp_s, int64_t now_ms)
{
    scripts_cmd_init(c, SCRIPT_LOGIN_REVOKE);
    scripts_cmd_key(c, KEY_LOGINS, user);
    scripts_cmd_key(c, KEY_REVOKED);
    scripts_cmd_key(c, KEY_ACCOUNT, user);
    scripts_cmd_str(c, user);
    scripts_cmd_str(c, CHAN_REVOKED);
    scripts_cmd_fmt(c, "%" PRId64, now_ms);
    scripts_cmd_str(c, what);
    scripts_cmd_str(c, sid ? sid : "");
    if (exp_s > 0)
        scripts_cmd_fmt(c, "%" PRId64, exp_s);
    else
        scripts_cmd_str(c, "");
}

int scripts_login_revoke(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                         const char *what, const char *sid, int64_t exp_s, int64_t now_ms)
{
    scripts_cmd c;
    scripts_login_revoke_cmd(&c, user, what, sid, exp_s, now_ms);
    return scripts_cmd_run(&c, ac, cb, priv);
}

redisReply *scripts_login_revoke_sync(redisContext *rc, const char *user, const char *what,
                                      const char *sid, int64_t exp_s, int64_t now_ms)
{
    scripts_cmd c;
    scripts_login_revoke_cmd(&c, user, what, sid, exp_s, now_ms);
    return scripts_cmd_run_sync(&c, rc);
}

int scripts_login_list(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                       int64_t now_ms)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_LOGIN_LIST);
    scripts_cmd_key(&c, KEY_LOGINS, user);
    scripts_cmd_fmt(&c, "%" PRId64, now_ms);
    return scripts_cmd_run(&c, ac, cb, priv);
}

redisReply *scripts_login_list_sync(redisContext *rc, const char *user, int64_t now_ms)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_LOGIN_LIST);
    scripts_cmd_key(&c, KEY_LOGINS, user);
    scripts_cmd_fmt(&c, "%" PRId64, now_ms);
    return scripts_cmd_run_sync(&c, rc);
}

int scripts_login_touch(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                        int64_t now_ms, const char *const *sids, size_t n)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_LOGIN_TOUCH);
    scripts_cmd_key(&c, KEY_LOGINS, user);
    scripts_cmd_fmt(&c, "%" PRId64, now_ms);
    for (size_t i = 0; i < n; i++)
        scripts_cmd_str(&c, sids[i]);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_throttle(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, int give,
                     const char *user, const char *addr, int64_t window_ms, int64_t addr_budget,
                     int64_t account_budget, int64_t account_addr_budget)
{
    int64_t budgets[3];
    int n = 0;
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_THROTTLE);
    if (addr_budget > 0) {
        scripts_cmd_key(&c, KEY_THROTTLE_ADDR, addr);
        budgets[n++] = addr_budget;
    }
    if (user && account_budget > 0) {
        scripts_cmd_key(&c, KEY_FAILS, user);
        budgets[n++] = account_budget;
    }
    if (user && account_addr_budget > 0) {
        scripts_cmd_key(&c, KEY_FAILS_ADDR, user, addr);
        budgets[n++] = account_addr_budget;
    }
    scripts_cmd_str(&c, give ? "give" : "take");
    scripts_cmd_fmt(&c, "%" PRId64, window_ms);
    for (int i = 0; i < n; i++)
        scripts_cmd_fmt(&c, "%" PRId64, budgets[i]);
    return scripts_cmd_run(&c, ac, cb, priv);
}
