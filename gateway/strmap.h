/* strmap.h - a small chained hash map from byte-string keys to pointers.
 *
 * Keys are copied in; values are the caller's. Used for sessions by user and
 * by connection id, presence entries by name, and a session's contacts. */
#ifndef PARLEY_STRMAP_H
#define PARLEY_STRMAP_H

#include <stddef.h>

typedef struct strmap_node {
    struct strmap_node *next;
    void *val;
    size_t klen;
    char key[]; /* NUL-terminated copy */
} strmap_node;

typedef struct strmap {
    strmap_node **b;
    size_t nb, n;
} strmap;

void strmap_init(strmap *m);
void strmap_free(strmap *m); /* frees the nodes, not the values */
void *strmap_get(const strmap *m, const char *k, size_t klen);
/* inserts or replaces; returns 0, -1 on out of memory */
int strmap_put(strmap *m, const char *k, size_t klen, void *val);
/* removes; returns the old value or NULL */
void *strmap_del(strmap *m, const char *k, size_t klen);

/* iteration: for (it = strmap_first(m, &i); it; it = strmap_next(m, it, &i)) */
strmap_node *strmap_first(const strmap *m, size_t *i);
strmap_node *strmap_next(const strmap *m, strmap_node *cur, size_t *i);

#endif
