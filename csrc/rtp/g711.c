/*
 * g711.c - G.711 codecs (see g711.h).  The scalar functions follow the ITU
 * reference arithmetic: mu-law works on the 14-bit magnitude (sample >> 2) with
 * bias 33 and clip 8159, A-law on the 13-bit value (sample >> 3) with even-bit
 * inversion (0x55).  The tables are filled from those functions.
 */
#include "g711.h"

#include <pthread.h>
#include <stdbool.h>

#define QUANT_MASK 0x0F
#define SEG_SHIFT 4
#define SEG_MASK 0x70
#define SIGN_BIT 0x80
#define ULAW_BIAS 0x84
#define ULAW_CLIP 8159

static const int16_t seg_uend[8] = {0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF};
static const int16_t seg_aend[8] = {0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF};

static int segment(int v, const int16_t *end)
{
    int i = 0;
    while (i < 8 && v > end[i])
        i++;
    return i;
}

static uint8_t ulaw_of_14bit(int v)
{
    int mask = 0xFF;
    if (v < 0) {
        v = -v;
        mask = 0x7F;
    }
    if (v > ULAW_CLIP)
        v = ULAW_CLIP;
    v += ULAW_BIAS >> 2;
    int seg = segment(v, seg_uend);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    return (uint8_t)(((seg << 4) | ((v >> (seg + 1)) & 0xF)) ^ mask);
}

static uint8_t alaw_of_13bit(int v)
{
    int mask = 0xD5;
    if (v < 0) {
        mask = 0x55;
        v = -v - 1;
    }
    int seg = segment(v, seg_aend);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    int a = seg << SEG_SHIFT;
    a |= (seg < 2 ? v >> 1 : v >> seg) & QUANT_MASK;
    return (uint8_t)(a ^ mask);
}

static int16_t ulaw_decode_one(uint8_t u)
{
    u = (uint8_t)~u;
    int t = ((u & QUANT_MASK) << 3) + ULAW_BIAS;
    t <<= (u & SEG_MASK) >> SEG_SHIFT;
    return (int16_t)((u & SIGN_BIT) ? ULAW_BIAS - t : t - ULAW_BIAS);
}

static int16_t alaw_decode_one(uint8_t a)
{
    a ^= 0x55;
    int t = (a & QUANT_MASK) << 4;
    int seg = (a & SEG_MASK) >> SEG_SHIFT;
    if (seg == 0)
        t += 8;
    else if (seg == 1)
        t += 0x108;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((a & SIGN_BIT) ? t : -t);
}

/* index = (uint16_t)sample */
static uint8_t enc_ulaw[65536], enc_alaw[65536];
static int16_t dec_ulaw[256], dec_alaw[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (int s = -32768; s <= 32767; s++) {
        /* arithmetic right shift of a negative int is implementation-defined:
         * floor division says what we mean */
        int q2 = s >= 0 ? s / 4 : -((-s + 3) / 4);
        int q3 = s >= 0 ? s / 8 : -((-s + 7) / 8);
        enc_ulaw[(uint16_t)s] = ulaw_of_14bit(q2);
        enc_alaw[(uint16_t)s] = alaw_of_13bit(q3);
    }
    for (int c = 0; c < 256; c++) {
        dec_ulaw[c] = ulaw_decode_one((uint8_t)c);
        dec_alaw[c] = alaw_decode_one((uint8_t)c);
    }
}

static inline void tables(void) { pthread_once(&tables_once, build_tables); }

uint8_t g711_linear2ulaw(int16_t s)
{
    tables();
    return enc_ulaw[(uint16_t)s];
}
int16_t g711_ulaw2linear(uint8_t u)
{
    tables();
    return dec_ulaw[u];
}
uint8_t g711_linear2alaw(int16_t s)
{
    tables();
    return enc_alaw[(uint16_t)s];
}
int16_t g711_alaw2linear(uint8_t a)
{
    tables();
    return dec_alaw[a];
}

void g711_ulaw_encode(uint8_t *out, const int16_t *in, size_t n)
{
    tables();
    for (size_t i = 0; i < n; i++)
        out[i] = enc_ulaw[(uint16_t)in[i]];
}
void g711_ulaw_decode(int16_t *out, const uint8_t *in, size_t n)
{
    tables();
    for (size_t i = 0; i < n; i++)
        out[i] = dec_ulaw[in[i]];
}
void g711_alaw_encode(uint8_t *out, const int16_t *in, size_t n)
{
    tables();
    for (size_t i = 0; i < n; i++)
        out[i] = enc_alaw[(uint16_t)in[i]];
}
void g711_alaw_decode(int16_t *out, const uint8_t *in, size_t n)
{
    tables();
    for (size_t i = 0; i < n; i++)
        out[i] = dec_alaw[in[i]];
}
