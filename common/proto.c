/* proto.c - decoding and validating client frames, encoding server frames
 * (docs/protocol.md).
 *
 * Decoding is two steps. proto_mp_check() first walks the raw bytes once: it
 * proves they hold exactly one complete msgpack object and that no container
 * claims more elements than there are bytes left, so msgpack-c (which
 * allocates a container's element array up front) can never be made to
 * allocate more than a small multiple of the frame size. Only then is the
 * buffer unpacked and each field checked against the protocol.
 *
 * Decisions where the contract is silent (also in docs/protocol.md):
 * - a map key that is not a msgpack str is bad_field;
 * - a known field given twice in one map is bad_field (no "last wins": two
 *   parsers must never disagree on what a frame says); unknown fields, even
 *   repeated, are ignored;
 * - nil for an optional field counts as absent (JS encoders turn `undefined`
 *   into nil); nil for a required field counts as missing;
 * - text `data` must be 1 or more bytes: an empty message is bad_field;
 * - `cid` and `epoch` lengths are counted in bytes;
 * - group `members` may be empty for `create` (the creator alone), must hold
 *   at least one name for `add`, `remove`, `promote` and `demote`, is ignored
 *   for `join` and `leave`; `open` is read only for `create` but must be a
 *   bool wherever it appears;
 * - block `user` must be a user name other than the sender's (checked by the
 *   gateway, which knows the sender) and `on` a bool;
 * - edit `data` follows text's rule (1 byte or more: deleting is how a message
 *   is emptied); react `on` is required; edit, delete and react always need a
 *   `cid` (also in development auth mode). */
#include "proto.h"

#include <stdio.h>
#include <string.h>

/* ---- validation helpers ---- */

int proto_valid_user(const char *p, size_t len)
{
    if (!p || len < 1 || len > PROTO_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int proto_valid_group(const char *p, size_t len)
{
    return p && len >= 2 && p[0] == '#' && proto_valid_user(p + 1, len - 1);
}

int proto_valid_gwid(const char *p, size_t len)
{
    if (!p || len < 1 || len > PROTO_GWID_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF, no truncated sequence. NUL bytes are valid UTF-8 and accepted. */
int proto_valid_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    if (!s && len) return 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0) lo = 0xA0; /* overlong */
            if (c == 0xED) hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0) lo = 0x90; /* overlong */
            if (c == 0xF4) hi = 0x8F; /* > U+10FFFF */
        } else {
            return 0; /* continuation byte, C0/C1 overlong, F5..FF */
        }
        if (len - i < n) return 0;
        if (p[i + 1] < lo || p[i + 1] > hi) return 0;
        for (size_t k = 2; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
        }
        i += n;
    }
    return 1;
}

/* ---- raw msgpack pre-check ---- */

static uint64_t proto_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Returns 0 when buf[0..len) is exactly one complete msgpack object whose
 * containers never announce more elements than bytes remain; 1 when it is a
 * complete object followed by more bytes; -1 otherwise (truncated, reserved
 * byte 0xc1, implausible counts). */
int proto_mp_check(const char *buf, size_t len)
{
    size_t used;
    if (proto_mp_next(buf, len, &used) != 0) return -1;
    return used == len ? 0 : 1;
}

/* The walk behind proto_mp_check: the length of the first object in buf. */
int proto_mp_next(const char *buf, size_t len, size_t *used)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t off = 0;
    uint64_t items = 1; /* objects still to read, over all nesting levels */

    while (items > 0) {
        if (off >= len) return -1;
        unsigned char b = p[off++];
        items--;
        uint64_t skip = 0, add = 0; /* payload bytes; new child objects */
        size_t hdr = 0;             /* length-field bytes after b */
        int kind = 0;               /* 0 fixed, 1 str/bin, 2 ext, 3 array, 4 map */

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if (b <= 0x8f) {
            add = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            add = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4:
            case 0xd9:
                hdr = 1;
                kind = 1;
                break;
            case 0xc5:
            case 0xda:
                hdr = 2;
                kind = 1;
                break;
            case 0xc6:
            case 0xdb:
                hdr = 4;
                kind = 1;
                break;
            case 0xc7:
                hdr = 1;
                kind = 2;
                break;
            case 0xc8:
                hdr = 2;
                kind = 2;
                break;
            case 0xc9:
                hdr = 4;
                kind = 2;
                break;
            case 0xca:
                skip = 4;
                break;
            case 0xcb:
                skip = 8;
                break;
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4:
                skip = 2;
                break;
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
                hdr = 2;
                kind = 3;
                break;
            case 0xdd:
                hdr = 4;
                kind = 3;
                break;
            case 0xde:
                hdr = 2;
                kind = 4;
                break;
            case 0xdf:
                hdr = 4;
                kind = 4;
                break;
            default:
                return -1; /* 0xc1: never used */
            }
        }
        if (hdr) {
            if (len - off < hdr) return -1;
            uint64_t n = proto_be(p + off, hdr);
            off += hdr;
            if (kind == 1)
                skip = n;
            else if (kind == 2)
                skip = n + 1; /* type byte + data */
            else if (kind == 3)
                add = n;
            else
                add = 2 * n;
        }
        if (skip > len - off) return -1;
        off += (size_t)skip;
        items += add;
        /* every pending object needs at least one byte */
        if (items > len - off) return -1;
    }
    *used = off;
    return 0;
}

/* ---- field extraction ---- */

typedef enum {
    F_KIND,
    F_TO,
    F_DATA,
    F_CID,
    F_AFTER,
    F_EPOCH,
    F_WITH,
    F_UPTO,
    F_BEFORE,
    F_LIMIT,
    F_OP,
    F_NAME,
    F_MEMBERS,
    F_OPEN,
    F_USER,
    F_ON,
    F_ID,
    F_EMOJI,
    F_REPLY_TO,
    F__COUNT
} proto_field;

static const char *const proto_field_names[F__COUNT] = {
    "kind", "to",   "data",    "cid",  "after", "epoch", "with", "upto",  "before",   "limit",
    "op",   "name", "members", "open", "user",  "on",    "id",   "emoji", "reply_to",
};

static int proto_key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static int proto_fail(proto_error *err, const char *code, int close, const char *msg)
{
    err->code = code;
    err->close = close;
    snprintf(err->message, sizeof err->message, "%s", msg);
    return -1;
}

static int proto_bad(proto_error *err, const char *field, const char *what)
{
    err->code = "bad_field";
    err->close = 0;
    snprintf(err->message, sizeof err->message, "field '%s' %s", field, what);
    return -1;
}

/* Collects the known fields of a map; nil values count as absent. */
static int proto_collect(const msgpack_object *map, const msgpack_object *fields[F__COUNT],
                         proto_error *err)
{
    int seen[F__COUNT] = {0};
    memset(fields, 0, sizeof(fields[0]) * F__COUNT);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return proto_fail(err, "bad_field", 0, "map keys must be strings");
        for (int f = 0; f < F__COUNT; f++) {
            if (!proto_key_is(&kv->key, proto_field_names[f])) continue;
            if (seen[f]) return proto_bad(err, proto_field_names[f], "appears twice");
            seen[f] = 1;
            if (kv->val.type != MSGPACK_OBJECT_NIL) fields[f] = &kv->val;
            break;
        }
    }
    return 0;
}

/* A msgpack str holding valid UTF-8 of min..max bytes. */
static int proto_get_str(const msgpack_object *o, const char *name, size_t min, size_t max,
                         proto_str *out, proto_error *err)
{
    if (!o) return proto_bad(err, name, "is missing");
    if (o->type != MSGPACK_OBJECT_STR) return proto_bad(err, name, "must be a string");
    if (!proto_valid_utf8(o->via.str.ptr, o->via.str.size))
        return proto_bad(err, name, "is not valid UTF-8");
    if (o->via.str.size < min) return proto_bad(err, name, "is empty");
    if (o->via.str.size > max) return proto_bad(err, name, "is too long");
    out->p = o->via.str.ptr;
    out->len = o->via.str.size;
    return 0;
}

/* A user name or a #group. */
static int proto_get_peer(const msgpack_object *o, const char *name, proto_str *out,
                          proto_error *err)
{
    if (proto_get_str(o, name, 0, SIZE_MAX, out, err) < 0) return -1;
    if (!proto_valid_user(out->p, out->len) && !proto_valid_group(out->p, out->len))
        return proto_bad(err, name, "must be a user name (" PROTO_USER_PATTERN ") or #group");
    return 0;
}

/* A msgpack integer (never a float) within [min, max]. */
static int proto_get_int(const msgpack_object *o, const char *name, int64_t min, int64_t max,
                         int64_t *out, proto_error *err)
{
    if (!o) return proto_bad(err, name, "is missing");
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX) return proto_bad(err, name, "is out of range");
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = o->via.i64;
    } else {
        return proto_bad(err, name, "must be an integer");
    }
    if (v < min || v > max) return proto_bad(err, name, "is out of range");
    *out = v;
    return 0;
}

static int proto_dec_text(const msgpack_object **fl, int flags, proto_frame *f, proto_error *err)
{
    /* The cid first, so any later error can carry it back to the client. */
    if (fl[F_CID] || !(flags & PROTO_ALLOW_NO_CID)) {
        if (proto_get_str(fl[F_CID], "cid", 1, PROTO_CID_MAX, &f->cid, err) < 0) return -1;
        err->cid = f->cid;
    }
    if (proto_get_peer(fl[F_TO], "to", &f->to, err) < 0) return -1;
    if (fl[F_REPLY_TO] &&
        proto_get_int(fl[F_REPLY_TO], "reply_to", 1, INT64_MAX, &f->reply_to, err) < 0)
        return -1;
    return proto_get_str(fl[F_DATA], "data", 1, SIZE_MAX, &f->data, err);
}

/* edit, delete, react: cid (first, as for text), with, id, then their own */
static int proto_dec_change(const msgpack_object **fl, proto_frame *f, proto_error *err)
{
    if (proto_get_str(fl[F_CID], "cid", 1, PROTO_CID_MAX, &f->cid, err) < 0) return -1;
    err->cid = f->cid;
    if (proto_get_peer(fl[F_WITH], "with", &f->with, err) < 0) return -1;
    if (proto_get_int(fl[F_ID], "id", 1, INT64_MAX, &f->id, err) < 0) return -1;
    if (f->kind == PROTO_EDIT) return proto_get_str(fl[F_DATA], "data", 1, SIZE_MAX, &f->data, err);
    if (f->kind != PROTO_REACT) return 0;
    if (proto_get_str(fl[F_EMOJI], "emoji", 1, PROTO_EMOJI_MAX, &f->emoji, err) < 0) return -1;
    const msgpack_object *o = fl[F_ON];
    if (!o) return proto_bad(err, "on", "is missing");
    if (o->type != MSGPACK_OBJECT_BOOLEAN) return proto_bad(err, "on", "must be a bool");
    f->on = o->via.boolean;
    return 0;
}

static int proto_dec_group(const msgpack_object **fl, proto_frame *f, proto_error *err)
{
    static const char *const ops[] = {"create", "join",    "leave", "add",
                                      "remove", "promote", "demote"};
    proto_str op;
    if (proto_get_str(fl[F_OP], "op", 1, 16, &op, err) < 0) return -1;
    f->op = 0;
    for (int i = 0; i < (int)(sizeof ops / sizeof *ops); i++) {
        if (op.len == strlen(ops[i]) && memcmp(op.p, ops[i], op.len) == 0)
            f->op = (proto_group_op)(PROTO_OP_CREATE + i);
    }
    if (!f->op)
        return proto_bad(err, "op", "must be create, join, leave, add, remove, promote or demote");

    if (proto_get_str(fl[F_NAME], "name", 1, PROTO_NAME_MAX + 1, &f->name, err) < 0) return -1;
    if (!proto_valid_group(f->name.p, f->name.len))
        return proto_bad(err, "name", "must be #name with name " PROTO_USER_PATTERN);

    const msgpack_object *o = fl[F_OPEN];
    if (o && o->type != MSGPACK_OBJECT_BOOLEAN) return proto_bad(err, "open", "must be a bool");
    f->open = f->op == PROTO_OP_CREATE && o ? o->via.boolean : 0;

    if (f->op == PROTO_OP_JOIN || f->op == PROTO_OP_LEAVE) return 0;
    o = fl[F_MEMBERS];
    if (!o) return proto_bad(err, "members", "is missing");
    if (o->type != MSGPACK_OBJECT_ARRAY) return proto_bad(err, "members", "must be an array");
    if (o->via.array.size > PROTO_MEMBERS_MAX) return proto_bad(err, "members", "is too long");
    if (f->op != PROTO_OP_CREATE && o->via.array.size == 0)
        return proto_bad(err, "members", "is empty");
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *m = &o->via.array.ptr[i];
        if (m->type != MSGPACK_OBJECT_STR || !proto_valid_user(m->via.str.ptr, m->via.str.size))
            return proto_bad(err, "members", "must hold user names only");
    }
    f->members = o;
    f->nmembers = o->via.array.size;
    return 0;
}

int proto_decode(const char *buf, size_t len, msgpack_unpacked *u, int flags, proto_frame *f,
                 proto_error *err)
{
    memset(f, 0, sizeof *f);
    memset(err, 0, sizeof *err);

    int chk = proto_mp_check(buf, len);
    if (chk > 0) return proto_fail(err, "bad_frame", 1007, "trailing bytes after the frame");
    if (chk < 0) return proto_fail(err, "bad_frame", 1007, "not a msgpack value");
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(u, buf, len, &off);
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len)
        return proto_fail(err, "bad_frame", 1007, "not a msgpack value");
    if (u->data.type != MSGPACK_OBJECT_MAP)
        return proto_fail(err, "bad_frame", 1007, "frame is not a map");

    const msgpack_object *fl[F__COUNT];
    if (proto_collect(&u->data, fl, err) < 0) return -1;

    proto_str kind;
    if (proto_get_str(fl[F_KIND], "kind", 0, SIZE_MAX, &kind, err) < 0) return -1;

    static const struct {
        const char *name;
        proto_kind kind;
    } kinds[] = {
        {"text", PROTO_TEXT},     {"sync", PROTO_SYNC},       {"read", PROTO_READ},
        {"typing", PROTO_TYPING}, {"history", PROTO_HISTORY}, {"group", PROTO_GROUP},
        {"block", PROTO_BLOCK},   {"edit", PROTO_EDIT},       {"delete", PROTO_DELETE},
        {"react", PROTO_REACT},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (kind.len == strlen(kinds[i].name) && memcmp(kind.p, kinds[i].name, kind.len) == 0)
            f->kind = kinds[i].kind;
    }

    switch (f->kind) {
    case PROTO_TEXT:
        return proto_dec_text(fl, flags, f, err);
    case PROTO_EDIT:
    case PROTO_DELETE:
    case PROTO_REACT:
        return proto_dec_change(fl, f, err);
    case PROTO_SYNC:
        if (proto_get_int(fl[F_AFTER], "after", 0, INT64_MAX, &f->after, err) < 0) return -1;
        return proto_get_str(fl[F_EPOCH], "epoch", 1, PROTO_EPOCH_MAX, &f->epoch, err);
    case PROTO_READ:
        if (proto_get_peer(fl[F_WITH], "with", &f->with, err) < 0) return -1;
        return proto_get_int(fl[F_UPTO], "upto", 1, INT64_MAX, &f->upto, err);
    case PROTO_TYPING:
        return proto_get_peer(fl[F_TO], "to", &f->to, err);
    case PROTO_HISTORY:
        if (proto_get_peer(fl[F_WITH], "with", &f->with, err) < 0) return -1;
        f->before = 0;
        if (fl[F_BEFORE] &&
            proto_get_int(fl[F_BEFORE], "before", 1, INT64_MAX, &f->before, err) < 0)
            return -1;
        f->limit = PROTO_HISTORY_DEFAULT;
        if (fl[F_LIMIT] &&
            proto_get_int(fl[F_LIMIT], "limit", 1, PROTO_HISTORY_MAX, &f->limit, err) < 0)
            return -1;
        return 0;
    case PROTO_GROUP:
        return proto_dec_group(fl, f, err);
    case PROTO_BLOCK:
        if (proto_get_str(fl[F_USER], "user", 1, PROTO_NAME_MAX, &f->user, err) < 0) return -1;
        if (!proto_valid_user(f->user.p, f->user.len))
            return proto_bad(err, "user", "must be a user name (" PROTO_USER_PATTERN ")");
        if (!fl[F_ON]) return proto_bad(err, "on", "is missing");
        if (fl[F_ON]->type != MSGPACK_OBJECT_BOOLEAN) return proto_bad(err, "on", "must be a bool");
        f->on = fl[F_ON]->via.boolean;
        return 0;
    }

    /* Echo the kind only when it is short printable ASCII. */
    int printable = kind.len <= 32;
    for (size_t i = 0; printable && i < kind.len; i++)
        printable = kind.p[i] >= 0x20 && kind.p[i] < 0x7f && kind.p[i] != '"';
    err->code = "unknown_kind";
    err->close = 0;
    if (printable)
        snprintf(err->message, sizeof err->message, "unknown kind \"%.*s\"", (int)kind.len, kind.p);
    else
        snprintf(err->message, sizeof err->message, "unknown kind");
    return -1;
}

/* ---- encoders ---- */

void proto_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void proto_pack_cstr(msgpack_packer *pk, const char *s)
{
    proto_pack_str(pk, s, strlen(s));
}

static void proto_pack_contacts(msgpack_packer *pk, const proto_contact *users, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const proto_contact *u = &users[i];
        int group = u->role != NULL;
        msgpack_pack_map(pk, 4 + (u->read > 0) + (u->peer_read > 0) + (u->mentions > 0) +
                                 (group ? 2 + (u->owner_len > 0) + (u->admins_more != 0) : 0));
        proto_pack_cstr(pk, "username");
        proto_pack_str(pk, users[i].name, users[i].len);
        proto_pack_cstr(pk, "online");
        if (users[i].online)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        proto_pack_cstr(pk, "unread");
        msgpack_pack_int64(pk, users[i].unread);
        if (u->mentions > 0) {
            proto_pack_cstr(pk, "mentions");
            msgpack_pack_int64(pk, u->mentions);
        }
        if (users[i].read > 0) {
            proto_pack_cstr(pk, "read");
            msgpack_pack_int64(pk, users[i].read);
        }
        if (users[i].peer_read > 0) {
            proto_pack_cstr(pk, "peer_read");
            msgpack_pack_int64(pk, users[i].peer_read);
        }
        proto_pack_cstr(pk, "last");
        if (users[i].last_len)
            pk->callback(pk->data, users[i].last, users[i].last_len);
        else
            msgpack_pack_nil(pk);
        if (!group) continue;
        proto_pack_cstr(pk, "role");
        proto_pack_cstr(pk, u->role);
        if (u->owner_len) {
            proto_pack_cstr(pk, "owner");
            proto_pack_str(pk, u->owner, u->owner_len);
        }
        proto_pack_cstr(pk, "admins");
        msgpack_pack_array(pk, u->nadmins);
        for (size_t j = 0; j < u->nadmins; j++)
            proto_pack_str(pk, u->admins[j].p, u->admins[j].len);
        if (u->admins_more) {
            proto_pack_cstr(pk, "admins_more");
            msgpack_pack_true(pk);
        }
    }
}

void proto_enc_hello(msgpack_packer *pk, const char *user, int64_t seq, const char *epoch,
                     size_t epoch_len, const proto_contact *users, size_t n, int more,
                     const proto_str *blocked, size_t nblocked)
{
    msgpack_pack_map(pk, 5 + (more != 0) + (nblocked > 0));
    proto_pack_cstr(pk, "kind");
    proto_pack_cstr(pk, "hello");
    proto_pack_cstr(pk, "user");
    proto_pack_cstr(pk, user);
    proto_pack_cstr(pk, "seq");
    msgpack_pack_int64(pk, seq);
    proto_pack_cstr(pk, "epoch");
    proto_pack_str(pk, epoch, epoch_len);
    proto_pack_cstr(pk, "users");
    proto_pack_contacts(pk, users, n);
    if (more) {
        proto_pack_cstr(pk, "more");
        msgpack_pack_true(pk);
    }
    if (nblocked) {
        proto_pack_cstr(pk, "blocked");
        msgpack_pack_array(pk, nblocked);
        for (size_t i = 0; i < nblocked; i++)
            proto_pack_str(pk, blocked[i].p, blocked[i].len);
    }
}

void proto_enc_users(msgpack_packer *pk, const proto_contact *users, size_t n, int more)
{
    msgpack_pack_map(pk, 3);
    proto_pack_cstr(pk, "kind");
    proto_pack_cstr(pk, "users");
    proto_pack_cstr(pk, "users");
    proto_pack_contacts(pk, users, n);
    proto_pack_cstr(pk, "more");
    if (more)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void proto_enc_history(msgpack_packer *pk, const char *with, size_t with_len,
                       const char *const *msgs, const size_t *lens, size_t n, int more)
{
    msgpack_pack_map(pk, 4);
    proto_pack_cstr(pk, "kind");
    proto_pack_cstr(pk, "history");
    proto_pack_cstr(pk, "with");
    proto_pack_str(pk, with, with_len);
    proto_pack_cstr(pk, "messages");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) /* stored frames, spliced as they are */
        pk->callback(pk->data, msgs[i], lens[i]);
    proto_pack_cstr(pk, "more");
    if (more)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

int proto_add_seq(const char *frame, size_t len, int64_t seq, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    size_t hdr;
    uint32_t n;
    const unsigned char *b = (const unsigned char *)frame;
    if (len < 1) return -1;
    if ((b[0] & 0xf0) == 0x80) {
        n = b[0] & 0x0f;
        hdr = 1;
    } else if (b[0] == 0xde && len >= 3) {
        n = (uint32_t)b[1] << 8 | b[2];
        hdr = 3;
    } else if (b[0] == 0xdf && len >= 5) {
        n = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
        hdr = 5;
    } else {
        return -1;
    }
    if (n == UINT32_MAX) return -1;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n + 1);
    proto_pack_cstr(&pk, "seq");
    msgpack_pack_int64(&pk, seq);
    return msgpack_sbuffer_write(out, frame + hdr, len - hdr);
}

void proto_enc_error(msgpack_packer *pk, const char *code, const char *message,
                     const proto_str *cid)
{
    int with_cid = cid && cid->len > 0;
    msgpack_pack_map(pk, with_cid ? 4 : 3);
    proto_pack_cstr(pk, "kind");
    proto_pack_cstr(pk, "error");
    proto_pack_cstr(pk, "code");
    proto_pack_cstr(pk, code);
    proto_pack_cstr(pk, "message");
    proto_pack_cstr(pk, message ? message : "");
    if (with_cid) {
        proto_pack_cstr(pk, "cid");
        proto_pack_str(pk, cid->p, cid->len);
    }
}

void proto_enc_sync_end(msgpack_packer *pk, int recovered, int64_t seq)
{
    msgpack_pack_map(pk, 3);
    proto_pack_cstr(pk, "kind");
    proto_pack_cstr(pk, "sync");
    proto_pack_cstr(pk, "recovered");
    if (recovered)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    proto_pack_cstr(pk, "seq");
    msgpack_pack_int64(pk, seq);
}

void proto_enc_presence(msgpack_packer *pk, int online, const char *user, size_t len)
{
    msgpack_pack_map(pk, 2);
    proto_pack_cstr(pk, "kind");
    proto_pack_cstr(pk, online ? "online" : "offline");
    proto_pack_cstr(pk, "from");
    proto_pack_str(pk, user, len);
}

void proto_enc_typing(msgpack_packer *pk, const char *from, size_t flen, const char *to,
                      size_t tlen)
{
    msgpack_pack_map(pk, 3);
    proto_pack_cstr(pk, "kind");
    proto_pack_cstr(pk, "typing");
    proto_pack_cstr(pk, "from");
    proto_pack_str(pk, from, flen);
    proto_pack_cstr(pk, "to");
    proto_pack_str(pk, to, tlen);
}

int proto_peek_fields(const char *buf, size_t len, proto_str *kind, proto_str *from, proto_str *to,
                      proto_str *cid, int64_t *seq)
{
    msgpack_unpacked u;
    size_t off = 0;
    int rc = -1;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &u.data.via.map;
        rc = 0;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR) continue;
            proto_str *dst = NULL;
            const char *kp = k->via.str.ptr;
            uint32_t kl = k->via.str.size;
            if (kl == 4 && !memcmp(kp, "kind", 4))
                dst = kind;
            else if (kl == 4 && !memcmp(kp, "from", 4))
                dst = from;
            else if (kl == 2 && !memcmp(kp, "to", 2))
                dst = to;
            else if (kl == 3 && !memcmp(kp, "cid", 3))
                dst = cid;
            else if (kl == 3 && !memcmp(kp, "seq", 3) && seq) {
                if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) *seq = (int64_t)v->via.u64;
                continue;
            }
            if (dst && (v->type == MSGPACK_OBJECT_STR || v->type == MSGPACK_OBJECT_BIN)) {
                /* the strings point into buf: the zone only holds the tree */
                dst->p = v->via.str.ptr;
                dst->len = v->via.str.size;
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

int proto_is_map(const char *buf, size_t len)
{
    unsigned char b = len ? (unsigned char)buf[0] : 0;
    return len && ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) && proto_mp_check(buf, len) == 0;
}
