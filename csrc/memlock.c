/*
 * memlock.c - the system calls behind rtudp.realtime.lock_memory (see memlock.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getattr_np */
#endif
#include "memlock.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE 4096
/* stack left untouched below what prefault_stack writes: room for the calls after it */
#define STACK_MARGIN ((size_t)64 << 10)

int rtudp_memlock_all(int current, int future)
{
    int flags = (current ? MCL_CURRENT : 0) | (future ? MCL_FUTURE : 0);
    if (!flags)
        return EINVAL;
    return mlockall(flags) == 0 ? 0 : errno;
}

int rtudp_memlock_range(uintptr_t addr, size_t len)
{
    return mlock((const void *)addr, len) == 0 ? 0 : errno;
}

/* bytes of this thread's stack below `here`, less the margin; 0 when unknown */
static size_t stack_room(const void *here)
{
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return 0;
    void *lo = NULL;
    size_t size = 0;
    int rc = pthread_attr_getstack(&attr, &lo, &size);
    pthread_attr_destroy(&attr);
    uintptr_t h = (uintptr_t)here, l = (uintptr_t)lo;
    if (rc != 0 || h <= l || h - l <= STACK_MARGIN)
        return 0;
    return (size_t)(h - l) - STACK_MARGIN;
}

/* not inlined, so its frame (the touched array) lies below the caller's */
static __attribute__((noinline)) size_t touch_stack(size_t bytes)
{
    unsigned char area[bytes];
    volatile unsigned char *page = area; /* volatile: each store is made */
    for (size_t off = 0; off < bytes; off += PAGE)
        page[off] = 0;
    page[bytes - 1] = 0;
    return bytes;
}

size_t rtudp_memlock_prefault_stack(size_t bytes)
{
    unsigned char here;
    size_t room = stack_room(&here);
    if (bytes > RTUDP_MEMLOCK_STACK_MAX)
        bytes = RTUDP_MEMLOCK_STACK_MAX;
    if (bytes > room)
        bytes = room;
    /* page-aligned down, so a VLA of it is never zero-length */
    bytes &= ~(size_t)(PAGE - 1);
    return bytes ? touch_stack(bytes) : 0;
}

int rtudp_memlock_keep_heap(size_t bytes)
{
    /* freed memory stays in the heap (no trim) and large blocks come from it too
     * (no mmap per block): a block freed and allocated again is resident already */
    if (mallopt(M_TRIM_THRESHOLD, -1) != 1 || mallopt(M_MMAP_MAX, 0) != 1)
        return -1;
    if (!bytes)
        return 0;
    unsigned char *p = malloc(bytes);
    if (!p)
        return -1;
    memset(p, 0, bytes);
    /* the store must happen: the block is freed right away, yet its pages stay */
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
    return 0;
}
