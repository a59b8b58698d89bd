/*
 * prefault.h - make memory resident now, not at its first use on the hot path.
 *
 * After setup the worker locks its future memory on fault (sched.c,
 * rtudp_w_lock_on_fault): what a channel allocates is neither faulted in nor
 * locked until it is touched, so an ADD does not pay for memory it may never use
 * (a timer queue sized for every record the TX rings could hold).  What the hot
 * path will touch is written here once, at ADD, so it faults (and is locked) then.
 * A write, not a read: reading an untouched anonymous page maps the shared zero
 * page, which the first write faults again.
 */
#ifndef RTUDP_PREFAULT_H
#define RTUDP_PREFAULT_H

#include <stddef.h>

#define RTUDP_PAGE_STRIDE 4096

static inline void rtudp_prefault(void *p, size_t len)
{
    volatile unsigned char *b = p;
    if (!b || !len)
        return;
    /* writes zeros: for memory that holds nothing yet (a calloc keeps its zeros) */
    for (size_t off = 0; off < len; off += RTUDP_PAGE_STRIDE)
        b[off] = 0;
    b[len - 1] = 0;
}

#endif /* RTUDP_PREFAULT_H */
