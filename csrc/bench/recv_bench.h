/* recv_bench.h - a C receive loop, the peer of `rtudp bench throughput`'s receive side. */
#ifndef RTUDP_RECV_BENCH_H
#define RTUDP_RECV_BENCH_H

#include <stdint.h>

/* BEGIN CDEF */
/* reads socket fd with recvmmsg (RTUDP_BENCH_RECV_BATCH datagrams of at most `size`
 * bytes a call, MSG_DONTWAIT) until it has nothing or `max` were read; returns how many,
 * or a negative errno when the first call failed */
int64_t rtudp_bench_recvmmsg(int fd, uint64_t max, uint32_t size);
/* END CDEF */

#endif
