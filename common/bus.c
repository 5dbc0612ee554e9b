/* bus.c - the internal envelopes on Redis pub/sub (docs/internals.md).
 *
 * gateway -> router: {t:"text", u, g, c, to, data, cid}, packed here.
 * router/script -> gateway: {t:"u", u, f, s?, x?}, {t:"c", c, f, s?} or
 * {t:"m", f, u: [users], s: [seqs]?, x?},
 * packed in Lua (so `f` may arrive as str or bin, and key order is
 * arbitrary), decoded here. A pub/sub payload holds one or more envelopes one
 * after the other: bus_next_* decode the first and say how long it was.
 *
 * Decoders are strict about what they use (types, names, positive integers)
 * and ignore unknown keys, so a newer script can add a field without breaking
 * an older gateway. A known key given twice, or a non-string key, is refused,
 * as in proto.c. nil counts as absent. */
#include "bus.h"

#include <string.h>

typedef struct bus_field {
    const char *name;
    const msgpack_object *val;
} bus_field;

/* Unpacks one map and fills fields[] by key name. With used NULL, buf must
 * be exactly that map; else it is the first object of buf and *used gets its
 * length. Returns 0 or -1. */
static int bus_unpack(const char *buf, size_t len, msgpack_unpacked *u, bus_field *fields, size_t n,
                      size_t *used)
{
    size_t obj, off = 0;
    if (proto_mp_next(buf, len, &obj) != 0 || (!used && obj != len)) return -1;
    if (msgpack_unpack_next(u, buf, obj, &off) != MSGPACK_UNPACK_SUCCESS || off != obj) return -1;
    if (used) *used = obj;
    if (u->data.type != MSGPACK_OBJECT_MAP) return -1;
    for (uint32_t i = 0; i < u->data.via.map.size; i++) {
        const msgpack_object_kv *kv = &u->data.via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) return -1;
        for (size_t f = 0; f < n; f++) {
            size_t nl = strlen(fields[f].name);
            if (kv->key.via.str.size != nl || memcmp(kv->key.via.str.ptr, fields[f].name, nl))
                continue;
            if (fields[f].val) return -1; /* duplicate */
            if (kv->val.type != MSGPACK_OBJECT_NIL) fields[f].val = &kv->val;
            break;
        }
    }
    return 0;
}

static int bus_str(const msgpack_object *o, proto_str *out)
{
    if (!o || o->type != MSGPACK_OBJECT_STR) return -1;
    out->p = o->via.str.ptr;
    out->len = o->via.str.size;
    return 0;
}

/* A positive integer (>= 1, fits int64). */
static int bus_pos(const msgpack_object *o, uint64_t *out)
{
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return -1;
    if (o->via.u64 == 0 || o->via.u64 > (uint64_t)INT64_MAX) return -1;
    *out = o->via.u64;
    return 0;
}

static int bus_is(const proto_str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->len == n && memcmp(s->p, lit, n) == 0;
}

static const char *bus_kind_name(proto_kind k)
{
    switch (k) {
    case PROTO_EDIT:
        return "edit";
    case PROTO_DELETE:
        return "delete";
    case PROTO_REACT:
        return "react";
    default:
        return "text";
    }
}

void bus_enc_text(msgpack_packer *pk, const bus_text *m)
{
    const char *t = bus_kind_name(m->kind);
    msgpack_pack_map(pk, 7 + (m->ref > 0) + (m->kind == PROTO_REACT));
    proto_pack_str(pk, "t", 1);
    proto_pack_str(pk, t, strlen(t));
    proto_pack_str(pk, "u", 1);
    proto_pack_str(pk, m->from.p, m->from.len);
    proto_pack_str(pk, "g", 1);
    proto_pack_str(pk, m->gw.p, m->gw.len);
    proto_pack_str(pk, "c", 1);
    msgpack_pack_uint64(pk, m->conn);
    proto_pack_str(pk, "to", 2);
    proto_pack_str(pk, m->to.p, m->to.len);
    proto_pack_str(pk, "data", 4);
    proto_pack_str(pk, m->data.p, m->data.len);
    proto_pack_str(pk, "cid", 3);
    proto_pack_str(pk, m->cid.p, m->cid.len);
    if (m->ref > 0) {
        proto_pack_str(pk, "r", 1);
        msgpack_pack_int64(pk, m->ref);
    }
    if (m->kind == PROTO_REACT) {
        proto_pack_str(pk, "on", 2);
        if (m->on)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
    }
}

int bus_next_text(const char *buf, size_t len, msgpack_unpacked *u, bus_text *m, size_t *used)
{
    enum { T, U, G, C, TO, DATA, CID, R, ON, N };
    bus_field fl[N] = {{"t", NULL},    {"u", NULL},   {"g", NULL}, {"c", NULL}, {"to", NULL},
                       {"data", NULL}, {"cid", NULL}, {"r", NULL}, {"on", NULL}};
    proto_str t;
    memset(m, 0, sizeof *m);
    if (bus_unpack(buf, len, u, fl, N, used) < 0) return -1;
    if (bus_str(fl[T].val, &t) < 0) return -1;
    static const proto_kind kinds[] = {PROTO_TEXT, PROTO_EDIT, PROTO_DELETE, PROTO_REACT};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (bus_is(&t, bus_kind_name(kinds[i]))) m->kind = kinds[i];
    if (!m->kind) return -1;
    if (fl[R].val) {
        uint64_t r;
        if (bus_pos(fl[R].val, &r) < 0) return -1;
        m->ref = (int64_t)r;
    } else if (m->kind != PROTO_TEXT) {
        return -1; /* a change names its message */
    }
    if (m->kind == PROTO_REACT) {
        if (!fl[ON].val || fl[ON].val->type != MSGPACK_OBJECT_BOOLEAN) return -1;
        m->on = fl[ON].val->via.boolean;
    }
    if (bus_str(fl[U].val, &m->from) < 0 || !proto_valid_user(m->from.p, m->from.len)) return -1;
    if (bus_str(fl[G].val, &m->gw) < 0 || !proto_valid_gwid(m->gw.p, m->gw.len)) return -1;
    if (bus_pos(fl[C].val, &m->conn) < 0) return -1;
    if (bus_str(fl[TO].val, &m->to) < 0) return -1;
    if (!proto_valid_user(m->to.p, m->to.len) && !proto_valid_group(m->to.p, m->to.len)) return -1;
    if (bus_str(fl[DATA].val, &m->data) < 0 || !proto_valid_utf8(m->data.p, m->data.len)) return -1;
    /* cid may be empty: a dev-mode text without one */
    if (bus_str(fl[CID].val, &m->cid) < 0 || m->cid.len > PROTO_CID_MAX ||
        !proto_valid_utf8(m->cid.p, m->cid.len))
        return -1;
    return 0;
}

int bus_next_delivery(const char *buf, size_t len, msgpack_unpacked *u, bus_delivery *d,
                      size_t *used)
{
    enum { T, U, C, F, S, X, O, P, N };
    bus_field fl[N] = {{"t", NULL}, {"u", NULL}, {"c", NULL}, {"f", NULL},
                       {"s", NULL}, {"x", NULL}, {"o", NULL}, {"p", NULL}};
    proto_str t;
    memset(d, 0, sizeof *d);
    if (bus_unpack(buf, len, u, fl, N, used) < 0) return -1;
    if (bus_str(fl[T].val, &t) < 0 || t.len != 1) return -1;
    if (t.p[0] == BUS_HIDE) {
        d->t = BUS_HIDE;
        if (bus_str(fl[U].val, &d->user) < 0 || !proto_valid_user(d->user.p, d->user.len) ||
            bus_str(fl[P].val, &d->peer) < 0 || !proto_valid_user(d->peer.p, d->peer.len) ||
            !fl[O].val || fl[O].val->type != MSGPACK_OBJECT_BOOLEAN)
            return -1;
        d->hide = fl[O].val->via.boolean;
        return 0;
    }

    const msgpack_object *f = fl[F].val;
    if (!f) return -1;
    if (f->type == MSGPACK_OBJECT_STR) {
        d->frame.p = f->via.str.ptr;
        d->frame.len = f->via.str.size;
    } else if (f->type == MSGPACK_OBJECT_BIN) {
        d->frame.p = f->via.bin.ptr;
        d->frame.len = f->via.bin.size;
    } else {
        return -1;
    }
    if (d->frame.len == 0) return -1;

    if (fl[S].val && fl[S].val->type != MSGPACK_OBJECT_ARRAY) {
        uint64_t s;
        if (bus_pos(fl[S].val, &s) < 0) return -1;
        d->seq = (int64_t)s;
    } else if (fl[S].val && t.p[0] != BUS_TO_MANY) {
        return -1;
    }

    if (t.p[0] == BUS_TO_USER) {
        d->t = BUS_TO_USER;
        if (bus_str(fl[U].val, &d->user) < 0 || !proto_valid_user(d->user.p, d->user.len))
            return -1;
        if (fl[X].val && bus_str(fl[X].val, &d->except) < 0) return -1;
        return 0;
    }
    if (t.p[0] == BUS_TO_MANY) {
        const msgpack_object *us = fl[U].val;
        d->t = BUS_TO_MANY;
        if (!us || us->type != MSGPACK_OBJECT_ARRAY || us->via.array.size == 0) return -1;
        for (uint32_t i = 0; i < us->via.array.size; i++) {
            proto_str name;
            if (bus_str(&us->via.array.ptr[i], &name) < 0 || !proto_valid_user(name.p, name.len))
                return -1;
        }
        d->users = us;
        if (fl[S].val) { /* seq per user, not one seq */
            const msgpack_object *ss = fl[S].val;
            uint64_t v;
            d->seq = 0;
            if (ss->type != MSGPACK_OBJECT_ARRAY || ss->via.array.size != us->via.array.size)
                return -1;
            for (uint32_t i = 0; i < ss->via.array.size; i++)
                if (bus_pos(&ss->via.array.ptr[i], &v) < 0) return -1;
            d->seqs = ss;
        }
        if (fl[X].val && bus_str(fl[X].val, &d->except) < 0) return -1;
        return 0;
    }
    if (t.p[0] == BUS_TO_CONN) {
        d->t = BUS_TO_CONN;
        return bus_pos(fl[C].val, &d->conn);
    }
    return -1;
}

int bus_dec_text(const char *buf, size_t len, msgpack_unpacked *u, bus_text *m)
{
    return bus_next_text(buf, len, u, m, NULL);
}

int bus_dec_delivery(const char *buf, size_t len, msgpack_unpacked *u, bus_delivery *d)
{
    return bus_next_delivery(buf, len, u, d, NULL);
}
