/*
 * resample.h - linear-interpolation resampling of 16-bit PCM (librtpsynth's
 * RtpUtils.resample_linear, same output): n_out = round-half-even(n_in * out /
 * in), at least 1; output sample i interpolates input position i * in / out,
 * rounded half to even and clamped to int16.
 */
#ifndef RTUDP_RTP_RESAMPLE_H
#define RTUDP_RTP_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Output length for n_in samples, or 0 when n_in is 0; -1 for a bad rate or when
 * the result does not fit. */
int64_t resample_out_len(size_t n_in, uint32_t in_rate, uint32_t out_rate);
/* out must hold resample_out_len() samples. */
void resample_linear(int16_t *out, size_t n_out, const int16_t *in, size_t n_in, uint32_t in_rate,
                     uint32_t out_rate);

#endif
