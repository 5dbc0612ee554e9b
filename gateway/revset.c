/* revset.c - the revoked session ids (revset.h): a uthash by id. Expired
 * entries are swept when the table has doubled since the last sweep (at
 * least REVSET_SWEEP_MIN entries), so memory follows the revocations of one
 * token lifetime and a sweep costs O(1) per add on average. */
#include "revset.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#include "token.h"

#define REVSET_SWEEP_MIN 1024

typedef struct revset_entry {
    char sid[TOKEN_SID_LEN + 1];
    int64_t exp_s;
    UT_hash_handle hh;
} revset_entry;

static struct {
    revset_entry *all;
    size_t n;
    size_t sweep_at;
    int loaded;
} rv = {.sweep_at = REVSET_SWEEP_MIN};

int revset_loaded(void)
{
    return rv.loaded;
}

void revset_set_loaded(void)
{
    rv.loaded = 1;
}

static void revset_sweep(int64_t now_s)
{
    revset_entry *e, *tmp;
    HASH_ITER(hh, rv.all, e, tmp)
    {
        if (e->exp_s > now_s) continue;
        HASH_DEL(rv.all, e);
        free(e);
        rv.n--;
    }
    rv.sweep_at = rv.n * 2 > REVSET_SWEEP_MIN ? rv.n * 2 : REVSET_SWEEP_MIN;
}

int revset_add(const char *sid, size_t len, int64_t exp_s)
{
    if (!token_valid_sid(sid, len)) return -1;
    revset_entry *e;
    HASH_FIND(hh, rv.all, sid, len, e);
    if (e) {
        if (exp_s > e->exp_s) e->exp_s = exp_s;
        return 0;
    }
    if (rv.n >= rv.sweep_at) revset_sweep((int64_t)time(NULL));
    e = calloc(1, sizeof *e);
    if (!e) return -1;
    memcpy(e->sid, sid, len);
    e->exp_s = exp_s;
    HASH_ADD(hh, rv.all, sid, len, e);
    revset_entry *found;
    HASH_FIND(hh, rv.all, sid, len, found);
    if (found != e) { /* out of memory (HASH_NONFATAL_OOM) */
        free(e);
        return -1;
    }
    rv.n++;
    return 0;
}

int revset_has(const char *sid, int64_t now_s)
{
    revset_entry *e;
    if (!rv.all) return 0;
    HASH_FIND(hh, rv.all, sid, strlen(sid), e);
    return e && e->exp_s > now_s;
}

size_t revset_count(void)
{
    return rv.n;
}

void revset_free(void)
{
    revset_entry *e, *tmp;
    HASH_ITER(hh, rv.all, e, tmp)
    {
        HASH_DEL(rv.all, e);
        free(e);
    }
    rv.n = 0;
}
