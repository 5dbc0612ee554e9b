/* config.c - command-line flags with environment overrides and --help.
 *
 * Parsing runs in three passes so precedence is simple to see:
 *   1. scan argv up to the first non-option, matching every flag to its
 *      option (nothing is stored yet, so --help shows the built-in defaults);
 *   2. apply the environment variables of the table;
 *   3. apply the flags in order (a flag given twice: the last one wins).
 * An empty environment variable counts as unset. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct config_arg {
    const config_opt *opt;
    const char *value; /* NULL for a bare boolean flag */
} config_arg;

static const config_opt *config_find(const config_opt *opts, int nopts, const char *name,
                                     size_t len)
{
    for (int i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
    }
    return NULL;
}

static int config_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Stores value into the option's destination; `from` names the source
 * ("--port" or "PARLEY_PORT") for the error line. */
static int config_set(const char *prog, const config_opt *o, const char *from, const char *value)
{
    switch (o->type) {
    case CONFIG_STR:
        *(const char **)o->dst = value;
        return 0;
    case CONFIG_BOOL: {
        int b = 1;
        if (value && config_bool(value, &b) < 0) {
            fprintf(stderr, "%s: %s: '%s' is not a boolean (use 1/0, true/false, yes/no)\n", prog,
                    from, value);
            return -1;
        }
        *(int *)o->dst = b;
        return 0;
    }
    case CONFIG_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (*value == '\0' || *end != '\0' || errno == ERANGE) {
            fprintf(stderr, "%s: %s: '%s' is not an integer\n", prog, from, value);
            return -1;
        }
        if (v < o->min || v > o->max) {
            fprintf(stderr, "%s: %s: %lld is out of range [%lld, %lld]\n", prog, from, v, o->min,
                    o->max);
            return -1;
        }
        *(long long *)o->dst = v;
        return 0;
    }
    }
    return -1;
}

void config_usage(const char *prog, const char *usage, const config_opt *opts, int nopts)
{
    if (usage && strncmp(usage, "usage", 5) == 0)
        printf("%s\n", usage);
    else
        printf("usage: %s %s\n", prog, usage ? usage : "[flags]");
    if (nopts > 0) printf("\nflags (each also read from the environment variable shown):\n");
    for (int i = 0; i < nopts; i++) {
        const config_opt *o = &opts[i];
        char flag[96];
        switch (o->type) {
        case CONFIG_STR:
            snprintf(flag, sizeof flag, "--%s VALUE", o->name);
            break;
        case CONFIG_INT:
            snprintf(flag, sizeof flag, "--%s N", o->name);
            break;
        case CONFIG_BOOL:
            snprintf(flag, sizeof flag, "--%s", o->name);
            break;
        }
        printf("  %-24s %s\n", flag, o->help ? o->help : "");
        char dflt[64];
        const char *d = dflt;
        switch (o->type) {
        case CONFIG_STR:
            d = *(const char **)o->dst ? *(const char **)o->dst : "(none)";
            break;
        case CONFIG_INT:
            snprintf(dflt, sizeof dflt, "%lld", *(long long *)o->dst);
            break;
        case CONFIG_BOOL:
            d = *(int *)o->dst ? "on" : "off";
            break;
        }
        printf("  %-24s env %s, default %s\n", "", o->env ? o->env : "(none)", d);
    }
    printf("  %-24s show this help\n", "-h, --help");
}

int config_parse(const char *prog, const char *usage, const config_opt *opts, int nopts, int argc,
                 char **argv, int *argi)
{
    config_arg *args = calloc((size_t)(argc > 0 ? argc : 1), sizeof *args);
    int nargs = 0, i = 1, rc = -1;
    if (!args) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return -1;
    }

    /* pass 1: match flags */
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') break; /* first non-option ("-" too) */
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            config_usage(prog, usage, opts, nopts);
            free(args);
            exit(0);
        }
        if (a[1] != '-') {
            fprintf(stderr, "%s: unknown flag '%s' (try --help)\n", prog, a);
            goto out;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const config_opt *o = config_find(opts, nopts, name, nlen);
        if (!o) {
            fprintf(stderr, "%s: unknown flag '--%.*s' (try --help)\n", prog, (int)nlen, name);
            goto out;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && o->type != CONFIG_BOOL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --%s needs a value\n", prog, o->name);
                goto out;
            }
            value = argv[++i];
        }
        args[nargs].opt = o;
        args[nargs].value = value;
        nargs++;
    }
    if (argi) *argi = i < argc ? i : argc;

    /* pass 2: environment */
    for (int k = 0; k < nopts; k++) {
        const char *v = opts[k].env ? getenv(opts[k].env) : NULL;
        if (!v || !*v) continue;
        if (config_set(prog, &opts[k], opts[k].env, v) < 0) goto out;
    }

    /* pass 3: flags */
    for (int k = 0; k < nargs; k++) {
        char from[80];
        snprintf(from, sizeof from, "--%s", args[k].opt->name);
        if (config_set(prog, args[k].opt, from, args[k].value) < 0) goto out;
    }
    rc = 0;
out:
    free(args);
    return rc;
}
