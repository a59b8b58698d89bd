/*
 * rtp_bench.c - the jitter buffer driven from C (see rtp_bench.h).  Datagrams
 * come from a ring of 1024 prebuilt packets whose seq/ts are rewritten before
 * each push (two stores; the buffer must parse a fresh header each time, as in
 * the worker), so n is not bounded by memory.  The push order is precomputed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime under -std=c11 */
#endif
#include "rtp_bench.h"

#include <stdlib.h>
#include <time.h>

#include "rtp/jbuf.h"

#define RING 1024u
#define PLEN 160u
#define PKT (RTP_HDR_MIN + PLEN)

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void count(void *ctx, const struct rtp_jb_frame *f)
{
    if (f->kind == RTP_JB_PACKET)
        ++*(uint64_t *)ctx;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* the order in which sequence offsets are pushed */
static uint32_t *push_order(uint64_t n, int shuffled, uint64_t *len)
{
    uint32_t *o = malloc((size_t)(n + n / 5 + 10) * sizeof *o);
    if (!o)
        return NULL;
    uint64_t k = 0, s = 88172645463325252ull;
    for (uint64_t w = 0; w < n; w += 10) {
        uint32_t win[10];
        uint32_t m = (uint32_t)(n - w < 10 ? n - w : 10);
        for (uint32_t i = 0; i < m; i++)
            win[i] = (uint32_t)(w + i);
        for (uint32_t i = m; shuffled && i > 1; i--) {
            uint32_t j = (uint32_t)(xorshift(&s) % i), t = win[i - 1];
            win[i - 1] = win[j];
            win[j] = t;
        }
        for (uint32_t i = 0; i < m; i++) {
            o[k++] = win[i];
            if (shuffled && xorshift(&s) % 10 == 0)
                o[k++] = win[i];
        }
    }
    *len = k;
    return o;
}

int64_t rtp_bench_jbuf(uint64_t n, uint32_t capacity, int shuffled, uint64_t *released)
{
    if (n == 0 || n > (1ull << 31))
        return RTP_E_ARG;
    uint64_t len;
    uint32_t *order = push_order(n, shuffled, &len);
    uint8_t *ring = calloc(RING, PKT);
    struct rtp_jbuf jb;
    if (!order || !ring || rtp_jbuf_init(&jb, capacity, 0, 8000) != 0) {
        free(order);
        free(ring);
        return RTP_E_ARG;
    }
    for (uint32_t i = 0; i < RING; i++) {
        uint8_t *p = ring + (size_t)i * PKT;
        p[0] = 0x80;
        rtp_put32(p + 8, 0x5EED);
    }
    *released = 0;
    int64_t now = mono_ns(), t0 = now;
    for (uint64_t i = 0; i < len; i++) {
        uint8_t *p = ring + (i % RING) * PKT;
        uint32_t seq = order[i];
        rtp_put16(p + 2, (uint16_t)seq);
        rtp_put32(p + 4, seq * PLEN);
        rtp_jbuf_push(&jb, p, PKT, i, now, count, released);
    }
    rtp_jbuf_flush(&jb, count, released);
    int64_t dt = mono_ns() - t0;
    rtp_jbuf_destroy(&jb, NULL, NULL);
    free(order);
    free(ring);
    return dt;
}
