/* test_redisurl.c - redis:// URL parsing: a table of accepted URLs with the
 * fields they give, and of refused ones; the describe() string never shows
 * the password. */
#include <string.h>

#include "redisurl.h"
#include "unit.h"

static const struct {
    const char *url, *host, *user, *password;
    int port, has_password, db;
} good[] = {
    {"redis://127.0.0.1:6390", "127.0.0.1", "", "", 6390, 0, 0},
    {"redis://localhost", "localhost", "", "", 6379, 0, 0},
    {"redis://redis:6379/2", "redis", "", "", 6379, 0, 2},
    {"redis://:s3cret@host:7000", "host", "", "s3cret", 7000, 1, 0},
    {"redis://app:pw@host/15", "host", "app", "pw", 6379, 1, 15},
    {"redis://:p%40ss%2Fw@host", "host", "", "p@ss/w", 6379, 1, 0},
    {"redis://[::1]:6380", "::1", "", "", 6380, 0, 0},
    {"redis://[::1]", "::1", "", "", 6379, 0, 0},
    {"unix:///run/redis/redis.sock", "/run/redis/redis.sock", "", "", 0, 0, 0},
    {"unix://:pw@/tmp/r.sock?db=3", "/tmp/r.sock", "", "pw", 0, 1, 3},
    {"unix://app:p%40w@/tmp/r.sock", "/tmp/r.sock", "app", "p@w", 0, 1, 0},
};

static const char *const bad[] = {
    "",
    "127.0.0.1:6379",
    "http://host:6379",
    "redis://",
    "redis://host:",
    "redis://host:0",
    "redis://host:65536",
    "redis://host:12ab",
    "redis://host:-1",
    "redis://host/abc",
    "redis://host/-1",
    "redis://[::1",
    "redis://:pw%4@host",
    "redis://:pw%zz@host",
    "redis://host:6379/1/2",
    "unix://",
    "unix:///",
    "unix://host/tmp/r.sock",
    "unix://relative.sock",
    "unix:///tmp/r.sock?db=x",
    "unix:///tmp/r.sock?timeout=3",
    "unix://:pw%zz@/tmp/r.sock",
    "unix:///tmp/"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaa.sock",
};

static void accepts_good_urls(void **state)
{
    char err[256], buf[512];
    redisurl u;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = redisurl_parse(good[i].url, &u, err, sizeof(err));
        CHECK(rc == 0, "good[%zu] %s refused: %s", i, good[i].url, err);
        if (rc) continue;
        CHECK(strcmp(u.host, good[i].host) == 0, "good[%zu] host '%s'", i, u.host);
        CHECK(u.port == good[i].port, "good[%zu] port %d", i, u.port);
        CHECK(strcmp(u.user, good[i].user) == 0, "good[%zu] user '%s'", i, u.user);
        CHECK(strcmp(u.password, good[i].password) == 0, "good[%zu] password '%s'", i, u.password);
        CHECK(u.has_password == good[i].has_password, "good[%zu] has_password", i);
        CHECK(u.db == good[i].db, "good[%zu] db %d", i, u.db);
        redisurl_describe(&u, buf, sizeof(buf));
        CHECK(!u.has_password || strstr(buf, u.password) == NULL,
              "good[%zu] describe leaks the password: %s", i, buf);
    }
}

static void refuses_bad_urls_with_reason(void **state)
{
    char err[256];
    redisurl u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(redisurl_parse(bad[i], &u, err, sizeof(err)) != 0, "bad[%zu] accepted: %s", i,
              bad[i]);
        CHECK(err[0] != '\0', "bad[%zu] gives no reason", i);
    }
}

/* an over-long host is refused, not truncated */
static void refuses_over_long_host(void **state)
{
    char err[256];
    redisurl u;
    char longurl[600] = "redis://";
    memset(longurl + 8, 'h', 400);
    longurl[408] = '\0';
    CHECK(redisurl_parse(longurl, &u, err, sizeof(err)) != 0, "400-byte host accepted");
}

static void describes_unix_socket(void **state)
{
    char err[256], buf[512] = "";
    redisurl u;
    CHECK(redisurl_parse("unix:///tmp/r.sock?db=2", &u, err, sizeof(err)) == 0 && u.unix_socket &&
              strcmp(redisurl_describe(&u, buf, sizeof buf), "unix:/tmp/r.sock/2") == 0,
          "unix describe: %s", buf);
}

static void tcp_url_is_not_unix(void **state)
{
    char err[256];
    redisurl u;
    CHECK(redisurl_parse("redis://h", &u, err, sizeof(err)) == 0 && !u.unix_socket, "tcp flag");
}

/* redis-cluster://: seeds in order, the first as host/port, a shared password,
 * no db; refusals say why */
static void cluster_urls(void **state)
{
    redisurl u;
    char err[200], d[300];
    int rc =
        redisurl_parse("redis-cluster://:pw@10.0.0.1:7000,[::1]:7001,node3", &u, err, sizeof err);
    CHECK(rc == 0 && u.cluster && u.nseeds == 3, "three seeds: %s", rc ? err : "");
    CHECK(strcmp(u.seeds[0].host, "10.0.0.1") == 0 && u.seeds[0].port == 7000 &&
              strcmp(u.seeds[1].host, "::1") == 0 && u.seeds[1].port == 7001 &&
              strcmp(u.seeds[2].host, "node3") == 0 && u.seeds[2].port == 6379,
          "the seeds");
    CHECK(strcmp(u.host, "10.0.0.1") == 0 && u.port == 7000 && u.has_password &&
              strcmp(u.password, "pw") == 0 && u.db == 0 && !u.unix_socket,
          "host/port: the first seed; the password");
    redisurl_describe(&u, d, sizeof d);
    CHECK(strstr(d, "cluster") && !strstr(d, "pw"), "described without the password: %s", d);
    CHECK(redisurl_parse("redis-cluster://h", &u, err, sizeof err) == 0 && u.nseeds == 1 &&
              u.port == 6379,
          "one seed, default port");
    static const char *const refused[] = {
        "redis-cluster://",          "redis-cluster://h:1/2", "redis-cluster://h:1,",
        "redis-cluster://,h:1",      "redis-cluster://h:0",   "redis-cluster://h?x=1",
        "redis-cluster://[::1:7000",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        err[0] = '\0';
        CHECK(redisurl_parse(refused[i], &u, err, sizeof err) < 0 && err[0], "refused: %s (%s)",
              refused[i], err);
    }
    char many[400] = "redis-cluster://";
    for (int i = 0; i <= REDISURL_SEEDS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sh%d", i ? "," : "", i);
    CHECK(redisurl_parse(many, &u, err, sizeof err) < 0, "more than %d seeds refused",
          REDISURL_SEEDS_MAX);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(cluster_urls),
    cmocka_unit_test(accepts_good_urls),
    cmocka_unit_test(refuses_bad_urls_with_reason),
    cmocka_unit_test(refuses_over_long_host),
    cmocka_unit_test(describes_unix_socket),
    cmocka_unit_test(tcp_url_is_not_unix),
};

UNIT_MAIN("redisurl", tests, NULL, NULL)
