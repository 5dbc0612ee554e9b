/* keys.c - builds Redis key and channel names from the formats in keys.h, and
 * maps a conversation to its routing slot. */
#define _GNU_SOURCE /* memrchr */
#include "keys.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

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

void keys_session_ids(char *sessid, size_t ssize, char *member, size_t msize, const char *gwid,
                      const char *user, uint64_t conn)
{
    snprintf(sessid, ssize, "%s#%" PRIu64, gwid, conn);
    snprintf(member, msize, "%s#%" PRIu64, user, conn);
}

int keys_session_of_member(const char *m, size_t len, const char *gwid, char *user, char *sessid,
                           size_t ssize)
{
    const char *hash = m ? memrchr(m, '#', len) : NULL;
    size_t ulen = hash ? (size_t)(hash - m) : 0;
    if (!hash || !proto_valid_user(m, ulen)) return -1;
    memcpy(user, m, ulen);
    user[ulen] = '\0';
    snprintf(sessid, ssize, "%s%.*s", gwid, (int)(len - ulen), hash);
    return 0;
}
