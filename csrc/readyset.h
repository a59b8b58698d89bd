/*
 * readyset.h - a worker's ready set (rtudp_shm.h, struct rtudp_ready_set): producers
 * mark a channel after committing into its TX ring; the worker takes the marks and
 * reads only those channels' rings.
 *
 * Lost-wake-up safe: a producer commits, fences, then marks bits[w] and then the
 * summary; the worker exchanges the summary to 0 first and then each word it names.
 * A mark that lands after the worker took its word is seen at its next take; a mark a
 * producer skips because the bit was already set was set before the worker's exchange,
 * so the worker's read of the ring comes after the commit (both sides are seq_cst).
 * Marks are loaded before they are set: a channel already marked costs its producers
 * no atomic write.  A slot out of range (a hostile segment's) marks nothing.
 */
#ifndef RTUDP_READYSET_H
#define RTUDP_READYSET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rtudp_shm.h"
#include "shm_access.h"

static inline void rtudp_ready_mark(struct rtudp_ready_set *set, uint32_t slot)
{
    if (slot >= RTUDP_MAX_CHANNELS)
        return;
    uint32_t w = slot / 64;
    uint64_t bit = (uint64_t)1 << (slot % 64), sbit = (uint64_t)1 << (w % 64);
    if (!(atomic_load_explicit(SHARED(&set->bits[w]), memory_order_seq_cst) & bit))
        atomic_fetch_or_explicit(SHARED(&set->bits[w]), bit, memory_order_seq_cst);
    if (!(atomic_load_explicit(SHARED(&set->summary[w / 64]), memory_order_seq_cst) & sbit))
        atomic_fetch_or_explicit(SHARED(&set->summary[w / 64]), sbit, memory_order_seq_cst);
}

/* whether any channel is marked (the worker's wake-up and spin tests) */
static inline int rtudp_ready_any(const struct rtudp_ready_set *set)
{
    for (uint32_t i = 0; i < RTUDP_READY_SUMMARY; i++)
        if (atomic_load_explicit(SHARED(&set->summary[i]), memory_order_acquire))
            return 1;
    return 0;
}

/* the slots of `bits` (word w) and the words of `words` (summary word i) marked again:
 * a take that stopped leaves them for the next, as a producer's mark would (bits, then
 * summary) */
static inline void rtudp_ready_put_back(struct rtudp_ready_set *set, uint32_t i, uint32_t w,
                                        uint64_t bits, uint64_t words)
{
    atomic_fetch_or_explicit(SHARED(&set->bits[w]), bits, memory_order_seq_cst);
    atomic_fetch_or_explicit(SHARED(&set->summary[i]), words | (uint64_t)1 << (w % 64),
                             memory_order_seq_cst);
}

/* worker: take the marks, calling fn(ctx, slot) for each slot marked, in slot order,
 * until fn returns false: that slot and those after it stay marked (two atomic ORs,
 * whatever their number).  How many fn took. */
static inline uint32_t rtudp_ready_take(struct rtudp_ready_set *set,
                                        bool (*fn)(void *ctx, uint32_t slot), void *ctx)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < RTUDP_READY_SUMMARY; i++) {
        if (!atomic_load_explicit(SHARED(&set->summary[i]), memory_order_relaxed))
            continue;
        uint64_t words = atomic_exchange_explicit(SHARED(&set->summary[i]), 0,
                                                  memory_order_seq_cst);
        while (words) {
            uint32_t w = i * 64 + (uint32_t)__builtin_ctzll(words);
            words &= words - 1;
            if (w >= RTUDP_READY_WORDS)
                continue;
            uint64_t bits = atomic_exchange_explicit(SHARED(&set->bits[w]), 0,
                                                     memory_order_seq_cst);
            while (bits) {
                uint32_t slot = w * 64 + (uint32_t)__builtin_ctzll(bits);
                if (!fn(ctx, slot)) {
                    rtudp_ready_put_back(set, i, w, bits, words);
                    return n;
                }
                bits &= bits - 1;
                n++;
            }
        }
    }
    return n;
}

#endif /* RTUDP_READYSET_H */
