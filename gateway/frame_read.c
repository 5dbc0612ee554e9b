/* frame_read.c - `read`: moves the read position; the receipt reaches the
 * other participants and the reader's other sessions through their
 * gateways (the read script). */
#include <string.h>

#include "frame_handlers.h"
#include "redis_link.h"
#include "scripts.h"

static void frame_read_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    gw_session *s = sess_find((uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    if (frame_refused_reply(s, rep, "read")) return;
    if (!rep || rep->type != REDIS_REPLY_ARRAY)
        frame_unavailable(s, "read position not stored: retry later");
}

void frame_read(gw_session *s, const proto_frame *f)
{
    char with[PROTO_NAME_MAX + 2];
    memcpy(with, f->with.p, f->with.len);
    with[f->with.len] = '\0';
    if (scripts_read(rl_commands(), frame_read_cb, (void *)(uintptr_t)s->conn, s->user, s->sessid,
                     with, f->upto) != REDIS_OK)
        frame_unavailable(s, "read position not stored: retry later");
}
