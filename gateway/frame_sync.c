/* frame_sync.c - `sync`: the inbox entries after a seq of an epoch, then
 * sync_end (recovered or not, the newest seq). */
#include <string.h>

#include "deliver.h"
#include "frame_handlers.h"
#include "redis_link.h"
#include "scripts.h"

static void frame_sync_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    gw_session *s = sess_find((uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    long long recovered, seq;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rl_reply_int(rep->element[0], &recovered) < 0 || rl_reply_int(rep->element[1], &seq) < 0) {
        frame_unavailable(s, "sync failed: retry later");
        return;
    }
    for (size_t i = 2; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        int64_t es = 0;
        proto_peek_fields(e->str, e->len, NULL, NULL, NULL, NULL, &es);
        deliver_send_replay(s, e->str, e->len);
        if (es > s->last_seq) s->last_seq = es;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_sync_end(&pk, recovered != 0, seq);
    sess_send_packed(s, &sb);
}

void frame_sync(gw_session *s, const proto_frame *f)
{
    char epoch[PROTO_EPOCH_MAX + 1];
    memcpy(epoch, f->epoch.p, f->epoch.len);
    epoch[f->epoch.len] = '\0';
    if (scripts_sync(rl_commands(), frame_sync_cb, (void *)(uintptr_t)s->conn, s->user, f->after,
                     epoch) != REDIS_OK)
        frame_unavailable(s, "sync failed: retry later");
}
