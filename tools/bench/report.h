/* report.h - what a run measured, merged over the workers, and how it is
 * shown: the summary table on stdout and the JSON file (--json). */
#ifndef PARLEY_BENCH_REPORT_H
#define PARLEY_BENCH_REPORT_H

#include <stdio.h>

#include "bench.h"

typedef struct report_step {
    double rate, duration_s, elapsed_s, delivered_per_s;
    uint64_t sent, acked, delivered, errors, rate_limited, dups, late, lost, unacked, expected;
    double load1; /* 1-minute load average when the step ended */
    int held;     /* ramp: p99 within the bound, nothing lost */
    hist lat, last, ack, lag;
    double cpu_s[BENCH_MAX_GW * 2]; /* CPU seconds of each --cpu-pids process in the step */
    double gen_cpu_s;               /* the generator's workers */
    /* noisy */
    double load1_start; /* 1-minute load average when the step started */
    bench_astat atk;    /* what the attacker did in the step (and its set-up so far) */
} report_step;

typedef struct report {
    const bench_cfg *cfg;
    char load_start[64], load_end[64];
    long long started_unix;
    /* connections */
    uint64_t conns, opened, failed, closed;
    double connect_s, handshakes_per_s;
    hist connect;
    long long rss_before_kb[BENCH_MAX_GW], rss_after_kb[BENCH_MAX_GW];
    uint64_t open_gw[BENCH_MAX_GW];
    double connect_cpu_s[BENCH_MAX_GW * 2]; /* CPU of each --cpu-pids process while connecting */
    double connect_gen_cpu_s;
    /* traffic */
    report_step *steps;
    int nsteps;
    double best_rate; /* ramp: highest rate that held (0: none) */
    char err[200];
} report;

void report_table(const report *r, FILE *out);
int report_json(const report *r, const char *path);
/* One step's line of the ramp table. */
void report_step_line(const report *r, const report_step *s, FILE *out);
/* Mode noisy: phase i's lines (bystanders, then the attacker). */
void report_phase_line(const report *r, int i, FILE *out);

#endif
