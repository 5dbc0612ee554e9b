/* account.c - register, login and logout (account.h). Passwords are hashed
 * and verified on the password pool's threads (pwpool.h), never on the loop;
 * each register and login is first counted against its attempt budgets
 * (throttle.h), from the client address clientaddr.h names. */
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
#include "password.h"
#include "pwpool.h"
#include "redis_link.h"
#include "scripts.h"
#include "throttle.h"
#include "walltime.h"

static struct {
    const char *secret;
    long long token_ttl;
} acct;

void account_init(const char *secret, long long token_ttl)
{
    acct.secret = secret;
    acct.token_ttl = token_ttl;
}

static void account_token_answer(gw_req *h, int status)
{
    char tok[TOKEN_MAX], cookie[TOKEN_MAX + 128], body[TOKEN_MAX + 128];
    if (token_mint(acct.secret, h->user, (int64_t)time(NULL) + acct.token_ttl, tok, sizeof tok) <
        0) {
        req_error(h, 500, "internal", "cannot make a token");
        return;
    }
    snprintf(cookie, sizeof cookie, AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld",
             tok, acct.token_ttl);
    size_t pos = 0;
    pos += (size_t)snprintf(body, sizeof body, "{\"username\":");
    json_put_str(body, sizeof body, &pos, h->user, strlen(h->user));
    memcpy(body + pos, ",\"token\":", 9);
    pos += 9;
    json_put_str(body, sizeof body, &pos, tok, strlen(tok));
    body[pos++] = '}';
    req_answer(h, status, body, pos, cookie);
}

/* ---- one attempt: throttled (throttle.h), then the password pool ---- */

/* A login or register in progress: holds a reference on h until it ends. */
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
    if (rl_command(account_login_cb, t, 3, argv, NULL) < 0) {
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

void account_logout(gw_req *h)
{
    req_answer(h, 204, "", 0, AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
}
