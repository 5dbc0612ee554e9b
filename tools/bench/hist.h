/* hist.h - a fixed-size log-linear latency histogram (nanoseconds).
 *
 * Values below 128 ns have their own bucket; above, every power of two is
 * split into 64 buckets, so a reported percentile is within 1.6% of the true
 * value. No allocation: a hist is a plain struct, so it can live in shared
 * memory written by one worker process and merged by the parent. */
#ifndef PARLEY_BENCH_HIST_H
#define PARLEY_BENCH_HIST_H

#include <stdint.h>

#define HIST_BUCKETS 2816 /* covers up to 2^47 ns (about 39 hours) */

typedef struct hist {
    uint64_t count;
    uint64_t max; /* exact */
    uint64_t sum; /* for the mean */
    uint64_t b[HIST_BUCKETS];
} hist;

void hist_reset(hist *h);
void hist_add(hist *h, uint64_t ns);
void hist_merge(hist *dst, const hist *src);
/* Value at quantile q (0..1): the midpoint of the bucket holding it, the exact
 * max for q >= 1, 0 for an empty histogram. */
uint64_t hist_quantile(const hist *h, double q);
double hist_mean(const hist *h);

#endif
