/*
 * ring_bench.c - C-to-C loops over an MPSC ring, for `rtudp bench ring`.
 *
 * Both loops busy-wait: the producer retries while the ring is full, with a cpu
 * relax hint, giving its core away with sched_yield() every
 * RTUDP_BENCH_YIELD_EVERY failures (the machines this runs on may have only two
 * cores shared by producer, consumer and the OS).
 *
 * The consumer lets a backlog build up: after a batch smaller than
 * RTUDP_BENCH_MIN_BATCH it spins for RTUDP_BENCH_IDLE_NS before reading again.
 * Polling the newest record in a tight loop keeps pulling its cache line (and the
 * tail's) away from the producer while it writes them: producer and consumer
 * then move in lock step, one record and two cache misses at a time, about 4x
 * slower than reading in batches.
 *
 * Errors other than full/empty stop the loop: the count done so far is
 * returned, or the negative RTUDP_* code when nothing was done.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ring_bench.h"
#include "shm_access.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define RTUDP_BENCH_YIELD_EVERY 4096u
#define RTUDP_BENCH_BATCH 1024u
#define RTUDP_BENCH_MIN_BATCH 64
#define RTUDP_BENCH_IDLE_NS 20000
#define RTUDP_BENCH_IDLE_YIELD_EVERY 64u
/* large enough for any record: get_many fails with EBUFSMALL if the first one does not fit */
#define RTUDP_BENCH_BUFSIZE (4u * 65536u)


/* one failed attempt: relax, and now and then yield the core */
static inline void backoff(uint32_t *fails)
{
    if (++*fails % RTUDP_BENCH_YIELD_EVERY == 0)
        sched_yield();
    else
        cpu_relax();
}

/* the consumer's pause: let the producer get ahead; now and then yield the core */
static void idle(uint32_t *idles)
{
    if (++*idles % RTUDP_BENCH_IDLE_YIELD_EVERY == 0)
        sched_yield();
    int64_t until = rtudp_now_ns() + RTUDP_BENCH_IDLE_NS;
    while (rtudp_now_ns() < until)
        cpu_relax();
}

static inline int64_t done_or_code(uint64_t done, int code)
{
    return done > 0 ? (int64_t)done : (int64_t)code;
}

int64_t rtudp_bench_produce(struct rtudp_mpsc *r, uint64_t n, uint32_t size)
{
    uint8_t payload[RTUDP_MAX_PAYLOAD];
    uint64_t i;
    uint32_t fails = 0;

    if (r == NULL || size > RTUDP_MAX_PAYLOAD)
        return RTUDP_EINVAL;
    memset(payload, 0, size);
    for (i = 0; i < n; i++) {
        int rc;
        /* the counter, little-endian on the usual hosts, truncated to size */
        memcpy(payload, &i, size < sizeof i ? size : sizeof i);
        while ((rc = rtudp_mpsc_try_put(r, payload, size, 0, 0)) == RTUDP_EFULL)
            backoff(&fails);
        if (rc != RTUDP_OK)
            return done_or_code(i, rc);
    }
    return (int64_t)n;
}

int64_t rtudp_bench_consume(struct rtudp_mpsc *r, uint64_t n)
{
    uint8_t *buf;
    uint32_t lens[RTUDP_BENCH_BATCH];
    int64_t send_at[RTUDP_BENCH_BATCH];
    uint64_t got = 0;
    uint32_t idles = 0;

    if (r == NULL)
        return RTUDP_EINVAL;
    buf = malloc(RTUDP_BENCH_BUFSIZE);
    if (buf == NULL)
        return RTUDP_ESYS;
    while (got < n) {
        uint64_t want = n - got < RTUDP_BENCH_BATCH ? n - got : RTUDP_BENCH_BATCH;
        int64_t k = rtudp_mpsc_get_many(r, buf, RTUDP_BENCH_BUFSIZE, lens, send_at, want);
        if (k < 0 && k != RTUDP_EMPTY) {
            free(buf);
            return done_or_code(got, (int)k);
        }
        if (k > 0)
            got += (uint64_t)k;
        if (k < RTUDP_BENCH_MIN_BATCH && got < n)
            idle(&idles);
    }
    free(buf);
    return (int64_t)got;
}
