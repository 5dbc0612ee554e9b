/* static.c - the web client's files from --web-root, at every path that is
 * not an API route. "/" (and any directory) means its index.html. Paths with a
 * ".." segment or a segment starting with "." (dotfiles, dot-directories) are
 * refused, and so is a file whose real path (realpath(3), symlinks resolved)
 * is not inside the web root's: each is a 404 JSON error like a missing file. When the web
 * root has no index.html at all (the client was not built), "/" answers a
 * small built-in page saying so. Files go out through lws_serve_http_file,
 * which streams them as the socket drains. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "static.h"

#include <libwebsockets.h>

#include "req.h"

static const struct {
    const char *ext, *type;
} static_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".wasm", "application/wasm"},
    {".webmanifest", "application/manifest+json"},
};

static const char static_builtin[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Parley</title></head>\n"
    "<body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\n"
    "<h1>Parley</h1>\n<p>This gateway is running, but the web client is not built: there is "
    "no <code>index.html</code> in its <code>--web-root</code>.</p>\n"
    "<p>Build it with <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>, or use "
    "the API: <code>POST /api/register</code>, <code>POST /api/login</code>, WebSocket at "
    "<code>/ws</code>.</p>\n</body></html>\n";

static const char *static_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof static_types / sizeof static_types[0]; i++)
            if (!strcasecmp(dot, static_types[i].ext)) return static_types[i].type;
    return "application/octet-stream";
}

static int static_not_found(struct lws *wsi)
{
    static const char body[] = "{\"error\":\"not_found\",\"message\":\"no such file\"}";
    req_write(wsi, 404, "application/json", body, sizeof body - 1, NULL);
    return req_done(wsi);
}

/* A segment starting with '.' ("..", ".env", ".git/config", "/a/.hidden"),
 * or a backslash: never served. */
static int static_has_dot_segment(const char *p)
{
    for (const char *s = p; (s = strchr(s, '.')); s++)
        if (s == p || s[-1] == '/') return 1;
    return strchr(p, '\\') != NULL;
}

static const char *static_root;
static char static_real_root[PATH_MAX]; /* realpath of the root; "" if it does not exist */

void static_init(const char *web_root)
{
    static_root = web_root;
    if (!realpath(web_root, static_real_root)) static_real_root[0] = '\0';
}

/* Whether file (which exists) resolves, symlinks followed, to a path inside
 * the web root. realpath at each request: the root's contents may change (a
 * new build), and a symlink's target is what counts when it is opened. */
static int static_inside_root(const char *file)
{
    char real[PATH_MAX];
    if (!static_real_root[0] || !realpath(file, real)) return 0;
    size_t n = strlen(static_real_root);
    if (n == 1) return 1; /* the root is "/" */
    return !strncmp(real, static_real_root, n) && real[n] == '/';
}

int static_serve(struct lws *wsi, const char *path)
{
    char full[4096];
    struct stat st;
    if (path[0] != '/' || static_has_dot_segment(path)) return static_not_found(wsi);
    int n = snprintf(full, sizeof full, "%s%s", static_root, path);
    if (n < 0 || (size_t)n >= sizeof full - 16) return static_not_found(wsi);
    if (full[n - 1] == '/' || (stat(full, &st) == 0 && S_ISDIR(st.st_mode)))
        snprintf(full + n, sizeof full - (size_t)n, "%sindex.html", full[n - 1] == '/' ? "" : "/");
    if (stat(full, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (!strcmp(path, "/")) {
            req_write(wsi, 200, "text/html; charset=utf-8", static_builtin,
                      sizeof static_builtin - 1, NULL);
            return req_done(wsi);
        }
        return static_not_found(wsi);
    }
    if (!static_inside_root(full)) return static_not_found(wsi);
    /* the common headers (req.h), as lws_serve_http_file's extra headers */
    unsigned char extra[1024];
    unsigned char *p = extra, *end = extra + sizeof extra - 1;
    if (req_add_common_headers(wsi, &p, end)) return -1;
    *p = '\0';
    int rc =
        lws_serve_http_file(wsi, full, static_type(full), (const char *)extra, (int)(p - extra));
    if (rc < 0 || (rc > 0 && lws_http_transaction_completed(wsi))) return -1;
    return 0;
}
