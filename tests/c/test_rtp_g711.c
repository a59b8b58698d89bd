/*
 * test_rtp_g711.c - G.711 (csrc/rtp/g711.c) against the ITU G.711 tables'
 * defining points and properties, and the resampler.  The full bit-exact
 * comparison on all 65536 inputs is against audioop, in tests/test_rtp_g711.py.
 */
#include "rtp/g711.h"
#include "rtp/resample.h"

#include "harness.h"

static void known_codes(void)
{
    /* G.711 Table 2a/2b: zero, full scale, sign */
    CHECK_EQ(g711_linear2ulaw(0), 0xFF);
    CHECK_EQ(g711_linear2ulaw(-1), 0x7E); /* -1 >> 2 = -1: magnitude 1, not 0 */
    CHECK_EQ(g711_linear2ulaw(32767), 0x80);
    CHECK_EQ(g711_linear2ulaw(-32768), 0x00);
    CHECK_EQ(g711_ulaw2linear(0xFF), 0);
    CHECK_EQ(g711_ulaw2linear(0x80), 32124);
    CHECK_EQ(g711_ulaw2linear(0x00), -32124);
    CHECK_EQ(g711_linear2alaw(0), 0xD5);
    CHECK_EQ(g711_linear2alaw(-1), 0x55);
    CHECK_EQ(g711_linear2alaw(32767), 0xAA);
    CHECK_EQ(g711_linear2alaw(-32768), 0x2A);
    CHECK_EQ(g711_alaw2linear(0xD5), 8);
    CHECK_EQ(g711_alaw2linear(0xAA), 32256);
    CHECK_EQ(g711_alaw2linear(0x2A), -32256);
}

static void decode_encode_is_identity(void)
{
    for (int c = 0; c < 256; c++) {
        /* 0x7F (negative zero) decodes to 0, which encodes as 0xFF */
        if (c != 0x7F)
            CHECK_EQ(g711_linear2ulaw(g711_ulaw2linear((uint8_t)c)), c);
        CHECK_EQ(g711_linear2alaw(g711_alaw2linear((uint8_t)c)), c);
    }
}

static void encode_is_monotonic(void)
{
    int prev = g711_ulaw2linear(g711_linear2ulaw(-32768));
    for (int s = -32767; s <= 32767; s++) {
        int d = g711_ulaw2linear(g711_linear2ulaw((int16_t)s));
        CHECK(d >= prev);
        prev = d;
    }
}

static void arrays_match_scalars(void)
{
    int16_t in[160], back[160];
    uint8_t codes[160];
    for (int i = 0; i < 160; i++)
        in[i] = (int16_t)(i * 409 - 32768);
    g711_ulaw_encode(codes, in, 160);
    g711_ulaw_decode(back, codes, 160);
    for (int i = 0; i < 160; i++) {
        CHECK_EQ(codes[i], g711_linear2ulaw(in[i]));
        CHECK_EQ(back[i], g711_ulaw2linear(codes[i]));
    }
    g711_alaw_encode(codes, in, 160);
    g711_alaw_decode(back, codes, 160);
    for (int i = 0; i < 160; i++) {
        CHECK_EQ(codes[i], g711_linear2alaw(in[i]));
        CHECK_EQ(back[i], g711_alaw2linear(codes[i]));
    }
}

static void resample_lengths_and_values(void)
{
    CHECK_EQ(resample_out_len(160, 8000, 16000), 320);
    CHECK_EQ(resample_out_len(320, 16000, 8000), 160);
    CHECK_EQ(resample_out_len(1, 48000, 8000), 1);
    CHECK_EQ(resample_out_len(0, 8000, 16000), 0);
    CHECK_EQ(resample_out_len(10, 0, 8000), -1);
    int16_t in[4] = {0, 100, 200, -32768}, out[8];
    resample_linear(out, 8, in, 4, 8000, 16000);
    const int16_t want[8] = {0, 50, 100, 150, 200, -16284, -32768, -32768};
    for (int i = 0; i < 8; i++)
        CHECK_EQ(out[i], want[i]);
}

static const struct test tests[] = {
    T(known_codes), T(decode_encode_is_identity), T(encode_is_monotonic),
    T(arrays_match_scalars), T(resample_lengths_and_values),
};
HARNESS_MAIN(tests)
