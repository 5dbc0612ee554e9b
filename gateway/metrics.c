/* metrics.c - /metrics in the Prometheus text format: counters since start
 * and a few gauges read at request time. */
#include <inttypes.h>
#include <stdio.h>

#include "gw.h"

size_t metrics_render(gw_server *g, char *out, size_t cap)
{
    const gw_metrics *m = &g->m;
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
        "# HELP parley_gateway_redis_up 1 when both Redis connections are usable.\n"
        "# TYPE parley_gateway_redis_up gauge\n"
        "parley_gateway_redis_up %d\n"
        "# HELP parley_gateway_draining 1 after SIGTERM.\n"
        "# TYPE parley_gateway_draining gauge\n"
        "parley_gateway_draining %d\n",
        g->nsessions, m->connections_total, m->frames_in, m->frames_out, m->messages_published,
        m->unavailable, m->slow_consumers, m->bad_frames, m->rate_limited, m->http_requests,
        m->redis_reconnects, m->heartbeat_lapses, rl_ok(g) ? 1 : 0, g->draining);
    if (n < 0) return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
