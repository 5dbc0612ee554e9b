/* startup.h - what a gateway does before it serves /ws: make sure no running
 * gateway holds its id, then close the sessions a previous process with
 * the same id left in Redis (parley:gw:ID:sessions).
 *
 * Runs on the first usable command connection. Any failed step (an error
 * reply such as -LOADING, a lost connection) starts it again on a timer
 * with backoff (100 ms doubling to 2 s), or at once on the next command
 * connection; a step unanswered for heartbeat_ttl_ms drops the command
 * connection (rl_drop_commands) and starts again once it is back. Nothing
 * here calls up: the outcome goes to the hooks the composer gives. */
#ifndef PARLEY_GW_STARTUP_H
#define PARLEY_GW_STARTUP_H

#include <event2/event.h>

typedef struct startup_hooks {
    void (*ready)(void); /* the leftovers are closed: serve /ws */
    void (*fatal)(void); /* another running gateway beats for this id */
} startup_hooks;

/* gwid is copied; heartbeat_ttl_ms is the beat period times three. */
int startup_init(struct event_base *base, const char *gwid, long long heartbeat_ttl_ms,
                 const startup_hooks *hooks);
void startup_free(void);
/* A command connection is up: starts (or restarts) the checks unless done. */
void startup_on_commands_up(void);
/* 1 once the leftovers are closed (for good: a later reconnect keeps it). */
int startup_ready(void);

#endif
