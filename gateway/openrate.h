/* openrate.h - how often one user may open WebSockets on this gateway
 * (--user-open-rate per second, bursts of --user-open-burst).
 *
 * Each accepted session costs Redis a session_open and hello's pages (up to
 * --hello-entries entries each, with previews): a user who closes and opens
 * sessions in a loop, never over --user-sessions at a time, would make that
 * work without end. A token bucket per user name (Redis-free, decided at the
 * upgrade, which lws confirms synchronously) answers the upgrade 429 with
 * Retry-After when it is empty. The count is per gateway: behind a load
 * balancer of N gateways a user gets up to N times the rate. Entries whose
 * bucket is full again are swept, so memory follows the users who opened
 * recently. Refusals of a valid token only: a bad token never costs a name
 * an entry. */
#ifndef PARLEY_GW_OPENRATE_H
#define PARLEY_GW_OPENRATE_H

#include <stddef.h>

/* rate: tokens per second (0: no limit); burst: bucket size (>= 1). */
void openrate_init(long long rate, long long burst);
void openrate_free(void);

/* Takes a token for user (NUL-terminated, a valid name). 0: go on; else the
 * seconds a client should wait (the 429's Retry-After, >= 1). */
int openrate_take(const char *user);
/* Users with an entry now (a gauge; tests, metrics). */
size_t openrate_count(void);

#endif
