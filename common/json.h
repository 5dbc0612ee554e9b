/* json.h - the little JSON the HTTP API needs (see json.c): a parser for a
 * flat object of string values and a string writer. */
#ifndef PARLEY_JSON_H
#define PARLEY_JSON_H

#include <stddef.h>

/* Parses a flat JSON object whose values are all strings. Each found key among
 * names[] gets its decoded (UTF-8, NUL-terminated, malloc'd) value in vals[].
 * Returns 0, or -1 for anything else (caller frees vals either way). */
int json_parse_strings(const char *buf, size_t len, const char *const *names, char **vals,
                       size_t *lens, int n);
/* appends s as a JSON string literal (quoted, escaped) to out[*pos..cap) */
int json_put_str(char *out, size_t cap, size_t *pos, const char *s, size_t len);

#endif
