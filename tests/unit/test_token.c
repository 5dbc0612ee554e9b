/* test_token.c - session tokens: round trip, forgery, tampering, expiry and
 * strict parsing. */
#include "token.h"
#include "unit.h"

#define SECRET "s3cret-for-tests"
#define NOW    1700000000LL
#define SID    "0123456789abcdef0123456789abcdef"
#define A      "alice:" SID ":" /* 39 bytes: alice's token up to its exp */

static token_status verify(const char *tok, int64_t now, char *user, int64_t *exp)
{
    return token_verify(SECRET, tok, strlen(tok), now, user, NULL, exp);
}

/* alice's token, valid until NOW + 60: minted by the group setup */
static char tok[TOKEN_MAX];
static int tok_len;

static int mint_alice(void **state)
{
    tok_len = token_mint(SECRET, "alice", SID, NOW + 60, tok, sizeof tok);
    return 0;
}

static void mint_then_verify(void **state)
{
    char t2[TOKEN_MAX + 8], user[33];
    int64_t exp = 0;
    int n = tok_len;
    CHECK(n > 0 && (size_t)n == strlen(tok), "mint length %d", n);
    CHECK(strncmp(tok, A "1700000060:", 50) == 0 && strlen(tok) == 50 + 64, "format %s", tok);
    CHECK(verify(tok, NOW, user, &exp) == TOKEN_OK && strcmp(user, "alice") == 0 && exp == NOW + 60,
          "round trip");
    char sid[TOKEN_SID_LEN + 1];
    CHECK(token_verify(SECRET, tok, strlen(tok), NOW, NULL, sid, NULL) == TOKEN_OK &&
              strcmp(sid, SID) == 0,
          "sid out");
    CHECK(verify(tok, NOW, NULL, NULL) == TOKEN_OK, "NULL user and exp");
    CHECK(token_mint(SECRET, "alice", SID, NOW + 60, t2, sizeof t2) == n && strcmp(tok, t2) == 0,
          "deterministic");
    for (const char *p = tok + 50; *p; p++)
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
    CHECK(token_verify("other", tok, strlen(tok), NOW, user, NULL, NULL) == TOKEN_BAD_SIG,
          "wrong secret");
    strcpy(t2, tok);
    t2[strlen(t2) - 1] = t2[strlen(t2) - 1] == '0' ? '1' : '0';
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "flipped last sig digit");
    strcpy(t2, tok);
    t2[50] = t2[50] == 'a' ? 'b' : 'a';
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "flipped first sig digit");
    snprintf(t2, sizeof t2, A "%lld:%064d", NOW + 60, 0);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "all-zero signature");
}

/* tampered user or exp keeps the old signature */
static void refuses_tampered_user_or_exp(void **state)
{
    char t2[TOKEN_MAX + 8], user[33];
    snprintf(t2, sizeof t2, "alicf%s", tok + 5);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "tampered user");
    snprintf(t2, sizeof t2, A "1700000099%s", tok + 49);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "tampered exp");
    snprintf(t2, sizeof t2, "alice:1123456789abcdef0123456789abcdef%s", tok + 38);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "tampered sid");
    snprintf(t2, sizeof t2, A "17000000600%s", tok + 49);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "exp with extra digit");
}

/* expired and forged: the signature is checked first */
static void signature_checked_before_expiry(void **state)
{
    char t2[TOKEN_MAX + 8], user[33];
    token_mint(SECRET, "bob", SID, NOW - 1, t2, sizeof t2);
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_EXPIRED, "expired genuine token");
    t2[strlen(t2) - 1] ^= 1;
    CHECK(verify(t2, NOW, user, NULL) == TOKEN_BAD_SIG, "expired forged token is forged");
}

static void refuses_malformed(void **state)
{
    char user[33];
    const char *sig = tok + 50;
    char buf[256];
    struct {
        const char *fmt;
        const char *why;
    } bad[] = {
        {"", "empty"},
        {"alice", "no colon"},
        {A "1700000060", "no signature"},
        {A "1700000060:", "empty signature"},
        {":" SID ":1700000060:%s", "empty user"},
        {"Alice:" SID ":1700000060:%s", "upper-case user"},
        {"al ce:" SID ":1700000060:%s", "space in user"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:" SID ":1700000060:%s", "33-char user"},
        {A ":%s", "empty exp"},
        {A "+1700000060:%s", "exp with +"},
        {A "-1700000060:%s", "exp with -"},
        {A " 1700000060:%s", "exp with space"},
        {A "017000000600:%s", "exp leading zero"},
        {A "17000x0060:%s", "exp not digits"},
        {A "1234567890123456789:%s", "exp 19 digits"},
        {A "1700000060:%.63s", "signature 63 hex"},
        {A "1700000060:%s0", "signature 65 hex"},
        {A "1700000060:%s:", "trailing colon"},
        {A "1700000060:extra:%s", "five parts"},
        {"alice:1700000060:%s", "no sid"},
        {"alice:0123456789abcdef0123456789abcde:1700000060:%s", "sid 31 hex"},
        {"alice:0123456789ABCDEF0123456789abcdef:1700000060:%s", "upper-case sid"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, bad[i].fmt, sig);
        CHECK(verify(buf, NOW, user, NULL) == TOKEN_MALFORMED, "malformed: %s", bad[i].why);
    }
    snprintf(buf, sizeof buf, A "1700000060:%s", sig);
    for (char *p = buf + 50; *p; p++)
        *p = (char)(*p >= 'a' ? *p - 32 : *p);
    CHECK(verify(buf, NOW, user, NULL) == TOKEN_MALFORMED, "malformed: upper-case hex");
    CHECK(token_verify(SECRET, tok, strlen(tok) - 1, NOW, user, NULL, NULL) == TOKEN_MALFORMED,
          "length excludes last digit");
    memset(buf, 'a', sizeof buf);
    CHECK(token_verify(SECRET, buf, sizeof buf, NOW, user, NULL, NULL) == TOKEN_MALFORMED,
          "too long");
    CHECK(token_verify(SECRET, "alice\0:1:00", 11, NOW, user, NULL, NULL) == TOKEN_MALFORMED,
          "embedded NUL");
}

static void mint_refuses_bad_input(void **state)
{
    char t2[TOKEN_MAX + 8];
    CHECK(token_mint(SECRET, "Bob", SID, NOW, t2, sizeof t2) == -1, "mint bad user");
    CHECK(token_mint(SECRET, "", SID, NOW, t2, sizeof t2) == -1, "mint empty user");
    CHECK(token_mint(SECRET, "bob", SID, -5, t2, sizeof t2) == -1, "mint negative exp");
    CHECK(token_mint(SECRET, "bob", SID, NOW, t2, 20) == -1, "mint small buffer");
    CHECK(token_mint(SECRET, "bob", "0123", NOW, t2, sizeof t2) == -1, "mint short sid");
    CHECK(token_mint(SECRET, "bob", SID, 1000000000000000000LL, t2, sizeof t2) == -1,
          "mint refuses a 19-digit exp");
}

static void longest_token_fits(void **state)
{
    char t2[TOKEN_MAX + 8], user[33];
    int n =
        token_mint(SECRET, "abcdefghijklmnopqrstuvwxyz012345", SID, INT64_MAX / 10, t2, sizeof t2);
    CHECK(n > 0 && n < TOKEN_MAX, "longest token fits");
    CHECK(token_verify(SECRET, t2, (size_t)n, NOW, user, NULL, NULL) == TOKEN_OK &&
              strcmp(user, "abcdefghijklmnopqrstuvwxyz012345") == 0,
          "longest token verifies");
}

static void session_ids(void **state)
{
    char a[TOKEN_SID_LEN + 1], b[TOKEN_SID_LEN + 1];
    CHECK(token_new_sid(a) == 0 && token_new_sid(b) == 0 && token_valid_sid(a, strlen(a)) &&
              strcmp(a, b) != 0,
          "random sids");
    CHECK(token_bulk_sid(SECRET, "bob", a) == 0 && token_bulk_sid(SECRET, "bob", b) == 0 &&
              strcmp(a, b) == 0 && token_valid_sid(a, strlen(a)),
          "bulk sid is deterministic");
    CHECK(token_bulk_sid("other", "bob", b) == 0 && strcmp(a, b) != 0, "bulk sid needs the secret");
}

static void status_string(void **state)
{
    CHECK(strcmp(token_status_str(TOKEN_EXPIRED), "expired") == 0, "status string");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(mint_then_verify),
    cmocka_unit_test(session_ids),
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
