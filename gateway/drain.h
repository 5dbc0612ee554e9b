/* drain.h - the gateway's orderly stop (SIGTERM/SIGINT), as a hold count.
 *
 * Everything a stop must wait for holds the drain while it lives: a session
 * (open to closed), an upgraded socket (until lws destroys it, after its
 * close handshake), an HTTP request waiting for Redis or the password pool,
 * and, once draining, each session_close reply. When draining and the last
 * hold is released, the idle callback the composer gave to drain_begin()
 * runs once (main.c: leave the gateway set, then stop). Modules only ever
 * call drain_hold/drain_release/drain_active; nothing here calls up. */
#ifndef PARLEY_GW_DRAIN_H
#define PARLEY_GW_DRAIN_H

typedef void drain_idle_fn(void);

void drain_hold(void);
void drain_release(void);
/* 1 once drain_begin ran: refuse new work (upgrades, /healthz 503) */
int drain_active(void);
/* Starts draining; idle runs as soon as (and every time, until it stops
 * the process) the hold count is zero: at once when nothing is held. */
void drain_begin(drain_idle_fn *idle);
/* Runs the idle callback if draining and nothing is held (for the caller of
 * drain_begin after it started the closes). */
void drain_check(void);

#endif
