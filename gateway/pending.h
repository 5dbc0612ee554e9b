/* pending.h - a session's texts sent and not yet answered: cid -> recipient.
 *
 * The ack of a text names its cid, not its recipient; this memory lets the
 * delivery side learn the recipient as a contact when the ack comes (and
 * forget the entry on an ack or an error). At most PENDING_MAX entries per
 * session: the oldest is dropped (a lost entry only delays learning a
 * contact until the next text). The list owns its entries. */
#ifndef PARLEY_GW_PENDING_H
#define PARLEY_GW_PENDING_H

#include <stddef.h>

#include "proto.h"

#define PENDING_MAX 256

typedef struct pending_text {
    struct pending_text *next;
    char cid[PROTO_CID_MAX + 1];
    char to[PROTO_NAME_MAX + 2];
} pending_text;

typedef struct pending_texts {
    pending_text *head; /* newest first */
    int n;
} pending_texts;

void pending_remember(pending_texts *l, const proto_str *cid, const proto_str *to);
/* Removes the entry for cid[0..len); copies its recipient into to (size >=
 * PROTO_NAME_MAX + 2) when to is not NULL. Returns 1 if found, else 0. */
int pending_forget(pending_texts *l, const char *cid, size_t len, char *to);
void pending_clear(pending_texts *l);

#endif
