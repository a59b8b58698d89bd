/* generator.c - RTP sender state (see generator.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "generator.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define US_PER_S 1000000u

int rtp_random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int rtp_gen_init(struct rtp_gen *g, uint32_t clock_rate, uint32_t ptime_us)
{
    if (clock_rate == 0 || clock_rate > RTP_GEN_MAX_RATE || ptime_us == 0 ||
        ptime_us > RTP_GEN_MAX_PTIME_US)
        return RTP_E_ARG;
    struct {
        uint32_t ssrc, ts;
        uint16_t seq;
    } r;
    int rc = rtp_random_bytes(&r, sizeof r);
    if (rc < 0)
        return rc;
    memset(g, 0, sizeof *g);
    g->ssrc = r.ssrc;
    g->ts = r.ts;
    g->seq = r.seq;
    g->clock_rate = clock_rate;
    g->ptime_us = ptime_us;
    g->step_num = (uint64_t)clock_rate * ptime_us;
    g->marker = true; /* the first packet starts a talkspurt */
    return RTP_OK;
}

uint32_t rtp_gen_step(struct rtp_gen *g)
{
    uint64_t t = g->step_num + g->frac;
    g->frac = t % US_PER_S;
    return (uint32_t)(t / US_PER_S);
}

static inline void write_header(struct rtp_gen *g, uint8_t *out, uint8_t pt)
{
    out[0] = 0x80;
    out[1] = (uint8_t)((g->marker ? 0x80 : 0) | pt);
    rtp_put16(out + 2, g->seq);
    rtp_put32(out + 4, g->ts);
    rtp_put32(out + 8, g->ssrc);
    g->marker = false;
    g->seq++; /* uint16_t: wraps mod 2^16 as RFC 3550 wants */
    g->ts += rtp_gen_step(g);
}

static int check_pt(const struct rtp_gen *g, uint8_t pt)
{
    if (pt > 127)
        return RTP_E_ARG;
    if (g->marker && pt >= 72 && pt <= 76)
        return RTP_E_RTCP;
    return RTP_OK;
}

int rtp_gen_next(struct rtp_gen *g, uint8_t *out, size_t cap, uint8_t pt, const uint8_t *payload,
                 size_t payload_len, size_t plen, int64_t now_ns)
{
    int rc = check_pt(g, pt);
    if (rc < 0)
        return rc;
    if (payload && payload_len > plen)
        return RTP_E_ARG;
    if (plen > INT32_MAX - RTP_HDR_MIN)
        return RTP_E_ARG;
    if (cap < RTP_HDR_MIN + plen)
        return RTP_E_NOSPACE;
    size_t given = payload ? payload_len : 0;
    if (given)
        memcpy(out + RTP_HDR_MIN, payload, given);
    memset(out + RTP_HDR_MIN + given, 0, plen - given);
    write_header(g, out, pt);
    g->last_ns = now_ns;
    return (int)(RTP_HDR_MIN + plen);
}

int rtp_gen_header(struct rtp_gen *g, uint8_t *out, uint8_t pt, int64_t now_ns)
{
    int rc = check_pt(g, pt);
    if (rc < 0)
        return rc;
    write_header(g, out, pt);
    g->last_ns = now_ns;
    return (int)RTP_HDR_MIN;
}

int rtp_gen_batch(struct rtp_gen *g, uint8_t *out, size_t cap, uint32_t n, uint8_t pt,
                  size_t plen, int64_t now_ns)
{
    int rc = check_pt(g, pt);
    if (rc < 0)
        return rc;
    if (plen > INT32_MAX - RTP_HDR_MIN)
        return RTP_E_ARG;
    size_t stride = RTP_HDR_MIN + plen;
    if (n > INT32_MAX || (n && cap / n < stride))
        return RTP_E_NOSPACE;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *p = out + (size_t)i * stride;
        memset(p + RTP_HDR_MIN, 0, plen);
        write_header(g, p, pt);
    }
    if (n)
        g->last_ns = now_ns;
    return (int)n;
}

void rtp_gen_skip(struct rtp_gen *g, uint32_t n)
{
    /* n * step without a loop: both products fit 64 bits (step_num <= 1e14) */
    uint64_t whole = g->step_num / US_PER_S, rem = g->step_num % US_PER_S;
    uint64_t frac = g->frac + (uint64_t)n * rem;
    g->ts += (uint32_t)((uint64_t)n * whole + frac / US_PER_S);
    g->frac = frac % US_PER_S;
    if (n)
        g->marker = true;
}

bool rtp_gen_set_marker(struct rtp_gen *g, bool on)
{
    bool old = g->marker;
    g->marker = on;
    return old;
}

void rtp_gen_resync_clock(struct rtp_gen *g, int64_t now_ns)
{
    if (g->last_ns != 0 && now_ns > g->last_ns) {
        uint64_t d = (uint64_t)(now_ns - g->last_ns);
        /* ticks = d * rate / 1e9 without overflowing 64 bits */
        uint64_t ticks = d / 1000000000u * g->clock_rate +
                         d % 1000000000u * g->clock_rate / 1000000000u;
        g->ts += (uint32_t)ticks;
    }
    g->last_ns = now_ns;
    g->marker = true;
}
