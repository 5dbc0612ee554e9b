/* test_cluster.c - Redis Cluster hash slots, slot maps and redirections
 * (common/cluster.h). Replies are parsed from RESP text by hiredis's own
 * reader, as they come off a socket. */
#include "cluster.h"
#include "keys.h"
#include "unit.h"

#include <hiredis/read.h>

/* the reply RESP text resp decodes to (freed by the caller) */
static redisReply *reply_of(const char *resp)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    redisReaderFeed(rd, resp, strlen(resp));
    if (redisReaderGetReply(rd, &r) != REDIS_OK) r = NULL;
    redisReaderFree(rd);
    return r;
}

static unsigned slot_of(const char *key)
{
    return cluster_keyslot(key, strlen(key));
}

/* The specification's vectors and what CLUSTER KEYSLOT answers on Redis 7. */
static void keyslot_matches_redis(void **state)
{
    CHECK(cluster_crc16("123456789", 9) == 0x31C3, "CRC16 check value 0x%x",
          cluster_crc16("123456789", 9));
    CHECK(slot_of("foo") == 12182, "foo -> %u", slot_of("foo"));
    CHECK(slot_of("bar") == 5061, "bar -> %u", slot_of("bar"));
    CHECK(slot_of("") == 0, "the empty key -> %u", slot_of(""));
    CHECK(slot_of("{user1000}.following") == slot_of("{user1000}.followers") &&
              slot_of("{user1000}.following") == slot_of("user1000"),
          "the tag decides");
    CHECK(slot_of("foo{}{bar}") == cluster_crc16("foo{}{bar}", 10) % CLUSTER_SLOTS,
          "an empty first tag: the whole key");
    CHECK(slot_of("foo{{bar}}zap") == slot_of("{bar"), "the tag starts after the first {");
    CHECK(slot_of("foo{bar}{zap}") == slot_of("bar"), "the first tag only");
    CHECK(slot_of("x{") == cluster_crc16("x{", 2) % CLUSTER_SLOTS, "no closing }");
}

/* Every key of a user, conversation or group shares its tag's slot. */
static void parley_keys_share_their_tag(void **state)
{
    char a[KEYS_MAX], b[KEYS_MAX];
    keys_fmt(a, sizeof a, KEY_INBOX, "alice");
    keys_fmt(b, sizeof b, KEY_MENTIONS, "alice");
    CHECK(slot_of(a) == slot_of(b) && slot_of(a) == slot_of("u:alice"), "user keys: %s %s", a, b);
    keys_fmt(a, sizeof a, KEY_HISTORY, "alice|bob");
    keys_fmt(b, sizeof b, KEY_HISTORY_BYTES, "alice|bob");
    CHECK(slot_of(a) == slot_of(b) && slot_of(a) == slot_of("c:alice|bob"), "conversation keys");
    keys_fmt(a, sizeof a, KEY_GROUP_META, "#dev");
    keys_fmt(b, sizeof b, KEY_GROUP_MEMBERS, "#dev");
    CHECK(slot_of(a) == slot_of(b) && slot_of(a) == slot_of("g:#dev"), "group keys");
}

static void map_from_slots_reply(void **state)
{
    static cluster_map m;
    char err[160];
    redisReply *r =
        reply_of("*3\r\n"
                 "*3\r\n:5461\r\n:10922\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$3\r\nid2\r\n"
                 "*4\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$3\r\nid1\r\n"
                 "*2\r\n$9\r\n127.0.0.1\r\n:7004\r\n"
                 "*3\r\n:10923\r\n:16383\r\n*2\r\n$0\r\n\r\n:7002\r\n");
    CHECK(r != NULL, "reply parsed");
    int rc = cluster_map_from_slots(&m, r, "10.0.0.9", err, sizeof err);
    CHECK(rc == 0 && m.nnodes == 3 && m.covered == CLUSTER_SLOTS, "map: %s", rc ? err : "");
    int n0 = cluster_map_owner(&m, 0), n1 = cluster_map_owner(&m, 5461),
        n2 = cluster_map_owner(&m, 16383);
    CHECK(n0 >= 0 && m.nodes[n0].port == 7000 && strcmp(m.nodes[n0].id, "id1") == 0,
          "slot 0 on 7000");
    CHECK(n1 >= 0 && m.nodes[n1].port == 7001 && cluster_map_owner(&m, 10922) == n1,
          "5461..10922 on 7001");
    CHECK(n2 >= 0 && m.nodes[n2].port == 7002 && strcmp(m.nodes[n2].host, "10.0.0.9") == 0,
          "an unknown endpoint is the node asked");
    CHECK(cluster_map_owner(&m, CLUSTER_SLOTS) == -1, "no slot 16384");
    freeReplyObject(r);

    r = reply_of("*1\r\n*3\r\n:0\r\n:99\r\n*2\r\n$1\r\nh\r\n:7000\r\n");
    rc = cluster_map_from_slots(&m, r, NULL, err, sizeof err);
    CHECK(rc == 0 && m.covered == 100 && cluster_map_owner(&m, 100) == -1, "a partial map");
    freeReplyObject(r);

    static const char *const bad[] = {
        "$2\r\nno\r\n",                                           /* not an array */
        "*1\r\n*2\r\n:0\r\n:5\r\n",                               /* no master */
        "*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n$1\r\nh\r\n:7000\r\n",     /* end < start */
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:7000\r\n", /* past the end */
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n",        /* port 0 */
        "*2\r\n*3\r\n:0\r\n:9\r\n*2\r\n$1\r\nh\r\n:1\r\n"
        "*3\r\n:9\r\n:10\r\n*2\r\n$1\r\ni\r\n:2\r\n", /* slot 9 twice */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = reply_of(bad[i]);
        rc = cluster_map_from_slots(&m, r, NULL, err, sizeof err);
        CHECK(rc < 0 && m.nnodes == 0 && m.covered == 0 && cluster_map_owner(&m, 0) == -1,
              "malformed reply %zu refused, the map emptied", i);
        freeReplyObject(r);
    }
}

static void redirects(void **state)
{
    cluster_redirect d;
    const char *moved = "MOVED 3999 127.0.0.1:6381";
    CHECK(cluster_parse_redirect(moved, strlen(moved), &d) == 1 && !d.ask && d.slot == 3999 &&
              strcmp(d.host, "127.0.0.1") == 0 && d.port == 6381,
          "MOVED");
    const char *ask = "ASK 12 ::1:7002";
    CHECK(cluster_parse_redirect(ask, strlen(ask), &d) == 1 && d.ask && d.slot == 12 &&
              strcmp(d.host, "::1") == 0 && d.port == 7002,
          "ASK with an IPv6 host");
    const char *other = "ERR unknown command";
    CHECK(cluster_parse_redirect(other, strlen(other), &d) == 0, "another error");
    static const char *const bad[] = {
        "MOVED",     "MOVED 1",    "MOVED x h:1",     "MOVED 16384 h:1",
        "MOVED 1 h", "MOVED 1 h:", "MOVED 1 h:70000", "ASK 1 :1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(cluster_parse_redirect(bad[i], strlen(bad[i]), &d) != 1, "malformed: %s", bad[i]);
}

/* every slot has a tag of at most 4 characters that hashes to it */
static void every_slot_has_a_tag(void **state)
{
    unsigned longest = 0;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++) {
        const char *t = cluster_slot_tag(s);
        size_t n = strlen(t);
        CHECK(n >= 1 && n <= CLUSTER_TAG_MAX && cluster_keyslot(t, n) == s, "slot %u: tag '%s'", s,
              t);
        char key[32];
        snprintf(key, sizeof key, "parley:{%s}:ids", t);
        CHECK(cluster_keyslot(key, strlen(key)) == s, "a key with the tag of slot %u", s);
        if (n > longest) longest = (unsigned)n;
    }
    CHECK(longest <= CLUSTER_TAG_MAX, "tags of at most %u characters", longest);
    CHECK(cluster_slot_tag(CLUSTER_SLOTS)[0] == '\0', "no tag past the last slot");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_slot_has_a_tag),
    cmocka_unit_test(keyslot_matches_redis),
    cmocka_unit_test(parley_keys_share_their_tag),
    cmocka_unit_test(map_from_slots_reply),
    cmocka_unit_test(redirects),
};

UNIT_MAIN("cluster", tests, NULL, NULL)
