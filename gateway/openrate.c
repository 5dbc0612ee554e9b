/* openrate.c - per-user token buckets for opening WebSockets (openrate.h).
 *
 * Token bucket as in RFC 2697's single-rate meter, in milli-tokens so the
 * arithmetic stays integral: a bucket refills at `rate` tokens per second up
 * to `burst`, each upgrade takes one. Every OPENRATE_SWEEP_EVERY takes, the
 * entries whose bucket is full again are freed. */
#include "openrate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "proto.h"
#include "walltime.h"

#define OPENRATE_SWEEP_EVERY 256

typedef struct openrate_user {
    char name[PROTO_NAME_MAX + 1];
    long long milli; /* tokens x 1000 at `at_ms` */
    uint64_t at_ms;
    UT_hash_handle hh;
} openrate_user;

static struct {
    long long rate, burst; /* tokens per second, bucket size */
    openrate_user *users;  /* uthash by name */
    size_t n;
    unsigned takes;
} orl;

void openrate_init(long long rate, long long burst)
{
    orl.rate = rate > 0 ? rate : 0;
    orl.burst = burst > 0 ? burst : 1;
}

static void openrate_del(openrate_user *u)
{
    HASH_DEL(orl.users, u);
    free(u);
    orl.n--;
}

void openrate_free(void)
{
    openrate_user *u, *tmp;
    HASH_ITER(hh, orl.users, u, tmp)
    openrate_del(u);
}

size_t openrate_count(void)
{
    return orl.n;
}

/* u's tokens x 1000 now */
static long long openrate_level(const openrate_user *u, uint64_t now)
{
    long long full = orl.burst * 1000;
    uint64_t dt = now > u->at_ms ? now - u->at_ms : 0;
    if (dt >= (uint64_t)full) return full; /* rate >= 1/s: full after `burst` s at most */
    long long m = u->milli + (long long)dt * orl.rate;
    return m < full ? m : full;
}

static void openrate_sweep(uint64_t now)
{
    openrate_user *u, *tmp;
    HASH_ITER(hh, orl.users, u, tmp)
    {
        if (openrate_level(u, now) >= orl.burst * 1000) openrate_del(u);
    }
}

int openrate_take(const char *user)
{
    if (!orl.rate) return 0;
    uint64_t now = walltime_ms();
    if (++orl.takes % OPENRATE_SWEEP_EVERY == 0) openrate_sweep(now);
    size_t len = strlen(user);
    if (len > PROTO_NAME_MAX) return 0; /* not a name: refused elsewhere */
    openrate_user *u;
    HASH_FIND(hh, orl.users, user, len, u);
    if (!u) {
        u = calloc(1, sizeof *u);
        if (!u) return 0; /* out of memory: not limited rather than locked out */
        memcpy(u->name, user, len);
        u->milli = orl.burst * 1000;
        u->at_ms = now;
        HASH_ADD(hh, orl.users, name, len, u);
        openrate_user *added;
        HASH_FIND(hh, orl.users, user, len, added);
        if (added != u) { /* HASH_NONFATAL_OOM: not added */
            free(u);
            return 0;
        }
        orl.n++;
    }
    long long m = openrate_level(u, now);
    u->at_ms = now;
    if (m < 1000) {
        u->milli = m;
        long long wait_ms = (1000 - m + orl.rate - 1) / orl.rate; /* ms until one token */
        int s = (int)((wait_ms + 999) / 1000);
        return s < 1 ? 1 : s;
    }
    u->milli = m - 1000;
    return 0;
}
