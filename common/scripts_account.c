/* scripts_account.c - the typed calls (scripts.h) of the scripts of accounts,
 * signed-in sessions, live sessions, presence, gateways and routing slots:
 * throttle, login_*, session_open/close, forget_gateway and
 * renew/release_slot. Where a script's work spans hash slots its call is a
 * chain of steps (docs/internals.md "Scripts in steps"): the first step is
 * built here, and the later steps' keys and arguments travel in its ARGV as a
 * tail (common/lua/lib/tail.lua: "n", NAME, NKEYS, key..., arg...), so every
 * key name still comes from keys.h. The runner (scripts_run.c) follows the
 * chain; callers get the last step's reply. */
#include "scripts_int.h"

#include "keys.h"

#include <inttypes.h>

/* The tail "run step name next with nkeys keys": the keys and its ARGV follow. */
static void scripts_tail_next(scripts_cmd *c, const char *name, int nkeys)
{
    scripts_cmd_str(c, "n");
    scripts_cmd_str(c, name);
    scripts_cmd_fmt(c, "%d", nkeys);
}

/* A key of a step: a KEYS entry of the first step, or an ARGV entry (a later
 * step's key, in a tail). */
#define SCRIPTS_KEY(c, as_key, ...)                                                                \
    ((as_key) ? scripts_cmd_key((c), __VA_ARGS__) : scripts_cmd_fmt((c), __VA_ARGS__))

int scripts_session_open(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                         const char *sessid, const char *member, const char *gwid, int reopen,
                         int64_t session_limit, const char *login, int64_t now_ms)
{
    scripts_cmd c;
    /* gw_session.lua "add", then session_open.lua (which names the rest) */
    scripts_cmd_init(&c, SCRIPT_GW_SESSION);
    scripts_cmd_key(&c, KEY_GW_SESSIONS, gwid);
    scripts_cmd_str(&c, "add");
    scripts_cmd_str(&c, member);
    scripts_tail_next(&c, "session_open", 4);
    scripts_cmd_fmt(&c, KEY_SESSIONS, user);
    scripts_cmd_fmt(&c, KEY_META, user);
    scripts_cmd_fmt(&c, KEY_INBOX, user);
    scripts_cmd_fmt(&c, KEY_LOGINS, user);
    scripts_cmd_str(&c, user);
    scripts_cmd_str(&c, sessid);
    scripts_cmd_str(&c, member);
    scripts_cmd_fmt(&c, CHAN_PRESENCE, user);
    scripts_cmd_str(&c, reopen ? "1" : "0");
    scripts_cmd_fmt(&c, "%" PRId64, session_limit);
    scripts_cmd_str(&c, CHAN_SESSION_LIMIT);
    scripts_cmd_str(&c, login ? login : "");
    scripts_cmd_fmt(&c, "%" PRId64, now_ms);
    scripts_cmd_str(&c, KEY_ONLINE);
    scripts_cmd_str(&c, KEY_ONLINE_V);
    scripts_cmd_str(&c, KEY_SESSIONS_FULL);
    scripts_cmd_str(&c, KEY_SESSIONS_FULL_V);
    scripts_cmd_fmt(&c, KEY_GW_SESSIONS, gwid);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_session_close(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                          const char *sessid, const char *member, const char *gwid, int reaping)
{
    scripts_cmd c;
    int first = !reaping; /* session_close.lua is the first step */
    if (reaping) {
        /* reap_check.lua: not while the gateway's alive key exists (reply -1) */
        scripts_cmd_init(&c, SCRIPT_REAP_CHECK);
        scripts_cmd_key(&c, KEY_GW_ALIVE, gwid);
        scripts_cmd_str(&c, "alive");
        scripts_cmd_str(&c, "-1");
        scripts_tail_next(&c, "session_close", 2);
    } else {
        scripts_cmd_init(&c, SCRIPT_SESSION_CLOSE);
    }
    SCRIPTS_KEY(&c, first, KEY_SESSIONS, user);
    SCRIPTS_KEY(&c, first, KEY_META, user);
    scripts_cmd_str(&c, user);
    scripts_cmd_str(&c, sessid);
    scripts_cmd_str(&c, member);
    scripts_cmd_fmt(&c, CHAN_PRESENCE, user);
    scripts_cmd_str(&c, reaping ? "1" : "0");
    scripts_cmd_str(&c, CHAN_SESSION_LIMIT);
    scripts_cmd_str(&c, KEY_ONLINE);
    scripts_cmd_str(&c, KEY_ONLINE_V);
    scripts_cmd_str(&c, KEY_SESSIONS_FULL);
    scripts_cmd_str(&c, KEY_SESSIONS_FULL_V);
    scripts_cmd_fmt(&c, KEY_GW_SESSIONS, gwid);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_forget_gateway(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *gwid)
{
    scripts_cmd c;
    /* reap_check.lua on the alive key, on the session set, then forget_gateway.lua */
    scripts_cmd_init(&c, SCRIPT_REAP_CHECK);
    scripts_cmd_key(&c, KEY_GW_ALIVE, gwid);
    scripts_cmd_str(&c, "alive");
    scripts_cmd_str(&c, "0");
    scripts_tail_next(&c, "reap_check", 1);
    scripts_cmd_fmt(&c, KEY_GW_SESSIONS, gwid);
    scripts_cmd_str(&c, "empty");
    scripts_cmd_str(&c, "0");
    scripts_tail_next(&c, "forget_gateway", 1);
    scripts_cmd_str(&c, KEY_GATEWAYS);
    scripts_cmd_str(&c, gwid);
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

/* ---- accounts ---- */

int scripts_throttle(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, int give,
                     const char *user, const char *addr, int64_t window_ms, int64_t addr_budget,
                     int64_t account_budget, int64_t account_addr_budget)
{
    const char *mode = give ? "give" : "take";
    int by_addr = addr_budget > 0;
    int64_t budgets[2];
    int n = 0;
    if (user && account_budget > 0) budgets[n++] = account_budget;
    if (user && account_addr_budget > 0) budgets[n++] = account_addr_budget;

    /* a step of throttle.lua per slot: the address's counter, then the
     * account's counters (taking back the address's when they refuse) */
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_THROTTLE);
    if (by_addr) {
        scripts_cmd_key(&c, KEY_THROTTLE_ADDR, addr);
        scripts_cmd_str(&c, mode);
        scripts_cmd_fmt(&c, "%" PRId64, window_ms);
        scripts_cmd_fmt(&c, "%" PRId64, addr_budget);
        scripts_cmd_str(&c, "0");
        if (n) scripts_tail_next(&c, "throttle", n);
    }
    if (n) {
        int first = !by_addr;
        if (user && account_budget > 0) SCRIPTS_KEY(&c, first, KEY_FAILS, user);
        if (user && account_addr_budget > 0) SCRIPTS_KEY(&c, first, KEY_FAILS_ADDR, user, addr);
        scripts_cmd_str(&c, mode);
        scripts_cmd_fmt(&c, "%" PRId64, window_ms);
        for (int i = 0; i < n; i++)
            scripts_cmd_fmt(&c, "%" PRId64, budgets[i]);
        if (by_addr) {
            scripts_cmd_str(&c, "1");
            scripts_cmd_fmt(&c, KEY_THROTTLE_ADDR, addr);
        } else {
            scripts_cmd_str(&c, "0");
        }
    }
    if (!by_addr && !n) { /* no budget: nothing counted, reply 0 */
        scripts_cmd_str(&c, mode);
        scripts_cmd_fmt(&c, "%" PRId64, window_ms);
        scripts_cmd_str(&c, "0");
    }
    scripts_cmd_str(&c, "i");
    scripts_cmd_str(&c, "0");
    return scripts_cmd_run(&c, ac, cb, priv);
}

/* ---- signed-in sessions ---- */

static void scripts_login_create_cmd(scripts_cmd *c, const scripts_login *l)
{
    scripts_cmd_init(c, SCRIPT_LOGIN_CREATE);
    scripts_cmd_key(c, KEY_ACCOUNT, l->user);
    scripts_cmd_key(c, KEY_LOGINS, l->user);
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
    scripts_cmd_str(c, KEY_REVOKED);
}

int scripts_login_create(redisAsyncContext *ac, redisCallbackFn *cb, void *priv,
                         const scripts_login *l)
{
    scripts_cmd c;
    scripts_login_create_cmd(&c, l);
    if (l->new_hash) return scripts_cmd_run_durable(&c, ac, cb, priv); /* a password change */
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
    scripts_cmd_str(c, KEY_REVOKED);
}

int scripts_login_revoke(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                         const char *what, const char *sid, int64_t exp_s, int64_t now_ms)
{
    scripts_cmd c;
    scripts_login_revoke_cmd(&c, user, what, sid, exp_s, now_ms);
    return scripts_cmd_run_durable(&c, ac, cb, priv);
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
