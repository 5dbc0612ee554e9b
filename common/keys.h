/* keys.h - every Redis key and channel name Parley uses, in one place.
 *
 * Each name is a printf format; build one with keys_fmt(). The meaning of every
 * key is documented in docs/internals.md and in the README's key table. Keys of
 * one user share the Redis Cluster hash tag {u:NAME}; a conversation's history
 * has the tag {c:KEY}. */
#ifndef PARLEY_KEYS_H
#define PARLEY_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_PREFIX "parley:"

/* global */
#define KEY_USERS    KEYS_PREFIX "users"    /* zset of user names */
#define KEY_IDS      KEYS_PREFIX "ids"      /* message id counter */
#define KEY_ONLINE   KEYS_PREFIX "online"   /* set of online users */
#define KEY_GATEWAYS KEYS_PREFIX "gateways" /* set of gateway ids */
#define KEY_ROUTERS  KEYS_PREFIX "routers"  /* zset router id -> beat ms */
#define KEY_SLOT     KEYS_PREFIX "slot:%u"  /* owner lease of a slot */
/* hash user -> the session limit the user is at (--user-sessions; session_open.lua) */
#define KEY_SESSIONS_FULL KEYS_PREFIX "sessions:full"
/* hash user -> the version of the user's session set last applied to KEY_ONLINE
 * / KEY_SESSIONS_FULL (online.lua, sessions_full.lua); the hash tag puts each in
 * the slot of the key it versions */
#define KEY_ONLINE_V        KEYS_PREFIX "{" KEY_ONLINE "}:v"
#define KEY_SESSIONS_FULL_V KEYS_PREFIX "{" KEY_SESSIONS_FULL "}:v"
/* zset "USER SID" -> expiry (Unix s): revoked signed-in sessions whose tokens
 * have not expired (common/lua/lib/revoke.lua; gateway/revoke.c loads it) */
#define KEY_REVOKED KEYS_PREFIX "revoked"
/* failed logins, password changes and registrations of one client address
 * (throttle.lua; expires one window after the first) */
#define KEY_THROTTLE_ADDR KEYS_PREFIX "throttle:addr:%s"

/* per user (hash tag {u:NAME}) */
#define KEY_ACCOUNT  KEYS_PREFIX "{u:%s}:account"
#define KEY_META     KEYS_PREFIX "{u:%s}:meta"
#define KEY_INBOX    KEYS_PREFIX "{u:%s}:inbox"
#define KEY_SESSIONS KEYS_PREFIX "{u:%s}:sessions"
#define KEY_CONTACTS KEYS_PREFIX "{u:%s}:contacts"
#define KEY_CIDS     KEYS_PREFIX "{u:%s}:cids"   /* hash cid -> [id, seq, sent]; + ":old" */
#define KEY_UNREAD   KEYS_PREFIX "{u:%s}:unread" /* hash conversation -> count */
/* hash conversation -> unread messages that mention the user (send.lua, read.lua) */
#define KEY_MENTIONS KEYS_PREFIX "{u:%s}:mentions"
/* hash #group -> "NEWEST DSEQ": what the user's last read recount of the group saw (its newest
 * message id, its count of deletes): a queued fan-out step does not count again what it counted
 * (read.lua writes, fanout.lua reads) */
#define KEY_RECOUNT KEYS_PREFIX "{u:%s}:recount"
#define KEY_READ    KEYS_PREFIX "{u:%s}:read" /* hash conversation -> id read */
/* hash conversation -> "EVENT:SEQ ...": the newest messages and changes (by event id, at most
 * 64) a send step wrote to the user's inbox for that conversation, with their seqs
 * (send_step.lua: a re-run of the step writes nothing twice; cluster mode) */
#define KEY_GOT       KEYS_PREFIX "{u:%s}:got"
#define KEY_GROUPS_OF KEYS_PREFIX "{u:%s}:groups" /* set of #names */
#define KEY_BUDGET    KEYS_PREFIX "{u:%s}:budget" /* hash t, m, f, b: send token buckets */
/* hash session id -> cjson {c, l, e, a}: the user's signed-in sessions, the
 * ones tokens name (common/lua/lib/login_get.lua) */
#define KEY_LOGINS KEYS_PREFIX "{u:%s}:logins"
/* zset session id -> creation ms: the signed-in sessions the gateways made for
 * the user within the last --user-login-window (login_create.lua; expires one
 * window after the newest) */
#define KEY_LOGIN_TIMES KEYS_PREFIX "{u:%s}:login-times"
/* blocks (block.lua): the users this user blocks (at most --max-blocks), and
 * everyone in a block with this user either way (who blocks him or whom he
 * blocks: presence hidden, 1:1 texts and typing refused) */
#define KEY_BLOCKS KEYS_PREFIX "{u:%s}:blocks"
#define KEY_HIDDEN KEYS_PREFIX "{u:%s}:hidden"
/* throttles (SET NX PX; exist for one window): the user's last typing notice
 * to %s (a user or #group; typing.lua), his last change of a big group
 * (group.lua) */
#define KEY_TYPING   KEYS_PREFIX "{u:%s}:typing:%s"
#define KEY_GROUP_OP KEYS_PREFIX "{u:%s}:groupop"
/* attempt budgets (throttle.lua; count failed logins / password changes, and
 * attempts still running; expire one window after the first): the account's
 * from every address, and from one client address (%s: clientaddr.h's text) */
#define KEY_FAILS      KEYS_PREFIX "{u:%s}:fails"
#define KEY_FAILS_ADDR KEYS_PREFIX "{u:%s}:fails:%s"

/* per group (hash tag {g:#NAME}) */
/* meta: hash open, created, by (creator), gen, owner, order (the last join or
 * promotion number given) */
#define KEY_GROUP_META    KEYS_PREFIX "{g:%s}:meta"
#define KEY_GROUP_MEMBERS KEYS_PREFIX "{g:%s}:members" /* set of user names */
#define KEY_GROUP_JOINED  KEYS_PREFIX "{g:%s}:joined"  /* zset member -> join number */
#define KEY_GROUP_ADMINS  KEYS_PREFIX "{g:%s}:admins"  /* zset admin -> promotion number */
#define KEY_GROUPS        KEYS_PREFIX "groups"         /* zset of open #names */
/* queued fan-outs (common/lua/fanout.lua): the group's queue of message ids,
 * a job's hash (%s #name, %s id) and its member snapshot (a set), and the
 * groups that have a queue */
#define KEY_GROUP_FANOUT KEYS_PREFIX "{g:%s}:fanout"
#define KEY_FANOUT_JOB   KEYS_PREFIX "{g:%s}:job:%s"
#define KEY_FANOUT_TODO  KEYS_PREFIX "{g:%s}:todo:%s"
#define KEY_FANOUTS      KEYS_PREFIX "fanouts"

/* per conversation (hash tag {c:KEY}) */
#define KEY_HISTORY       KEYS_PREFIX "{c:%s}:history" /* zset id -> text frame */
#define KEY_HISTORY_BYTES KEYS_PREFIX "{c:%s}:bytes"   /* sum of the history's frame sizes */
/* hash "SENDER CID" -> msgpack [id, event id, sent, ...]: what send_step.lua's conversation step
 * stored for a cid (a retry after a stop stores nothing twice; cluster mode); + ":old" as
 * KEY_CIDS */
#define KEY_CONV_CIDS KEYS_PREFIX "{c:%s}:cids"
/* hash event id -> msgpack of the event as its member steps write it: the conversation's events
 * (texts, edits, deletes, reactions) stored but not yet written to every participant's inbox
 * (send_step.lua's open messages: a later message's member steps write them first, so a
 * conversation's events reach each inbox in id order even after a stop; cluster mode). At most
 * 16 entries, TTL 2 x --dedupe-ttl */
#define KEY_CONV_OPEN KEYS_PREFIX "{c:%s}:open"
/* per cluster slot (cluster mode): the counter of the message ids of the conversations in the
 * slot; %s is cluster_slot_tag(slot) (common/cluster.h), so it shares their slot. An id is
 * counter x 16384 + slot */
#define KEY_SLOT_IDS KEYS_PREFIX "{%s}:ids"

/* per gateway */
#define KEY_GW_ALIVE    KEYS_PREFIX "gw:%s:alive"
#define KEY_GW_SESSIONS KEYS_PREFIX "gw:%s:sessions"

/* channels */
#define CHAN_ROUTER          KEYS_PREFIX "rt:%u" /* gateway -> router, per slot */
#define CHAN_GW_PREFIX       KEYS_PREFIX "gw:"   /* + gateway id: deliveries */
#define CHAN_GW              CHAN_GW_PREFIX "%s"
#define CHAN_PRESENCE_PREFIX KEYS_PREFIX "presence:"
#define CHAN_PRESENCE        CHAN_PRESENCE_PREFIX "%s" /* + user name */
#define CHAN_USERS           KEYS_PREFIX "users:new"   /* "NAME COUNT": a user registered */
/* "full NAME LIMIT" / "free NAME": a user reached / left its session limit */
#define CHAN_SESSION_LIMIT KEYS_PREFIX "sessions:limit"
/* "USER SID EXP": a signed-in session was revoked (its token expires at EXP) */
#define CHAN_REVOKED KEYS_PREFIX "sessions:revoked"

/* Number of routing slots: a constant of the internal protocol. */
#define PARLEY_SLOTS 64u

/* Longest key this module can produce (user 32, cid 64, conversation 66). */
#define KEYS_MAX 192

/* printf into buf (size KEYS_MAX is always enough for valid names); returns
 * buf. */
char *keys_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Conversation key of a 1:1 pair: "a|b" with a < b bytewise. Returns length,
 * or -1 if it does not fit. */
int keys_conv_pair(char *buf, size_t size, const char *a, const char *b);

/* Conversation key of what `self` talks to: a #group's is its name, a user's
 * the pair (keys_conv_pair). Returns length, or -1 if it does not fit. */
int keys_conv(char *buf, size_t size, const char *self, const char *with);

/* A session is named twice: "gwid#conn" in its user's set (KEY_SESSIONS) and
 * "user#conn" in its gateway's (KEY_GW_SESSIONS). Writes both for the
 * connection conn of user on gateway gwid (each truncated to its size). */
void keys_session_ids(char *sessid, size_t ssize, char *member, size_t msize, const char *gwid,
                      const char *user, uint64_t conn);

/* The reverse, from a member m[0..len) of gateway gwid's KEY_GW_SESSIONS:
 * its user (NUL-terminated into user, size >= 33) and its id in the user's
 * set (into sessid, truncated to ssize). 0, or -1 when m is not "user#conn"
 * with a valid user name. */
int keys_session_of_member(const char *m, size_t len, const char *gwid, char *user, char *sessid,
                           size_t ssize);

/* Routing slot of a conversation key (FNV-1a 32 bit, mod PARLEY_SLOTS). */
unsigned keys_slot(const char *conv, size_t len);

#endif
