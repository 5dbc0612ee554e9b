/* http.h - the gateway's HTTP side: routing, /healthz, /metrics, the JSON
 * API (account.c, search.c), static files (static.c), and the refusal of
 * bad /ws upgrades with a JSON answer before the upgrade. */
#ifndef PARLEY_GW_HTTP_H
#define PARLEY_GW_HTTP_H

#include <event2/event.h>
#include <libwebsockets.h>

#include "pss.h"

/* body_timeout_ms: --body-timeout, the longest a request body may take. */
void http_init(struct event_base *base, long long body_timeout_ms);
/* The lws callback for every reason that is not a WebSocket one. */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, gw_pss *pss, void *in,
                  size_t len);

#endif
