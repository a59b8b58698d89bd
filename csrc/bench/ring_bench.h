/* ring_bench.h - C-to-C loops over the same rings, for `rtudp bench ring`. */
#ifndef RTUDP_RING_BENCH_H
#define RTUDP_RING_BENCH_H

#include "ring.h"

/* BEGIN CDEF */
/* puts n records of `size` bytes (spinning while full); returns records put */
int64_t rtudp_bench_produce(struct rtudp_mpsc *r, uint64_t n, uint32_t size);
/* gets n records (spinning while empty, in batches); returns records got */
int64_t rtudp_bench_consume(struct rtudp_mpsc *r, uint64_t n);
/* END CDEF */

#endif
