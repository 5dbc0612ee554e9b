/* auth.c - tokens from cookies, headers and query arguments (auth.h). */
#include "auth.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "origin.h"
#include "proto.h"
#include "req.h"
#include "revset.h"
#include "token.h"

static struct {
    const char *secret;
    int dev_auth;
} au;

void auth_init(const char *secret, int dev_auth)
{
    au.secret = secret;
    au.dev_auth = dev_auth;
}

/* a valid token whose session is not revoked: AUTH_OK; valid but whether it
 * is revoked not known yet: AUTH_UNAVAILABLE; else AUTH_NONE */
static int auth_try(const char *tok, size_t len, char *user, char *sid, int64_t *exp)
{
    int64_t now = (int64_t)time(NULL);
    if (token_verify(au.secret, tok, len, now, user, sid, exp) != TOKEN_OK) return AUTH_NONE;
    if (!revset_loaded()) return AUTH_UNAVAILABLE;
    return revset_has(sid, now) ? AUTH_NONE : AUTH_OK;
}

int auth_token_user(struct lws *wsi, char *user, int allow_bearer)
{
    char sid[TOKEN_SID_LEN + 1];
    return auth_token(wsi, user, sid, NULL, allow_bearer);
}

int auth_token(struct lws *wsi, char *user, char *sid, int64_t *exp, int allow_bearer)
{
    char buf[TOKEN_MAX + 16];
    int cookie_seen = 0;
    /* the cookie counts only for a page of an allowed origin (origin.h) */
    int cookie_ok = origin_check(wsi) != ORIGIN_FOREIGN;
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE);
    if (n > 0 && n < 16384) {
        char *c = malloc((size_t)n + 1);
        if (c && lws_hdr_copy(wsi, c, n + 1, WSI_TOKEN_HTTP_COOKIE) > 0) {
            char *save = NULL;
            for (char *part = strtok_r(c, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
                while (*part == ' ')
                    part++;
                size_t nl = strlen(AUTH_COOKIE);
                if (strncmp(part, AUTH_COOKIE, nl) != 0 || part[nl] != '=') continue;
                cookie_seen = 1;
                int rc = cookie_ok ? auth_try(part + nl + 1, strlen(part + nl + 1), user, sid, exp)
                                   : AUTH_NONE;
                if (rc != AUTH_NONE) {
                    free(c);
                    return rc;
                }
            }
        }
        free(c);
    }
    int rc;
    if (allow_bearer && lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
        strncasecmp(buf, "Bearer ", 7) == 0 &&
        (rc = auth_try(buf + 7, strlen(buf + 7), user, sid, exp)) != AUTH_NONE)
        return rc;
    const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof buf);
    if (v && (rc = auth_try(v, strlen(v), user, sid, exp)) != AUTH_NONE) return rc;
    return cookie_seen && !cookie_ok ? AUTH_FOREIGN_ORIGIN : AUTH_NONE;
}

int auth_ws_user(struct lws *wsi, char *user, char *sid, int *dev_account)
{
    *dev_account = 0;
    int rc = auth_token(wsi, user, sid, NULL, 1);
    if (rc != AUTH_NONE) return rc;
    sid[0] = '\0';
    if (au.dev_auth) {
        char buf[PROTO_NAME_MAX + 16];
        const char *v = lws_get_urlarg_by_name(wsi, "user=", buf, sizeof buf);
        if (v && proto_valid_user(v, strlen(v))) {
            strcpy(user, v);
            *dev_account = 1;
            return AUTH_OK;
        }
    }
    return AUTH_NONE;
}

int auth_refusal(int rc, const char **code, const char **msg)
{
    if (rc == AUTH_FOREIGN_ORIGIN) {
        *code = "forbidden_origin";
        *msg = AUTH_FOREIGN_ORIGIN_MSG;
        return 403;
    }
    if (rc == AUTH_UNAVAILABLE) {
        *code = "unavailable";
        *msg = AUTH_UNAVAILABLE_MSG;
        return 503;
    }
    *code = "unauthorized";
    *msg = "missing, invalid or expired token";
    return 401;
}

int auth_fail_now(struct lws *wsi, int rc)
{
    const char *code, *msg;
    int status = auth_refusal(rc, &code, &msg);
    return req_fail_now(wsi, status, code, msg);
}

void auth_fail(gw_req *h, int rc)
{
    const char *code, *msg;
    int status = auth_refusal(rc, &code, &msg);
    req_error(h, status, code, msg);
}
