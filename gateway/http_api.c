/* http_api.c - the HTTP side of the gateway: routing, the JSON API
 * (/api/register, /api/login, /api/logout, /api/users), /healthz, /metrics,
 * the refusal of bad /ws upgrades, and token extraction for both.
 *
 * A request answered at once is written directly from the callback. One that
 * needs Redis or the password pool gets a gw_http (refcounted, see gw.h): the
 * answer is stored in it and written from LWS_CALLBACK_HTTP_WRITEABLE. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "keys.h"
#include "log.h"
#include "password.h"
#include "scripts.h"
#include "token.h"

enum { R_NONE = 0, R_REGISTER, R_LOGIN, R_LOGOUT, R_USERS };

#define USERS_LIMIT 20
#define COOKIE_NAME "parley_token"

/* ---- writing ---- */

static int http_write(struct lws *wsi, int status, const char *ctype, const char *body, size_t len,
                      const char *cookie)
{
    unsigned char hdr[LWS_PRE + 1024];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, len, &p, end)) return -1;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (cookie && lws_add_http_header_by_name(
                      wsi, (const unsigned char *)"set-cookie:", (const unsigned char *)cookie,
                      (int)strlen(cookie), &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
    if (!len) return 0;
    unsigned char *b = malloc(LWS_PRE + len);
    if (!b) return -1;
    memcpy(b + LWS_PRE, body, len);
    int n = lws_write(wsi, b + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
    free(b);
    return n < (int)len ? -1 : 0;
}

void http_write_simple(struct lws *wsi, int status, const char *ctype, const char *body, size_t len)
{
    http_write(wsi, status, ctype, body, len, NULL);
}

static size_t http_error_body(char *out, size_t cap, const char *code, const char *msg)
{
    size_t pos = 0;
    pos += (size_t)snprintf(out, cap, "{\"error\":");
    json_put_str(out, cap, &pos, code, strlen(code));
    if (pos + 12 < cap) {
        memcpy(out + pos, ",\"message\":", 11);
        pos += 11;
    }
    json_put_str(out, cap, &pos, msg, strlen(msg));
    if (pos + 1 < cap) out[pos++] = '}';
    return pos;
}

/* Writes an error now and finishes the transaction: returns the callback's
 * return value. */
static int http_fail_now(struct lws *wsi, int status, const char *code, const char *msg)
{
    char body[512];
    size_t n = http_error_body(body, sizeof body, code, msg);
    if (http_write(wsi, status, "application/json", body, n, NULL) < 0) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- async requests ---- */

static gw_http *http_new(gw_server *g, struct lws *wsi, gw_pss *pss, int route)
{
    gw_http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->g = g;
    h->wsi = wsi;
    h->refs = 1;
    h->route = route;
    pss->h = h;
    g->nhttp++;
    return h;
}

static void http_unref(gw_http *h)
{
    if (--h->refs > 0) return;
    if (h->password) {
        sodium_memzero(h->password, h->password_len);
        free(h->password);
    }
    free(h->resp);
    gw_server *g = h->g;
    free(h);
    g->nhttp--;
    gw_drain_check(g);
}

static void http_answer(gw_http *h, int status, const char *body, size_t len, const char *cookie)
{
    if (h->has_answer) return;
    h->status = status;
    h->ctype = "application/json";
    h->resp = malloc(len ? len : 1);
    if (h->resp) memcpy(h->resp, body, len);
    h->resp_len = h->resp ? len : 0;
    if (cookie) snprintf(h->cookie, sizeof h->cookie, "%s", cookie);
    h->has_answer = 1;
    if (h->wsi) lws_callback_on_writable(h->wsi);
}

static void http_error(gw_http *h, int status, const char *code, const char *msg)
{
    char body[512];
    size_t n = http_error_body(body, sizeof body, code, msg);
    http_answer(h, status, body, n, NULL);
}

static void http_unavailable(gw_http *h)
{
    h->g->m.unavailable++;
    http_error(h, 503, "unavailable", "storage unreachable, retry later");
}

/* ---- tokens ---- */

static int http_try_token(gw_server *g, const char *tok, size_t len, char *user)
{
    return token_verify(g->cfg.secret, tok, len, (int64_t)time(NULL), user, NULL) == TOKEN_OK ? 0
                                                                                              : -1;
}

/* The user of a valid token from the parley_token cookie, the ?token= query
 * argument or (allow_bearer) an Authorization: Bearer header. 0 or -1. */
int http_token_user(struct lws *wsi, gw_server *g, char *user, int allow_bearer)
{
    char buf[TOKEN_MAX + 16];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE);
    if (n > 0 && n < 16384) {
        char *c = malloc((size_t)n + 1);
        if (c && lws_hdr_copy(wsi, c, n + 1, WSI_TOKEN_HTTP_COOKIE) > 0) {
            char *save = NULL;
            for (char *part = strtok_r(c, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
                while (*part == ' ')
                    part++;
                size_t nl = strlen(COOKIE_NAME);
                if (strncmp(part, COOKIE_NAME, nl) == 0 && part[nl] == '=' &&
                    http_try_token(g, part + nl + 1, strlen(part + nl + 1), user) == 0) {
                    free(c);
                    return 0;
                }
            }
        }
        free(c);
    }
    if (allow_bearer && lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
        strncasecmp(buf, "Bearer ", 7) == 0 &&
        http_try_token(g, buf + 7, strlen(buf + 7), user) == 0)
        return 0;
    const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof buf);
    if (v && http_try_token(g, v, strlen(v), user) == 0) return 0;
    return -1;
}

static void http_token_answer(gw_http *h, int status)
{
    gw_server *g = h->g;
    char tok[TOKEN_MAX], cookie[TOKEN_MAX + 128], body[TOKEN_MAX + 128];
    if (token_mint(g->cfg.secret, h->user, (int64_t)time(NULL) + g->cfg.token_ttl, tok,
                   sizeof tok) < 0) {
        http_error(h, 500, "internal", "cannot make a token");
        return;
    }
    snprintf(cookie, sizeof cookie, COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld",
             tok, g->cfg.token_ttl);
    size_t pos = 0;
    pos += (size_t)snprintf(body, sizeof body, "{\"username\":");
    json_put_str(body, sizeof body, &pos, h->user, strlen(h->user));
    memcpy(body + pos, ",\"token\":", 9);
    pos += 9;
    json_put_str(body, sizeof body, &pos, tok, strlen(tok));
    body[pos++] = '}';
    http_answer(h, status, body, pos, cookie);
}

/* ---- register ---- */

static void http_register_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_http *h = priv;
    long long n;
    if (rl_reply_int(r, &n) < 0) {
        http_unavailable(h);
    } else if (n == 0) {
        http_error(h, 409, "name_taken", "this user name is taken");
    } else {
        log_info("registered user %s", h->user);
        http_token_answer(h, 201);
    }
    http_unref(h);
}

static void http_register_hashed(void *priv, int ok, const char *hash)
{
    gw_http *h = priv;
    if (!ok || !h->wsi) {
        if (!ok) http_unavailable(h);
        http_unref(h);
        return;
    }
    char k1[KEYS_MAX], now[24];
    keys_fmt(k1, sizeof k1, KEY_ACCOUNT, h->user);
    snprintf(now, sizeof now, "%" PRIu64, gw_now_ms());
    const char *argv[] = {k1, KEY_USERS, h->user, hash, now, CHAN_USERS};
    if (rl_eval(h->g, SCRIPT_REGISTER, http_register_cb, h, 2, 4, argv, NULL) < 0) {
        http_unavailable(h);
        http_unref(h);
    }
}

/* Parses {username, password}; 0, or -1 after answering 400. */
static int http_credentials(gw_http *h)
{
    static const char *const names[] = {"username", "password"};
    char *vals[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    int rc = json_parse_strings(h->body, h->body_len, names, vals, lens, 2);
    if (rc < 0 || !vals[0] || !vals[1]) {
        free(vals[0]);
        if (vals[1]) sodium_memzero(vals[1], lens[1]);
        free(vals[1]);
        http_error(h, 400, "bad_request",
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

static void http_register(gw_http *h)
{
    if (http_credentials(h) < 0) return;
    if (!h->ok) {
        http_error(h, 400, "invalid_username",
                   "user names are 1 to 32 characters of a-z 0-9 _ . -");
        return;
    }
    if (h->password_len < PASSWORD_MIN || h->password_len > PASSWORD_MAX) {
        http_error(h, 400, "invalid_password", "passwords are 8 to 1024 bytes");
        return;
    }
    if (!rl_ok(h->g)) {
        http_unavailable(h);
        return;
    }
    h->refs++;
    if (pwpool_submit(h->password, h->password_len, NULL, http_register_hashed, h) < 0) {
        h->refs--;
        http_error(h, 503, "unavailable", "too many requests in progress, retry later");
    }
}

/* ---- login ---- */

static void http_login_verified(void *priv, int ok, const char *hash)
{
    gw_http *h = priv;
    if (ok)
        http_token_answer(h, 200);
    else
        http_error(h, 401, "bad_credentials", "wrong user name or password");
    http_unref(h);
}

static void http_login_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_http *h = priv;
    redisReply *rep = r;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        http_unavailable(h);
    } else if (rep->type != REDIS_REPLY_STRING) {
        http_error(h, 401, "bad_credentials", "wrong user name or password");
    } else if (h->wsi &&
               pwpool_submit(h->password, h->password_len, rep->str, http_login_verified, h) == 0) {
        return; /* the reference passes to the pool job */
    } else {
        http_error(h, 503, "unavailable", "too many requests in progress, retry later");
    }
    http_unref(h);
}

static void http_login(gw_http *h)
{
    if (http_credentials(h) < 0) return;
    if (!h->ok || h->password_len < PASSWORD_MIN || h->password_len > PASSWORD_MAX) {
        http_error(h, 401, "bad_credentials", "wrong user name or password");
        return;
    }
    char k1[KEYS_MAX];
    keys_fmt(k1, sizeof k1, KEY_ACCOUNT, h->user);
    const char *argv[] = {"HGET", k1, "pw"};
    h->refs++;
    if (rl_cmd_argv(h->g, http_login_cb, h, 3, argv, NULL) < 0) {
        h->refs--;
        http_unavailable(h);
    }
}

/* ---- users ---- */

typedef struct http_names {
    gw_http *h;
    size_t n;
    char names[USERS_LIMIT][PROTO_NAME_MAX + 2];
} http_names;

static void http_users_online_cb(redisAsyncContext *ac, void *r, void *priv)
{
    http_names *q = priv;
    gw_http *h = q->h;
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != q->n) {
        http_unavailable(h);
    } else {
        char body[USERS_LIMIT * 80 + 16];
        size_t pos = 0;
        body[pos++] = '[';
        for (size_t i = 0; i < q->n; i++) {
            long long on = 0;
            rl_reply_int(rep->element[i], &on);
            if (i) body[pos++] = ',';
            memcpy(body + pos, "{\"username\":", 12);
            pos += 12;
            json_put_str(body, sizeof body, &pos, q->names[i], strlen(q->names[i]));
            /* groups found by a '#' search are the open ones (joinable) */
            pos += (size_t)snprintf(body + pos, sizeof body - pos, ",\"online\":%s%s}",
                                    on ? "true" : "false",
                                    q->names[i][0] == '#' ? ",\"open\":true" : "");
        }
        body[pos++] = ']';
        http_answer(h, 200, body, pos, NULL);
    }
    http_unref(h);
    free(q);
}

static void http_users_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_http *h = priv;
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        http_unavailable(h);
        http_unref(h);
        return;
    }
    http_names *q = calloc(1, sizeof *q);
    if (!q) {
        http_unavailable(h);
        http_unref(h);
        return;
    }
    q->h = h;
    const char *argv[2 + USERS_LIMIT];
    argv[0] = "SMISMEMBER";
    argv[1] = KEY_ONLINE;
    for (size_t i = 0; i < rep->elements && q->n < USERS_LIMIT; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING ||
            (!proto_valid_user(e->str, e->len) && !proto_valid_group(e->str, e->len)))
            continue;
        memcpy(q->names[q->n], e->str, e->len);
        q->names[q->n][e->len] = '\0';
        argv[2 + q->n] = q->names[q->n];
        q->n++;
    }
    if (q->n == 0) {
        http_answer(h, 200, "[]", 2, NULL);
        http_unref(h);
        free(q);
        return;
    }
    if (rl_cmd_argv(h->g, http_users_online_cb, q, (int)(2 + q->n), argv, NULL) < 0) {
        http_unavailable(h);
        http_unref(h);
        free(q);
    }
}

static int http_users(struct lws *wsi, gw_server *g, gw_pss *pss)
{
    char user[PROTO_NAME_MAX + 1], buf[128];
    if (http_token_user(wsi, g, user, 1) < 0)
        return http_fail_now(wsi, 401, "unauthorized", "missing, invalid or expired token");
    const char *q = lws_get_urlarg_by_name(wsi, "q=", buf, sizeof buf);
    size_t ql = q ? strlen(q) : 0;
    int groups = ql && q[0] == '#'; /* "#prefix": open groups */
    if (ql > PROTO_NAME_MAX + 1 ||
        (ql && !proto_valid_user(q, ql) && !(groups && (ql == 1 || proto_valid_group(q, ql))))) {
        if (http_write(wsi, 200, "application/json", "[]", 2, NULL) < 0) return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    char lo[PROTO_NAME_MAX + 3], hi[PROTO_NAME_MAX + 4];
    if (ql) {
        snprintf(lo, sizeof lo, "[%s", q);
        snprintf(hi, sizeof hi, "[%s\xff", q);
    } else {
        strcpy(lo, "-");
        strcpy(hi, "+");
    }
    gw_http *h = http_new(g, wsi, pss, R_USERS);
    if (!h) return -1;
    const char *argv[] = {"ZRANGEBYLEX", groups ? KEY_GROUPS : KEY_USERS, lo, hi, "LIMIT", "0",
                          "20"};
    h->refs++;
    if (rl_cmd_argv(g, http_users_cb, h, 7, argv, NULL) < 0) {
        h->refs--;
        http_unavailable(h);
    }
    return 0;
}

/* ---- routing ---- */

static void http_body_done(gw_http *h)
{
    if (h->too_large) {
        http_error(h, 413, "too_large", "the body is over 8 KiB");
        return;
    }
    switch (h->route) {
    case R_REGISTER:
        http_register(h);
        break;
    case R_LOGIN:
        http_login(h);
        break;
    case R_LOGOUT:
        http_answer(h, 204, "", 0, COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
        break;
    default:
        http_error(h, 404, "not_found", "no such path");
    }
}

static int http_healthz(struct lws *wsi, gw_server *g)
{
    if (g->draining) return http_fail_now(wsi, 503, "unavailable", "draining");
    if (!g->ready || !rl_ok(g)) return http_fail_now(wsi, 503, "unavailable", "redis unreachable");
    if (http_write(wsi, 200, "text/plain", "ok", 2, NULL) < 0) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_metrics(struct lws *wsi, gw_server *g)
{
    char *buf = malloc(16384);
    if (!buf) return -1;
    size_t n = metrics_render(g, buf, 16384);
    int rc = http_write(wsi, 200, "text/plain; version=0.0.4", buf, n, NULL);
    free(buf);
    if (rc < 0) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_request(struct lws *wsi, gw_server *g, gw_pss *pss, const char *path)
{
    int is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    int is_get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    g->m.http_requests++;
    if (is_post) {
        int route = !strcmp(path, "/api/register") ? R_REGISTER
                    : !strcmp(path, "/api/login")  ? R_LOGIN
                    : !strcmp(path, "/api/logout") ? R_LOGOUT
                                                   : R_NONE;
        if (route == R_NONE) return http_fail_now(wsi, 404, "not_found", "no such path");
        char cl[32] = "";
        long long clen = 0;
        if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) clen = atoll(cl);
        if (clen > GW_BODY_MAX) {
            http_fail_now(wsi, 413, "too_large", "the body is over 8 KiB");
            return -1; /* do not read the body */
        }
        gw_http *h = http_new(g, wsi, pss, route);
        if (!h) return -1;
        if (clen <= 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) <= 0)
            http_body_done(h); /* no body coming */
        return 0;
    }
    if (!is_get) return http_fail_now(wsi, 405, "method_not_allowed", "use GET or POST");
    if (!strcmp(path, "/healthz")) return http_healthz(wsi, g);
    if (!strcmp(path, "/metrics")) return http_metrics(wsi, g);
    if (!strcmp(path, "/api/users")) return http_users(wsi, g, pss);
    if (!strcmp(path, "/ws"))
        return http_fail_now(wsi, 400, "bad_request", "WebSocket upgrade required");
    if (!strncmp(path, "/api/", 5) || !strcmp(path, "/api"))
        return http_fail_now(wsi, 404, "not_found", "no such path");
    return static_serve(wsi, g, path);
}

static void http_detach(gw_pss *pss)
{
    if (pss && pss->h) {
        pss->h->wsi = NULL;
        http_unref(pss->h);
        pss->h = NULL;
    }
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, gw_pss *pss, void *in,
                  size_t len)
{
    gw_server *g = lws_context_user(lws_get_context(wsi));
    gw_http *h = pss ? pss->h : NULL;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return ws_confirm_upgrade(wsi, g);
    case LWS_CALLBACK_HTTP:
        http_detach(pss);
        return http_request(wsi, g, pss, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        if (!h) return 0;
        if (h->body_len + len > GW_BODY_MAX)
            h->too_large = 1;
        else if (len) {
            memcpy(h->body + h->body_len, in, len);
            h->body_len += len;
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (h) http_body_done(h);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!h || !h->has_answer || h->sent) return 0;
        h->sent = 1;
        if (http_write(wsi, h->status, h->ctype, h->resp, h->resp_len,
                       h->cookie[0] ? h->cookie : NULL) < 0) {
            http_detach(pss);
            return -1;
        }
        http_detach(pss);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        http_detach(pss);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, pss, in, len);
    }
}
