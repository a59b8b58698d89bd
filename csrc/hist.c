/*
 * hist.c - the latency histogram of rtudp_shm.h (see hist.h for the buckets).
 *
 * A histogram in shared memory has one writer (its owner) and any number of
 * lock-free readers.  Every word is accessed through <stdatomic.h> casts, as in
 * ring.c: the writer's relaxed stores and the readers' relaxed loads are each
 * single, untorn 64-bit accesses, and there is no data race for the compiler to
 * exploit.  No ordering between words is promised, so a reader can see a bucket
 * bumped before the count that goes with it (or the reverse); rtudp_hist_snapshot
 * repairs that in its private copy, and everything that computes from a histogram
 * takes the bucket sum, not `count`, as the total.  Nothing here indexes memory
 * with a value read from shared memory, so a corrupt histogram gives wrong
 * numbers, never a crash.
 */
#include "hist.h"
#include "shm_access.h"

#include <stdatomic.h>
#include <stdbool.h>

/* a word with a single writer: no read-modify-write needed */

#define NBUCKETS ((uint32_t)RTUDP_HIST_BUCKETS)
#define LINEAR ((uint64_t)1 << RTUDP_HIST_SUB_BITS)           /* 256 one-value buckets */
#define HALF ((uint64_t)1 << (RTUDP_HIST_SUB_BITS - 1))       /* 128 buckets per octave */
#define MAX_VALUE (((uint64_t)1 << RTUDP_HIST_MAX_BIT) - 1)   /* larger values clamp here */

_Static_assert(sizeof(unsigned long long) == sizeof(uint64_t), "__builtin_clzll takes a uint64_t");

uint32_t rtudp_hist_index(uint64_t v)
{
    if (v < LINEAR)
        return (uint32_t)v;
    if (v > MAX_VALUE)
        return NBUCKETS - 1;
    uint32_t k = 63u - (uint32_t)__builtin_clzll(v); /* 2^k <= v < 2^(k+1), k in 8..35 */
    /* the top 8 bits of v (128..255) pick one of 128 buckets of width 2^(k-7) */
    return (uint32_t)(LINEAR + (k - RTUDP_HIST_SUB_BITS) * HALF +
                      ((v >> (k - (RTUDP_HIST_SUB_BITS - 1))) - HALF));
}

uint64_t rtudp_hist_lower(uint32_t i)
{
    if (i >= NBUCKETS)
        i = NBUCKETS - 1;
    if (i < LINEAR)
        return i;
    uint32_t j = i - (uint32_t)LINEAR;
    uint32_t shift = j / (uint32_t)HALF + 1; /* k - 7: log2 of the bucket width */
    return (HALF + j % HALF) << shift;
}

uint64_t rtudp_hist_upper(uint32_t i)
{
    if (i >= NBUCKETS)
        i = NBUCKETS - 1;
    if (i < LINEAR)
        return i;
    uint32_t shift = (i - (uint32_t)LINEAR) / (uint32_t)HALF + 1;
    return rtudp_hist_lower(i) + ((uint64_t)1 << shift) - 1;
}

void rtudp_hist_record(struct rtudp_hist *h, int64_t v_ns)
{
    rtudp_hist_record_n(h, v_ns, 1);
}

/* the value rtudp_hist_record_n files v_ns under: 0 for a negative one, clamped */
static uint64_t filed_value(int64_t v_ns)
{
    uint64_t v = v_ns < 0 ? 0 : (uint64_t)v_ns;
    return v > MAX_VALUE ? MAX_VALUE : v;
}

void rtudp_hist_prefetch_record(struct rtudp_hist *h, int64_t v_ns)
{
    __builtin_prefetch(h, 1, 3);
    __builtin_prefetch(&h->buckets[rtudp_hist_index(filed_value(v_ns))], 1, 3);
}

void rtudp_hist_record_n(struct rtudp_hist *h, int64_t v_ns, uint64_t times)
{
    if (times == 0)
        return;
    if (v_ns < 0)
        bump(&h->negative, times);
    else if ((uint64_t)v_ns > MAX_VALUE)
        bump(&h->clamped, times);
    uint64_t v = filed_value(v_ns);
    uint64_t *bucket = &h->buckets[rtudp_hist_index(v)];
    uint64_t n = load_relaxed(&h->count);
    /* min/max are meaningless while count is 0 (a fresh or reset histogram) */
    if (n == 0 || v < load_relaxed(&h->min_ns))
        store_relaxed(&h->min_ns, v);
    if (n == 0 || v > load_relaxed(&h->max_ns))
        store_relaxed(&h->max_ns, v);
    bump(bucket, times);
    bump(&h->sum_ns, v * times);
    /* last, so a reader that sees the new count very likely sees the rest too (no
     * promise: the snapshot repairs what it catches half-done) */
    store_relaxed(&h->count, n + times);
}

void rtudp_hist_reset(struct rtudp_hist *h)
{
    store_relaxed(&h->count, 0);
    store_relaxed(&h->sum_ns, 0);
    store_relaxed(&h->min_ns, 0);
    store_relaxed(&h->max_ns, 0);
    store_relaxed(&h->clamped, 0);
    store_relaxed(&h->negative, 0);
    store_relaxed(&h->reserved[0], 0);
    store_relaxed(&h->reserved[1], 0);
    for (uint32_t i = 0; i < NBUCKETS; i++)
        store_relaxed(&h->buckets[i], 0);
}

/*
 * Make count, min and max agree with the buckets of a copy: count = bucket sum;
 * min belongs in the lowest non-empty bucket and max in the highest (the bucket of
 * the smallest value is the lowest non-empty one), else they are replaced by that
 * bucket's bound.  An empty copy gets count = sum = min = max = 0.
 */
static void make_consistent(struct rtudp_hist *h)
{
    uint64_t total = 0;
    uint32_t lo = NBUCKETS, hi = 0;
    for (uint32_t i = 0; i < NBUCKETS; i++) {
        uint64_t c = load_relaxed(&h->buckets[i]);
        if (c) {
            total += c;
            if (lo == NBUCKETS)
                lo = i;
            hi = i;
        }
    }
    store_relaxed(&h->count, total);
    if (total == 0) {
        store_relaxed(&h->sum_ns, 0);
        store_relaxed(&h->min_ns, 0);
        store_relaxed(&h->max_ns, 0);
        return;
    }
    if (rtudp_hist_index(load_relaxed(&h->min_ns)) != lo)
        store_relaxed(&h->min_ns, rtudp_hist_lower(lo));
    if (rtudp_hist_index(load_relaxed(&h->max_ns)) != hi)
        store_relaxed(&h->max_ns, rtudp_hist_upper(hi));
}

/* word-by-word copy; out is private to the caller but written the same way, so a
 * snapshot may also be published to shared memory */
static void copy_words(const struct rtudp_hist *h, struct rtudp_hist *out)
{
    store_relaxed(&out->count, load_relaxed(&h->count));
    store_relaxed(&out->sum_ns, load_relaxed(&h->sum_ns));
    store_relaxed(&out->min_ns, load_relaxed(&h->min_ns));
    store_relaxed(&out->max_ns, load_relaxed(&h->max_ns));
    store_relaxed(&out->clamped, load_relaxed(&h->clamped));
    store_relaxed(&out->negative, load_relaxed(&h->negative));
    store_relaxed(&out->reserved[0], load_relaxed(&h->reserved[0]));
    store_relaxed(&out->reserved[1], load_relaxed(&h->reserved[1]));
    for (uint32_t i = 0; i < NBUCKETS; i++)
        store_relaxed(&out->buckets[i], load_relaxed(&h->buckets[i]));
}

void rtudp_hist_snapshot(const struct rtudp_hist *h, struct rtudp_hist *out)
{
    if (h != out)
        copy_words(h, out);
    make_consistent(out);
}

void rtudp_hist_merge(struct rtudp_hist *into, const struct rtudp_hist *from)
{
    uint64_t n_from = load_relaxed(&from->count);
    uint64_t n_into = load_relaxed(&into->count);
    if (n_from == 0)
        return;
    uint64_t fmin = load_relaxed(&from->min_ns), fmax = load_relaxed(&from->max_ns);
    if (n_into == 0 || fmin < load_relaxed(&into->min_ns))
        store_relaxed(&into->min_ns, fmin);
    if (n_into == 0 || fmax > load_relaxed(&into->max_ns))
        store_relaxed(&into->max_ns, fmax);
    bump(&into->sum_ns, load_relaxed(&from->sum_ns));
    bump(&into->clamped, load_relaxed(&from->clamped));
    bump(&into->negative, load_relaxed(&from->negative));
    for (uint32_t i = 0; i < NBUCKETS; i++) {
        uint64_t c = load_relaxed(&from->buckets[i]);
        if (c)
            bump(&into->buckets[i], c);
    }
    store_relaxed(&into->count, n_into + n_from);
}

/* a - b for counters that only grow between resets (0 if b is ahead: a reset) */
static uint64_t sub_sat(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

void rtudp_hist_diff(const struct rtudp_hist *now, const struct rtudp_hist *before,
                     struct rtudp_hist *out)
{
    /* read everything that is needed from now/before before out (which may alias
     * either) is written */
    bool was_reset = load_relaxed(&now->count) < load_relaxed(&before->count);
    for (uint32_t i = 0; i < NBUCKETS && !was_reset; i++)
        was_reset = load_relaxed(&now->buckets[i]) < load_relaxed(&before->buckets[i]);
    if (was_reset) {
        /* the owner zeroed the histogram between the two snapshots: everything
         * now holds happened in the interval (plus what was lost before the reset,
         * which no one can recover) */
        rtudp_hist_snapshot(now, out);
        return;
    }
    uint64_t now_min = load_relaxed(&now->min_ns), now_max = load_relaxed(&now->max_ns);
    uint64_t sum = load_relaxed(&now->sum_ns) - load_relaxed(&before->sum_ns); /* mod 2^64 */
    uint64_t clamped = sub_sat(load_relaxed(&now->clamped), load_relaxed(&before->clamped));
    uint64_t negative = sub_sat(load_relaxed(&now->negative), load_relaxed(&before->negative));

    uint64_t total = 0;
    uint32_t lo = NBUCKETS, hi = 0;
    for (uint32_t i = 0; i < NBUCKETS; i++) {
        uint64_t c = load_relaxed(&now->buckets[i]) - load_relaxed(&before->buckets[i]);
        store_relaxed(&out->buckets[i], c);
        if (c) {
            total += c;
            if (lo == NBUCKETS)
                lo = i;
            hi = i;
        }
    }
    store_relaxed(&out->reserved[0], 0);
    store_relaxed(&out->reserved[1], 0);
    store_relaxed(&out->clamped, clamped);
    store_relaxed(&out->negative, negative);
    store_relaxed(&out->count, total);
    if (total == 0) {
        store_relaxed(&out->sum_ns, 0);
        store_relaxed(&out->min_ns, 0);
        store_relaxed(&out->max_ns, 0);
        return;
    }
    store_relaxed(&out->sum_ns, sum);
    /*
     * The interval's extremes are unknown; their buckets bound them.  now's min is
     * <= every value recorded so far, the interval's included, so when it lies in
     * the interval's lowest bucket it is a tighter lower bound (same for max).
     */
    uint64_t mn = rtudp_hist_lower(lo), mx = rtudp_hist_upper(hi);
    if (now_min > mn && now_min <= rtudp_hist_upper(lo))
        mn = now_min;
    if (now_max < mx && now_max >= rtudp_hist_lower(hi))
        mx = now_max;
    store_relaxed(&out->min_ns, mn);
    store_relaxed(&out->max_ns, mx);
}

uint64_t rtudp_hist_percentile(const struct rtudp_hist *h, double p)
{
    /* the bucket sum is the total: on a copy that was never made consistent it
     * may differ from count, and the walk below must end inside the buckets */
    uint64_t total = 0;
    for (uint32_t i = 0; i < NBUCKETS; i++)
        total += load_relaxed(&h->buckets[i]);
    if (total == 0)
        return 0;
    uint64_t mn = load_relaxed(&h->min_ns), mx = load_relaxed(&h->max_ns);
    if (!(p > 0.0)) /* p <= 0, or NaN */
        return mn;
    /* nearest rank: the smallest value with at least p % of the values <= it.
     * Multiply before dividing so that e.g. 90 * 10 / 100 is exactly 9. */
    double r = p * (double)total / 100.0;
    /* p is rarely exact in binary (99.9, 0.1): shave the rounding error off, so
     * that 99.9 % of 1000 values is rank 999, not 1000 */
    r -= r * 0x1p-50;
    uint64_t rank = total;
    if (r < (double)total) { /* and r > 0: the conversion below is defined */
        rank = (uint64_t)r;
        if ((double)rank < r) /* ceil() without libm */
            rank++;
        if (rank == 0)
            rank = 1;
    }
    uint64_t seen = 0;
    uint32_t i = 0;
    for (; i < NBUCKETS - 1; i++) {
        seen += load_relaxed(&h->buckets[i]);
        if (seen >= rank)
            break;
    }
    uint64_t v = rtudp_hist_upper(i);
    if (mn <= mx) {
        if (v > mx)
            v = mx;
        if (v < mn)
            v = mn;
    }
    return v;
}
