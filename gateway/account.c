/* account.c - register, login, logout and password change (account.h).
 * Passwords are hashed and verified on the password pool's threads
 * (pwpool.h), never on the loop; each register, login and password change is
 * first counted against its attempt budgets (throttle.h), from the client
 * address clientaddr.h names. */
#include "account.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "clientaddr.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "options.h"
#include "password.h"
#include "pwpool.h"
#include "redis_link.h"
#include "revoke.h"
#include "revset.h"
#include "scripts.h"
#include "throttle.h"
#include "walltime.h"

static struct {
    const char *secret;
    long long token_ttl;
    long long user_logins;
    long long login_rate, login_window; /* --user-login-rate, --user-login-window (s) */
} acct;

void account_init(const char *secret, long long token_ttl, long long user_logins,
                  long long login_rate, long long login_window)
{
    acct.secret = secret;
    acct.token_ttl = token_ttl;
    acct.user_logins = user_logins;
    acct.login_rate = login_rate;
    acct.login_window = login_window;
}

/* The login cookie's attributes after its value ("; Secure" with
 * --cookie-secure: a browser then sends it over https only). */
static const char *account_cookie_attrs(void)
{
    return options_get()->cookie_secure ? "; Path=/; HttpOnly; SameSite=Lax; Secure"
                                        : "; Path=/; HttpOnly; SameSite=Lax";
}

const char *account_cookie_clear(void)
{
    return options_get()->cookie_secure
               ? AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0"
               : AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0";
}

/* writes the token answer of session h->sid */
static void account_token_write(gw_req *h, int status)
{
    char tok[TOKEN_MAX], cookie[TOKEN_MAX + 128], body[TOKEN_MAX + 128];
    if (token_mint(acct.secret, h->user, h->sid, h->token_exp, tok, sizeof tok) < 0) {
        req_error(h, 500, "internal", "cannot make a token");
        return;
    }
    snprintf(cookie, sizeof cookie, AUTH_COOKIE "=%s%s; Max-Age=%lld", tok, account_cookie_attrs(),
             acct.token_ttl);
    size_t pos = 0;
    pos += (size_t)snprintf(body, sizeof body, "{\"username\":");
    json_put_str(body, sizeof body, &pos, h->user, strlen(h->user));
    memcpy(body + pos, ",\"token\":", 9);
    pos += 9;
    json_put_str(body, sizeof body, &pos, tok, strlen(tok));
    body[pos++] = '}';
    req_answer(h, status, body, pos, cookie);
}

static void account_issue_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_req *h = priv;
    redisReply *rep = r;
    long long n, wait_ms;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rl_reply_int(rep->element[0], &n) == 0 && n == -3 &&
        rl_reply_int(rep->element[1], &wait_ms) == 0) { /* --user-login-rate */
        req_error_retry(h, 429, "rate_limited",
                        "too many sign-ins of this user: retry after the time given",
                        (int)((wait_ms + 999) / 1000));
    } else if (rep && rep->type == REDIS_REPLY_ARRAY) {
        /* made: the sessions it revoked (past --user-logins, or every other
         * one at a password change) are refused here before the answer, and
         * this gateway's sockets of them closed (others learn it from the
         * announcements) */
        if (revoke_reply(h->user, rep) != 1) {
            req_unavailable(h);
        } else {
            /* a password change: the token presented too */
            if (h->old_sid[0]) revset_add(h->old_sid, strlen(h->old_sid), h->old_exp);
            account_token_write(h, h->issue_status);
        }
    } else if (rl_reply_int(r, &n) < 0) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_warn("login_create %s: %s", h->user, rep->str);
        req_unavailable(h);
    } else if (n == -1) {
        req_error(h, 403, "account_disabled", "this account is disabled");
    } else { /* the account is gone, or its password changed meanwhile */
        req_error(h, 401, "bad_credentials", "wrong user name or password");
    }
    req_unref(h);
}

/* A new signed-in session of h->user, then the token answer with status
 * (login_create.lua). verified_hash / new_hash: a password change, else NULL. */
static void account_issue(gw_req *h, int status, const char *verified_hash, const char *new_hash)
{
    char agent[REQ_AGENT_MAX + 1];
    if (!h->wsi) return; /* nobody to answer */
    if (token_new_sid(h->sid) < 0) {
        req_error(h, 500, "internal", "cannot make a session id");
        return;
    }
    req_agent(h->wsi, agent, sizeof agent);
    h->token_exp = (int64_t)time(NULL) + acct.token_ttl;
    h->issue_status = status;
    scripts_login l = {.user = h->user,
                       .sid = h->sid,
                       .agent = agent,
                       .now_ms = (int64_t)walltime_ms(),
                       .exp_s = h->token_exp,
                       .cap = acct.user_logins,
                       .rate = acct.login_rate,
                       .window_ms = acct.login_window * 1000,
                       .verified_hash = verified_hash,
                       .new_hash = new_hash};
    req_ref(h);
    if (scripts_login_create(rl_commands(), account_issue_cb, h, &l) != REDIS_OK) {
        h->refs--;
        req_unavailable(h);
    }
}

static void account_token_answer(gw_req *h, int status)
{
    account_issue(h, status, NULL, NULL);
}

/* ---- one attempt: throttled (throttle.h), then the password pool ---- */

/* A login, register or password change in progress: holds a reference on h
 * until it ends. */
typedef struct acct_try {
    gw_req *h;
    throttle_kind kind;
    char addr[CLIENTADDR_MAX]; /* the client (clientaddr.h) */
} acct_try;

static void account_try_end(acct_try *t, int refund)
{
    if (refund) throttle_refund(t->kind, t->h->user, t->addr);
    req_unref(t->h);
    free(t);
}

/* pwpool_submit_from for t: 0, or -1 after answering (and refunding). */
static int account_submit(acct_try *t, const char *hash, pwpool_cb *cb)
{
    gw_req *h = t->h;
    int rc = pwpool_submit_from(t->addr, h->password, h->password_len, hash, cb, t);
    if (rc == 0) return 0;
    if (rc == PWPOOL_ADDR_BUSY)
        req_error_retry(h, 429, "rate_limited", "too many attempts at once from this address", 1);
    else
        req_error(h, 503, "unavailable", "too many requests in progress, retry later");
    account_try_end(t, 1);
    return -1;
}

static void account_step(acct_try *t);

static void account_throttled(void *priv, int wait_s)
{
    acct_try *t = priv;
    if (wait_s > 0) {
        req_error_retry(t->h, 429, "rate_limited", THROTTLE_MESSAGE, wait_s);
        account_try_end(t, 0);
    } else if (wait_s < 0) {
        req_unavailable(t->h);
        account_try_end(t, 0);
    } else if (!t->h->wsi) {
        account_try_end(t, 1); /* the client left: nothing was tried */
    } else {
        account_step(t);
    }
}

/* Counts the attempt, then runs it (account_step). */
static void account_try(gw_req *h, throttle_kind kind)
{
    acct_try *t = calloc(1, sizeof *t);
    if (!t) {
        req_error(h, 503, "unavailable", "out of memory, retry later");
        return;
    }
    t->h = h;
    t->kind = kind;
    clientaddr_of(h->wsi, t->addr, sizeof t->addr);
    req_ref(h);
    int rc = throttle_take(kind, h->user, t->addr, account_throttled, t);
    if (rc == 1) {
        account_throttled(t, 0);
    } else if (rc < 0) {
        req_unavailable(h);
        account_try_end(t, 0);
    }
}

/* ---- register ---- */

static void account_register_cb(redisAsyncContext *ac, void *r, void *priv)
{
    acct_try *t = priv;
    gw_req *h = t->h;
    long long n;
    if (rl_reply_int(r, &n) < 0) {
        req_unavailable(h);
    } else if (n == 0) {
        req_error(h, 409, "name_taken", "this user name is taken");
        account_try_end(t, 0); /* counted: names are not probed for free */
        return;
    } else {
        log_info("registered user %s", h->user);
        account_token_answer(h, 201);
        account_try_end(t, 0); /* counted too: accounts are not made in bulk for free */
        return;
    }
    account_try_end(t, 1);
}

static void account_register_hashed(void *priv, int ok, const char *hash)
{
    acct_try *t = priv;
    gw_req *h = t->h;
    if (!ok || !h->wsi) {
        if (!ok) req_unavailable(h);
        account_try_end(t, 1);
        return;
    }
    if (scripts_register(rl_commands(), account_register_cb, t, h->user, hash,
                         (int64_t)walltime_ms()) != REDIS_OK) {
        req_unavailable(h);
        account_try_end(t, 1);
    }
}

/* Parses {username, password}; 0, or -1 after answering 400. */
static int account_credentials(gw_req *h)
{
    static const char *const names[] = {"username", "password"};
    char *vals[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    int rc = json_parse_strings(h->body, h->body_len, names, vals, lens, 2);
    if (rc < 0 || !vals[0] || !vals[1]) {
        free(vals[0]);
        if (vals[1]) sodium_memzero(vals[1], lens[1]);
        free(vals[1]);
        req_error(h, 400, "bad_request",
                  "the body must be a JSON object with string fields username and password");
        return -1;
    }
    if (lens[0] <= PROTO_NAME_MAX) {
        memcpy(h->user, vals[0], lens[0]);
        h->user[lens[0]] = '\0';
    }
    h->ok = lens[0] <= PROTO_NAME_MAX && proto_valid_user(vals[0], lens[0]);
    free(vals[0]);
    h->password = vals[1];
    h->password_len = lens[1];
    return 0;
}

void account_register(gw_req *h)
{
    if (account_credentials(h) < 0) return;
    if (!h->ok) {
        req_error(h, 400, "invalid_username", PROTO_USER_RULE);
        return;
    }
    if (h->password_len < PASSWORD_MIN || h->password_len > PASSWORD_MAX) {
        char msg[64];
        snprintf(msg, sizeof msg, "passwords are %d to %d bytes", PASSWORD_MIN, PASSWORD_MAX);
        req_error(h, 400, "invalid_password", msg);
        return;
    }
    if (!rl_ok()) {
        req_unavailable(h);
        return;
    }
    account_try(h, THROTTLE_REGISTER);
}

/* ---- login ---- */

static void account_login_verified(void *priv, int ok, const char *hash)
{
    acct_try *t = priv;
    if (ok)
        account_token_answer(t->h, 200);
    else
        req_error(t->h, 401, "bad_credentials", "wrong user name or password");
    account_try_end(t, ok);
}

/* The stored hash, or none: an unknown name is verified against the pool's
 * dummy hash (PWPOOL_NO_ACCOUNT), the same work and the same 401. */
static void account_login_cb(redisAsyncContext *ac, void *r, void *priv)
{
    acct_try *t = priv;
    redisReply *rep = r;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        req_unavailable(t->h);
    } else if (!t->h->wsi) {
        /* the client left */
    } else {
        const char *hash = rep->type == REDIS_REPLY_STRING ? rep->str : PWPOOL_NO_ACCOUNT;
        account_submit(t, hash, account_login_verified);
        return; /* the attempt passes to the pool job, or ended */
    }
    account_try_end(t, 1);
}

static void account_password_cb(redisAsyncContext *ac, void *r, void *priv);

/* The attempt, once counted: a register's hash; a login's or a password
 * change's stored hash, then its verification. */
static void account_step(acct_try *t)
{
    gw_req *h = t->h;
    if (t->kind == THROTTLE_REGISTER) {
        account_submit(t, NULL, account_register_hashed);
        return;
    }
    char k1[KEYS_MAX];
    keys_fmt(k1, sizeof k1, KEY_ACCOUNT, h->user);
    const char *argv[] = {"HGET", k1, "pw"};
    if (rl_command(t->kind == THROTTLE_PASSWORD ? account_password_cb : account_login_cb, t, 3,
                   argv, NULL) < 0) {
        req_unavailable(h);
        account_try_end(t, 1);
    }
}

void account_login(gw_req *h)
{
    if (account_credentials(h) < 0) return;
    if (!h->ok || h->password_len < PASSWORD_MIN || h->password_len > PASSWORD_MAX) {
        req_error(h, 401, "bad_credentials", "wrong user name or password");
        return;
    }
    account_try(h, THROTTLE_LOGIN);
}

/* ---- logout ---- */

void account_signed_out_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_req *h = priv;
    if (revoke_reply(h->user, r) < 0)
        req_unavailable(h);
    else
        req_answer(h, 204, "", 0, account_cookie_clear());
    req_unref(h);
}

void account_logout(gw_req *h)
{
    int rc = h->wsi ? auth_token(h->wsi, h->user, h->sid, &h->token_exp, 1) : AUTH_NONE;
    if (rc == AUTH_UNAVAILABLE) {
        auth_fail(h, rc);
        return;
    }
    if (rc < 0) {
        req_answer(h, 204, "", 0, account_cookie_clear()); /* nothing to revoke */
        return;
    }
    req_ref(h);
    if (scripts_login_revoke(rl_commands(), account_signed_out_cb, h, h->user, "one", h->sid,
                             h->token_exp, (int64_t)walltime_ms()) != REDIS_OK) {
        h->refs--;
        req_unavailable(h);
    }
}

/* ---- password change ---- */

/* The new password's hash: set it if the old one is still the one verified
 * (login_create.lua), revoke every other session, answer a new one. */
static void account_password_hashed(void *priv, int ok, const char *hash)
{
    acct_try *t = priv;
    gw_req *h = t->h;
    if (!ok) {
        req_unavailable(h);
    } else {
        char *verified = h->verified_hash;
        h->verified_hash = NULL;
        account_issue(h, 200, verified, hash);
        free(verified);
    }
    account_try_end(t, 1);
}

static void account_password_verified(void *priv, int ok, const char *hash)
{
    acct_try *t = priv;
    gw_req *h = t->h;
    (void)hash;
    if (!ok) {
        req_error(h, 401, "bad_credentials", "wrong password");
        account_try_end(t, 0); /* counted like a failed login */
        return;
    }
    if (!h->wsi) {
        account_try_end(t, 1);
        return;
    }
    int rc = pwpool_submit_from(t->addr, h->new_password, h->new_password_len, NULL,
                                account_password_hashed, t);
    if (rc == 0) return; /* the attempt passes to the pool job */
    if (rc == PWPOOL_ADDR_BUSY)
        req_error_retry(h, 429, "rate_limited", "too many attempts at once from this address", 1);
    else
        req_error(h, 503, "unavailable", "too many requests in progress, retry later");
    account_try_end(t, 1);
}

/* The stored hash: the old password is verified against it (a missing or
 * foreign one against the pool's dummy hash, the same work and answer). */
static void account_password_cb(redisAsyncContext *ac, void *r, void *priv)
{
    acct_try *t = priv;
    gw_req *h = t->h;
    redisReply *rep = r;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        req_unavailable(h);
    } else if (h->wsi) {
        const char *hash = rep->type == REDIS_REPLY_STRING ? rep->str : PWPOOL_NO_ACCOUNT;
        if (rep->type == REDIS_REPLY_STRING && !(h->verified_hash = strdup(rep->str))) {
            req_error(h, 503, "unavailable", "out of memory, retry later");
        } else {
            account_submit(t, hash, account_password_verified);
            return; /* the attempt passes to the pool job, or ended */
        }
    }
    account_try_end(t, 1);
}

void account_password(gw_req *h)
{
    static const char *const names[] = {"old_password", "new_password"};
    char *vals[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    int arc = h->wsi ? auth_token(h->wsi, h->user, h->old_sid, &h->old_exp, 1) : AUTH_NONE;
    if (arc < 0) {
        h->old_sid[0] = '\0';
        auth_fail(h, arc);
        return;
    }
    int rc = json_parse_strings(h->body, h->body_len, names, vals, lens, 2);
    h->password = vals[0];
    h->password_len = lens[0];
    h->new_password = vals[1];
    h->new_password_len = lens[1];
    if (rc < 0 || !vals[0] || !vals[1]) {
        req_error(h, 400, "bad_request",
                  "the body must be a JSON object with string fields old_password and "
                  "new_password");
        return;
    }
    if (lens[1] < PASSWORD_MIN || lens[1] > PASSWORD_MAX) {
        char msg[64];
        snprintf(msg, sizeof msg, "passwords are %d to %d bytes", PASSWORD_MIN, PASSWORD_MAX);
        req_error(h, 400, "invalid_password", msg);
        return;
    }
    if (lens[0] < PASSWORD_MIN || lens[0] > PASSWORD_MAX) {
        req_error(h, 401, "bad_credentials", "wrong password");
        return;
    }
    if (!rl_ok()) {
        req_unavailable(h);
        return;
    }
    account_try(h, THROTTLE_PASSWORD);
}
