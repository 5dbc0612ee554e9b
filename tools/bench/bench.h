/* bench.h - parley-bench: a load generator that drives real Parley gateways
 * through the client protocol (docs/protocol.md).
 *
 * Process layout: the parent parses flags, forks --procs workers, prints the
 * progress line and the summary, and writes the JSON. Each worker owns a
 * share of the connections (its own epoll loop, wconn.c) and runs the mode's
 * traffic (worker.c). Parent and workers share one anonymous MAP_SHARED
 * region: the parent writes bench_ctl (which step to run, at what rate, when
 * to stop), each worker writes its bench_wstat (counters, histograms). The
 * parent reads a worker's histograms only after the worker has published
 * step_done for that step, so no locking is needed.
 *
 * A pair (sender + receiver) or a whole fan-out group lives in one worker,
 * so send time and delivery time are read from the same monotonic clock in
 * the same process. */
#ifndef PARLEY_BENCH_H
#define PARLEY_BENCH_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

#include "hist.h"

#define BENCH_MAX_GW    32
#define BENCH_MAX_PROCS 32

typedef enum { MODE_CONNECT, MODE_PAIR, MODE_FANOUT, MODE_RAMP } bench_mode;

typedef struct bench_cfg {
    bench_mode mode;
    const char *mode_name;
    const char *gateways; /* "host:port,host:port" */
    const char *pids;     /* "pid,pid": gateway processes whose RSS is read */
    const char *secret;
    const char *prefix;
    const char *json;
    const char *label;
    const char *cpu_pids; /* "name=pid,..." whose CPU time is accounted per step */
    long long user_offset, connections, connect_rate, inflight, sources, procs, hold_s;
    long long pairs, rate, duration_s, size, members, drain_ms, tick_us, connect_timeout_s;
    long long rate_start, rate_step, rate_max, step_s, p99_bound_us, progress, ramp_patience;
    /* derived */
    int ngw;
    struct sockaddr_in gw[BENCH_MAX_GW];
    pid_t gw_pid[BENCH_MAX_GW];
    int npids;
    int ncpu;
    char cpu_name[BENCH_MAX_GW * 2][24];
    pid_t cpu_pid[BENCH_MAX_GW * 2];
    char nonce[12]; /* random per run: cids never repeat across runs */
    char group[40]; /* fan-out group name */
} bench_cfg;

typedef struct bench_ctl {
    volatile int step;    /* the parent raises it to start a traffic step */
    volatile double rate; /* total messages/s for that step */
    volatile double duration_s;
    volatile int stop; /* workers close everything and exit */
} bench_ctl;

typedef struct bench_wstat {
    /* connections (cumulative) */
    volatile uint64_t conns, attempted, opened, failed, closed;
    volatile uint64_t t_first_ns, t_last_open_ns; /* first attempt, last hello */
    volatile uint64_t open_gw[BENCH_MAX_GW];      /* open now, per gateway */
    volatile int ready;     /* 1: every connection is open or failed (2: fan-out group set up) */
    volatile int step_done; /* the last step fully drained and counted */
    volatile int exited;
    char err[200]; /* the first problem seen, for the summary */
    /* the current step (reset when it starts) */
    volatile uint64_t sent, acked, delivered, errors, rate_limited, dups, late;
    volatile uint64_t lost, unacked, expected;
    volatile uint64_t t0_ns, t1_ns, tlast_ns; /* send start, send end, last delivery */
    hist connect_h;                           /* TCP connect start -> hello received */
    hist lat_h;                               /* send -> each delivery */
    hist last_h;                              /* fan-out: send -> delivery to the last member */
    hist ack_h;                               /* send -> ack */
    hist lag_h; /* how late the generator sent each message behind its schedule */
} bench_wstat;

typedef struct bench_shm {
    bench_ctl ctl;
    bench_wstat w[BENCH_MAX_PROCS];
} bench_shm;

uint64_t bench_now_ns(void);

/* worker.c: runs in a forked child; never returns. */
void worker_main(const bench_cfg *cfg, bench_shm *shm, int w);

#endif
