/* frame_read.c - `read`: moves the read position; the receipt reaches the
 * other participants and the reader's other sessions through their
 * gateways (the read script). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "frame_handlers.h"
#include "keys.h"
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

/* The keys that tell who may see a conversation: for a group its members and
 * meta, for 1:1 the other user's account (twice: the scripts take 3 keys).
 * Returns 1 for a group. */
int frame_conv_keys(const char *self, const char *with, char *hist, char *who, char *meta)
{
    char conv[KEYS_MAX];
    keys_conv(conv, sizeof conv, self, with);
    keys_fmt(hist, KEYS_MAX, KEY_HISTORY, conv);
    if (with[0] == '#') {
        keys_fmt(who, KEYS_MAX, KEY_GROUP_MEMBERS, with);
        keys_fmt(meta, KEYS_MAX, KEY_GROUP_META, with);
        return 1;
    }
    keys_fmt(who, KEYS_MAX, KEY_ACCOUNT, with);
    keys_fmt(meta, KEYS_MAX, KEY_ACCOUNT, with);
    return 0;
}

void frame_read(gw_session *s, const proto_frame *f)
{
    char with[PROTO_NAME_MAX + 2], hist[KEYS_MAX], who[KEYS_MAX], meta[KEYS_MAX];
    char kread[KEYS_MAX], kunread[KEYS_MAX], upto[24];
    memcpy(with, f->with.p, f->with.len);
    with[f->with.len] = '\0';
    int group = frame_conv_keys(s->user, with, hist, who, meta);
    keys_fmt(kread, sizeof kread, KEY_READ, s->user);
    keys_fmt(kunread, sizeof kunread, KEY_UNREAD, s->user);
    snprintf(upto, sizeof upto, "%" PRId64, f->upto);
    const char *argv[] = {hist,         who,
                          meta,         kread,
                          kunread,      s->user,
                          with,         group ? "1" : "0",
                          upto,         CHAN_GW_PREFIX,
                          KEY_SESSIONS, s->sessid};
    redisAsyncContext *ac = rl_commands();
    if (!ac || scripts_eval(ac, SCRIPT_READ, frame_read_cb, (void *)(uintptr_t)s->conn, 5, 7, argv,
                            NULL) != REDIS_OK)
        frame_unavailable(s, "read position not stored: retry later");
}
