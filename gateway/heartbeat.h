/* heartbeat.h - the gateway's lease in Redis and the command-link watchdog.
 *
 * Every ttl/3: SET parley:gw:ID:alive 1 PX ttl GET + SADD parley:gateways
 * (once startup_ready), after checking that the command connection made
 * progress (a reply came, or nothing waits) within a whole ttl (else it is
 * dropped and reconnected: a stopped Redis keeps TCP open; a busy one still
 * answers and keeps its connection). A beat that finds the alive
 * key gone or the gateway out of parley:gateways came too late (a backlog,
 * a pause): a router may have reaped the gateway, and the lapsed hook runs
 * (the composer re-opens every session), and once more at the next beat (a
 * reaper's close is a chain of steps that may end after the first re-open).
 * The tick hook runs with each beat
 * (presence's lazy unsubscribe sweep). */
#ifndef PARLEY_GW_HEARTBEAT_H
#define PARLEY_GW_HEARTBEAT_H

#include <event2/event.h>

typedef struct hb_hooks {
    void (*lapsed)(void);
    void (*tick)(void);
} hb_hooks;

int hb_start(struct event_base *base, const char *gwid, long long ttl_ms, const hb_hooks *hooks);
void hb_stop(void);
void hb_free(void);
/* Beats now (after start-up, on a new command connection). */
void hb_beat_now(void);
/* The command connection changed: forget what its beats said. */
void hb_reset(void);
/* Redis's memory as the last beat read it (INFO memory): used_memory and
 * maxmemory in bytes (maxmemory 0: no limit). -1 in both before the first
 * answer. */
void hb_redis_memory(long long *used, long long *max);

#endif
