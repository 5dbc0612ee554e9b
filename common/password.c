/* password.c - argon2id password hashes through libsodium's crypto_pwhash_str
 * family. The encoded string carries algorithm, parameters and salt, so
 * verification needs nothing else. Slow by design: keep off event loops. */
#include "password.h"

#include <sodium.h>
#include <string.h>

int password_init(void)
{
    /* sodium_init returns 1 when already initialised. */
    return sodium_init() < 0 ? -1 : 0;
}

int password_hash(const char *pw, size_t len, char *out)
{
    _Static_assert(PASSWORD_HASH_MAX >= crypto_pwhash_STRBYTES, "hash buffer too small");
    if (password_init() < 0) return -1;
    if (crypto_pwhash_str_alg(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return -1;
    return 0;
}

int password_verify(const char *hash, const char *pw, size_t len)
{
    if (!hash || password_init() < 0) return -1;
    /* crypto_pwhash_str_verify reads a NUL-terminated string of at most
     * crypto_pwhash_STRBYTES; refuse longer input instead of letting it read. */
    size_t hl = strnlen(hash, crypto_pwhash_STRBYTES);
    if (hl == 0 || hl >= crypto_pwhash_STRBYTES) return -1;
    return crypto_pwhash_str_verify(hash, pw, len) == 0 ? 0 : -1;
}
