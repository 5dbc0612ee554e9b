/* scripts_groups.c - the typed calls of group.lua, read.lua, typing.lua and
 * block.lua (scripts.h): the KEYS and ARGV of each chain's first step, in the
 * order its common/lua/NAME.lua header gives, with every key name from
 * keys.h. Each first step's KEYS share one slot (issue 15); the keys its later
 * steps touch (other users', the conversation's, global ones) travel as ARGV,
 * formatted here or as formats the steps fill in. */
#include "scripts_int.h"

#include "keys.h"

#include <inttypes.h>

int scripts_typing(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *from,
                   const char *to, const char *frame, size_t frame_len, int64_t interval_ms,
                   int64_t big_interval_ms)
{
    int group = to[0] == '#';
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_TYPING);
    scripts_cmd_key(&c, group ? KEY_GROUP_MEMBERS : KEY_ACCOUNT, to);
    scripts_cmd_key(&c, group ? KEY_GROUP_META : KEY_SESSIONS, to);
    /* a group's meta again (not read): the hidden set is a user's */
    scripts_cmd_key(&c, group ? KEY_GROUP_META : KEY_HIDDEN, to);
    scripts_cmd_str(&c, CHAN_GW_PREFIX);
    scripts_cmd_str(&c, to);
    scripts_cmd_arg(&c, frame, frame_len);
    scripts_cmd_str(&c, group ? "1" : "0");
    scripts_cmd_str(&c, from);
    scripts_cmd_str(&c, KEY_SESSIONS);
    scripts_cmd_fmt(&c, "%" PRId64, interval_ms);
    scripts_cmd_fmt(&c, "%" PRId64, big_interval_ms);
    scripts_cmd_fmt(&c, KEY_TYPING, from, to);
    scripts_cmd_str(&c, KEY_GATEWAYS);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_read(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *reader,
                 const char *sessid, const char *with, int64_t upto)
{
    char conv[KEYS_MAX];
    int group = with[0] == '#';
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_READ);
    if (keys_conv(conv, sizeof conv, reader, with) < 0) {
        conv[0] = '\0';
        c.failed = 1;
    }
    scripts_cmd_key(&c, group ? KEY_GROUP_MEMBERS : KEY_ACCOUNT, with);
    scripts_cmd_key(&c, group ? KEY_GROUP_META : KEY_ACCOUNT, with);
    scripts_cmd_str(&c, reader);
    scripts_cmd_str(&c, with);
    scripts_cmd_str(&c, group ? "1" : "0");
    scripts_cmd_fmt(&c, "%" PRId64, upto);
    scripts_cmd_str(&c, CHAN_GW_PREFIX);
    scripts_cmd_str(&c, KEY_SESSIONS);
    scripts_cmd_str(&c, sessid);
    scripts_cmd_fmt(&c, KEY_HISTORY, conv);
    scripts_cmd_fmt(&c, KEY_READ, reader);
    scripts_cmd_fmt(&c, KEY_UNREAD, reader);
    scripts_cmd_fmt(&c, KEY_MENTIONS, reader);
    scripts_cmd_fmt(&c, KEY_RECOUNT, reader);
    scripts_cmd_str(&c, KEY_GATEWAYS);
    scripts_cmd_fmt(&c, KEY_META, reader);
    scripts_cmd_fmt(&c, KEY_INBOX, reader);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_group(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, proto_group_op op,
                  const char *name, const char *by, int open, int64_t now_ms, int64_t group_max,
                  int64_t groups_created, int64_t op_interval_ms, const char *const *members,
                  const size_t *member_lens, size_t nmembers)
{
    static const char *const ops[] = {
        [PROTO_OP_CREATE] = "create", [PROTO_OP_JOIN] = "join",     [PROTO_OP_LEAVE] = "leave",
        [PROTO_OP_ADD] = "add",       [PROTO_OP_REMOVE] = "remove", [PROTO_OP_PROMOTE] = "promote",
        [PROTO_OP_DEMOTE] = "demote",
    };
    const char *opname = (unsigned)op < sizeof ops / sizeof *ops && ops[op] ? ops[op] : "";
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_GROUP);
    scripts_cmd_key(&c, KEY_GROUP_META, name);
    scripts_cmd_key(&c, KEY_GROUP_MEMBERS, name);
    scripts_cmd_key(&c, KEY_GROUP_JOINED, name);
    scripts_cmd_key(&c, KEY_GROUP_ADMINS, name);
    /* the context every step carries (common/lua/lib/gctx.lua) */
    scripts_cmd_str(&c, opname);
    scripts_cmd_str(&c, name);
    scripts_cmd_str(&c, by);
    scripts_cmd_str(&c, open ? "1" : "0");
    scripts_cmd_fmt(&c, "%" PRId64, now_ms);
    scripts_cmd_str(&c, CHAN_GW_PREFIX);
    scripts_cmd_str(&c, KEY_SESSIONS);
    scripts_cmd_str(&c, KEY_GROUPS_OF);
    scripts_cmd_fmt(&c, "%" PRId64, group_max);
    scripts_cmd_str(&c, KEY_UNREAD);
    scripts_cmd_str(&c, KEY_READ);
    scripts_cmd_fmt(&c, "%" PRId64, groups_created);
    scripts_cmd_str(&c, KEY_META);
    scripts_cmd_fmt(&c, "%" PRId64, op_interval_ms);
    scripts_cmd_str(&c, KEY_BLOCKS);
    scripts_cmd_str(&c, KEY_MENTIONS);
    scripts_cmd_str(&c, KEY_RECOUNT);
    scripts_cmd_str(&c, KEY_GROUP_OP);
    scripts_cmd_str(&c, KEY_USERS);
    scripts_cmd_fmt(&c, KEY_HISTORY, name);
    scripts_cmd_fmt(&c, KEY_HISTORY_BYTES, name);
    scripts_cmd_str(&c, KEY_GROUPS);
    scripts_cmd_str(&c, KEY_GATEWAYS);
    scripts_cmd_str(&c, KEY_INBOX);
    if (op != PROTO_OP_JOIN && op != PROTO_OP_LEAVE)
        for (size_t i = 0; i < nmembers; i++)
            scripts_cmd_arg(&c, members[i], member_lens[i]);
    if (op == PROTO_OP_REMOVE) return scripts_cmd_run_durable(&c, ac, cb, priv);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_block(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *by,
                  const char *user, int on, int64_t max_blocks)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_BLOCK);
    scripts_cmd_key(&c, KEY_ACCOUNT, user);
    scripts_cmd_str(&c, by);
    scripts_cmd_str(&c, user);
    scripts_cmd_str(&c, on ? "1" : "0");
    scripts_cmd_fmt(&c, "%" PRId64, max_blocks);
    scripts_cmd_str(&c, CHAN_GW_PREFIX);
    scripts_cmd_fmt(&c, KEY_BLOCKS, by);
    scripts_cmd_fmt(&c, KEY_HIDDEN, by);
    scripts_cmd_fmt(&c, KEY_SESSIONS, by);
    scripts_cmd_fmt(&c, KEY_HIDDEN, user);
    scripts_cmd_fmt(&c, KEY_BLOCKS, user);
    scripts_cmd_fmt(&c, KEY_SESSIONS, user);
    return scripts_cmd_run_durable(&c, ac, cb, priv);
}
