/* test_config.c - flags, environment overrides, --help, errors, and the
 * sub-command index. */
#include "config.h"
#include "unit.h"

#include <sys/wait.h>
#include <unistd.h>

static const char *url;
static long long port;
static int dev;

static config_opt opts[] = {
    {"redis-url", "PT_REDIS_URL", CONFIG_STR, &url, 0, 0, "Redis URL"},
    {"port", "PT_PORT", CONFIG_INT, &port, 1, 65535, "HTTP port"},
    {"dev-auth", "PT_DEV", CONFIG_BOOL, &dev, 0, 0, "development auth"},
};
#define NOPTS ((int)(sizeof opts / sizeof opts[0]))

static void defaults(void)
{
    url = "redis://127.0.0.1:6379";
    port = 8080;
    dev = 0;
    unsetenv("PT_REDIS_URL");
    unsetenv("PT_PORT");
    unsetenv("PT_DEV");
}

/* Parses a NULL-terminated list after "prog"; stderr goes to /dev/null so
 * error lines do not clutter the test output. */
static int parse(int *argi, const char **args)
{
    char *argv[32] = {"prog"};
    int argc = 1;
    while (args[argc - 1]) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    fflush(stderr);
    int saved = dup(2);
    FILE *null = fopen("/dev/null", "w");
    dup2(fileno(null), 2);
    int rc = config_parse("prog", "[flags] COMMAND", opts, NOPTS, argc, argv, argi);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(null);
    return rc;
}

#define ARGS(...) ((const char *[]){__VA_ARGS__, NULL})

/* Runs --help in a child; returns its exit status and captures stdout. */
static int help(char *out, size_t size, const char *flag)
{
    int fds[2];
    if (pipe(fds) < 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        char *argv[] = {"prog", (char *)flag, NULL};
        int argi;
        config_parse("prog", "[flags] COMMAND", opts, NOPTS, 2, argv, &argi);
        _exit(99);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fds[0], out + n, size - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void no_args_keep_defaults(void **state)
{
    int argi = -1;
    defaults();
    CHECK(parse(&argi, ARGS(NULL)) == 0 && argi == 1, "no args: argi %d", argi);
    CHECK(strcmp(url, "redis://127.0.0.1:6379") == 0 && port == 8080 && dev == 0, "defaults");
}

static void flag_value_forms(void **state)
{
    int argi = -1;
    defaults();
    CHECK(parse(&argi, ARGS("--port", "9000", "--redis-url=redis://r:1")) == 0 && port == 9000 &&
              strcmp(url, "redis://r:1") == 0 && argi == 4,
          "--x y and --x=y");
    defaults();
    CHECK(parse(&argi, ARGS("--port=")) == -1, "--port= empty");
    defaults();
    CHECK(parse(&argi, ARGS("--redis-url=")) == 0 && strcmp(url, "") == 0, "empty string value");
    defaults();
    CHECK(parse(&argi, ARGS("--redis-url=a=b")) == 0 && strcmp(url, "a=b") == 0, "= in value");
}

/* precedence: flag > env > default */
static void env_between_flag_and_default(void **state)
{
    int argi = -1;
    defaults();
    setenv("PT_PORT", "7000", 1);
    setenv("PT_REDIS_URL", "redis://env:1", 1);
    CHECK(parse(&argi, ARGS(NULL)) == 0 && port == 7000 && strcmp(url, "redis://env:1") == 0,
          "env over default");
    CHECK(parse(&argi, ARGS("--port", "7001")) == 0 && port == 7001 &&
              strcmp(url, "redis://env:1") == 0,
          "flag over env");
    defaults();
    setenv("PT_PORT", "", 1);
    CHECK(parse(&argi, ARGS(NULL)) == 0 && port == 8080, "empty env is unset");
    defaults();
    setenv("PT_PORT", "abc", 1);
    CHECK(parse(&argi, ARGS(NULL)) == -1, "bad int in env");
    defaults();
    setenv("PT_PORT", "99999", 1);
    CHECK(parse(&argi, ARGS(NULL)) == -1, "env out of range");
    defaults();
}

static void booleans(void **state)
{
    int argi = -1;
    defaults();
    CHECK(parse(&argi, ARGS("--dev-auth")) == 0 && dev == 1, "bare bool");
    defaults();
    CHECK(parse(&argi, ARGS("--dev-auth=0")) == 0 && dev == 0, "--bool=0");
    defaults();
    CHECK(parse(&argi, ARGS("--dev-auth=1")) == 0 && dev == 1, "--bool=1");
    defaults();
    CHECK(parse(&argi, ARGS("--dev-auth=maybe")) == -1, "--bool=maybe");
    defaults();
    CHECK(parse(&argi, ARGS("--dev-auth", "1")) == 0 && dev == 1 && argi == 2,
          "bare bool does not eat the next arg");
    defaults();
    setenv("PT_DEV", "yes", 1);
    CHECK(parse(&argi, ARGS(NULL)) == 0 && dev == 1, "env yes");
    setenv("PT_DEV", "false", 1);
    dev = 1;
    CHECK(parse(&argi, ARGS(NULL)) == 0 && dev == 0, "env false");
    setenv("PT_DEV", "0", 1);
    CHECK(parse(&argi, ARGS("--dev-auth")) == 0 && dev == 1, "bool flag over env");
    setenv("PT_DEV", "2", 1);
    CHECK(parse(&argi, ARGS(NULL)) == -1, "env bool 2");
    defaults();
}

static void integers_in_range(void **state)
{
    int argi = -1;
    defaults();
    CHECK(parse(&argi, ARGS("--port", "abc")) == -1, "bad int");
    CHECK(parse(&argi, ARGS("--port", "80x")) == -1, "int with suffix");
    CHECK(parse(&argi, ARGS("--port", "")) == -1, "empty int");
    CHECK(parse(&argi, ARGS("--port", "0")) == -1, "below range");
    CHECK(parse(&argi, ARGS("--port", "65536")) == -1, "above range");
    CHECK(parse(&argi, ARGS("--port", "99999999999999999999")) == -1, "overflow");
    CHECK(parse(&argi, ARGS("--port", "65535")) == 0 && port == 65535, "max");
    CHECK(parse(&argi, ARGS("--port", "1")) == 0 && port == 1, "min");
    CHECK(parse(&argi, ARGS("--port")) == -1, "missing value");
    CHECK(parse(&argi, ARGS("--port", "1", "--port", "2")) == 0 && port == 2, "last wins");
}

static void unknown_flags_refused(void **state)
{
    int argi = -1;
    defaults();
    CHECK(parse(&argi, ARGS("--nope")) == -1, "unknown flag");
    CHECK(parse(&argi, ARGS("--nope=1")) == -1, "unknown flag with =");
    CHECK(parse(&argi, ARGS("-p")) == -1, "unknown short flag");
    CHECK(parse(&argi, ARGS("--por", "1")) == -1, "no prefix matching");
    port = 8080;
    CHECK(parse(&argi, ARGS("--port", "9", "--bad")) == -1 && port == 8080,
          "nothing applied on error");
}

/* sub-commands: stop at the first non-option */
static void stops_at_sub_command(void **state)
{
    int argi = -1;
    defaults();
    CHECK(parse(&argi, ARGS("--port", "9", "useradd", "alice", "--password", "x")) == 0 &&
              argi == 3 && port == 9,
          "argi at sub-command: %d", argi);
    CHECK(parse(&argi, ARGS("token", "--port", "1")) == 0 && argi == 1 && port == 9,
          "flags after the command are not parsed");
    CHECK(parse(&argi, ARGS("--", "--port")) == 0 && argi == 2, "-- ends options");
    CHECK(parse(&argi, ARGS("-", "x")) == 0 && argi == 1, "- is an argument");
}

/* a sub-command parses the rest with its own table */
static void sub_command_own_table(void **state)
{
    static long long ttl = 60;
    config_opt sub[] = {{"ttl", NULL, CONFIG_INT, &ttl, 1, 1000, "token lifetime"}};
    char *argv[] = {"prog", "--port", "5", "token", "--ttl", "30", "alice", NULL};
    int a1, a2;
    defaults();
    int rc = config_parse("prog", NULL, opts, NOPTS, 7, argv, &a1);
    CHECK(rc == 0 && a1 == 3, "main table");
    rc = config_parse("prog token", NULL, sub, 1, 7 - a1, argv + a1, &a2);
    CHECK(rc == 0 && ttl == 30 && a2 == 3 && strcmp(argv[a1 + a2], "alice") == 0,
          "sub table: rc %d a2 %d", rc, a2);
}

/* --help and -h exit 0 and list every flag, its variable and default */
static void help_lists_every_flag(void **state)
{
    char out[4096];
    defaults();
    CHECK(help(out, sizeof out, "--help") == 0, "--help exits 0");
    CHECK(strstr(out, "--redis-url") && strstr(out, "PT_REDIS_URL") &&
              strstr(out, "redis://127.0.0.1:6379") && strstr(out, "--port") &&
              strstr(out, "PT_PORT") && strstr(out, "8080") && strstr(out, "--dev-auth") &&
              strstr(out, "PT_DEV") && strstr(out, "usage: prog [flags] COMMAND"),
          "help text:\n%s", out);
    CHECK(help(out, sizeof out, "-h") == 0 && strstr(out, "--port"), "-h");
    setenv("PT_PORT", "1234", 1);
    CHECK(help(out, sizeof out, "--help") == 0 && strstr(out, "8080") && !strstr(out, "1234"),
          "help shows built-in defaults, not env");
    defaults();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(no_args_keep_defaults),
    cmocka_unit_test(flag_value_forms),
    cmocka_unit_test(env_between_flag_and_default),
    cmocka_unit_test(booleans),
    cmocka_unit_test(integers_in_range),
    cmocka_unit_test(unknown_flags_refused),
    cmocka_unit_test(stops_at_sub_command),
    cmocka_unit_test(sub_command_own_table),
    cmocka_unit_test(help_lists_every_flag),
};

UNIT_MAIN("config", tests, NULL, NULL)
