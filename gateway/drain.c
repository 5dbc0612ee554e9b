/* drain.c - the hold count behind an orderly stop (drain.h). */
#include "drain.h"

#include <stddef.h>

static struct {
    long holds;
    int active;
    drain_idle_fn *idle;
} drain;

void drain_hold(void)
{
    drain.holds++;
}

void drain_check(void)
{
    if (drain.active && drain.holds == 0 && drain.idle) drain.idle();
}

void drain_release(void)
{
    drain.holds--;
    drain_check();
}

int drain_active(void)
{
    return drain.active;
}

void drain_begin(drain_idle_fn *idle)
{
    drain.active = 1;
    drain.idle = idle;
}
