/* frames.h - a client frame's way in: decoding and validation (proto.h), the
 * per-socket rate limit, then the handler of its kind (frame_*.c, one file
 * per area: texts, sync, typing, read receipts, history, groups).
 *
 * Bad frames are answered with an error frame (and close 1007 when the
 * contract says so), counted, and logged once per session. */
#ifndef PARLEY_GW_FRAMES_H
#define PARLEY_GW_FRAMES_H

#include <stddef.h>

#include "session.h"

typedef struct frame_config {
    const char *gwid;    /* this gateway's id (texts name it) */
    long long rate;      /* --rate: frames per second per socket */
    long long burst;     /* --burst: token bucket size */
    long long group_max; /* --group-max */
    /* bounded reads (issue 12) */
    long long page_bytes;     /* --page-bytes: history answers */
    long long groups_created; /* --groups-created */
    /* per-user throttles (issue 12), ms */
    long long typing_interval;     /* --typing-interval */
    long long typing_interval_big; /* --typing-interval-big */
    long long group_op_interval;   /* --group-op-interval */
    long long max_blocks;          /* --max-blocks */
    int dev_auth;                  /* --dev-auth: texts without cid accepted */
} frame_config;

/* cfg is copied (gwid too). */
void frame_init(const frame_config *cfg);
/* One complete WebSocket message from s. */
void frame_receive(gw_session *s, const char *buf, size_t len);
/* A refusal the transport found (not binary, too large): counted and
 * logged once per session like a bad frame. */
void frame_refused(gw_session *s, const char *code, const char *message);

#endif
