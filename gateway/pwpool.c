/* pwpool.c - argon2id hashing and verification off the event loop.
 *
 * --password-workers threads take jobs from one bounded FIFO queue (mutex +
 * condition variable), run password_hash/password_verify (tens of ms, 64 MiB
 * each), and hand each finished job back through a pipe the loop watches; the
 * callback then runs on the loop. Nothing else is shared with the threads.
 * The password copy is wiped and freed on the loop after the callback.
 *
 * The count of jobs per client address (a uthash table) is kept on the loop
 * only: incremented at submit, decremented when the job comes back, and the
 * entry freed at zero, so it holds only the addresses with jobs in. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

#include "clientaddr.h"
#include "log.h"
#include "password.h"
#include "pwpool.h"

#define PWPOOL_MAX_WORKERS 256

typedef struct pw_addr {
    char addr[CLIENTADDR_MAX];
    int jobs; /* queued or running */
    UT_hash_handle hh;
} pw_addr;

typedef struct pw_job {
    struct pw_job *next;
    char *pw;
    size_t len;
    char hash[PASSWORD_HASH_MAX];
    int verify;
    int ok;
    pw_addr *addr; /* counted against, or NULL */
    pwpool_cb *cb;
    void *priv;
} pw_job;

static struct {
    pthread_t threads[PWPOOL_MAX_WORKERS];
    int started; /* threads running */
    int max_queued, max_per_addr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pw_job *head, *tail; /* under mu */
    int queued;          /* queued or running (loop only) */
    int stop;            /* under mu */
    int pipe_r, pipe_w;
    struct event *ev;
    pw_addr *addrs;                /* loop only */
    char dummy[PASSWORD_HASH_MAX]; /* what unknown accounts are verified against */
} pw = {
    .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .pipe_r = -1, .pipe_w = -1};

/* A hash this pool verifies against as is: an argon2id string. Anything else
 * (an unknown account, a placeholder) is verified against the dummy. */
static int pwpool_real_hash(const char *h)
{
    return !strncmp(h, "$argon2id$", 10);
}

static void *pwpool_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&pw.mu);
        while (!pw.head && !pw.stop)
            pthread_cond_wait(&pw.cv, &pw.mu);
        if (pw.stop) {
            pthread_mutex_unlock(&pw.mu);
            return NULL;
        }
        pw_job *j = pw.head;
        pw.head = j->next;
        if (!pw.head) pw.tail = NULL;
        pthread_mutex_unlock(&pw.mu);

        if (!j->verify)
            j->ok = password_hash(j->pw, j->len, j->hash) == 0;
        else if (pwpool_real_hash(j->hash))
            j->ok = password_verify(j->hash, j->pw, j->len) == 0;
        else { /* the same work, and no: the account does not exist */
            (void)password_verify(pw.dummy, j->pw, j->len);
            j->ok = 0;
        }
        /* a pointer is written atomically to a pipe (< PIPE_BUF) */
        ssize_t w;
        do
            w = write(pw.pipe_w, &j, sizeof j);
        while (w < 0 && errno == EINTR);
    }
}

static void pwpool_release(pw_job *j)
{
    pw.queued--;
    if (j->addr && --j->addr->jobs <= 0) {
        HASH_DEL(pw.addrs, j->addr);
        free(j->addr);
    }
    j->addr = NULL;
}

static void pwpool_free_job(pw_job *j)
{
    sodium_memzero(j->pw, j->len);
    free(j->pw);
    free(j);
}

/* A job ends (ok: its result; 0 when dropped at exit): its callback runs on
 * the loop, then the job and its password copy are freed. */
static void pwpool_finish(pw_job *j, int ok)
{
    pwpool_release(j);
    j->cb(j->priv, ok, ok && !j->verify ? j->hash : NULL);
    pwpool_free_job(j);
}

static void pwpool_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    pw_job *j;
    while (read(pw.pipe_r, &j, sizeof j) == (ssize_t)sizeof j)
        pwpool_finish(j, j->ok);
}

int pwpool_start(struct event_base *base, int workers, int max_queued, int max_per_addr)
{
    int fds[2];
    if (password_init() < 0 || pipe2(fds, O_CLOEXEC) < 0) return -1;
    pw.pipe_r = fds[0];
    pw.pipe_w = fds[1];
    fcntl(pw.pipe_r, F_SETFL, O_NONBLOCK);
    pw.max_queued = max_queued > 0 ? max_queued : 1;
    pw.max_per_addr = max_per_addr > 0 ? max_per_addr : 0;
    unsigned char secret[32];
    randombytes_buf(secret, sizeof secret);
    int hashed = password_hash((const char *)secret, sizeof secret, pw.dummy);
    sodium_memzero(secret, sizeof secret);
    if (hashed < 0) return -1;
    pw.ev = event_new(base, pw.pipe_r, EV_READ | EV_PERSIST, pwpool_done, NULL);
    if (!pw.ev || event_add(pw.ev, NULL) < 0) return -1;
    if (workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        workers = n > 0 ? (int)n : 1;
    }
    if (workers > PWPOOL_MAX_WORKERS) workers = PWPOOL_MAX_WORKERS;
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&pw.threads[i], NULL, pwpool_main, NULL) != 0) {
            log_error("password worker %d: cannot start a thread", i + 1);
            return pw.started ? 0 : -1; /* fewer workers rather than none */
        }
        pw.started++;
    }
    return 0;
}

int pwpool_workers(void)
{
    return pw.started;
}

/* Joins the workers (each finishing at most the job it is running) and drops
 * what is still queued, without running callbacks' work: called at exit
 * only. */
void pwpool_stop(void)
{
    if (pw.started) {
        pthread_mutex_lock(&pw.mu);
        pw.stop = 1;
        pthread_cond_broadcast(&pw.cv);
        pthread_mutex_unlock(&pw.mu);
        for (int i = 0; i < pw.started; i++)
            pthread_join(pw.threads[i], NULL);
        pw.started = 0;
    }
    pw_job *j;
    while (pw.pipe_r >= 0 && read(pw.pipe_r, &j, sizeof j) == (ssize_t)sizeof j)
        pwpool_finish(j, 0);
    while ((j = pw.head)) {
        pw.head = j->next;
        pwpool_finish(j, 0);
    }
    pw.tail = NULL;
    if (pw.ev) event_free(pw.ev);
    pw.ev = NULL;
    if (pw.pipe_r >= 0) close(pw.pipe_r);
    if (pw.pipe_w >= 0) close(pw.pipe_w);
    pw.pipe_r = pw.pipe_w = -1;
    sodium_memzero(pw.dummy, sizeof pw.dummy);
}

/* The entry of addr, made if missing: NULL when out of memory. */
static pw_addr *pwpool_addr(const char *addr)
{
    size_t len = strlen(addr);
    if (len >= CLIENTADDR_MAX) len = CLIENTADDR_MAX - 1;
    pw_addr *a;
    HASH_FIND(hh, pw.addrs, addr, len, a);
    if (a) return a;
    a = calloc(1, sizeof *a);
    if (!a) return NULL;
    memcpy(a->addr, addr, len);
    HASH_ADD(hh, pw.addrs, addr, len, a);
    pw_addr *added;
    HASH_FIND(hh, pw.addrs, addr, len, added);
    if (added != a) { /* HASH_NONFATAL_OOM: not added */
        free(a);
        return NULL;
    }
    return a;
}

int pwpool_submit_from(const char *addr, const char *pwd, size_t len, const char *hash,
                       pwpool_cb *cb, void *priv)
{
    if (!pw.started || pw.queued >= pw.max_queued) return PWPOOL_FULL;
    if (hash && strlen(hash) >= PASSWORD_HASH_MAX) hash = PWPOOL_NO_ACCOUNT; /* not a hash */
    pw_addr *a = NULL;
    if (addr) {
        a = pwpool_addr(addr);
        if (!a) return PWPOOL_FULL;
        if (pw.max_per_addr && a->jobs >= pw.max_per_addr) return PWPOOL_ADDR_BUSY;
    }
    pw_job *j = calloc(1, sizeof *j);
    if (!j || !(j->pw = malloc(len ? len : 1))) {
        free(j);
        if (a && !a->jobs) {
            HASH_DEL(pw.addrs, a);
            free(a);
        }
        return PWPOOL_FULL;
    }
    memcpy(j->pw, pwd, len);
    j->len = len;
    if (hash) {
        j->verify = 1;
        strcpy(j->hash, hash);
    }
    j->cb = cb;
    j->priv = priv;
    j->addr = a;
    if (a) a->jobs++;
    pw.queued++;
    pthread_mutex_lock(&pw.mu);
    if (pw.tail)
        pw.tail->next = j;
    else
        pw.head = j;
    pw.tail = j;
    pthread_cond_signal(&pw.cv);
    pthread_mutex_unlock(&pw.mu);
    return 0;
}

int pwpool_submit(const char *pwd, size_t len, const char *hash, pwpool_cb *cb, void *priv)
{
    return pwpool_submit_from(NULL, pwd, len, hash, cb, priv);
}
