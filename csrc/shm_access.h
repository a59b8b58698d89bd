/*
 * shm_access.h - how the engine's C files touch shared memory (internal; not part
 * of the layout or of any API given to Python).
 *
 * The layout in rtudp_shm.h uses plain integer fields so cffi can parse it; every
 * access to a word another process or thread may touch goes through <stdatomic.h>
 * by casting to an _Atomic pointer, as liburing does.  Counters with a single
 * writer are bumped with a relaxed load and store: readers never see a torn word,
 * and no read-modify-write is needed.
 */
#ifndef RTUDP_SHM_ACCESS_H
#define RTUDP_SHM_ACCESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SHARED(p) ((_Atomic __typeof__(*(p)) *)(p))
#define load_acquire(p) atomic_load_explicit(SHARED(p), memory_order_acquire)
#define load_relaxed(p) atomic_load_explicit(SHARED(p), memory_order_relaxed)
#define store_release(p, v) atomic_store_explicit(SHARED(p), (v), memory_order_release)
#define store_relaxed(p, v) atomic_store_explicit(SHARED(p), (v), memory_order_relaxed)
#define fetch_add(p, v) atomic_fetch_add_explicit(SHARED(p), (v), memory_order_relaxed)
/* a counter with a single writer: no read-modify-write needed */
#define bump(p, v) store_relaxed((p), load_relaxed(p) + (v))

static inline uint64_t align8(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

/*
 * Copying bytes a writer may overwrite while a reader copies them: the records of
 * the broadcast ring, which the writer overwrites under a lapped reader.  The reader
 * is a seqlock's: it copies, then looks at tail_intent again and throws the copy
 * away if the writer came by.  With memcpy on either side that race is still a data
 * race, undefined behaviour in C11 whatever happens to the copy; with relaxed atomic
 * accesses it is defined, and the writer's release fence / the reader's acquire
 * fence order the copy against tail_intent (Boehm, "Can seqlocks get along with
 * programming language memory models?", 2012; C++ P1478 "byte-wise atomic memcpy").
 * Words where the shared side is 8-aligned (records are, so both sides of a ring
 * copy on the same grid), bytes for the rest.  Across laps a word may meet an access
 * of another size (a header field, a record's last bytes): C11 leaves mixed sizes to
 * the implementation; on x86-64 and aarch64 each is one single-copy-atomic load or
 * store, and TSan treats them all as atomics.  Only for such races: memory published
 * by a release store and not rewritten until it is given back (MPSC records) is
 * copied with memcpy, which is faster for large copies.
 */
static inline void load_bytes_relaxed(void *dst, const void *shared, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = shared;
    for (; n && (uintptr_t)s % 8; n--, s++, d++)
        *d = load_relaxed(s);
    for (; n >= 8; n -= 8, s += 8, d += 8) {
        uint64_t w = load_relaxed((const uint64_t *)s);
        memcpy(d, &w, 8);
    }
    for (; n; n--, s++, d++)
        *d = load_relaxed(s);
}

static inline void store_bytes_relaxed(void *shared, const void *src, size_t n)
{
    uint8_t *d = shared;
    const uint8_t *s = src;
    for (; n && (uintptr_t)d % 8; n--, s++, d++)
        store_relaxed(d, *s);
    for (; n >= 8; n -= 8, s += 8, d += 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        store_relaxed((uint64_t *)d, w);
    }
    for (; n; n--, s++, d++)
        store_relaxed(d, *s);
}

/* one pause in a bounded spin loop */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

#endif /* RTUDP_SHM_ACCESS_H */
