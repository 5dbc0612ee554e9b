/* req.c - HTTP answers and the requests that wait for one (req.h). */
#include "req.h"

#include <libwebsockets.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain.h"
#include "json.h"
#include "metrics.h"

int req_add_common_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
    static const struct {
        const char *name, *value;
    } hdrs[] = {
        {"content-security-policy:", REQ_CSP},
        {"x-content-type-options:", "nosniff"},
        {"referrer-policy:", "no-referrer"},
        {"x-frame-options:", "DENY"},
        {"cross-origin-opener-policy:", "same-origin"},
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)hdrs[i].name,
                                        (const unsigned char *)hdrs[i].value,
                                        (int)strlen(hdrs[i].value), p, end))
            return -1;
    return 0;
}

/* req_write, with a Retry-After header when retry_after_s > 0. */
static int req_write_hdrs(struct lws *wsi, int status, const char *ctype, const char *body,
                          size_t len, const char *cookie, int retry_after_s)
{
    unsigned char hdr[LWS_PRE + 2048];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, len, &p, end)) return -1;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (req_add_common_headers(wsi, &p, end)) return -1;
    if (cookie && lws_add_http_header_by_name(
                      wsi, (const unsigned char *)"set-cookie:", (const unsigned char *)cookie,
                      (int)strlen(cookie), &p, end))
        return -1;
    char ra[16];
    int ra_len = retry_after_s > 0 ? snprintf(ra, sizeof ra, "%d", retry_after_s) : 0;
    if (ra_len > 0 && lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                                  (const unsigned char *)ra, ra_len, &p, end))
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

int req_write(struct lws *wsi, int status, const char *ctype, const char *body, size_t len,
              const char *cookie)
{
    return req_write_hdrs(wsi, status, ctype, body, len, cookie, 0);
}

static size_t req_error_body(char *out, size_t cap, const char *code, const char *msg)
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

int req_done(struct lws *wsi)
{
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int req_write_error(struct lws *wsi, int status, const char *code, const char *msg)
{
    char body[512];
    size_t n = req_error_body(body, sizeof body, code, msg);
    return req_write(wsi, status, "application/json", body, n, NULL);
}

int req_write_error_retry(struct lws *wsi, int status, const char *code, const char *msg,
                          int retry_after_s)
{
    char body[512];
    size_t n = req_error_body(body, sizeof body, code, msg);
    return req_write_hdrs(wsi, status, "application/json", body, n, NULL, retry_after_s);
}

int req_fail_now(struct lws *wsi, int status, const char *code, const char *msg)
{
    if (req_write_error(wsi, status, code, msg) < 0) return -1;
    return req_done(wsi);
}

gw_req *req_new(struct lws *wsi, int route)
{
    gw_req *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->wsi = wsi;
    h->refs = 1;
    h->route = route;
    drain_hold();
    return h;
}

void req_ref(gw_req *h)
{
    h->refs++;
}

void req_unref(gw_req *h)
{
    if (--h->refs > 0) return;
    if (h->body_ev) event_free(h->body_ev);
    if (h->password) {
        sodium_memzero(h->password, h->password_len);
        free(h->password);
    }
    if (h->new_password) {
        sodium_memzero(h->new_password, h->new_password_len);
        free(h->new_password);
    }
    free(h->verified_hash);
    free(h->resp);
    free(h);
    drain_release();
}

void req_answer(gw_req *h, int status, const char *body, size_t len, const char *cookie)
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

void req_error(gw_req *h, int status, const char *code, const char *msg)
{
    char body[512];
    size_t n = req_error_body(body, sizeof body, code, msg);
    req_answer(h, status, body, n, NULL);
}

void req_error_retry(gw_req *h, int status, const char *code, const char *msg, int retry_after_s)
{
    if (h->has_answer) return;
    h->retry_after = retry_after_s;
    req_error(h, status, code, msg);
}

void req_unavailable(gw_req *h)
{
    metrics_inc(METRIC_UNAVAILABLE);
    req_error(h, 503, "unavailable", "storage unreachable, retry later");
}

int req_write_answer(gw_req *h)
{
    h->sent = 1;
    return req_write_hdrs(h->wsi, h->status, h->ctype, h->resp, h->resp_len,
                          h->cookie[0] ? h->cookie : NULL, h->retry_after);
}

void req_agent(struct lws *wsi, char *out, size_t size)
{
    out[0] = '\0';
    int n = wsi ? lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_USER_AGENT) : 0;
    if (n <= 0) return;
    char *buf = malloc((size_t)n + 1);
    if (!buf) return;
    if (lws_hdr_copy(wsi, buf, n + 1, WSI_TOKEN_HTTP_USER_AGENT) > 0) {
        size_t len = strlen(buf);
        if (len > REQ_AGENT_MAX) len = REQ_AGENT_MAX;
        if (len >= size) len = size - 1;
        for (size_t i = 0; i < len; i++)
            out[i] = buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '?';
        out[len] = '\0';
    }
    free(buf);
}
