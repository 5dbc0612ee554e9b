/* logins.c - list, revoke one, revoke all of a user's signed-in sessions
 * (logins.h). */
#include "logins.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "auth.h"
#include "json.h"
#include "log.h"
#include "redis_link.h"
#include "revoke.h"
#include "scripts.h"
#include "walltime.h"

/* ---- logout-all ---- */

void logins_logout_all(gw_req *h)
{
    int rc = h->wsi ? auth_token(h->wsi, h->user, h->sid, &h->token_exp, 1) : AUTH_NONE;
    if (rc < 0) {
        auth_fail(h, rc);
        return;
    }
    req_ref(h);
    if (scripts_login_revoke(rl_commands(), account_signed_out_cb, h, h->user, "all", NULL, 0,
                             (int64_t)walltime_ms()) != REDIS_OK) {
        h->refs--;
        req_unavailable(h);
    }
}

/* ---- the list ---- */

static void logins_list_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_req *h = priv;
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements % 5) {
        if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("login_list %s: %s", h->user, rep->str);
        req_unavailable(h);
        req_unref(h);
        return;
    }
    /* each entry: ~100 bytes of JSON around its id, numbers and agent (at
     * most REQ_AGENT_MAX bytes, escaped: at most 6 bytes a byte) */
    size_t cap = 2 + rep->elements / 5 * (128 + TOKEN_SID_LEN + 6 * REQ_AGENT_MAX);
    char *body = malloc(cap);
    if (!body) {
        req_unavailable(h);
        req_unref(h);
        return;
    }
    size_t pos = 0;
    body[pos++] = '[';
    for (size_t i = 0; i + 4 < rep->elements; i += 5) {
        redisReply *id = rep->element[i], *agent = rep->element[i + 3];
        long long created = 0, seen = 0;
        if (id->type != REDIS_REPLY_STRING || agent->type != REDIS_REPLY_STRING) continue;
        rl_reply_int(rep->element[i + 1], &created);
        rl_reply_int(rep->element[i + 2], &seen);
        if (pos > 1) body[pos++] = ',';
        memcpy(body + pos, "{\"id\":", 6);
        pos += 6;
        json_put_str(body, cap, &pos, id->str, id->len);
        pos += (size_t)snprintf(body + pos, cap - pos,
                                ",\"created\":%lld,\"last_seen\":%lld,\"agent\":", created, seen);
        json_put_str(body, cap, &pos, agent->str,
                     agent->len > REQ_AGENT_MAX ? REQ_AGENT_MAX : agent->len);
        pos += (size_t)snprintf(
            body + pos, cap - pos, ",\"current\":%s}",
            id->len == strlen(h->sid) && !memcmp(id->str, h->sid, id->len) ? "true" : "false");
    }
    body[pos++] = ']';
    req_answer(h, 200, body, pos, NULL);
    free(body);
    req_unref(h);
}

/* A request answered after Redis, for the token's user and session: the
 * request, or NULL after answering (401, or -1 in *rc when out of memory). */
static gw_req *logins_start(struct lws *wsi, gw_pss *pss, int *rc)
{
    char user[PROTO_NAME_MAX + 1], sid[TOKEN_SID_LEN + 1];
    int64_t exp;
    *rc = 0;
    int arc = auth_token(wsi, user, sid, &exp, 1);
    if (arc < 0) {
        *rc = auth_fail_now(wsi, arc);
        return NULL;
    }
    gw_req *h = req_new(wsi, 0);
    if (!h) {
        *rc = -1;
        return NULL;
    }
    pss->h = h;
    snprintf(h->user, sizeof h->user, "%s", user);
    snprintf(h->sid, sizeof h->sid, "%s", sid);
    h->token_exp = exp;
    return h;
}

int logins_list(struct lws *wsi, gw_pss *pss)
{
    int rc;
    gw_req *h = logins_start(wsi, pss, &rc);
    if (!h) return rc;
    req_ref(h);
    if (scripts_login_list(rl_commands(), logins_list_cb, h, h->user, (int64_t)walltime_ms()) !=
        REDIS_OK) {
        h->refs--;
        req_unavailable(h);
    }
    return 0;
}

/* ---- revoke one ---- */

static void logins_delete_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_req *h = priv;
    long long n = revoke_reply(h->user, r);
    if (n < 0)
        req_unavailable(h);
    else if (n == 0)
        req_error(h, 404, "not_found", "no such session");
    else
        req_answer(h, 204, "", 0, NULL);
    req_unref(h);
}

int logins_delete(struct lws *wsi, gw_pss *pss, const char *id)
{
    int rc;
    gw_req *h = logins_start(wsi, pss, &rc);
    if (!h) return rc;
    if (!token_valid_sid(id, strlen(id))) {
        req_error(h, 404, "not_found", "no such session");
        return 0;
    }
    req_ref(h);
    if (scripts_login_revoke(rl_commands(), logins_delete_cb, h, h->user, "one", id, 0,
                             (int64_t)walltime_ms()) != REDIS_OK) {
        h->refs--;
        req_unavailable(h);
    }
    return 0;
}
