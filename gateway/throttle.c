/* throttle.c - attempt budgets of logins, registrations and password changes
 * (throttle.h): one throttle.lua call per attempt, and one per refund. */
#include "throttle.h"

#include <stdlib.h>

#include "log.h"
#include "redis_link.h"
#include "scripts.h"

static throttle_config thr;

typedef struct throttle_wait {
    throttle_cb *cb;
    void *priv;
} throttle_wait;

void throttle_init(const throttle_config *c)
{
    thr = *c;
    if (thr.window_s < 1) thr.window_s = 1;
}

/* The budgets kind is counted against (0: not counted). */
static void throttle_budgets(throttle_kind kind, long long *addr, long long *account,
                             long long *account_addr)
{
    *addr = thr.addr;
    *account = kind == THROTTLE_REGISTER ? 0 : thr.account;
    *account_addr = kind == THROTTLE_REGISTER ? 0 : thr.account_addr;
}

static void throttle_taken(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    throttle_wait *w = priv;
    long long ms;
    int wait_s;
    if (rl_reply_int(r, &ms) < 0)
        wait_s = -1;
    else if (ms <= 0)
        wait_s = 0;
    else
        wait_s = (int)((ms + 999) / 1000);
    w->cb(w->priv, wait_s);
    free(w);
}

int throttle_take(throttle_kind kind, const char *user, const char *addr, throttle_cb *cb,
                  void *priv)
{
    long long a, acc, aa;
    throttle_budgets(kind, &a, &acc, &aa);
    if (!a && !acc && !aa) return 1;
    throttle_wait *w = malloc(sizeof *w);
    if (!w) return -1;
    w->cb = cb;
    w->priv = priv;
    /* a register's account budgets are 0: its name counts for nothing */
    if (scripts_throttle(rl_commands(), throttle_taken, w, 0, user, addr, thr.window_s * 1000, a,
                         acc, aa) != REDIS_OK) {
        free(w);
        return -1;
    }
    return 0;
}

void throttle_refund(throttle_kind kind, const char *user, const char *addr)
{
    long long a, acc, aa;
    throttle_budgets(kind, &a, &acc, &aa);
    if (!a && !acc && !aa) return;
    if (scripts_throttle(rl_commands(), NULL, NULL, 1, user, addr, thr.window_s * 1000, a, acc,
                         aa) != REDIS_OK)
        log_debug("throttle: a refund was not sent (redis down)");
}
