/* cluster.c - hash slots, the slot map and redirections of Redis Cluster
 * (cluster.h). */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CRC16-XMODEM, bit by bit: a key is at most a few hundred bytes, and this
 * runs once per command, far below the cost of the command itself. */
uint16_t cluster_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

const char *cluster_slot_tag(unsigned slot)
{
    static char tags[CLUSTER_SLOTS][CLUSTER_TAG_MAX + 1];
    static int built;
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    const unsigned base = sizeof alphabet - 1;
    if (!built) {
        unsigned left = CLUSTER_SLOTS;
        for (unsigned len = 1; len <= CLUSTER_TAG_MAX && left; len++) {
            unsigned long total = 1;
            for (unsigned i = 0; i < len; i++)
                total *= base;
            for (unsigned long n = 0; n < total && left; n++) {
                char t[CLUSTER_TAG_MAX + 1];
                unsigned long v = n;
                for (unsigned i = len; i-- > 0;) { /* n in base 36, most significant first */
                    t[i] = alphabet[v % base];
                    v /= base;
                }
                unsigned s = cluster_crc16(t, len) % CLUSTER_SLOTS;
                if (tags[s][0]) continue;
                memcpy(tags[s], t, len);
                tags[s][len] = '\0';
                left--;
            }
        }
        built = 1;
    }
    return slot < CLUSTER_SLOTS ? tags[slot] : "";
}

unsigned cluster_keyslot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);
        if (close && close > key + from) /* a non-empty tag */
            return cluster_crc16(key + from, (size_t)(close - (key + from))) % CLUSTER_SLOTS;
    }
    return cluster_crc16(key, len) % CLUSTER_SLOTS;
}

static int cluster_fail(cluster_map *m, char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "CLUSTER SLOTS: %s", why);
    m->nnodes = 0;
    m->covered = 0;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++)
        m->owner[s] = -1;
    return -1;
}

/* The index of the master named by the reply's node n (added when new), or -1
 * when malformed or the map is full. */
static int cluster_node_index(cluster_map *m, const redisReply *n, const char *from_host)
{
    if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
        n->element[0]->type != REDIS_REPLY_STRING || n->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    const char *host = n->element[0]->str;
    size_t hlen = n->element[0]->len;
    if (hlen == 0 || (hlen == 1 && host[0] == '?')) { /* unknown endpoint: the one we asked */
        host = from_host ? from_host : "";
        hlen = strlen(host);
    }
    long long port = n->element[1]->integer;
    if (hlen >= CLUSTER_HOST_MAX || port < 1 || port > 65535) return -1;
    const char *id = "";
    size_t idlen = 0;
    if (n->elements >= 3 && n->element[2]->type == REDIS_REPLY_STRING) {
        id = n->element[2]->str;
        idlen = n->element[2]->len;
        if (idlen > CLUSTER_ID_MAX) return -1;
    }
    for (int i = 0; i < m->nnodes; i++) {
        cluster_node *x = &m->nodes[i];
        if (x->port == port && strlen(x->host) == hlen && memcmp(x->host, host, hlen) == 0)
            return i;
    }
    if (m->nnodes == CLUSTER_NODES_MAX) return -1;
    cluster_node *x = &m->nodes[m->nnodes];
    memcpy(x->host, host, hlen);
    x->host[hlen] = '\0';
    x->port = (int)port;
    memcpy(x->id, id, idlen);
    x->id[idlen] = '\0';
    return m->nnodes++;
}

int cluster_map_from_slots(cluster_map *m, const redisReply *r, const char *from_host, char *err,
                           size_t errlen)
{
    m->nnodes = 0;
    m->covered = 0;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++)
        m->owner[s] = -1;
    if (!r || r->type != REDIS_REPLY_ARRAY) return cluster_fail(m, err, errlen, "not an array");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER)
            return cluster_fail(m, err, errlen, "a range is not [start, end, master, ...]");
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo < 0 || hi < lo || hi >= CLUSTER_SLOTS)
            return cluster_fail(m, err, errlen, "a range is out of 0..16383");
        int node = cluster_node_index(m, e->element[2], from_host);
        if (node < 0) return cluster_fail(m, err, errlen, "a master is malformed, or too many");
        for (long long s = lo; s <= hi; s++) {
            if (m->owner[s] >= 0) return cluster_fail(m, err, errlen, "a slot is named twice");
            m->owner[s] = (int16_t)node;
        }
        m->covered += (int)(hi - lo + 1);
    }
    return 0;
}

int cluster_map_owner(const cluster_map *m, unsigned slot)
{
    return slot < CLUSTER_SLOTS ? m->owner[slot] : -1;
}

int cluster_parse_redirect(const char *err, size_t len, cluster_redirect *out)
{
    int ask;
    size_t skip;
    if (len >= 6 && memcmp(err, "MOVED ", 6) == 0) {
        ask = 0;
        skip = 6;
    } else if (len >= 4 && memcmp(err, "ASK ", 4) == 0) {
        ask = 1;
        skip = 4;
    } else {
        return 0;
    }
    char buf[CLUSTER_HOST_MAX + 32];
    if (len - skip >= sizeof buf) return -1;
    memcpy(buf, err + skip, len - skip);
    buf[len - skip] = '\0';
    char *sp = strchr(buf, ' ');
    if (!sp || sp == buf) return -1;
    *sp = '\0';
    char *end;
    unsigned long slot = strtoul(buf, &end, 10);
    if (*end || slot >= CLUSTER_SLOTS) return -1;
    char *addr = sp + 1, *colon = strrchr(addr, ':');
    if (!colon || colon == addr) return -1;
    long port = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || port < 1 || port > 65535) return -1;
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= CLUSTER_HOST_MAX) return -1;
    out->ask = ask;
    out->slot = (unsigned)slot;
    memcpy(out->host, addr, hlen);
    out->host[hlen] = '\0';
    out->port = (int)port;
    return 1;
}
