/* secret.c - the token secret's source and strength check (secret.h). */
#include "secret.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "token.h"

int secret_addr_is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!addr) return 0;
    if (!strcmp(addr, "localhost")) return 1;
    if (inet_pton(AF_INET, addr, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* Reads path into s->buf without its trailing whitespace. 0 or -1 (err). */
static int secret_read_file(secret *s, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--secret-file: cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(s->buf, 1, sizeof s->buf, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "--secret-file: cannot read '%s'", path);
        return -1;
    }
    if (n > SECRET_FILE_MAX) {
        snprintf(err, errlen, "--secret-file: '%s' is longer than %d bytes", path, SECRET_FILE_MAX);
        return -1;
    }
    while (n > 0 && strchr(" \t\r\n", s->buf[n - 1]))
        n--;
    s->buf[n] = '\0';
    if (memchr(s->buf, '\0', n)) {
        snprintf(err, errlen, "--secret-file: '%s' holds a NUL byte", path);
        return -1;
    }
    return 0;
}

int secret_resolve(secret *s, const char *given, const char *file, int exposed, char *err,
                   size_t errlen, char *warn, size_t warnlen)
{
    const char *from = NULL; /* the flag that gave an empty value, for the error */
    if (warn && warnlen) warn[0] = '\0';
    s->value = NULL;
    if (given && *given) {
        s->value = given;
    } else if (file && *file) {
        if (secret_read_file(s, file, err, errlen) < 0) return -1;
        if (s->buf[0])
            s->value = s->buf;
        else
            from = "--secret-file";
    } else if (given) {
        from = "--secret";
    }
    s->is_default = !s->value || !strcmp(s->value, TOKEN_DEV_SECRET);
    if (!s->value) s->value = TOKEN_DEV_SECRET;
    size_t len = strlen(s->value);
    const char *fix = "set PARLEY_SECRET or --secret-file to at least 32 random bytes, e.g. "
                      "`openssl rand -hex 32`";
    if (exposed && s->is_default && from) {
        snprintf(err, errlen, "%s is empty: refused beyond loopback; %s", from, fix);
        return -1;
    }
    if (exposed && s->is_default) {
        snprintf(err, errlen, "the published development secret is refused beyond loopback; %s",
                 fix);
        return -1;
    }
    if (exposed && len < SECRET_MIN_BYTES) {
        snprintf(err, errlen, "the secret is %zu bytes: refused beyond loopback; %s", len, fix);
        return -1;
    }
    if (!warn) return 0;
    if (s->is_default)
        snprintf(warn, warnlen,
                 "using the published local-only development secret (loopback only); set "
                 "PARLEY_SECRET or --secret-file for anything others can reach");
    else if (len < SECRET_MIN_BYTES)
        snprintf(warn, warnlen, "the secret is %zu bytes, shorter than %d: loopback only", len,
                 SECRET_MIN_BYTES);
    return 0;
}
