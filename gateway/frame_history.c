/* frame_history.c - `history`: a page of a conversation's stored texts,
 * newest last, for its participants only; at most `limit` of them and
 * --page-bytes bytes (then `more`). */
#include <stdlib.h>
#include <string.h>

#include "frame_handlers.h"
#include "redis_link.h"
#include "scripts.h"

/* the reply names the conversation, so the callback needs it back */
typedef struct frame_hist_req {
    uint64_t conn;
    size_t with_len;
    char with[PROTO_NAME_MAX + 2];
} frame_hist_req;

static void frame_history_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    frame_hist_req *q = priv;
    gw_session *s = sess_find(q->conn);
    long long more;
    if (!s || s->state == SESS_CLOSING) goto out;
    if (frame_refused_reply(s, rep, "history")) goto out;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rl_reply_int(rep->element[0], &more) < 0) {
        frame_unavailable(s, "history failed: retry later");
        goto out;
    }
    size_t n = rep->elements - 1, k = 0;
    const char **msgs = calloc(n ? n : 1, sizeof *msgs);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    if (!msgs || !lens) {
        free(msgs);
        free(lens);
        sess_send_error(s, "unavailable", "out of memory", NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *e = rep->element[i + 1];
        /* only well-formed maps are spliced into the answer */
        if (e->type != REDIS_REPLY_STRING || !proto_is_map(e->str, e->len)) continue;
        msgs[k] = e->str;
        lens[k++] = e->len;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_history(&pk, q->with, q->with_len, msgs, lens, k, more != 0);
    sess_send_packed(s, &sb);
    free(msgs);
    free(lens);
out:
    free(q);
}

void frame_history(gw_session *s, const proto_frame *f)
{
    frame_hist_req *q = calloc(1, sizeof *q);
    if (!q) {
        sess_send_error(s, "unavailable", "out of memory", NULL);
        return;
    }
    q->conn = s->conn;
    q->with_len = f->with.len;
    memcpy(q->with, f->with.p, f->with.len);
    if (scripts_history(rl_commands(), frame_history_cb, q, s->user, q->with, f->before, f->limit,
                        frame_cfg()->page_bytes) != REDIS_OK) {
        free(q);
        frame_unavailable(s, "history failed: retry later");
    }
}
