/* test_bus.c - pub/sub envelopes: text round trip, deliveries as Lua
 * cmsgpack builds them (str or bin frame, any key order), malformed ones,
 * payloads holding several envelopes. */
#include "bus.h"
#define UNIT_WITH_BUFS
#include "unit.h"

static int str_is(proto_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static int deliv(const char *spec, bus_delivery *d)
{
    msgpack_sbuffer_clear(&sb);
    mp_build(&sb, spec);
    return bus_dec_delivery(sb.data, sb.size, &up, d);
}

static int text(const char *spec, bus_text *m)
{
    msgpack_sbuffer_clear(&sb);
    mp_build(&sb, spec);
    return bus_dec_text(sb.data, sb.size, &up, m);
}

#define S(lit) ((proto_str){lit, sizeof(lit) - 1})

static void text_round_trip(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bus_text in = {.from = S("alice"),
                   .gw = S("gw-1:8080"),
                   .to = S("#dev"),
                   .data = S("h\xc3\xa9llo"),
                   .cid = S("c1"),
                   .conn = 42},
             out;

    msgpack_sbuffer_clear(&sb);
    bus_enc_text(&pk, &in);
    int rc = bus_dec_text(sb.data, sb.size, &up, &out);
    CHECK(rc == 0 && str_is(out.from, "alice") && str_is(out.gw, "gw-1:8080") &&
              str_is(out.to, "#dev") && str_is(out.data, "h\xc3\xa9llo") && str_is(out.cid, "c1") &&
              out.conn == 42,
          "text round trip");
    in.cid = S("");
    in.conn = UINT64_C(1) << 40;
    msgpack_sbuffer_clear(&sb);
    bus_enc_text(&pk, &in);
    rc = bus_dec_text(sb.data, sb.size, &up, &out);
    CHECK(rc == 0 && out.cid.len == 0 && out.conn == (UINT64_C(1) << 40), "empty cid, big conn");
}

/* the changes (edit, delete, react) and a text's reply_to: each kind its own
 * t, the target in r; a change without r, or a react without a bool on, is
 * malformed */
static void change_round_trip(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bus_text in = {.from = S("alice"),
                   .gw = S("gw1"),
                   .to = S("bob"),
                   .data = S("x"),
                   .cid = S("c1"),
                   .conn = 3,
                   .ref = 9,
                   .on = 1,
                   .kind = PROTO_REACT},
             out;
    static const proto_kind kinds[] = {PROTO_TEXT, PROTO_EDIT, PROTO_DELETE, PROTO_REACT};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        in.kind = kinds[i];
        msgpack_sbuffer_clear(&sb);
        bus_enc_text(&pk, &in);
        int rc = bus_dec_text(sb.data, sb.size, &up, &out);
        CHECK(rc == 0 && out.kind == kinds[i] && out.ref == 9 &&
                  out.on == (kinds[i] == PROTO_REACT),
              "kind %d round trip", (int)kinds[i]);
    }
    in.kind = 0; /* 0 is a text */
    in.ref = 0;
    msgpack_sbuffer_clear(&sb);
    bus_enc_text(&pk, &in);
    CHECK(bus_dec_text(sb.data, sb.size, &up, &out) == 0 && out.kind == PROTO_TEXT && out.ref == 0,
          "a text without reply_to");
    bus_text m;
    CHECK(text("{7 s:t s:edit s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid s:c", &m) < 0,
          "an edit without r");
    CHECK(text("{8 s:t s:react s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid s:c s:r i:2",
               &m) < 0,
          "a react without on");
    CHECK(text("{8 s:t s:delete s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s: s:cid s:c s:r i:0",
               &m) < 0,
          "r 0");
    CHECK(text("{7 s:t s:erase s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid s:c", &m) < 0,
          "an unknown t");
}

static void text_any_key_order(void **state)
{
    bus_text m;
    CHECK(text("{7 s:cid s:c s:data s:x s:to s:bob s:c i:1 s:g s:g1 s:u s:al s:t s:text", &m) == 0,
          "any key order");
    CHECK(text("{8 s:t s:text s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid s:c s:zz n",
               &m) == 0,
          "unknown key ignored");
}

static void text_refuses_malformed(void **state)
{
    bus_text m;
    const char *bad[] = {
        "{6 s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid s:c",
        "{7 s:t s:u s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid s:c",
        "{7 s:t s:text s:u s:Al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid s:c",
        "{7 s:t s:text s:u s:al s:g s:g#1 s:c i:1 s:to s:bob s:data s:x s:cid s:c",
        "{7 s:t s:text s:u s:al s:g s:g1 s:c i:0 s:to s:bob s:data s:x s:cid s:c",
        "{7 s:t s:text s:u s:al s:g s:g1 s:c i:-1 s:to s:bob s:data s:x s:cid s:c",
        "{7 s:t s:text s:u s:al s:g s:g1 s:c d:1 s:to s:bob s:data s:x s:cid s:c",
        "{7 s:t s:text s:u s:al s:g s:g1 s:c i:1 s:to s:BOB s:data s:x s:cid s:c",
        "{7 s:t s:text s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data x:c0af s:cid s:c",
        "{7 s:t s:text s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data b:x s:cid s:c",
        "{7 s:t s:text s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid S:65",
        "{6 s:t s:text s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x",
        "{8 s:t s:text s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid s:c s:u s:al",
        "{7 s:t s:text s:u s:al s:g s:g1 s:c i:1 s:to s:bob s:data s:x s:cid s:c r:00",
        "[7 s:t s:text s:u s:al s:g s:g1 s:c i:1 s:to s:bob",
        "r:c1",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(text(bad[i], &m) == -1, "bad text envelope %zu: %s", i, bad[i]);
}

static void delivery_to_user(void **state)
{
    bus_delivery d;
    int rc = deliv("{4 s:t s:u s:u s:bob s:s i:7 s:f s:FRAME", &d);
    CHECK(rc == 0 && d.t == BUS_TO_USER && str_is(d.user, "bob") && d.seq == 7 &&
              str_is(d.frame, "FRAME") && d.except.len == 0,
          "to user, str frame");
    rc = deliv("{5 s:x s:gw1#9 s:f b:FRAME s:u s:bob s:t s:u s:s i:3", &d);
    CHECK(rc == 0 && d.t == BUS_TO_USER && str_is(d.except, "gw1#9") && str_is(d.frame, "FRAME") &&
              d.seq == 3,
          "to user, bin frame, except, any order");
    rc = deliv("{3 s:t s:u s:u s:bob s:f s:F", &d);
    CHECK(rc == 0 && d.seq == 0, "no seq (typing)");
}

static void delivery_to_connection(void **state)
{
    bus_delivery d;
    int rc = deliv("{4 s:t s:c s:c u:12 s:f s:ACK s:s i:5", &d);
    CHECK(rc == 0 && d.t == BUS_TO_CONN && d.conn == 12 && d.seq == 5 && str_is(d.frame, "ACK"),
          "to connection");
    rc = deliv("{3 s:t s:c s:c i:1 s:f s:ERR", &d);
    CHECK(rc == 0 && d.seq == 0 && d.conn == 1, "to connection without seq");
}

static void delivery_hide(void **state)
{
    bus_delivery d;
    int rc = deliv("{4 s:t s:h s:u s:bob s:p s:alice s:o T", &d);
    CHECK(rc == 0 && d.t == BUS_HIDE && str_is(d.user, "bob") && str_is(d.peer, "alice") &&
              d.hide == 1,
          "hide");
    rc = deliv("{4 s:o F s:p s:alice s:u s:bob s:t s:h", &d);
    CHECK(rc == 0 && d.t == BUS_HIDE && d.hide == 0, "show, any order");
    CHECK(deliv("{3 s:t s:h s:u s:bob s:p s:alice", &d) < 0, "no o");
    CHECK(deliv("{4 s:t s:h s:u s:bob s:p s:alice s:o i:1", &d) < 0, "o not a bool");
    CHECK(deliv("{4 s:t s:h s:u s:bob s:p s:Alice s:o T", &d) < 0, "p not a user name");
    CHECK(deliv("{3 s:t s:h s:p s:alice s:o T", &d) < 0, "no u");
}

static void delivery_ignores_unknown_and_nil(void **state)
{
    bus_delivery d;
    int rc = deliv("{4 s:t s:c s:c i:1 s:f s:ERR s:zz [1 n", &d);
    CHECK(rc == 0, "unknown key ignored");
    rc = deliv("{4 s:t s:c s:c i:1 s:f s:ERR s:s n", &d);
    CHECK(rc == 0 && d.seq == 0, "nil seq is absent");
}

/* multi-user envelopes (groups, receipts) */
static void delivery_to_many(void **state)
{
    bus_delivery d;
    int rc = deliv("{5 s:t s:m s:f s:F s:u [2 s:ann s:bob s:s [2 i:3 i:9 s:x s:gw1#4", &d);
    CHECK(rc == 0 && d.t == BUS_TO_MANY && d.users && d.users->via.array.size == 2 && d.seqs &&
              d.seqs->via.array.ptr[1].via.u64 == 9 && str_is(d.except, "gw1#4") && d.seq == 0,
          "to many, per-user seqs, except");
    rc = deliv("{3 s:t s:m s:f s:F s:u [1 s:ann", &d);
    CHECK(rc == 0 && d.t == BUS_TO_MANY && !d.seqs && d.except.len == 0, "to many, no seqs");
}

static void delivery_frame_verbatim(void **state)
{
    bus_delivery d;
    int rc;
    /* the frame bytes point into the buffer, unchanged */
    msgpack_sbuffer fb;
    msgpack_sbuffer_init(&fb);
    mp_build(&fb, "{2 s:kind s:online s:from s:bob");
    msgpack_sbuffer_clear(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    proto_pack_str(&pk, "t", 1);
    proto_pack_str(&pk, "u", 1);
    proto_pack_str(&pk, "u", 1);
    proto_pack_str(&pk, "eve", 3);
    proto_pack_str(&pk, "f", 1);
    msgpack_pack_bin(&pk, fb.size);
    msgpack_pack_bin_body(&pk, fb.data, fb.size);
    rc = bus_dec_delivery(sb.data, sb.size, &up, &d);
    CHECK(rc == 0 && d.frame.len == fb.size && memcmp(d.frame.p, fb.data, fb.size) == 0 &&
              d.frame.p >= sb.data && d.frame.p < sb.data + sb.size,
          "frame bytes verbatim, in the buffer");
    msgpack_sbuffer_destroy(&fb);
}

static void delivery_refuses_malformed(void **state)
{
    bus_delivery d;
    const char *bad[] = {
        "",
        "r:c1",
        "s:hello",
        "[3 s:t s:u s:f",
        "{3 s:t s:u s:u s:bob s:f s:F r:00",
        "{2 s:u s:bob s:f s:F",                         /* no t */
        "{3 s:t s:z s:u s:bob s:f s:F",                 /* unknown t */
        "{3 s:t s:uu s:u s:bob s:f s:F",                /* t too long */
        "{3 s:t s: s:u s:bob s:f s:F",                  /* t empty */
        "{3 s:t b:u s:u s:bob s:f s:F",                 /* t bin */
        "{2 s:t s:u s:f s:F",                           /* no user */
        "{3 s:t s:u s:u s:Bob s:f s:F",                 /* bad user */
        "{3 s:t s:u s:u b:bob s:f s:F",                 /* user bin */
        "{2 s:t s:u s:u s:bob",                         /* no frame */
        "{3 s:t s:u s:u s:bob s:f s:",                  /* empty frame */
        "{3 s:t s:u s:u s:bob s:f i:1",                 /* frame int */
        "{3 s:t s:u s:u s:bob s:f {0",                  /* frame map, not bytes */
        "{4 s:t s:u s:u s:bob s:f s:F s:s i:0",         /* seq 0 */
        "{4 s:t s:u s:u s:bob s:f s:F s:s i:-2",        /* seq negative */
        "{4 s:t s:u s:u s:bob s:f s:F s:s d:2",         /* seq float */
        "{4 s:t s:u s:u s:bob s:f s:F s:s s:2",         /* seq str */
        "{4 s:t s:u s:u s:bob s:f s:F s:x i:2",         /* except int */
        "{2 s:t s:c s:f s:F",                           /* no conn */
        "{3 s:t s:c s:c i:0 s:f s:F",                   /* conn 0 */
        "{3 s:t s:c s:c s:1 s:f s:F",                   /* conn str */
        "{3 s:t s:c s:c d:1.0 s:f s:F",                 /* conn float */
        "{3 s:t s:c s:c u:9223372036854775808 s:f s:F", /* conn > int64 */
        "{4 s:t s:c s:c i:1 s:f s:F s:f s:G",           /* duplicate f */
        "{4 s:t s:c s:c i:1 s:f s:F i:1 s:G",           /* int key */
        "r:dfffffffff",                                 /* huge map */
        "{2 s:t s:m s:f s:F",                           /* many: no users */
        "{3 s:t s:m s:f s:F s:u [0",                    /* many: empty users */
        "{3 s:t s:m s:f s:F s:u s:ann",                 /* many: users not an array */
        "{3 s:t s:m s:f s:F s:u [1 s:Ann",              /* many: bad user */
        "{3 s:t s:m s:f s:F s:u [1 i:1",                /* many: user int */
        "{4 s:t s:m s:f s:F s:u [2 s:a s:b s:s [1 i:1", /* many: seqs shorter */
        "{4 s:t s:m s:f s:F s:u [1 s:a s:s [1 i:0",     /* many: seq 0 */
        "{4 s:t s:m s:f s:F s:u [1 s:a s:s i:1",        /* many: seq not an array */
        "{4 s:t s:u s:u s:bob s:f s:F s:s [1 i:1",      /* user: seq array */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(deliv(bad[i], &d) == -1, "bad delivery %zu: %s", i, bad[i]);
}

/* A payload of several envelopes (a batch): each found in turn with its
 * length; a trailing byte is refused by the exact decoders; a malformed one
 * stops the walk. */
static void payload_walks_envelopes(void **state)
{
    bus_delivery d;
    size_t used, off = 0, n = 0;
    msgpack_sbuffer_clear(&sb);
    mp_build(&sb, "{3 s:t s:u s:u s:ann s:f s:A");
    size_t first = sb.size;
    mp_build(&sb, "{3 s:t s:c s:c i:7 s:f s:BB");
    mp_build(&sb, "{3 s:t s:m s:f s:C s:u [1 s:bob");
    const char *want[] = {"A", "BB", "C"};
    while (off < sb.size && bus_next_delivery(sb.data + off, sb.size - off, &up, &d, &used) == 0) {
        CHECK(n < 3 && str_is(d.frame, want[n]), "envelope %zu of the payload", n);
        if (n == 0) CHECK(used == first, "used = the first envelope's length (%zu)", used);
        off += used;
        n++;
    }
    CHECK(n == 3 && off == sb.size, "three envelopes, every byte used (%zu, %zu)", n, off);
    CHECK(bus_dec_delivery(sb.data, sb.size, &up, &d) == -1,
          "the exact decoder refuses a payload of several");
}

static void payload_stops_at_malformed(void **state)
{
    bus_delivery d;
    size_t used;
    msgpack_sbuffer_clear(&sb);
    mp_build(&sb, "{3 s:t s:u s:u s:ann s:f s:A");
    mp_build(&sb, "{3 s:t s:c s:c i:7 s:f s:BB");
    mp_build(&sb, "{3 s:t s:m s:f s:C s:u [1 s:bob");
    size_t off = sb.size; /* past the three (payload_walks_envelopes) */
    mp_build(&sb, "r:c1");
    CHECK(bus_next_delivery(sb.data + off, sb.size - off, &up, &d, &used) == -1,
          "a malformed envelope after them is refused");
    CHECK(bus_next_delivery(sb.data, 0, &up, &d, &used) == -1, "an empty payload is refused");
}

static void payload_of_two_texts(void **state)
{
    bus_text m;
    size_t used;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bus_text in = {.from = S("alice"),
                   .gw = S("gw1"),
                   .to = S("bob"),
                   .data = S("hi"),
                   .cid = S("c1"),
                   .conn = 3};
    msgpack_sbuffer_clear(&sb);
    bus_enc_text(&pk, &in);
    in.cid = S("c2");
    bus_enc_text(&pk, &in);
    CHECK(bus_next_text(sb.data, sb.size, &up, &m, &used) == 0 && str_is(m.cid, "c1") &&
              bus_next_text(sb.data + used, sb.size - used, &up, &m, &used) == 0 &&
              str_is(m.cid, "c2"),
          "two texts in one payload, in order");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(text_round_trip),
    cmocka_unit_test(change_round_trip),
    cmocka_unit_test(text_any_key_order),
    cmocka_unit_test(text_refuses_malformed),
    cmocka_unit_test(delivery_to_user),
    cmocka_unit_test(delivery_to_connection),
    cmocka_unit_test(delivery_hide),
    cmocka_unit_test(delivery_ignores_unknown_and_nil),
    cmocka_unit_test(delivery_to_many),
    cmocka_unit_test(delivery_frame_verbatim),
    cmocka_unit_test(delivery_refuses_malformed),
    cmocka_unit_test(payload_walks_envelopes),
    cmocka_unit_test(payload_stops_at_malformed),
    cmocka_unit_test(payload_of_two_texts),
};

UNIT_MAIN("bus", tests, unit_bufs_init, unit_bufs_free)
