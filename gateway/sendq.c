/* sendq.c - a socket's bounded queue of outgoing WebSocket frames.
 *
 * Each item is allocated with LWS_PRE bytes of headroom in front of the frame,
 * so lws_write() can put the WebSocket header there without a copy. The bound
 * (--send-queue bytes) is checked by the caller (sess_send, session.c): a reader that lets
 * its queue grow past it is cut off, the loop never waits for it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sendq.h"

#include <libwebsockets.h>

int sendq_push(sendq *q, const char *frame, size_t len)
{
    sendq_item *it = malloc(sizeof *it + LWS_PRE + len);
    if (!it) return -1;
    it->next = NULL;
    it->len = len;
    it->live = 0;
    memcpy(it->buf + LWS_PRE, frame, len);
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->bytes += len;
    return 0;
}

/* Up to this many bytes of consecutive small frames go out in one write. */
#define SENDQ_BATCH 65536

static size_t sendq_header(unsigned char *p, size_t len)
{
    p[0] = 0x82; /* FIN + binary; server frames are not masked */
    if (len < 126) {
        p[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        p[1] = 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        return 4;
    }
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static void sendq_pop(sendq *q)
{
    sendq_item *it = q->head;
    q->head = it->next;
    if (!q->head) q->tail = NULL;
    q->bytes -= it->len;
    free(it);
}

/* Writes frames while the socket takes them. A write costs about as much as
 * the bytes it carries are small (machine-notes.md), so consecutive small
 * frames are framed here and handed to lws as one raw write (LWS_WRITE_HTTP
 * on a WebSocket goes out untouched; no extension is negotiated); a lone or
 * large frame goes through lws_write(LWS_WRITE_BINARY) from its own headroom.
 * lws keeps any unsent tail of a write itself (and asks for POLLOUT), after
 * which lws_partial_buffered() says to stop. No poll() per write: a full
 * socket shows as a short send, whose tail lws keeps. */
int sendq_flush(sendq *q, struct lws *wsi, uint64_t *frames_out)
{
    static unsigned char batch[LWS_PRE + SENDQ_BATCH];
    while (q->head && !lws_partial_buffered(wsi)) {
        sendq_item *it = q->head;
        if (!it->next || it->len + 10 > SENDQ_BATCH / 2) {
            int n = lws_write(wsi, it->buf + LWS_PRE, it->len, LWS_WRITE_BINARY);
            if (n < (int)it->len) return -1;
            sendq_pop(q);
            (*frames_out)++;
            continue;
        }
        size_t total = 0, count = 0;
        unsigned char *p = batch + LWS_PRE;
        for (; it && total + 10 + it->len <= SENDQ_BATCH; it = it->next, count++) {
            total += sendq_header(p + total, it->len);
            memcpy(p + total, it->buf + LWS_PRE, it->len);
            total += it->len;
        }
        int n = lws_write(wsi, p, total, LWS_WRITE_HTTP);
        if (n < (int)total) return -1;
        while (count--) {
            sendq_pop(q);
            (*frames_out)++;
        }
    }
    return 0;
}

void sendq_clear(sendq *q)
{
    sendq_item *it = q->head;
    while (it) {
        sendq_item *next = it->next;
        free(it);
        it = next;
    }
    q->head = q->tail = NULL;
    q->bytes = 0;
}

void sendq_move_head(sendq *src, sendq *dst)
{
    sendq_item *it = src->head;
    if (!it) return;
    src->head = it->next;
    if (!src->head) src->tail = NULL;
    src->bytes -= it->len;
    it->next = NULL;
    if (dst->tail)
        dst->tail->next = it;
    else
        dst->head = it;
    dst->tail = it;
    dst->bytes += it->len;
}
