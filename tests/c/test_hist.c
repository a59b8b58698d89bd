/*
 * test_hist.c - unit tests for the latency histogram (csrc/hist.c).
 *
 * No framework: CHECK() prints file:line and the failing expression and exits
 * non-zero.  Each test function runs in its own forked child, so one failure (or
 * a crash, or a hang caught by the watchdog) names its test and the others still
 * run; the last line is "N passed, M failed, K skipped" and the exit status is non-zero
 * unless M is 0.
 *
 *   test_hist                 run every test
 *   test_hist NAME...         run only the tests whose names contain a NAME
 *   test_hist --no-fork ...   run in-process (for a debugger)
 *
 * Histograms live in malloc'd memory of exactly sizeof(struct rtudp_hist), so
 * under AddressSanitizer any access outside one is reported.  All randomness
 * comes from fixed seeds: a failure reproduces.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"

#include "harness.h"

/* ------------------------------------------------------------------ helpers */

#define NB RTUDP_HIST_BUCKETS
#define TOP (((uint64_t)1 << RTUDP_HIST_MAX_BIT) - 1) /* largest value kept as is */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}


/* log-uniform in [0, 2^bits): every bucket range gets exercised */
static uint64_t rnd_log(uint64_t *s, unsigned bits)
{
    unsigned b = (unsigned)rnd(s, bits + 1); /* how many bits the value has */
    if (b == 0)
        return 0;
    uint64_t top = UINT64_C(1) << (b - 1);
    return top | (splitmix64(s) & (top - 1));
}

static struct rtudp_hist *hist_new(void)
{
    struct rtudp_hist *h = calloc(1, sizeof *h);
    CHECK(h != NULL);
    return h;
}

/* the bucket index straight from the formula of hist.h, for comparison */
static uint32_t index_by_spec(uint64_t v)
{
    if (v < 256)
        return (uint32_t)v;
    if (v > TOP)
        return NB - 1;
    int k = 63 - __builtin_clzll(v);
    return (uint32_t)(256 + (uint64_t)(k - 8) * 128 + ((v >> (k - 7)) - 128));
}

/* the value a record of v ends up as */
static uint64_t kept(int64_t v)
{
    if (v < 0)
        return 0;
    return (uint64_t)v > TOP ? TOP : (uint64_t)v;
}

static uint64_t bucket_sum(const struct rtudp_hist *h)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < NB; i++)
        t += h->buckets[i];
    return t;
}

/* two histograms hold the same data, word for word (reserved included) */
#define check_same(...) AT_LINE(check_same_(__VA_ARGS__))
static void check_same_(const struct rtudp_hist *a, const struct rtudp_hist *b)
{
    CHECK_EQ(a->count, b->count);
    CHECK_EQ(a->sum_ns, b->sum_ns);
    CHECK_EQ(a->clamped, b->clamped);
    CHECK_EQ(a->negative, b->negative);
    if (a->count) {
        CHECK_EQ(a->min_ns, b->min_ns);
        CHECK_EQ(a->max_ns, b->max_ns);
    }
    for (uint32_t i = 0; i < NB; i++)
        if (a->buckets[i] != b->buckets[i]) {
            fprintf(stderr, "bucket %u: %llu != %llu\n", i, (unsigned long long)a->buckets[i],
                    (unsigned long long)b->buckets[i]);
            CHECK(a->buckets[i] == b->buckets[i]);
        }
}

/* a histogram's own invariants: count = bucket sum, min/max in the extreme buckets */
#define check_consistent(...) AT_LINE(check_consistent_(__VA_ARGS__))
static void check_consistent_(const struct rtudp_hist *h)
{
    CHECK_EQ(h->count, bucket_sum(h));
    if (h->count == 0)
        return;
    uint32_t lo = 0, hi = NB - 1;
    while (h->buckets[lo] == 0)
        lo++;
    while (h->buckets[hi] == 0)
        hi--;
    CHECK_EQ(rtudp_hist_index(h->min_ns), lo);
    CHECK_EQ(rtudp_hist_index(h->max_ns), hi);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ tests */

/* every bucket: bounds round-trip through index, buckets tile 0 .. 2^36-1 */
static void test_hist_bucket_bounds(void)
{
    CHECK_EQ(RTUDP_HIST_BUCKETS, 3840);
    CHECK_EQ(rtudp_hist_lower(0), 0);
    CHECK_EQ(rtudp_hist_upper(NB - 1), TOP);
    for (uint32_t i = 0; i < NB; i++) {
        uint64_t lo = rtudp_hist_lower(i), hi = rtudp_hist_upper(i);
        CHECK(lo <= hi);
        CHECK_EQ(rtudp_hist_index(lo), i);
        CHECK_EQ(rtudp_hist_index(hi), i);
        CHECK_EQ(rtudp_hist_index(lo + (hi - lo) / 2), i);
        if (i > 0) {
            /* contiguous and non-overlapping: the next bucket starts right after */
            CHECK_EQ(lo, rtudp_hist_upper(i - 1) + 1);
            CHECK_EQ(rtudp_hist_index(lo - 1), i - 1);
        }
        if (i < NB - 1)
            CHECK_EQ(rtudp_hist_index(hi + 1), i + 1);
        if (i < 256)
            CHECK(lo == i && hi == i);
        else /* power-of-two widths, 128 per octave */
            CHECK(((hi - lo + 1) & (hi - lo)) == 0);
    }
    /* beyond the range */
    CHECK_EQ(rtudp_hist_index(TOP + 1), NB - 1);
    CHECK_EQ(rtudp_hist_index(UINT64_MAX), NB - 1);
    CHECK_EQ(rtudp_hist_lower(NB), rtudp_hist_lower(NB - 1));
    CHECK_EQ(rtudp_hist_upper(UINT32_MAX), TOP);
}

/* index(v) == i <=> lower(i) <= v <= upper(i), and index follows the formula */
static void test_hist_index_random(void)
{
    uint64_t s = 1;
    for (int n = 0; n < 2000000; n++) {
        uint64_t v = n < 100000 ? (uint64_t)n : rnd_log(&s, 64);
        uint32_t i = rtudp_hist_index(v);
        CHECK_EQ(i, index_by_spec(v));
        CHECK(i < NB);
        if (v <= TOP) {
            CHECK(rtudp_hist_lower(i) <= v);
            CHECK(v <= rtudp_hist_upper(i));
        } else {
            CHECK_EQ(i, NB - 1);
        }
    }
    /* every power of two and its neighbours */
    for (unsigned k = 0; k < 64; k++) {
        uint64_t p = UINT64_C(1) << k;
        for (int d = -1; d <= 1; d++) {
            uint64_t v = p + (uint64_t)(int64_t)d;
            CHECK_EQ(rtudp_hist_index(v), index_by_spec(v));
        }
    }
}

/* a bucket is at most 1/128 as wide as its smallest value, above 255 */
static void test_hist_precision(void)
{
    for (uint32_t i = 256; i < NB; i++) {
        uint64_t lo = rtudp_hist_lower(i), w = rtudp_hist_upper(i) - lo + 1;
        CHECK(w * 128 <= lo);
    }
    uint64_t s = 2;
    for (int n = 0; n < 1000000; n++) {
        uint64_t v = 256 + rnd(&s, TOP - 255);
        uint32_t i = rtudp_hist_index(v);
        /* reporting v as its bucket's upper bound (what percentiles do) errs by
         * less than 1/128 */
        CHECK((rtudp_hist_upper(i) - v) * 128 < v);
        CHECK((v - rtudp_hist_lower(i)) * 128 < v);
    }
}

static void test_hist_record_basic(void)
{
    struct rtudp_hist *h = hist_new();
    /* a fresh histogram's min is 0: the first value must set it anyway */
    rtudp_hist_record(h, 1000);
    CHECK_EQ(h->count, 1);
    CHECK_EQ(h->sum_ns, 1000);
    CHECK_EQ(h->min_ns, 1000);
    CHECK_EQ(h->max_ns, 1000);
    CHECK_EQ(h->buckets[rtudp_hist_index(1000)], 1);
    rtudp_hist_record(h, 5);
    rtudp_hist_record(h, 70000);
    rtudp_hist_record(h, 1000);
    CHECK_EQ(h->count, 4);
    CHECK_EQ(h->sum_ns, 72005);
    CHECK_EQ(h->min_ns, 5);
    CHECK_EQ(h->max_ns, 70000);
    CHECK_EQ(h->buckets[5], 1);
    CHECK_EQ(h->buckets[rtudp_hist_index(1000)], 2);
    CHECK_EQ(h->buckets[rtudp_hist_index(70000)], 1);
    CHECK_EQ(h->clamped, 0);
    CHECK_EQ(h->negative, 0);
    CHECK_EQ(h->reserved[0] | h->reserved[1], 0);
    check_consistent(h);

    /* reset: all zero, and the next value is again the first */
    rtudp_hist_reset(h);
    struct rtudp_hist *zero = hist_new();
    CHECK(memcmp(h, zero, sizeof *h) == 0);
    rtudp_hist_record(h, 300);
    CHECK_EQ(h->min_ns, 300);
    CHECK_EQ(h->max_ns, 300);
    CHECK_EQ(h->count, 1);
    free(zero);
    free(h);
}

static void test_hist_clamp_negative(void)
{
    struct rtudp_hist *h = hist_new();
    rtudp_hist_record(h, -5);
    rtudp_hist_record(h, INT64_MIN);
    CHECK_EQ(h->negative, 2);
    CHECK_EQ(h->buckets[0], 2);
    CHECK_EQ(h->min_ns, 0);
    CHECK_EQ(h->max_ns, 0);
    CHECK_EQ(h->sum_ns, 0);
    rtudp_hist_record(h, (int64_t)TOP); /* the largest kept value: not clamped */
    CHECK_EQ(h->clamped, 0);
    rtudp_hist_record(h, (int64_t)TOP + 1);
    rtudp_hist_record(h, INT64_MAX);
    CHECK_EQ(h->clamped, 2);
    CHECK_EQ(h->buckets[NB - 1], 3);
    CHECK_EQ(h->max_ns, TOP);
    CHECK_EQ(h->sum_ns, 3 * TOP);
    CHECK_EQ(h->count, 5);
    check_consistent(h);
    CHECK_EQ(rtudp_hist_percentile(h, 100), TOP);
    CHECK_EQ(rtudp_hist_percentile(h, 0), 0);
    CHECK_EQ(rtudp_hist_percentile(h, 40), 0);
    free(h);
}

static void test_hist_percentile_edges(void)
{
    struct rtudp_hist *h = hist_new();
    /* empty */
    CHECK_EQ(rtudp_hist_percentile(h, 0), 0);
    CHECK_EQ(rtudp_hist_percentile(h, 50), 0);
    CHECK_EQ(rtudp_hist_percentile(h, 100), 0);
    /* one value: every percentile is that value, exactly (clamped to [min, max]) */
    rtudp_hist_record(h, 123456);
    double ps[] = {0, 1e-9, 1, 50, 99.9, 100, 150, -3, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        CHECK_EQ(rtudp_hist_percentile(h, ps[i]), 123456);
    /* two values far apart: the median is the lower one, anything above picks the
     * upper one; out-of-range p clamps */
    rtudp_hist_record(h, 5000000);
    CHECK_EQ(rtudp_hist_percentile(h, 50), rtudp_hist_upper(rtudp_hist_index(123456)));
    CHECK_EQ(rtudp_hist_percentile(h, 50.0001), 5000000); /* clamped to max */
    CHECK_EQ(rtudp_hist_percentile(h, 1000), 5000000);
    CHECK_EQ(rtudp_hist_percentile(h, -1), 123456);
    CHECK_EQ(rtudp_hist_percentile(h, NAN), 123456);
    /* a value inside its bucket reports the bucket's upper bound */
    rtudp_hist_reset(h);
    for (int i = 0; i < 10; i++)
        rtudp_hist_record(h, 1000 + i * 1000); /* 1000 .. 10000 */
    uint64_t p50 = rtudp_hist_percentile(h, 50); /* rank 5: 5000 */
    CHECK_EQ(p50, rtudp_hist_upper(rtudp_hist_index(5000)));
    CHECK_EQ(rtudp_hist_percentile(h, 90), rtudp_hist_upper(rtudp_hist_index(9000)));
    CHECK_EQ(rtudp_hist_percentile(h, 100), 10000);
    CHECK_EQ(rtudp_hist_percentile(h, 0), 1000);
    free(h);
}

/* percentiles against the exact nearest-rank value of the sorted data */
#define check_percentiles(...) AT_LINE(check_percentiles_(__VA_ARGS__))
static void check_percentiles_(const struct rtudp_hist *h, uint64_t *sorted, uint64_t n)
{
    /* p in tenths of a percent, so the reference rank is integer arithmetic */
    static const uint64_t p10[] = {1, 5, 10, 100, 250, 333, 500, 750, 900, 950, 990, 999, 1000};
    uint64_t prev = 0;
    for (size_t j = 0; j < sizeof p10 / sizeof p10[0]; j++) {
        uint64_t rank = (p10[j] * n + 999) / 1000; /* ceil(p * n / 100) */
        if (rank == 0)
            rank = 1;
        uint64_t ref = sorted[rank - 1];
        uint64_t got = rtudp_hist_percentile(h, (double)p10[j] / 10.0);
        /* the upper bound of ref's bucket, clamped to max: same bucket, not below */
        if (rtudp_hist_index(got) != rtudp_hist_index(ref) || got < ref)
            fprintf(stderr, "p%.1f of %llu values: got %llu, exact %llu\n",
                    (double)p10[j] / 10.0, (unsigned long long)n, (unsigned long long)got,
                    (unsigned long long)ref);
        CHECK_EQ(rtudp_hist_index(got), rtudp_hist_index(ref));
        CHECK(got >= ref);
        CHECK(got - ref <= rtudp_hist_upper(rtudp_hist_index(ref)) - rtudp_hist_lower(rtudp_hist_index(ref)));
        CHECK(got >= prev); /* monotonic in p */
        prev = got;
    }
    CHECK_EQ(rtudp_hist_percentile(h, 0), sorted[0]);
    CHECK_EQ(rtudp_hist_percentile(h, 100), sorted[n - 1]);
}

static void test_hist_percentile_random(void)
{
    uint64_t s = 3;
    enum { MAXN = 200000 };
    uint64_t *vals = malloc(MAXN * sizeof *vals);
    CHECK(vals != NULL);
    struct rtudp_hist *h = hist_new();
    for (int round = 0; round < 60; round++) {
        uint64_t n = round < 10 ? 1 + (uint64_t)round : 1 + rnd(&s, MAXN);
        int kind = round % 5;
        rtudp_hist_reset(h);
        uint64_t base = rnd(&s, 1000000);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t v;
            switch (kind) {
            case 0: v = rnd(&s, 300); break;                          /* the linear part */
            case 1: v = rnd_log(&s, 36); break;                       /* every octave */
            case 2: v = 20000 + rnd(&s, 2000); break;                 /* a narrow peak */
            case 3: v = rnd(&s, 100) < 99 ? 5000 + rnd(&s, 100) : 40000000 + rnd(&s, 1000); break;
            default: v = base; break;                                 /* constant */
            }
            vals[i] = v;
            rtudp_hist_record(h, (int64_t)v);
        }
        check_consistent(h);
        qsort(vals, (size_t)n, sizeof *vals, cmp_u64);
        CHECK_EQ(h->min_ns, vals[0]);
        CHECK_EQ(h->max_ns, vals[n - 1]);
        check_percentiles(h, vals, n);
    }
    free(h);
    free(vals);
}

/* the nearest rank is exact even where p * n / 100 is not in binary (16.1 % of
 * 1000 is 161.00000000000003 in double: rank 161, not 162) */
static void test_hist_percentile_rank_exact(void)
{
    static const uint64_t ns[] = {1, 3, 7, 10, 100, 300, 1000, 3000};
    struct rtudp_hist *h = hist_new();
    for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
        uint64_t n = ns[j];
        rtudp_hist_reset(h);
        /* one value per bucket, so a rank off by one gives another answer */
        for (uint64_t i = 0; i < n; i++)
            rtudp_hist_record(h, (int64_t)rtudp_hist_lower((uint32_t)(300 + i)));
        for (uint64_t p10 = 1; p10 <= 1000; p10++) {
            uint64_t rank = (p10 * n + 999) / 1000; /* ceil(p * n / 100), exactly */
            uint64_t want = rtudp_hist_upper((uint32_t)(300 + rank - 1));
            if (want > h->max_ns)
                want = h->max_ns;
            uint64_t got = rtudp_hist_percentile(h, (double)p10 / 10.0);
            if (got != want)
                fprintf(stderr, "p%.1f of %llu values: rank %llu\n", (double)p10 / 10.0,
                        (unsigned long long)n, (unsigned long long)rank);
            CHECK_EQ(got, want);
        }
    }
    free(h);
}

/* merge(a, b) holds exactly what recording a's and b's values into one would */
static void test_hist_merge(void)
{
    uint64_t s = 4;
    struct rtudp_hist *a = hist_new(), *b = hist_new(), *all = hist_new(), *m = hist_new();
    for (int i = 0; i < 50000; i++) {
        int64_t v = (int64_t)rnd_log(&s, 38) - (rnd(&s, 1000) == 0 ? 100 : 0);
        rtudp_hist_record(i % 3 ? a : b, v);
        rtudp_hist_record(all, v);
    }
    /* into an empty one: a copy (its meaningless min 0 must not stick) */
    rtudp_hist_merge(m, a);
    check_same(m, a);
    rtudp_hist_merge(m, b);
    check_same(m, all);
    check_consistent(m);
    /* merging an empty one changes nothing */
    struct rtudp_hist *empty = hist_new();
    rtudp_hist_merge(m, empty);
    check_same(m, all);
    /* min from the second one, max from the first */
    rtudp_hist_reset(a);
    rtudp_hist_reset(b);
    rtudp_hist_record(a, 500);
    rtudp_hist_record(a, 90000);
    rtudp_hist_record(b, 7);
    rtudp_hist_record(b, 800);
    rtudp_hist_merge(a, b);
    CHECK_EQ(a->count, 4);
    CHECK_EQ(a->min_ns, 7);
    CHECK_EQ(a->max_ns, 90000);
    CHECK_EQ(a->sum_ns, 500 + 90000 + 7 + 800);
    check_consistent(a);
    free(a);
    free(b);
    free(all);
    free(m);
    free(empty);
}

static void test_hist_diff(void)
{
    uint64_t s = 5;
    struct rtudp_hist *h = hist_new(), *before = hist_new(), *now = hist_new();
    struct rtudp_hist *only = hist_new(), *d = hist_new();
    for (int i = 0; i < 30000; i++)
        rtudp_hist_record(h, (int64_t)rnd_log(&s, 30));
    rtudp_hist_snapshot(h, before);
    uint64_t mn = UINT64_MAX, mx = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t v = (int64_t)(100000 + rnd(&s, 900000));
        if (i == 7)
            v = -1;
        if (i == 8)
            v = INT64_MAX;
        rtudp_hist_record(h, v);
        rtudp_hist_record(only, v);
        mn = kept(v) < mn ? kept(v) : mn;
        mx = kept(v) > mx ? kept(v) : mx;
    }
    rtudp_hist_snapshot(h, now);
    rtudp_hist_diff(now, before, d);
    CHECK_EQ(d->count, only->count);
    CHECK_EQ(d->sum_ns, only->sum_ns);
    CHECK_EQ(d->clamped, 1);
    CHECK_EQ(d->negative, 1);
    for (uint32_t i = 0; i < NB; i++)
        CHECK_EQ(d->buckets[i], only->buckets[i]);
    check_consistent(d);
    /* extremes are bounds from the buckets, in the right bucket, on the safe side */
    CHECK(d->min_ns <= mn && rtudp_hist_index(d->min_ns) == rtudp_hist_index(mn));
    CHECK(d->max_ns >= mx && rtudp_hist_index(d->max_ns) == rtudp_hist_index(mx));
    CHECK_EQ(d->max_ns, TOP); /* now's max tightens it (it is the clamped value) */
    CHECK_EQ(d->min_ns, 0);   /* the negative value */

    /* without the outliers, min/max come from the bucket bounds */
    rtudp_hist_snapshot(h, before);
    rtudp_hist_record(h, 5000);
    rtudp_hist_record(h, 5001);
    rtudp_hist_snapshot(h, now);
    rtudp_hist_diff(now, before, d);
    CHECK_EQ(d->count, 2);
    CHECK_EQ(d->min_ns, rtudp_hist_lower(rtudp_hist_index(5000)));
    CHECK_EQ(d->max_ns, rtudp_hist_upper(rtudp_hist_index(5001)));
    CHECK_EQ(rtudp_hist_percentile(d, 100), d->max_ns);

    /* nothing happened: empty */
    rtudp_hist_diff(now, now, d);
    CHECK_EQ(d->count, 0);
    CHECK_EQ(bucket_sum(d), 0);
    CHECK_EQ(d->sum_ns, 0);
    CHECK_EQ(rtudp_hist_percentile(d, 50), 0);

    /* out may alias now or before */
    struct rtudp_hist *copy = hist_new();
    rtudp_hist_diff(now, before, d);
    memcpy(copy, now, sizeof *copy);
    rtudp_hist_diff(copy, before, copy);
    check_same(copy, d);
    memcpy(copy, before, sizeof *copy);
    rtudp_hist_diff(now, copy, copy);
    check_same(copy, d);

    /* the owner reset the histogram in between: the diff is all of now */
    rtudp_hist_reset(h);
    rtudp_hist_record(h, 77);
    rtudp_hist_snapshot(h, now);
    rtudp_hist_diff(now, before, d);
    check_same(d, now);
    CHECK_EQ(d->count, 1);
    free(copy);
    free(h);
    free(before);
    free(now);
    free(only);
    free(d);
}

/* a snapshot repairs a copy caught half-way through a record */
static void test_hist_snapshot_repairs(void)
{
    struct rtudp_hist *h = hist_new(), *out = hist_new();
    rtudp_hist_record(h, 1000);
    rtudp_hist_record(h, 2000);
    rtudp_hist_snapshot(h, out);
    check_same(out, h);
    /* a bucket bumped, count/min/max not yet */
    h->buckets[rtudp_hist_index(5)]++;
    h->buckets[rtudp_hist_index(9000)]++;
    rtudp_hist_snapshot(h, out);
    CHECK_EQ(out->count, 4);
    CHECK_EQ(out->min_ns, 5);
    CHECK_EQ(out->max_ns, rtudp_hist_upper(rtudp_hist_index(9000)));
    check_consistent(out);
    /* the first value of a fresh histogram: count still 0 */
    rtudp_hist_reset(h);
    h->buckets[rtudp_hist_index(700)] = 1;
    rtudp_hist_snapshot(h, out);
    CHECK_EQ(out->count, 1);
    CHECK_EQ(rtudp_hist_index(out->min_ns), rtudp_hist_index(700));
    CHECK_EQ(rtudp_hist_index(out->max_ns), rtudp_hist_index(700));
    CHECK_EQ(rtudp_hist_percentile(out, 50), out->max_ns);
    /* count ahead of the buckets (or garbage): the buckets win */
    rtudp_hist_reset(h);
    h->count = 12345;
    h->min_ns = 99;
    h->sum_ns = 1;
    rtudp_hist_snapshot(h, out);
    CHECK_EQ(out->count, 0);
    CHECK_EQ(out->sum_ns, 0);
    CHECK_EQ(rtudp_hist_percentile(out, 99), 0);
    /* in place */
    h->buckets[3] = 2;
    rtudp_hist_snapshot(h, h);
    CHECK_EQ(h->count, 2);
    CHECK_EQ(h->min_ns, 3);
    CHECK_EQ(h->max_ns, 3);
    /* a hostile histogram (every word all ones) gives numbers, not a crash */
    memset(h, 0xff, sizeof *h);
    rtudp_hist_snapshot(h, out);
    (void)rtudp_hist_percentile(h, 50);
    (void)rtudp_hist_percentile(out, 99.9);
    rtudp_hist_diff(h, out, out);
    rtudp_hist_merge(out, h);
    free(h);
    free(out);
}

struct writer {
    struct rtudp_hist *h;
    uint64_t n;
    atomic_bool done;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint64_t s = 6;
    for (uint64_t i = 0; i < w->n; i++)
        rtudp_hist_record(w->h, i % 1000 == 0 ? -1 : (int64_t)rnd_log(&s, 37));
    atomic_store(&w->done, true);
    return NULL;
}

/* readers snapshot while the owner records: nothing ever goes backwards */
static void test_hist_snapshot_concurrent(void)
{
    struct writer w = {hist_new(), 3000000, false};
    struct rtudp_hist *prev = hist_new(), *cur = hist_new(), *d = hist_new();
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, writer_main, &w), 0);
    uint64_t snaps = 0, moved = 0;
    int64_t deadline = now_ns() + 30000 * NS_PER_MS;
    while (!atomic_load(&w.done)) {
        CHECK(now_ns() < deadline);
        rtudp_hist_snapshot(w.h, cur);
        snaps++;
        check_consistent(cur);
        CHECK(cur->count >= prev->count);
        moved += cur->count != prev->count;
        for (uint32_t i = 0; i < NB; i++)
            CHECK(cur->buckets[i] >= prev->buckets[i]);
        CHECK(cur->negative >= prev->negative);
        CHECK(cur->clamped >= prev->clamped);
        if (cur->count) {
            CHECK(cur->min_ns <= cur->max_ns);
            CHECK(rtudp_hist_percentile(cur, 50) <= rtudp_hist_percentile(cur, 99));
        }
        /* what happened in between is a proper histogram too */
        rtudp_hist_diff(cur, prev, d);
        check_consistent(d);
        CHECK_EQ(d->count, cur->count - prev->count);
        struct rtudp_hist *tmp = prev;
        prev = cur;
        cur = tmp;
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    /* once the writer is done, a snapshot is exact */
    rtudp_hist_snapshot(w.h, cur);
    check_same(cur, w.h);
    CHECK_EQ(cur->count, w.n);
    CHECK_EQ(cur->negative, w.n / 1000);
    CHECK(snaps > 0);
    printf("  %llu snapshots, %llu saw new values\n", (unsigned long long)snaps,
           (unsigned long long)moved);
    free(w.h);
    free(prev);
    free(cur);
    free(d);
}

/* ------------------------------------------------------------------ main */


static const struct test tests[] = {
    T(test_hist_bucket_bounds),
    T(test_hist_index_random),
    T(test_hist_precision),
    T(test_hist_record_basic),
    T(test_hist_clamp_negative),
    T(test_hist_percentile_edges),
    T(test_hist_percentile_random),
    T(test_hist_percentile_rank_exact),
    T(test_hist_merge),
    T(test_hist_diff),
    T(test_hist_snapshot_repairs),
    T(test_hist_snapshot_concurrent),
};

HARNESS_MAIN(tests)
