/* password.h - argon2id password hashes (libsodium crypto_pwhash_str).
 *
 * Hashing is deliberately slow (tens of ms, 64 MiB): never call these on an
 * event loop; the gateway runs them on its worker thread (gateway/pwpool.c). */
#ifndef PARLEY_PASSWORD_H
#define PARLEY_PASSWORD_H

#include <stddef.h>

#define PASSWORD_HASH_MAX 128 /* crypto_pwhash_STRBYTES */
#define PASSWORD_MIN      8
#define PASSWORD_MAX      1024

/* Calls sodium_init(); returns 0 or -1. Safe to call more than once. */
int password_init(void);
/* out (size PASSWORD_HASH_MAX) receives the NUL-terminated encoded hash.
 * Returns 0, or -1 (out of memory). */
int password_hash(const char *pw, size_t len, char *out);
/* Returns 0 when pw matches hash, -1 otherwise (also for a malformed hash). */
int password_verify(const char *hash, const char *pw, size_t len);

#endif
