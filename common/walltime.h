/* walltime.h - the wall clock in milliseconds since the Unix epoch, as
 * stored in Redis (created, sent) and used for the per-socket token bucket.
 * CLOCK_REALTIME, so it matches Redis's TIME across processes. */
#ifndef PARLEY_WALLTIME_H
#define PARLEY_WALLTIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t walltime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
