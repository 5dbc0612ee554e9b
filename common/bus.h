/* bus.h - the internal envelopes carried on Redis pub/sub (docs/internals.md):
 * gateway -> router on parley:rt:N, router/script -> gateway on parley:gw:ID.
 *
 * Like proto.h, decoded strings point into the caller's buffer. */
#ifndef PARLEY_BUS_H
#define PARLEY_BUS_H

#include "proto.h"

/* gateway -> router, one per client frame that changes a conversation:
 * {t:"text", u, g, c, to, data, cid, r?} (r: reply_to),
 * {t:"edit", u, g, c, to, data, cid, r} (r: the edited message's id),
 * {t:"delete", u, g, c, to, data: "", cid, r},
 * {t:"react", u, g, c, to, data: emoji, cid, r, on}.
 * `to` is the conversation as the sender names it (a user or #group). Each
 * kind has its own `t`, so a router older than the kind drops it (logged)
 * instead of taking it for a text. */
typedef struct bus_text {
    proto_str from, gw, to, data, cid;
    uint64_t conn;
    int64_t ref;     /* text: reply_to (0: none); the others: the target id (> 0) */
    int on;          /* react: 1 add, 0 take back */
    proto_kind kind; /* PROTO_TEXT (0 counts as text when encoding), PROTO_EDIT,
                        PROTO_DELETE or PROTO_REACT */
} bus_text;

void bus_enc_text(msgpack_packer *pk, const bus_text *m);
/* buf is exactly one envelope: 0, or -1 when malformed */
int bus_dec_text(const char *buf, size_t len, msgpack_unpacked *u, bus_text *m);
/* the first envelope of a payload holding one or more, one after the other:
 * 0 with *used = its length in bytes, or -1 (nothing after it can be found) */
int bus_next_text(const char *buf, size_t len, msgpack_unpacked *u, bus_text *m, size_t *used);

/* router/script -> gateway */
/* 'h': {t:"h", u, p: peer, o: bool}: the presence of the user `peer` is
 * hidden from (o true) or shown again to (o false) u's sessions (a block,
 * block.lua); nothing is sent to the client */
typedef enum {
    BUS_TO_USER = 'u',
    BUS_TO_CONN = 'c',
    BUS_TO_MANY = 'm',
    BUS_HIDE = 'h',
} bus_dest;

typedef struct bus_delivery {
    bus_dest t;
    proto_str user;   /* t == 'u' or 'h' */
    proto_str except; /* t == 'u' or 'm': session id to skip, len 0 if none */
    /* t == 'm': {t:"m", f, u: [users], s: [seqs]?, x?}: f goes to every user
     * in u; with s, user i gets f with "seq" = s[i] added (proto_add_seq) */
    const msgpack_object *users; /* array of valid user names */
    const msgpack_object *seqs;  /* NULL, or an array of positive ints as long as users */
    uint64_t conn;               /* t == 'c' */
    int64_t seq;                 /* 0 when absent */
    proto_str frame;             /* client frame bytes (msgpack str or bin in the envelope) */
    proto_str peer;              /* t == 'h': a valid user name */
    int hide;                    /* t == 'h': 1 hide, 0 show */
} bus_delivery;

/* Returns 0, or -1 when the envelope is malformed (logged by the caller);
 * bus_next_delivery: the first of several, as bus_next_text. */
int bus_dec_delivery(const char *buf, size_t len, msgpack_unpacked *u, bus_delivery *d);
int bus_next_delivery(const char *buf, size_t len, msgpack_unpacked *u, bus_delivery *d,
                      size_t *used);

#endif
