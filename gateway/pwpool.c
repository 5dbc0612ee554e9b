/* pwpool.c - argon2id hashing and verification off the event loop.
 *
 * One worker thread takes jobs from a bounded queue (mutex + condition
 * variable), runs password_hash/password_verify (tens of ms, 64 MiB each), and
 * hands the finished job back through a pipe the loop watches; the callback
 * then runs on the loop. Nothing else is shared with the thread. The password
 * copy is wiped and freed on the loop after the callback. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "password.h"
#include "pwpool.h"

#define PWPOOL_MAX_QUEUED 256

typedef struct pw_job {
    struct pw_job *next;
    char *pw;
    size_t len;
    char hash[PASSWORD_HASH_MAX];
    int verify;
    int ok;
    pwpool_cb *cb;
    void *priv;
} pw_job;

static struct {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pw_job *head, *tail;
    int queued;
    int stop;
    int pipe_r, pipe_w;
    struct event *ev;
} pw = {
    .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .pipe_r = -1, .pipe_w = -1};

static void *pwpool_main(void *arg)
{
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

        if (j->verify)
            j->ok = password_verify(j->hash, j->pw, j->len) == 0;
        else
            j->ok = password_hash(j->pw, j->len, j->hash) == 0;
        /* a pointer is written atomically to a pipe (< PIPE_BUF) */
        ssize_t w;
        do
            w = write(pw.pipe_w, &j, sizeof j);
        while (w < 0 && errno == EINTR);
    }
}

static void pwpool_done(evutil_socket_t fd, short what, void *arg)
{
    pw_job *j;
    while (read(pw.pipe_r, &j, sizeof j) == (ssize_t)sizeof j) {
        pthread_mutex_lock(&pw.mu);
        pw.queued--;
        pthread_mutex_unlock(&pw.mu);
        j->cb(j->priv, j->ok, j->ok && !j->verify ? j->hash : NULL);
        sodium_memzero(j->pw, j->len);
        free(j->pw);
        free(j);
    }
}

int pwpool_start(struct event_base *base)
{
    int fds[2];
    if (password_init() < 0 || pipe2(fds, O_CLOEXEC) < 0) return -1;
    pw.pipe_r = fds[0];
    pw.pipe_w = fds[1];
    fcntl(pw.pipe_r, F_SETFL, O_NONBLOCK);
    pw.ev = event_new(base, pw.pipe_r, EV_READ | EV_PERSIST, pwpool_done, NULL);
    if (!pw.ev || event_add(pw.ev, NULL) < 0) return -1;
    if (pthread_create(&pw.thread, NULL, pwpool_main, NULL) != 0) return -1;
    pw.started = 1;
    return 0;
}

/* Joins the worker (finishing at most the job it is running) and drops what
 * is still queued, without running callbacks: called at exit only. */
void pwpool_stop(void)
{
    if (pw.started) {
        pthread_mutex_lock(&pw.mu);
        pw.stop = 1;
        pthread_cond_signal(&pw.cv);
        pthread_mutex_unlock(&pw.mu);
        pthread_join(pw.thread, NULL);
        pw.started = 0;
    }
    pw_job *j;
    while (pw.pipe_r >= 0 && read(pw.pipe_r, &j, sizeof j) == (ssize_t)sizeof j) {
        j->cb(j->priv, 0, NULL);
        free(j->pw);
        free(j);
    }
    while ((j = pw.head)) {
        pw.head = j->next;
        j->cb(j->priv, 0, NULL);
        free(j->pw);
        free(j);
    }
    pw.tail = NULL;
    if (pw.ev) event_free(pw.ev);
    pw.ev = NULL;
    if (pw.pipe_r >= 0) close(pw.pipe_r);
    if (pw.pipe_w >= 0) close(pw.pipe_w);
    pw.pipe_r = pw.pipe_w = -1;
}

int pwpool_submit(const char *pwd, size_t len, const char *hash, pwpool_cb *cb, void *priv)
{
    pw_job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    j->pw = malloc(len ? len : 1);
    if (!j->pw || (hash && strlen(hash) >= sizeof j->hash)) {
        free(j->pw);
        free(j);
        return -1;
    }
    memcpy(j->pw, pwd, len);
    j->len = len;
    if (hash) {
        j->verify = 1;
        strcpy(j->hash, hash);
    }
    j->cb = cb;
    j->priv = priv;
    pthread_mutex_lock(&pw.mu);
    if (pw.queued >= PWPOOL_MAX_QUEUED || pw.stop) {
        pthread_mutex_unlock(&pw.mu);
        free(j->pw);
        free(j);
        return -1;
    }
    pw.queued++;
    if (pw.tail)
        pw.tail->next = j;
    else
        pw.head = j;
    pw.tail = j;
    pthread_cond_signal(&pw.cv);
    pthread_mutex_unlock(&pw.mu);
    return 0;
}
