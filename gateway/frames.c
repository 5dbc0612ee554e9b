/* frames.c - decoding, the rate limit and dispatch of client frames (frames.h). */
#include "frames.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "frame_handlers.h"
#include "log.h"
#include "metrics.h"
#include "walltime.h"

static struct {
    frame_config cfg;
    char gwid[PROTO_GWID_MAX + 1];
} fr;

void frame_init(const frame_config *cfg)
{
    fr.cfg = *cfg;
    snprintf(fr.gwid, sizeof fr.gwid, "%s", cfg->gwid);
    fr.cfg.gwid = fr.gwid;
}

const frame_config *frame_cfg(void)
{
    return &fr.cfg;
}

static void frame_bad(gw_session *s, const char *code, const char *message)
{
    metrics_inc(METRIC_BAD_FRAMES);
    if (!s->logged_bad) {
        s->logged_bad = 1;
        log_info("conn %" PRIu64 " (%s): bad frame: %s: %s", s->conn, s->user, code, message);
    }
}

void frame_refused(gw_session *s, const char *code, const char *message)
{
    frame_bad(s, code, message);
}

/* The token bucket: --rate per second, --burst at most. */
static int frame_take_token(gw_session *s)
{
    uint64_t now = walltime_ms();
    if (!s->bucket_ms) { /* the first frame: a full bucket */
        s->tokens = (double)fr.cfg.burst;
        s->bucket_ms = now;
    }
    s->tokens += (double)(now - s->bucket_ms) * (double)fr.cfg.rate / 1000.0;
    s->bucket_ms = now;
    if (s->tokens > (double)fr.cfg.burst) s->tokens = (double)fr.cfg.burst;
    if (s->tokens < 1.0) return -1;
    s->tokens -= 1.0;
    return 0;
}

int frame_spend(gw_session *s, double tokens)
{
    if (s->tokens < tokens) return -1;
    s->tokens -= tokens;
    return 0;
}

void frame_unavailable(gw_session *s, const char *message)
{
    metrics_inc(METRIC_UNAVAILABLE);
    sess_send_error(s, "unavailable", message, NULL);
}

int frame_refused_reply(gw_session *s, const redisReply *rep, const char *what)
{
    char msg[96];
    if (!rep || rep->type != REDIS_REPLY_STRING) return 0;
    if (rep->len == 9 && !memcmp(rep->str, "forbidden", 9)) {
        snprintf(msg, sizeof msg, "%s: not a member", what);
        sess_send_error(s, "forbidden", msg, NULL);
    } else {
        snprintf(msg, sizeof msg, "%s: no such user or group", what);
        sess_send_error(s, "no_such_user", msg, NULL);
    }
    return 1;
}

void frame_receive(gw_session *s, const char *buf, size_t len)
{
    msgpack_unpacked u;
    proto_frame f;
    proto_error err;
    metrics_inc(METRIC_FRAMES_IN);
    msgpack_unpacked_init(&u);
    if (proto_decode(buf, len, &u, fr.cfg.dev_auth ? PROTO_ALLOW_NO_CID : 0, &f, &err) < 0) {
        frame_bad(s, err.code, err.message);
        sess_send_error(s, err.code, err.message, err.cid.len ? &err.cid : NULL);
        if (err.close) {
            s->close_after_flush = 1;
            sess_close(s, err.close, "bad frame");
        }
        msgpack_unpacked_destroy(&u);
        return;
    }
    if (frame_take_token(s) < 0) {
        metrics_inc(METRIC_RATE_LIMITED);
        sess_send_error(s, "rate_limited", "too many frames: slow down", f.cid.len ? &f.cid : NULL);
        msgpack_unpacked_destroy(&u);
        return;
    }
    switch (f.kind) {
    case PROTO_TEXT:
        frame_text(s, &f);
        break;
    case PROTO_SYNC:
        frame_sync(s, &f);
        break;
    case PROTO_TYPING:
        frame_typing(s, &f);
        break;
    case PROTO_READ:
        frame_read(s, &f);
        break;
    case PROTO_HISTORY:
        frame_history(s, &f);
        break;
    case PROTO_GROUP:
        frame_group(s, &f);
        break;
    case PROTO_BLOCK:
        frame_block(s, &f);
        break;
    case PROTO_EDIT:
    case PROTO_DELETE:
    case PROTO_REACT:
        frame_change(s, &f);
        break;
    default:
        sess_send_error(s, "unknown_kind", "unknown kind", NULL);
        break;
    }
    msgpack_unpacked_destroy(&u);
}
