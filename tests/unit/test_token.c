/* test_token.c - session tokens: round trip, forgery, tampering, expiry and
 * strict parsing. */
#include "token.h"
#include "unit.h"

#define SECRET "s3cret-for-tests"
#define NOW    1700000000LL

static token_status verify(const char *tok, int64_t now, char *user, int64_t *exp)
{
    return token_verify(SECRET, tok, strlen(tok), now, user, exp);
}

/* alice's token, valid until NOW + 60: minted by the group setup */
static char tok[TOKEN_MAX];
static int tok_len;

static int mint_alice(void **state)
{
    tok_len = token_mint(SECRET, "alice", NOW + 60, tok, sizeof tok);
    return 0;
}

static void mint_then_verify(void **state)
{
    char t2[TOKEN_MAX + 8], user[33];
    int64_t exp = 0;
    int n = tok_len;
    CHECK(n > 0 && (size_t)n == strlen(tok), "mint length %d", n);
    CHECK(strncmp(tok, "alice:1700000060:", 17) == 0 && strlen(tok) == 17 + 64, "format %s", tok);
    CHECK(verify(tok, NOW, user, &exp) == TOKEN_OK && strcmp(user, "alice") == 0 && exp == NOW + 60,
          "round trip");
    CHECK(verify(tok, NOW, NULL, NULL) == TOKEN_OK, "NULL user and exp");
    CHECK(token_mint(SECRET, "alice", NOW + 60, t2, sizeof t2) == n && strcmp(tok, t2) == 0,
          "deterministic");
    for (const char *p = tok + 17; *p; p++)
        CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'), "lowercase hex");
}

/* expiry: exp <= now */
static void expires_at_exp(void **state)
{
    char user[33];
    CHECK(verify(tok, NOW + 60, user, NULL) == TOKEN_EXPIRED, "expired at exp");
    CHECK(verify(tok, NOW + 61, user, NULL) == TOKEN_EXPIRED, "expired after exp");
    CHECK(verify(tok, NOW + 59, user, NULL) == TOKEN_OK, "valid just before exp");
}

static void refuses_wrong_secret_or_signature(void **state)
{
    char t2[TOKEN_MAX + 8], user[33];
    CHECK(token_verify("other", tok, strlen(tok), NOW, user, NULL) == TOKEN_BAD_SIG,
          "wrong secret");
    strcpy(t2, tok);
    t2[strlen(t2) - 1] = t2[strlen(t2) - 1] == '0' ? '1' : '0';
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "flipped last sig digit");
    strcpy(t2, tok);
    t2[17] = t2[17] == 'a' ? 'b' : 'a';
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "flipped first sig digit");
    snprintf(t2, sizeof t2, "alice:%lld:%064d", NOW + 60, 0);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "all-zero signature");
}

/* tampered user or exp keeps the old signature */
static void refuses_tampered_user_or_exp(void **state)
{
    char t2[TOKEN_MAX + 8], user[33];
    snprintf(t2, sizeof t2, "alicf%s", tok + 5);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "tampered user");
    snprintf(t2, sizeof t2, "alice:1700000099%s", tok + 16);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "tampered exp");
    snprintf(t2, sizeof t2, "alice:17000000600%s", tok + 16);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "exp with extra digit");
}

/* expired and forged: the signature is checked first */
static void signature_checked_before_expiry(void **state)
{
    char t2[TOKEN_MAX + 8], user[33];
    token_mint(SECRET, "bob", NOW - 1, t2, sizeof t2);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_EXPIRED, "expired genuine token");
    t2[strlen(t2) - 1] ^= 1;
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "expired forged token is forged");
}

static void refuses_malformed(void **state)
{
    char user[33];
    const char *sig = tok + 17;
    char buf[256];
    struct {
        const char *fmt;
        const char *why;
    } bad[] = {
        {"", "empty"},
        {"alice", "no colon"},
        {"alice:1700000060", "no signature"},
        {"alice:1700000060:", "empty signature"},
        {":1700000060:%s", "empty user"},
        {"Alice:1700000060:%s", "upper-case user"},
        {"al ce:1700000060:%s", "space in user"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1700000060:%s", "33-char user"},
        {"alice::%s", "empty exp"},
        {"alice:+1700000060:%s", "exp with +"},
        {"alice:-1700000060:%s", "exp with -"},
        {"alice: 1700000060:%s", "exp with space"},
        {"alice:017000000600:%s", "exp leading zero"},
        {"alice:17000x0060:%s", "exp not digits"},
        {"alice:1234567890123456789:%s", "exp 19 digits"},
        {"alice:1700000060:%.63s", "signature 63 hex"},
        {"alice:1700000060:%s0", "signature 65 hex"},
        {"alice:1700000060:%s:", "trailing colon"},
        {"alice:1700000060:extra:%s", "four parts"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, bad[i].fmt, sig);
        CHECK(verify(buf, NOW, user, NULL) == TOKEN_MALFORMED, "malformed: %s", bad[i].why);
    }
    snprintf(buf, sizeof buf, "alice:1700000060:%s", sig);
    for (char *p = buf + 17; *p; p++)
        *p = (char)(*p >= 'a' ? *p - 32 : *p);
    CHECK(verify(buf, NOW, user, NULL) == TOKEN_MALFORMED, "malformed: upper-case hex");
    CHECK(token_verify(SECRET, tok, strlen(tok) - 1, NOW, user, NULL) == TOKEN_MALFORMED,
          "length excludes last digit");
    memset(buf, 'a', sizeof buf);
    CHECK(token_verify(SECRET, buf, sizeof buf, NOW, user, NULL) == TOKEN_MALFORMED, "too long");
    CHECK(token_verify(SECRET, "alice\0:1:00", 11, NOW, user, NULL) == TOKEN_MALFORMED,
          "embedded NUL");
}

static void mint_refuses_bad_input(void **state)
{
    char t2[TOKEN_MAX + 8];
    CHECK(token_mint(SECRET, "Bob", NOW, t2, sizeof t2) == -1, "mint bad user");
    CHECK(token_mint(SECRET, "", NOW, t2, sizeof t2) == -1, "mint empty user");
    CHECK(token_mint(SECRET, "bob", -5, t2, sizeof t2) == -1, "mint negative exp");
    CHECK(token_mint(SECRET, "bob", NOW, t2, 20) == -1, "mint small buffer");
    CHECK(token_mint(SECRET, "bob", 1000000000000000000LL, t2, sizeof t2) == -1,
          "mint refuses a 19-digit exp");
}

static void longest_token_fits(void **state)
{
    char t2[TOKEN_MAX + 8], user[33];
    int n = token_mint(SECRET, "abcdefghijklmnopqrstuvwxyz012345", INT64_MAX / 10, t2, sizeof t2);
    CHECK(n > 0 && n < TOKEN_MAX, "longest token fits");
    CHECK(token_verify(SECRET, t2, (size_t)n, NOW, user, NULL) == TOKEN_OK &&
              strcmp(user, "abcdefghijklmnopqrstuvwxyz012345") == 0,
          "longest token verifies");
}

static void status_string(void **state)
{
    CHECK(strcmp(token_status_str(TOKEN_EXPIRED), "expired") == 0, "status string");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(mint_then_verify),
    cmocka_unit_test(expires_at_exp),
    cmocka_unit_test(refuses_wrong_secret_or_signature),
    cmocka_unit_test(refuses_tampered_user_or_exp),
    cmocka_unit_test(signature_checked_before_expiry),
    cmocka_unit_test(refuses_malformed),
    cmocka_unit_test(mint_refuses_bad_input),
    cmocka_unit_test(longest_token_fits),
    cmocka_unit_test(status_string),
};

UNIT_MAIN("token", tests, mint_alice, NULL)
