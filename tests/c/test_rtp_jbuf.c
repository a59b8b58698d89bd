/*
 * test_rtp_jbuf.c - the jitter buffer (csrc/rtp/jbuf.c): ordering, duplicates,
 * gaps and erasures, sequence wrap, A.1 restarts, both release modes, flush,
 * statistics.  Packets are built with rtp_build; `ref` carries the seq so a
 * released frame can be matched to what was pushed.
 */
#include "rtp/jbuf.h"

#include "harness.h"

#define MAXF 4096
static struct rtp_jb_frame got[MAXF];
static int ngot;

static void collect(void *ctx, const struct rtp_jb_frame *f)
{
    (void)ctx;
    CHECK(ngot < MAXF);
    got[ngot++] = *f;
}

static const uint32_t SSRC = 0x1234;

static int push_ts(struct rtp_jbuf *jb, uint32_t ssrc, uint16_t seq, uint32_t ts, int64_t now)
{
    uint8_t pkt[32];
    struct rtp_hdr_spec s = {.pt = 0, .seq = seq, .ts = ts, .ssrc = ssrc};
    int n = rtp_build(pkt, sizeof pkt, &s, (const uint8_t *)"abcd", 4);
    CHECK_EQ(n, 16);
    return rtp_jbuf_push(jb, pkt, (size_t)n, seq, now, collect, NULL);
}

/* seq with ts = 160 * seq (8 kHz, 20 ms) */
static int push(struct rtp_jbuf *jb, uint16_t seq) { return push_ts(jb, SSRC, seq, 160u * seq, 0); }

static struct rtp_jbuf make(uint32_t cap, uint32_t latency_ms)
{
    struct rtp_jbuf jb;
    CHECK_EQ(rtp_jbuf_init(&jb, cap, latency_ms, 8000), 0);
    ngot = 0;
    return jb;
}

/* the frames so far are packets lseq from..to, in order */
static void expect_run(int first_frame, uint64_t from, uint64_t to)
{
    for (uint64_t l = from; l <= to; l++) {
        const struct rtp_jb_frame *f = &got[first_frame + (int)(l - from)];
        CHECK_EQ(f->kind, RTP_JB_PACKET);
        CHECK_EQ(f->lseq, l);
        CHECK_EQ(f->pkt.seq, (uint16_t)l);
        CHECK_EQ(f->pkt.ref, (uint16_t)l);
        CHECK_EQ(f->pkt.payload_len, 4);
    }
}

static void in_order_after_warm_up(void)
{
    struct rtp_jbuf jb = make(4, 0);
    /* paced exactly at the RTP clock: 20 ms per 160 ticks, so jitter 0 */
#define PACED(s) push_ts(&jb, SSRC, (uint16_t)(s), 160u * (uint32_t)(s), (s) * 20 * NS_PER_MS)
    for (int s = 100; s < 103; s++)
        CHECK_EQ(PACED(s), RTP_JB_TAKEN);
    CHECK_EQ(ngot, 0); /* filling to capacity first */
    PACED(103);
    CHECK_EQ(ngot, 4);
    for (int s = 104; s < 200; s++) {
        PACED(s);
        CHECK_EQ(ngot, s - 99); /* then each is released at once */
    }
    expect_run(0, 100, 199);
    struct rtp_jb_stats st;
    rtp_jbuf_stats(&jb, &st);
    CHECK_EQ(st.received, 100);
    CHECK_EQ(st.lost, 0);
    CHECK_EQ(st.ssrc, SSRC);
    CHECK_EQ(st.jitter, 0);
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static void reorders_and_drops_duplicates(void)
{
    struct rtp_jbuf jb = make(8, 0);
    const uint16_t order[] = {10, 12, 11, 13, 15, 14, 16, 17, 19, 18, 20, 21};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        CHECK_EQ(push(&jb, order[i]), RTP_JB_TAKEN);
    CHECK_EQ(push(&jb, 21), RTP_JB_DUP); /* held or released: both duplicates */
    CHECK_EQ(push(&jb, 11), RTP_JB_DUP);
    rtp_jbuf_flush(&jb, collect, NULL);
    CHECK_EQ(ngot, 12);
    expect_run(0, 10, 21);
    struct rtp_jb_stats st;
    rtp_jbuf_stats(&jb, &st);
    CHECK_EQ(st.duplicates, 2);
    CHECK_EQ(st.reordered, 3);
    CHECK_EQ(st.received, 12);
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static void gap_becomes_erasure_when_full(void)
{
    struct rtp_jbuf jb = make(3, 0);
    for (int s = 0; s < 3; s++)
        push(&jb, (uint16_t)s);
    CHECK_EQ(ngot, 3);
    push(&jb, 5); /* 3, 4 missing */
    push(&jb, 6);
    CHECK_EQ(ngot, 3);
    push(&jb, 7); /* three wait behind the gap: it is lost */
    CHECK_EQ(ngot, 7);
    CHECK_EQ(got[3].kind, RTP_JB_ERASURE);
    CHECK_EQ(got[3].lseq, 3);
    CHECK_EQ(got[3].lseq_end, 4);
    CHECK_EQ(got[3].ts_span, 320); /* two packets of 160 */
    expect_run(4, 5, 7);
    CHECK_EQ(push(&jb, 4), RTP_JB_LATE);
    struct rtp_jb_stats st;
    rtp_jbuf_stats(&jb, &st);
    CHECK_EQ(st.late, 1);
    CHECK_EQ(st.erased, 2);
    CHECK_EQ(st.lost, 2);
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static void sequence_wrap_keeps_counting(void)
{
    struct rtp_jbuf jb = make(2, 0);
    for (uint32_t s = 65530; s < 65530 + 20; s++)
        if (s != 65537)
            push(&jb, (uint16_t)s); /* 65537 = seq 1 is lost */
    rtp_jbuf_flush(&jb, collect, NULL);
    expect_run(0, 65530, 65536);
    CHECK_EQ(got[7].kind, RTP_JB_ERASURE);
    CHECK_EQ(got[7].lseq, 65537);
    CHECK_EQ(got[7].lseq_end, 65537);
    CHECK_EQ(got[7].ts_span, 160);
    expect_run(8, 65538, 65549);
    /* a reordered packet from before the wrap, after it */
    struct rtp_jbuf jb2 = make(4, 0);
    push(&jb2, 65534);
    push(&jb2, 0);
    push(&jb2, 65535);
    push(&jb2, 1);
    expect_run(0, 65534, 65537);
    rtp_jbuf_destroy(&jb, NULL, NULL);
    rtp_jbuf_destroy(&jb2, NULL, NULL);
}

static void restart_after_large_jump(void)
{
    for (int backwards = 0; backwards < 2; backwards++) {
        struct rtp_jbuf jb = make(2, 0);
        for (int s = 5000; s < 5010; s++)
            push(&jb, (uint16_t)s);
        int before = ngot;
        uint16_t j = backwards ? 100 : 20000;
        CHECK_EQ(push(&jb, j), RTP_JB_TAKEN); /* held aside, not yet believed */
        CHECK_EQ(ngot, before);
        push(&jb, (uint16_t)(j + 1)); /* confirms: the sender restarted */
        push(&jb, (uint16_t)(j + 2));
        rtp_jbuf_flush(&jb, collect, NULL);
        expect_run(0, 5000, 5009);
        /* the new epoch follows in the next 2^16 cycle, no erasure between */
        CHECK_EQ(ngot, 13);
        for (int i = 0; i < 3; i++) {
            CHECK_EQ(got[10 + i].kind, RTP_JB_PACKET);
            CHECK_EQ(got[10 + i].lseq, 65536u + j + (unsigned)i);
        }
        struct rtp_jb_stats st;
        rtp_jbuf_stats(&jb, &st);
        CHECK_EQ(st.restarts, 1);
        CHECK_EQ(st.lost, 0);
        rtp_jbuf_destroy(&jb, NULL, NULL);
    }
}

static void lone_jump_is_given_back(void)
{
    struct rtp_jbuf jb = make(1, 0);
    for (int s = 0; s < 5; s++)
        push(&jb, (uint16_t)s);
    push(&jb, 30000); /* a stray */
    push(&jb, 5);     /* the stream goes on */
    push(&jb, 40000); /* another stray: the first is given back */
    CHECK_EQ(ngot, 7);
    CHECK_EQ(got[6].kind, RTP_JB_DROP);
    CHECK_EQ(got[6].pkt.ref, 30000);
    rtp_jbuf_destroy(&jb, collect, NULL); /* hands back the second */
    CHECK_EQ(got[7].kind, RTP_JB_DROP);
    CHECK_EQ(got[7].pkt.ref, 40000);
}

static void time_mode_waits_latency(void)
{
    struct rtp_jbuf jb = make(64, 50); /* 50 ms */
    const int64_t ms = 1000000;
    push_ts(&jb, SSRC, 1, 160, 0);
    push_ts(&jb, SSRC, 2, 320, 20 * ms);
    CHECK_EQ(ngot, 0);
    rtp_jbuf_poll(&jb, 49 * ms, collect, NULL);
    CHECK_EQ(ngot, 0);
    rtp_jbuf_poll(&jb, 50 * ms, collect, NULL);
    CHECK_EQ(ngot, 2);
    push_ts(&jb, SSRC, 3, 480, 60 * ms);
    CHECK_EQ(ngot, 3); /* in order: at once */
    push_ts(&jb, SSRC, 5, 800, 100 * ms);
    rtp_jbuf_poll(&jb, 149 * ms, collect, NULL);
    CHECK_EQ(ngot, 3); /* 4 may still come */
    rtp_jbuf_poll(&jb, 150 * ms, collect, NULL);
    CHECK_EQ(ngot, 5);
    CHECK_EQ(got[3].kind, RTP_JB_ERASURE);
    CHECK_EQ(got[3].lseq, 4);
    CHECK_EQ(got[4].lseq, 5);
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static void flush_returns_every_run(void)
{
    struct rtp_jbuf jb = make(50, 0);
    const uint16_t seqs[] = {1, 2, 3, 7, 8, 12, 20, 21};
    for (size_t i = 0; i < sizeof seqs / sizeof *seqs; i++)
        push(&jb, seqs[i]);
    CHECK_EQ(ngot, 0);
    rtp_jbuf_flush(&jb, collect, NULL);
    /* 1-3, E4-6, 7-8, E9-11, 12, E13-19, 20-21 */
    CHECK_EQ(ngot, 11);
    int packets = 0;
    for (int i = 0; i < ngot; i++)
        packets += got[i].kind == RTP_JB_PACKET;
    CHECK_EQ(packets, 8);
    CHECK_EQ(got[3].kind, RTP_JB_ERASURE);
    CHECK_EQ(got[3].lseq, 4);
    CHECK_EQ(got[3].lseq_end, 6);
    CHECK_EQ(got[8].kind, RTP_JB_ERASURE);
    CHECK_EQ(got[8].lseq_end, 19);
    CHECK_EQ(got[8].ts_span, 7 * 160);
    CHECK_EQ(got[10].lseq, 21);
    push(&jb, 22); /* and goes on afterwards */
    CHECK_EQ(ngot, 12);
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static void erasure_span_is_64_bit(void)
{
    /* 90 kHz video, 3000 ticks per frame, 2000 frames lost: 6e6 ticks; librtpsynth
     * computed (ts diff) * 2000 in 32 bits, which wraps */
    struct rtp_jbuf jb;
    CHECK_EQ(rtp_jbuf_init(&jb, 1, 0, 90000), 0);
    ngot = 0;
    push_ts(&jb, SSRC, 0, 0, 0);
    push_ts(&jb, SSRC, 2001, 2001u * 3000u, 0);
    CHECK_EQ(ngot, 3);
    CHECK_EQ(got[1].kind, RTP_JB_ERASURE);
    CHECK_EQ(got[1].lseq_end - got[1].lseq + 1, 2000);
    CHECK_EQ(got[1].ts_span, 6000000);
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static void new_ssrc_takes_over(void)
{
    struct rtp_jbuf jb = make(1, 0);
    for (int s = 0; s < 5; s++)
        push(&jb, (uint16_t)s);
    CHECK_EQ(push_ts(&jb, 0x9999, 700, 0, 0), RTP_JB_TAKEN);
    CHECK_EQ(ngot, 5);
    push_ts(&jb, 0x9999, 701, 160, 0);
    CHECK_EQ(ngot, 7);
    CHECK_EQ(got[5].pkt.ssrc, 0x9999);
    CHECK_EQ(got[5].lseq, 65536 + 700);
    struct rtp_jb_stats st;
    rtp_jbuf_stats(&jb, &st);
    CHECK_EQ(st.ssrc, 0x9999);
    CHECK_EQ(st.received, 2);
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static void probation_rejects_stray_first_packet(void)
{
    struct rtp_jbuf jb = make(4, 0);
    push(&jb, 40000); /* on probation */
    push(&jb, 10);    /* far away: probation restarts, the stray is given back */
    CHECK_EQ(ngot, 1);
    CHECK_EQ(got[0].kind, RTP_JB_DROP);
    CHECK_EQ(got[0].pkt.ref, 40000);
    for (int s = 11; s < 14; s++)
        push(&jb, (uint16_t)s);
    expect_run(1, 10, 13);
    struct rtp_jb_stats st;
    rtp_jbuf_stats(&jb, &st);
    CHECK_EQ(st.probation_dropped, 1);
    CHECK_EQ(st.received, 4);
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static void jitter_follows_a8(void)
{
    struct rtp_jbuf jb = make(1, 0);
    const int64_t ms = 1000000;
    /* every other packet 10 ms late: |D| = 80 ticks each time after the first */
    for (int i = 0; i < 200; i++)
        push_ts(&jb, SSRC, (uint16_t)i, 160u * (uint32_t)i, i * 20 * ms + (i % 2) * 10 * ms);
    struct rtp_jb_stats st;
    rtp_jbuf_stats(&jb, &st);
    CHECK_IN(st.jitter, 78, 80); /* J converges to |D| */
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static void parse_errors_are_counted(void)
{
    struct rtp_jbuf jb = make(4, 0);
    uint8_t junk[8] = {0};
    CHECK_EQ(rtp_jbuf_push(&jb, junk, sizeof junk, 1, 0, collect, NULL), RTP_E_SHORT);
    struct rtp_jb_stats st;
    rtp_jbuf_stats(&jb, &st);
    CHECK_EQ(st.invalid, 1);
    rtp_jbuf_destroy(&jb, NULL, NULL);
    CHECK_EQ(rtp_jbuf_init(&jb, 0, 0, 0), RTP_E_ARG);
    CHECK_EQ(rtp_jbuf_init(&jb, 4, 600001, 0), RTP_E_ARG);
}

/* random windows-of-10 shuffles with duplicates and loss: every packet comes out
 * exactly once or inside an erasure, in increasing lseq order */
static void shuffled_stream_property(void)
{
    uint64_t seed = 7;
    struct rtp_jbuf jb = make(20, 0);
    const int N = 3000;
    static uint16_t seqs[3000];
    for (int i = 0; i < N; i++)
        seqs[i] = (uint16_t)(60000 + i);
    for (int w = 0; w + 10 <= N; w += 10)
        for (int i = 9; i > 0; i--) {
            int j = (int)rnd(&seed, (uint64_t)i + 1);
            uint16_t t = seqs[w + i];
            seqs[w + i] = seqs[w + j];
            seqs[w + j] = t;
        }
    static struct rtp_jb_frame all[8000];
    int total = 0;
    for (int i = 0; i < N; i++) {
        if (rnd(&seed, 100) < 3)
            continue; /* lost */
        push(&jb, seqs[i]);
        if (rnd(&seed, 10) == 0)
            push(&jb, seqs[i]);
        if (ngot > 1000) {
            memcpy(all + total, got, (size_t)ngot * sizeof *got);
            total += ngot;
            ngot = 0;
        }
    }
    rtp_jbuf_flush(&jb, collect, NULL);
    memcpy(all + total, got, (size_t)ngot * sizeof *got);
    total += ngot;
    uint64_t next = 60000;
    for (int i = 0; i < total; i++) {
        CHECK(all[i].kind != RTP_JB_DROP);
        CHECK_EQ(all[i].lseq, next);
        next = all[i].kind == RTP_JB_ERASURE ? all[i].lseq_end + 1 : all[i].lseq + 1;
    }
    CHECK_EQ(next, 60000 + N);
    rtp_jbuf_destroy(&jb, NULL, NULL);
}

static const struct test tests[] = {
    T(in_order_after_warm_up), T(reorders_and_drops_duplicates), T(gap_becomes_erasure_when_full),
    T(sequence_wrap_keeps_counting), T(restart_after_large_jump), T(lone_jump_is_given_back),
    T(time_mode_waits_latency), T(flush_returns_every_run), T(erasure_span_is_64_bit),
    T(new_ssrc_takes_over), T(probation_rejects_stray_first_packet), T(jitter_follows_a8),
    T(parse_errors_are_counted), T(shuffled_stream_property),
};
HARNESS_MAIN(tests)
