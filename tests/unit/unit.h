/* unit.h - the few helpers every unit test shares: CHECK counts passes and
 * prints one line per failure, unit_done() prints the totals and gives the
 * exit status. Also a tiny msgpack builder (mp_build) so tests can spell
 * frames, well formed or not, on one line. */
#ifndef PARLEY_UNIT_H
#define PARLEY_UNIT_H

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_pass, unit_fail;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            unit_pass++;                                                                           \
        } else {                                                                                   \
            unit_fail++;                                                                           \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static inline int unit_done(void)
{
    printf("%d passed, %d failed\n", unit_pass, unit_fail);
    return unit_fail ? 1 : 0;
}

static inline int unit_hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes n hex digits into out; returns the byte count. */
static inline size_t unit_unhex(const char *hex, size_t n, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        out[len++] = (char)(unit_hexval(hex[i]) << 4 | unit_hexval(hex[i + 1]));
    return len;
}

/* Packs a space-separated spec into sb:
 *   {N map of N pairs     [N array of N      n nil   T true   F false
 *   s:TEXT str            x:HEX str of raw bytes      b:TEXT bin
 *   S:N str of N 'a'      i:N int64   u:N uint64      d:N double
 *   r:HEX raw bytes, no header (for garbage and truncation) */
static inline void mp_build(msgpack_sbuffer *sb, const char *spec)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    char tmp[4096];
    const char *p = spec;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        const char *end = strchr(p, ' ');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *v = p + 2;
        size_t vn = n >= 2 ? n - 2 : 0;
        switch (p[0]) {
        case '{':
            msgpack_pack_map(&pk, strtoul(p + 1, NULL, 10));
            break;
        case '[':
            msgpack_pack_array(&pk, strtoul(p + 1, NULL, 10));
            break;
        case 'n':
            msgpack_pack_nil(&pk);
            break;
        case 'T':
            msgpack_pack_true(&pk);
            break;
        case 'F':
            msgpack_pack_false(&pk);
            break;
        case 's':
            msgpack_pack_str(&pk, vn);
            msgpack_pack_str_body(&pk, v, vn);
            break;
        case 'x': {
            size_t l = unit_unhex(v, vn, tmp);
            msgpack_pack_str(&pk, l);
            msgpack_pack_str_body(&pk, tmp, l);
            break;
        }
        case 'b':
            msgpack_pack_bin(&pk, vn);
            msgpack_pack_bin_body(&pk, v, vn);
            break;
        case 'S': {
            size_t l = strtoul(v, NULL, 10);
            memset(tmp, 'a', l);
            msgpack_pack_str(&pk, l);
            msgpack_pack_str_body(&pk, tmp, l);
            break;
        }
        case 'i':
            msgpack_pack_int64(&pk, strtoll(v, NULL, 10));
            break;
        case 'u':
            msgpack_pack_uint64(&pk, strtoull(v, NULL, 10));
            break;
        case 'd':
            msgpack_pack_double(&pk, strtod(v, NULL));
            break;
        case 'r': {
            size_t l = unit_unhex(v, vn, tmp);
            msgpack_sbuffer_write(sb, tmp, l);
            break;
        }
        default:
            fprintf(stderr, "mp_build: bad token '%.*s'\n", (int)n, p);
            abort();
        }
        p += n;
    }
}

#endif
