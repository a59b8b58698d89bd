/* readers.c - claim and release the reader and tap slots of a channel block (readers.h). */
#include "readers.h"

#include <stdint.h>

#include "procstat.h"
#include "shm_access.h"

int rtudp_pid_gone(uint32_t pid)
{
    /* no process has a pid above INT32_MAX: a word that says so is nobody's */
    return pid != 0 && (pid > INT32_MAX || rtudp_pid_exited((int32_t)pid));
}

int rtudp_pid_take(uint32_t *slot, uint32_t expect, uint32_t pid)
{
    return atomic_compare_exchange_strong_explicit(SHARED(slot), &expect, pid,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

int rtudp_reader_claim(struct rtudp_channel_block *b, uint32_t pid)
{
    if (pid == 0)
        return -1;
    for (int i = 0; i < RTUDP_READER_SLOTS; i++)
        if (load_relaxed(&b->reader_pid[i]) == 0 && rtudp_pid_take(&b->reader_pid[i], 0, pid))
            return i;
    for (int i = 0; i < RTUDP_READER_SLOTS; i++) {
        uint32_t old = load_relaxed(&b->reader_pid[i]);
        if (rtudp_pid_gone(old) && rtudp_pid_take(&b->reader_pid[i], old, pid))
            return i;
    }
    return -1;
}

int rtudp_reader_release(struct rtudp_channel_block *b, int slot, uint32_t pid)
{
    if (slot < 0 || slot >= RTUDP_READER_SLOTS || pid == 0)
        return -1;
    return rtudp_pid_take(&b->reader_pid[slot], pid, 0) ? 0 : -1;
}

uint32_t rtudp_reader_pid(const struct rtudp_channel_block *b, int slot)
{
    if (slot < 0 || slot >= RTUDP_READER_SLOTS)
        return 0;
    return load_acquire((uint32_t *)&b->reader_pid[slot]);
}

/* ------------------------------------------------------------------ taps */

/* slot i emptied of `pid` by us (exactly one party wins the CAS): one tap fewer */
static int tap_free(struct rtudp_channel_block *b, int i, uint32_t pid)
{
    if (!rtudp_pid_take(&b->tap.pid[i], pid, 0))
        return 0;
    atomic_fetch_sub_explicit(SHARED(&b->tap.attached), 1u, memory_order_acq_rel);
    return 1;
}

int rtudp_tap_reap(struct rtudp_channel_block *b)
{
    int n = 0;
    for (int i = 0; i < RTUDP_TAP_SLOTS; i++) {
        uint32_t old = load_relaxed(&b->tap.pid[i]);
        if (rtudp_pid_gone(old))
            n += tap_free(b, i, old);
    }
    return n;
}

int rtudp_tap_claim(struct rtudp_channel_block *b, uint32_t pid)
{
    if (pid == 0)
        return -1;
    rtudp_tap_reap(b);
    for (int i = 0; i < RTUDP_TAP_SLOTS; i++)
        if (load_relaxed(&b->tap.pid[i]) == 0 && rtudp_pid_take(&b->tap.pid[i], 0, pid)) {
            atomic_fetch_add_explicit(SHARED(&b->tap.attached), 1u, memory_order_acq_rel);
            return i;
        }
    return -1;
}

int rtudp_tap_release(struct rtudp_channel_block *b, int slot, uint32_t pid)
{
    if (slot < 0 || slot >= RTUDP_TAP_SLOTS || pid == 0)
        return -1;
    return tap_free(b, slot, pid) ? 0 : -1;
}

void rtudp_tap_add_lost(struct rtudp_channel_block *b, uint64_t n)
{
    fetch_add(&b->tap_count.lost, n);
}

uint32_t rtudp_tap_pid(const struct rtudp_channel_block *b, int slot)
{
    if (slot < 0 || slot >= RTUDP_TAP_SLOTS)
        return 0;
    return load_acquire((uint32_t *)&b->tap.pid[slot]);
}
