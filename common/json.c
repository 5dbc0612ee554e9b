/* json.c - the little JSON the HTTP API needs: a parser for a flat object of
 * string values ({"username": "...", "password": "..."}) and a string writer.
 *
 * The parser accepts exactly: whitespace, one object, members whose values
 * are strings (escapes \" \\ \/ \b \f \n \r \t and \uXXXX with surrogate
 * pairs), whitespace. Anything else (numbers, nesting, control characters,
 * lone surrogates, invalid UTF-8, trailing bytes) is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "proto.h" /* proto_valid_utf8 */

typedef struct json_in {
    const char *p, *end;
} json_in;

static void json_ws(json_in *in)
{
    while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
        in->p++;
}

static int json_hex4(json_in *in, uint32_t *out)
{
    uint32_t v = 0;
    if (in->end - in->p < 4) return -1;
    for (int i = 0; i < 4; i++) {
        char c = *in->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t json_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes a string at in->p (on the opening quote) into a malloc'd buffer. */
static int json_string(json_in *in, char **out, size_t *olen)
{
    if (in->p >= in->end || *in->p != '"') return -1;
    in->p++;
    /* the decoded form is never longer than the source */
    char *buf = malloc((size_t)(in->end - in->p) + 1);
    size_t n = 0;
    if (!buf) return -1;
    while (in->p < in->end) {
        unsigned char c = (unsigned char)*in->p++;
        if (c == '"') {
            buf[n] = '\0';
            if (!proto_valid_utf8(buf, n)) break;
            *out = buf;
            *olen = n;
            return 0;
        }
        if (c < 0x20) break;
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        if (in->p >= in->end) break;
        char e = *in->p++;
        uint32_t cp, lo;
        switch (e) {
        case '"':
            buf[n++] = '"';
            continue;
        case '\\':
            buf[n++] = '\\';
            continue;
        case '/':
            buf[n++] = '/';
            continue;
        case 'b':
            buf[n++] = '\b';
            continue;
        case 'f':
            buf[n++] = '\f';
            continue;
        case 'n':
            buf[n++] = '\n';
            continue;
        case 'r':
            buf[n++] = '\r';
            continue;
        case 't':
            buf[n++] = '\t';
            continue;
        case 'u':
            if (json_hex4(in, &cp) < 0) goto fail;
            if (cp >= 0xdc00 && cp <= 0xdfff) goto fail;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (in->end - in->p < 6 || in->p[0] != '\\' || in->p[1] != 'u') goto fail;
                in->p += 2;
                if (json_hex4(in, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) goto fail;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            /* 6 source bytes (12 for a pair) always cover the 1..4 written */
            n += json_utf8(buf + n, cp);
            continue;
        default:
            goto fail;
        }
    }
fail:
    free(buf);
    return -1;
}

int json_parse_strings(const char *buf, size_t len, const char *const *names, char **vals,
                       size_t *lens, int n)
{
    json_in in = {buf, buf + len};
    json_ws(&in);
    if (in.p >= in.end || *in.p++ != '{') return -1;
    json_ws(&in);
    if (in.p < in.end && *in.p == '}') {
        in.p++;
        goto end;
    }
    for (;;) {
        char *k = NULL, *v = NULL;
        size_t kl, vl;
        json_ws(&in);
        if (json_string(&in, &k, &kl) < 0) return -1;
        json_ws(&in);
        if (in.p >= in.end || *in.p++ != ':') {
            free(k);
            return -1;
        }
        json_ws(&in);
        if (json_string(&in, &v, &vl) < 0) {
            free(k);
            return -1;
        }
        int used = 0;
        for (int i = 0; i < n; i++)
            if (strlen(names[i]) == kl && memcmp(names[i], k, kl) == 0) {
                free(vals[i]);
                vals[i] = v;
                lens[i] = vl;
                used = 1;
                break;
            }
        if (!used) free(v);
        free(k);
        json_ws(&in);
        if (in.p >= in.end) return -1;
        if (*in.p == ',') {
            in.p++;
            continue;
        }
        if (*in.p++ != '}') return -1;
        break;
    }
end:
    json_ws(&in);
    return in.p == in.end ? 0 : -1;
}

int json_put_str(char *out, size_t cap, size_t *pos, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;
    if (p + 2 > cap) return -1;
    out[p++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (p + 7 > cap) return -1;
        if (c == '"' || c == '\\') {
            out[p++] = '\\';
            out[p++] = (char)c;
        } else if (c < 0x20) {
            memcpy(out + p, "\\u00", 4);
            out[p + 4] = hex[c >> 4];
            out[p + 5] = hex[c & 15];
            p += 6;
        } else {
            out[p++] = (char)c;
        }
    }
    if (p + 1 > cap) return -1;
    out[p++] = '"';
    *pos = p;
    return 0;
}
