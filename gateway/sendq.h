/* sendq.h - a socket's queue of outgoing WebSocket frames.
 *
 * Each item is one malloc holding LWS_PRE bytes of headroom and the frame,
 * so lws_write() can put the WebSocket header in front without a copy. The
 * queue owns its items; sendq_clear frees them. The bound (--send-queue) is
 * the caller's (session.c). */
#ifndef PARLEY_GW_SENDQ_H
#define PARLEY_GW_SENDQ_H

#include <stddef.h>
#include <stdint.h>

struct lws;

typedef struct sendq_item {
    struct sendq_item *next;
    size_t len;
    int live;            /* in a backlog: a live frame queued behind a replay */
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then len bytes of frame */
} sendq_item;

typedef struct sendq {
    sendq_item *head, *tail;
    size_t bytes; /* frame bytes queued (headroom not counted) */
} sendq;

/* Appends a copy of frame; 0, or -1 when out of memory. */
int sendq_push(sendq *q, const char *frame, size_t len);
/* Writes queued frames until the socket chokes (lws keeps a short write's
 * tail); adds the frames written to *frames_out. -1 on a write error. */
int sendq_flush(sendq *q, struct lws *wsi, uint64_t *frames_out);
void sendq_clear(sendq *q);
/* Moves the head item of src to the tail of dst (no copy). */
void sendq_move_head(sendq *src, sendq *dst);

#endif
