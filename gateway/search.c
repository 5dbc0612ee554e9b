/* search.c - GET /api/users?q=PREFIX: up to SEARCH_LIMIT user names
 * starting with PREFIX (every user without q), each with its online state;
 * q=#PREFIX finds open groups instead. For signed-in users only. A user in a
 * block with the asking user (either way: KEY_HIDDEN) is found like any other,
 * always `online: false`. */
#include "search.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "json.h"
#include "keys.h"
#include "redis_link.h"
#include "req.h"

#define SEARCH_LIMIT 20 /* names per answer */

typedef struct search_names {
    gw_req *h;
    size_t n;
    char names[SEARCH_LIMIT][PROTO_NAME_MAX + 2];
    char hidden[SEARCH_LIMIT]; /* names[i] is in the asking user's hidden set */
} search_names;

static void search_online_cb(redisAsyncContext *ac, void *r, void *priv)
{
    search_names *q = priv;
    gw_req *h = q->h;
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != q->n) {
        req_unavailable(h);
    } else {
        char body[SEARCH_LIMIT * 80 + 16];
        size_t pos = 0;
        body[pos++] = '[';
        for (size_t i = 0; i < q->n; i++) {
            long long on = 0;
            rl_reply_int(rep->element[i], &on);
            if (q->hidden[i]) on = 0;
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
        req_answer(h, 200, body, pos, NULL);
    }
    req_unref(h);
    free(q);
}

/* Which names are hidden from the asking user (SMISMEMBER of his hidden
 * set); then their online states. */
static void search_hidden_cb(redisAsyncContext *ac, void *r, void *priv)
{
    search_names *q = priv;
    redisReply *rep = r;
    const char *argv[2 + SEARCH_LIMIT];
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != q->n) goto fail;
    argv[0] = "SMISMEMBER";
    argv[1] = KEY_ONLINE;
    for (size_t i = 0; i < q->n; i++) {
        long long v = 0;
        rl_reply_int(rep->element[i], &v);
        q->hidden[i] = v != 0;
        argv[2 + i] = q->names[i];
    }
    if (rl_command(search_online_cb, q, (int)(2 + q->n), argv, NULL) == 0) return;
fail:
    req_unavailable(q->h);
    req_unref(q->h);
    free(q);
}

/* What search_cb needs: the request and the asking user. */
typedef struct search_ask {
    gw_req *h;
    char user[PROTO_NAME_MAX + 1];
} search_ask;

static void search_cb(redisAsyncContext *ac, void *r, void *priv)
{
    search_ask a = *(search_ask *)priv;
    free(priv);
    gw_req *h = a.h;
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        req_unavailable(h);
        req_unref(h);
        return;
    }
    search_names *q = calloc(1, sizeof *q);
    if (!q) {
        req_unavailable(h);
        req_unref(h);
        return;
    }
    q->h = h;
    char hidden_key[KEYS_MAX];
    keys_fmt(hidden_key, sizeof hidden_key, KEY_HIDDEN, a.user);
    const char *argv[2 + SEARCH_LIMIT];
    argv[0] = "SMISMEMBER";
    argv[1] = hidden_key;
    for (size_t i = 0; i < rep->elements && q->n < SEARCH_LIMIT; i++) {
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
        req_answer(h, 200, "[]", 2, NULL);
        req_unref(h);
        free(q);
        return;
    }
    if (rl_command(search_hidden_cb, q, (int)(2 + q->n), argv, NULL) < 0) {
        req_unavailable(h);
        req_unref(h);
        free(q);
    }
}

int search_users(struct lws *wsi, gw_pss *pss)
{
    char user[PROTO_NAME_MAX + 1], buf[128];
    int rc = auth_token_user(wsi, user, 1);
    if (rc < 0) return auth_fail_now(wsi, rc);
    const char *q = lws_get_urlarg_by_name(wsi, "q=", buf, sizeof buf);
    size_t ql = q ? strlen(q) : 0;
    int groups = ql && q[0] == '#'; /* "#prefix": open groups */
    if (ql > PROTO_NAME_MAX + 1 ||
        (ql && !proto_valid_user(q, ql) && !(groups && (ql == 1 || proto_valid_group(q, ql))))) {
        if (req_write(wsi, 200, "application/json", "[]", 2, NULL) < 0) return -1;
        return req_done(wsi);
    }
    char lo[PROTO_NAME_MAX + 3], hi[PROTO_NAME_MAX + 4];
    if (ql) {
        snprintf(lo, sizeof lo, "[%s", q);
        snprintf(hi, sizeof hi, "[%s\xff", q);
    } else {
        strcpy(lo, "-");
        strcpy(hi, "+");
    }
    search_ask *a = calloc(1, sizeof *a);
    if (!a) return -1;
    gw_req *h = req_new(wsi, 0);
    if (!h) {
        free(a);
        return -1;
    }
    pss->h = h;
    a->h = h;
    snprintf(a->user, sizeof a->user, "%s", user);
    char limit[24];
    snprintf(limit, sizeof limit, "%d", SEARCH_LIMIT);
    const char *argv[] = {"ZRANGEBYLEX", groups ? KEY_GROUPS : KEY_USERS, lo, hi, "LIMIT", "0",
                          limit};
    req_ref(h);
    if (rl_command(search_cb, a, 7, argv, NULL) < 0) {
        free(a);
        h->refs--;
        req_unavailable(h);
    }
    return 0;
}
