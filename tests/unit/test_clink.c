/* test_clink.c - the pure parts of the cluster link (common/clink.h): which
 * slot a command is routed by, and what the link does with an error reply.
 * The link itself runs against real clusters in
 * tests/integration/clink.test.mjs. */
#include "clink.h"
#include "unit.h"

static int slot_of(int argc, const char **argv)
{
    return clink_key_slot(argc, argv, NULL);
}

static unsigned keyslot(const char *key)
{
    return cluster_keyslot(key, strlen(key));
}

/* A plain command goes by argv[1], hash tag and all. */
static void routes_by_first_key(void **state)
{
    const char *get[] = {"GET", "parley:{u:alice}:inbox"};
    CHECK(slot_of(2, get) == (int)keyslot("u:alice"), "GET -> %d", slot_of(2, get));
    const char *mset[] = {"mset", "{a}x", "1", "{b}y", "2"};
    CHECK(slot_of(5, mset) == (int)keyslot("a"), "a multi-key command: its first key");
    const char *bin[] = {"SET", "k\0ey", "v"};
    size_t lens[] = {3, 4, 1};
    CHECK(clink_key_slot(3, bin, lens) == (int)cluster_crc16("k\0ey", 4) % CLUSTER_SLOTS,
          "binary keys with lengths");
    const char *one[] = {"EXEC"};
    CHECK(slot_of(1, one) == CLINK_ANY, "no argument, no key");
}

/* Scripts and functions go by the first of their KEYS; none: any master. */
static void routes_scripts_by_first_of_keys(void **state)
{
    const char *e[] = {"EVALSHA", "abc", "2", "{c:x}:history", "{c:x}:ids", "arg"};
    CHECK(slot_of(6, e) == (int)keyslot("c:x"), "EVALSHA numkeys 2");
    const char *f[] = {"fcall", "send", "1", "{u:bob}:inbox"};
    CHECK(slot_of(4, f) == (int)keyslot("u:bob"), "FCALL, lower case");
    const char *ro[] = {"FCALL_RO", "f", "1", "k"};
    CHECK(slot_of(4, ro) == (int)keyslot("k"), "FCALL_RO");
    const char *none[] = {"EVAL", "return 1", "0", "arg"};
    CHECK(slot_of(4, none) == CLINK_ANY, "numkeys 0: any master");
    const char *bad1[] = {"EVAL", "return 1", "2", "k"};
    CHECK(slot_of(4, bad1) == CLINK_BAD, "numkeys beyond argc");
    const char *bad2[] = {"EVALSHA", "x", "-1"};
    CHECK(slot_of(3, bad2) == CLINK_BAD, "a negative numkeys");
    const char *bad3[] = {"EVALSHA", "x", "1x", "k"};
    CHECK(slot_of(4, bad3) == CLINK_BAD, "numkeys not a number");
    const char *bad4[] = {"EVAL", "x"};
    CHECK(slot_of(2, bad4) == CLINK_BAD, "no numkeys");
}

/* Commands without a key go to any master. */
static void keyless_commands(void **state)
{
    static const char *names[] = {"PING",   "publish", "INFO", "TIME",   "FUNCTION",
                                  "SCRIPT", "CLIENT",  "WAIT", "cluster"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *argv[] = {names[i], "x", "y"};
        CHECK(slot_of(3, argv) == CLINK_ANY, "%s is keyless", names[i]);
    }
    const char *pub[] = {"PUBLISH", "parley:u:alice", "m"};
    CHECK(slot_of(3, pub) == CLINK_ANY, "PUBLISH's channel is no key");
    CHECK(clink_key_slot(0, NULL, NULL) == CLINK_BAD, "nothing");
}

static int kind(const char *e)
{
    return clink_error_kind(e, strlen(e));
}

/* Redirections and the errors worth a resend; everything else is final. */
static void error_kinds(void **state)
{
    CHECK(kind("MOVED 3999 127.0.0.1:6381") == CLINK_ERR_MOVED, "MOVED");
    CHECK(kind("ASK 3999 127.0.0.1:6381") == CLINK_ERR_ASK, "ASK");
    CHECK(kind("TRYAGAIN Multiple keys request during rehashing of slot") == CLINK_ERR_RETRY,
          "TRYAGAIN");
    CHECK(kind("CLUSTERDOWN The cluster is down") == CLINK_ERR_RETRY, "CLUSTERDOWN");
    CHECK(kind("LOADING Redis is loading the dataset in memory") == CLINK_ERR_RETRY, "LOADING");
    CHECK(kind("MASTERDOWN Link with MASTER is down") == CLINK_ERR_RETRY, "MASTERDOWN");
    CHECK(kind("ERR unknown command") == CLINK_ERR_FINAL, "ERR");
    CHECK(kind("NOSCRIPT No matching script") == CLINK_ERR_FINAL, "NOSCRIPT: the caller's");
    CHECK(kind("ASKING") == CLINK_ERR_FINAL, "a word that starts with ASK");
    CHECK(kind("MOVEDX 1 h:1") == CLINK_ERR_FINAL, "MOVEDX");
    CHECK(kind("CROSSSLOT Keys in request don't hash to the same slot") == CLINK_ERR_FINAL,
          "CROSSSLOT");
    CHECK(clink_error_kind(NULL, 0) == CLINK_ERR_FINAL, "NULL");
}

/* Keyless commands kept in order: PUBLISH by its channel, the rest on slot 0;
 * commands with keys as clink_key_slot. */
static void ordered_keyless(void **state)
{
    const char *pub[] = {"PUBLISH", "parley:rt:7", "x"};
    CHECK(clink_order_slot(3, pub, NULL) == (int)keyslot("parley:rt:7"), "PUBLISH by channel");
    const char *ev[] = {"EVALSHA", "abc", "0", "split"};
    CHECK(clink_order_slot(4, ev, NULL) == 0, "a script with no keys: slot 0");
    const char *info[] = {"INFO", "memory"};
    CHECK(clink_order_slot(2, info, NULL) == 0, "INFO: slot 0");
    const char *get[] = {"GET", "parley:{u:alice}:inbox"};
    CHECK(clink_order_slot(2, get, NULL) == (int)keyslot("u:alice"), "a key: its slot");
    const char *bad[] = {"EVALSHA", "abc", "x"};
    CHECK(clink_order_slot(3, bad, NULL) == CLINK_BAD, "a bad numkeys");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(routes_by_first_key), cmocka_unit_test(routes_scripts_by_first_of_keys),
    cmocka_unit_test(keyless_commands),    cmocka_unit_test(error_kinds),
    cmocka_unit_test(ordered_keyless),
};

UNIT_MAIN("clink", tests, NULL, NULL)
