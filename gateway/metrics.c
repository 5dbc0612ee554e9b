/* metrics.c - /metrics in the Prometheus text format: counters since start
 * and the gauges the caller read at request time. */
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>

static uint64_t counters[METRIC__COUNT];

void metrics_add(metric_id id, uint64_t n)
{
    counters[id] += n;
}

size_t metrics_render(const metrics_gauges *gauges, char *out, size_t cap)
{
    const uint64_t *m = counters;
    int n = snprintf(
        out, cap,
        "# HELP parley_gateway_connections WebSocket sessions open now.\n"
        "# TYPE parley_gateway_connections gauge\n"
        "parley_gateway_connections %zu\n"
        "# HELP parley_gateway_connections_total WebSocket sessions opened since start.\n"
        "# TYPE parley_gateway_connections_total counter\n"
        "parley_gateway_connections_total %" PRIu64 "\n"
        "# HELP parley_gateway_frames_in_total Frames received from clients.\n"
        "# TYPE parley_gateway_frames_in_total counter\n"
        "parley_gateway_frames_in_total %" PRIu64 "\n"
        "# HELP parley_gateway_frames_out_total Frames written to clients.\n"
        "# TYPE parley_gateway_frames_out_total counter\n"
        "parley_gateway_frames_out_total %" PRIu64 "\n"
        "# HELP parley_gateway_messages_published_total Texts handed to a router.\n"
        "# TYPE parley_gateway_messages_published_total counter\n"
        "parley_gateway_messages_published_total %" PRIu64 "\n"
        "# HELP parley_gateway_unavailable_total Answers 'unavailable' (WebSocket and HTTP).\n"
        "# TYPE parley_gateway_unavailable_total counter\n"
        "parley_gateway_unavailable_total %" PRIu64 "\n"
        "# HELP parley_gateway_slow_consumers_total Sockets cut off for a full send queue.\n"
        "# TYPE parley_gateway_slow_consumers_total counter\n"
        "parley_gateway_slow_consumers_total %" PRIu64 "\n"
        "# HELP parley_gateway_bad_frames_total Frames refused as invalid.\n"
        "# TYPE parley_gateway_bad_frames_total counter\n"
        "parley_gateway_bad_frames_total %" PRIu64 "\n"
        "# HELP parley_gateway_rate_limited_total Frames refused by the rate limit.\n"
        "# TYPE parley_gateway_rate_limited_total counter\n"
        "parley_gateway_rate_limited_total %" PRIu64 "\n"
        "# HELP parley_gateway_http_requests_total HTTP requests (not upgrades).\n"
        "# TYPE parley_gateway_http_requests_total counter\n"
        "parley_gateway_http_requests_total %" PRIu64 "\n"
        "# HELP parley_gateway_redis_reconnects_total Redis connections lost.\n"
        "# TYPE parley_gateway_redis_reconnects_total counter\n"
        "parley_gateway_redis_reconnects_total %" PRIu64 "\n"
        "# HELP parley_gateway_heartbeat_lapses_total Heartbeats that found this gateway expired "
        "(sessions opened again).\n"
        "# TYPE parley_gateway_heartbeat_lapses_total counter\n"
        "parley_gateway_heartbeat_lapses_total %" PRIu64 "\n"
        "# HELP parley_gateway_replay_pages_total Inbox pages fetched (sync, offline push, "
        "gaps).\n"
        "# TYPE parley_gateway_replay_pages_total counter\n"
        "parley_gateway_replay_pages_total %" PRIu64 "\n"
        "# HELP parley_gateway_redis_up 1 when both Redis connections are usable.\n"
        "# TYPE parley_gateway_redis_up gauge\n"
        "parley_gateway_redis_up %d\n"
        "# HELP parley_gateway_draining 1 after SIGTERM.\n"
        "# TYPE parley_gateway_draining gauge\n"
        "parley_gateway_draining %d\n",
        gauges->connections, m[METRIC_CONNECTIONS_TOTAL], m[METRIC_FRAMES_IN], m[METRIC_FRAMES_OUT],
        m[METRIC_MESSAGES_PUBLISHED], m[METRIC_UNAVAILABLE], m[METRIC_SLOW_CONSUMERS],
        m[METRIC_BAD_FRAMES], m[METRIC_RATE_LIMITED], m[METRIC_HTTP_REQUESTS],
        m[METRIC_REDIS_RECONNECTS], m[METRIC_HEARTBEAT_LAPSES], m[METRIC_REPLAY_PAGES],
        gauges->redis_up ? 1 : 0, gauges->draining ? 1 : 0);
    if (n < 0) return 0;
    if ((size_t)n >= cap) return cap - 1;
    if (gauges->redis_used_memory >= 0) {
        int k = snprintf(out + n, cap - (size_t)n,
                         "# HELP parley_gateway_redis_used_memory_bytes Redis used_memory at the "
                         "last heartbeat.\n"
                         "# TYPE parley_gateway_redis_used_memory_bytes gauge\n"
                         "parley_gateway_redis_used_memory_bytes %lld\n"
                         "# HELP parley_gateway_redis_maxmemory_bytes Redis maxmemory (0: no "
                         "limit).\n"
                         "# TYPE parley_gateway_redis_maxmemory_bytes gauge\n"
                         "parley_gateway_redis_maxmemory_bytes %lld\n",
                         gauges->redis_used_memory, gauges->redis_maxmemory);
        if (k > 0) n += k;
    }
    if ((size_t)n < cap) {
        int k = snprintf(out + n, cap - (size_t)n,
                         "# HELP parley_gateway_session_limit_total Upgrades answered 429 and "
                         "sessions closed 4029 for --user-sessions.\n"
                         "# TYPE parley_gateway_session_limit_total counter\n"
                         "parley_gateway_session_limit_total %" PRIu64 "\n"
                         "# HELP parley_gateway_users_at_session_limit Users this gateway knows "
                         "to be at --user-sessions.\n"
                         "# TYPE parley_gateway_users_at_session_limit gauge\n"
                         "parley_gateway_users_at_session_limit %zu\n",
                         m[METRIC_SESSION_LIMIT], gauges->users_at_session_limit);
        if (k > 0) n += k;
    }
    if ((size_t)n < cap) {
        int k = snprintf(out + n, cap - (size_t)n,
                         "# HELP parley_gateway_open_rate_limited_total Upgrades answered 429 for "
                         "--user-open-rate.\n"
                         "# TYPE parley_gateway_open_rate_limited_total counter\n"
                         "parley_gateway_open_rate_limited_total %" PRIu64 "\n",
                         m[METRIC_OPEN_RATE_LIMITED]);
        if (k > 0) n += k;
    }
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
