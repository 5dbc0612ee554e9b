/* hist.c - log-linear latency histogram: 64 buckets per power of two. */
#include "hist.h"

#include <string.h>

static unsigned hist_index(uint64_t v)
{
    if (v < 128) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 6;
    unsigned idx = (shift + 1) * 64 + (unsigned)(v >> shift) - 64;
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Midpoint of bucket i. */
static uint64_t hist_value(unsigned i)
{
    if (i < 128) return i;
    unsigned shift = i / 64 - 1;
    uint64_t mant = i % 64 + 64;
    uint64_t lo = mant << shift;
    return lo + ((1ull << shift) >> 1);
}

void hist_reset(hist *h)
{
    memset(h, 0, sizeof(*h));
}

void hist_add(hist *h, uint64_t ns)
{
    h->b[hist_index(ns)]++;
    h->count++;
    h->sum += ns;
    if (ns > h->max) h->max = ns;
}

void hist_merge(hist *dst, const hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t hist_quantile(const hist *h, double q)
{
    if (h->count == 0) return 0;
    if (q >= 1.0) return h->max;
    uint64_t want = (uint64_t)(q * (double)h->count);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double hist_mean(const hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
