/*
 * test_udt_losslist.c - sequence arithmetic (csrc/udt/udt_seq.h) and the loss
 * lists (csrc/udt/udt_losslist.c): insert/remove/remove-up-to/pop across the
 * 2^31 wrap, merging, splitting, the bounds (span, capacity), NAK encode and
 * decode of ranges; and a randomized run against a bitmap model over a
 * window that straddles the wrap.
 */
#include "udt/udt_losslist.h"
#include "udt/udt_seq.h"

#include "harness.h"

static const uint32_t TOP = UDT_SEQ_MAX; /* 0x7FFFFFFF */

static void seq_arithmetic(void)
{
    CHECK(udt_seq_cmp(5, 7) < 0);
    CHECK(udt_seq_cmp(7, 5) > 0);
    CHECK_EQ(udt_seq_cmp(9, 9), 0);
    /* across the wrap: 0 comes after 0x7FFFFFFF */
    CHECK(udt_seq_cmp(0, TOP) > 0);
    CHECK(udt_seq_cmp(TOP, 0) < 0);
    CHECK(udt_seq_cmp(3, TOP - 3) > 0);
    CHECK_EQ(udt_seq_off(TOP, 0), 1);
    CHECK_EQ(udt_seq_off(0, TOP), -1);
    CHECK_EQ(udt_seq_off(TOP - 9, 10), 20);
    CHECK_EQ(udt_seq_off(10, TOP - 9), -20);
    CHECK_EQ(udt_seq_off(100, 50), -50);
    CHECK_EQ(udt_seq_len(5, 5), 1);
    CHECK_EQ(udt_seq_len(5, 9), 5);
    CHECK_EQ(udt_seq_len(TOP, 0), 2);
    CHECK_EQ(udt_seq_len(TOP - 1, 1), 4);
    CHECK_EQ(udt_seq_inc(TOP), 0);
    CHECK_EQ(udt_seq_dec(0), TOP);
    CHECK_EQ(udt_seq_add(TOP, 1), 0);
    CHECK_EQ(udt_seq_add(TOP - 4, 10), 5);
    CHECK_EQ(udt_seq_add(5, -10), TOP - 4);
    CHECK_EQ(udt_seq_add(0, INT32_MIN), 0); /* -2^31 is a full turn */
    /* the threshold: just under 2^30 apart is "no wrap", beyond it flips */
    CHECK(udt_seq_cmp(0, 0x3FFFFFFE) < 0);
    CHECK(udt_seq_cmp(0, 0x40000000) > 0);
    /* bit 31 on input is ignored, never UB */
    CHECK_EQ(udt_seq_cmp(0x80000005u, 5), 0);
    CHECK_EQ(udt_seq_off(0xFFFFFFFFu, 0), 1);
    /* messages wrap at 2^29 */
    CHECK_EQ(udt_msg_inc(UDT_MSG_MAX), 0);
    CHECK(udt_msg_cmp(0, UDT_MSG_MAX) > 0);
    CHECK_EQ(udt_msg_off(UDT_MSG_MAX - 1, 2), 4);
    CHECK_EQ(udt_msg_off(2, UDT_MSG_MAX - 1), -4);
    CHECK_EQ(udt_ackno_inc(UDT_ACKNO_MAX), 0);
    /* consistency over random pairs near the wrap: a + off(a, b) == b */
    uint64_t s = 3;
    for (int i = 0; i < 100000; i++) {
        uint32_t a = (uint32_t)(TOP - rnd(&s, 1000000)) & TOP;
        uint32_t b = udt_seq_add(a, (int32_t)rnd(&s, 2000000) - 1000000);
        CHECK_EQ(udt_seq_add(a, udt_seq_off(a, b)), b);
        int32_t c = udt_seq_cmp(a, b), o = udt_seq_off(a, b);
        CHECK((c < 0) == (o > 0) && (c == 0) == (o == 0));
        if (o >= 0)
            CHECK_EQ(udt_seq_len(a, b), (uint32_t)o + 1);
    }
}

static struct udt_losslist *make(uint32_t cap, uint32_t span)
{
    size_t sz = udt_ll_size(cap);
    CHECK(sz > 0);
    struct udt_losslist *ll = malloc(sz);
    CHECK(ll != NULL);
    CHECK_EQ(udt_ll_init(ll, cap, span), UDT_OK);
    return ll;
}

/* the list's ranges are exactly lo0,hi0, lo1,hi1, ... */
static void expect(const struct udt_losslist *ll, const uint32_t *r, uint32_t n)
{
    CHECK_EQ(udt_ll_ranges(ll), n);
    uint64_t cnt = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct udt_range x = udt_ll_range(ll, i);
        CHECK_EQ(x.lo, r[2 * i]);
        CHECK_EQ(x.hi, r[2 * i + 1]);
        cnt += udt_seq_len(x.lo, x.hi);
    }
    CHECK_EQ(udt_ll_count(ll), cnt);
}
#define EXPECT(ll, ...)                                                                            \
    do {                                                                                           \
        const uint32_t r_[] = {__VA_ARGS__};                                                       \
        AT_LINE(expect(ll, r_, (uint32_t)(sizeof r_ / sizeof *r_ / 2)));                           \
    } while (0)

static void insert_merge_remove(void)
{
    struct udt_losslist *ll = make(16, 1000);
    CHECK_EQ(udt_ll_insert(ll, 10, 20), 11);
    CHECK_EQ(udt_ll_insert(ll, 30, 30), 1);
    CHECK_EQ(udt_ll_insert(ll, 5, 7), 3);
    EXPECT(ll, 5, 7, 10, 20, 30, 30);
    CHECK_EQ(udt_ll_insert(ll, 15, 25), 5); /* overlaps 10..20 */
    EXPECT(ll, 5, 7, 10, 25, 30, 30);
    CHECK_EQ(udt_ll_insert(ll, 8, 9), 2); /* adjacent on both sides: one range */
    EXPECT(ll, 5, 25, 30, 30);
    CHECK_EQ(udt_ll_insert(ll, 26, 29), 4);
    EXPECT(ll, 5, 30);
    CHECK_EQ(udt_ll_insert(ll, 6, 28), 0); /* all there */
    CHECK_EQ(udt_ll_insert(ll, 1, 40), 14);
    EXPECT(ll, 1, 40);
    CHECK(udt_ll_contains(ll, 1) && udt_ll_contains(ll, 40) && !udt_ll_contains(ll, 41));
    /* remove splits */
    CHECK_EQ(udt_ll_remove(ll, 20), 1);
    EXPECT(ll, 1, 19, 21, 40);
    CHECK_EQ(udt_ll_remove(ll, 20), 0);
    CHECK_EQ(udt_ll_remove_range(ll, 15, 25), 10);
    EXPECT(ll, 1, 14, 26, 40);
    CHECK_EQ(udt_ll_remove_range(ll, 10, 30), 10);
    EXPECT(ll, 1, 9, 31, 40);
    CHECK_EQ(udt_ll_remove(ll, 1), 1);
    CHECK_EQ(udt_ll_remove(ll, 40), 1);
    EXPECT(ll, 2, 9, 31, 39);
    CHECK_EQ(udt_ll_remove_upto(ll, 1), 0);
    CHECK_EQ(udt_ll_remove_upto(ll, 32), 10);
    EXPECT(ll, 33, 39);
    uint32_t s;
    CHECK_EQ(udt_ll_first(ll, &s), 1);
    CHECK_EQ(s, 33);
    for (uint32_t want = 33; want <= 39; want++) {
        CHECK_EQ(udt_ll_pop(ll, &s), 1);
        CHECK_EQ(s, want);
    }
    CHECK_EQ(udt_ll_pop(ll, &s), 0);
    CHECK_EQ(udt_ll_first(ll, &s), 0);
    CHECK_EQ(udt_ll_count(ll), 0);
    /* bad arguments */
    CHECK_EQ(udt_ll_insert(ll, 9, 5), UDT_E_ARG);
    CHECK_EQ(udt_ll_insert(ll, 0x80000001u, 0x80000002u), UDT_E_ARG);
    CHECK_EQ(udt_ll_remove_range(ll, 9, 5), UDT_E_ARG);
    CHECK_EQ(udt_ll_remove_upto(ll, 0x80000000u), UDT_E_ARG);
    CHECK_EQ(udt_ll_init(ll, 16, 0), UDT_E_ARG);
    CHECK_EQ(udt_ll_init(ll, 16, UDT_LL_MAX_SPAN + 1), UDT_E_ARG);
    CHECK_EQ(udt_ll_size(0), 0);
    free(ll);
}

static void across_the_wrap(void)
{
    struct udt_losslist *ll = make(8, 100000);
    CHECK_EQ(udt_ll_insert(ll, 0, 16), 17);
    CHECK_EQ(udt_ll_insert(ll, TOP - 15, TOP), 16); /* before 0: goes first, touches it */
    EXPECT(ll, TOP - 15, 16);
    CHECK_EQ(udt_ll_count(ll), 33);
    CHECK(udt_ll_contains(ll, TOP) && udt_ll_contains(ll, 0) && !udt_ll_contains(ll, TOP - 16));
    /* a range that itself wraps */
    CHECK_EQ(udt_ll_insert(ll, TOP - 100, 50), 101 + 51 - 33);
    EXPECT(ll, TOP - 100, 50);
    CHECK_EQ(udt_ll_remove_range(ll, TOP - 2, 2), 6);
    EXPECT(ll, TOP - 100, TOP - 3, 3, 50);
    CHECK_EQ(udt_ll_remove_upto(ll, TOP), 98);
    EXPECT(ll, 3, 50);
    CHECK_EQ(udt_ll_insert(ll, TOP - 1, 1), 4);
    EXPECT(ll, TOP - 1, 1, 3, 50);
    uint32_t s;
    CHECK_EQ(udt_ll_pop(ll, &s), 1);
    CHECK_EQ(s, TOP - 1);
    CHECK_EQ(udt_ll_pop(ll, &s), 1);
    CHECK_EQ(s, TOP);
    CHECK_EQ(udt_ll_pop(ll, &s), 1);
    CHECK_EQ(s, 0);
    CHECK_EQ(udt_ll_remove_upto(ll, 10), 9); /* 1, 3..10 */
    EXPECT(ll, 11, 50);
    free(ll);
}

static void bounds(void)
{
    /* span: a NAK far from what is listed is refused, nothing changes */
    struct udt_losslist *ll = make(8, 1000);
    CHECK_EQ(udt_ll_insert(ll, TOP - 10, 10), 22);
    CHECK_EQ(udt_ll_insert(ll, 2000, 2000), UDT_E_RANGE);
    CHECK_EQ(udt_ll_insert(ll, TOP - 2000, TOP - 1500), UDT_E_RANGE);
    CHECK_EQ(udt_ll_insert(ll, 500, 1500), UDT_E_RANGE);
    CHECK_EQ(udt_ll_insert(ll, 0, 2000), UDT_E_RANGE); /* longer than the span itself */
    CHECK_EQ(udt_ll_insert(ll, 900, 988), 89);         /* up to TOP-10 + 999 = 988 */
    CHECK_EQ(udt_ll_insert(ll, 989, 989), UDT_E_RANGE);
    EXPECT(ll, TOP - 10, 10, 900, 988);
    free(ll);

    /* capacity: an insert that needs a slot, and a split, refused when full */
    ll = make(3, 10000);
    CHECK_EQ(udt_ll_insert(ll, 10, 20), 11);
    CHECK_EQ(udt_ll_insert(ll, 30, 40), 11);
    CHECK_EQ(udt_ll_insert(ll, 50, 60), 11);
    CHECK_EQ(udt_ll_insert(ll, 70, 70), UDT_E_FULL);
    CHECK_EQ(udt_ll_insert(ll, 0, 5), UDT_E_FULL);
    CHECK_EQ(udt_ll_remove(ll, 35), UDT_E_FULL);
    EXPECT(ll, 10, 20, 30, 40, 50, 60);
    /* merging and trimming still work when full */
    CHECK_EQ(udt_ll_insert(ll, 21, 29), 9);
    EXPECT(ll, 10, 40, 50, 60);
    CHECK_EQ(udt_ll_insert(ll, 70, 70), 1);
    CHECK_EQ(udt_ll_remove(ll, 10), 1);
    CHECK_EQ(udt_ll_remove_range(ll, 55, 80), 7);
    EXPECT(ll, 11, 40, 50, 54);
    free(ll);
}

static void nak_encode_decode(void)
{
    struct udt_losslist *ll = make(16, 100000);
    udt_ll_insert(ll, TOP - 1, 2); /* range across the wrap */
    udt_ll_insert(ll, 7, 7);
    udt_ll_insert(ll, 10, 12);
    udt_ll_insert(ll, 20, 20);
    uint32_t w[16];
    size_t n = udt_ll_encode_nak(ll, w, 16);
    CHECK_EQ(n, 6);
    CHECK_EQ(w[0], 0x80000000u | (TOP - 1));
    CHECK_EQ(w[1], 2);
    CHECK_EQ(w[2], 7);
    CHECK_EQ(w[3], 0x8000000Au);
    CHECK_EQ(w[4], 12);
    CHECK_EQ(w[5], 20);
    CHECK_EQ(udt_nak_check(w, n), UDT_OK);
    /* a limit that cuts a range leaves it for the next report */
    CHECK_EQ(udt_ll_encode_nak(ll, w, 4), 3);
    CHECK_EQ(udt_ll_encode_nak(ll, w, 1), 0);
    /* decode */
    n = udt_ll_encode_nak(ll, w, 16);
    struct udt_range r[8];
    size_t used;
    CHECK_EQ(udt_nak_decode(w, n, r, 8, &used), 4);
    CHECK_EQ(used, 6);
    CHECK(r[0].lo == TOP - 1 && r[0].hi == 2);
    CHECK(r[1].lo == 7 && r[1].hi == 7);
    CHECK(r[2].lo == 10 && r[2].hi == 12);
    CHECK(r[3].lo == 20 && r[3].hi == 20);
    CHECK_EQ(udt_nak_decode(w, n, r, 2, &used), 2);
    CHECK_EQ(used, 3);
    /* malformed */
    const uint32_t bad1[] = {0x80000005u};
    const uint32_t bad2[] = {0x80000005u, 0x80000009u};
    const uint32_t bad3[] = {0x80000009u, 5};
    CHECK_EQ(udt_nak_decode(bad1, 1, r, 8, &used), UDT_E_NAK);
    CHECK_EQ(udt_nak_decode(bad2, 2, r, 8, &used), UDT_E_NAK);
    CHECK_EQ(udt_nak_decode(bad3, 2, r, 8, &used), UDT_E_NAK);
    CHECK_EQ(used, 0);
    /* encode_range */
    uint32_t two[2];
    CHECK_EQ(udt_nak_encode_range(5, 5, two), 1);
    CHECK_EQ(two[0], 5);
    CHECK_EQ(udt_nak_encode_range(TOP, 3, two), 2);
    CHECK_EQ(two[0], 0xFFFFFFFFu);
    CHECK_EQ(two[1], 3);
    /* decoded ranges insert back into an equal list */
    struct udt_losslist *b = make(16, 100000);
    n = udt_ll_encode_nak(ll, w, 16);
    int k = udt_nak_decode(w, n, r, 8, NULL);
    for (int i = 0; i < k; i++)
        CHECK(udt_ll_insert(b, r[i].lo, r[i].hi) > 0);
    CHECK_EQ(udt_ll_count(b), udt_ll_count(ll));
    CHECK_EQ(udt_ll_ranges(b), udt_ll_ranges(ll));
    free(b);
    free(ll);
}

/* ------------------------------------------------------------------ model */

#define WIN 4096u
static const uint32_t BASE = TOP - 2000; /* the window straddles the wrap */

static uint32_t sq(uint32_t i) { return udt_seq_add(BASE, (int32_t)i); }

static void model_check(const struct udt_losslist *ll, const uint8_t *bit)
{
    uint64_t cnt = 0;
    int first = -1;
    for (uint32_t i = 0; i < WIN; i++) {
        cnt += bit[i];
        if (bit[i] && first < 0)
            first = (int)i;
        CHECK_EQ(udt_ll_contains(ll, sq(i)), bit[i]);
    }
    CHECK_EQ(udt_ll_count(ll), cnt);
    uint32_t f;
    if (first < 0) {
        CHECK_EQ(udt_ll_first(ll, &f), 0);
    } else {
        CHECK_EQ(udt_ll_first(ll, &f), 1);
        CHECK_EQ(f, sq((uint32_t)first));
    }
    /* ranges are disjoint, non-adjacent and in order */
    for (uint32_t i = 0; i + 1 < udt_ll_ranges(ll); i++) {
        struct udt_range a = udt_ll_range(ll, i), b = udt_ll_range(ll, i + 1);
        CHECK(udt_seq_cmp(a.lo, a.hi) <= 0);
        CHECK(udt_seq_off(a.hi, b.lo) >= 2);
    }
    /* NAK round trip of the whole list */
    static uint32_t w[WIN];
    size_t n = udt_ll_encode_nak(ll, w, WIN);
    static struct udt_range r[WIN];
    int k = udt_nak_decode(w, n, r, WIN, NULL);
    CHECK_EQ(k, udt_ll_ranges(ll));
    for (int i = 0; i < k; i++) {
        struct udt_range x = udt_ll_range(ll, (uint32_t)i);
        CHECK(r[i].lo == x.lo && r[i].hi == x.hi);
    }
}

static void run_model(uint32_t cap, uint64_t seed)
{
    struct udt_losslist *ll = make(cap, WIN);
    static uint8_t bit[WIN];
    memset(bit, 0, sizeof bit);
    uint64_t s = seed;
    int full = 0;
    for (int step = 0; step < 20000; step++) {
        uint32_t a = (uint32_t)rnd(&s, WIN), len = 1 + (uint32_t)rnd(&s, rnd(&s, 4) ? 8 : 300);
        uint32_t b = a + len - 1 < WIN ? a + len - 1 : WIN - 1;
        int op = (int)rnd(&s, 10);
        static uint8_t before[WIN];
        memcpy(before, bit, WIN);
        int64_t rc = 0, want = 0;
        if (op < 4) { /* insert */
            for (uint32_t i = a; i <= b; i++)
                want += !bit[i], bit[i] = 1;
            rc = udt_ll_insert(ll, sq(a), sq(b));
        } else if (op < 6) { /* remove one */
            want = bit[a];
            bit[a] = 0;
            rc = udt_ll_remove(ll, sq(a));
        } else if (op < 8) { /* remove a range */
            for (uint32_t i = a; i <= b; i++)
                want += bit[i], bit[i] = 0;
            rc = udt_ll_remove_range(ll, sq(a), sq(b));
        } else if (op < 9) { /* ACK: remove up to a */
            for (uint32_t i = 0; i <= a; i++)
                want += bit[i], bit[i] = 0;
            rc = udt_ll_remove_upto(ll, sq(a));
        } else { /* retransmit: pop */
            uint32_t f;
            int got = udt_ll_pop(ll, &f);
            int first = -1;
            for (uint32_t i = 0; i < WIN && first < 0; i++)
                if (bit[i])
                    first = (int)i;
            CHECK_EQ(got, first >= 0);
            if (first >= 0) {
                CHECK_EQ(f, sq((uint32_t)first));
                bit[first] = 0;
            }
            rc = want = 0;
        }
        if (rc == UDT_E_FULL) {
            CHECK(cap < WIN / 2 + 1);
            memcpy(bit, before, WIN); /* refused: unchanged */
            full++;
        } else {
            CHECK_EQ(rc, want);
        }
        if (step % 97 == 0)
            model_check(ll, bit);
    }
    model_check(ll, bit);
    printf("cap %u: %d operations refused as full\n", cap, full);
    free(ll);
}

/* cap = span/2 + 1: never full */
static void model_large_cap(void) { run_model(WIN / 2 + 1, 11); }
/* a small cap: refusals leave the list unchanged */
static void model_small_cap(void) { run_model(24, 12); }

static const struct test tests[] = {
    T(seq_arithmetic),
    T(insert_merge_remove),
    T(across_the_wrap),
    T(bounds),
    T(nak_encode_decode),
    T(model_large_cap),
    T(model_small_cap),
};

HARNESS_MAIN(tests)
