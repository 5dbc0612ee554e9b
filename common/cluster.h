/* cluster.h - Redis Cluster's key space as a client sees it, after the Redis
 * Cluster specification (redis.io/docs/reference/cluster-spec, "Key
 * distribution model", "Redirection and resharding"): the hash slot of a key,
 * the slot map a cluster reports (CLUSTER SLOTS) and the redirections its
 * nodes answer (MOVED, ASK).
 *
 * Pure functions and plain structs: no I/O and no allocation, so the
 * connection layer that uses them (one hiredis async link per master) and the
 * unit tests share them as they are. Debian has no hiredis-cluster package,
 * and hiredis's async API knows no cluster; this is the part of a cluster
 * client that is plain arithmetic and parsing. */
#ifndef PARLEY_CLUSTER_H
#define PARLEY_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_SLOTS     16384 /* hash slots of every Redis Cluster */
#define CLUSTER_NODES_MAX 128   /* masters a map holds (a cluster of more: an error) */
#define CLUSTER_HOST_MAX  256
#define CLUSTER_ID_MAX    40 /* a node id: 40 hex digits */

/* The hash slot of key[0..len): CRC16 (XMODEM: polynomial 0x1021, initial 0)
 * of its hash tag, mod CLUSTER_SLOTS. The hash tag is what lies between the
 * first '{' and the first '}' after it, when that is not empty; else the whole
 * key ("{u:alice}:inbox" hashes "u:alice"; "{}x" and "x{" hash themselves).
 * Equals what CLUSTER KEYSLOT answers. */
unsigned cluster_keyslot(const char *key, size_t len);

/* A hash tag whose keys live in `slot` (< CLUSTER_SLOTS): the first string of
 * [0-9a-z] (shortest first, then in that order) that hashes there, at most
 * CLUSTER_TAG_MAX characters. Keys "prefix{TAG}suffix" with it share the slot
 * of every other key there, so one script may touch them together: e.g. a
 * counter per slot beside a conversation's keys. The table is built on the
 * first call (about 200,000 CRCs, under a millisecond), then read; not
 * thread-safe on that first call. Returns the tag (static storage). */
#define CLUSTER_TAG_MAX 4
const char *cluster_slot_tag(unsigned slot);

/* CRC16-XMODEM of buf[0..len) (the specification's reference: 0x31C3 for
 * "123456789"). */
uint16_t cluster_crc16(const char *buf, size_t len);

/* A master and where to reach it. host "" when the node did not say (its
 * link is then the address the map was read from: cluster_map_from_slots). */
typedef struct cluster_node {
    char host[CLUSTER_HOST_MAX];
    int port;
    char id[CLUSTER_ID_MAX + 1]; /* "" when the reply gave none */
} cluster_node;

/* Which master serves each slot. owner[s] is an index into nodes, or -1 when
 * no master serves s (a cluster being built, or a failed shard). */
typedef struct cluster_map {
    int nnodes;
    cluster_node nodes[CLUSTER_NODES_MAX];
    int16_t owner[CLUSTER_SLOTS];
    int covered; /* slots with an owner */
} cluster_map;

/* Fills *m from a CLUSTER SLOTS reply: an array of [start, end, master,
 * replicas...], each node [host, port, id?, ...]. A master named with an empty
 * host or "?" gets from_host (the node the reply came from, the
 * specification's "unknown endpoint"). Ranges may come in any order; a slot
 * named twice is an error. Returns 0, or -1 with a one-line reason in err (the
 * map is then empty: every owner -1). */
int cluster_map_from_slots(cluster_map *m, const redisReply *r, const char *from_host, char *err,
                           size_t errlen);

/* The node index of slot's master, or -1. */
int cluster_map_owner(const cluster_map *m, unsigned slot);

/* A redirection in an error reply: "MOVED <slot> <host>:<port>" (the slot
 * lives there now: update the map) or "ASK <slot> <host>:<port>" (ask that
 * node this once, after ASKING: the slot is being moved). An IPv6 host keeps
 * its colons (the port is after the last one). */
typedef struct cluster_redirect {
    int ask; /* 1 ASK, 0 MOVED */
    unsigned slot;
    char host[CLUSTER_HOST_MAX];
    int port;
} cluster_redirect;

/* 1 and *out when err[0..len) is a redirection, 0 when it is another error,
 * -1 when it starts with MOVED/ASK but is malformed. */
int cluster_parse_redirect(const char *err, size_t len, cluster_redirect *out);

#endif
