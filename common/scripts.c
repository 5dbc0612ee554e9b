/* scripts.c - one typed call per script (scripts.h): the one place each
 * script's KEYS and ARGV are built, in the order its common/lua/NAME.lua
 * header gives, with every key name from keys.h. send, which carries a batch,
 * is in scripts_send.c; group, read, typing and block in scripts_groups.c;
 * the builder these use in scripts_cmd.c; the runner in scripts_run.c. */
#include "scripts_int.h"

#include "keys.h"

#include <inttypes.h>

int scripts_sync(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                 int64_t after, const char *epoch, int64_t max_entries, int64_t max_bytes,
                 int stand_ins)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_SYNC);
    scripts_cmd_key(&c, KEY_META, user);
    scripts_cmd_key(&c, KEY_INBOX, user);
    scripts_cmd_fmt(&c, "%" PRId64, after);
    scripts_cmd_str(&c, epoch);
    scripts_cmd_fmt(&c, "%" PRId64, max_entries);
    scripts_cmd_fmt(&c, "%" PRId64, max_bytes);
    scripts_cmd_str(&c, user);
    scripts_cmd_str(&c, KEY_HISTORY);
    scripts_cmd_str(&c, stand_ins ? "1" : "0");
    scripts_cmd_str(&c, KEY_GROUP_MEMBERS);
    return scripts_cmd_run(&c, ac, cb, priv);
}

int scripts_history(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                    const char *with, int64_t before, int64_t limit, int64_t max_bytes)
{
    /* history.lua checks access on the other user's or the group's tag, then
     * history_page.lua reads the conversation's history (its key an ARGV) */
    char conv[KEYS_MAX];
    int group = with[0] == '#';
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_HISTORY);
    if (keys_conv(conv, sizeof conv, user, with) < 0) {
        conv[0] = '\0';
        c.failed = 1;
    }
    scripts_cmd_key(&c, group ? KEY_GROUP_MEMBERS : KEY_ACCOUNT, with);
    scripts_cmd_key(&c, group ? KEY_GROUP_META : KEY_ACCOUNT, with);
    scripts_cmd_str(&c, user);
    scripts_cmd_str(&c, group ? "1" : "0");
    scripts_cmd_fmt(&c, KEY_HISTORY, conv);
    scripts_cmd_fmt(&c, "%" PRId64, before);
    scripts_cmd_fmt(&c, "%" PRId64, limit);
    scripts_cmd_fmt(&c, "%" PRId64, max_bytes);
    return scripts_cmd_run(&c, ac, cb, priv);
}

/* register's KEYS and ARGV, for the asynchronous, synchronous and pipelined
 * calls alike. */
static void scripts_register_cmd(scripts_cmd *c, const char *name, const char *hash,
                                 int64_t created_ms)
{
    scripts_cmd_init(c, SCRIPT_REGISTER);
    scripts_cmd_key(c, KEY_ACCOUNT, name);
    scripts_cmd_str(c, name);
    scripts_cmd_str(c, hash);
    scripts_cmd_fmt(c, "%" PRId64, created_ms);
    scripts_cmd_str(c, KEY_USERS);
    scripts_cmd_str(c, CHAN_USERS);
}

int scripts_register(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *name,
                     const char *hash, int64_t created_ms)
{
    scripts_cmd c;
    scripts_register_cmd(&c, name, hash, created_ms);
    return scripts_cmd_run(&c, ac, cb, priv);
}

redisReply *scripts_inbox_refs_sync(redisContext *c, const char *user, int64_t first, int64_t n)
{
    scripts_cmd cmd;
    scripts_cmd_init(&cmd, SCRIPT_INBOX_REFS);
    scripts_cmd_key(&cmd, KEY_INBOX, user);
    scripts_cmd_key(&cmd, KEY_META, user);
    scripts_cmd_str(&cmd, user);
    scripts_cmd_fmt(&cmd, "%" PRId64, first);
    scripts_cmd_fmt(&cmd, "%" PRId64, n);
    return scripts_cmd_run_sync(&cmd, c);
}

redisReply *scripts_register_sync(redisContext *rc, const char *name, const char *hash,
                                  int64_t created_ms)
{
    scripts_cmd c;
    scripts_register_cmd(&c, name, hash, created_ms);
    return scripts_cmd_run_sync(&c, rc);
}

int scripts_register_append(redisContext *rc, const char *name, const char *hash,
                            int64_t created_ms)
{
    scripts_cmd c;
    scripts_register_cmd(&c, name, hash, created_ms);
    return scripts_cmd_append(&c, rc);
}

int scripts_contacts(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *user,
                     int64_t everyone_limit, const char *cursor, int64_t page,
                     int64_t preview_bytes)
{
    /* the first step runs on parley:users; the user's keys go as ARGV to the
     * steps on his tag (contacts.lua) */
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_CONTACTS);
    scripts_cmd_key(&c, KEY_USERS);
    scripts_cmd_str(&c, user);
    scripts_cmd_fmt(&c, "%" PRId64, everyone_limit);
    scripts_cmd_str(&c, KEY_GROUP_MEMBERS);
    scripts_cmd_str(&c, KEY_READ);
    scripts_cmd_str(&c, KEY_HISTORY);
    scripts_cmd_str(&c, cursor);
    scripts_cmd_fmt(&c, "%" PRId64, page);
    scripts_cmd_fmt(&c, "%" PRId64, preview_bytes);
    scripts_cmd_str(&c, KEY_GROUP_META);
    scripts_cmd_str(&c, KEY_GROUP_ADMINS);
    scripts_cmd_str(&c, KEY_ONLINE);
    scripts_cmd_fmt(&c, KEY_CONTACTS, user);
    scripts_cmd_fmt(&c, KEY_GROUPS_OF, user);
    scripts_cmd_fmt(&c, KEY_UNREAD, user);
    scripts_cmd_fmt(&c, KEY_READ, user);
    scripts_cmd_fmt(&c, KEY_HIDDEN, user);
    scripts_cmd_fmt(&c, KEY_BLOCKS, user);
    scripts_cmd_fmt(&c, KEY_MENTIONS, user);
    return scripts_cmd_run(&c, ac, cb, priv);
}
