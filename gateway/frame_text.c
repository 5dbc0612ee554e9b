/* frame_text.c - `text`, and the changes of a stored message (`edit`,
 * `delete`, `react`): to the router of the conversation's slot (rtq.h), which
 * stores them in order with the conversation's texts. The ack, or the error,
 * comes back through the gateway channel. On a Redis Cluster with a master
 * away, a text whose keys (the sender's, the other side's, the
 * conversation's) are on it is answered `unavailable` at once (its steps
 * would wait, then fail); the others go on. */
#include <sodium.h>
#include <string.h>

#include "bus.h"
#include "frame_handlers.h"
#include "keys.h"
#include "redis_link.h"
#include "rtq.h"

/* to the router of s's conversation with `to`, as bus_text m (from, gw and
 * conn are filled here) */
static void frame_route(gw_session *s, const proto_str *to, const proto_str *cid, bus_text *m)
{
    char name[PROTO_NAME_MAX + 2], conv[KEYS_MAX];
    memcpy(name, to->p, to->len);
    name[to->len] = '\0';
    /* a group's conversation key is its #name; the router checks membership */
    int clen = keys_conv(conv, sizeof conv, s->user, name);
    if (clen < 0) {
        sess_send_error(s, "bad_field", "to: invalid", cid);
        return;
    }
    char k_from[KEYS_MAX], k_to[KEYS_MAX], k_conv[KEYS_MAX];
    const char *keys[] = {keys_fmt(k_from, sizeof k_from, KEY_INBOX, s->user),
                          name[0] == '#' ? keys_fmt(k_to, sizeof k_to, KEY_GROUP_META, name)
                                         : keys_fmt(k_to, sizeof k_to, KEY_INBOX, name),
                          keys_fmt(k_conv, sizeof k_conv, KEY_HISTORY, conv)};
    if (!rl_keys_up(3, keys)) {
        rtq_refuse_text(s, cid->p, cid->len);
        return;
    }
    const char *gwid = frame_cfg()->gwid;
    m->from = (proto_str){s->user, strlen(s->user)};
    m->gw = (proto_str){gwid, strlen(gwid)};
    m->to = *to;
    m->cid = *cid;
    m->conn = s->conn;
    pending_remember(&s->texts, cid, to);
    if (rtq_add(keys_slot(conv, (size_t)clen), m) < 0) rtq_refuse_text(s, cid->p, cid->len);
}

void frame_change(gw_session *s, const proto_frame *f)
{
    bus_text m = {.kind = f->kind, .ref = f->id, .on = f->on};
    m.data = f->kind == PROTO_EDIT    ? f->data
             : f->kind == PROTO_REACT ? f->emoji
                                      : (proto_str){"", 0};
    frame_route(s, &f->with, &f->cid, &m);
}

void frame_text(gw_session *s, const proto_frame *f)
{
    proto_str cid = f->cid;
    char devcid[40];
    if (!cid.len) { /* dev-auth mode: the seed sent no cid; make one */
        unsigned char rnd[12];
        randombytes_buf(rnd, sizeof rnd);
        memcpy(devcid, "dev-", 4);
        sodium_bin2hex(devcid + 4, sizeof devcid - 4, rnd, sizeof rnd);
        cid.p = devcid;
        cid.len = strlen(devcid);
    }
    bus_text m = {.kind = PROTO_TEXT, .data = f->data, .ref = f->reply_to};
    frame_route(s, &f->to, &cid, &m);
}
