/* router.h - the state of one parley-router process, shared by its modules:
 *
 *   main.c    flags, signals, the libevent loop, orderly shutdown
 *   conn.c    the two Redis connections (commands, subscriber), reconnect
 *   slots.c   heartbeat in parley:routers, slot leases, fair share, SUBSCRIBE
 *   route.c   envelopes from parley:rt:N -> batched `send` script calls
 *   fanout.c  steps of the queued group fan-outs (`fanout` function calls)
 *   reaper.c  closes the sessions of gateways whose heartbeat expired
 *
 * Everything runs on one libevent loop: no locks. Ownership: the router
 * struct lives in main() for the whole process; hiredis owns and frees its
 * contexts (conn.c only clears its pointers in the disconnect callback). */
#ifndef PARLEY_ROUTER_H
#define PARLEY_ROUTER_H

#include "keys.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <msgpack.h>
#include <stdint.h>

#include "redisurl.h"
#include "scripts.h"

struct clink;

typedef struct router_config {
    const char *redis_url;
    const char *id;
    long long inbox_cap, history_cap, dedupe_ttl, lease_ms, reap_interval;
    long long inbox_bytes, history_bytes, fanout_chunk;
    long long user_rate, user_burst, user_fanout_rate, user_fanout_burst;
    long long user_byte_rate, user_byte_burst;
    int send_steps; /* --send-steps: send_step.lua's chains even on one Redis */
    long long wait_replicas, wait_timeout; /* --wait-replicas N, --wait-timeout ms */
    long long reply_timeout; /* --redis-reply-timeout ms (cluster: a silent master is dropped) */
    const char *log_level;
} router_config;

/* Life of a routing slot in this process. */
typedef enum {
    SLOT_FREE = 0,  /* not ours */
    SLOT_CLAIMING,  /* SET NX PX sent */
    SLOT_HELD,      /* lease ours, SUBSCRIBE sent or confirmed */
    SLOT_RELEASING, /* UNSUBSCRIBE sent; release_slot runs on its confirmation */
} slot_state;

typedef struct router_stats {
    unsigned long long routed, dups, no_user, malformed, failed, lost, batches;
    unsigned long long limited;                     /* rate_limited answers */
    unsigned long long pending, fanned;             /* queued fan-outs, finished */
    unsigned long long fanout_steps, fanout_writes; /* fanout calls, inbox writes */
} router_stats;

#define ROUTE_BATCH_MAX    128 /* messages per send script call */
#define ROUTE_BATCH_GROUPS 4   /* group messages per send call (each may COPY a member set) */

#define FANOUT_GROUPS_MAX 1024 /* groups waiting for a fanout step (fanout.c) */
#define ROUTER_OWNER_MAX  128  /* bytes kept of a slot lease's holder (slots.c) */

struct router;

/* privdata for per-slot callbacks (no allocation per command) */
typedef struct slot_ref {
    struct router *r;
    unsigned slot;
} slot_ref;

/* Where the process is in its life (main.c). */
typedef enum {
    ROUTER_RUNNING = 0,
    ROUTER_STOPPING, /* a signal came: slots are being released */
    ROUTER_EXITING,  /* router_exit ran: the loop is breaking */
} router_run_state;

typedef struct router {
    router_config cfg;
    redisurl url;
    struct event_base *base;

    /* conn.c: NULL while down; *_up once the connect callback said OK;
     * *_handshake: replies of the connect sequence still awaited */
    redisAsyncContext *cmd, *sub;
    int cmd_up, sub_up;
    int cmd_handshake, sub_handshake;
    struct event *reconnect_ev;
    struct event *handshake_ev; /* the connect sequence's deadline */
    long backoff_ms;
    int outage_logged;
    int healthy; /* a command was answered since the last (re)connect */
    int cluster; /* INFO cluster said cluster_enabled:1 (at the last connect), or a cluster URL */
    /* cluster mode (a redis-cluster:// URL): the cluster link, kept from the
     * first conn_start to conn_free; cmd is then a stand-in while some master
     * is up (only tested and given to scripts.h: every step goes through the
     * link), sub the link's subscriber context while it is up */
    struct clink *link;

    /* slots.c */
    slot_state slot[PARLEY_SLOTS];
    slot_ref slot_refs[PARLEY_SLOTS];
    struct event *beat_ev;
    int tick_busy;          /* a heartbeat round trip is in flight */
    unsigned tick_no;       /* ticks started so far (late replies of an older one: ignored) */
    uint64_t tick_start_ms; /* when the one in flight started */
    int tick_gets;          /* it is at the GETs (else at TIME) */
    /* the tick's look at the slot leases: one GET per lease (their keys are
     * in 64 hash slots), owner[i] its holder ("" none) when owner_known[i]
     * (its GET of this tick answered); owner_wait[i]: a GET of the slot is
     * in flight (of tick owner_tick[i]). A tick decides once every GET
     * answered, or at the next beat with what is known (a master away: its
     * lease keys' GETs wait in the cluster link) */
    char owner[PARLEY_SLOTS][ROUTER_OWNER_MAX];
    unsigned char owner_known[PARLEY_SLOTS], owner_wait[PARLEY_SLOTS];
    unsigned owner_tick[PARLEY_SLOTS];
    int owners_left, owners_failed;
    long long live_routers;
    int leaving; /* shutdown: ZREM sent */

    /* reaper.c */
    struct event *reap_ev;
    int reap_busy;

    /* route.c */
    msgpack_unpacked unpacked; /* reused: its zone is cleared, not freed */
    scripts_send_batch batch;  /* the open batch */
    int batch_groups;          /* group messages in it */
    struct event *flush_ev;    /* sends it at the end of this loop turn */
    long long in_flight;       /* messages sent, not answered */
    int calls_in_flight;       /* send script calls not answered */
    int paused;                /* reading the subscriber socket is paused (backpressure) */
    router_stats stats;
    scripts_send_limits limits; /* from cfg, for send and fanout */

    /* fanout.c: a ring of #names waiting for a step */
    char fo_ring[FANOUT_GROUPS_MAX][PROTO_NAME_MAX + 2];
    int fo_head, fo_count;
    int fo_busy;                         /* a step is in flight */
    char fo_current[PROTO_NAME_MAX + 2]; /* its group */

    router_run_state stopping; /* main.c: signals and exit */
    struct event *stop_timeout_ev;
} router;

/* conn.c */
void conn_start(router *r);
int conn_ready(const router *r);
void conn_healthy(router *r); /* called on the first good reply after connecting */
void conn_close(router *r);   /* disconnect both (shutdown) */
void conn_free(router *r);    /* after the loop: frees the cluster link */
/* A plain command on the command side: on one Redis the command connection
 * (as redisAsyncCommandArgv / redisAsyncCommand), on a cluster the link
 * (routed by the first key; keyless ones to any master). cb as hiredis's:
 * once, NULL when the connection carrying it was lost. REDIS_ERR (cb not
 * called) while the command side is down or when it cannot be queued. */
int conn_command(router *r, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                 const size_t *lens);
/* The same with hiredis's format (%s, %b) */
int conn_commandf(router *r, redisCallbackFn *cb, void *priv, const char *fmt, ...);

/* slots.c */
void slots_init(router *r);
void slots_on_ready(router *r); /* both connections are up: beat and claim now */
void slots_on_down(router *r);  /* Redis lost: forget leases and subscriptions */
void slots_shutdown(router *r); /* unsubscribe and release everything, then ZREM */
int slots_held(const router *r, unsigned slot);

/* route.c */
void route_init(router *r);
void route_message(router *r, unsigned slot, const char *buf, size_t len);
void route_flush(router *r); /* send the open batch now */
/* the mode of the next batches: steps (send_step.lua: a cluster, --send-steps) or one send
 * call; drops a batch gathered for the other mode (counted lost: the clients retry) */
void route_set_steps(router *r, int steps);
void route_free(router *r);

/* fanout.c */
void fanout_want(router *r, const char *group, size_t len); /* drive it (if its slot is held) */
void fanout_poll(router *r); /* every tick: the groups of parley:fanouts in held slots */

/* reaper.c */
void reaper_init(router *r);

/* main.c: called when shutdown work is finished (or impossible) */
void router_exit(router *r);

#endif
