/* clink_drive.c - a workload through the cluster link (common/clink.h), for
 * tests/integration/clink.test.mjs: built by CMake as build/tests/clink-drive,
 * never installed.
 *
 *   clink-drive --url redis-cluster://... [--keys K] [--count N] [--rate R]
 *               [--prefix P] [--read] [--sub CHANNEL] [--timeout MS]
 *
 * Once the link is ready it sends N commands, command n being RPUSH of n to
 * key n % K, at R commands a second (0: all at once). Key k is P:{TAG} with
 * TAG = cluster_slot_tag(k * 16384 / K), so K keys spread over the slots
 * (K = 16384: one key in every slot). It never sends a command twice. Every
 * master connection's first command is CLIENT SETNAME clink-drive (the
 * handshake hook). Lines on stdout, one per event:
 *   key K NAME SLOT          (at start, every key)
 *   ready MASTERS / down     (the link's hooks)
 *   each-sent N, each-reply PONG  (at the first ready: PING on every master)
 *   ok N LEN | null N | err N MESSAGE   (each reply)
 *   done sent=N ok=A null=B err=C
 *   list K V1,V2,...         (--read: LRANGE of every key, through the link)
 *   stats moved=.. ask=.. retried=.. gave_up=.. map_reads=..  (clink_stats)
 *   sub-up ADDR / message DATA  (--sub: the subscriber, its messages; once
 *                            subscribed it PUBLISHes "self" through the link)
 * Exit 0 after done (and the lists; with --sub, after a message "quit"), 1 on
 * a bad argument or --timeout. */
#include "clink.h"
#include "cluster.h"
#include "log.h"
#include "redisurl.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    struct event_base *base;
    clink *l;
    int keys, count, rate, read;
    const char *prefix, *chan;
    int sent, answered, ok, null, err, listed, started;
    struct event *tick, *timeout;
} d;

static void drive_key(int k, char *buf, size_t size)
{
    unsigned slot = (unsigned)((unsigned long)k * CLUSTER_SLOTS / (unsigned long)d.keys);
    snprintf(buf, size, "%s:{%s}", d.prefix, cluster_slot_tag(slot));
}

static void drive_finish(void)
{
    clink_stop(d.l);
    event_base_loopexit(d.base, NULL);
}

static void drive_list_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    int k = (int)(intptr_t)priv;
    printf("list %d ", k);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        printf("!%s\n", rep && rep->str ? rep->str : "null");
    } else {
        for (size_t i = 0; i < rep->elements; i++)
            printf("%s%s", i ? "," : "", rep->element[i]->str);
        printf("\n");
    }
    if (++d.listed == d.keys && !d.chan) drive_finish();
}

static void drive_done(void)
{
    clink_stats st;
    clink_stats_get(d.l, &st);
    printf("done sent=%d ok=%d null=%d err=%d\n", d.sent, d.ok, d.null, d.err);
    printf("stats moved=%llu ask=%llu retried=%llu gave_up=%llu map_reads=%llu\n", st.moved, st.ask,
           st.retried, st.gave_up, st.map_reads);
    if (!d.read) {
        if (!d.chan) drive_finish();
        return;
    }
    for (int k = 0; k < d.keys; k++) {
        char key[64];
        drive_key(k, key, sizeof key);
        const char *argv[] = {"LRANGE", key, "0", "-1"};
        if (clink_command_argv(d.l, drive_list_cb, (void *)(intptr_t)k, 4, argv, NULL) !=
            REDIS_OK) {
            printf("list %d !not queued\n", k);
            if (++d.listed == d.keys && !d.chan) drive_finish();
        }
    }
}

static void drive_reply_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    int n = (int)(intptr_t)priv;
    if (!rep) {
        printf("null %d\n", n);
        d.null++;
    } else if (rep->type == REDIS_REPLY_INTEGER) {
        printf("ok %d %lld\n", n, rep->integer);
        d.ok++;
    } else {
        printf("err %d %s\n", n, rep->str ? rep->str : "?");
        d.err++;
    }
    if (++d.answered == d.count) drive_done();
}

static void drive_send(void)
{
    int n = d.sent;
    char key[64], val[16];
    drive_key(n % d.keys, key, sizeof key);
    snprintf(val, sizeof val, "%d", n);
    const char *argv[] = {"RPUSH", key, val};
    d.sent++;
    if (clink_command_argv(d.l, drive_reply_cb, (void *)(intptr_t)n, 3, argv, NULL) != REDIS_OK) {
        printf("err %d not queued\n", n);
        d.err++;
        if (++d.answered == d.count) drive_done();
    }
}

static void drive_tick(evutil_socket_t fd, short what, void *arg)
{
    int burst = d.rate > 0 ? (d.rate + 99) / 100 : d.count;
    for (int i = 0; i < burst && d.sent < d.count; i++)
        drive_send();
    if (d.sent < d.count) {
        struct timeval tv = {0, 10000};
        evtimer_add(d.tick, &tv);
    }
}

static void drive_each_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    printf("each-reply %s\n", rep && rep->str ? rep->str : "null");
}

static void drive_ready(clink *l, void *arg)
{
    printf("ready %d\n", clink_up_masters(l));
    if (d.started) return;
    d.started = 1;
    const char *ping[] = {"PING"};
    printf("each-sent %d\n", clink_each_master(l, drive_each_cb, NULL, 1, ping, NULL));
    if (d.count == 0) {
        drive_done();
        return;
    }
    struct timeval tv = {0, 0};
    evtimer_add(d.tick, &tv);
}

static void drive_down(clink *l, void *arg)
{
    printf("down\n");
}

static void drive_handshake(clink *l, clink_conn *c, int sub, void *arg)
{
    const char *argv[] = {"CLIENT", "SETNAME", sub ? "clink-drive-sub" : "clink-drive"};
    clink_conn_command(c, 3, argv, NULL);
}

static void drive_message_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[0]->str, "subscribe") == 0) {
        /* subscribed: a keyless command through the link (any master) comes
         * back over the cluster bus */
        const char *argv[] = {"PUBLISH", d.chan, "self"};
        clink_command_argv(d.l, NULL, NULL, 3, argv, NULL);
    }
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(rep->element[0]->str, "message") == 0) {
        printf("message %s\n", rep->element[2]->str);
        if (strcmp(rep->element[2]->str, "quit") == 0) drive_finish();
    }
}

static void drive_sub_up(clink *l, void *arg)
{
    printf("sub-up %s\n", clink_subscriber_addr(l));
    clink_subscribe(l, d.chan, drive_message_cb, NULL);
}

static void drive_timeout(evutil_socket_t fd, short what, void *arg)
{
    printf("timeout sent=%d answered=%d\n", d.sent, d.answered);
    fflush(stdout);
    exit(1);
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    int timeout_ms = 60000;
    d.keys = 64;
    d.count = 1000;
    d.prefix = "clink";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--read") == 0) {
            d.read = 1;
            continue;
        }
        if (!v) goto usage;
        i++;
        if (strcmp(a, "--url") == 0)
            url = v;
        else if (strcmp(a, "--keys") == 0)
            d.keys = atoi(v);
        else if (strcmp(a, "--count") == 0)
            d.count = atoi(v);
        else if (strcmp(a, "--rate") == 0)
            d.rate = atoi(v);
        else if (strcmp(a, "--prefix") == 0)
            d.prefix = v;
        else if (strcmp(a, "--sub") == 0)
            d.chan = v;
        else if (strcmp(a, "--timeout") == 0)
            timeout_ms = atoi(v);
        else
            goto usage;
    }
    if (!url || d.keys < 1 || d.keys > CLUSTER_SLOTS || d.count < 0) goto usage;
    setvbuf(stdout, NULL, _IOLBF, 0);
    log_init("clink-drive", LOG_LVL_INFO);
    redisurl u;
    char err[256];
    if (redisurl_parse(url, &u, err, sizeof err) != 0) {
        fprintf(stderr, "clink-drive: %s\n", err);
        return 1;
    }
    for (int k = 0; k < d.keys; k++) {
        char key[64];
        drive_key(k, key, sizeof key);
        printf("key %d %s %u\n", k, key, cluster_keyslot(key, strlen(key)));
    }
    d.base = event_base_new();
    d.tick = evtimer_new(d.base, drive_tick, NULL);
    d.timeout = evtimer_new(d.base, drive_timeout, NULL);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(d.timeout, &tv);
    clink_hooks h = {.handshake = drive_handshake,
                     .ready = drive_ready,
                     .down = drive_down,
                     .subscriber_up = d.chan ? drive_sub_up : NULL};
    d.l = clink_new(d.base, &u, &h, err, sizeof err);
    if (!d.l) {
        fprintf(stderr, "clink-drive: %s\n", err);
        return 1;
    }
    event_base_dispatch(d.base);
    clink_free(d.l);
    event_free(d.tick);
    event_free(d.timeout);
    event_base_free(d.base);
    return 0;
usage:
    fprintf(stderr, "usage: clink-drive --url redis-cluster://HOST:PORT[,...] [--keys K] "
                    "[--count N] [--rate R] [--prefix P] [--read] [--sub CHANNEL] "
                    "[--timeout MS]\n");
    return 1;
}
