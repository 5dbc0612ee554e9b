/* frame_typing.c - `typing`: relayed by the typing script to the other
 * user's sessions, or a group's other members, at most once per
 * --typing-interval (--typing-interval-big to a group of 64 members or more)
 * per user and conversation; the script drops the others silently. */
#include <string.h>

#include "frame_handlers.h"
#include "redis_link.h"
#include "scripts.h"

static void frame_typing_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    gw_session *s = sess_find((uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    long long n;
    if (rl_reply_int(rep, &n) < 0)
        frame_unavailable(s, "typing not delivered");
    else if (n == 0)
        sess_send_error(s, "no_such_user", "no such user or group", NULL);
    else if (n == -2)
        sess_send_error(s, "forbidden", "you cannot write to this user", NULL);
    else if (n < 0)
        sess_send_error(s, "forbidden", "not a member of that group", NULL);
}

void frame_typing(gw_session *s, const proto_frame *f)
{
    char to[PROTO_NAME_MAX + 2];
    memcpy(to, f->to.p, f->to.len);
    to[f->to.len] = '\0';
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_typing(&pk, s->user, strlen(s->user), to, f->to.len);
    if (scripts_typing(rl_commands(), frame_typing_cb, (void *)(uintptr_t)s->conn, s->user, to,
                       sb.data, sb.size, frame_cfg()->typing_interval,
                       frame_cfg()->typing_interval_big) != REDIS_OK)
        frame_unavailable(s, "typing not delivered");
    msgpack_sbuffer_destroy(&sb);
}
