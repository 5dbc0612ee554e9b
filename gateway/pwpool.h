/* pwpool.h - argon2id hashing and verification off the event loop.
 *
 * --password-workers threads (default: the number of cores; each hash or
 * verification takes tens of ms and 64 MiB while it runs) take jobs from one
 * FIFO queue of at most --password-queue jobs, and hand each finished job back
 * to the loop, where its callback runs. The password is copied in and wiped
 * after the callback.
 *
 * Jobs submitted with a client address (pwpool_submit_from) count against
 * that address: at most --password-queue-addr of its jobs are queued or
 * running at a time, so one address flooding logins holds a few places of
 * the queue and the workers, never all of them, and another address's login
 * waits for at most those few jobs (per flooding address) ahead of it.
 *
 * Unknown accounts cost the same as known ones: a verification against a hash
 * that is not an argon2id string (PWPOOL_NO_ACCOUNT, "", a dev-auth account's
 * placeholder) runs against a dummy hash made at start with the same
 * parameters (password.h) and fails. All functions run on the loop's
 * thread. */
#ifndef PARLEY_GW_PWPOOL_H
#define PARLEY_GW_PWPOOL_H

#include <event2/event.h>
#include <stddef.h>

/* ok: 1 when hashed / verified; hash: the new hash (hashing), else NULL. */
typedef void pwpool_cb(void *priv, int ok, const char *hash);

/* The hash to verify an unknown account's password against. */
#define PWPOOL_NO_ACCOUNT ""

/* pwpool_submit / pwpool_submit_from: not queued */
#define PWPOOL_FULL      (-1) /* the whole queue is full (or out of memory): answer 503 */
#define PWPOOL_ADDR_BUSY (-2) /* this address has --password-queue-addr jobs in: answer 429 */

/* workers: threads (0: the number of online cores); max_queued: jobs queued
 * or running in all; max_per_addr: the same for one client address (0: no
 * limit). Makes the dummy hash (one hash on this thread). 0, or -1. */
int pwpool_start(struct event_base *base, int workers, int max_queued, int max_per_addr);
void pwpool_stop(void);
/* The number of worker threads started. */
int pwpool_workers(void);

/* Hash (hash == NULL) or verify pw[0..len) against hash; cb runs on the
 * loop. 0, or PWPOOL_FULL (cb never called). */
int pwpool_submit(const char *pw, size_t len, const char *hash, pwpool_cb *cb, void *priv);
/* The same for a request from client address addr (clientaddr.h; NULL:
 * counted against no address): 0, PWPOOL_FULL or PWPOOL_ADDR_BUSY. */
int pwpool_submit_from(const char *addr, const char *pw, size_t len, const char *hash,
                       pwpool_cb *cb, void *priv);

#endif
