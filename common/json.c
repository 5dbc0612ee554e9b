/* json.c - the little JSON the HTTP API needs, on jansson: a reader for a
 * flat object of string values ({"username": "...", "password": "..."}) and a
 * string writer.
 *
 * jansson does the parsing (UTF-8, escapes, surrogate pairs, trailing bytes,
 * depth); on top of it the reader accepts one object whose every member is a
 * string, and nothing else. Its options:
 * - JSON_ALLOW_NUL: a \u0000 inside a value is kept and counted in its length
 *   (a password may hold NUL bytes);
 * - no JSON_REJECT_DUPLICATES: a repeated member is accepted and the last one
 *   wins (jansson keeps only that one, so an earlier non-string value of the
 *   same name goes unseen).
 * jansson cannot hold a NUL in a member name: such a body is refused.
 *
 * The writer is jansson's json_dumpb of one string: " and \ escaped, control
 * characters as \n \t ... or \u00XX, UTF-8 as it is, invalid UTF-8 refused. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int json_parse_strings(const char *buf, size_t len, const char *const *names, char **vals,
                       size_t *lens, int n)
{
    json_t *root = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
    const char *key;
    json_t *v;
    int rc = -1;
    if (!json_is_object(root)) goto out;
    json_object_foreach(root, key, v)
    {
        if (!json_is_string(v)) goto out;
    }
    for (int i = 0; i < n; i++) {
        v = json_object_get(root, names[i]);
        if (!v) continue;
        size_t l = json_string_length(v);
        char *copy = malloc(l + 1);
        if (!copy) goto out;
        memcpy(copy, json_string_value(v), l + 1); /* jansson NUL-terminates */
        free(vals[i]);
        vals[i] = copy;
        lens[i] = l;
    }
    rc = 0;
out:
    json_decref(root); /* NULL is fine */
    return rc;
}

int json_put_str(char *out, size_t cap, size_t *pos, const char *s, size_t len)
{
    if (*pos > cap) return -1;
    json_t *str = json_stringn(s, len); /* NULL for invalid UTF-8 */
    if (!str) {
        if (cap - *pos >= 2) { /* an empty string in its place: the JSON stays valid */
            memcpy(out + *pos, "\"\"", 2);
            *pos += 2;
        }
        return -1;
    }
    /* the length jansson needs, written only up to cap - *pos */
    size_t n = json_dumpb(str, out + *pos, cap - *pos, JSON_ENCODE_ANY);
    json_decref(str);
    if (n == 0 || n > cap - *pos) return -1;
    *pos += n;
    return 0;
}
