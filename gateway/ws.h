/* ws.h - the gateway's WebSocket side of lws (RFC 6455): a socket upgraded
 * on /ws becomes a session (lifecycle.h); its messages are assembled from
 * fragments, checked (binary only, at most --max-frame bytes) and handed to
 * the frame layer (frames.h); writable sockets flush their queue
 * (session.h); a closed socket ends its session. */
#ifndef PARLEY_GW_WS_H
#define PARLEY_GW_WS_H

#include <libwebsockets.h>

#include "pss.h"

/* max_frame: --max-frame bytes. */
void ws_init(size_t max_frame);
/* 1 when reason is one of the WebSocket callbacks ws_callback handles. */
int ws_handles(enum lws_callback_reasons reason);
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, gw_pss *pss, void *in,
                size_t len);

#endif
