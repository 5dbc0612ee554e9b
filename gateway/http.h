/* http.h - the gateway's HTTP side: routing, /healthz, /metrics, the JSON
 * API (account.c, search.c), static files (static.c), and the refusal of
 * bad /ws upgrades with a JSON answer before the upgrade. */
#ifndef PARLEY_GW_HTTP_H
#define PARLEY_GW_HTTP_H

#include <event2/event.h>
#include <libwebsockets.h>

#include "pss.h"

/* The buffer lws keeps a request's line and headers in (its
 * max_http_header_data), bytes, for the limits --max-url and --max-headers:
 * room for both and 4 KiB more (the method, header names, headers lws does
 * not know by name), so a request a little over a limit is still parsed and
 * answered 414 / 431; one over the buffer itself is closed by lws without an
 * answer. */
#define HTTP_HEADER_BUF(max_url, max_headers) ((max_url) + (max_headers) + 4096)

/* body_timeout_ms: --body-timeout, the longest a request body may take;
 * max_url, max_headers: --max-url, --max-headers (bytes; longer: 414, 431). */
void http_init(struct event_base *base, long long body_timeout_ms, long long max_url,
               long long max_headers);
/* The lws callback for every reason that is not a WebSocket one. */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, gw_pss *pss, void *in,
                  size_t len);

#endif
