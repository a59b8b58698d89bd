/* timing_bench.h - the machine's floor for the timing benchmarks: C senders that spin
 * (or park, then spin) to each deadline. */
#ifndef RTUDP_TIMING_BENCH_H
#define RTUDP_TIMING_BENCH_H

#include <stdint.h>

/* BEGIN CDEF */
/*
 * Sends n datagrams of `size` bytes (16..65507) on the connected UDP socket fd, the
 * i-th when CLOCK_MONOTONIC reaches start_ns + i * gap_ns, spinning until then; the
 * payload starts with (int64 i, int64 deadline), little-endian.  late_ns[i] = clock
 * read right after the send - deadline.  Returns n, or -errno of the first failed
 * send (late_ns filled up to it), or -EINVAL for bad arguments.
 */
int64_t rtudp_bench_spin_send(int fd, uint64_t n, uint32_t size, int64_t start_ns,
                              int64_t gap_ns, int64_t *late_ns);
/*
 * The same, but parking between sends: it sleeps (clock_nanosleep, absolute) until
 * spin_ns before each deadline and spins only the rest, as a program that does not
 * hold its CPU all the time must; spin_ns >= gap_ns: it never sleeps (the spinning
 * loop above).  What is left of its lateness is the machine's wake-up from an idle
 * CPU: `rtudp bench netflux` prints it next to the worker's.  Returns as above
 * (-EINVAL also for spin_ns < 0).  A SCHED_FIFO caller must park (spin_ns < gap_ns):
 * a real-time thread spinning throughout is stopped by the RT throttle.
 */
int64_t rtudp_bench_park_send(int fd, uint64_t n, uint32_t size, int64_t start_ns,
                              int64_t gap_ns, int64_t spin_ns, int64_t *late_ns);
/*
 * Spins on CLOCK_MONOTONIC for duration_ns and records every gap between two
 * successive clock reads longer than over_ns: the times the CPU was taken from the
 * calling thread (an interrupt, another task, the host stopping the VM).  For the
 * first `max` gaps, at_ns[k] = when it began (ns after the start) and len_ns[k] = its
 * length.  *reads = how many times the clock was read.  Returns the number of gaps
 * (which may exceed max), or -EINVAL for bad arguments.
 */
int64_t rtudp_bench_pause_scan(int64_t duration_ns, int64_t over_ns, uint64_t max,
                               int64_t *at_ns, int64_t *len_ns, uint64_t *reads);
/* END CDEF */

#endif
