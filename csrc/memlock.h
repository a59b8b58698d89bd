/*
 * memlock.h - a submitting process's memory made resident and kept so
 * (api/realtime.py, lock_memory: what it locks, in which order, and what it reports).
 *
 * A process that queues records just before their deadlines must not wait on its own
 * pages: code read back from disk after the page cache was emptied, a stack or heap
 * page touched for the first time (slow on a virtual machine whose host backs guest
 * memory on first touch).  These are the system calls for it; the policy (what fits
 * RLIMIT_MEMLOCK, what to report) is Python's.
 */
#ifndef RTUDP_MEMLOCK_H
#define RTUDP_MEMLOCK_H

#include <stddef.h>
#include <stdint.h>

/* BEGIN CDEF */
/* mlockall with MCL_CURRENT when `current`, MCL_FUTURE when `future`: 0, or errno */
int rtudp_memlock_all(int current, int future);
/* mlock of [addr, addr + len): 0, or errno */
int rtudp_memlock_range(uintptr_t addr, size_t len);
/* writes one byte in each page of `bytes` of stack below the caller's frame, so that
 * much stack is mapped (and locked under MCL_FUTURE) before it is needed; returns the
 * bytes touched (bytes is capped at RTUDP_MEMLOCK_STACK_MAX) */
size_t rtudp_memlock_prefault_stack(size_t bytes);
/* keeps freed heap memory in the process (no trim, no mmap'd chunks: glibc mallopt)
 * and makes `bytes` of heap resident; returns 0, or -1 when the allocator refused */
int rtudp_memlock_keep_heap(size_t bytes);
/* END CDEF */

/* the most stack prefault_stack touches: well inside the 8 MiB main-thread default */
#define RTUDP_MEMLOCK_STACK_MAX ((size_t)4 << 20)

#endif /* RTUDP_MEMLOCK_H */
