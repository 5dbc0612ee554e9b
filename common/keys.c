/* keys.c - builds Redis key and channel names from the formats in keys.h, and
 * maps a conversation to its routing slot. */
#include "keys.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

char *keys_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

int keys_conv_pair(char *buf, size_t size, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (strcmp(a, b) > 0) {
        const char *t = a;
        size_t tl = la;
        a = b;
        la = lb;
        b = t;
        lb = tl;
    }
    if (la + 1 + lb + 1 > size) return -1;
    memcpy(buf, a, la);
    buf[la] = '|';
    memcpy(buf + la + 1, b, lb);
    buf[la + 1 + lb] = '\0';
    return (int)(la + 1 + lb);
}

int keys_conv(char *buf, size_t size, const char *self, const char *with)
{
    if (with[0] != '#') return keys_conv_pair(buf, size, self, with);
    size_t n = strlen(with);
    if (n + 1 > size) return -1;
    memcpy(buf, with, n + 1);
    return (int)n;
}

/* FNV-1a 32 bit: cheap, stable across processes and languages, so a test or an
 * operator can compute a slot by hand. */
unsigned keys_slot(const char *conv, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)conv[i];
        h *= 16777619u;
    }
    return h % PARLEY_SLOTS;
}
