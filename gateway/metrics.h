/* metrics.h - the gateway's Prometheus counters and their text rendering.
 *
 * Counters live here and only grow: a module counts an event with
 * metrics_inc(METRIC_...). Gauges are read by whoever renders (/metrics, in
 * the transport layer) and handed in, so this module depends on nothing. */
#ifndef PARLEY_GW_METRICS_H
#define PARLEY_GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    METRIC_CONNECTIONS_TOTAL = 0, /* WebSocket sessions opened */
    METRIC_FRAMES_IN,             /* frames received from clients */
    METRIC_FRAMES_OUT,            /* frames written to clients */
    METRIC_MESSAGES_PUBLISHED,    /* texts handed to a router */
    METRIC_UNAVAILABLE,           /* answers 'unavailable' (WebSocket and HTTP) */
    METRIC_SLOW_CONSUMERS,        /* sockets cut off for a full send queue */
    METRIC_BAD_FRAMES,            /* frames refused as invalid */
    METRIC_RATE_LIMITED,          /* frames refused by the rate limit */
    METRIC_HTTP_REQUESTS,         /* HTTP requests (not upgrades) */
    METRIC_REDIS_RECONNECTS,      /* Redis connections lost */
    METRIC_HEARTBEAT_LAPSES,      /* heartbeats that found this gateway expired */
    METRIC_SESSION_LIMIT,         /* upgrades (429) and sessions (4029) over --user-sessions */
    METRIC_REPLAY_PAGES,          /* inbox pages fetched (sync, offline push, gaps) */
    METRIC_OPEN_RATE_LIMITED,     /* upgrades answered 429 for --user-open-rate */
    METRIC__COUNT
} metric_id;

void metrics_add(metric_id id, uint64_t n);
static inline void metrics_inc(metric_id id)
{
    metrics_add(id, 1);
}

/* The gauges, read at render time by the caller. */
typedef struct metrics_gauges {
    size_t connections;                           /* sessions open now */
    int redis_up;                                 /* both Redis connections usable */
    int draining;                                 /* after SIGTERM */
    long long redis_used_memory, redis_maxmemory; /* bytes (INFO memory); -1: not known yet */
    size_t users_at_session_limit;                /* users known to be at --user-sessions */
} metrics_gauges;

/* Writes the Prometheus text format into out (NUL-terminated, truncated to
 * cap - 1); returns its length. */
size_t metrics_render(const metrics_gauges *gauges, char *out, size_t cap);

#endif
