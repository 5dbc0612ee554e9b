/* proto.h - the client protocol (docs/protocol.md): decoding and validating
 * the frames clients send, encoding the frames the gateway itself builds.
 *
 * Decoding never allocates outside the msgpack zone the caller owns: every
 * proto_str points into the buffer given to proto_decode(), so the frame is
 * valid while that buffer and the msgpack_unpacked live. Frames built by Lua
 * scripts (text, ack) are forwarded as bytes and never pass through here. */
#ifndef PARLEY_PROTO_H
#define PARLEY_PROTO_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_NAME_MAX 32 /* user name length; a group adds '#' */
/* The user-name rule (proto_valid_user), said once: as a pattern for
 * protocol errors, and in words for people (HTTP API, CLI). */
#define PROTO_USER_PATTERN    "[a-z0-9_.-]{1,32}"
#define PROTO_USER_RULE       "user names are 1 to 32 characters of a-z 0-9 _ . -"
#define PROTO_CID_MAX         64
#define PROTO_EPOCH_MAX       64
#define PROTO_GWID_MAX        64 /* gateway id length (proto_valid_gwid) */
#define PROTO_HISTORY_MAX     100
#define PROTO_HISTORY_DEFAULT 50
#define PROTO_MEMBERS_MAX     1000 /* members in one group frame */
#define PROTO_EMOJI_MAX       32   /* react `emoji`: bytes of UTF-8 */

typedef struct proto_str {
    const char *p;
    size_t len;
} proto_str;

typedef enum {
    PROTO_TEXT = 1,
    PROTO_SYNC,
    PROTO_READ,
    PROTO_TYPING,
    PROTO_HISTORY,
    PROTO_GROUP,
    PROTO_BLOCK,
    PROTO_EDIT,
    PROTO_DELETE,
    PROTO_REACT,
} proto_kind;

typedef enum {
    PROTO_OP_CREATE = 1,
    PROTO_OP_JOIN,
    PROTO_OP_LEAVE,
    PROTO_OP_ADD,
    PROTO_OP_REMOVE,
    PROTO_OP_PROMOTE,
    PROTO_OP_DEMOTE,
} proto_group_op;

/* A decoded, validated client frame. Only the fields of its kind are set. */
typedef struct proto_frame {
    proto_kind kind;
    proto_str to;                  /* text, typing: user name or #group */
    proto_str data;                /* text: valid UTF-8 */
    proto_str cid;                 /* text, edit, delete, react: 1..64 chars; text: len 0 when
                                      absent (dev mode only) */
    proto_str with;                /* read, history, edit, delete, react: user name or #group */
    int64_t reply_to;              /* text: > 0, or 0 when absent */
    int64_t id;                    /* edit, delete, react: the target message, > 0 */
    proto_str emoji;               /* react: 1..PROTO_EMOJI_MAX bytes of UTF-8 */
    proto_str epoch;               /* sync */
    int64_t after;                 /* sync: >= 0 */
    int64_t upto;                  /* read: > 0 */
    int64_t before;                /* history: > 0, or 0 when absent */
    int64_t limit;                 /* history: 1..100, default 50 */
    proto_group_op op;             /* group */
    proto_str name;                /* group: #name */
    int open;                      /* group create: open flag */
    const msgpack_object *members; /* group: array of str, each a user name */
    uint32_t nmembers;
    proto_str user; /* block: a user name */
    int on;         /* block: 1 block, 0 unblock; react: 1 add, 0 take back */
} proto_frame;

/* Why a frame was refused. code is a protocol error code string; close is 0
 * when the connection stays open, else the WebSocket close code (1007). */
typedef struct proto_error {
    const char *code;
    char message[160];
    proto_str cid; /* the frame's cid when it was a text with a usable cid */
    int close;
} proto_error;

#define PROTO_ALLOW_NO_CID 1 /* dev auth mode: text without cid accepted */

/* Decodes buf[0..len) as one client frame. Returns 0 and fills *f, or -1 and
 * fills *err: bad_frame (+close 1007) for not msgpack / not a map / trailing
 * bytes; bad_field for a missing or ill-typed `kind` or field or a value out of
 * range; unknown_kind. *u must be initialised with msgpack_unpacked_init and
 * destroyed by the caller. */
int proto_decode(const char *buf, size_t len, msgpack_unpacked *u, int flags, proto_frame *f,
                 proto_error *err);

/* Checks raw bytes before unpacking: 0 when buf[0..len) is exactly one
 * complete msgpack object whose containers never announce more elements than
 * bytes remain (so unpacking allocates O(len)); 1 when a complete object is
 * followed by extra bytes; -1 otherwise. proto_decode and bus.c call it. */
int proto_mp_check(const char *buf, size_t len);

/* The same check for the first of several objects one after the other (a
 * pub/sub payload holding a batch of envelopes): 0 with *used = its length
 * in bytes, or -1. */
int proto_mp_next(const char *buf, size_t len, size_t *used);

/* Copies the client frame (a msgpack map without "seq") into out with
 * "seq": seq added as its first entry: the per-member copy of a group
 * message. Returns 0, or -1 when frame is not a map. */
int proto_add_seq(const char *frame, size_t len, int64_t seq, msgpack_sbuffer *out);

/* Reads kind, from, to, cid (strings or bins, pointing into buf) and seq (a
 * positive integer) of a frame built by a script or the gateway; any output
 * may be NULL and is left as is when the field is absent. No validation
 * beyond the types: for frames Parley made itself. Returns 0 if buf starts
 * with a msgpack map, else -1. */
int proto_peek_fields(const char *buf, size_t len, proto_str *kind, proto_str *from, proto_str *to,
                      proto_str *cid, int64_t *seq);

/* 1 when buf[0..len) is exactly one msgpack map (proto_mp_check), else 0:
 * the test for stored frames spliced into an answer as they are. */
int proto_is_map(const char *buf, size_t len);

/* Validation helpers, shared with HTTP and the CLI. */
int proto_valid_user(const char *p, size_t len);  /* PROTO_USER_PATTERN */
int proto_valid_group(const char *p, size_t len); /* '#' + user rule */
int proto_valid_utf8(const char *p, size_t len);
int proto_valid_gwid(const char *p, size_t len); /* [A-Za-z0-9_.:-]{1,PROTO_GWID_MAX} */

/* Encoders: each packs one complete server frame (a map with kind). */
typedef struct proto_contact {
    const char *name;
    size_t len;
    int online;
    int64_t unread;
    int64_t mentions;  /* unread messages that mention the user ("mentions", omitted when 0) */
    int64_t read;      /* the user's read position in this conversation (0: none) */
    int64_t peer_read; /* 1:1: the other user's read position (0: none) */
    const char *last;  /* the conversation's newest stored text frame (a map), */
    size_t last_len;   /* spliced as is; len 0: none (encoded as nil) */
    int hidden;        /* not encoded: a block either way hides the presence (online 0) */
    /* groups only (role NULL: a person, none of these encoded): */
    const char *role;  /* the user's own role: "owner", "admin" or "member" */
    const char *owner; /* len 0: the group has no owner (yet): not encoded */
    size_t owner_len;
    const proto_str *admins; /* nadmins names (at most 32, sorted), not owned */
    size_t nadmins;
    int admins_more; /* the admins were cut: "admins_more": true */
} proto_contact;

void proto_pack_str(msgpack_packer *pk, const char *s, size_t len);
/* more: `users` pages follow (then "more": true is added; absent when false);
 * blocked: the users `user` blocks (nblocked names; "blocked" is absent when 0) */
void proto_enc_hello(msgpack_packer *pk, const char *user, int64_t seq, const char *epoch,
                     size_t epoch_len, const proto_contact *users, size_t n, int more,
                     const proto_str *blocked, size_t nblocked);
/* {kind:"users", users:[entries as in hello], more}: a page of hello's list */
void proto_enc_users(msgpack_packer *pk, const proto_contact *users, size_t n, int more);
/* history answer: msgs are stored text frames (msgpack maps), spliced as is */
void proto_enc_history(msgpack_packer *pk, const char *with, size_t with_len,
                       const char *const *msgs, const size_t *lens, size_t n, int more);
void proto_enc_error(msgpack_packer *pk, const char *code, const char *message,
                     const proto_str *cid /* NULL or len 0: omitted */);
void proto_enc_sync_end(msgpack_packer *pk, int recovered, int64_t seq);
/* kind "online" or "offline" */
void proto_enc_presence(msgpack_packer *pk, int online, const char *user, size_t len);
void proto_enc_typing(msgpack_packer *pk, const char *from, size_t flen, const char *to,
                      size_t tlen);

#endif
