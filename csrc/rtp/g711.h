/*
 * g711.h - ITU-T G.711 mu-law and A-law, bit-exact with the reference
 * (Sun's g711.c, which CPython's audioop uses): 16-bit linear PCM in, codes out
 * and back.  Encoding goes through 64 Ki-entry tables built once (pthread_once),
 * so a sample costs one load.
 */
#ifndef RTUDP_RTP_G711_H
#define RTUDP_RTP_G711_H

#include <stddef.h>
#include <stdint.h>

uint8_t g711_linear2ulaw(int16_t s);
int16_t g711_ulaw2linear(uint8_t u);
uint8_t g711_linear2alaw(int16_t s);
int16_t g711_alaw2linear(uint8_t a);

/* n samples <-> n codes; in and out must not overlap */
void g711_ulaw_encode(uint8_t *out, const int16_t *in, size_t n);
void g711_ulaw_decode(int16_t *out, const uint8_t *in, size_t n);
void g711_alaw_encode(uint8_t *out, const int16_t *in, size_t n);
void g711_alaw_decode(int16_t *out, const uint8_t *in, size_t n);

#endif
