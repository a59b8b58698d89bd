/*
 * test_rtp_header.c - RTP header parse/build (csrc/rtp/header.c): every error
 * code from a packet that has exactly that defect, RFC 8285 elements, and
 * build -> parse round trips.
 */
#include "rtp/header.h"

#include "harness.h"

static uint8_t pkt[512];

/* a valid 12-byte header + 4 payload bytes */
static size_t basic(void)
{
    struct rtp_hdr_spec s = {.marker = 1, .pt = 0, .seq = 65535, .ts = 0xDEADBEEF, .ssrc = 0x01020304};
    const uint8_t pl[4] = {1, 2, 3, 4};
    int n = rtp_build(pkt, sizeof pkt, &s, pl, sizeof pl);
    CHECK_EQ(n, 16);
    return (size_t)n;
}

static void parses_fixed_header(void)
{
    size_t n = basic();
    struct rtp_hdr h;
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_OK);
    CHECK_EQ(h.marker, 1);
    CHECK_EQ(h.pt, 0);
    CHECK_EQ(h.seq, 65535);
    CHECK_EQ(h.ts, 0xDEADBEEF);
    CHECK_EQ(h.ssrc, 0x01020304);
    CHECK_EQ(h.payload_off, 12);
    CHECK_EQ(h.payload_len, 4);
    CHECK_EQ(pkt[h.payload_off + 3], 4);
}

static void every_error_is_distinct(void)
{
    struct rtp_hdr h;
    size_t n = basic();
    for (size_t len = 0; len < RTP_HDR_MIN; len++)
        CHECK_EQ(rtp_parse(pkt, len, &h), RTP_E_SHORT);
    pkt[0] = (uint8_t)((1 << 6) | (pkt[0] & 0x3F));
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_E_VERSION);
    basic();
    pkt[0] |= 2; /* CC = 2: 8 bytes of CSRC, only 4 follow */
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_E_CSRC);
    basic();
    pkt[0] |= 0x10; /* X with 4 bytes left: header fits, length word says 0 */
    pkt[12] = 0xBE, pkt[13] = 0xDE, pkt[14] = 0, pkt[15] = 0;
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_OK);
    pkt[15] = 1; /* one word of data that is not there */
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_E_EXT_LEN);
    CHECK_EQ(rtp_parse(pkt, 14, &h), RTP_E_EXT_HDR);
    basic();
    pkt[0] |= 0x20; /* P: count is the last byte */
    pkt[15] = 0;
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_E_PAD_ZERO);
    pkt[15] = 5;
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_E_PAD_LEN);
    pkt[15] = 4;
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_OK);
    CHECK_EQ(h.payload_len, 0);
    for (int b = 200; b <= 204; b++) {
        basic();
        pkt[1] = (uint8_t)b;
        CHECK_EQ(rtp_parse(pkt, n, &h), RTP_E_RTCP);
    }
    basic();
    pkt[1] = 199;
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_OK);
    pkt[1] = 205;
    CHECK_EQ(rtp_parse(pkt, n, &h), RTP_OK);
    int codes[] = {RTP_E_SHORT, RTP_E_VERSION, RTP_E_CSRC, RTP_E_EXT_HDR, RTP_E_EXT_LEN,
                   RTP_E_PAD_ZERO, RTP_E_PAD_LEN, RTP_E_RTCP, RTP_E_EXT_ELEM, RTP_E_ARG,
                   RTP_E_NOSPACE};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        for (size_t j = i + 1; j < sizeof codes / sizeof *codes; j++) {
            CHECK(codes[i] != codes[j]);
            CHECK(strcmp(rtp_strerror(codes[i]), rtp_strerror(codes[j])) != 0);
        }
}

static void csrc_ext_padding_round_trip(void)
{
    uint32_t csrc[3] = {11, 22, 0xFFFFFFFF};
    /* one-byte elements: id 1 len 1, padding byte, id 2 len 3; then pad to 8 */
    uint8_t ext[8] = {0x10, 0xAA, 0x00, 0x22, 1, 2, 3, 0};
    struct rtp_hdr_spec s = {.pt = 96, .cc = 3, .csrc = csrc, .seq = 7, .ts = 9, .ssrc = 5,
                             .ext = ext, .ext_len = 8, .ext_profile = RTP_EXT_ONE_BYTE,
                             .pad_len = 3};
    uint8_t pl[10];
    fill(pl, sizeof pl, 42);
    int n = rtp_build(pkt, sizeof pkt, &s, pl, sizeof pl);
    CHECK_EQ(n, 12 + 12 + 4 + 8 + 10 + 3);
    struct rtp_hdr h;
    CHECK_EQ(rtp_parse(pkt, (size_t)n, &h), RTP_OK);
    CHECK_EQ(h.cc, 3);
    CHECK_EQ(h.csrc[2], 0xFFFFFFFF);
    CHECK_EQ(h.ext_profile, RTP_EXT_ONE_BYTE);
    CHECK_EQ(h.ext_words, 2);
    CHECK_EQ(h.pad_len, 3);
    CHECK_EQ(h.payload_len, 10);
    CHECK(verify(pkt + h.payload_off, 10, 42));
    uint32_t pos = 0;
    struct rtp_ext_elem el;
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), 1);
    CHECK_EQ(el.id, 1);
    CHECK_EQ(el.len, 1);
    CHECK_EQ(pkt[el.off], 0xAA);
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), 1);
    CHECK_EQ(el.id, 2);
    CHECK_EQ(el.len, 3);
    CHECK_EQ(pkt[el.off + 2], 3);
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), 0);
    /* an element longer than the block */
    pkt[h.ext_off + 3] = 0x2F; /* id 2, 16 bytes */
    pos = 0;
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), 1);
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), RTP_E_EXT_ELEM);
}

static void two_byte_elements(void)
{
    uint8_t ext[8] = {5, 2, 0xA, 0xB, 9, 0, 0, 0}; /* id 5 len 2, id 9 len 0, pad, pad */
    struct rtp_hdr_spec s = {.pt = 96, .ext = ext, .ext_len = 8, .ext_profile = 0x1000};
    int n = rtp_build(pkt, sizeof pkt, &s, NULL, 0);
    struct rtp_hdr h;
    CHECK_EQ(rtp_parse(pkt, (size_t)n, &h), RTP_OK);
    uint32_t pos = 0;
    struct rtp_ext_elem el;
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), 1);
    CHECK_EQ(el.id, 5);
    CHECK_EQ(el.len, 2);
    CHECK_EQ(pkt[el.off + 1], 0xB);
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), 1);
    CHECK_EQ(el.id, 9);
    CHECK_EQ(el.len, 0);
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), 0);
    ext[7] = 7; /* id 7 with no length byte left */
    n = rtp_build(pkt, sizeof pkt, &s, NULL, 0);
    CHECK_EQ(rtp_parse(pkt, (size_t)n, &h), RTP_OK);
    pos = 0;
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), 1);
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), 1);
    CHECK_EQ(rtp_ext_next(pkt, &h, &pos, &el), RTP_E_EXT_ELEM);
}

static void build_rejects_bad_args(void)
{
    struct rtp_hdr_spec s = {.pt = 128};
    CHECK_EQ(rtp_build(pkt, sizeof pkt, &s, NULL, 0), RTP_E_ARG);
    s.pt = 72;
    s.marker = 1;
    CHECK_EQ(rtp_build(pkt, sizeof pkt, &s, NULL, 0), RTP_E_RTCP);
    s.marker = 0;
    CHECK_EQ(rtp_build(pkt, sizeof pkt, &s, NULL, 0), 12);
    CHECK_EQ(rtp_build(pkt, 11, &s, NULL, 0), RTP_E_NOSPACE);
    uint8_t ext[3] = {0};
    s.ext = ext;
    s.ext_len = 3;
    CHECK_EQ(rtp_build(pkt, sizeof pkt, &s, NULL, 0), RTP_E_ARG);
}

/* random bytes never crash the parser or yield regions outside the packet */
static void fuzz_stays_in_bounds(void)
{
    uint64_t seed = 1;
    for (int i = 0; i < 200000; i++) {
        size_t len = (size_t)rnd(&seed, 80);
        uint8_t *b = malloc(len ? len : 1);
        CHECK(b);
        fill(b, (uint32_t)len, splitmix64(&seed));
        if (len && rnd(&seed, 2))
            b[0] = (uint8_t)(0x80 | (b[0] & 0x3F));
        struct rtp_hdr h;
        if (rtp_parse(b, len, &h) == RTP_OK) {
            CHECK((size_t)h.payload_off + h.payload_len + h.pad_len == len);
            uint32_t pos = 0;
            struct rtp_ext_elem el;
            int rc;
            while ((rc = rtp_ext_next(b, &h, &pos, &el)) == 1)
                CHECK((size_t)el.off + el.len <= len);
        }
        free(b);
    }
}

static const struct test tests[] = {
    T(parses_fixed_header), T(every_error_is_distinct), T(csrc_ext_padding_round_trip),
    T(two_byte_elements), T(build_rejects_bad_args), T(fuzz_stays_in_bounds),
};
HARNESS_MAIN(tests)
