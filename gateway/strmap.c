/* strmap.c - chained hash map (FNV-1a), doubling when the load passes 1. */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t strmap_hash(const char *k, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

void strmap_init(strmap *m)
{
    m->b = NULL;
    m->nb = 0;
    m->n = 0;
}

void strmap_free(strmap *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        strmap_node *n = m->b[i];
        while (n) {
            strmap_node *next = n->next;
            free(n);
            n = next;
        }
    }
    free(m->b);
    strmap_init(m);
}

static strmap_node **strmap_slot(const strmap *m, const char *k, size_t klen)
{
    if (!m->nb) return NULL;
    strmap_node **pp = &m->b[strmap_hash(k, klen) & (m->nb - 1)];
    while (*pp && ((*pp)->klen != klen || memcmp((*pp)->key, k, klen) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *strmap_get(const strmap *m, const char *k, size_t klen)
{
    strmap_node **pp = strmap_slot(m, k, klen);
    return pp && *pp ? (*pp)->val : NULL;
}

static int strmap_grow(strmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 16;
    strmap_node **b = calloc(nb, sizeof *b);
    if (!b) return -1;
    for (size_t i = 0; i < m->nb; i++) {
        strmap_node *n = m->b[i];
        while (n) {
            strmap_node *next = n->next;
            size_t j = strmap_hash(n->key, n->klen) & (nb - 1);
            n->next = b[j];
            b[j] = n;
            n = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int strmap_put(strmap *m, const char *k, size_t klen, void *val)
{
    strmap_node **pp = strmap_slot(m, k, klen);
    if (pp && *pp) {
        (*pp)->val = val;
        return 0;
    }
    if (m->n + 1 > m->nb && strmap_grow(m) < 0) return -1;
    strmap_node *n = malloc(sizeof *n + klen + 1);
    if (!n) return -1;
    memcpy(n->key, k, klen);
    n->key[klen] = '\0';
    n->klen = klen;
    n->val = val;
    size_t j = strmap_hash(k, klen) & (m->nb - 1);
    n->next = m->b[j];
    m->b[j] = n;
    m->n++;
    return 0;
}

void *strmap_del(strmap *m, const char *k, size_t klen)
{
    strmap_node **pp = strmap_slot(m, k, klen);
    if (!pp || !*pp) return NULL;
    strmap_node *n = *pp;
    void *v = n->val;
    *pp = n->next;
    free(n);
    m->n--;
    return v;
}

strmap_node *strmap_first(const strmap *m, size_t *i)
{
    for (*i = 0; *i < m->nb; (*i)++)
        if (m->b[*i]) return m->b[*i];
    return NULL;
}

strmap_node *strmap_next(const strmap *m, strmap_node *cur, size_t *i)
{
    if (cur->next) return cur->next;
    for ((*i)++; *i < m->nb; (*i)++)
        if (m->b[*i]) return m->b[*i];
    return NULL;
}
