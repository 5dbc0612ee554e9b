/* test_proto.c - client frame decoding (every refusal the contract names, and
 * a valid frame of every kind) and the server frame encoders. */
#include "proto.h"
#define UNIT_WITH_BUFS
#include "unit.h"

#define KT "{4 s:kind s:text " /* text frame prefix: add 3 pairs */

typedef struct bad_case {
    const char *name;
    const char *spec; /* mp_build spec */
    const char *code; /* expected error code */
    int close;
    int flags;
} bad_case;

static const bad_case bad_cases[] = {
    /* undecodable: bad_frame, close 1007 */
    {"empty input", "", "bad_frame", 1007, 0},
    {"not msgpack (0xc1)", "r:c1", "bad_frame", 1007, 0},
    {"json text", "r:7b226b696e64223a2274657874227d", "bad_frame", 1007, 0},
    {"truncated map", "{2 s:kind s:text s:to", "bad_frame", 1007, 0},
    {"truncated str", "r:81a46b696e64a374", "bad_frame", 1007, 0},
    {"truncated str32", "r:81a46b696e64dbffffffff7465", "bad_frame", 1007, 0},
    {"array instead of map", "[2 s:kind s:text", "bad_frame", 1007, 0},
    {"str instead of map", "s:hello", "bad_frame", 1007, 0},
    {"int instead of map", "i:5", "bad_frame", 1007, 0},
    {"nil instead of map", "n", "bad_frame", 1007, 0},
    {"trailing byte", "{1 s:kind s:typing r:00", "bad_frame", 1007, 0},
    {"two maps", "{1 s:kind s:typing {1 s:kind s:typing", "bad_frame", 1007, 0},
    {"array32 of 4G items", "r:ddffffffff", "bad_frame", 1007, 0},
    {"map32 of 4G pairs", "r:dfffffffff", "bad_frame", 1007, 0},
    {"huge array inside map", "{2 s:kind s:typing s:z r:ddfffffff0", "bad_frame", 1007, 0},
    {"map16 beyond buffer", "r:de0400a16ba174", "bad_frame", 1007, 0},
    {"bin32 beyond buffer", "r:81a16bc60010000000", "bad_frame", 1007, 0},
    {"ext beyond buffer", "r:81a16bc7200100", "bad_frame", 1007, 0},

    /* kind */
    {"empty map", "{0", "bad_field", 0, 0},
    {"no kind", "{1 s:to s:bob", "bad_field", 0, 0},
    {"kind is int", "{1 s:kind i:1", "bad_field", 0, 0},
    {"kind is bin", "{1 s:kind b:text", "bad_field", 0, 0},
    {"kind is nil", "{1 s:kind n", "bad_field", 0, 0},
    {"kind is array", "{1 s:kind [1 s:text", "bad_field", 0, 0},
    {"kind invalid utf8", "{1 s:kind x:74c0af", "bad_field", 0, 0},
    {"unknown kind", "{1 s:kind s:shout", "unknown_kind", 0, 0},
    {"kind upper case", "{1 s:kind s:TEXT", "unknown_kind", 0, 0},
    {"kind empty", "{1 s:kind s:", "unknown_kind", 0, 0},
    {"seed-only kind", "{1 s:kind s:online", "unknown_kind", 0, 0},
    {"int key", "{2 i:1 s:x s:kind s:typing", "bad_field", 0, 0},
    {"bin key", "{2 b:kind s:typing s:to s:bob", "bad_field", 0, 0},
    {"duplicate kind", "{3 s:kind s:typing s:to s:bob s:kind s:typing", "bad_field", 0, 0},
    {"duplicate to", "{3 s:kind s:typing s:to s:bob s:to s:eve", "bad_field", 0, 0},

    /* text */
    {"text no to", "{3 s:kind s:text s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"text no data", "{3 s:kind s:text s:to s:bob s:cid s:c1", "bad_field", 0, 0},
    {"text no cid", "{3 s:kind s:text s:to s:bob s:data s:hi", "bad_field", 0, 0},
    {"text nil cid", KT "s:to s:bob s:data s:hi s:cid n", "bad_field", 0, 0},
    {"cid empty", KT "s:to s:bob s:data s:hi s:cid s:", "bad_field", 0, 0},
    {"cid 65 bytes", KT "s:to s:bob s:data s:hi s:cid S:65", "bad_field", 0, 0},
    {"cid int", KT "s:to s:bob s:data s:hi s:cid i:7", "bad_field", 0, 0},
    {"cid bin", KT "s:to s:bob s:data s:hi s:cid b:c1", "bad_field", 0, 0},
    {"cid invalid utf8", KT "s:to s:bob s:data s:hi s:cid x:ff", "bad_field", 0, 0},
    {"cid empty, dev mode", KT "s:to s:bob s:data s:hi s:cid s:", "bad_field", 0, 1},
    {"to upper case", KT "s:to s:Bob s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to 33 chars", KT "s:to S:33 s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to empty", KT "s:to s: s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to space", KT "s:to x:626f6220 s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to with #", KT "s:to s:a#b s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to bare #", KT "s:to s:# s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to ##a", KT "s:to s:##a s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to #Upper", KT "s:to s:#Dev s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to colon", KT "s:to s:a:b s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to int", KT "s:to i:3 s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to bin", KT "s:to b:bob s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"to nil", KT "s:to n s:data s:hi s:cid s:c1", "bad_field", 0, 0},
    {"data bin", KT "s:to s:bob s:data b:hi s:cid s:c1", "bad_field", 0, 0},
    {"data int", KT "s:to s:bob s:data i:1 s:cid s:c1", "bad_field", 0, 0},
    {"data float", KT "s:to s:bob s:data d:1.5 s:cid s:c1", "bad_field", 0, 0},
    {"data array", KT "s:to s:bob s:data [1 s:hi s:cid s:c1", "bad_field", 0, 0},
    {"data empty", KT "s:to s:bob s:data s: s:cid s:c1", "bad_field", 0, 0},
    {"utf8 overlong 2", KT "s:to s:bob s:data x:c0af s:cid s:c1", "bad_field", 0, 0},
    {"utf8 overlong 3", KT "s:to s:bob s:data x:e080af s:cid s:c1", "bad_field", 0, 0},
    {"utf8 overlong 4", KT "s:to s:bob s:data x:f08082af s:cid s:c1", "bad_field", 0, 0},
    {"utf8 surrogate", KT "s:to s:bob s:data x:eda080 s:cid s:c1", "bad_field", 0, 0},
    {"utf8 low surrogate", KT "s:to s:bob s:data x:edbfbf s:cid s:c1", "bad_field", 0, 0},
    {"utf8 > U+10FFFF", KT "s:to s:bob s:data x:f4908080 s:cid s:c1", "bad_field", 0, 0},
    {"utf8 f5 lead", KT "s:to s:bob s:data x:f5808080 s:cid s:c1", "bad_field", 0, 0},
    {"utf8 truncated 3", KT "s:to s:bob s:data x:41e282 s:cid s:c1", "bad_field", 0, 0},
    {"utf8 truncated 2", KT "s:to s:bob s:data x:c3 s:cid s:c1", "bad_field", 0, 0},
    {"utf8 lone continuation", KT "s:to s:bob s:data x:4180 s:cid s:c1", "bad_field", 0, 0},
    {"utf8 bad continuation", KT "s:to s:bob s:data x:e228a1 s:cid s:c1", "bad_field", 0, 0},
    {"utf8 byte ff", KT "s:to s:bob s:data x:ff s:cid s:c1", "bad_field", 0, 0},

    /* sync */
    {"sync no after", "{2 s:kind s:sync s:epoch s:e1", "bad_field", 0, 0},
    {"sync no epoch", "{2 s:kind s:sync s:after i:0", "bad_field", 0, 0},
    {"sync after -1", "{3 s:kind s:sync s:after i:-1 s:epoch s:e1", "bad_field", 0, 0},
    {"sync after float", "{3 s:kind s:sync s:after d:3.0 s:epoch s:e1", "bad_field", 0, 0},
    {"sync after str", "{3 s:kind s:sync s:after s:3 s:epoch s:e1", "bad_field", 0, 0},
    {"sync after bool", "{3 s:kind s:sync s:after T s:epoch s:e1", "bad_field", 0, 0},
    {"sync after > int64", "{3 s:kind s:sync s:after u:9223372036854775808 s:epoch s:e1",
     "bad_field", 0, 0},
    {"sync epoch empty", "{3 s:kind s:sync s:after i:0 s:epoch s:", "bad_field", 0, 0},
    {"sync epoch 65", "{3 s:kind s:sync s:after i:0 s:epoch S:65", "bad_field", 0, 0},
    {"sync epoch int", "{3 s:kind s:sync s:after i:0 s:epoch i:5", "bad_field", 0, 0},

    /* read */
    {"read upto 0", "{3 s:kind s:read s:with s:bob s:upto i:0", "bad_field", 0, 0},
    {"read upto -3", "{3 s:kind s:read s:with s:bob s:upto i:-3", "bad_field", 0, 0},
    {"read upto float", "{3 s:kind s:read s:with s:bob s:upto d:2.5", "bad_field", 0, 0},
    {"read no upto", "{2 s:kind s:read s:with s:bob", "bad_field", 0, 0},
    {"read no with", "{2 s:kind s:read s:upto i:4", "bad_field", 0, 0},
    {"read with bad", "{3 s:kind s:read s:with s:BOB s:upto i:4", "bad_field", 0, 0},

    /* typing */
    {"typing no to", "{1 s:kind s:typing", "bad_field", 0, 0},
    {"typing to bad", "{2 s:kind s:typing s:to s:b/b", "bad_field", 0, 0},

    /* history */
    {"history no with", "{1 s:kind s:history", "bad_field", 0, 0},
    {"history limit 0", "{3 s:kind s:history s:with s:bob s:limit i:0", "bad_field", 0, 0},
    {"history limit 101", "{3 s:kind s:history s:with s:bob s:limit i:101", "bad_field", 0, 0},
    {"history limit -1", "{3 s:kind s:history s:with s:bob s:limit i:-1", "bad_field", 0, 0},
    {"history limit float", "{3 s:kind s:history s:with s:bob s:limit d:10", "bad_field", 0, 0},
    {"history limit str", "{3 s:kind s:history s:with s:bob s:limit s:10", "bad_field", 0, 0},
    {"history before 0", "{3 s:kind s:history s:with s:bob s:before i:0", "bad_field", 0, 0},
    {"history before -5", "{3 s:kind s:history s:with s:bob s:before i:-5", "bad_field", 0, 0},

    /* group */
    {"group no op", "{3 s:kind s:group s:name s:#dev s:members [0", "bad_field", 0, 0},
    {"group op delete", "{3 s:kind s:group s:op s:delete s:name s:#dev", "bad_field", 0, 0},
    {"group op int", "{3 s:kind s:group s:op i:1 s:name s:#dev", "bad_field", 0, 0},
    {"group op upper", "{3 s:kind s:group s:op s:JOIN s:name s:#dev", "bad_field", 0, 0},
    {"group no name", "{2 s:kind s:group s:op s:join", "bad_field", 0, 0},
    {"group name no #", "{3 s:kind s:group s:op s:join s:name s:dev", "bad_field", 0, 0},
    {"group name bare #", "{3 s:kind s:group s:op s:join s:name s:#", "bad_field", 0, 0},
    {"group name 34",
     "{3 s:kind s:group s:op s:join s:name x:23" /* '#' + 33 */
     "616161616161616161616161616161616161616161616161616161616161616161",
     "bad_field", 0, 0},
    {"create no members", "{3 s:kind s:group s:op s:create s:name s:#dev", "bad_field", 0, 0},
    {"create members str", "{4 s:kind s:group s:op s:create s:name s:#dev s:members s:bob",
     "bad_field", 0, 0},
    {"create members map", "{4 s:kind s:group s:op s:create s:name s:#dev s:members {1 s:bob T",
     "bad_field", 0, 0},
    {"create member upper",
     "{4 s:kind s:group s:op s:create s:name s:#dev s:members [2 s:bob s:Eve", "bad_field", 0, 0},
    {"create member int", "{4 s:kind s:group s:op s:create s:name s:#dev s:members [1 i:1",
     "bad_field", 0, 0},
    {"create member group", "{4 s:kind s:group s:op s:create s:name s:#dev s:members [1 s:#ops",
     "bad_field", 0, 0},
    {"create member bin", "{4 s:kind s:group s:op s:create s:name s:#dev s:members [1 b:bob",
     "bad_field", 0, 0},
    {"add no members", "{3 s:kind s:group s:op s:add s:name s:#dev", "bad_field", 0, 0},
    {"add empty members", "{4 s:kind s:group s:op s:add s:name s:#dev s:members [0", "bad_field", 0,
     0},
    {"open not bool", "{5 s:kind s:group s:op s:create s:name s:#dev s:members [0 s:open i:1",
     "bad_field", 0, 0},
    {"open str on join", "{4 s:kind s:group s:op s:join s:name s:#dev s:open s:true", "bad_field",
     0, 0},
    {"remove no members", "{3 s:kind s:group s:op s:remove s:name s:#dev", "bad_field", 0, 0},
    {"promote empty members", "{4 s:kind s:group s:op s:promote s:name s:#dev s:members [0",
     "bad_field", 0, 0},
    {"demote member group", "{4 s:kind s:group s:op s:demote s:name s:#dev s:members [1 s:#x",
     "bad_field", 0, 0},
    /* message lifecycle: edit, delete, react; text reply_to */
    {"text reply_to 0", "{5 s:kind s:text s:to s:bob s:data s:hi s:cid s:c1 s:reply_to i:0",
     "bad_field", 0, 0},
    {"text reply_to str", "{5 s:kind s:text s:to s:bob s:data s:hi s:cid s:c1 s:reply_to s:1",
     "bad_field", 0, 0},
    {"edit no cid", "{4 s:kind s:edit s:with s:bob s:id i:1 s:data s:x", "bad_field", 0, 0},
    {"edit no id", "{4 s:kind s:edit s:with s:bob s:cid s:c1 s:data s:x", "bad_field", 0, 0},
    {"edit id 0", "{5 s:kind s:edit s:with s:bob s:id i:0 s:cid s:c1 s:data s:x", "bad_field", 0,
     0},
    {"edit empty data", "{5 s:kind s:edit s:with s:bob s:id i:1 s:cid s:c1 s:data s:", "bad_field",
     0, 0},
    {"edit no with", "{4 s:kind s:edit s:id i:1 s:cid s:c1 s:data s:x", "bad_field", 0, 0},
    {"delete bad with", "{4 s:kind s:delete s:with s:Bob s:id i:1 s:cid s:c1", "bad_field", 0, 0},
    {"delete id float", "{4 s:kind s:delete s:with s:bob s:id d:1 s:cid s:c1", "bad_field", 0, 0},
    {"react no emoji", "{5 s:kind s:react s:with s:bob s:id i:1 s:cid s:c1 s:on T", "bad_field", 0,
     0},
    {"react empty emoji",
     "{6 s:kind s:react s:with s:bob s:id i:1 s:cid s:c1 s:on T s:emoji s:", "bad_field", 0, 0},
    {"react emoji 33 bytes",
     "{6 s:kind s:react s:with s:bob s:id i:1 s:cid s:c1 s:on T s:emoji S:33", "bad_field", 0, 0},
    {"react emoji bin", "{6 s:kind s:react s:with s:bob s:id i:1 s:cid s:c1 s:on T s:emoji b:x",
     "bad_field", 0, 0},
    {"react no on", "{5 s:kind s:react s:with s:bob s:id i:1 s:cid s:c1 s:emoji s:x", "bad_field",
     0, 0},
    {"react on int", "{6 s:kind s:react s:with s:bob s:id i:1 s:cid s:c1 s:on i:1 s:emoji s:x",
     "bad_field", 0, 0},
    /* block */
    {"block no user", "{2 s:kind s:block s:on T", "bad_field", 0, 0},
    {"block bad user", "{3 s:kind s:block s:user s:Bob s:on T", "bad_field", 0, 0},
    {"block group", "{3 s:kind s:block s:user s:#dev s:on T", "bad_field", 0, 0},
    {"block user int", "{3 s:kind s:block s:user i:1 s:on T", "bad_field", 0, 0},
    {"block no on", "{2 s:kind s:block s:user s:bob", "bad_field", 0, 0},
    {"block on int", "{3 s:kind s:block s:user s:bob s:on i:1", "bad_field", 0, 0},
    {"block on str", "{3 s:kind s:block s:user s:bob s:on s:true", "bad_field", 0, 0},
};

static int decode(const char *spec, int flags, proto_frame *f, proto_error *e)
{
    msgpack_sbuffer_clear(&sb);
    mp_build(&sb, spec);
    return proto_decode(sb.data, sb.size, &up, flags, f, e);
}

static int str_is(proto_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static void decode_refuses_each_bad_case(void **state)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        proto_frame f;
        proto_error e;
        int rc = decode(c->spec, c->flags, &f, &e);
        CHECK(rc == -1, "%s: accepted", c->name);
        if (rc != -1) continue;
        CHECK(e.code && strcmp(e.code, c->code) == 0, "%s: code %s, want %s", c->name, e.code,
              c->code);
        CHECK(e.close == c->close, "%s: close %d, want %d", c->name, e.close, c->close);
        CHECK(e.message[0] != '\0', "%s: empty message", c->name);
    }
}

/* bad_field messages name the field */
static void error_names_the_field(void **state)
{
    proto_frame f;
    proto_error e;
    decode(KT "s:to s:Bob s:data s:hi s:cid s:c-42", 0, &f, &e);
    CHECK(strstr(e.message, "'to'") != NULL, "message names the field: %s", e.message);
    decode(KT "s:to s:bob s:data b:hi s:cid s:c-43", 0, &f, &e);
    CHECK(strstr(e.message, "'data'") != NULL, "message names data: %s", e.message);
    decode(KT "s:to s:bob s:data s:hi s:cid S:65", 0, &f, &e);
    CHECK(strstr(e.message, "'cid'") != NULL, "message names cid: %s", e.message);
    decode("{3 s:kind s:history s:with s:bob s:limit i:101", 0, &f, &e);
    CHECK(strstr(e.message, "'limit'") != NULL, "message names limit: %s", e.message);
}

/* a text's own valid cid is returned with its error, never a bad one */
static void error_carries_valid_cid(void **state)
{
    proto_frame f;
    proto_error e;
    decode(KT "s:to s:Bob s:data s:hi s:cid s:c-42", 0, &f, &e);
    CHECK(str_is(e.cid, "c-42"), "error carries the text's cid");
    decode(KT "s:to s:bob s:data b:hi s:cid s:c-43", 0, &f, &e);
    CHECK(str_is(e.cid, "c-43"), "error carries the cid (bad data)");
    decode(KT "s:to s:bob s:data s:hi s:cid S:65", 0, &f, &e);
    CHECK(e.cid.len == 0, "a bad cid is not echoed");
    decode("{2 s:kind s:typing s:to s:Bob", 0, &f, &e);
    CHECK(e.cid.len == 0, "no cid outside text");
}

static void error_echoes_ascii_kind_only(void **state)
{
    proto_frame f;
    proto_error e;
    decode("{1 s:kind s:shout", 0, &f, &e);
    CHECK(strstr(e.message, "shout") != NULL, "unknown kind is echoed: %s", e.message);
    decode("{1 s:kind x:e282ac", 0, &f, &e);
    CHECK(strcmp(e.code, "unknown_kind") == 0 && strstr(e.message, "\xe2") == NULL,
          "non-ASCII kind not echoed");
}

static void group_members_limit_1000(void **state)
{
    msgpack_packer pk;
    proto_frame f;
    proto_error e;
    for (int n = 1000; n <= 1001; n++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        mp_build(&sb, "{4 s:kind s:group s:op s:add s:name s:#big s:members");
        msgpack_pack_array(&pk, (size_t)n);
        for (int i = 0; i < n; i++) {
            char name[16];
            int l = snprintf(name, sizeof name, "u%d", i);
            proto_pack_str(&pk, name, (size_t)l);
        }
        int rc = proto_decode(sb.data, sb.size, &up, 0, &f, &e);
        if (n == 1000)
            CHECK(rc == 0 && f.nmembers == 1000, "1000 members accepted");
        else
            CHECK(rc == -1 && strcmp(e.code, "bad_field") == 0, "1001 members refused");
    }
}

static void deep_nesting_refused(void **state)
{
    /* An ignored field nested deeper than msgpack-c's stack: refused as
     * undecodable, never a crash. 20 levels inside is fine. */
    char spec[1024] = "{2 s:kind s:typing s:to s:bob";
    proto_frame f;
    proto_error e;
    CHECK(decode(spec, 0, &f, &e) == 0, "typing ok");
    strcpy(spec, "{3 s:kind s:typing s:to s:bob s:deep");
    for (int i = 0; i < 20; i++)
        strcat(spec, " [1");
    strcat(spec, " n");
    CHECK(decode(spec, 0, &f, &e) == 0, "20 nested arrays in an unknown field are ignored");
    strcpy(spec, "{3 s:kind s:typing s:to s:bob s:deep");
    for (int i = 0; i < 200; i++)
        strcat(spec, " [1");
    strcat(spec, " n");
    CHECK(decode(spec, 0, &f, &e) == -1 && strcmp(e.code, "bad_frame") == 0 && e.close == 1007,
          "200 nested arrays: bad_frame");
}

static void decode_text(void **state)
{
    proto_frame f;
    proto_error e;
    int rc;

    rc = decode(KT "s:to s:bob s:data s:hello s:cid s:c1", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_TEXT && str_is(f.to, "bob") && str_is(f.data, "hello") &&
              str_is(f.cid, "c1"),
          "text: %s", rc ? e.message : "fields");

    /* seed-style: extra from and sent are ignored */
    rc = decode("{6 s:kind s:text s:from s:mallory s:to s:bob s:data s:hi s:sent "
                "i:1700000000000 s:cid s:c2",
                0, &f, &e);
    CHECK(rc == 0 && str_is(f.to, "bob") && str_is(f.cid, "c2"), "seed text with from/sent");
    rc = decode("{5 s:kind s:text s:from s:mallory s:to s:bob s:data s:hi s:sent d:1.5", 1, &f, &e);
    CHECK(rc == 0 && f.cid.len == 0, "seed text without cid in dev mode: %s", rc ? e.message : "");

    rc = decode(KT "s:to s:#dev-team s:data x:f09f9880efbfbff48fbfbf00 s:cid S:64", 0, &f, &e);
    CHECK(rc == 0 && str_is(f.to, "#dev-team") && f.data.len == 12 && f.cid.len == 64,
          "text to group, 4-byte UTF-8, U+FFFF, U+10FFFF, NUL, 64-byte cid: %s",
          rc ? e.message : "");
    rc = decode(KT "s:to S:32 s:data s:x s:cid x:e282ac", 0, &f, &e);
    CHECK(rc == 0 && f.to.len == 32 && f.cid.len == 3, "32-char user, multibyte cid");
    rc = decode("{5 s:kind s:text s:to s:a.b_c-9 s:data s:x s:cid s:c s:extra {1 i:1 [2 n T", 0, &f,
                &e);
    CHECK(rc == 0 && str_is(f.to, "a.b_c-9"), "unknown nested field ignored");
    rc = decode("{5 s:kind s:text s:to s:bob s:data s:x s:cid s:c i:7 s:x", 0, &f, &e);
    CHECK(rc == -1, "non-string key refused even among extras");
}

static void decode_sync(void **state)
{
    proto_frame f;
    proto_error e;
    int rc = decode("{3 s:kind s:sync s:after i:0 s:epoch s:e-1", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_SYNC && f.after == 0 && str_is(f.epoch, "e-1"), "sync 0");
    rc = decode("{3 s:kind s:sync s:after u:9223372036854775807 s:epoch S:64", 0, &f, &e);
    CHECK(rc == 0 && f.after == INT64_MAX && f.epoch.len == 64, "sync max");
    rc = decode("{3 s:kind s:sync s:after r:d005 s:epoch s:e", 0, &f, &e);
    CHECK(rc == 0 && f.after == 5, "sync after as int8");
}

static void decode_read(void **state)
{
    proto_frame f;
    proto_error e;
    int rc = decode("{3 s:kind s:read s:with s:bob s:upto i:42", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_READ && str_is(f.with, "bob") && f.upto == 42, "read");
    rc = decode("{3 s:kind s:read s:with s:#dev s:upto u:1", 0, &f, &e);
    CHECK(rc == 0 && str_is(f.with, "#dev") && f.upto == 1, "read group");
}

static void decode_typing(void **state)
{
    proto_frame f;
    proto_error e;
    int rc = decode("{2 s:kind s:typing s:to s:bob", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_TYPING && str_is(f.to, "bob"), "typing");
}

static void decode_history(void **state)
{
    proto_frame f;
    proto_error e;
    int rc = decode("{2 s:kind s:history s:with s:bob", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_HISTORY && f.before == 0 && f.limit == 50, "history defaults");
    rc = decode("{4 s:kind s:history s:with s:bob s:before i:99 s:limit i:100", 0, &f, &e);
    CHECK(rc == 0 && f.before == 99 && f.limit == 100, "history before/limit");
    rc = decode("{4 s:kind s:history s:with s:bob s:before n s:limit i:1", 0, &f, &e);
    CHECK(rc == 0 && f.before == 0 && f.limit == 1, "history nil before = absent");
}

static void decode_group(void **state)
{
    proto_frame f;
    proto_error e;
    int rc =
        decode("{5 s:kind s:group s:op s:create s:name s:#dev s:members [2 s:bob s:eve s:open T", 0,
               &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_GROUP && f.op == PROTO_OP_CREATE && str_is(f.name, "#dev") &&
              f.nmembers == 2 && f.open == 1 && f.members &&
              f.members->via.array.ptr[1].via.str.size == 3,
          "group create: %s", rc ? e.message : "");
    rc = decode("{4 s:kind s:group s:op s:create s:name s:#solo s:members [0", 0, &f, &e);
    CHECK(rc == 0 && f.nmembers == 0 && f.open == 0, "group create alone, closed");
    rc = decode("{3 s:kind s:group s:op s:join s:name s:#dev", 0, &f, &e);
    CHECK(rc == 0 && f.op == PROTO_OP_JOIN, "group join");
    rc = decode("{4 s:kind s:group s:op s:leave s:name s:#dev s:members s:ignored", 0, &f, &e);
    CHECK(rc == 0 && f.op == PROTO_OP_LEAVE && f.members == NULL, "group leave ignores members");
    rc = decode("{4 s:kind s:group s:op s:add s:name s:#dev s:members [1 s:zed", 0, &f, &e);
    CHECK(rc == 0 && f.op == PROTO_OP_ADD && f.nmembers == 1, "group add");
    rc =
        decode("{4 s:kind s:group s:op s:remove s:name s:#dev s:members [2 s:zed s:amy", 0, &f, &e);
    CHECK(rc == 0 && f.op == PROTO_OP_REMOVE && f.nmembers == 2, "group remove");
    rc = decode("{4 s:kind s:group s:op s:promote s:name s:#dev s:members [1 s:zed", 0, &f, &e);
    CHECK(rc == 0 && f.op == PROTO_OP_PROMOTE && f.nmembers == 1, "group promote");
    rc = decode("{4 s:kind s:group s:op s:demote s:name s:#dev s:members [1 s:zed", 0, &f, &e);
    CHECK(rc == 0 && f.op == PROTO_OP_DEMOTE && f.nmembers == 1, "group demote");
}

static void decode_block(void **state)
{
    proto_frame f;
    proto_error e;
    int rc = decode("{3 s:kind s:block s:user s:bob s:on T", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_BLOCK && str_is(f.user, "bob") && f.on == 1, "block: %s",
          rc ? e.message : "");
    rc = decode("{4 s:on F s:user s:a.b-c_9 s:kind s:block s:extra i:1", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_BLOCK && str_is(f.user, "a.b-c_9") && f.on == 0,
          "unblock, any order, unknown field ignored: %s", rc ? e.message : "");
}

static void decode_lifecycle(void **state)
{
    proto_frame f;
    proto_error e;
    int rc = decode("{5 s:kind s:text s:to s:bob s:data s:hi s:cid s:c1 s:reply_to i:7", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_TEXT && f.reply_to == 7, "text reply_to: %s",
          rc ? e.message : "");
    rc = decode("{4 s:kind s:text s:to s:bob s:data s:hi s:cid s:c1", 0, &f, &e);
    CHECK(rc == 0 && f.reply_to == 0, "text without reply_to");
    rc = decode("{5 s:kind s:edit s:with s:#dev s:id i:9 s:cid s:c2 s:data s:new", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_EDIT && f.id == 9 && str_is(f.with, "#dev") &&
              str_is(f.data, "new") && str_is(f.cid, "c2"),
          "edit: %s", rc ? e.message : "");
    rc = decode("{4 s:kind s:delete s:with s:bob s:id i:3 s:cid s:c3", 0, &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_DELETE && f.id == 3, "delete: %s", rc ? e.message : "");
    rc = decode(
        "{6 s:kind s:react s:with s:bob s:id i:3 s:cid s:c4 s:on F s:emoji s:\xf0\x9f\x91\x8d", 0,
        &f, &e);
    CHECK(rc == 0 && f.kind == PROTO_REACT && f.on == 0 && f.emoji.len == 4, "react: %s",
          rc ? e.message : "");
    rc =
        decode("{6 s:kind s:react s:with s:bob s:id i:3 s:cid s:c4 s:on T s:emoji S:32", 0, &f, &e);
    CHECK(rc == 0 && f.on == 1 && f.emoji.len == 32, "react, 32-byte emoji: %s",
          rc ? e.message : "");
    /* an error about a change carries its cid */
    rc = decode("{4 s:kind s:edit s:with s:bob s:id i:1 s:cid s:c5", 0, &f, &e);
    CHECK(rc < 0 && str_is(e.cid, "c5"), "edit without data: bad_field with the cid");
    /* the cid is required even in dev auth mode */
    rc = decode("{3 s:kind s:delete s:with s:bob s:id i:1", PROTO_ALLOW_NO_CID, &f, &e);
    CHECK(rc < 0 && strcmp(e.code, "bad_field") == 0, "delete without cid in dev mode");
}

/* Finds key in a decoded map. */
static const msgpack_object *get(const msgpack_object *m, const char *key)
{
    if (m->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static int obj_is(const msgpack_object *o, const char *lit)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(lit) &&
           memcmp(o->via.str.ptr, lit, o->via.str.size) == 0;
}

static const msgpack_object *reparse(void)
{
    size_t off = 0;
    if (msgpack_unpack_next(&up, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != sb.size)
        return NULL;
    return &up.data;
}

static void enc_error(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const msgpack_object *m;

    msgpack_sbuffer_clear(&sb);
    proto_str cid = {"c9", 2};
    proto_enc_error(&pk, "bad_field", "field 'to' is bad", &cid);
    m = reparse();
    CHECK(m && m->via.map.size == 4 && obj_is(get(m, "kind"), "error") &&
              obj_is(get(m, "code"), "bad_field") &&
              obj_is(get(m, "message"), "field 'to' is bad") && obj_is(get(m, "cid"), "c9"),
          "error with cid");
    msgpack_sbuffer_clear(&sb);
    proto_enc_error(&pk, "bad_frame", "not msgpack", NULL);
    m = reparse();
    CHECK(m && m->via.map.size == 3 && get(m, "cid") == NULL, "error without cid");
}

static void enc_hello(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const msgpack_object *m, *o;

    msgpack_sbuffer_clear(&sb);
    static const char last[] = "\x82\xa4kind\xa4text\xa2id\x0c"; /* {kind: text, id: 12} */
    proto_contact users[2] = {{.name = "bob",
                               .len = 3,
                               .online = 1,
                               .unread = 4,
                               .read = 12,
                               .peer_read = 10,
                               .last = last,
                               .last_len = sizeof last - 1},
                              {.name = "#dev", .len = 4}};
    proto_enc_hello(&pk, "alice", 17, "ep1", 3, users, 2, 0, NULL, 0);
    m = reparse();
    CHECK(m && obj_is(get(m, "kind"), "hello") && obj_is(get(m, "user"), "alice") &&
              obj_is(get(m, "epoch"), "ep1"),
          "hello strings");
    o = m ? get(m, "seq") : NULL;
    CHECK(o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 == 17, "hello seq");
    o = m ? get(m, "users") : NULL;
    CHECK(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2, "hello users");
    if (o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2) {
        const msgpack_object *u0 = &o->via.array.ptr[0], *u1 = &o->via.array.ptr[1];
        CHECK(obj_is(get(u0, "username"), "bob") &&
                  get(u0, "online")->type == MSGPACK_OBJECT_BOOLEAN &&
                  get(u0, "online")->via.boolean && get(u0, "unread")->via.u64 == 4,
              "hello user 0");
        CHECK(get(u0, "read") && get(u0, "read")->via.u64 == 12 && get(u0, "peer_read") &&
                  get(u0, "peer_read")->via.u64 == 10 && u0->via.map.size == 6,
              "hello user 0: read positions");
        CHECK(get(u0, "last") && get(u0, "last")->type == MSGPACK_OBJECT_MAP &&
                  get(get(u0, "last"), "id")->via.u64 == 12,
              "hello user 0: last message spliced as a map");
        CHECK(obj_is(get(u1, "username"), "#dev") && !get(u1, "online")->via.boolean &&
                  get(u1, "unread")->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                  u1->via.map.size == 4 && !get(u1, "read") && !get(u1, "peer_read") &&
                  get(u1, "last") && get(u1, "last")->type == MSGPACK_OBJECT_NIL,
              "hello user 1: no read positions when 0, last nil");
    }
    msgpack_sbuffer_clear(&sb);
    proto_enc_hello(&pk, "alice", 0, "e", 1, NULL, 0, 0, NULL, 0);
    m = reparse();
    o = m ? get(m, "users") : NULL;
    CHECK(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 0, "hello no users");
    CHECK(m && !get(m, "blocked"), "hello without blocks: no blocked field");
    msgpack_sbuffer_clear(&sb);
    const proto_str blocked[2] = {{"bob", 3}, {"eve", 3}};
    proto_enc_hello(&pk, "alice", 0, "e", 1, NULL, 0, 0, blocked, 2);
    m = reparse();
    o = m ? get(m, "blocked") : NULL;
    CHECK(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2 &&
              o->via.array.ptr[1].type == MSGPACK_OBJECT_STR &&
              o->via.array.ptr[1].via.str.size == 3 &&
              !memcmp(o->via.array.ptr[1].via.str.ptr, "eve", 3) && m->via.map.size == 6,
          "hello with blocked");
}

/* a group entry's roles: role always, owner when there is one, admins (maybe
 * empty), admins_more only when they were cut */
static void enc_hello_roles(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const msgpack_object *m, *o;
    const proto_str admins[2] = {{"bob", 3}, {"carol", 5}};
    proto_contact users[2] = {{.name = "#ops",
                               .len = 4,
                               .role = "admin",
                               .owner = "alice",
                               .owner_len = 5,
                               .admins = admins,
                               .nadmins = 2,
                               .admins_more = 1},
                              {.name = "#old", .len = 4, .role = "member"}};

    msgpack_sbuffer_clear(&sb);
    proto_enc_hello(&pk, "bob", 1, "e", 1, users, 2, 0, NULL, 0);
    m = reparse();
    o = m ? get(m, "users") : NULL;
    CHECK(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2, "hello roles: users");
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2) return;
    const msgpack_object *u0 = &o->via.array.ptr[0], *u1 = &o->via.array.ptr[1];
    const msgpack_object *a = get(u0, "admins");
    CHECK(obj_is(get(u0, "role"), "admin") && obj_is(get(u0, "owner"), "alice") && a &&
              a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == 2 &&
              obj_is(&a->via.array.ptr[1], "carol") && get(u0, "admins_more") &&
              get(u0, "admins_more")->type == MSGPACK_OBJECT_BOOLEAN &&
              get(u0, "admins_more")->via.boolean && u0->via.map.size == 8,
          "hello roles: owner, admins cut, role");
    a = get(u1, "admins");
    CHECK(obj_is(get(u1, "role"), "member") && !get(u1, "owner") && a &&
              a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == 0 &&
              !get(u1, "admins_more") && u1->via.map.size == 6,
          "hello roles: no owner (a group from before roles), no admins");
}

/* hello with more, and a users page: the same entries, `more` as a boolean */
static void enc_users_pages(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const msgpack_object *m, *o;
    proto_contact users[1] = {{.name = "bob", .len = 3, .online = 1}};

    msgpack_sbuffer_clear(&sb);
    proto_enc_hello(&pk, "alice", 1, "e", 1, users, 1, 1, NULL, 0);
    m = reparse();
    o = m ? get(m, "more") : NULL;
    CHECK(o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean, "hello more: true");
    msgpack_sbuffer_clear(&sb);
    proto_enc_hello(&pk, "alice", 1, "e", 1, users, 1, 0, NULL, 0);
    m = reparse();
    CHECK(m && !get(m, "more"), "hello without more: no field");

    msgpack_sbuffer_clear(&sb);
    proto_enc_users(&pk, users, 1, 1);
    m = reparse();
    CHECK(m && obj_is(get(m, "kind"), "users") && m->via.map.size == 3, "users frame");
    o = m ? get(m, "users") : NULL;
    CHECK(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 1 &&
              obj_is(get(&o->via.array.ptr[0], "username"), "bob"),
          "users entries as in hello");
    o = m ? get(m, "more") : NULL;
    CHECK(o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean, "users more: true");
    msgpack_sbuffer_clear(&sb);
    proto_enc_users(&pk, NULL, 0, 0);
    m = reparse();
    o = m ? get(m, "more") : NULL;
    CHECK(o && o->type == MSGPACK_OBJECT_BOOLEAN && !o->via.boolean, "the last page: more false");
}

/* proto_add_seq: a group member's copy gets its own seq, fixmap and map16 */
static void add_seq_to_stored_frame(void **state)
{
    for (int nfields = 2; nfields <= 17; nfields += 15) {
        msgpack_sbuffer in, out;
        msgpack_packer ip;
        msgpack_sbuffer_init(&in);
        msgpack_sbuffer_init(&out);
        msgpack_packer_init(&ip, &in, msgpack_sbuffer_write);
        msgpack_pack_map(&ip, (size_t)nfields);
        proto_pack_str(&ip, "kind", 4);
        proto_pack_str(&ip, "text", 4);
        for (int i = 1; i < nfields; i++) {
            char k[8];
            int kl = snprintf(k, sizeof k, "f%d", i);
            proto_pack_str(&ip, k, (size_t)kl);
            msgpack_pack_int(&ip, i);
        }
        CHECK(proto_add_seq(in.data, in.size, 4242, &out) == 0, "add_seq %d fields", nfields);
        msgpack_unpacked au;
        size_t off = 0;
        msgpack_unpacked_init(&au);
        int ok = msgpack_unpack_next(&au, out.data, out.size, &off) == MSGPACK_UNPACK_SUCCESS &&
                 off == out.size && au.data.type == MSGPACK_OBJECT_MAP;
        CHECK(ok && au.data.via.map.size == (uint32_t)nfields + 1, "add_seq size %d", nfields);
        CHECK(ok && get(&au.data, "seq") && get(&au.data, "seq")->via.u64 == 4242 &&
                  obj_is(get(&au.data, "kind"), "text"),
              "add_seq fields %d", nfields);
        msgpack_unpacked_destroy(&au);
        CHECK(proto_add_seq("\x92\x01\x02", 3, 1, &out) < 0, "add_seq refuses an array");
        CHECK(proto_add_seq("", 0, 1, &out) < 0, "add_seq refuses empty");
        msgpack_sbuffer_destroy(&in);
        msgpack_sbuffer_destroy(&out);
    }
}

/* history answer: stored frames spliced into messages[] */
static void enc_history(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const msgpack_object *m, *o;
    {
        msgpack_sbuffer a;
        msgpack_packer ap;
        msgpack_sbuffer_init(&a);
        msgpack_packer_init(&ap, &a, msgpack_sbuffer_write);
        msgpack_pack_map(&ap, 2);
        proto_pack_str(&ap, "kind", 4);
        proto_pack_str(&ap, "text", 4);
        proto_pack_str(&ap, "id", 2);
        msgpack_pack_int(&ap, 7);
        const char *msgs[2] = {a.data, a.data};
        size_t lens[2] = {a.size, a.size};
        msgpack_sbuffer_clear(&sb);
        proto_enc_history(&pk, "bob", 3, msgs, lens, 2, 1);
        m = reparse();
        o = m ? get(m, "messages") : NULL;
        CHECK(m && obj_is(get(m, "kind"), "history") && obj_is(get(m, "with"), "bob") &&
                  get(m, "more")->type == MSGPACK_OBJECT_BOOLEAN && get(m, "more")->via.boolean,
              "history header");
        CHECK(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2 &&
                  get(&o->via.array.ptr[1], "id")->via.u64 == 7,
              "history messages");
        msgpack_sbuffer_destroy(&a);
    }
}

static void enc_sync_end(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const msgpack_object *m;
    msgpack_sbuffer_clear(&sb);
    proto_enc_sync_end(&pk, 1, 9);
    m = reparse();
    CHECK(m && obj_is(get(m, "kind"), "sync") &&
              get(m, "recovered")->type == MSGPACK_OBJECT_BOOLEAN &&
              get(m, "recovered")->via.boolean && get(m, "seq")->via.u64 == 9,
          "sync end");
}

static void enc_presence(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const msgpack_object *m;
    msgpack_sbuffer_clear(&sb);
    proto_enc_presence(&pk, 0, "bob", 3);
    m = reparse();
    CHECK(m && m->via.map.size == 2 && obj_is(get(m, "kind"), "offline") &&
              obj_is(get(m, "from"), "bob"),
          "offline");
    msgpack_sbuffer_clear(&sb);
    proto_enc_presence(&pk, 1, "bob", 3);
    m = reparse();
    CHECK(m && obj_is(get(m, "kind"), "online"), "online");
}

static void enc_typing(void **state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const msgpack_object *m;
    msgpack_sbuffer_clear(&sb);
    proto_enc_typing(&pk, "alice", 5, "#dev", 4);
    m = reparse();
    CHECK(m && obj_is(get(m, "kind"), "typing") && obj_is(get(m, "from"), "alice") &&
              obj_is(get(m, "to"), "#dev"),
          "typing");
}

static void valid_names(void **state)
{
    CHECK(proto_valid_user("a", 1), "user a");
    CHECK(!proto_valid_user("", 0), "empty user");
    CHECK(!proto_valid_user("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 33), "33-char user");
    CHECK(!proto_valid_user("a b", 3), "space in user");
    CHECK(!proto_valid_user("\xc3\xa9", 2), "non-ASCII user");
    CHECK(proto_valid_group("#a", 2) && !proto_valid_group("#", 1) && !proto_valid_group("a", 1),
          "groups");
    CHECK(proto_valid_gwid("gw-1.example:8080", 17), "gwid");
    CHECK(!proto_valid_gwid("gw#1", 4) && !proto_valid_gwid("", 0), "bad gwid");
}

static void valid_utf8_empty(void **state)
{
    CHECK(proto_valid_utf8("", 0), "empty utf8");
}

static void mp_check_whole_frame(void **state)
{
    CHECK(proto_mp_check("\x81\xa1k\xa1v", 5) == 0, "mp_check ok");
    CHECK(proto_mp_check("\x81\xa1k\xa1v\x00", 6) == 1, "mp_check trailing");
    CHECK(proto_mp_check("\x81\xa1k", 3) == -1, "mp_check truncated");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(decode_refuses_each_bad_case),
    cmocka_unit_test(error_names_the_field),
    cmocka_unit_test(error_carries_valid_cid),
    cmocka_unit_test(error_echoes_ascii_kind_only),
    cmocka_unit_test(group_members_limit_1000),
    cmocka_unit_test(deep_nesting_refused),
    cmocka_unit_test(decode_text),
    cmocka_unit_test(decode_sync),
    cmocka_unit_test(decode_read),
    cmocka_unit_test(decode_typing),
    cmocka_unit_test(decode_history),
    cmocka_unit_test(decode_group),
    cmocka_unit_test(decode_block),
    cmocka_unit_test(decode_lifecycle),
    cmocka_unit_test(enc_error),
    cmocka_unit_test(enc_hello),
    cmocka_unit_test(enc_hello_roles),
    cmocka_unit_test(enc_users_pages),
    cmocka_unit_test(add_seq_to_stored_frame),
    cmocka_unit_test(enc_history),
    cmocka_unit_test(enc_sync_end),
    cmocka_unit_test(enc_presence),
    cmocka_unit_test(enc_typing),
    cmocka_unit_test(valid_names),
    cmocka_unit_test(valid_utf8_empty),
    cmocka_unit_test(mp_check_whole_frame),
};

UNIT_MAIN("proto", tests, unit_bufs_init, unit_bufs_free)
