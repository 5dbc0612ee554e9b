/* mpack.h - the little msgpack the load generator needs, without allocation:
 * writing str / map / array headers into a buffer, and a reader that walks a
 * frame's top-level map to pick out string fields (kind, cid) or a number
 * (seq, a flag) and skips everything else (hello's user list, nested maps). */
#ifndef PARLEY_BENCH_MPACK_H
#define PARLEY_BENCH_MPACK_H

#include <stddef.h>
#include <stdint.h>

/* Writers return the new write position. The caller sizes the buffer. */
char *mp_put_map(char *p, uint32_t n);
char *mp_put_array(char *p, uint32_t n);
char *mp_put_str(char *p, const char *s, size_t len);
char *mp_put_cstr(char *p, const char *s);
char *mp_put_bool(char *p, int v);
char *mp_put_uint(char *p, uint64_t v);

typedef struct mp_str {
    const char *p;
    size_t len;
} mp_str;

/* Reads a frame that is one msgpack map; fills the values of the string
 * fields named in keys[0..n) into out[] (len 0 when absent or not a string).
 * Returns 0, or -1 when the bytes are not one well-formed map. */
int mp_pick_strs(const char *buf, size_t len, const char *const *keys, mp_str *out, int n);

/* Reads the top-level field `key` of a frame that is one msgpack map as an
 * unsigned number: a positive integer, or a boolean (false 0, true 1).
 * Returns 1 and sets *out when present with such a value, 0 when absent or of
 * another type, -1 when the bytes are not one well-formed map. */
int mp_pick_uint(const char *buf, size_t len, const char *key, uint64_t *out);

/* The client frame {kind:"text", to, data, cid} at p (room: len + 64 + the
 * lengths of to and cid); returns the end. */
char *mp_put_text(char *p, const char *to, const char *data, size_t len, const char *cid,
                  size_t cid_len);

/* The bench's cids are a prefix then a decimal index: 0 and *k when cid is
 * prefix[0..plen) followed by digits naming an index below n, else -1. */
int mp_cid_index(mp_str cid, const char *prefix, size_t plen, uint64_t n, uint64_t *k);

#endif
