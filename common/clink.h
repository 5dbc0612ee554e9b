/* clink.h - the cluster link: an asynchronous Redis Cluster client on a
 * libevent loop, built on hiredis's async API (which knows no cluster) and on
 * common/cluster.h (key slots, CLUSTER SLOTS, MOVED/ASK) and common/redisurl.h
 * (redis-cluster:// seeds, the AUTH prelude).
 *
 * One link holds:
 *  - the slot map, read with CLUSTER SLOTS from any up master, else from the
 *    seeds and the other known nodes in turn (one read at a time);
 *  - one hiredis connection per master (at most CLUSTER_NODES_MAX), each
 *    opened with the URL's AUTH, then the owner's first commands
 *    (clink_hooks.handshake: CLIENT SETNAME, FUNCTION / SCRIPT LOAD); a
 *    connection is "up" only once every one of them answered without an
 *    error (an error, or no answer within CLINK_HANDSHAKE_MS, closes it and
 *    tries again after the backoff, 100 ms doubling to 2 s);
 *  - optionally one subscriber connection (classic SUBSCRIBE) to any node.
 *
 * Commands are routed by the slot of their first key and queued on that
 * slot's master (pipelined, as on one hiredis connection). Redirections are
 * followed inside the link: MOVED updates that slot's owner (connecting to a
 * node not known yet), schedules a read of the whole map (debounced) and
 * resends there; ASK resends once to the named node after ASKING; TRYAGAIN,
 * CLUSTERDOWN, LOADING and MASTERDOWN resend after CLINK_RETRY_MS, doubling
 * to CLINK_RETRY_MAX_MS (a failover's CLUSTERDOWN lasts seconds). A command
 * gives up after CLINK_COMMAND_MS from clink_command_* or CLINK_REDIRECTS_MAX
 * redirections/retries: its callback then gets the last error reply.
 *
 * Order: commands of one slot are sent in the order they were given, and a
 * command redirected or retried waits (held) until every command of its slot
 * already sent has been answered; commands given meanwhile for that slot wait
 * behind it in their order, and so does a command whose slot has commands in
 * flight on another connection (the map moved the slot: those may come back
 * redirected). So the order in which Redis runs one slot's commands is the
 * order they were given, across MOVED, ASK, the retried errors and map
 * changes. Not kept: when a connection is lost, its commands get NULL (the
 * owner may send them again, after commands given later); commands of
 * different slots, and keyless commands (sent to any master), have no order
 * among themselves; clink_each_master commands are not ordered with the
 * others. Callbacks of one slot's commands run in that order too, except that
 * a give-up after CLINK_COMMAND_MS may come before answers of earlier
 * commands.
 *
 * A master lost: every command on its connection gets NULL; the map is read
 * again (backoff 100 ms doubling to 2 s while some slot has no up master, and
 * every CLINK_REFRESH_MS while commands wait for one), the new owner (a
 * promoted replica) is connected, and commands of its slots given meanwhile
 * wait for it (at most CLINK_COMMAND_MS; a failover with Redis's default
 * timings, cluster-node-timeout 15 s, takes longer: they then get the
 * "CLUSTERDOWN clink: ..." error). A node no longer in the map is closed (its
 * pending commands are answered first).
 *
 * One master lost is not the link lost: the other masters' slots go on being
 * served while it is away (hooks any_up / all_down say when the link serves
 * some slots / none; ready / down when it serves every slot / not all), and
 * only the commands of its slots wait (then get the give-up error).
 *
 * A master that hangs (socket open, no answers: a stopped process, a host
 * gone without a reset) is noticed by the reply timeout: a connection that
 * owes replies and answered none for clink_set_reply_timeout ms (default
 * CLINK_REPLY_MS) is dropped as if it were lost (its commands get NULL; the
 * map is read again; it reconnects after the backoff), so a hung master
 * behaves like a dead one. The subscriber owes no replies: with the timeout
 * on, the link PUBLISHes a probe (its own channel, clink:probe:PID:ADDR,
 * subscribed on the subscriber) through a master at every look (reply_ms /
 * 4); a probe answered more than reply_ms ago whose message has not come
 * (and nothing unread on the subscriber's socket) drops the subscriber as
 * lost (subscriber_down, then it moves to another node). TCP keepalive is
 * the fallback with the timeout off (it never notices a stopped process on
 * a live host: its kernel answers). Multi-key commands whose keys cross slots are sent
 * by the first key (Redis answers CROSSSLOT); MULTI/EXEC, blocking commands
 * and WAIT go by their key like any command (WAIT: use clink_command_slot on
 * the slot just written). One link, one event loop, one thread. */
#ifndef PARLEY_CLINK_H
#define PARLEY_CLINK_H

#include "cluster.h"
#include "redisurl.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stddef.h>

#define CLINK_BACKOFF_MIN_MS 100    /* reconnect / map read retry, doubling */
#define CLINK_BACKOFF_MAX_MS 2000   /* to this */
#define CLINK_HANDSHAKE_MS   5000   /* connect + AUTH + the owner's first commands, at most */
#define CLINK_COMMAND_MS     5000   /* a command redirected or waiting for a master, at most */
#define CLINK_REDIRECTS_MAX  16     /* MOVED/ASK/retries of one command, at most */
#define CLINK_RETRY_MS       100    /* TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN: resend after, */
#define CLINK_RETRY_MAX_MS   500    /* doubling each time to this */
#define CLINK_REFRESH_MS     100    /* a MOVED: the whole map is read again after this */
#define CLINK_HELD_MAX       100000 /* commands waiting inside the link, at most */
#define CLINK_REPLY_MS       5000   /* a connection owing replies, silent this long: failed */

typedef struct clink clink;
typedef struct clink_conn clink_conn; /* one connection (a master's, or the subscriber) */

typedef struct clink_hooks {
    /* A new connection: queue its first commands with clink_conn_command
     * (sub: 1 on the subscriber, 0 on a master's). It is up once they all
     * answered without an error. NULL: AUTH alone. */
    void (*handshake)(clink *l, clink_conn *c, int sub, void *arg);
    void (*ready)(clink *l, void *arg); /* now every slot has an up master */
    void (*down)(clink *l, void *arg);  /* after ready: some slot has none now */
    /* The subscriber connection is up (again, maybe on another node):
     * subscribe to every channel now. NULL: the link opens no subscriber. */
    void (*subscriber_up)(clink *l, void *arg);
    void *arg;
    /* The subscriber connection, after subscriber_up, was lost (its
     * subscription callbacks got NULL; the link reconnects it, maybe to
     * another node). NULL: not told. */
    void (*subscriber_down)(clink *l, void *arg);
    /* The link serves some slots: a master of the map is up (it was serving
     * none). Comes before ready. NULL: not told. */
    void (*any_up)(clink *l, void *arg);
    /* After any_up: no master is up (every slot waits). Comes after down.
     * NULL: not told. */
    void (*all_down)(clink *l, void *arg);
} clink_hooks;

/* Starts a link on base for a redis-cluster:// URL u (copied), h (copied;
 * may be NULL). Connecting is asynchronous: the seeds are tried in turn, then
 * again after the backoff, until one answers CLUSTER SLOTS; h->ready says when
 * every slot has an up master. Returns the link, or NULL with a one-line
 * reason in err (not a cluster URL, no memory). */
clink *clink_new(struct event_base *base, const redisurl *u, const clink_hooks *h, char *err,
                 size_t errlen);

/* Queues one of the first commands of c (from the handshake hook only): argv
 * (lens NULL for C strings) is copied. REDIS_OK or REDIS_ERR. */
int clink_conn_command(clink_conn *c, int argc, const char **argv, const size_t *lens);

/* "host:port" of c (static storage of c). */
const char *clink_conn_addr(const clink_conn *c);

/* Sends a command (argv[0..argc), lens NULL for C strings; copied) to the
 * master of its slot: the first key, which is argv[1], or for EVAL, EVALSHA,
 * FCALL (and _RO) the first of KEYS (none: any master); keyless commands
 * (clink_key_slot) go to any up master. cb(ac, reply, priv) is called exactly
 * once: with the reply (an error reply too; ac: the connection that answered),
 * with NULL when the connection carrying it was lost or the link stopped (it
 * may or may not have run), or with an error reply "CLUSTERDOWN clink: ..."
 * (ac NULL) when no master took it within CLINK_COMMAND_MS (it did not run).
 * The reply belongs to hiredis (valid during cb). cb may be NULL. Returns
 * REDIS_OK, or REDIS_ERR (cb not called) when the link is stopped, argc < 1,
 * too many commands wait (CLINK_HELD_MAX) or memory ran out. */
int clink_command_argv(clink *l, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                       const size_t *lens);

/* As clink_command_argv, for a slot the caller chose (< CLUSTER_SLOTS), or -1
 * for any up master. */
int clink_command_slot(clink *l, int slot, redisCallbackFn *cb, void *priv, int argc,
                       const char **argv, const size_t *lens);

/* Sends the command to every up master, once each (no redirections, no
 * retries; e.g. SCRIPT FLUSH, FUNCTION LOAD after an upgrade): cb is called
 * once per master it was sent to (NULL reply when that connection was lost).
 * Returns how many masters that is (0: none up), or -1 when memory ran out
 * part way (cb is still called for those already sent). */
int clink_each_master(clink *l, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                      const size_t *lens);

/* 1 when every slot has a master whose connection is up. */
int clink_ready(const clink *l);

/* 1 when some master of the map has its connection up (the link serves
 * those slots; commands of the others wait). */
int clink_serving(const clink *l);

/* 1 when slot (< CLUSTER_SLOTS) has a master whose connection is up. */
int clink_slot_up(const clink *l, int slot);

/* As clink_slot_up for the slot of key[0..len). */
int clink_key_up(const clink *l, const char *key, size_t len);

/* Sends argv routed as clink_order_slot says (keyed commands by their key,
 * PUBLISH by its channel's slot, other keyless ones by slot 0: one master in
 * the order given), except that a keyless command whose order slot has no
 * up master goes to any up master (a PUBLISH, a TIME or an INFO does not
 * wait for a failover: only the order of those sent during it is lost).
 * What the gateway and the router send every command with. As
 * clink_command_argv otherwise. */
int clink_command_ordered(clink *l, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                          const size_t *lens);

/* The reply timeout (see the top): ms > 0, or 0 for none (TCP keepalive
 * only). Default CLINK_REPLY_MS. */
void clink_set_reply_timeout(clink *l, unsigned ms);

/* Masters (nodes owning slots) whose connection is up. */
int clink_up_masters(const clink *l);

/* One line for logs: "cluster 3/3 masters up, 16384/16384 slots served"
 * (never the password). */
const char *clink_describe(const clink *l, char *buf, size_t size);

/* The slot argv is routed by: its first key's slot, CLINK_ANY for a keyless
 * command (PING, PUBLISH, INFO, TIME, FUNCTION, SCRIPT, CLIENT, ..., and
 * EVAL/EVALSHA/FCALL with numkeys 0), CLINK_BAD when it names no key it
 * should (argc too small, a bad numkeys). Pure: for the unit tests. */
#define CLINK_ANY (-1)
#define CLINK_BAD (-2)
int clink_key_slot(int argc, const char **argv, const size_t *lens);

/* The slot an owner that needs its keyless commands in order routes argv by
 * (clink_command_slot): as clink_key_slot, but PUBLISH by the slot of its
 * channel (one channel's messages through one node, so a subscriber on any
 * node gets them in order) and other keyless commands (EVALSHA with no keys,
 * INFO, ...) by slot 0 (one master, one connection: in the order given);
 * CLINK_BAD as clink_key_slot. Pure. */
int clink_order_slot(int argc, const char **argv, const size_t *lens);

/* What the link does with an error reply err[0..len): CLINK_ERR_MOVED,
 * CLINK_ERR_ASK, CLINK_ERR_RETRY (TRYAGAIN, CLUSTERDOWN, LOADING,
 * MASTERDOWN) or CLINK_ERR_FINAL (anything else: to the caller). Pure. */
enum { CLINK_ERR_FINAL, CLINK_ERR_MOVED, CLINK_ERR_ASK, CLINK_ERR_RETRY };
int clink_error_kind(const char *err, size_t len);

/* What the link did so far (counters since clink_new), for logs, metrics and
 * tests. */
typedef struct clink_stats {
    unsigned long long moved;     /* MOVED replies followed */
    unsigned long long ask;       /* ASK replies followed */
    unsigned long long retried;   /* TRYAGAIN/CLUSTERDOWN/LOADING/MASTERDOWN resent */
    unsigned long long gave_up;   /* commands answered with an error after a wait */
    unsigned long long map_reads; /* CLUSTER SLOTS replies applied */
    unsigned long long timeouts;  /* connections dropped by the reply timeout */
} clink_stats;
void clink_stats_get(const clink *l, clink_stats *out);

/* ---- the subscriber (classic pub/sub: any node gets every PUBLISH over the
 * cluster bus). One connection, to a node of the map or a seed, moving to the
 * next one when it is lost; hooks.subscriber_up says when to subscribe
 * (again). ---- */

/* 1 when the subscriber connection is up. */
int clink_subscriber_up(const clink *l);

/* "host:port" of the node the subscriber is (being) connected to, or NULL
 * (static storage of l). */
const char *clink_subscriber_addr(const clink *l);

/* The subscriber's hiredis context while it is up, else NULL: valid until
 * the subscriber_down hook (or clink_stop); for pausing its reads
 * (ev.delRead / ev.addRead) and SUBSCRIBE / UNSUBSCRIBE on it. */
redisAsyncContext *clink_subscriber_context(const clink *l);

/* SUBSCRIBE chan on the subscriber: cb gets the confirmation and every
 * message (hiredis pub/sub callbacks; NULL when the connection is lost).
 * REDIS_ERR when the subscriber is not up (subscribe in subscriber_up). */
int clink_subscribe(clink *l, const char *chan, redisCallbackFn *cb, void *priv);
int clink_unsubscribe(clink *l, const char *chan);

/* Stops: no more reconnects or map reads; waiting commands get NULL; the
 * connections close once their pending replies came (hiredis
 * redisAsyncDisconnect). The link stays valid until clink_free. */
void clink_stop(clink *l);

/* Frees the link: pending callbacks get NULL first. Not from inside one of
 * the link's callbacks or hooks. */
void clink_free(clink *l);

#endif
