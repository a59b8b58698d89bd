/*
 * test_impair.c - the impairment's draws, verdicts, rate limit and configuration
 * seqlock (csrc/impair.h), and the in-flight tracker's duplicates.
 */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>

#include "impair.h"
#include "inflight.h"

/* splitmix64's published first outputs for seed 0 (the reference implementation) */
static void test_splitmix64_reference(void)
{
    uint64_t s = 0;
    CHECK(rtudp_splitmix64(&s) == 0xe220a8397b1dcdafull);
    CHECK(rtudp_splitmix64(&s) == 0x6e789e6aa1b965f4ull);
    CHECK(rtudp_splitmix64(&s) == 0x06c45d188009454full);
}

static struct rtudp_channel_block *new_block(void)
{
    struct rtudp_channel_block *b = calloc(1, sizeof *b);
    CHECK(b != NULL);
    return b;
}

static void test_publish_read_roundtrip_and_clamp(void)
{
    struct rtudp_channel_block *b = new_block();
    struct rtudp_impair_cfg c = {.where = 0xff, .loss = RTUDP_IMPAIR_ONE * 2, .delay_ns = 1,
                                 .jitter_ns = UINT64_MAX, .reorder_ns = 5, .rate_bps = 8000,
                                 .seed = 42};
    CHECK(rtudp_impair_publish(b, &c, 0) == RTUDP_OK);
    CHECK(b->impair.seq == 2);
    CHECK(b->direct.impaired == 1);
    struct rtudp_impair_cfg out;
    CHECK(rtudp_impair_read(&b->impair, &out) == RTUDP_OK);
    CHECK(out.where == (RTUDP_IMPAIR_TX | RTUDP_IMPAIR_RX));
    CHECK(out.loss == RTUDP_IMPAIR_ONE);
    CHECK(out.delay_ns + out.jitter_ns + out.reorder_ns <= RTUDP_IMPAIR_MAX_DELAY_NS);
    CHECK(out.seed == 42 && out.rate_bps == 8000);
    /* rx only: clients may send directly again */
    c.where = RTUDP_IMPAIR_RX;
    CHECK(rtudp_impair_publish(b, &c, 0) == RTUDP_OK);
    CHECK(b->direct.impaired == 0);
    /* a writer that died holding the lock (seq odd) is taken over after the wait */
    b->impair.seq = 7;
    c.seed = 9;
    CHECK(rtudp_impair_publish(b, &c, 1000) == RTUDP_OK);
    CHECK(b->impair.seq == 10);
    CHECK(rtudp_impair_read(&b->impair, &out) == RTUDP_OK && out.seed == 9);
    /* a reader never takes a copy while the seq is odd */
    b->impair.seq = 11;
    CHECK(rtudp_impair_read(&b->impair, &out) == RTUDP_EFULL);
    free(b);
}

/* the same seed and lengths give the same verdicts; other fields do not change them */
static void test_verdicts_reproducible(void)
{
    struct rtudp_channel_block *b = new_block();
    struct rtudp_impair_cfg c = {.where = RTUDP_IMPAIR_TX, .loss = RTUDP_IMPAIR_ONE / 10,
                                 .seed = 1234};
    CHECK(rtudp_impair_publish(b, &c, 0) == RTUDP_OK);
    struct rtudp_impair a, z;
    memset(&a, 0, sizeof a);
    rtudp_impair_init(&z);
    CHECK(rtudp_impair_refresh(&a, &b->impair, RTUDP_IMPAIR_TX) == 1);
    CHECK(rtudp_impair_refresh(&z, &b->impair, RTUDP_IMPAIR_RX) == 0);
    uint8_t lost_a[10000];
    int lost = 0;
    for (int i = 0; i < 10000; i++) {
        struct rtudp_impair_verdict v;
        rtudp_impair_decide(&a, 100, &v);
        lost_a[i] = v.copies == 0;
        lost += lost_a[i];
    }
    CHECK(lost > 880 && lost < 1120); /* 10 % of 10000, sd 30 */
    /* again, with duplicates and delays switched on: the same losses */
    c.duplicate = RTUDP_IMPAIR_ONE / 2;
    c.delay_ns = 1000;
    c.jitter_ns = 500;
    CHECK(rtudp_impair_publish(b, &c, 0) == RTUDP_OK);
    CHECK(rtudp_impair_refresh(&a, &b->impair, RTUDP_IMPAIR_TX) == 1);
    int dup = 0;
    for (int i = 0; i < 10000; i++) {
        struct rtudp_impair_verdict v;
        rtudp_impair_decide(&a, 100, &v);
        CHECK((v.copies == 0) == lost_a[i]);
        dup += v.copies == 2;
        CHECK(v.hold_ns >= 1000 && v.hold_ns <= 1500);
    }
    CHECK(dup > 4000 && dup < 5000); /* half of the ~9000 not lost */
    free(b);
}

static void test_corrupt_within_datagram(void)
{
    struct rtudp_impair s;
    rtudp_impair_init(&s);
    s.on = 1;
    s.cfg.corrupt = RTUDP_IMPAIR_ONE;
    for (uint32_t len = 1; len < 300; len++) {
        struct rtudp_impair_verdict v;
        rtudp_impair_decide(&s, len, &v);
        CHECK(v.corrupt == 1 && v.byte < len && v.bit < 8 && v.copies == 1);
    }
    struct rtudp_impair_verdict v;
    rtudp_impair_decide(&s, 0, &v);
    CHECK(v.corrupt == 0); /* nothing to flip */
}

static void test_rate_limit_spacing(void)
{
    struct rtudp_impair s;
    rtudp_impair_init(&s);
    s.cfg.rate_bps = 8000000; /* 1 byte a microsecond */
    CHECK(rtudp_impair_rate(&s, 1000, 500) == 1000);
    CHECK(rtudp_impair_rate(&s, 1000, 500) == 501000);   /* after the first's 500 us */
    CHECK(rtudp_impair_rate(&s, 5000000, 10) == 5000000); /* the link was idle */
    /* a bucket of 1000 bytes beyond one datagram: three of 500 back to back, then paced */
    rtudp_impair_init(&s);
    s.cfg.rate_bps = 8000000;
    s.cfg.burst_bytes = 1000;
    CHECK(rtudp_impair_rate(&s, 1000, 500) == 1000);
    CHECK(rtudp_impair_rate(&s, 1000, 500) == 1000);
    CHECK(rtudp_impair_rate(&s, 1000, 500) == 1000);
    CHECK(rtudp_impair_rate(&s, 1000, 500) == 501000);
    CHECK(rtudp_impair_rate(&s, 1000, 500) == 1001000);
    /* idle long enough: the bucket is full again */
    CHECK(rtudp_impair_rate(&s, 10000000, 500) == 10000000);
    CHECK(rtudp_impair_rate(&s, 10000000, 500) == 10000000);
    s.cfg.rate_bps = 0;
    CHECK(rtudp_impair_rate(&s, 7, 1000) == 7);
}

static void test_inflight_duplicate_done_after_both(void)
{
    struct rtudp_inflight f;
    CHECK(rtudp_inflight_init(&f, 8) == RTUDP_OK);
    rtudp_inflight_reset(&f, 0);
    uint32_t slot;
    CHECK(rtudp_inflight_push(&f, 0, 32, &slot) == RTUDP_OK);
    CHECK(rtudp_inflight_again(&f, slot, 0) == RTUDP_OK);
    CHECK(rtudp_inflight_again(&f, slot, 16) == RTUDP_EINVAL); /* wrong record */
    CHECK(rtudp_inflight_done_at(&f, slot, 0) == RTUDP_OK);
    CHECK(rtudp_inflight_release_point(&f) == 0); /* one copy still due */
    CHECK(rtudp_inflight_done_at(&f, slot, 0) == RTUDP_OK);
    CHECK(rtudp_inflight_release_point(&f) == 32);
    CHECK(f.misuse == 1);
    rtudp_inflight_free(&f);
}

/* a writer publishing while a reader copies: every copy is one the writer published */
#define RACE_ROUNDS 20000u
static atomic_int race_done;

static void *race_writer(void *arg)
{
    struct rtudp_channel_block *b = arg;
    for (uint64_t k = 1; k <= RACE_ROUNDS; k++) {
        struct rtudp_impair_cfg c = {.where = RTUDP_IMPAIR_TX, .seed = k, .rate_bps = k,
                                     .delay_ns = k % 1000, .loss = k % RTUDP_IMPAIR_ONE};
        CHECK(rtudp_impair_publish(b, &c, 1000000000) == RTUDP_OK);
    }
    atomic_store(&race_done, 1);
    return NULL;
}

static void test_seqlock_copies_are_whole(void)
{
    struct rtudp_channel_block *b = new_block();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, race_writer, b) == 0);
    uint64_t copies = 0, last = 0;
    while (!atomic_load(&race_done)) {
        struct rtudp_impair_cfg out;
        if (rtudp_impair_read(&b->impair, &out) != RTUDP_OK)
            continue;
        CHECK(out.seed == out.rate_bps && out.delay_ns == out.seed % 1000 &&
              out.loss == out.seed % RTUDP_IMPAIR_ONE);
        CHECK(out.seed >= last); /* never an older one after a newer one */
        last = out.seed;
        copies++;
    }
    CHECK(pthread_join(t, NULL) == 0);
    struct rtudp_impair_cfg out;
    CHECK(rtudp_impair_read(&b->impair, &out) == RTUDP_OK && out.seed == RACE_ROUNDS);
    CHECK(b->impair.seq == 2 * RACE_ROUNDS);
    (void)copies;
    free(b);
}

static const struct test tests[] = {
    T(test_seqlock_copies_are_whole),
    T(test_splitmix64_reference),
    T(test_publish_read_roundtrip_and_clamp),
    T(test_verdicts_reproducible),
    T(test_corrupt_within_datagram),
    T(test_rate_limit_spacing),
    T(test_inflight_duplicate_done_after_both),
};

HARNESS_MAIN(tests)
