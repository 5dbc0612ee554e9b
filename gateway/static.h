/* static.h - the web client's files from --web-root at every path that is
 * not an API route. */
#ifndef PARLEY_GW_STATIC_H
#define PARLEY_GW_STATIC_H

struct lws;

/* web_root is kept (it lives as long as the options). */
void static_init(const char *web_root);
/* Answers GET path: the lws HTTP callback's return value. */
int static_serve(struct lws *wsi, const char *path);

#endif
