/* pending.c - texts sent and not yet answered (pending.h). */
#include "pending.h"

#include <stdlib.h>
#include <string.h>

void pending_remember(pending_texts *l, const proto_str *cid, const proto_str *to)
{
    pending_text *t = calloc(1, sizeof *t);
    if (!t || cid->len > PROTO_CID_MAX || to->len > PROTO_NAME_MAX + 1) {
        free(t);
        return;
    }
    memcpy(t->cid, cid->p, cid->len);
    memcpy(t->to, to->p, to->len);
    t->next = l->head;
    l->head = t;
    if (++l->n > PENDING_MAX) { /* drop the oldest */
        pending_text **pp = &l->head;
        while ((*pp)->next)
            pp = &(*pp)->next;
        free(*pp);
        *pp = NULL;
        l->n--;
    }
}

int pending_forget(pending_texts *l, const char *cid, size_t len, char *to)
{
    for (pending_text **pp = &l->head; *pp; pp = &(*pp)->next) {
        pending_text *t = *pp;
        if (strlen(t->cid) == len && memcmp(t->cid, cid, len) == 0) {
            if (to) strcpy(to, t->to);
            *pp = t->next;
            free(t);
            l->n--;
            return 1;
        }
    }
    return 0;
}

void pending_clear(pending_texts *l)
{
    while (l->head) {
        pending_text *t = l->head;
        l->head = t->next;
        free(t);
    }
    l->n = 0;
}
