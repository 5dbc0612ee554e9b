/* test_secret.c - the token secret's source (--secret, --secret-file, the
 * default) and the refusal beyond loopback of the default, empty and short
 * secrets (secret.h). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "secret.h"
#include "token.h"
#include "unit.h"

#define GOOD "0123456789abcdef0123456789abcdef" /* 32 bytes: the shortest accepted */

static char err[512], warn[256];

/* a temporary file holding content; its path in a static buffer */
static const char *tmpfile_with(const char *content)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/parley-test-secret-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    if (write(fd, content, strlen(content)) != (ssize_t)strlen(content)) path[0] = '\0';
    close(fd);
    return path;
}

static int resolve(secret *s, const char *given, const char *file, int exposed)
{
    err[0] = '\0';
    return secret_resolve(s, given, file, exposed, err, sizeof err, warn, sizeof warn);
}

static void loopback_addresses(void **state)
{
    const char *yes[] = {"127.0.0.1", "127.1.2.3", "::1", "localhost"};
    const char *no[] = {"0.0.0.0", "::", "", "10.0.0.1", "128.0.0.1", "redis", "::ffff:127.0.0.1"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK(secret_addr_is_loopback(yes[i]) == 1, "%s is loopback", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK(secret_addr_is_loopback(no[i]) == 0, "%s is not loopback", no[i]);
    CHECK(secret_addr_is_loopback(NULL) == 0, "NULL");
}

static void exposed_refuses_default_empty_short(void **state)
{
    secret s;
    CHECK(resolve(&s, NULL, NULL, 1) < 0 && strstr(err, "published development secret"),
          "nothing given: %s", err);
    CHECK(resolve(&s, TOKEN_DEV_SECRET, NULL, 1) < 0 && strstr(err, "published development"),
          "the default given: %s", err);
    CHECK(resolve(&s, "", NULL, 1) < 0 && strstr(err, "--secret is empty"), "empty: %s", err);
    CHECK(resolve(&s, "0123456789abcdef0123456789abcde", NULL, 1) < 0 && strstr(err, "31 bytes"),
          "31 bytes: %s", err);
    CHECK(resolve(&s, GOOD, NULL, 1) == 0 && strcmp(s.value, GOOD) == 0 && !s.is_default &&
              warn[0] == '\0',
          "32 bytes accepted without a warning");
    CHECK(strchr(err, '\n') == NULL, "one line");
}

static void loopback_keeps_default_with_warning(void **state)
{
    secret s;
    CHECK(resolve(&s, NULL, NULL, 0) == 0 && s.is_default && strcmp(s.value, TOKEN_DEV_SECRET) == 0,
          "default on loopback");
    CHECK(strstr(warn, "development secret") != NULL, "warned: %s", warn);
    CHECK(resolve(&s, "", NULL, 0) == 0 && s.is_default, "empty falls back to the default");
    CHECK(resolve(&s, "short", NULL, 0) == 0 && strcmp(s.value, "short") == 0 &&
              strstr(warn, "5 bytes"),
          "short allowed, warned: %s", warn);
}

static void secret_file(void **state)
{
    secret s;
    const char *p = tmpfile_with(GOOD "\r\n\n");
    CHECK(p && p[0], "temp file");
    CHECK(resolve(&s, NULL, p, 1) == 0 && strcmp(s.value, GOOD) == 0, "trailing newlines dropped");
    CHECK(resolve(&s, "", p, 1) == 0 && strcmp(s.value, GOOD) == 0, "an empty --secret: the file");
    CHECK(resolve(&s, GOOD "x", p, 1) == 0 && strcmp(s.value, GOOD "x") == 0, "--secret wins");
    unlink(p);
    CHECK(resolve(&s, NULL, p, 0) < 0 && strstr(err, "cannot read"), "missing: %s", err);
    p = tmpfile_with("\n");
    CHECK(resolve(&s, NULL, p, 1) < 0 && strstr(err, "--secret-file is empty"), "empty: %s", err);
    CHECK(resolve(&s, NULL, p, 0) == 0 && s.is_default, "empty on loopback: the default");
    unlink(p);
    char *big = malloc(SECRET_FILE_MAX + 2);
    memset(big, 'a', SECRET_FILE_MAX + 1);
    big[SECRET_FILE_MAX + 1] = '\0';
    p = tmpfile_with(big);
    free(big);
    CHECK(resolve(&s, NULL, p, 1) < 0 && strstr(err, "longer than"), "oversize: %s", err);
    unlink(p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(loopback_addresses),
    cmocka_unit_test(exposed_refuses_default_empty_short),
    cmocka_unit_test(loopback_keeps_default_with_warning),
    cmocka_unit_test(secret_file),
};

UNIT_MAIN("secret", tests, NULL, NULL)
