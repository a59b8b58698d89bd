/*
 * slotbits.h - a set of channel table slots, one bit a slot, owned by one thread
 * (the TX thread's slots being added, and those whose timers are to be dropped).
 */
#ifndef RTUDP_WORKER_SLOTBITS_H
#define RTUDP_WORKER_SLOTBITS_H

#include <stdint.h>

#include "rtudp_shm.h"

typedef uint64_t rtudp_slotbits[RTUDP_MAX_CHANNELS / 64];

static inline int rtudp_slotbits_has(const rtudp_slotbits bits, uint32_t slot)
{
    return (bits[slot / 64] >> (slot % 64)) & 1u;
}

static inline void rtudp_slotbits_add(rtudp_slotbits bits, uint32_t slot)
{
    bits[slot / 64] |= (uint64_t)1 << (slot % 64);
}

static inline void rtudp_slotbits_remove(rtudp_slotbits bits, uint32_t slot)
{
    bits[slot / 64] &= ~((uint64_t)1 << (slot % 64));
}

#endif
