/* redis_link.h - the gateway's two Redis connections on its event loop.
 *
 * "commands" carries scripts and plain commands; "subscriber" carries
 * SUBSCRIBEs. Each reconnects on its own with a backoff of 100 ms doubling
 * to 2 s (reset once a connection is usable). A connection is usable ("up",
 * its hooks run) only once its connect sequence was accepted: AUTH/SELECT,
 * CLIENT SETNAME and, on the command connection, the load of every script.
 * An error reply to any of them (-LOADING while Redis loads its data, a
 * refused load) or no answer within 5 s drops it and tries again after the
 * backoff. The link knows nothing of what is sent or subscribed: a
 * subscription names the callback that gets its channel's messages and
 * confirmations (hiredis keeps one callback per channel), and what must
 * happen when a connection comes or goes is a hook the composer (main.c)
 * sets. Callbacks of commands get NULL when the connection is lost before
 * the reply, exactly as hiredis delivers it. */
#ifndef PARLEY_GW_REDIS_LINK_H
#define PARLEY_GW_REDIS_LINK_H

#include <event2/event.h>
#include <hiredis/async.h>
#include <stddef.h>

#include "redisurl.h"

typedef struct rl_hooks {
    void (*commands_up)(void);   /* a new command connection is usable */
    void (*commands_down)(void); /* it was lost, or dropped by rl_drop_commands */
    void (*subscriber_up)(void); /* a new subscriber connection: subscribe again */
    void (*up)(void);            /* rl_ok() may have become true */
} rl_hooks;

/* Connects both. name: the prefix of the client names shown by CLIENT LIST
 * ("parley-gw:ID" gives parley-gw:ID:commands / :subscriber); url and name
 * are copied. 0, or -1 when timers cannot be made. */
int rl_start(struct event_base *base, const redisurl *url, const char *name, const rl_hooks *hooks);
/* Graceful: pending replies are delivered, then the connections close and
 * are not reconnected. */
void rl_stop(void);
/* After the loop ended: frees what is left. */
void rl_free(void);

/* Both connections usable and rl_subscriber_confirmed() called since the
 * subscriber (re)connected. */
int rl_ok(void);
/* The subscription the gateway cannot work without (its own channel) is
 * confirmed: completes rl_ok(). */
void rl_subscriber_confirmed(void);

/* 1 on a redis-cluster:// URL (the cluster link), 0 on one Redis. On a
 * cluster a PUBLISH's reply counts the subscribers on the node that took it
 * only (Redis passes the message to the others over the cluster bus): 0 does
 * not mean nobody listens. */
int rl_cluster(void);

/* The command connection while it is usable, else NULL (for scripts.h; in
 * cluster mode a stand-in while some master is up, which scripts.h only
 * tests: every step goes through the link, and a step of a slot whose master
 * is away waits there, then fails). */
redisAsyncContext *rl_commands(void);
/* 1 when the commands for keys[0..n) (NUL-terminated names) can be served
 * now: on one Redis while the command connection is up, on a cluster while
 * the master of each key's slot is (the others may be away: their commands
 * would wait, then fail). For answering `unavailable` at once. */
int rl_keys_up(int n, const char *const *keys);
/* Cluster mode: a master connection that owes replies and got none for ms
 * is dropped as lost (clink_set_reply_timeout; 0: TCP keepalive only).
 * Before or after rl_start. No effect on one Redis (heartbeat.c's watchdog
 * does that there). */
void rl_set_reply_timeout(unsigned ms);
/* A command on the command connection: 0, or -1 when it is down. */
int rl_command(redisCallbackFn *cb, void *priv, int argc, const char **argv, const size_t *lens);
/* Whether the command connection moved since the last call (on a cluster
 * with the reply timeout on, always 1: the link drops a hung master itself,
 * and one hung master must not drop the whole link): 1 when nothing
 * waits for a reply, a reply came in between (the oldest command waiting is
 * another one, or the connection is new), or a reply is waiting to be read
 * on the socket; 0 when the same command has been waiting all along. What
 * a watchdog asks once per period: a Redis busy with a backlog still
 * answers, a stopped one does not. */
int rl_commands_progressed(void);
/* Drops the command connection now (every pending callback gets NULL) and
 * reconnects: for a Redis that keeps TCP open but stopped answering. */
void rl_drop_commands(void);

/* SUBSCRIBE chan with cb as its callback (messages, the confirmation, the
 * UNSUBSCRIBE confirmation). Nothing while the subscriber is down: the
 * subscriber_up hook subscribes again. */
void rl_subscribe(const char *chan, redisCallbackFn *cb, void *priv);
void rl_unsubscribe(const char *chan);
/* 1 while the subscriber connection is usable. */
int rl_subscriber_up(void);

/* Reads an integer reply, or a string holding one (Lua numbers come back
 * as integers, some replies as strings): 0, or -1 for anything else. */
int rl_reply_int(const struct redisReply *r, long long *out);

/* A pub/sub reply as the subscription callbacks get it: {type, channel,
 * data}. 0 with the parts filled (data NULL unless type is "message"), or
 * -1 when the reply is not one. */
typedef struct rl_pubsub {
    const char *type, *chan, *data;
    size_t type_len, chan_len, data_len;
} rl_pubsub;
int rl_pubsub_parse(const struct redisReply *r, rl_pubsub *out);
/* 1 when the parsed reply's type is t ("message", "subscribe", ...). */
int rl_pubsub_is(const rl_pubsub *p, const char *t);

#endif
