/* unit.h - what every C unit test shares (tests/README.md, "C unit tests").
 *
 * The tests run on cmocka (Debian's libcmocka-dev). Each tests/unit/test_GROUP.c
 * holds one small test per behaviour, a static function named after it
 * (void NAME(void **state)), lists them in a CMUnitTest array with
 * cmocka_unit_test(NAME) and ends with UNIT_MAIN("GROUP", tests, setup,
 * teardown) (the group fixtures may be NULL). The executable then takes:
 *   (nothing)   run every test of the file;
 *   NAME        run the tests whose name matches NAME: a name, GROUP.NAME, or a
 *               glob of * and ? (cmocka's filter); a NAME that matches no test
 *               is an error (exit 2), so a typo never passes;
 *   --list      print GROUP.NAME of every test, one a line: tests/CMakeLists.txt
 *               registers each with ctest under that name.
 * Exit status 0 when every test run passed, else non-zero (cmocka's count of
 * failed tests).
 *
 * Inside a test, cmocka's assert_* macros fail the test at the first false
 * one; CHECK(cond, fmt, ...) does the same with a printf-style message, for
 * checks whose expression alone would not say which table entry or which
 * value failed. Also a tiny msgpack builder (mp_build) so tests can spell
 * frames, well formed or not, on one line. */
#ifndef PARLEY_UNIT_H
#define PARLEY_UNIT_H

/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fnmatch.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("FAIL: ");                                                                 \
            print_error(__VA_ARGS__);                                                              \
            print_error("\n");                                                                     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* The command line of UNIT_MAIN: returns the exit status when it is all
 * there is to do (--list, a usage error, a NAME that matches no test), or -1
 * to run the tests (with cmocka's filter set for a NAME). */
static inline int unit_args(int argc, char **argv, const char *group,
                            const struct CMUnitTest *tests, size_t n)
{
    if (argc == 1) return -1;
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s.%s\n", group, tests[i].name);
        return 0;
    }
    if (argc == 2 && argv[1][0] != '-' && argv[1][0] != '\0') {
        const char *pat = argv[1];
        size_t glen = strlen(group);
        if (strncmp(pat, group, glen) == 0 && pat[glen] == '.') pat += glen + 1;
        for (size_t i = 0; i < n; i++) {
            if (fnmatch(pat, tests[i].name, 0) == 0) {
                cmocka_set_test_filter(pat);
                return -1;
            }
        }
        fprintf(stderr, "%s: no test matches '%s' (--list names them)\n", argv[0], argv[1]);
        return 2;
    }
    fprintf(stderr, "usage: %s [--list | NAME | %s.NAME | GLOB]\n", argv[0], group);
    return 2;
}

/* main() of a test file: tests is the file's CMUnitTest array (an array, not
 * a pointer: its size is taken here). */
#define UNIT_MAIN(group, tests, setup, teardown)                                                   \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        int rc = unit_args(argc, argv, group, tests, sizeof(tests) / sizeof((tests)[0]));          \
        if (rc >= 0) return rc;                                                                    \
        return cmocka_run_group_tests_name(group, tests, setup, teardown);                         \
    }

static inline int unit_hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes n hex digits into out; returns the byte count. */
static inline size_t unit_unhex(const char *hex, size_t n, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        out[len++] = (char)(unit_hexval(hex[i]) << 4 | unit_hexval(hex[i + 1]));
    return len;
}

/* Packs a space-separated spec into sb:
 *   {N map of N pairs     [N array of N      n nil   T true   F false
 *   s:TEXT str            x:HEX str of raw bytes      b:TEXT bin
 *   S:N str of N 'a'      i:N int64   u:N uint64      d:N double
 *   r:HEX raw bytes, no header (for garbage and truncation) */
static inline void mp_build(msgpack_sbuffer *sb, const char *spec)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    char tmp[4096];
    const char *p = spec;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        const char *end = strchr(p, ' ');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *v = p + 2;
        size_t vn = n >= 2 ? n - 2 : 0;
        switch (p[0]) {
        case '{':
            msgpack_pack_map(&pk, strtoul(p + 1, NULL, 10));
            break;
        case '[':
            msgpack_pack_array(&pk, strtoul(p + 1, NULL, 10));
            break;
        case 'n':
            msgpack_pack_nil(&pk);
            break;
        case 'T':
            msgpack_pack_true(&pk);
            break;
        case 'F':
            msgpack_pack_false(&pk);
            break;
        case 's':
            msgpack_pack_str(&pk, vn);
            msgpack_pack_str_body(&pk, v, vn);
            break;
        case 'x': {
            size_t l = unit_unhex(v, vn, tmp);
            msgpack_pack_str(&pk, l);
            msgpack_pack_str_body(&pk, tmp, l);
            break;
        }
        case 'b':
            msgpack_pack_bin(&pk, vn);
            msgpack_pack_bin_body(&pk, v, vn);
            break;
        case 'S': {
            size_t l = strtoul(v, NULL, 10);
            memset(tmp, 'a', l);
            msgpack_pack_str(&pk, l);
            msgpack_pack_str_body(&pk, tmp, l);
            break;
        }
        case 'i':
            msgpack_pack_int64(&pk, strtoll(v, NULL, 10));
            break;
        case 'u':
            msgpack_pack_uint64(&pk, strtoull(v, NULL, 10));
            break;
        case 'd':
            msgpack_pack_double(&pk, strtod(v, NULL));
            break;
        case 'r': {
            size_t l = unit_unhex(v, vn, tmp);
            msgpack_sbuffer_write(sb, tmp, l);
            break;
        }
        default:
            fprintf(stderr, "mp_build: bad token '%.*s'\n", (int)n, p);
            abort();
        }
        p += n;
    }
}

#ifdef UNIT_WITH_BUFS
/* A msgpack buffer and unpacked object for a file whose tests build and
 * decode frames (#define UNIT_WITH_BUFS before including this): give
 * unit_bufs_init and unit_bufs_free to UNIT_MAIN as the group setup and
 * teardown (each test starts from sb.size = 0 itself). */
static msgpack_sbuffer sb;
static msgpack_unpacked up;

static inline int unit_bufs_init(void **state)
{
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&up);
    return 0;
}

static inline int unit_bufs_free(void **state)
{
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
#endif

#endif
