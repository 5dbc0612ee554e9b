/* log.c - one-line logging to stderr.
 *
 * Each line is "<UTC time> <prog>[pid] <LEVEL> message", written with a single
 * fprintf so lines from one process (and its worker thread) never interleave.
 * Not meant for hot paths: callers guard expensive arguments with
 * log_enabled(). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "parley";
static log_level log_min = LOG_LVL_INFO;

static const char *const log_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_init(const char *prog, log_level level)
{
    if (prog) {
        const char *slash = strrchr(prog, '/');
        log_prog = slash ? slash + 1 : prog;
    }
    log_min = level;
}

int log_parse_level(const char *s, log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (!s) return -1;
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_enabled(log_level level)
{
    return level >= log_min;
}

void log_msg(log_level level, const char *fmt, ...)
{
    if (level < log_min) return;
    if ((unsigned)level > LOG_LVL_ERROR) level = LOG_LVL_ERROR;

    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);

    fprintf(stderr, "%s.%03ldZ %s[%ld] %s %s\n", ts, (long)(tv.tv_usec / 1000), log_prog,
            (long)getpid(), log_names[level], msg);
}
