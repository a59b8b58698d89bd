/*
 * test_histbatch.c - a send batch's lateness values, recorded after its sends
 * (csrc/worker/histbatch.c).
 *
 * What a user relies on: every value a departure gives ends up in its channel's
 * histogram, exactly as if recorded at once (count, sum, min, max, buckets), once
 * the batch ends; nothing is recorded twice or lost when more come than a batch
 * keeps.  Each histogram is compared with a twin recorded directly, value by value.
 * Histograms are malloc'd at their exact size: AddressSanitizer reports any access
 * outside one.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "histbatch.h"

#include "harness.h"

static struct rtudp_hist *new_hist(void)
{
    struct rtudp_hist *h = calloc(1, sizeof *h);
    CHECK(h != NULL);
    return h;
}

static uint64_t count_of(const struct rtudp_hist *h)
{
    return atomic_load_explicit(&h->count, memory_order_relaxed);
}

static bool same_hist(const struct rtudp_hist *a, const struct rtudp_hist *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static void test_values_kept_while_open_are_recorded_at_the_end(void)
{
    static struct rtudp_histbatch batch;
    struct rtudp_hist *h[2] = {new_hist(), new_hist()}, *twin[2] = {new_hist(), new_hist()};
    const int64_t values[] = {750000, -5, 120, 68719476736LL, 999999, 750000};
    rtudp_histbatch_begin(&batch);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint64_t times = 1 + i % 3;
        rtudp_histbatch_add(&batch, h[i % 2], values[i], times);
        rtudp_hist_record_n(twin[i % 2], values[i], times);
    }
    CHECK_EQ(count_of(h[0]), 0u); /* kept, not yet recorded */
    CHECK_EQ(count_of(h[1]), 0u);
    rtudp_histbatch_end(&batch);
    for (int k = 0; k < 2; k++) {
        CHECK(same_hist(h[k], twin[k]));
        free(h[k]);
        free(twin[k]);
    }
}

static void test_a_closed_batch_records_at_once(void)
{
    static struct rtudp_histbatch batch;
    struct rtudp_hist *h = new_hist();
    rtudp_histbatch_add(&batch, h, 1000, 2); /* never begun */
    CHECK_EQ(count_of(h), 2u);
    rtudp_histbatch_begin(&batch);
    rtudp_histbatch_end(&batch);
    rtudp_histbatch_add(&batch, h, 1000, 1); /* ended */
    CHECK_EQ(count_of(h), 3u);
    rtudp_histbatch_add(NULL, h, 1000, 1); /* a channel with no batch */
    CHECK_EQ(count_of(h), 4u);
    rtudp_histbatch_end(&batch); /* nothing kept: records nothing */
    CHECK_EQ(count_of(h), 4u);
    free(h);
}

static void test_more_than_a_batch_keeps_loses_nothing(void)
{
    static struct rtudp_histbatch batch;
    enum { N = 3 * RTUDP_HISTBATCH_MAX + 7 };
    struct rtudp_hist *h = new_hist(), *twin = new_hist();
    uint64_t seed = 42;
    rtudp_histbatch_begin(&batch);
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t v = (int64_t)(seed >> 40); /* up to 2^24 ns */
        rtudp_histbatch_add(&batch, h, v, 1);
        rtudp_hist_record_n(twin, v, 1);
    }
    CHECK(count_of(h) <= (uint64_t)N);
    CHECK(count_of(h) >= (uint64_t)(N - RTUDP_HISTBATCH_MAX));
    rtudp_histbatch_end(&batch);
    CHECK_EQ(count_of(h), (uint64_t)N);
    CHECK(same_hist(h, twin));
    free(h);
    free(twin);
}

static const struct test tests[] = {
    T(test_values_kept_while_open_are_recorded_at_the_end),
    T(test_a_closed_batch_records_at_once),
    T(test_more_than_a_batch_keeps_loses_nothing),
};

HARNESS_MAIN(tests)
