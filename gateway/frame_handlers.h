/* frame_handlers.h - the handlers of each frame kind, called by frames.c
 * only (private to the frame layer). Each answers errors itself; replies
 * that come through the gateway channel (acks, receipts, group frames)
 * reach the session through deliver.c. */
#ifndef PARLEY_GW_FRAME_HANDLERS_H
#define PARLEY_GW_FRAME_HANDLERS_H

#include <hiredis/hiredis.h>

#include "frames.h"
#include "proto.h"

/* the frame layer's configuration (frames.c) */
const frame_config *frame_cfg(void);

void frame_text(gw_session *s, const proto_frame *f);    /* frame_text.c */
void frame_change(gw_session *s, const proto_frame *f);  /* frame_text.c: edit, delete, react */
void frame_sync(gw_session *s, const proto_frame *f);    /* frame_sync.c */
void frame_typing(gw_session *s, const proto_frame *f);  /* frame_typing.c */
void frame_read(gw_session *s, const proto_frame *f);    /* frame_read.c */
void frame_history(gw_session *s, const proto_frame *f); /* frame_history.c */
void frame_group(gw_session *s, const proto_frame *f);   /* frame_group.c */
void frame_block(gw_session *s, const proto_frame *f);   /* frame_block.c */

/* Takes `tokens` more from s's rate-limit bucket (the frame's own token is
 * taken already): 0, or -1 (nothing taken) when the bucket holds fewer. */
int frame_spend(gw_session *s, double tokens);
/* error unavailable (counted) with message, no cid */
void frame_unavailable(gw_session *s, const char *message);
/* Answers a script's "no_such_user" / "forbidden" string reply (what names
 * the request); returns 1 if rep was one. */
int frame_refused_reply(gw_session *s, const redisReply *rep, const char *what);

#endif
