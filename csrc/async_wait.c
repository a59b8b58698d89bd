/* async_wait.c - a client's side of the async waiters (async_wait.h). */
#include "async_wait.h"

#include "readers.h"
#include "ring.h"
#include "shm_access.h"

static int valid(int slot) { return slot >= 0 && slot < RTUDP_ASYNC_SLOTS; }

static void clear_bits(struct rtudp_async_wait *a, int slot)
{
    for (int d = 0; d < 2; d++)
        atomic_fetch_and_explicit(SHARED(&a->armed[d]), ~(1u << slot), memory_order_relaxed);
}

int rtudp_async_register(struct rtudp_channel_block *b, struct rtudp_worker_slot *ws,
                         uint32_t pid, int32_t fd)
{
    struct rtudp_async_wait *a = &b->async_wait;
    if (pid == 0 || fd < 0)
        return -1;
    int got = -1;
    for (int i = 0; i < RTUDP_ASYNC_SLOTS && got < 0; i++)
        if (load_relaxed(&a->slot[i].pid) == 0 && rtudp_pid_take(&a->slot[i].pid, 0, pid))
            got = i;
    for (int i = 0; i < RTUDP_ASYNC_SLOTS && got < 0; i++) {
        uint32_t old = load_relaxed(&a->slot[i].pid);
        if (rtudp_pid_gone(old) && rtudp_pid_take(&a->slot[i].pid, old, pid))
            got = i;
    }
    if (got < 0)
        return -1;
    struct rtudp_async_slot *s = &a->slot[got];
    clear_bits(a, got); /* a dead owner's */
    store_relaxed(&s->fd, fd);
    uint32_t gen = load_relaxed(&s->gen) + 1;
    store_release(&s->gen, gen ? gen : 1); /* publishes pid and fd with it */
    atomic_fetch_add_explicit(SHARED(&ws->async_posted), 1, memory_order_seq_cst);
    rtudp_bell_ring(&ws->bell);
    return got;
}

int rtudp_async_status(struct rtudp_channel_block *b, int slot, int32_t *error)
{
    if (!valid(slot))
        return RTUDP_ASYNC_FAILED;
    struct rtudp_async_slot *s = &b->async_wait.slot[slot];
    if (load_acquire(&s->answered_gen) != load_relaxed(&s->gen))
        return RTUDP_ASYNC_PENDING;
    int32_t st = load_relaxed(&s->status);
    if (error)
        *error = load_relaxed(&s->error);
    return st;
}

void rtudp_async_arm(struct rtudp_channel_block *b, int slot, int dir)
{
    if (!valid(slot) || (dir != RTUDP_ASYNC_RX && dir != RTUDP_ASYNC_TX))
        return;
    atomic_fetch_or_explicit(SHARED(&b->async_wait.armed[dir]), 1u << slot,
                             memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
}

void rtudp_async_disarm(struct rtudp_channel_block *b, int slot, int dir)
{
    if (!valid(slot) || (dir != RTUDP_ASYNC_RX && dir != RTUDP_ASYNC_TX))
        return;
    atomic_fetch_and_explicit(SHARED(&b->async_wait.armed[dir]), ~(1u << slot),
                              memory_order_relaxed);
}

int rtudp_async_release(struct rtudp_channel_block *b, int slot, uint32_t pid)
{
    if (!valid(slot) || pid == 0)
        return -1;
    struct rtudp_async_wait *a = &b->async_wait;
    if (load_relaxed(&a->slot[slot].pid) != pid)
        return -1;
    clear_bits(a, slot);
    return rtudp_pid_take(&a->slot[slot].pid, pid, 0) ? 0 : -1;
}
