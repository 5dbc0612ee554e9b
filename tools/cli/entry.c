/* entry.c - how the CLI prints one stored frame on one line: a history
 * message in its current state (edited, deleted, reactions, the message it
 * replies to, mentions) and an inbox entry, a full copy (a map with `kind`,
 * from before issue 14) or a reference (`{seq, id, w}` a text, `{seq, k, id,
 * w, ...}` an edit "e", a delete "d" or a reaction "r"; docs/protocol.md).
 * No Redis here: the callers read the entries, these functions only format
 * them (tests/unit/test_cli.c). Unknown fields are printed as key=value. */
#include "cli.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* a reply's quote is cut after this many bytes (on a UTF-8 boundary) */
#define CLI_QUOTE_BYTES 40

static void cli_fquoted(FILE *out, const char *p, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", out);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

void cli_ftime(FILE *out, long long ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(out, "%s.%03lldZ", buf, ms % 1000);
}

static void cli_fobj(FILE *out, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(out, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(out, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_STR:
        cli_fquoted(out, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        cli_fquoted(out, o->via.bin.ptr, o->via.bin.size);
        break;
    default:
        msgpack_object_print(out, *o);
    }
}

static int cli_is_str(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

static const msgpack_object *cli_get(const msgpack_object *m, const char *k)
{
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (cli_is_str(&m->via.map.ptr[i].key, k)) return &m->via.map.ptr[i].val;
    return NULL;
}

static int cli_uint(const msgpack_object *o, uint64_t *v)
{
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return 0;
    *v = o->via.u64;
    return 1;
}

/* a name (user, cid, conversation) as it is; anything else quoted or as msgpack */
static void cli_fname(FILE *out, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR)
        fprintf(out, "%.*s", (int)o->via.str.size, o->via.str.ptr);
    else
        cli_fobj(out, o);
}

/* a time in ms as ISO 8601, anything else as it is */
static void cli_fwhen(FILE *out, const msgpack_object *o)
{
    uint64_t ms;
    if (cli_uint(o, &ms))
        cli_ftime(out, (long long)ms);
    else
        cli_fobj(out, o);
}

/* ["a", "b"] as a,b */
static void cli_fnames(FILE *out, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        cli_fobj(out, o);
        return;
    }
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        if (i) fputc(',', out);
        cli_fname(out, &o->via.array.ptr[i]);
    }
}

/* {emoji: [users]} as {"👍": a,b; "🎉": c} */
static void cli_freactions(FILE *out, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        cli_fobj(out, o);
        return;
    }
    fputc('{', out);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        fputs(i ? "; " : "", out);
        cli_fobj(out, &o->via.map.ptr[i].key);
        fputs(": ", out);
        cli_fnames(out, &o->via.map.ptr[i].val);
    }
    fputc('}', out);
}

static const cli_msg *cli_page_find(const cli_page *page, uint64_t id)
{
    size_t lo = 0, hi = page ? page->n : 0;
    while (lo < hi) { /* the page is in id order (a history zset's) */
        size_t mid = lo + (hi - lo) / 2;
        if (page->msgs[mid].id == id) return &page->msgs[mid];
        if (page->msgs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int cli_page_add(cli_page *page, const char *buf, size_t len)
{
    msgpack_unpacked u;
    uint64_t id;
    int rc = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP || !cli_uint(cli_get(&u.data, "id"), &id))
        goto out; /* printed as undecodable; nothing to quote */
    if (page->n == page->cap) {
        size_t cap = page->cap ? page->cap * 2 : 32;
        cli_msg *m = realloc(page->msgs, cap * sizeof(*m));
        if (!m) {
            rc = -1;
            goto out;
        }
        page->msgs = m;
        page->cap = cap;
    }
    cli_msg *m = &page->msgs[page->n++];
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->deleted = cli_get(&u.data, "deleted") != NULL;
    const msgpack_object *d = cli_get(&u.data, "data");
    if (d && d->type == MSGPACK_OBJECT_STR) {
        size_t n = d->via.str.size;
        if (n > CLI_QUOTE_BYTES) { /* cut before a UTF-8 continuation byte */
            n = CLI_QUOTE_BYTES;
            while (n > 0 && ((unsigned char)d->via.str.ptr[n] & 0xC0) == 0x80)
                n--;
            m->cut = 1;
        }
        memcpy(m->quote, d->via.str.ptr, n);
        m->quote_len = n;
    }
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

void cli_page_free(cli_page *page)
{
    free(page->msgs);
    memset(page, 0, sizeof(*page));
}

/* reply_to=ID, with a quote of the message when it is on the page */
static void cli_freply(FILE *out, const msgpack_object *v, const cli_page *page)
{
    uint64_t id;
    fputs(" reply_to=", out);
    cli_fobj(out, v);
    const cli_msg *m = cli_uint(v, &id) ? cli_page_find(page, id) : NULL;
    if (!m) return;
    if (m->deleted) {
        fputs(" (a deleted message)", out);
        return;
    }
    fputs(" (", out);
    cli_fquoted(out, m->quote, m->quote_len);
    fputs(m->cut ? "...)" : ")", out);
}

/* every field of m not named in skip (NULL-terminated), as " key=value" */
static void cli_frest(FILE *out, const msgpack_object *m, const char *const *skip)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        int known = 0;
        for (size_t j = 0; !known && skip[j]; j++)
            known = cli_is_str(k, skip[j]);
        if (known) continue;
        fputc(' ', out);
        if (k->type == MSGPACK_OBJECT_STR)
            fprintf(out, "%.*s", (int)k->via.str.size, k->via.str.ptr);
        else
            cli_fobj(out, k);
        fputc('=', out);
        cli_fobj(out, &m->via.map.ptr[i].val);
    }
}

/* " name=VALUE" (the first field of a line without its space: *sep "" then
 * " ") printed by pr, when m has the field; returns it, or NULL */
static const msgpack_object *cli_ffield(FILE *out, const msgpack_object *m, const char *name,
                                        const char **sep,
                                        void (*pr)(FILE *, const msgpack_object *))
{
    const msgpack_object *v = cli_get(m, name);
    if (!v) return NULL;
    fprintf(out, "%s%s=", *sep, name);
    pr(out, v);
    *sep = " ";
    return v;
}

/* A full frame (a history message, an old inbox copy): kind when not a text,
 * then seq id from to sent cid reply_to mentions, the data or the deletion,
 * edited, reactions, then any other field. */
static void cli_fframe(FILE *out, const msgpack_object *m, const cli_page *page)
{
    const msgpack_object *v, *kind = cli_get(m, "kind");
    const char *sep = "";
    if (kind && !cli_is_str(kind, "text")) {
        fputs("kind=", out);
        cli_fobj(out, kind);
        sep = " ";
    }
    cli_ffield(out, m, "seq", &sep, cli_fobj);
    cli_ffield(out, m, "id", &sep, cli_fobj);
    cli_ffield(out, m, "from", &sep, cli_fname);
    cli_ffield(out, m, "to", &sep, cli_fname);
    cli_ffield(out, m, "sent", &sep, cli_fwhen);
    cli_ffield(out, m, "cid", &sep, cli_fname);
    if ((v = cli_get(m, "reply_to"))) cli_freply(out, v, page);
    if ((v = cli_get(m, "mentions"))) {
        fputs(" mentions=", out);
        cli_fnames(out, v);
    }
    const msgpack_object *deleted = cli_get(m, "deleted");
    if (deleted) {
        fputs(" [message deleted", out);
        if ((v = cli_get(m, "by"))) {
            fputs(" by ", out);
            cli_fname(out, v);
        }
        fputs(" at ", out);
        cli_fwhen(out, deleted);
        fputc(']', out);
    } else if ((v = cli_get(m, "data"))) {
        fputs(" data=", out);
        cli_fobj(out, v);
    }
    if ((v = cli_get(m, "edited"))) {
        fputs(" edited=", out);
        cli_fwhen(out, v);
    }
    if (!deleted && (v = cli_get(m, "reactions"))) {
        fputs(" reactions=", out);
        cli_freactions(out, v);
    }
    static const char *const shown[] = {"kind",   "seq",     "id",       "from",      "to",
                                        "sent",   "cid",     "reply_to", "mentions",  "data",
                                        "edited", "deleted", "by",       "reactions", NULL};
    cli_frest(out, m, shown);
}

/* An inbox reference: seq, what it is (text, edit, delete, react), the
 * message id and the conversation (with=, as the user names it), then the
 * event's fields. */
static void cli_fref(FILE *out, const msgpack_object *m)
{
    const msgpack_object *v, *k = cli_get(m, "k");
    const char *sep = "", *space = " ";
    if (cli_ffield(out, m, "seq", &sep, cli_fobj)) fputc(' ', out);
    if (!k)
        fputs("text", out);
    else if (cli_is_str(k, "e"))
        fputs("edit", out);
    else if (cli_is_str(k, "d"))
        fputs("delete", out);
    else if (cli_is_str(k, "r"))
        fputs("react", out);
    else {
        fputs("k=", out);
        cli_fobj(out, k);
    }
    cli_ffield(out, m, "id", &space, cli_fobj);
    if ((v = cli_get(m, "w"))) {
        fputs(" with=", out);
        cli_fname(out, v);
    }
    cli_ffield(out, m, "from", &space, cli_fname);
    cli_ffield(out, m, "by", &space, cli_fname);
    cli_ffield(out, m, "emoji", &space, cli_fobj);
    if ((v = cli_get(m, "on"))) {
        if (v->type == MSGPACK_OBJECT_BOOLEAN)
            fputs(v->via.boolean ? " on" : " off", out);
        else {
            fputs(" on=", out);
            cli_fobj(out, v);
        }
    }
    cli_ffield(out, m, "at", &space, cli_fwhen);
    static const char *const shown[] = {"seq", "k",     "id", "w",  "from",
                                        "by",  "emoji", "on", "at", NULL};
    cli_frest(out, m, shown); /* whatever else a reference carries */
}

/* what kind of entry m is (a map) */
static cli_entry_type cli_entry_kind(const msgpack_object *m)
{
    if (cli_get(m, "kind") || !cli_get(m, "w")) return CLI_ENTRY_FRAME;
    return cli_get(m, "k") ? CLI_ENTRY_EVENT : CLI_ENTRY_TEXT_REF;
}

cli_entry_type cli_entry_print(FILE *out, const char *buf, size_t len, const cli_page *page)
{
    msgpack_unpacked u;
    cli_entry_type t = CLI_ENTRY_BAD;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        fprintf(out, "(undecodable entry, %zu bytes)", len);
    } else if ((t = cli_entry_kind(&u.data)) == CLI_ENTRY_FRAME) {
        cli_fframe(out, &u.data, page);
    } else {
        cli_fref(out, &u.data);
    }
    msgpack_unpacked_destroy(&u);
    return t;
}

cli_entry_type cli_entry_ref(const char *buf, size_t len, cli_ref *ref)
{
    msgpack_unpacked u;
    cli_entry_type t = CLI_ENTRY_BAD;
    memset(ref, 0, sizeof(*ref));
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP && (t = cli_entry_kind(&u.data)) != CLI_ENTRY_FRAME) {
        const msgpack_object *w = cli_get(&u.data, "w");
        ref->ok = cli_uint(cli_get(&u.data, "id"), &ref->id) && w->type == MSGPACK_OBJECT_STR &&
                  w->via.str.size > 0 && w->via.str.size < sizeof(ref->with);
        if (ref->ok) memcpy(ref->with, w->via.str.ptr, w->via.str.size);
    }
    msgpack_unpacked_destroy(&u);
    return t;
}
