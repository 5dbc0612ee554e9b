/* search.h - the user and group search route of the HTTP API. */
#ifndef PARLEY_GW_SEARCH_H
#define PARLEY_GW_SEARCH_H

#include "pss.h"

struct lws;

/* GET /api/users: the lws HTTP callback's return value. */
int search_users(struct lws *wsi, gw_pss *pss);

#endif
