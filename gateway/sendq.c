/* sendq.c - a socket's bounded queue of outgoing WebSocket frames.
 *
 * Each item is allocated with LWS_PRE bytes of headroom in front of the frame,
 * so lws_write() can put the WebSocket header there without a copy. The bound
 * (--send-queue bytes) is checked by the caller (ws_send): a reader that lets
 * its queue grow past it is cut off, the loop never waits for it. */
#include <stdlib.h>
#include <string.h>

#include "gw.h"

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
    q->count++;
    return 0;
}

/* Writes frames while the socket takes them: lws_write() accepts a whole frame
 * (keeping any unsent tail itself), after which lws_send_pipe_choked() says
 * whether another write would have to wait for POLLOUT. */
int sendq_flush(sendq *q, struct lws *wsi, uint64_t *frames_out)
{
    while (q->head && !lws_send_pipe_choked(wsi)) {
        sendq_item *it = q->head;
        int n = lws_write(wsi, it->buf + LWS_PRE, it->len, LWS_WRITE_BINARY);
        if (n < (int)it->len) return -1;
        q->head = it->next;
        if (!q->head) q->tail = NULL;
        q->bytes -= it->len;
        q->count--;
        free(it);
        (*frames_out)++;
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
    q->count = 0;
}

void sendq_move_head(sendq *src, sendq *dst)
{
    sendq_item *it = src->head;
    if (!it) return;
    src->head = it->next;
    if (!src->head) src->tail = NULL;
    src->bytes -= it->len;
    src->count--;
    it->next = NULL;
    if (dst->tail)
        dst->tail->next = it;
    else
        dst->head = it;
    dst->tail = it;
    dst->bytes += it->len;
    dst->count++;
}
