/* resample.c - linear PCM16 resampling (see resample.h). */
#include "resample.h"

#include <string.h>

/* round half to even without libm (default rounding of rint, spelt out) */
static double round_half_even(double x)
{
    double fl = (double)(int64_t)x;
    if (fl > x)
        fl -= 1.0;
    double frac = x - fl;
    if (frac < 0.5)
        return fl;
    if (frac > 0.5)
        return fl + 1.0;
    return ((int64_t)fl & 1) ? fl + 1.0 : fl;
}

int64_t resample_out_len(size_t n_in, uint32_t in_rate, uint32_t out_rate)
{
    if (in_rate == 0 || out_rate == 0)
        return -1;
    if (n_in == 0)
        return 0;
    if (in_rate == out_rate)
        return (int64_t)n_in;
    double n = round_half_even((double)n_in * (double)out_rate / (double)in_rate);
    if (n > (double)(INT64_MAX / 4))
        return -1;
    return n < 1.0 ? 1 : (int64_t)n;
}

void resample_linear(int16_t *out, size_t n_out, const int16_t *in, size_t n_in, uint32_t in_rate,
                     uint32_t out_rate)
{
    if (n_in == 0 || n_out == 0)
        return;
    if (in_rate == out_rate) {
        memcpy(out, in, (n_out < n_in ? n_out : n_in) * sizeof *in);
        return;
    }
    double ratio = (double)in_rate / (double)out_rate;
    for (size_t i = 0; i < n_out; i++) {
        double pos = (double)i * ratio;
        size_t idx = (size_t)pos;
        double s;
        if (idx >= n_in - 1) {
            s = in[n_in - 1];
        } else {
            double s0 = in[idx], s1 = in[idx + 1];
            s = s0 + (s1 - s0) * (pos - (double)idx);
        }
        double r = round_half_even(s);
        out[i] = (int16_t)(r > 32767.0 ? 32767 : r < -32768.0 ? -32768 : r);
    }
}
