/* http.c - HTTP routing and the lws HTTP callback (http.h).
 *
 * Routes: POST /api/register, /api/login, /api/logout, /api/password
 * (account.c), /api/logout-all (logins.c); GET /api/sessions and DELETE
 * /api/sessions/ID (logins.c); GET /api/users (search.c), /healthz,
 * /metrics; /ws only as an upgrade; every other GET path a static file
 * (static.c). A POST body is collected here
 * (at most REQ_BODY_MAX bytes, else 413) before its route runs. A URL or
 * headers over --max-url / --max-headers are answered 414 / 431 before any
 * route, the upgrade included; then a POST from a foreign page (origin.h) is
 * refused 403 and a JSON route's body of another Content-Type 415, before the
 * body is read. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "account.h"
#include "auth.h"
#include "drain.h"
#include "heartbeat.h"
#include "log.h"
#include "logins.h"
#include "metrics.h"
#include "openrate.h"
#include "origin.h"
#include "redis_link.h"
#include "req.h"
#include "revset.h"
#include "search.h"
#include "sesscap.h"
#include "session.h"
#include "startup.h"
#include "static.h"
#include "walltime.h"

/* DELETE /api/sessions/ID needs lws to parse the DELETE method: lws 4.1
 * does with LWS_WITH_HTTP_UNCOMMON_HEADERS (on in its default build, and in
 * deploy/setup.sh's). */
#if !defined(LWS_WITH_HTTP_UNCOMMON_HEADERS) && !defined(LWS_HTTP_HEADERS_ALL)
#error "libwebsockets without LWS_WITH_HTTP_UNCOMMON_HEADERS cannot route DELETE"
#endif

enum { R_NONE = 0, R_REGISTER, R_LOGIN, R_LOGOUT, R_LOGOUT_ALL, R_PASSWORD };

static long long http_body_timeout = 10000; /* ms */
static long long http_max_url = 4096;       /* bytes of path and query (decoded) */
static long long http_max_headers = 8192;   /* bytes of header values lws knows by name */
static struct event_base *http_base;        /* for the body deadlines */

void http_init(struct event_base *base, long long body_timeout_ms, long long max_url,
               long long max_headers)
{
    http_base = base;
    http_body_timeout = body_timeout_ms;
    http_max_url = max_url;
    http_max_headers = max_headers;
}

/* --max-url and --max-headers: 0, or the status to refuse the request with
 * (414, 431), its error body written. The URL is the path and the query as
 * lws keeps them (decoded); the headers are the values of every header lws
 * knows by name (Cookie, Authorization, Origin, User-Agent, ...): lws keeps
 * no list of the others, which count only towards HTTP_HEADER_BUF. */
static int http_oversize(struct lws *wsi)
{
    char *uri;
    int uri_len = 0;
    if (lws_http_get_uri_and_method(wsi, &uri, &uri_len) < 0) uri_len = 0;
    long long url = uri_len + lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    long long all = 0;
    for (int t = 0; t < (int)_WSI_TOKEN_CLIENT_SENT_PROTOCOLS; t++)
        all += lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
    char msg[96];
    if (url > http_max_url) {
        snprintf(msg, sizeof msg, "the URL is over %lld bytes", http_max_url);
        req_write_error(wsi, 414, "uri_too_long", msg);
        return 414;
    }
    if (all - url > http_max_headers) {
        snprintf(msg, sizeof msg, "the headers are over %lld bytes", http_max_headers);
        req_write_error(wsi, 431, "headers_too_large", msg);
        return 431;
    }
    return 0;
}

/* The body deadline passed (a libevent timer) with the body incomplete,
 * whether bytes still trickle in or none come: the answer is 408, written at
 * once (nothing was written on this connection yet, and lws delivers no
 * writable callback to a connection still reading its body), then the
 * connection is closed at once (lws's own timers are not what closes it:
 * their checks come late on this loop). A reference is held across the
 * close, which detaches the request. */
static void http_body_deadline(evutil_socket_t fd, short what, void *arg)
{
    gw_req *h = arg;
    (void)fd;
    (void)what;
    if (h->body_done || !h->wsi) return;
    struct lws *wsi = h->wsi;
    h->body_timed_out = 1;
    req_ref(h);
    req_write_error(wsi, 408, "request_timeout", "the body took too long to arrive");
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_SYNC);
    req_unref(h);
}

/* The body is complete: run the route, once. lws 4.1 delivers
 * LWS_CALLBACK_HTTP_BODY_COMPLETION again each time it services the
 * connection while a pipelined request waits behind this unanswered one, so
 * without the flag one login would start one password check per pass. */
static void http_body_done(gw_req *h)
{
    if (h->body_done) return;
    h->body_done = 1;
    if (h->body_ev) event_del(h->body_ev);
    if (h->too_large) {
        req_error(h, 413, "too_large", REQ_BODY_TOO_LARGE);
        return;
    }
    switch (h->route) {
    case R_REGISTER:
        account_register(h);
        break;
    case R_LOGIN:
        account_login(h);
        break;
    case R_LOGOUT:
        account_logout(h);
        break;
    case R_LOGOUT_ALL:
        logins_logout_all(h);
        break;
    case R_PASSWORD:
        account_password(h);
        break;
    default:
        req_error(h, 404, "not_found", "no such path");
    }
}

/* Whether the request's Content-Type is application/json (parameters such
 * as "; charset=utf-8" allowed): a form or text/plain body, which a page of
 * any origin can post without asking (no CORS preflight), is refused 415. */
static int http_json_body(struct lws *wsi)
{
    char ct[128];
    static const char want[] = "application/json";
    int n = lws_hdr_copy(wsi, ct, sizeof ct, WSI_TOKEN_HTTP_CONTENT_TYPE);
    if (n < (int)sizeof want - 1 || strncasecmp(ct, want, sizeof want - 1) != 0) return 0;
    char next = ct[sizeof want - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* usable: Redis up, leftovers closed, revoked sessions loaded, not draining */
static int http_healthz(struct lws *wsi)
{
    if (drain_active()) return req_fail_now(wsi, 503, "unavailable", "draining");
    if (!startup_ready() || !rl_ok())
        return req_fail_now(wsi, 503, "unavailable", "redis unreachable");
    if (!revset_loaded()) return req_fail_now(wsi, 503, "unavailable", AUTH_UNAVAILABLE_MSG);
    if (req_write(wsi, 200, "text/plain", "ok", 2, NULL) < 0) return -1;
    return req_done(wsi);
}

static int http_metrics(struct lws *wsi)
{
    enum { CAP = 16384 };
    char *buf = malloc(CAP);
    if (!buf) return -1;
    metrics_gauges gauges = {
        .connections = sess_count(), .redis_up = rl_ok(), .draining = drain_active()};
    hb_redis_memory(&gauges.redis_used_memory, &gauges.redis_maxmemory);
    gauges.users_at_session_limit = sesscap_full_count();
    size_t n = metrics_render(&gauges, buf, CAP);
    int rc = req_write(wsi, 200, "text/plain; version=0.0.4", buf, n, NULL);
    free(buf);
    if (rc < 0) return -1;
    return req_done(wsi);
}

static int http_request(struct lws *wsi, gw_pss *pss, const char *path)
{
    int is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    int is_get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    int is_delete = lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI) > 0;
    metrics_inc(METRIC_HTTP_REQUESTS);
    /* answered, then closed: a body, if any, is not read */
    if (http_oversize(wsi)) return -1;
    if (is_post) {
        int route = !strcmp(path, "/api/register")     ? R_REGISTER
                    : !strcmp(path, "/api/login")      ? R_LOGIN
                    : !strcmp(path, "/api/logout")     ? R_LOGOUT
                    : !strcmp(path, "/api/logout-all") ? R_LOGOUT_ALL
                    : !strcmp(path, "/api/password")   ? R_PASSWORD
                                                       : R_NONE;
        if (route == R_NONE) return req_fail_now(wsi, 404, "not_found", "no such path");
        /* every POST changes state: none from a page of another origin (CSRF,
         * login CSRF); the API sends no CORS headers, so such a page could not
         * have sent JSON anyway, only a form */
        if (origin_check(wsi) == ORIGIN_FOREIGN) {
            req_fail_now(wsi, 403, "forbidden_origin", "requests from this origin are refused");
            return -1; /* do not read the body */
        }
        if ((route == R_REGISTER || route == R_LOGIN || route == R_PASSWORD) &&
            !http_json_body(wsi)) {
            req_fail_now(wsi, 415, "unsupported_media_type", "send the body as application/json");
            return -1;
        }
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
            /* a chunked body: lws 4.1 would never complete it (the request hung
             * until lws timed the connection out); the API's bodies are small */
            req_fail_now(wsi, 411, "length_required", "send the body with a Content-Length");
            return -1; /* do not read the body */
        }
        char cl[32] = "";
        long long clen = 0;
        if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) clen = atoll(cl);
        if (clen > REQ_BODY_MAX) {
            req_fail_now(wsi, 413, "too_large", REQ_BODY_TOO_LARGE);
            return -1; /* do not read the body */
        }
        gw_req *h = req_new(wsi, route);
        if (!h) return -1;
        pss->h = h;
        h->started_ms = walltime_ms();
        if (clen <= 0) {
            http_body_done(h); /* no body coming */
        } else { /* a deadline for the whole body, whether bytes keep trickling in or not */
            struct timeval tv = {(time_t)(http_body_timeout / 1000),
                                 (suseconds_t)(http_body_timeout % 1000) * 1000};
            h->body_ev = evtimer_new(http_base, http_body_deadline, h);
            /* libevent counts a timer from the loop's cached time (taken when
             * this turn's callbacks began): refresh it, or the deadline comes
             * early by however long this turn has run */
            event_base_update_cache_time(http_base);
            if (!h->body_ev || evtimer_add(h->body_ev, &tv) < 0)
                log_warn("no timer for a request body: only its next byte checks the deadline");
        }
        return 0;
    }
    if (is_delete) { /* lws parses DELETE with LWS_WITH_HTTP_UNCOMMON_HEADERS (checked above) */
        if (origin_check(wsi) == ORIGIN_FOREIGN) /* changes state, as a POST: CSRF */
            return req_fail_now(wsi, 403, "forbidden_origin",
                                "requests from this origin are refused");
        if (!strncmp(path, "/api/sessions/", 14)) return logins_delete(wsi, pss, path + 14);
        return req_fail_now(wsi, 404, "not_found", "no such path");
    }
    if (!is_get) return req_fail_now(wsi, 405, "method_not_allowed", "use GET, POST or DELETE");
    if (!strcmp(path, "/healthz")) return http_healthz(wsi);
    if (!strcmp(path, "/metrics")) return http_metrics(wsi);
    if (!strcmp(path, "/api/users")) return search_users(wsi, pss);
    if (!strcmp(path, "/api/sessions")) return logins_list(wsi, pss);
    if (!strcmp(path, "/ws"))
        return req_fail_now(wsi, 400, "bad_request", "WebSocket upgrade required");
    if (!strncmp(path, "/api/", 5) || !strcmp(path, "/api"))
        return req_fail_now(wsi, 404, "not_found", "no such path");
    return static_serve(wsi, path);
}

/* A refused upgrade: the answer is written here and lws closes the
 * connection (the callback returns 1). */
static int http_refuse_upgrade(struct lws *wsi, int status, const char *code, const char *msg)
{
    req_write_error(wsi, status, code, msg);
    return 1;
}

/* Whether /ws may be upgraded: 0, or refused with a JSON answer. */
static int http_confirm_upgrade(struct lws *wsi)
{
    char uri[64];
    char user[PROTO_NAME_MAX + 1], login[TOKEN_SID_LEN + 1];
    int dev;
    if (http_oversize(wsi)) return 1;
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/ws") != 0)
        return http_refuse_upgrade(wsi, 404, "not_found", "no such path");
    if (drain_active())
        return http_refuse_upgrade(wsi, 503, "unavailable", "this gateway is shutting down");
    if (!startup_ready() || !rl_ok())
        return http_refuse_upgrade(wsi, 503, "unavailable", "storage unreachable, retry later");
    if (!revset_loaded()) /* a revoked token would pass */
        return http_refuse_upgrade(wsi, 503, "unavailable", AUTH_UNAVAILABLE_MSG);
    int rc = auth_ws_user(wsi, user, login, &dev); /* a revoked session too: from memory */
    if (rc < 0) { /* 403 for a foreign page's cookie: cross-site WebSocket hijacking */
        const char *code, *msg;
        int status = auth_refusal(rc, &code, &msg);
        return http_refuse_upgrade(wsi, status, code, msg);
    }
    if (sesscap_refuse(user)) { /* --user-sessions: no socket at all, not even for a moment */
        metrics_inc(METRIC_SESSION_LIMIT);
        char msg[96];
        snprintf(msg, sizeof msg, "too many sessions: at most %lld per user", sesscap_limit());
        req_write_error_retry(wsi, 429, "rate_limited", msg, SESSCAP_RETRY_AFTER);
        return 1;
    }
    int wait_s = openrate_take(user);
    if (wait_s) { /* --user-open-rate: sessions opened in a loop, each costing a hello */
        metrics_inc(METRIC_OPEN_RATE_LIMITED);
        req_write_error_retry(wsi, 429, "rate_limited",
                              "too many sessions opened: retry after the time given", wait_s);
        return 1;
    }
    return 0;
}

static void http_detach(gw_pss *pss)
{
    if (pss && pss->h) {
        if (pss->h->body_ev) event_del(pss->h->body_ev);
        pss->h->wsi = NULL;
        req_unref(pss->h);
        pss->h = NULL;
    }
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, gw_pss *pss, void *in,
                  size_t len)
{
    gw_req *h = pss ? pss->h : NULL;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return http_confirm_upgrade(wsi);
    case LWS_CALLBACK_HTTP:
        http_detach(pss);
        return http_request(wsi, pss, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        if (!h || h->body_timed_out) return 0; /* answered 408, closing */
        /* lws times out a silent connection, but each byte restarts its
         * clock: a body trickled a byte at a time would hold the socket and
         * the request forever. A whole body gets --body-timeout. */
        if (!h->body_done && walltime_ms() - h->started_ms > (uint64_t)http_body_timeout) {
            req_write_error(wsi, 408, "request_timeout", "the body took too long to arrive");
            http_detach(pss);
            return -1; /* close: the rest of the body is not read */
        }
        if (h->body_len + len > REQ_BODY_MAX)
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
        if (req_write_answer(h) < 0) {
            http_detach(pss);
            return -1;
        }
        http_detach(pss);
        return req_done(wsi);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return req_done(wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
        http_detach(pss);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, pss, in, len);
    }
}
