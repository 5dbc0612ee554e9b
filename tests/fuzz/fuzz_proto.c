/* fuzz_proto.c - libFuzzer target for everything that decodes bytes a peer
 * controls: client frames (proto_decode) and the pub/sub envelopes
 * (bus_dec_delivery, bus_dec_text). For each refused frame the error frame is
 * encoded as the gateway would, and checked to decode again; accepted frames
 * are checked against the invariants the gateway relies on.
 *
 * proto.c and bus.c are compiled into this file (not taken from
 * libparley_common) so that libFuzzer's coverage instrumentation, which
 * tests/CMakeLists.txt adds to fuzz targets only, covers them. The library's
 * copies are then never pulled in by the linker.
 *
 * Build: cmake -DPARLEY_FUZZ=ON -DCMAKE_C_COMPILER=clang ...
 * Run:   ./fuzz_proto -max_total_time=60 -dict=tests/fuzz/proto.dict \
 *            /tmp/corpus tests/fuzz/corpus/proto
 * (new inputs go to the first directory; keep the committed seeds few.) */
#include "../../common/bus.c"
#include "../../common/proto.c"

#include <stdlib.h>

static void fuzz_check_str(proto_str s, const char *buf, size_t len)
{
    if (s.len && (s.p < buf || s.p + s.len > buf + len)) abort(); /* points into the input */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);

    for (int flags = 0; flags <= PROTO_ALLOW_NO_CID; flags++) {
        proto_frame f;
        proto_error e;
        if (proto_decode(buf, size, &u, flags, &f, &e) == 0) {
            fuzz_check_str(f.to, buf, size);
            fuzz_check_str(f.data, buf, size);
            fuzz_check_str(f.cid, buf, size);
            if (f.kind == PROTO_TEXT) {
                if (!proto_valid_utf8(f.data.p, f.data.len) || f.data.len == 0) abort();
                if (f.cid.len > PROTO_CID_MAX) abort();
                if (!flags && f.cid.len == 0) abort();
            }
            if (f.kind == PROTO_HISTORY && (f.limit < 1 || f.limit > PROTO_HISTORY_MAX)) abort();
            if (f.kind == PROTO_GROUP && f.nmembers > PROTO_MEMBERS_MAX) abort();
            continue;
        }
        if (!e.code || (e.close != 0 && e.close != 1007)) abort();
        fuzz_check_str(e.cid, buf, size);

        /* the error frame the gateway would send must itself decode */
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        proto_enc_error(&pk, e.code, e.message, &e.cid);
        msgpack_unpacked eu;
        msgpack_unpacked_init(&eu);
        size_t off = 0;
        if (msgpack_unpack_next(&eu, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS ||
            off != sb.size || eu.data.type != MSGPACK_OBJECT_MAP)
            abort();
        /* and every string in it is valid UTF-8 (clients decode it as text) */
        for (uint32_t i = 0; i < eu.data.via.map.size; i++) {
            const msgpack_object *v = &eu.data.via.map.ptr[i].val;
            if (v->type != MSGPACK_OBJECT_STR || !proto_valid_utf8(v->via.str.ptr, v->via.str.size))
                abort();
        }
        msgpack_unpacked_destroy(&eu);
        msgpack_sbuffer_destroy(&sb);
    }

    bus_delivery d;
    if (bus_dec_delivery(buf, size, &u, &d) == 0) {
        fuzz_check_str(d.frame, buf, size);
        if (d.frame.len == 0 || (d.t != BUS_TO_USER && d.t != BUS_TO_CONN && d.t != BUS_TO_MANY))
            abort();
        if (d.t == BUS_TO_MANY) {
            if (!d.users || d.users->type != MSGPACK_OBJECT_ARRAY || d.users->via.array.size == 0)
                abort();
            if (d.seqs && d.seqs->via.array.size != d.users->via.array.size) abort();
        }
        /* a member's copy (seq added) of any frame that is a complete map
         * is a complete map with one more entry */
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (proto_mp_check(d.frame.p, d.frame.len) == 0 &&
            proto_add_seq(d.frame.p, d.frame.len, 7, &sb) == 0) {
            msgpack_unpacked fu, su;
            size_t o1 = 0, o2 = 0;
            msgpack_unpacked_init(&fu);
            msgpack_unpacked_init(&su);
            if (msgpack_unpack_next(&fu, d.frame.p, d.frame.len, &o1) == MSGPACK_UNPACK_SUCCESS &&
                fu.data.type == MSGPACK_OBJECT_MAP &&
                (msgpack_unpack_next(&su, sb.data, sb.size, &o2) != MSGPACK_UNPACK_SUCCESS ||
                 o2 != sb.size || su.data.type != MSGPACK_OBJECT_MAP ||
                 su.data.via.map.size != fu.data.via.map.size + 1))
                abort();
            msgpack_unpacked_destroy(&fu);
            msgpack_unpacked_destroy(&su);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    bus_text t;
    if (bus_dec_text(buf, size, &u, &t) == 0) {
        if (t.conn == 0 || !proto_valid_user(t.from.p, t.from.len)) abort();
        /* re-encode and decode again: same envelope */
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        bus_enc_text(&pk, &t);
        msgpack_unpacked u2;
        msgpack_unpacked_init(&u2);
        bus_text t2;
        if (bus_dec_text(sb.data, sb.size, &u2, &t2) != 0 || t2.conn != t.conn ||
            t2.data.len != t.data.len || memcmp(t2.data.p, t.data.p, t.data.len) != 0)
            abort();
        msgpack_unpacked_destroy(&u2);
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_unpacked_destroy(&u);
    return 0;
}
