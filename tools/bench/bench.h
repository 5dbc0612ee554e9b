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
 * Mode noisy adds one more process, the attacker (attacker.c), whose work the
 * bystanders (pair traffic in the workers) measure.
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

typedef enum { MODE_CONNECT, MODE_PAIR, MODE_FANOUT, MODE_RAMP, MODE_NOISY } bench_mode;

/* pair / fanout --ops: what each step sends. The first step sends texts; each
 * later one edits, reacts to or deletes the messages of the first, one frame
 * per message, in the same order, by their author (docs/protocol.md "Message
 * lifecycle"). */
typedef enum { OP_TEXT, OP_EDIT, OP_REACT, OP_DELETE } bench_op;
#define BENCH_MAX_OPS 4

/* noisy: what the attacker does in a phase (bench_ctl.attack, a bit set) */
enum { ATK_GROUP = 1, ATK_SYNC = 2, ATK_SESSIONS = 4 };
#define BENCH_MAX_PHASES 16
#define BENCH_FILLERS    4 /* users who fill the attacker's inbox */

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
    const char *ops; /* pair/fanout: "text,edit,react,delete": one step each */
    /* noisy: the attacker (attacker.c) */
    const char *phases; /* "off,group,sync,sessions,all": one step each */
    long long atk_window, atk_sessions, atk_inbox, atk_inbox_size, settle_ms;
    /* derived */
    int ngw;
    struct sockaddr_in gw[BENCH_MAX_GW];
    pid_t gw_pid[BENCH_MAX_GW];
    int npids;
    int ncpu;
    char cpu_name[BENCH_MAX_GW * 2][24];
    pid_t cpu_pid[BENCH_MAX_GW * 2];
    char nonce[12]; /* random per run: cids never repeat across runs */
    char group[40]; /* fan-out group name (noisy: the attacker's group) */
    int nworkers;   /* processes forked: procs, + 1 attacker in mode noisy (the last) */
    int nphases;
    int nops; /* pair/fanout: steps, op[] what each sends (op[0] is OP_TEXT) */
    bench_op op[BENCH_MAX_OPS];
    int phase_mask[BENCH_MAX_PHASES]; /* ATK_* bits of each phase */
    char phase_name[BENCH_MAX_PHASES][32];
    uint32_t atk_user; /* noisy: the attacker's user number (then members, then fillers) */
} bench_cfg;

typedef struct bench_ctl {
    volatile int step;    /* the parent raises it to start a traffic step */
    volatile double rate; /* total messages/s for that step */
    volatile double duration_s;
    volatile int stop;   /* workers close everything and exit */
    volatile int attack; /* noisy: ATK_* bits of the step about to run */
    volatile int prep;   /* noisy: the attacker prepares this step (refills its inbox) */
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

/* noisy: what the attacker did. Setup fields are cumulative, the rest are
 * reset when a step starts. Written by the attacker process only; read by the
 * parent after the attacker published step_done (in its bench_wstat). */
typedef struct bench_astat {
    volatile int prep_done;                /* the last step prepared */
    volatile uint64_t group_members;       /* the group's members once set up (0: no group) */
    volatile double group_setup_s, fill_s; /* group set-up time; the last inbox fill's time */
    volatile uint64_t fills, fill_entries, fill_bytes, fill_rate_limited; /* cumulative */
    /* group texts in this step */
    volatile uint64_t g_sent, g_acked, g_rate_limited, g_unavailable, g_errors, g_unanswered;
    hist g_ack_h; /* the attacker's own send -> ack (from the last try) */
    /* syncs in this step */
    volatile uint64_t s_hellos, s_done, s_cut, s_not_recovered, s_entries, s_bytes, s_pages,
        s_refused, s_failed;
    volatile uint64_t s_open_ns; /* the sync left running at the end: its age (0: none) */
    hist s_time_h;               /* sync sent -> its end (all pages) */
    /* extra sessions in this step */
    volatile uint64_t c_attempted, c_opened, c_refused, c_failed, c_closed, c_open, c_peak;
    volatile uint64_t copies; /* the attacker's own group texts echoed to its other sessions */
    char err[200];            /* the attacker's first problem (never fails the run) */
} bench_astat;

typedef struct bench_shm {
    bench_ctl ctl;
    bench_wstat w[BENCH_MAX_PROCS + 1]; /* + the attacker's */
    bench_astat atk;
} bench_shm;

uint64_t bench_now_ns(void);

/* "text", "edit", "react", "delete" */
const char *bench_op_name(bench_op op);

/* worker.c: runs in a forked child; never returns. */
void worker_main(const bench_cfg *cfg, bench_shm *shm, int w);
/* attacker.c: the noisy neighbour of mode noisy, in the forked child w (its
 * bench_wstat carries ready and step_done, shm->atk the rest); never returns. */
void attacker_main(const bench_cfg *cfg, bench_shm *shm, int w);

#endif
