/* frame_text.c - `text`: to the router of its conversation's slot (rtq.h).
 * The ack, or the error, comes back through the gateway channel. */
#include <sodium.h>
#include <string.h>

#include "bus.h"
#include "frame_handlers.h"
#include "keys.h"
#include "rtq.h"

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
    char to[PROTO_NAME_MAX + 2], conv[KEYS_MAX];
    memcpy(to, f->to.p, f->to.len);
    to[f->to.len] = '\0';
    /* a group's conversation key is its #name; the router checks membership */
    int clen = keys_conv(conv, sizeof conv, s->user, to);
    if (clen < 0) {
        sess_send_error(s, "bad_field", "to: invalid", &cid);
        return;
    }
    const char *gwid = frame_cfg()->gwid;
    bus_text m = {.from = {s->user, strlen(s->user)},
                  .gw = {gwid, strlen(gwid)},
                  .to = f->to,
                  .data = f->data,
                  .cid = cid,
                  .conn = s->conn};
    pending_remember(&s->texts, &cid, &f->to);
    if (rtq_add(keys_slot(conv, (size_t)clen), &m) < 0) rtq_refuse_text(s, cid.p, cid.len);
}
