/*
 * test_rtp_generator.c - RTP sender state (csrc/rtp/generator.c): timestamps at
 * any clock rate and ptime, random start, marker rules, skip, resync, payload.
 */
#include "rtp/generator.h"

#include "harness.h"

static uint8_t buf[4096];

static struct rtp_hdr next(struct rtp_gen *g, size_t plen)
{
    int n = rtp_gen_next(g, buf, sizeof buf, 0, NULL, 0, plen, 1);
    CHECK_EQ(n, (int)(12 + plen));
    struct rtp_hdr h;
    CHECK_EQ(rtp_parse(buf, (size_t)n, &h), RTP_OK);
    return h;
}

static void timestamp_step_follows_clock_rate(void)
{
    /* rate, ptime_us, expected ticks per packet */
    const uint32_t cases[][3] = {{8000, 20000, 160},  {16000, 20000, 320}, {48000, 20000, 960},
                                 {90000, 33333, 2999}, {8000, 30000, 240},  {48000, 10000, 480}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        struct rtp_gen g;
        CHECK_EQ(rtp_gen_init(&g, cases[c][0], cases[c][1]), RTP_OK);
        struct rtp_hdr a = next(&g, 10), b = next(&g, 10);
        CHECK_EQ((uint32_t)(b.ts - a.ts), cases[c][2]);
        CHECK_EQ((uint16_t)(b.seq - a.seq), 1);
        CHECK_EQ(a.ssrc, b.ssrc);
    }
}

static void fractional_steps_do_not_drift(void)
{
    struct rtp_gen g; /* 90 kHz at 1/30 s = 3000 ticks, given as 33333 us: 2999.97 */
    CHECK_EQ(rtp_gen_init(&g, 44100, 10500), RTP_OK); /* 463.05 ticks per packet */
    uint32_t t0 = next(&g, 0).ts;
    for (int i = 1; i < 1000; i++)
        next(&g, 0);
    CHECK_EQ((uint32_t)(next(&g, 0).ts - t0), 463050); /* exactly 1000 * 463.05 */
}

static void start_is_random(void)
{
    struct rtp_gen a, b;
    CHECK_EQ(rtp_gen_init(&a, 8000, 20000), RTP_OK);
    CHECK_EQ(rtp_gen_init(&b, 8000, 20000), RTP_OK);
    /* 80 random bits: equal by chance with probability 2^-80 */
    CHECK(a.ssrc != b.ssrc || a.seq != b.seq || a.ts != b.ts);
}

static void marker_on_talkspurt_start(void)
{
    struct rtp_gen g;
    CHECK_EQ(rtp_gen_init(&g, 8000, 20000), RTP_OK);
    CHECK_EQ(next(&g, 1).marker, 1);
    CHECK_EQ(next(&g, 1).marker, 0);
    uint32_t ts = next(&g, 1).ts;
    rtp_gen_skip(&g, 5); /* five packet times of silence */
    struct rtp_hdr h = next(&g, 1);
    CHECK_EQ(h.marker, 1);
    CHECK_EQ(h.ts - ts, 6 * 160);
    CHECK_EQ(next(&g, 1).marker, 0);
    CHECK_EQ(rtp_gen_set_marker(&g, true), false);
    CHECK_EQ(next(&g, 1).marker, 1);
}

static void resync_adds_elapsed_time(void)
{
    struct rtp_gen g;
    CHECK_EQ(rtp_gen_init(&g, 8000, 20000), RTP_OK);
    CHECK_EQ(rtp_gen_next(&g, buf, sizeof buf, 0, NULL, 0, 0, 1000000000), 12);
    uint32_t after = g.ts;
    rtp_gen_resync_clock(&g, 1000000000 + 500000000); /* 0.5 s later: 4000 ticks */
    CHECK_EQ(g.ts - after, 4000);
    CHECK(g.marker);
}

static void payload_given_or_zero(void)
{
    struct rtp_gen g;
    CHECK_EQ(rtp_gen_init(&g, 8000, 20000), RTP_OK);
    memset(buf, 0xEE, sizeof buf);
    uint8_t pl[5] = {1, 2, 3, 4, 5};
    CHECK_EQ(rtp_gen_next(&g, buf, sizeof buf, 8, pl, 5, 8, 1), 20);
    CHECK(memcmp(buf + 12, pl, 5) == 0);
    CHECK(buf[17] == 0 && buf[18] == 0 && buf[19] == 0);
    CHECK_EQ(rtp_gen_next(&g, buf, sizeof buf, 8, NULL, 0, 160, 1), 172);
    for (int i = 12; i < 172; i++)
        CHECK_EQ(buf[i], 0);
    CHECK_EQ(rtp_gen_next(&g, buf, sizeof buf, 8, pl, 5, 4, 1), RTP_E_ARG);
    CHECK_EQ(rtp_gen_next(&g, buf, 100, 8, NULL, 0, 160, 1), RTP_E_NOSPACE);
    CHECK_EQ(rtp_gen_next(&g, buf, sizeof buf, 128, NULL, 0, 1, 1), RTP_E_ARG);
    CHECK_EQ(rtp_gen_init(&g, 0, 20000), RTP_E_ARG);
    CHECK_EQ(rtp_gen_init(&g, 8000, 0), RTP_E_ARG);
}

static void batch_matches_single(void)
{
    struct rtp_gen a, b;
    CHECK_EQ(rtp_gen_init(&a, 48000, 20000), RTP_OK);
    b = a;
    static uint8_t many[100 * 172];
    CHECK_EQ(rtp_gen_batch(&a, many, sizeof many, 100, 0, 160, 1), 100);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(rtp_gen_next(&b, buf, sizeof buf, 0, NULL, 0, 160, 1), 172);
        CHECK(memcmp(buf, many + i * 172, 172) == 0);
    }
    CHECK_EQ(rtp_gen_batch(&a, many, sizeof many - 1, 100, 0, 160, 1), RTP_E_NOSPACE);
}

static void seq_wraps(void)
{
    struct rtp_gen g;
    CHECK_EQ(rtp_gen_init(&g, 8000, 20000), RTP_OK);
    g.seq = 65535;
    CHECK_EQ(next(&g, 0).seq, 65535);
    CHECK_EQ(next(&g, 0).seq, 0);
}

static const struct test tests[] = {
    T(timestamp_step_follows_clock_rate), T(fractional_steps_do_not_drift), T(start_is_random),
    T(marker_on_talkspurt_start), T(resync_adds_elapsed_time), T(payload_given_or_zero),
    T(batch_matches_single), T(seq_wraps),
};
HARNESS_MAIN(tests)
