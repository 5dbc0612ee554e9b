/* test_bench.c - the load generator's measuring parts: the latency histogram
 * (percentiles within its stated precision, exact max, merge) and the msgpack
 * field picker it reads every server frame with (frames built by msgpack-c,
 * every truncation and random bytes refused without a crash). The sources are
 * compiled in here: parley-bench is a program, not a library. */
#include "../../tools/bench/hist.c"
#include "../../tools/bench/mpack.c"
#include "unit.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int close_to(uint64_t got, uint64_t want, double tol)
{
    double d = (double)got - (double)want;
    if (d < 0) d = -d;
    return d <= tol * (double)want + 1.0;
}

/* values spread over seven decades, as latencies are: filled once, by the
 * setup of the tests that read them, whole (filled) and in two halves
 * (half_a, half_b); sorted holds the exact values */
enum { N = 200000 };
static hist filled, half_a, half_b;
static uint64_t sorted[N];

static int fill_seven_decades(void **state)
{
    if (filled.count) return 0;
    rng_state = 88172645463325252ull;
    hist_reset(&filled);
    hist_reset(&half_a);
    hist_reset(&half_b);
    for (int i = 0; i < N; i++) {
        uint64_t x = (1000 + rng() % 1000) << (rng() % 23); /* 1 us .. ~8 s */
        sorted[i] = x;
        hist_add(&filled, x);
        hist_add(i % 2 ? &half_a : &half_b, x);
    }
    qsort(sorted, N, sizeof sorted[0], cmp_u64);
    return 0;
}

static void hist_empty_gives_zero(void **state)
{
    static hist h;
    hist_reset(&h);
    CHECK(hist_quantile(&h, 0.5) == 0 && hist_quantile(&h, 1.0) == 0, "empty histogram gives 0");
}

static void hist_small_values_exact(void **state)
{
    static hist h;
    hist_reset(&h);
    for (uint64_t i = 0; i < 128; i++)
        hist_add(&h, i);
    CHECK(hist_quantile(&h, 0.5) == 63 && h.max == 127 && h.count == 128, "small values exact");
}

static void hist_quantiles_within_precision(void **state)
{
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        uint64_t exact = sorted[(size_t)(qs[i] * N) - 1];
        uint64_t got = hist_quantile(&filled, qs[i]);
        CHECK(close_to(got, exact, 0.016), "q%.3f: %llu vs exact %llu", qs[i],
              (unsigned long long)got, (unsigned long long)exact);
    }
}

static void hist_max_and_count_exact(void **state)
{
    CHECK(hist_quantile(&filled, 1.0) == sorted[N - 1] && filled.max == sorted[N - 1],
          "max is exact");
    CHECK(filled.count == N, "count");
}

static void hist_merge_gives_whole(void **state)
{
    static hist a;
    a = half_a;
    hist_merge(&a, &half_b);
    CHECK(a.count == filled.count && a.max == filled.max && a.sum == filled.sum &&
              memcmp(a.b, filled.b, sizeof a.b) == 0,
          "merging two halves gives the whole");
}

static void hist_mean_positive(void **state)
{
    CHECK(hist_mean(&filled) > 0, "mean");
}

static void hist_huge_value_in_last_bucket(void **state)
{
    static hist h;
    hist_reset(&h);
    hist_add(&h, UINT64_MAX);
    hist_add(&h, 5);
    CHECK(h.max == UINT64_MAX && hist_quantile(&h, 0.5) == 5,
          "huge value lands in the last bucket");
}

/* packs {kind, cid, id, nested, bin, 7: x, code} with msgpack-c */
static size_t build_frame(char *out, size_t cap, const char *kind, const char *cid, size_t datalen)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint64(&pk, 1ull << 40);
    msgpack_pack_str_with_body(&pk, "users", 5);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "username", 8);
    msgpack_pack_str_with_body(&pk, "kind", 4); /* a nested "kind" must not be picked */
    msgpack_pack_str_with_body(&pk, "online", 6);
    msgpack_pack_true(&pk);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_int(&pk, 7); /* a non-string key */
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_str_with_body(&pk, "kind", 4);
    msgpack_pack_str_with_body(&pk, kind, strlen(kind));
    msgpack_pack_str_with_body(&pk, "data", 4);
    char data[70000];
    memset(data, 'd', datalen);
    msgpack_pack_str_with_body(&pk, data, datalen);
    msgpack_pack_str_with_body(&pk, "cid", 3);
    msgpack_pack_str_with_body(&pk, cid, strlen(cid));
    msgpack_pack_str_with_body(&pk, "code", 4);
    msgpack_pack_bin_with_body(&pk, "bin", 3); /* bin is not a string */
    size_t n = sb.size < cap ? sb.size : 0;
    memcpy(out, sb.data, n);
    msgpack_sbuffer_destroy(&sb);
    return n;
}

static const char *const keys[] = {"kind", "cid", "code", "data", "missing"};
static char buf[80000];

static void pick_finds_top_level_strings(void **state)
{
    mp_str f[5];
    const size_t sizes[] = {0, 31, 32, 255, 256, 65535, 65536};

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = build_frame(buf, sizeof buf, "text", "ab12-77", sizes[i]);
        CHECK(n > 0, "built");
        CHECK(mp_pick_strs(buf, n, keys, f, 5) == 0, "valid frame (data %zu)", sizes[i]);
        CHECK(f[0].len == 4 && !memcmp(f[0].p, "text", 4), "kind");
        CHECK(f[1].len == 7 && !memcmp(f[1].p, "ab12-77", 7), "cid");
        CHECK(f[2].len == 0, "a bin value is not a string");
        CHECK(f[3].len == sizes[i], "data length %zu", sizes[i]);
        CHECK(f[4].p == NULL && f[4].len == 0, "missing key");
    }
}

static void pick_refuses_truncations(void **state)
{
    mp_str f[5];
    size_t n = build_frame(buf, sizeof buf, "ack", "c", 100);
    int bad = 0;
    for (size_t cut = 0; cut < n; cut++)
        bad += mp_pick_strs(buf, cut, keys, f, 5) == 0;
    CHECK(bad == 0, "%d truncations accepted", bad);
}

static void pick_refuses_malformed(void **state)
{
    mp_str f[5];
    size_t n = build_frame(buf, sizeof buf, "ack", "c", 100);
    buf[n] = (char)0xc0;
    CHECK(mp_pick_strs(buf, n + 1, keys, f, 5) < 0, "trailing byte refused");
    CHECK(mp_pick_strs("\x93\x01\x02\x03", 4, keys, f, 5) < 0, "an array is not a frame");
    CHECK(mp_pick_strs("\xc1", 1, keys, f, 5) < 0, "0xc1 (never used) refused");
    CHECK(mp_pick_strs("\xdf\xff\xff\xff\xff", 5, keys, f, 5) < 0, "huge map header, no body");
}

/* nesting beyond 32 levels is refused, not recursed into */
static void pick_refuses_deep_nesting(void **state)
{
    mp_str f[5];
    char deep[80];
    deep[0] = (char)0x81;
    deep[1] = (char)0xa1;
    deep[2] = 'k';
    for (int i = 3; i < 70; i++)
        deep[i] = (char)0x91;
    deep[70] = (char)0xc0;
    CHECK(mp_pick_strs(deep, 71, keys, f, 5) < 0, "deep nesting refused");
}

/* our writers, read back */
static void writers_read_back(void **state)
{
    mp_str f[5];
    char w[400], *p = w;
    p = mp_put_map(p, 2);
    p = mp_put_cstr(p, "kind");
    p = mp_put_cstr(p, "group");
    p = mp_put_cstr(p, "cid");
    p = mp_put_array(p, 20);
    for (int i = 0; i < 20; i++)
        p = mp_put_bool(p, i & 1);
    CHECK(mp_pick_strs(w, (size_t)(p - w), keys, f, 5) == 0 && f[0].len == 5 && f[1].len == 0,
          "writers: map, array of 20 (array16), bools");
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CHECK(msgpack_unpack_next(&u, w, (size_t)(p - w), NULL) == MSGPACK_UNPACK_SUCCESS &&
              u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 2,
          "msgpack-c reads what the writers wrote");
    msgpack_unpacked_destroy(&u);
}

/* random bytes: never a crash (the ASan build runs this too) */
static void pick_survives_random_bytes(void **state)
{
    mp_str f[5];
    rng_state = 2463534242ull; /* the same bytes alone or after other tests */
    for (int i = 0; i < 20000; i++) {
        char r[64];
        size_t len = rng() % sizeof r;
        for (size_t j = 0; j < len; j++)
            r[j] = (char)rng();
        if (len) r[0] = (char)(0x80 | (rng() & 0x0f));
        mp_pick_strs(r, len, keys, f, 5);
    }
    CHECK(1, "random frames survived");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(hist_empty_gives_zero),
    cmocka_unit_test(hist_small_values_exact),
    cmocka_unit_test_setup(hist_quantiles_within_precision, fill_seven_decades),
    cmocka_unit_test_setup(hist_max_and_count_exact, fill_seven_decades),
    cmocka_unit_test_setup(hist_merge_gives_whole, fill_seven_decades),
    cmocka_unit_test_setup(hist_mean_positive, fill_seven_decades),
    cmocka_unit_test(hist_huge_value_in_last_bucket),
    cmocka_unit_test(pick_finds_top_level_strings),
    cmocka_unit_test(pick_refuses_truncations),
    cmocka_unit_test(pick_refuses_malformed),
    cmocka_unit_test(pick_refuses_deep_nesting),
    cmocka_unit_test(writers_read_back),
    cmocka_unit_test(pick_survives_random_bytes),
};

UNIT_MAIN("bench", tests, NULL, NULL)
