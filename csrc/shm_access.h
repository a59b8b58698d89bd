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
#include <stdint.h>

#define SHARED(p) ((_Atomic __typeof__(*(p)) *)(p))
#define load_acquire(p) atomic_load_explicit(SHARED(p), memory_order_acquire)
#define load_relaxed(p) atomic_load_explicit(SHARED(p), memory_order_relaxed)
#define store_release(p, v) atomic_store_explicit(SHARED(p), (v), memory_order_release)
#define store_relaxed(p, v) atomic_store_explicit(SHARED(p), (v), memory_order_relaxed)
#define fetch_add(p, v) atomic_fetch_add_explicit(SHARED(p), (v), memory_order_relaxed)
/* a counter with a single writer: no read-modify-write needed */
#define bump(p, v) store_relaxed((p), load_relaxed(p) + (v))

static inline uint64_t align8(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

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
