/* pss.h - the per-connection storage lws keeps for each HTTP connection or
 * WebSocket (lws "per-session storage", sized in main.c's protocol table).
 * Zeroed by lws when the connection is made; each part belongs to the
 * layer named beside it. */
#ifndef PARLEY_GW_PSS_H
#define PARLEY_GW_PSS_H

#include <stddef.h>

typedef struct gw_pss {
    /* ws.c: the session, once upgraded; NULL after it closed */
    struct gw_session *s;
    int is_ws; /* upgraded and counted (drain) until WSI_DESTROY */
    /* ws.c: a message being assembled from fragments */
    char *rx;
    size_t rx_len, rx_cap;
    /* http.c: the request waiting for Redis or the password pool, if any */
    struct gw_req *h;
} gw_pss;

#endif
