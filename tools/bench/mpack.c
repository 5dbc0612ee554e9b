/* mpack.c - msgpack writing helpers and a non-allocating field picker. */
#include "mpack.h"

#include <string.h>

static char *mp_be16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
    return p + 2;
}

static char *mp_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
    return p + 4;
}

char *mp_put_map(char *p, uint32_t n)
{
    if (n < 16) {
        *p++ = (char)(0x80 | n);
        return p;
    }
    if (n < 65536) {
        *p++ = (char)0xde;
        return mp_be16(p, (uint16_t)n);
    }
    *p++ = (char)0xdf;
    return mp_be32(p, n);
}

char *mp_put_array(char *p, uint32_t n)
{
    if (n < 16) {
        *p++ = (char)(0x90 | n);
        return p;
    }
    if (n < 65536) {
        *p++ = (char)0xdc;
        return mp_be16(p, (uint16_t)n);
    }
    *p++ = (char)0xdd;
    return mp_be32(p, n);
}

char *mp_put_str(char *p, const char *s, size_t len)
{
    if (len < 32) {
        *p++ = (char)(0xa0 | len);
    } else if (len < 256) {
        *p++ = (char)0xd9;
        *p++ = (char)len;
    } else if (len < 65536) {
        *p++ = (char)0xda;
        p = mp_be16(p, (uint16_t)len);
    } else {
        *p++ = (char)0xdb;
        p = mp_be32(p, (uint32_t)len);
    }
    memcpy(p, s, len);
    return p + len;
}

char *mp_put_cstr(char *p, const char *s)
{
    return mp_put_str(p, s, strlen(s));
}

char *mp_put_uint(char *p, uint64_t v)
{
    if (v < 128) {
        *p++ = (char)v;
        return p;
    }
    *p++ = (char)0xcf;
    for (int i = 0; i < 8; i++)
        *p++ = (char)(v >> (56 - 8 * i));
    return p;
}

char *mp_put_bool(char *p, int v)
{
    *p++ = (char)(v ? 0xc3 : 0xc2);
    return p;
}

typedef struct mp_rd {
    const unsigned char *p, *end;
} mp_rd;

static int mp_need(mp_rd *r, size_t n)
{
    return (size_t)(r->end - r->p) >= n ? 0 : -1;
}

static uint64_t mp_uint(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads one value's header. For str/bin sets *s; for map/array sets *count
 * (a map counts key+value pairs as 2 each). *kind: 's' str, 'b' bin,
 * 'm' map, 'a' array, 'x' ext/other scalar with payload skipped. */
static int mp_next(mp_rd *r, char *kind, mp_str *s, uint64_t *count, int depth)
{
    if (depth > 32 || mp_need(r, 1)) return -1;
    unsigned c = *r->p++;
    size_t len = 0;
    int lenb = 0;
    *count = 0;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        *kind = 'x';
        return 0;
    }
    if ((c & 0xf0) == 0x80) {
        *kind = 'm';
        *count = (c & 0x0f) * 2ull;
        return 0;
    }
    if ((c & 0xf0) == 0x90) {
        *kind = 'a';
        *count = c & 0x0f;
        return 0;
    }
    if ((c & 0xe0) == 0xa0) {
        *kind = 's';
        len = c & 0x1f;
        goto bytes;
    }
    switch (c) {
    case 0xd9:
    case 0xc4:
        lenb = 1;
        break;
    case 0xda:
    case 0xc5:
        lenb = 2;
        break;
    case 0xdb:
    case 0xc6:
        lenb = 4;
        break;
    case 0xcc:
    case 0xd0:
        *kind = 'x';
        return mp_need(r, 1) ? -1 : (r->p += 1, 0);
    case 0xcd:
    case 0xd1:
        *kind = 'x';
        return mp_need(r, 2) ? -1 : (r->p += 2, 0);
    case 0xce:
    case 0xd2:
    case 0xca:
        *kind = 'x';
        return mp_need(r, 4) ? -1 : (r->p += 4, 0);
    case 0xcf:
    case 0xd3:
    case 0xcb:
        *kind = 'x';
        return mp_need(r, 8) ? -1 : (r->p += 8, 0);
    case 0xd4:
        *kind = 'x';
        return mp_need(r, 2) ? -1 : (r->p += 2, 0);
    case 0xd5:
        *kind = 'x';
        return mp_need(r, 3) ? -1 : (r->p += 3, 0);
    case 0xd6:
        *kind = 'x';
        return mp_need(r, 5) ? -1 : (r->p += 5, 0);
    case 0xd7:
        *kind = 'x';
        return mp_need(r, 9) ? -1 : (r->p += 9, 0);
    case 0xd8:
        *kind = 'x';
        return mp_need(r, 17) ? -1 : (r->p += 17, 0);
    case 0xc7:
    case 0xc8:
    case 0xc9: {
        int n = c == 0xc7 ? 1 : c == 0xc8 ? 2 : 4;
        if (mp_need(r, (size_t)n + 1)) return -1;
        len = (size_t)mp_uint(r->p, n) + 1;
        r->p += n;
        *kind = 'x';
        if (mp_need(r, len)) return -1;
        r->p += len;
        return 0;
    }
    case 0xdc:
    case 0xde:
        if (mp_need(r, 2)) return -1;
        *count = mp_uint(r->p, 2) * (c == 0xde ? 2 : 1);
        *kind = c == 0xde ? 'm' : 'a';
        r->p += 2;
        return 0;
    case 0xdd:
    case 0xdf:
        if (mp_need(r, 4)) return -1;
        *count = mp_uint(r->p, 4) * (c == 0xdf ? 2 : 1);
        *kind = c == 0xdf ? 'm' : 'a';
        r->p += 4;
        return 0;
    default:
        return -1;
    }
    *kind = (c == 0xc4 || c == 0xc5 || c == 0xc6) ? 'b' : 's';
    if (mp_need(r, (size_t)lenb)) return -1;
    len = (size_t)mp_uint(r->p, lenb);
    r->p += lenb;
bytes:
    if (mp_need(r, len)) return -1;
    s->p = (const char *)r->p;
    s->len = len;
    r->p += len;
    return 0;
}

static int mp_skip(mp_rd *r, int depth)
{
    char kind;
    mp_str s;
    uint64_t n;
    if (mp_next(r, &kind, &s, &n, depth)) return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (mp_skip(r, depth + 1)) return -1;
    }
    return 0;
}

int mp_pick_strs(const char *buf, size_t len, const char *const *keys, mp_str *out, int n)
{
    mp_rd r = {(const unsigned char *)buf, (const unsigned char *)buf + len};
    char kind;
    mp_str s;
    uint64_t pairs;
    for (int i = 0; i < n; i++)
        out[i].p = NULL, out[i].len = 0;
    if (mp_next(&r, &kind, &s, &pairs, 0) || kind != 'm') return -1;
    for (uint64_t i = 0; i < pairs / 2; i++) {
        mp_str key = {0}, val = {0};
        uint64_t cnt;
        if (mp_next(&r, &kind, &key, &cnt, 1)) return -1;
        if (kind != 's') {
            for (uint64_t j = 0; j < cnt; j++)
                if (mp_skip(&r, 2)) return -1;
            if (mp_skip(&r, 1)) return -1;
            continue;
        }
        int want = -1;
        for (int k = 0; k < n; k++) {
            if (strlen(keys[k]) == key.len && !memcmp(keys[k], key.p, key.len)) want = k;
        }
        if (mp_next(&r, &kind, &val, &cnt, 1)) return -1;
        if (want >= 0 && kind == 's') out[want] = val;
        for (uint64_t j = 0; j < cnt; j++)
            if (mp_skip(&r, 2)) return -1;
    }
    return r.p == r.end ? 0 : -1;
}

int mp_pick_uint(const char *buf, size_t len, const char *key, uint64_t *out)
{
    mp_rd r = {(const unsigned char *)buf, (const unsigned char *)buf + len};
    char kind;
    mp_str s;
    uint64_t pairs, cnt;
    size_t klen = strlen(key);
    int found = 0;
    if (mp_next(&r, &kind, &s, &pairs, 0) || kind != 'm') return -1;
    for (uint64_t i = 0; i < pairs / 2; i++) {
        mp_str k = {0};
        if (mp_next(&r, &kind, &k, &cnt, 1)) return -1;
        for (uint64_t j = 0; j < cnt; j++)
            if (mp_skip(&r, 2)) return -1;
        int want = kind == 's' && k.len == klen && !memcmp(k.p, key, klen);
        if (want && !found && r.p < r.end) {
            unsigned c = *r.p;
            int n = c == 0xcc ? 1 : c == 0xcd ? 2 : c == 0xce ? 4 : c == 0xcf ? 8 : 0;
            if (c <= 0x7f || c == 0xc2 || c == 0xc3) {
                *out = c <= 0x7f ? c : c == 0xc3;
                found = 1;
            } else if (n && mp_need(&r, (size_t)n + 1) == 0) {
                *out = mp_uint(r.p + 1, n);
                found = 1;
            }
        }
        if (mp_skip(&r, 1)) return -1;
    }
    return r.p == r.end ? found : -1;
}

char *mp_put_text(char *p, const char *to, const char *data, size_t len, const char *cid,
                  size_t cid_len)
{
    p = mp_put_map(p, 4);
    p = mp_put_cstr(p, "kind");
    p = mp_put_cstr(p, "text");
    p = mp_put_cstr(p, "to");
    p = mp_put_cstr(p, to);
    p = mp_put_cstr(p, "data");
    p = mp_put_str(p, data, len);
    p = mp_put_cstr(p, "cid");
    return mp_put_str(p, cid, cid_len);
}

int mp_cid_index(mp_str cid, const char *prefix, size_t plen, uint64_t n, uint64_t *k)
{
    if (cid.len <= plen || memcmp(cid.p, prefix, plen) != 0) return -1;
    uint64_t v = 0;
    for (size_t i = plen; i < cid.len; i++) {
        if (cid.p[i] < '0' || cid.p[i] > '9') return -1;
        v = v * 10 + (uint64_t)(cid.p[i] - '0');
    }
    if (v >= n) return -1;
    *k = v;
    return 0;
}
