/* log.h - one-line logging to stderr: "<time> <prog>[pid] <LEVEL> message".
 *
 * The level is set once at start (--log-level / PARLEY_LOG_LEVEL). A bad frame
 * from a client is logged at INFO once; errors that stop a process at ERROR. */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

typedef enum { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR } log_level;

void log_init(const char *prog, log_level level);
/* "debug", "info", "warn", "error" -> 0 and *out; else -1. */
int log_parse_level(const char *s, log_level *out);
int log_enabled(log_level level);
void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif
