/* test_cli.c - how the admin CLI prints stored frames (tools/cli/entry.c):
 * a history message in its current state (edited, deleted with who and when,
 * reactions, mentions, a reply with a quote of the replied message when it is
 * on the same page), and an inbox entry, an old full copy or one of the
 * references of issue 14 ({seq, id, w} texts, {k: "e"|"d"|"r"} events). The
 * source is compiled in here: `parley` is a program, not a library. */
#define UNIT_WITH_BUFS
#include "../../tools/cli/entry.c"
#include "unit.h"

/* 1700000000000 ms */
#define T0     "2023-11-14T22:13:20.000Z"
#define THUMBS "x:f09f918d" /* U+1F44D, 4 bytes */

static char printed[4096];

/* Prints the entry spec (mp_build) into printed; returns its type. */
static cli_entry_type print_spec(const char *spec, const cli_page *page)
{
    sb.size = 0;
    mp_build(&sb, spec);
    FILE *f = fmemopen(printed, sizeof(printed), "w");
    assert_non_null(f);
    cli_entry_type t = cli_entry_print(f, sb.data, sb.size, page);
    fputc('\0', f);
    fclose(f);
    return t;
}

static void add_spec(cli_page *page, const char *spec)
{
    sb.size = 0;
    mp_build(&sb, spec);
    assert_int_equal(cli_page_add(page, sb.data, sb.size), 0);
}

static void history_text_prints_its_fields_in_order(void **state)
{
    (void)state;
    assert_int_equal(print_spec("{7 s:kind s:text s:data s:hi s:id u:7 s:from s:alice s:to s:bob "
                                "s:sent u:1700000000000 s:cid s:c1",
                                NULL),
                     CLI_ENTRY_FRAME);
    CHECK(!strcmp(printed, "id=7 from=alice to=bob sent=" T0 " cid=c1 data=\"hi\""), "%s", printed);
}

static void history_edited_shows_the_time_reactions_and_mentions(void **state)
{
    (void)state;
    print_spec("{9 s:kind s:text s:id u:9 s:from s:alice s:to s:#g s:data s:@bob_fixed s:sent "
               "u:1700000000000 s:edited u:1700000060500 s:mentions [1 s:bob s:reactions {2 " THUMBS
               " [2 s:bob s:carol s:ok [1 s:alice",
               NULL);
    CHECK(!strcmp(printed, "id=9 from=alice to=#g sent=" T0 " mentions=bob data=\"@bob_fixed\" "
                           "edited=2023-11-14T22:14:20.500Z reactions={\"\xf0\x9f\x91\x8d\": "
                           "bob,carol; \"ok\": alice}"),
          "%s", printed);
}

static void history_deleted_shows_who_and_when_not_data_or_reactions(void **state)
{
    (void)state;
    print_spec("{9 s:kind s:text s:id u:10 s:from s:alice s:to s:bob s:data s: s:sent "
               "u:1700000000000 s:deleted u:1700000001000 s:by s:carol s:reply_to u:9 s:reactions "
               "{1 s:ok [1 s:bob",
               NULL);
    CHECK(!strcmp(printed, "id=10 from=alice to=bob sent=" T0 " reply_to=9 [message deleted by "
                           "carol at 2023-11-14T22:13:21.000Z]"),
          "%s", printed);
}

static void reply_quotes_the_message_when_on_the_page(void **state)
{
    (void)state;
    cli_page page = {0};
    add_spec(&page, "{3 s:id u:3 s:data s:short s:from s:a");
    /* 39 ASCII bytes then a 4-byte emoji: the cut at 40 falls inside it */
    add_spec(&page, "{2 s:id u:5 s:data "
                    "s:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xf0\x9f\x91\x8d_tail");
    add_spec(&page, "{3 s:id u:6 s:data s: s:deleted u:1");
    add_spec(&page, "{1 s:data s:no_id_left_out");
    assert_int_equal(page.n, 3);
    print_spec("{3 s:id u:20 s:reply_to u:3 s:data s:yes", &page);
    CHECK(!strcmp(printed, "id=20 reply_to=3 (\"short\") data=\"yes\""), "%s", printed);
    print_spec("{2 s:id u:21 s:reply_to u:5", &page);
    CHECK(!strcmp(printed, "id=21 reply_to=5 (\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"...)"),
          "%s", printed);
    print_spec("{2 s:id u:22 s:reply_to u:6", &page);
    CHECK(!strcmp(printed, "id=22 reply_to=6 (a deleted message)"), "%s", printed);
    print_spec("{2 s:id u:23 s:reply_to u:4", &page);
    CHECK(!strcmp(printed, "id=23 reply_to=4"), "not on the page: the id alone (%s)", printed);
    print_spec("{2 s:id u:24 s:reply_to u:3", NULL);
    CHECK(!strcmp(printed, "id=24 reply_to=3"), "no page (%s)", printed);
    cli_page_free(&page);
    assert_null(page.msgs);
}

static void inbox_old_copy_prints_as_before(void **state)
{
    (void)state;
    assert_int_equal(
        print_spec("{5 s:seq u:4 s:kind s:text s:id u:7 s:from s:alice s:data s:hi", NULL),
        CLI_ENTRY_FRAME);
    CHECK(!strcmp(printed, "seq=4 id=7 from=alice data=\"hi\""), "%s", printed);
    print_spec("{3 s:kind s:read s:seq u:5 s:upto u:7", NULL);
    CHECK(!strcmp(printed, "kind=\"read\" seq=5 upto=7"), "%s", printed);
}

static void inbox_references_name_what_they_point_at(void **state)
{
    (void)state;
    cli_ref ref;
    assert_int_equal(print_spec("{3 s:seq u:11 s:id u:7 s:w s:bob", NULL), CLI_ENTRY_TEXT_REF);
    CHECK(!strcmp(printed, "seq=11 text id=7 with=bob"), "%s", printed);
    assert_int_equal(cli_entry_ref(sb.data, sb.size, &ref), CLI_ENTRY_TEXT_REF);
    assert_true(ref.ok);
    assert_int_equal(ref.id, 7);
    assert_string_equal(ref.with, "bob");

    assert_int_equal(print_spec("{6 s:seq u:12 s:k s:e s:id u:7 s:w s:#g s:from s:alice s:at "
                                "u:1700000000000",
                                NULL),
                     CLI_ENTRY_EVENT);
    CHECK(!strcmp(printed, "seq=12 edit id=7 with=#g from=alice at=" T0), "%s", printed);
    assert_int_equal(cli_entry_ref(sb.data, sb.size, &ref), CLI_ENTRY_EVENT);
    assert_string_equal(ref.with, "#g");

    print_spec("{6 s:seq u:13 s:k s:d s:id u:7 s:w s:bob s:by s:alice s:at u:1700000000000", NULL);
    CHECK(!strcmp(printed, "seq=13 delete id=7 with=bob by=alice at=" T0), "%s", printed);
    print_spec("{7 s:seq u:14 s:k s:r s:id u:7 s:w s:bob s:from s:carol s:emoji " THUMBS " s:on T",
               NULL);
    CHECK(!strcmp(printed, "seq=14 react id=7 with=bob from=carol emoji=\"\xf0\x9f\x91\x8d\" on"),
          "%s", printed);
    print_spec("{7 s:seq u:15 s:k s:r s:id u:7 s:w s:bob s:from s:carol s:emoji s:ok s:on F", NULL);
    CHECK(!strcmp(printed, "seq=15 react id=7 with=bob from=carol emoji=\"ok\" off"), "%s",
          printed);
    print_spec("{5 s:seq u:16 s:k s:z s:id u:7 s:w s:bob s:new u:1", NULL);
    CHECK(!strcmp(printed, "seq=16 k=\"z\" id=7 with=bob new=1"), "an unknown k (%s)", printed);
}

static void undecodable_entries_say_so(void **state)
{
    (void)state;
    cli_ref ref;
    assert_int_equal(print_spec("r:c1", NULL), CLI_ENTRY_BAD);
    CHECK(!strcmp(printed, "(undecodable entry, 1 bytes)"), "%s", printed);
    assert_int_equal(print_spec("[1 u:1", NULL), CLI_ENTRY_BAD);
    assert_int_equal(cli_entry_ref(sb.data, sb.size, &ref), CLI_ENTRY_BAD);
    assert_false(ref.ok);
    /* a reference without an id, or with a w that is no name, has no target */
    print_spec("{2 s:seq u:1 s:w u:5", NULL);
    assert_int_equal(cli_entry_ref(sb.data, sb.size, &ref), CLI_ENTRY_TEXT_REF);
    assert_false(ref.ok);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(history_text_prints_its_fields_in_order),
    cmocka_unit_test(history_edited_shows_the_time_reactions_and_mentions),
    cmocka_unit_test(history_deleted_shows_who_and_when_not_data_or_reactions),
    cmocka_unit_test(reply_quotes_the_message_when_on_the_page),
    cmocka_unit_test(inbox_old_copy_prints_as_before),
    cmocka_unit_test(inbox_references_name_what_they_point_at),
    cmocka_unit_test(undecodable_entries_say_so),
};

UNIT_MAIN("cli", tests, unit_bufs_init, unit_bufs_free)
