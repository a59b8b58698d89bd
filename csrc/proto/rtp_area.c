/*
 * rtp_area.c - the rtp kind area's send target: a seqlock over atomic words, so a
 * client may retarget a channel while the worker sends (RtpServer.set_target).
 * Writers (any client process) take the lock by moving the generation from even
 * to odd with a CAS; the reader (the worker's TX thread) never waits: a write in
 * progress just means "read it at the next record".
 */
#include <string.h>
#include <sys/socket.h>

#include "kinds.h"
#include "proto/rtp_area.h"
#include "ring.h"
#include "shm_access.h"

/* the rtp kind area, for kinds.c (what Python reads of it) */
RTUDP_KIND_AREA(rtp, struct rtudp_rtp_area, RTUDP_RTP_AREA_COUNTERS, NULL);

#define SET_TRIES 100000 /* CAS attempts (~1 ms) before giving up on a busy target */

static int area_ok(uint64_t area_bytes)
{
    return area_bytes >= sizeof(struct rtudp_rtp_area);
}

int rtudp_rtp_set_target(void *area, uint64_t area_bytes, const struct rtudp_sockaddr *a)
{
    if (!area || !area_ok(area_bytes) || !a ||
        (a->family != 0 && a->family != AF_INET && a->family != AF_INET6))
        return RTUDP_EINVAL;
    struct rtudp_rtp_area *r = area;
    uint64_t w0 = (uint64_t)a->family | (uint64_t)a->port << 16 | (uint64_t)a->scope_id << 32;
    uint64_t w1, w2;
    memcpy(&w1, a->addr, 8);
    memcpy(&w2, a->addr + 8, 8);
    for (int i = 0; i < SET_TRIES; i++) {
        uint64_t g = load_relaxed(&r->target_gen);
        if ((g & 1) == 0 &&
            atomic_compare_exchange_weak_explicit(SHARED(&r->target_gen), &g, g + 1,
                                                  memory_order_acquire, memory_order_relaxed)) {
            /* the odd generation is visible before the words change */
            atomic_thread_fence(memory_order_release);
            store_relaxed(&r->target_word[0], w0);
            store_relaxed(&r->target_word[1], w1);
            store_relaxed(&r->target_word[2], w2);
            store_release(&r->target_gen, g + 2);
            return RTUDP_OK;
        }
        cpu_relax();
    }
    return RTUDP_ETIMEDOUT;
}

int rtudp_rtp_get_target(const void *area, uint64_t area_bytes, uint64_t *gen,
                         struct rtudp_sockaddr *a)
{
    if (!area || !area_ok(area_bytes))
        return 0;
    struct rtudp_rtp_area *r = (struct rtudp_rtp_area *)area;
    uint64_t g1 = load_acquire(&r->target_gen);
    if ((g1 & 1) || g1 == *gen)
        return 0;
    uint64_t w0 = load_relaxed(&r->target_word[0]);
    uint64_t w1 = load_relaxed(&r->target_word[1]);
    uint64_t w2 = load_relaxed(&r->target_word[2]);
    atomic_thread_fence(memory_order_acquire);
    if (load_relaxed(&r->target_gen) != g1)
        return 0; /* written meanwhile: the next call reads the new one */
    memset(a, 0, sizeof *a);
    a->family = (uint16_t)(w0 & 0xffff);
    a->port = (uint16_t)(w0 >> 16);
    a->scope_id = (uint32_t)(w0 >> 32);
    memcpy(a->addr, &w1, 8);
    memcpy(a->addr + 8, &w2, 8);
    *gen = g1;
    return 1;
}
