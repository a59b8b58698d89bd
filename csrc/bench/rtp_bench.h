/* rtp_bench.h - C-only loops over the RTP jitter buffer, for `rtudp bench rtp`. */
#ifndef RTUDP_RTP_BENCH_H
#define RTUDP_RTP_BENCH_H

#include <stdint.h>

/* BEGIN CDEF */
/*
 * Pushes n packets (8 kHz, 160-byte payload) through a jitter buffer of
 * `capacity`: in order (shuffled == 0) or shuffled in windows of 10 with 10 %
 * duplicates (shuffled != 0).  Returns the nanoseconds the pushes took (packet
 * preparation excluded) and the number of released packets in *released;
 * negative on a setup failure.
 */
int64_t rtp_bench_jbuf(uint64_t n, uint32_t capacity, int shuffled, uint64_t *released);
/* END CDEF */

#endif
