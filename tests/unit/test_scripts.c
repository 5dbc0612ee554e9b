/* test_scripts.c - the embedded Lua scripts: every script_id has its script,
 * every common/lua/NAME.lua has an id, names and handles are what `parley
 * scripts` prints. (What each script does is tested against a real Redis:
 * tests/integration/scripts.test.mjs.) */
#include "scripts.h"
#include "unit.h"

/* A script added to common/lua but not to the enum and the table of
 * scripts_run.c would otherwise crash the programs at their first load. */
static void every_id_has_its_script(void **state)
{
    char err[256] = "";
    assert_int_equal(scripts_check(err, sizeof err), 0);
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        CHECK(scripts_name(i) && scripts_name(i)[0], "script %d has no name", i);
        CHECK(scripts_source(i) && scripts_source(i)[0], "script %d has no source", i);
        CHECK(scripts_sha(i) && scripts_sha(i)[0], "script %d has no handle", i);
    }
    CHECK(scripts_name(SCRIPT__COUNT) == NULL, "an id past the end has no name");
}

static void names_and_handles_are_unique(void **state)
{
    for (int i = 0; i < SCRIPT__COUNT; i++)
        for (int j = i + 1; j < SCRIPT__COUNT; j++) {
            CHECK(strcmp(scripts_name(i), scripts_name(j)) != 0, "%d and %d share a name", i, j);
            CHECK(strcmp(scripts_sha(i), scripts_sha(j)) != 0, "%d and %d share a handle", i, j);
        }
}

/* EVAL scripts are called by the SHA1 of their source (40 hex digits); the
 * send function by its library name, parley_send_ + 16 hex digits */
static void handles_have_their_form(void **state)
{
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        const char *h = scripts_sha(i);
        if (scripts_is_function(i)) {
            CHECK(strncmp(h, "parley_", 7) == 0, "function %s: handle %s", scripts_name(i), h);
            continue;
        }
        CHECK(strlen(h) == 40 && strspn(h, "0123456789abcdef") == 40, "script %s: handle %s",
              scripts_name(i), h);
    }
    CHECK(scripts_is_function(SCRIPT_SEND), "send is a function");
    CHECK(scripts_is_function(SCRIPT_FANOUT) &&
              strncmp(scripts_sha(SCRIPT_FANOUT), "parley_fanout_", 14) == 0,
          "fanout is a function of its own library");
}

static void load_command_names_the_source(void **state)
{
    const char *argv[4];
    CHECK(scripts_load_argv(SCRIPT_SYNC, argv) == 3 && strcmp(argv[0], "SCRIPT") == 0 &&
              argv[2] == scripts_source(SCRIPT_SYNC),
          "sync loads with SCRIPT LOAD");
    CHECK(scripts_load_argv(SCRIPT_SEND, argv) == 4 && strcmp(argv[0], "FUNCTION") == 0 &&
              strcmp(argv[2], "REPLACE") == 0,
          "send loads with FUNCTION LOAD REPLACE");
    CHECK(scripts_missing("NOSCRIPT No matching script", 27), "NOSCRIPT is 'missing'");
    CHECK(scripts_missing("ERR Function not found", 22), "function not found is 'missing'");
    CHECK(!scripts_missing("ERR other", 9), "another error is not");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_id_has_its_script),
    cmocka_unit_test(names_and_handles_are_unique),
    cmocka_unit_test(handles_have_their_form),
    cmocka_unit_test(load_command_names_the_source),
};
UNIT_MAIN("scripts", tests, NULL, NULL)
