/* frame_block.c - `block {user, on}`: the block script blocks or unblocks
 * `user` for this session's user. Its answer (and the other sessions')
 * is {kind:"block", user, on}, through the gateway channel; the presence of
 * both users is hidden from each other by their gateways ({t:"h"}). */
#include <string.h>

#include "frame_handlers.h"
#include "log.h"
#include "redis_link.h"
#include "scripts.h"

static void frame_block_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    gw_session *s = sess_find((uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("block script: %s", rep->str);
        frame_unavailable(s, "block not stored: retry later");
        return;
    }
    if (rep->elements >= 3 && rep->element[1]->type == REDIS_REPLY_STRING &&
        rep->element[2]->type == REDIS_REPLY_STRING) {
        char code[24], msg[128];
        snprintf(code, sizeof code, "%.*s", (int)rep->element[1]->len, rep->element[1]->str);
        snprintf(msg, sizeof msg, "%.*s", (int)rep->element[2]->len, rep->element[2]->str);
        sess_send_error(s, code, msg, NULL);
    }
    /* "ok": {kind:"block"} reaches every session of the user, this one too */
}

void frame_block(gw_session *s, const proto_frame *f)
{
    char user[PROTO_NAME_MAX + 1];
    memcpy(user, f->user.p, f->user.len);
    user[f->user.len] = '\0';
    if (!strcmp(user, s->user)) {
        sess_send_error(s, "bad_field", "field 'user' cannot be yourself", NULL);
        return;
    }
    if (scripts_block(rl_commands(), frame_block_cb, (void *)(uintptr_t)s->conn, s->user, user,
                      f->on, frame_cfg()->max_blocks) != REDIS_OK)
        frame_unavailable(s, "block not stored: retry later");
}
