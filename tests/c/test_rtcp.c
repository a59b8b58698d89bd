/*
 * test_rtcp.c - RTCP compound packets (csrc/rtp/rtcp.c): built bytes as RFC 3550
 * lays them out, parsed back, every malformation named, fuzzed; NTP, DLSR/RTT and
 * the A.7 interval.
 */
#include "harness.h"
#include "rtp/rtcp.h"

static const struct rtcp_rb RB2[2] = {
    {.ssrc = 0x11111111, .fraction = 64, .cum_lost = 3, .ext_max_seq = 0x00010005,
     .jitter = 40, .lsr = 0xb7052000, .dlsr = 0x00054000},
    {.ssrc = 0x22222222, .fraction = 0, .cum_lost = -2, .ext_max_seq = 7, .jitter = 0,
     .lsr = 0, .dlsr = 0},
};

static int build_sr(uint8_t *buf, size_t cap, int bye)
{
    struct rtcp_out o = {.ssrc = 0xdeadbeef, .sr = 1,
                         .info = {.ntp = 0x0123456789abcdefULL, .rtp_ts = 1000,
                                  .packets = 50, .octets = 8000},
                         .rb = RB2, .n_rb = 2, .cname = "me@host", .cname_len = 7,
                         .bye = (uint32_t)bye, .reason = bye ? "done" : NULL,
                         .reason_len = bye ? 4 : 0};
    return rtcp_build(buf, cap, &o);
}

/* the SR's bytes are RFC 3550 6.4.1's layout, word by word */
static void builds_sr_as_the_rfc_lays_it_out(void)
{
    uint8_t b[RTCP_BUILD_MAX];
    int n = build_sr(b, sizeof b, 0);
    /* SR: 4 + 4 + 20 + 2*24 = 76; SDES: 4 + 4 + 2 + 7 + 1 = 18 -> 20 */
    CHECK_EQ(n, 96);
    static const uint8_t head[] = {0x82, 200, 0x00, 18, 0xde, 0xad, 0xbe, 0xef,
                                   0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                   0, 0, 0x03, 0xe8, 0, 0, 0, 50, 0, 0, 0x1f, 0x40,
                                   0x11, 0x11, 0x11, 0x11, 64, 0, 0, 3};
    CHECK(memcmp(b, head, sizeof head) == 0);
    /* second block: cumulative lost -2 as 24-bit two's complement */
    CHECK(b[52 + 4] == 0 && b[52 + 5] == 0xff && b[52 + 6] == 0xff && b[52 + 7] == 0xfe);
    static const uint8_t sdes[] = {0x81, 202, 0, 4, 0xde, 0xad, 0xbe, 0xef, 1, 7,
                                   'm', 'e', '@', 'h', 'o', 's', 't', 0, 0, 0};
    CHECK(memcmp(b + 76, sdes, sizeof sdes) == 0);
}

static void parses_what_it_builds(void)
{
    uint8_t b[RTCP_BUILD_MAX];
    int n = build_sr(b, sizeof b, 1);
    CHECK_EQ(n, 96 + 8 + 8);
    struct rtcp_in in;
    CHECK_EQ(rtcp_parse(b, (size_t)n, &in), RTCP_OK);
    CHECK(in.ssrc == 0xdeadbeef && in.has_sr && in.n_sr == 1 && in.n_rr == 0);
    CHECK(in.info.ntp == 0x0123456789abcdefULL && in.info.rtp_ts == 1000);
    CHECK(in.info.packets == 50 && in.info.octets == 8000);
    CHECK_EQ(in.n_rb, 2u);
    CHECK(memcmp(&in.rb[0], &RB2[0], sizeof RB2[0]) == 0);
    CHECK(memcmp(&in.rb[1], &RB2[1], sizeof RB2[1]) == 0);
    CHECK(in.n_sdes == 1 && in.cname_len == 7 && strcmp(in.cname, "me@host") == 0);
    CHECK(in.cname_ssrc == 0xdeadbeef);
    CHECK(in.n_bye == 1 && in.n_bye_ssrc == 1 && in.bye_ssrc[0] == 0xdeadbeef);
}

/* an RR, an SDES of two chunks, an APP and an unknown type (RTPFB) built by hand */
static void parses_a_hand_built_compound(void)
{
    static const uint8_t p[] = {
        0x81, 201, 0, 7, 0, 0, 0, 1,                     /* RR from 1, one block */
        0, 0, 0, 2, 0x80, 0, 0, 5, 0, 1, 0, 9, 0, 0, 0, 12, 0xaa, 0xbb, 0xcc, 0xdd,
        0, 0, 0, 3,
        0x82, 202, 0, 6,                                 /* SDES, 2 chunks */
        0, 0, 0, 1, 1, 2, 'a', 'b', 0, 0, 0, 0,          /* CNAME "ab", end, pad */
        0, 0, 0, 9, 2, 3, 'x', 'y', 'z', 0, 0, 0,        /* NAME "xyz", end */
        0x83, 204, 0, 2, 0, 0, 0, 1, 'q', 'u', 'x', '1', /* APP subtype 3 */
        0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2,         /* RTPFB: skipped */
    };
    struct rtcp_in in;
    CHECK_EQ(rtcp_parse(p, sizeof p, &in), RTCP_OK);
    CHECK(in.ssrc == 1 && !in.has_sr && in.n_rr == 1 && in.n_rb == 1);
    CHECK(in.rb[0].ssrc == 2 && in.rb[0].fraction == 128 && in.rb[0].cum_lost == 5);
    CHECK(in.rb[0].ext_max_seq == 0x10009 && in.rb[0].jitter == 12);
    CHECK(in.rb[0].lsr == 0xaabbccdd && in.rb[0].dlsr == 3);
    CHECK(in.n_sdes == 1 && in.cname_len == 2 && strcmp(in.cname, "ab") == 0);
    CHECK(in.n_app == 1 && in.app_subtype == 3 && memcmp(in.app_name, "qux1", 4) == 0);
    CHECK_EQ(in.n_other, 1u);
}

static void expect(const uint8_t *p, size_t n, int want)
{
    struct rtcp_in in;
    int rc = rtcp_parse(p, n, &in);
    if (rc != want)
        fprintf(stderr, "got %d (%s), want %d\n", rc, rtcp_strerror(rc), want);
    CHECK_EQ(rc, want);
}

static void every_malformation_is_named(void)
{
    uint8_t b[RTCP_BUILD_MAX];
    int n = build_sr(b, sizeof b, 1);
    expect(b, 0, RTCP_E_SHORT);
    expect(b, (size_t)n - 2, RTCP_E_SHORT);
    expect(b, (size_t)n - 4, RTCP_E_LENGTH);          /* the BYE cut */
    uint8_t c[RTCP_BUILD_MAX];
    memcpy(c, b, (size_t)n);
    c[0] = 0x42;
    expect(c, (size_t)n, RTCP_E_VERSION);
    memcpy(c, b + 76, 20);                             /* SDES first */
    expect(c, 20, RTCP_E_FIRST);
    memcpy(c, b, (size_t)n);
    c[3] = 1;                                          /* SR of length 2 words, 2 blocks */
    expect(c, (size_t)n, RTCP_E_SR);
    memcpy(c, b, (size_t)n);
    c[0] |= 0x20;                                      /* padding on the first packet */
    expect(c, (size_t)n, RTCP_E_PADDING);
    memcpy(c, b, (size_t)n);
    c[76 + 9] = 20;                                    /* CNAME longer than its SDES */
    expect(c, (size_t)n, RTCP_E_SDES);
    memcpy(c, b, (size_t)n);
    c[96] = 0x80 | 5;                                  /* BYE naming 5 sources in 1 word + reason */
    expect(c, (size_t)n, RTCP_E_BYE);
    memcpy(c, b, (size_t)n);
    c[104] = 9;                                        /* reason of 9 bytes in 7 */
    expect(c, (size_t)n, RTCP_E_BYE);
    static const uint8_t app[] = {0x80, 201, 0, 1, 0, 0, 0, 1, 0x80, 204, 0, 1, 0, 0, 0, 1};
    expect(app, sizeof app, RTCP_E_APP);
    /* padding on the last packet: a count of 0, one larger than the body, a good one */
    uint8_t pad[] = {0x80, 201, 0, 1, 0, 0, 0, 1, 0xa0, 203, 0, 2, 0, 0, 0, 7, 0, 0, 0, 4};
    expect(pad, sizeof pad, RTCP_OK);
    pad[19] = 0;
    expect(pad, sizeof pad, RTCP_E_PADDING);
    pad[19] = 9;
    expect(pad, sizeof pad, RTCP_E_PADDING);
    for (int s = 0; s >= RTCP_E_NOSPACE; s--)
        CHECK(strcmp(rtcp_strerror(s), "unknown status") != 0);
}

static void build_rejects_bad_args(void)
{
    uint8_t b[RTCP_BUILD_MAX];
    struct rtcp_out o = {.ssrc = 1, .cname = "x", .cname_len = 1};
    CHECK(rtcp_build(b, sizeof b, &o) == 20);          /* RR 8 + SDES 12 */
    CHECK_EQ(rtcp_build(b, 19, &o), RTCP_E_NOSPACE);
    o.n_rb = 32;
    CHECK_EQ(rtcp_build(b, sizeof b, &o), RTCP_E_ARG);
    o.n_rb = 1;                                        /* no rb array */
    CHECK_EQ(rtcp_build(b, sizeof b, &o), RTCP_E_ARG);
    o.n_rb = 0;
    o.cname_len = 0;
    CHECK_EQ(rtcp_build(b, sizeof b, &o), RTCP_E_ARG);
    o.cname_len = 256;
    CHECK_EQ(rtcp_build(b, sizeof b, &o), RTCP_E_ARG);
    /* 31 blocks, a 255-byte CNAME and reason: fits RTCP_BUILD_MAX */
    static char big[255];
    memset(big, 'c', sizeof big);
    static struct rtcp_rb rbs[RTCP_MAX_RB];
    struct rtcp_out m = {.ssrc = 1, .sr = 1, .rb = rbs, .n_rb = RTCP_MAX_RB, .cname = big,
                         .cname_len = 255, .bye = 1, .reason = big, .reason_len = 255};
    int n = rtcp_build(b, sizeof b, &m);
    CHECK(n > 0 && n <= RTCP_BUILD_MAX);
    struct rtcp_in in;
    CHECK_EQ(rtcp_parse(b, (size_t)n, &in), RTCP_OK);
    CHECK(in.n_rb == RTCP_MAX_RB && in.cname_len == 255);
}

static void mux_demux_by_second_byte(void)
{
    uint8_t p[2] = {0x80, 200};
    CHECK(rtcp_is_rtcp(p, 2));
    p[1] = 0x80 | 72;           /* RTP marker + PT 72 reads as 200 */
    CHECK(rtcp_is_rtcp(p, 2));
    p[1] = 0;                   /* PCMU */
    CHECK(!rtcp_is_rtcp(p, 2));
    p[1] = 0x80 | 96;           /* marker + dynamic 96: 224 */
    CHECK(!rtcp_is_rtcp(p, 2));
    CHECK(!rtcp_is_rtcp(p, 1));
}

static void ntp_time_and_rtt(void)
{
    CHECK(rtcp_ntp_from_ns(0) == 2208988800ULL << 32);
    CHECK(rtcp_ntp_from_ns(500000000) == (2208988800ULL << 32 | 0x80000000ULL));
    int64_t t = 1700000000123456789LL;
    int64_t back = rtcp_ns_from_ntp(rtcp_ntp_from_ns(t));
    CHECK_IN(back - t, -1, 1);
    CHECK(rtcp_ntp_mid(0x0123456789abcdefULL) == 0x456789ab);
    /* RFC 3550 6.4.1's example: A 46864.500 s, LSR 46853.125 s, DLSR 5.250 s: 6.125 s */
    CHECK_EQ(rtcp_rtt_ns(0xb7108000u, 0xb7052000u, 0x00054000u), 6125000000LL);
    CHECK_EQ(rtcp_rtt_ns(0xb7108000u, 0, 0x00054000u), -1LL);          /* no SR yet */
    CHECK_EQ(rtcp_rtt_ns(0xb7052000u, 0xb7108000u, 0), -1LL);          /* negative */
    CHECK_EQ(rtcp_dlsr(0xfffffff0u, 0x10u), 0x20u);                    /* wraps */
}

static void interval_per_a7(void)
{
    const double comp = 2.71828182845904523536 - 1.5;
    /* unknown bandwidth: Tmin rules, randomised over [0.5, 1.5], compensated */
    double t = rtcp_interval(2, 1, 0, 1, 100, 0, 5.0, 0.5);
    CHECK(t > 5.0 / comp - 1e-9 && t < 5.0 / comp + 1e-9);
    t = rtcp_interval(2, 1, 0, 1, 100, 1, 5.0, 0.0);   /* initial: Tmin/2, lowest factor */
    CHECK(t > 1.25 / comp - 1e-9 && t < 1.25 / comp + 1e-9);
    /* 1000 members, 10 senders, 500 B/s of RTCP, 100-byte reports: a receiver's
     * share is 3/4, 990 receivers -> 990 * 100 / 375 = 264 s */
    t = rtcp_interval(1000, 10, 500, 0, 100, 0, 5.0, 0.5);
    CHECK(t > 264.0 / comp - 1e-6 && t < 264.0 / comp + 1e-6);
    /* a sender of those: 10 * 100 / 125 = 8 s */
    t = rtcp_interval(1000, 10, 500, 1, 100, 0, 5.0, 0.5);
    CHECK(t > 8.0 / comp - 1e-9 && t < 8.0 / comp + 1e-9);
    uint64_t s = 3;
    for (int i = 0; i < 1000; i++) {
        double r = (double)(splitmix64(&s) >> 11) / 9007199254740992.0;
        t = rtcp_interval(2, 1, 0, 0, 100, 0, 0.1, r);
        CHECK(t >= 0.05 / comp && t <= 0.15 / comp);
    }
    CHECK(rtcp_avg_size(0, 80) == 80);
    CHECK(rtcp_avg_size(80, 96) == 81);
}

/* a valid packet mutated, and random bytes: never a read out of bounds (ASan),
 * and what parses is consistent */
static void fuzz_never_reads_out_of_bounds(void)
{
    uint8_t good[RTCP_BUILD_MAX];
    int n = build_sr(good, sizeof good, 1);
    uint64_t s = 7;
    int ok = 0;
    for (int i = 0; i < 300000; i++) {
        size_t len = (size_t)n;
        uint8_t *b = malloc(RTCP_BUILD_MAX);
        CHECK(b);
        if (i % 4 == 0) {
            len = (size_t)(splitmix64(&s) % 200);
            for (size_t j = 0; j < len; j++)
                b[j] = (uint8_t)splitmix64(&s);
            if (len)
                b[0] = (uint8_t)(0x80 | (b[0] & 0x3f));
            if (len > 1)
                b[1] = (uint8_t)(200 + splitmix64(&s) % 6);
        } else {
            memcpy(b, good, len);
            int flips = 1 + (int)(splitmix64(&s) % 4);
            for (int f = 0; f < flips; f++)
                b[splitmix64(&s) % len] ^= (uint8_t)(1u << (splitmix64(&s) % 8));
            if (splitmix64(&s) % 3 == 0)
                len = (size_t)(splitmix64(&s) % (len + 1)) & ~(size_t)3;
        }
        /* exactly len bytes allocated: ASan sees a read one past */
        uint8_t *exact = malloc(len ? len : 1);
        CHECK(exact);
        memcpy(exact, b, len);
        struct rtcp_in in;
        if (rtcp_parse(exact, len, &in) == RTCP_OK) {
            ok++;
            CHECK(in.n_sr + in.n_rr >= 1 && in.n_rb <= RTCP_MAX_RB);
            CHECK(in.cname_len <= RTCP_MAX_CNAME && strlen(in.cname) <= in.cname_len);
        }
        free(exact);
        free(b);
    }
    CHECK(ok > 0); /* some mutations (e.g. in counts and times) stay valid */
}

static const struct test tests[] = {
    T(builds_sr_as_the_rfc_lays_it_out), T(parses_what_it_builds), T(parses_a_hand_built_compound),
    T(every_malformation_is_named), T(build_rejects_bad_args), T(mux_demux_by_second_byte),
    T(ntp_time_and_rtt), T(interval_per_a7), T(fuzz_never_reads_out_of_bounds),
};
HARNESS_MAIN(tests)
