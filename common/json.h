/* json.h - the little JSON the HTTP API needs (see json.c, on jansson): a
 * reader for a flat object of string values and a string writer. */
#ifndef PARLEY_JSON_H
#define PARLEY_JSON_H

#include <stddef.h>

/* Parses buf[0..len): one JSON object (whitespace around it allowed) whose
 * members are all strings (any number; unknown ones are ignored; a repeated
 * one: the last wins, whatever the earlier ones held; a name holding \u0000
 * refuses the body). For each of names[0..n) found, vals[i] gets a malloc'd
 * copy of the decoded value (UTF-8, NUL-terminated; a \u0000 in it is kept
 * and counted) and lens[i] its length; a vals[i] already set is freed first;
 * names not found are left alone. Returns 0, or -1 for anything else
 * (numbers, nesting, invalid UTF-8 or escapes, trailing bytes, ...): the
 * caller frees vals either way. */
int json_parse_strings(const char *buf, size_t len, const char *const *names, char **vals,
                       size_t *lens, int n);
/* Appends s[0..len) (UTF-8; may hold NUL bytes) as a JSON string literal,
 * quoted and escaped, to out[*pos..cap) and advances *pos. Returns 0, or -1
 * when it does not fit (*pos unchanged; out[*pos..cap) may have been
 * written) or s is not valid UTF-8 (then "" is written in its place when it
 * fits, so the document around it stays well-formed). Not NUL-terminated. */
int json_put_str(char *out, size_t cap, size_t *pos, const char *s, size_t len);

#endif
