/* test_json.c - the HTTP API's JSON reader and string writer (common/json.c,
 * on jansson): a table of accepted and refused bodies, NUL bytes, escapes,
 * and writer round trips. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "unit.h"

static const char *const names[] = {"username", "password"};

/* parses body; on success copies the two values (or "<none>") into u and p */
static int parse(const char *body, char *u, char *p)
{
    char *vals[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    int rc = json_parse_strings(body, strlen(body), names, vals, lens, 2);
    if (rc == 0) {
        strcpy(u, vals[0] ? vals[0] : "<none>");
        strcpy(p, vals[1] ? vals[1] : "<none>");
        if (vals[0] && strlen(vals[0]) != lens[0]) rc = -2;
    }
    free(vals[0]);
    free(vals[1]);
    return rc;
}

static const struct {
    const char *body, *user, *pass;
} good[] = {
    {"{\"username\":\"ann\",\"password\":\"secret12\"}", "ann", "secret12"},
    {"  {\n \"password\" : \"x\" , \"username\":\"bob\" }\r\n", "bob", "x"},
    {"{}", "<none>", "<none>"},
    {"{\"other\":\"ignored\",\"username\":\"c\"}", "c", "<none>"},
    {"{\"username\":\"a\\\"b\\\\c\\/d\"}", "a\"b\\c/d", "<none>"},
    {"{\"username\":\"\\b\\f\\n\\r\\t\"}", "\b\f\n\r\t", "<none>"},
    {"{\"username\":\"\\u0041\\u00e9\\u20ac\"}", "A\xc3\xa9\xe2\x82\xac", "<none>"},
    {"{\"username\":\"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80", "<none>"},
    {"{\"username\":\"\xc3\xa9t\xc3\xa9\"}", "\xc3\xa9t\xc3\xa9", "<none>"},
    {"{\"username\":\"first\",\"username\":\"last\"}", "last", "<none>"},
    {"{\"username\":\"\"}", "", "<none>"},
};

static const char *const bad[] = {
    "",
    "   ",
    "[]",
    "\"username\"",
    "{",
    "{\"username\"}",
    "{\"username\":}",
    "{\"username\":1}",
    "{\"username\":null}",
    "{\"username\":true}",
    "{\"username\":{\"a\":\"b\"}}",
    "{\"username\":[\"a\"]}",
    "{\"username\":\"a\",}",
    "{,\"username\":\"a\"}",
    "{\"username\":\"a\"} x",
    "{\"username\":\"a\"}{}",
    "{\"username\" \"a\"}",
    "{\"username\":\"a\" \"password\":\"b\"}",
    "{username:\"a\"}",
    "{'username':'a'}",
    "{\"username\":\"unterminated}",
    "{\"username\":\"tab\there\"}",
    "{\"username\":\"nl\nhere\"}",
    "{\"username\":\"\\x41\"}",
    "{\"username\":\"\\u00\"}",
    "{\"username\":\"\\u00zz\"}",
    "{\"username\":\"\\ud83d\"}",
    "{\"username\":\"\\ud83d\\u0041\"}",
    "{\"username\":\"\\ude00\"}",
    "{\"username\":\"\xff\"}",
    "{\"username\":\"\xc3\"}",
    "{\"username\":\"\xc0\xaf\"}",
    "{\"username\":\"\xed\xa0\x80\"}",
    "{\"username\":\"\\u0000\"}",
};

static void accepts_good_bodies(void **state)
{
    char u[256], p[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = parse(good[i].body, u, p);
        CHECK(rc == 0, "good[%zu] refused: %s", i, good[i].body);
        if (rc == 0) {
            CHECK(strcmp(u, good[i].user) == 0, "good[%zu] username '%s'", i, u);
            CHECK(strcmp(p, good[i].pass) == 0, "good[%zu] password '%s'", i, p);
        }
    }
}

static void refuses_bad_bodies(void **state)
{
    char u[256], p[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(parse(bad[i], u, p) != 0, "bad[%zu] accepted: %s", i, bad[i]);
}

/* any member that is not a string refuses the body, a wanted one or not */
static void refuses_any_non_string_member(void **state)
{
    static const char *const bodies[] = {
        "{\"username\":\"a\",\"other\":1}",
        "{\"other\":null,\"username\":\"a\"}",
        "{\"username\":\"a\",\"other\":{\"x\":\"y\"}}",
        "{\"username\":\"a\",\"other\":[]}",
    };
    char u[64], p[64];
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        CHECK(parse(bodies[i], u, p) != 0, "bodies[%zu] accepted: %s", i, bodies[i]);
}

/* bodies are length-counted: a raw NUL byte is refused, inside a string or
 * after the object */
static void refuses_raw_nul_byte(void **state)
{
    static const char in_string[] = "{\"username\":\"a\0b\"}";
    static const char after[] = "{\"username\":\"a\"}\0";
    char *vals[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    assert_int_equal(json_parse_strings(in_string, sizeof in_string - 1, names, vals, lens, 2), -1);
    free(vals[0]);
    vals[0] = NULL;
    assert_int_equal(json_parse_strings(after, sizeof after - 1, names, vals, lens, 2), -1);
    free(vals[0]);
}

/* \u0000 in a value is kept and counted: the password may hold NUL bytes */
static void keeps_nul_escape_in_value(void **state)
{
    static const char body[] = "{\"password\":\"a\\u0000b\"}";
    char *vals[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    assert_int_equal(json_parse_strings(body, sizeof body - 1, names, vals, lens, 2), 0);
    assert_null(vals[0]);
    assert_non_null(vals[1]);
    assert_int_equal(lens[1], 3);
    assert_memory_equal(vals[1], "a\0b", 4);
    free(vals[1]);
}

/* A repeated member counts by its last value (as it always did for
 * strings); jansson keeps only that one, so an earlier value of another
 * type is not seen: {"username":1,"username":"a"} reads as "a" (the
 * hand-written reader refused it; docs/protocol.md, Parley's decisions). */
static void repeated_member_last_wins(void **state)
{
    static const char body[] = "{\"username\":1,\"username\":\"a\"}";
    char *vals[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    assert_int_equal(json_parse_strings(body, sizeof body - 1, names, vals, lens, 2), 0);
    assert_string_equal(vals[0], "a");
    free(vals[0]);
}

/* A member name holding \u0000 refuses the body (jansson cannot hold it;
 * the hand-written reader skipped that member). */
static void refuses_nul_in_member_name(void **state)
{
    static const char body[] = "{\"username\":\"a\",\"k\\u0000\":\"v\"}";
    char *vals[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    assert_int_equal(json_parse_strings(body, sizeof body - 1, names, vals, lens, 2), -1);
    free(vals[0]);
}

/* a value the caller already had is freed and replaced (ASan: no leak) */
static void replaces_value_already_set(void **state)
{
    static const char body[] = "{\"username\":\"new\"}";
    char *vals[2] = {strdup("old"), NULL};
    size_t lens[2] = {3, 0};
    assert_int_equal(json_parse_strings(body, sizeof body - 1, names, vals, lens, 2), 0);
    assert_string_equal(vals[0], "new");
    assert_int_equal(lens[0], 3);
    free(vals[0]);
}

static void writer_escapes(void **state)
{
    char out[64];
    size_t pos = 0;
    CHECK(json_put_str(out, sizeof(out), &pos, "a\"b\\c\n\x01", 7) == 0, "writer ok");
    out[pos] = '\0';
    /* jansson's escapes: short ones where JSON has them, else \u00XX */
    CHECK(strcmp(out, "\"a\\\"b\\\\c\\n\\u0001\"") == 0, "writer escapes: %s", out);
}

/* a NUL byte is escaped, UTF-8 passes through as it is */
static void writer_keeps_nul_and_utf8(void **state)
{
    char out[64];
    size_t pos = 0;
    assert_int_equal(json_put_str(out, sizeof(out), &pos, "a\0\xc3\xa9/", 5), 0);
    assert_int_equal(pos, 12);
    assert_memory_equal(out, "\"a\\u0000\xc3\xa9/\"", 12);
}

/* invalid UTF-8 is refused, and "" stands in its place so the document
 * around it stays valid JSON */
static void writer_refuses_invalid_utf8(void **state)
{
    char out[64];
    size_t pos = 3;
    assert_int_equal(json_put_str(out, sizeof(out), &pos, "a\xff", 2), -1);
    assert_int_equal(pos, 5);
    assert_memory_equal(out + 3, "\"\"", 2);
}

/* what the writer produces, the reader accepts back */
static void writer_round_trip(void **state)
{
    char body[128], u[64], p[64];
    const char *tricky = "q\"uo\\te\t\xc3\xa9";
    memcpy(body, "{\"username\":", 12);
    size_t pos = 12;
    CHECK(json_put_str(body, sizeof(body), &pos, tricky, strlen(tricky)) == 0, "writer body");
    body[pos++] = '}';
    body[pos] = '\0';
    CHECK(parse(body, u, p) == 0 && strcmp(u, tricky) == 0, "round trip: %s", body);
}

static void writer_never_overruns(void **state)
{
    char small[8];
    size_t pos = 0;
    CHECK(json_put_str(small, sizeof(small), &pos, "abcdefghij", 10) == -1, "overflow refused");
    CHECK(pos == 0, "pos untouched on overflow");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(accepts_good_bodies),
    cmocka_unit_test(refuses_bad_bodies),
    cmocka_unit_test(refuses_any_non_string_member),
    cmocka_unit_test(refuses_raw_nul_byte),
    cmocka_unit_test(keeps_nul_escape_in_value),
    cmocka_unit_test(replaces_value_already_set),
    cmocka_unit_test(repeated_member_last_wins),
    cmocka_unit_test(refuses_nul_in_member_name),
    cmocka_unit_test(writer_escapes),
    cmocka_unit_test(writer_keeps_nul_and_utf8),
    cmocka_unit_test(writer_refuses_invalid_utf8),
    cmocka_unit_test(writer_round_trip),
    cmocka_unit_test(writer_never_overruns),
};

UNIT_MAIN("json", tests, NULL, NULL)
