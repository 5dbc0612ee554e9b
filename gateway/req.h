/* req.h - an HTTP request answered later (after Redis or the password pool),
 * and the writing of HTTP answers.
 *
 * A request answered at once is written directly from the lws callback
 * (req_write, req_fail_now). One that needs async work gets a gw_req: the
 * answer is stored in it (req_answer, req_error) and written from
 * LWS_CALLBACK_HTTP_WRITEABLE (http.c). A gw_req is refcounted: one
 * reference for the lws connection (dropped when it closes, which also
 * clears wsi) and one per pending operation; it holds the drain while it
 * lives. */
#ifndef PARLEY_GW_REQ_H
#define PARLEY_GW_REQ_H

#include <event2/event.h>
#include <stddef.h>

#include "proto.h"
#include "token.h"

struct lws;

#define REQ_BODY_MAX       8192                     /* the largest request body, bytes */
#define REQ_BODY_TOO_LARGE "the body is over 8 KiB" /* REQ_BODY_MAX, said */
_Static_assert(REQ_BODY_MAX == 8 * 1024, "REQ_BODY_TOO_LARGE names REQ_BODY_MAX");

typedef struct gw_req {
    struct lws *wsi; /* NULL once the connection closed */
    int refs;
    int route; /* http.c's route id */
    char body[REQ_BODY_MAX];
    size_t body_len;
    int too_large;
    int body_done;         /* the route ran: a request runs its route once */
    uint64_t started_ms;   /* when its headers were in (the body deadline counts from here) */
    struct event *body_ev; /* the body deadline (http.c; libevent timer), freed with the request */
    int body_timed_out;    /* the deadline passed: answer 408 and close */
    /* the answer, once known */
    int status;
    const char *ctype;
    char *resp;
    size_t resp_len;
    char cookie[TOKEN_MAX + 128];
    int retry_after; /* seconds of a Retry-After header (0: none) */
    int has_answer;
    int sent;
    /* login / register in progress (account.c) */
    char user[PROTO_NAME_MAX + 1];
    char *password; /* wiped and freed with the request */
    size_t password_len;
    int ok;
    /* the signed-in session: the one the token presented names, or the one
     * being made (account.c, logins.c) */
    char sid[TOKEN_SID_LEN + 1];
    int64_t token_exp;  /* its token's expiry, Unix seconds */
    int issue_status;   /* the answer's status once the session is made */
    char *new_password; /* a password change: wiped and freed with the request */
    size_t new_password_len;
    char *verified_hash; /* the hash the old password matched (freed with the request) */
    char old_sid[TOKEN_SID_LEN + 1]; /* the session whose token asked for the change */
    int64_t old_exp;
} gw_req;

/* A new request on wsi (one reference, held for the connection). */
gw_req *req_new(struct lws *wsi, int route);
void req_ref(gw_req *h);
void req_unref(gw_req *h);

/* Stores the answer (JSON) and asks lws for the writable callback; the
 * first answer wins. cookie: a Set-Cookie value, or NULL. */
void req_answer(gw_req *h, int status, const char *body, size_t len, const char *cookie);
/* {"error": code, "message": msg} */
void req_error(gw_req *h, int status, const char *code, const char *msg);
/* req_error with a Retry-After header (seconds, > 0): a 429 or a 503. */
void req_error_retry(gw_req *h, int status, const char *code, const char *msg, int retry_after_s);
/* 503 unavailable, counted */
void req_unavailable(gw_req *h);

/* The Content-Security-Policy of every answer (docs/protocol.md, "HTTP
 * hygiene"): the web client's own scripts, styles (inline ones too: the
 * built-in page), images (and data: URLs), its WebSocket to the same host. */
#define REQ_CSP                                                                                    \
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "                      \
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "                  \
    "form-action 'self'"

/* Adds the headers every answer carries (REQ_CSP, X-Content-Type-Options,
 * Referrer-Policy, X-Frame-Options, Cross-Origin-Opener-Policy) at *p, which
 * it advances (lws_add_http_header_by_name; end: the last usable byte): 0, or
 * -1 when they do not fit. Every answer's headers go through it: req_write and
 * the static files (as lws_serve_http_file's other_headers). */
int req_add_common_headers(struct lws *wsi, unsigned char **p, unsigned char *end);

#define REQ_AGENT_MAX 160 /* bytes of User-Agent kept with a signed-in session */
/* The client's User-Agent cut to REQ_AGENT_MAX bytes, every byte that is not
 * printable ASCII made '?' (into out, size > REQ_AGENT_MAX; "" without one). */
void req_agent(struct lws *wsi, char *out, size_t size);

/* Writes a whole answer now, with Cache-Control: no-store: 0, or -1 (close
 * the connection). */
int req_write(struct lws *wsi, int status, const char *ctype, const char *body, size_t len,
              const char *cookie);
/* Writes {"error": code, "message": msg} now: 0, or -1. */
int req_write_error(struct lws *wsi, int status, const char *code, const char *msg);
/* The same with a Retry-After header (seconds, > 0): a 429 or a 503. */
int req_write_error_retry(struct lws *wsi, int status, const char *code, const char *msg,
                          int retry_after_s);
/* Writes an error now and ends the transaction: the lws callback's return. */
int req_fail_now(struct lws *wsi, int status, const char *code, const char *msg);
/* Ends the transaction after a write: the lws callback's return. */
int req_done(struct lws *wsi);
/* Writes the stored answer (LWS_CALLBACK_HTTP_WRITEABLE): 0, or -1. */
int req_write_answer(gw_req *h);

#endif
