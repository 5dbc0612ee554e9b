/* ws.c - WebSocket sockets to sessions and frames (ws.h). */
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "drain.h"
#include "frames.h"
#include "lifecycle.h"
#include "session.h"

static size_t ws_max_frame;

void ws_init(size_t max_frame)
{
    ws_max_frame = max_frame;
}

int ws_handles(enum lws_callback_reasons reason)
{
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return 1;
    default:
        return 0;
    }
}

static int ws_established(struct lws *wsi, gw_pss *pss)
{
    char user[PROTO_NAME_MAX + 1], login[TOKEN_SID_LEN + 1];
    int dev_account;
    if (drain_active() || auth_ws_user(wsi, user, login, &dev_account) < 0) return -1;
    gw_session *s = lifecycle_open(wsi, user, login, dev_account);
    if (!s) return -1;
    pss->s = s;
    pss->is_ws = 1;
    drain_hold(); /* the socket, until WSI_DESTROY */
    return 0;
}

/* Assembles a message from its fragments (and lws's partial deliveries of a
 * large frame) without ever holding more than --max-frame bytes. */
static int ws_receive(gw_session *s, gw_pss *pss, struct lws *wsi, const char *in, size_t len)
{
    int first = lws_is_first_fragment(wsi);
    int last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (s->state == SESS_CLOSING) return 0;
    if (!in) in = ""; /* an empty frame */
    if (first && pss->rx_len == 0 && !lws_frame_is_binary(wsi)) {
        frame_refused(s, "bad_frame", "text frames are not accepted");
        sess_close(s, 1003, "binary frames only");
        return 0;
    }
    if (pss->rx_len + len > ws_max_frame) {
        char msg[64];
        snprintf(msg, sizeof msg, "frame over %zu bytes", ws_max_frame);
        frame_refused(s, "too_large", msg);
        pss->rx_len = 0;
        sess_close(s, 1009, "frame too large");
        return 0;
    }
    if (first && last && pss->rx_len == 0) {
        frame_receive(s, in, len);
        return 0;
    }
    if (pss->rx_len + len > pss->rx_cap) {
        size_t cap = pss->rx_cap ? pss->rx_cap : 4096;
        while (cap < pss->rx_len + len)
            cap *= 2;
        if (cap > ws_max_frame) cap = ws_max_frame;
        char *nb = realloc(pss->rx, cap);
        if (!nb) {
            sess_close(s, 1011, "out of memory");
            return 0;
        }
        pss->rx = nb;
        pss->rx_cap = cap;
    }
    memcpy(pss->rx + pss->rx_len, in, len);
    pss->rx_len += len;
    if (last) {
        size_t n = pss->rx_len;
        pss->rx_len = 0;
        frame_receive(s, pss->rx, n);
    }
    return 0;
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, gw_pss *pss, void *in,
                size_t len)
{
    gw_session *s = pss ? pss->s : NULL;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        return ws_established(wsi, pss);
    case LWS_CALLBACK_RECEIVE:
        if (!s) return -1;
        return ws_receive(s, pss, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!s) return -1;
        return sess_on_writable(s);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* the answer to our close frame: done (lws would echo another) */
        return s && s->close_started ? -1 : 0;
    case LWS_CALLBACK_CLOSED:
        if (s) {
            pss->s = NULL;
            s->wsi = NULL;
            lifecycle_closed(s);
        }
        if (pss) {
            free(pss->rx);
            pss->rx = NULL;
            pss->rx_len = pss->rx_cap = 0;
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (pss && pss->is_ws) {
            pss->is_ws = 0;
            drain_release();
        }
        return 0;
    default:
        return 0;
    }
}
