/* config.h - command-line flags with environment overrides and --help.
 *
 * A program declares a table of config_opt, sets each destination to its
 * default, then calls config_parse(). Precedence: flag > environment > default.
 * --help (or -h) prints usage with every flag, its variable and default, and
 * exits 0. A bad value prints one line to stderr and config_parse returns -1
 * (the caller exits 2). */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

typedef enum {
    CONFIG_STR,  /* dst: const char ** */
    CONFIG_INT,  /* dst: long long *, checked against [min, max] */
    CONFIG_BOOL, /* dst: int *; "--flag" sets 1; env accepts 1/0/true/false/yes/no */
} config_type;

typedef struct config_opt {
    const char *name; /* "redis-url" for --redis-url (also --redis-url=VALUE) */
    const char *env;  /* "PARLEY_REDIS_URL", or NULL */
    config_type type;
    void *dst;
    long long min, max; /* CONFIG_INT only */
    const char *help;
} config_opt;

/* Parses environment then argv[1..]. Stops at the first argument that is not
 * an option (or after "--") and stores its index in *argi (argc if none), so a
 * CLI can read a sub-command. Returns 0, or -1 after printing the error. */
int config_parse(const char *prog, const char *usage, const config_opt *opts, int nopts, int argc,
                 char **argv, int *argi);

/* Prints the usage text (as for --help) to stdout. */
void config_usage(const char *prog, const char *usage, const config_opt *opts, int nopts);

#endif
