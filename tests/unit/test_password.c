/* test_password.c - argon2id hashes: hash and verify, wrong password,
 * malformed hashes. */
#include "password.h"
#include "unit.h"

static int init(void **state)
{
    return password_init() == 0 ? 0 : -1;
}

/* one hash of "correct horse", made once by the setup of the tests that use
 * it (argon2id is slow on purpose) */
static char h1[PASSWORD_HASH_MAX];

static int hash_once(void **state)
{
    if (!h1[0] && password_hash("correct horse", 13, h1) < 0) return -1;
    return 0;
}

static void init_twice(void **state)
{
    CHECK(password_init() == 0 && password_init() == 0, "init twice");
}

static void hash_then_verify(void **state)
{
    char h[PASSWORD_HASH_MAX];
    CHECK(password_hash("correct horse", 13, h) == 0, "hash");
    CHECK(strncmp(h, "$argon2id$", 10) == 0, "argon2id string: %s", h);
    CHECK(password_verify(h, "correct horse", 13) == 0, "verify ok");
}

static void wrong_password_refused(void **state)
{
    CHECK(password_verify(h1, "correct horsf", 13) == -1, "wrong password");
    CHECK(password_verify(h1, "correct hors", 12) == -1, "prefix of password");
    CHECK(password_verify(h1, "correct horse!", 14) == -1, "longer password");
}

static void hashes_are_salted(void **state)
{
    char h2[PASSWORD_HASH_MAX];
    CHECK(password_hash("correct horse", 13, h2) == 0 && strcmp(h1, h2) != 0, "salted");
    CHECK(password_verify(h2, "correct horse", 13) == 0, "second hash verifies");
}

/* length-counted, so embedded NUL bytes matter */
static void nul_bytes_count(void **state)
{
    char h2[PASSWORD_HASH_MAX];
    CHECK(password_hash("ab\0cdefgh", 9, h2) == 0, "hash with NUL");
    CHECK(password_verify(h2, "ab\0cdefgh", 9) == 0, "verify with NUL");
    CHECK(password_verify(h2, "ab\0cdefgX", 9) == -1, "after NUL differs");
}

static void malformed_hash_refused(void **state)
{
    char h2[PASSWORD_HASH_MAX];
    CHECK(password_verify("", "x", 1) == -1, "empty hash");
    CHECK(password_verify("not a hash", "x", 1) == -1, "garbage hash");
    CHECK(password_verify(NULL, "x", 1) == -1, "NULL hash");
    strcpy(h2, h1);
    h2[strlen(h2) - 3] = h2[strlen(h2) - 3] == 'A' ? 'B' : 'A';
    CHECK(password_verify(h2, "correct horse", 13) == -1, "tampered hash");
    strcpy(h2, h1);
    h2[20] = '\0';
    CHECK(password_verify(h2, "correct horse", 13) == -1, "truncated hash");
    char longh[300];
    memset(longh, 'a', sizeof longh - 1);
    longh[sizeof longh - 1] = '\0';
    memcpy(longh, "$argon2id$", 10);
    CHECK(password_verify(longh, "correct horse", 13) == -1, "over-long hash");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(init_twice),
    cmocka_unit_test(hash_then_verify),
    cmocka_unit_test_setup(wrong_password_refused, hash_once),
    cmocka_unit_test_setup(hashes_are_salted, hash_once),
    cmocka_unit_test(nul_bytes_count),
    cmocka_unit_test_setup(malformed_hash_refused, hash_once),
};

UNIT_MAIN("password", tests, init, NULL)
