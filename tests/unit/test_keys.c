/* test_keys.c - key formats, 1:1 conversation keys, routing slots. */
#include "keys.h"
#include "unit.h"

static void fmt_builds_every_key(void **state)
{
    char b[KEYS_MAX];
    CHECK(strcmp(keys_fmt(b, sizeof b, KEY_ACCOUNT, "alice"), "parley:{u:alice}:account") == 0,
          "account: %s", b);
    CHECK(strcmp(keys_fmt(b, sizeof b, KEY_INBOX, "bob"), "parley:{u:bob}:inbox") == 0, "inbox");
    CHECK(strcmp(keys_fmt(b, sizeof b, KEY_CIDS, "bob"), "parley:{u:bob}:cids") == 0, "cids: %s",
          b);
    CHECK(strcmp(keys_fmt(b, sizeof b, KEY_HISTORY, "alice|bob"), "parley:{c:alice|bob}:history") ==
              0,
          "history");
    CHECK(strcmp(keys_fmt(b, sizeof b, KEY_SLOT, 63u), "parley:slot:63") == 0, "slot key");
    CHECK(strcmp(keys_fmt(b, sizeof b, CHAN_ROUTER, 7u), "parley:rt:7") == 0, "router channel");
    CHECK(strcmp(keys_fmt(b, sizeof b, CHAN_GW, "gw1:8080"), "parley:gw:gw1:8080") == 0,
          "gateway channel");
    CHECK(strcmp(keys_fmt(b, sizeof b, CHAN_PRESENCE, "eve"), "parley:presence:eve") == 0,
          "presence channel");
    CHECK(strcmp(keys_fmt(b, sizeof b, KEY_GW_ALIVE, "g"), "parley:gw:g:alive") == 0, "alive");
    CHECK(strcmp(KEY_USERS, "parley:users") == 0 && strcmp(KEY_IDS, "parley:ids") == 0, "globals");
}

static void fmt_truncates_safely(void **state)
{
    char small[8];
    keys_fmt(small, sizeof small, KEY_USERS "%s", "");
    CHECK(strlen(small) == 7, "truncates safely");
}

/* the longest per-user key fits in KEYS_MAX */
static void longest_user_key_fits(void **state)
{
    char b[KEYS_MAX];
    keys_fmt(b, sizeof b, KEY_CONTACTS, "abcdefghijklmnopqrstuvwxyz012345");
    CHECK(strlen(b) == 7 + 3 + 32 + 1 + 9, "longest user key %zu", strlen(b));
}

static void conv_pair_sorts_bytewise(void **state)
{
    char b[KEYS_MAX];
    CHECK(keys_conv_pair(b, sizeof b, "bob", "alice") == 9 && strcmp(b, "alice|bob") == 0,
          "pair sorted: %s", b);
    CHECK(keys_conv_pair(b, sizeof b, "alice", "bob") == 9 && strcmp(b, "alice|bob") == 0,
          "pair already sorted");
    CHECK(keys_conv_pair(b, sizeof b, "al", "al.x") == 7 && strcmp(b, "al|al.x") == 0,
          "prefix sorts first");
    CHECK(keys_conv_pair(b, sizeof b, "z", "Z") == 3 && strcmp(b, "Z|z") == 0, "bytewise");
    CHECK(keys_conv_pair(b, sizeof b, "me", "me") == 5 && strcmp(b, "me|me") == 0, "self");
}

static void conv_pair_needs_room(void **state)
{
    char b[KEYS_MAX];
    CHECK(keys_conv_pair(b, 9, "alice", "bob") == -1, "too small");
    CHECK(keys_conv_pair(b, 10, "alice", "bob") == 9, "exact fit");
}

static void conv_is_pair_or_group(void **state)
{
    char b[KEYS_MAX];
    CHECK(keys_conv(b, sizeof b, "bob", "alice") == 9 && strcmp(b, "alice|bob") == 0,
          "conv of a user: the pair");
    CHECK(keys_conv(b, sizeof b, "bob", "#team") == 5 && strcmp(b, "#team") == 0,
          "conv of a group: its name");
    CHECK(keys_conv(b, 5, "bob", "#team") == -1 && keys_conv(b, 6, "bob", "#team") == 5,
          "group name fit");
}

/* FNV-1a 32: known vectors, then mod 64 */
static void slot_is_fnv1a_mod_64(void **state)
{
    CHECK(keys_slot("", 0) == 2166136261u % 64, "empty");
    CHECK(keys_slot("a", 1) == 0xe40c292cu % 64, "a: %u", keys_slot("a", 1));
    CHECK(keys_slot("foobar", 6) == 0xbf9cf968u % 64, "foobar: %u", keys_slot("foobar", 6));
    CHECK(keys_slot("alice|bob", 9) == 32 && keys_slot("#dev", 4) == 41, "stable slots");
    CHECK(keys_slot("alice|bob", 9) == keys_slot("alice|bob!", 9), "uses len");
}

static void slots_spread_over_all(void **state)
{
    char b[KEYS_MAX];
    unsigned seen[PARLEY_SLOTS] = {0};
    for (int i = 0; i < 1000; i++) {
        /* not "u%d|v%d": FNV-1a's low bit is the XOR of the bytes' low bits,
         * so a key repeating the same digits would only reach even slots */
        int l = snprintf(b, sizeof b, "alice|user%d", i);
        unsigned s = keys_slot(b, (size_t)l);
        CHECK(s < PARLEY_SLOTS, "in range");
        seen[s]++;
    }
    int used = 0;
    for (unsigned i = 0; i < PARLEY_SLOTS; i++)
        used += seen[i] > 0;
    CHECK(used == PARLEY_SLOTS, "1000 conversations use all slots (%d)", used);
}

/* the two names of a session, and back from the gateway set's member */
static void session_names_round_trip(void **state)
{
    char sessid[96], member[64], user[33], back[96];
    keys_session_ids(sessid, sizeof sessid, member, sizeof member, "gw1:8080", "alice", 42);
    CHECK(strcmp(sessid, "gw1:8080#42") == 0, "sessid %s", sessid);
    CHECK(strcmp(member, "alice#42") == 0, "member %s", member);
    CHECK(keys_session_of_member(member, strlen(member), "gw1:8080", user, back, sizeof back) == 0,
          "member parses");
    CHECK(strcmp(user, "alice") == 0 && strcmp(back, sessid) == 0, "back: %s %s", user, back);
    CHECK(keys_session_of_member("alice", 5, "g", user, back, sizeof back) < 0, "no '#'");
    CHECK(keys_session_of_member("#7", 2, "g", user, back, sizeof back) < 0, "no user");
    CHECK(keys_session_of_member("Bad#7", 5, "g", user, back, sizeof back) < 0, "invalid user");
    CHECK(keys_session_of_member(NULL, 0, "g", user, back, sizeof back) < 0, "no member");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(fmt_builds_every_key),     cmocka_unit_test(fmt_truncates_safely),
    cmocka_unit_test(longest_user_key_fits),    cmocka_unit_test(conv_pair_sorts_bytewise),
    cmocka_unit_test(conv_pair_needs_room),     cmocka_unit_test(conv_is_pair_or_group),
    cmocka_unit_test(slot_is_fnv1a_mod_64),     cmocka_unit_test(slots_spread_over_all),
    cmocka_unit_test(session_names_round_trip),
};

UNIT_MAIN("keys", tests, NULL, NULL)
