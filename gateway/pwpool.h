/* pwpool.h - argon2id hashing and verification off the event loop.
 *
 * One worker thread takes jobs from a bounded queue and hands each finished
 * job back to the loop, where its callback runs. The password is copied in
 * and wiped after the callback. */
#ifndef PARLEY_GW_PWPOOL_H
#define PARLEY_GW_PWPOOL_H

#include <event2/event.h>
#include <stddef.h>

/* ok: 1 when hashed / verified; hash: the new hash (hashing), else NULL. */
typedef void pwpool_cb(void *priv, int ok, const char *hash);

int pwpool_start(struct event_base *base);
void pwpool_stop(void);
/* Hash (hash == NULL) or verify pw[0..len) against hash; cb runs on the
 * loop. Returns -1 when the queue is full (answer 503). */
int pwpool_submit(const char *pw, size_t len, const char *hash, pwpool_cb *cb, void *priv);

#endif
