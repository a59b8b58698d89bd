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

/* the words of an address (family | port << 16 | scope << 32, then the address) */
static void addr_words(const struct rtudp_sockaddr *a, uint64_t w[3])
{
    w[0] = (uint64_t)a->family | (uint64_t)a->port << 16 | (uint64_t)a->scope_id << 32;
    memcpy(&w[1], a->addr, 8);
    memcpy(&w[2], a->addr + 8, 8);
}

static void words_addr(const uint64_t w[3], struct rtudp_sockaddr *a)
{
    memset(a, 0, sizeof *a);
    a->family = (uint16_t)(w[0] & 0xffff);
    a->port = (uint16_t)(w[0] >> 16);
    a->scope_id = (uint32_t)(w[0] >> 32);
    memcpy(a->addr, &w[1], 8);
    memcpy(a->addr + 8, &w[2], 8);
}

/* write n words under the seqlock *gen (many writers: a CAS takes it); 0 or -1 busy */
static int seq_write(uint64_t *gen, uint64_t *words, const uint64_t *v, int n)
{
    for (int i = 0; i < SET_TRIES; i++) {
        uint64_t g = load_relaxed(gen);
        if ((g & 1) == 0 &&
            atomic_compare_exchange_weak_explicit(SHARED(gen), &g, g + 1,
                                                  memory_order_acquire, memory_order_relaxed)) {
            /* the odd generation is visible before the words change */
            atomic_thread_fence(memory_order_release);
            for (int j = 0; j < n; j++)
                store_relaxed(&words[j], v[j]);
            store_release(gen, g + 2);
            return 0;
        }
        cpu_relax();
    }
    return -1;
}

/* read n words under the seqlock *gen if it moved past *seen: 1 read, 0 not */
static int seq_read(const uint64_t *gen, const uint64_t *words, uint64_t *v, int n,
                    uint64_t *seen)
{
    uint64_t g1 = load_acquire(gen);
    if ((g1 & 1) || g1 == *seen)
        return 0;
    for (int j = 0; j < n; j++)
        v[j] = load_relaxed(&words[j]);
    atomic_thread_fence(memory_order_acquire);
    if (load_relaxed(gen) != g1)
        return 0; /* written meanwhile: the next call reads the new one */
    *seen = g1;
    return 1;
}

int rtudp_rtp_set_target(void *area, uint64_t area_bytes, const struct rtudp_sockaddr *a)
{
    if (!area || !area_ok(area_bytes) || !a ||
        (a->family != 0 && a->family != AF_INET && a->family != AF_INET6))
        return RTUDP_EINVAL;
    struct rtudp_rtp_area *r = area;
    uint64_t w[3];
    addr_words(a, w);
    return seq_write(&r->target_gen, r->target_word, w, 3) == 0 ? RTUDP_OK : RTUDP_ETIMEDOUT;
}

/* an address under its seqlock, if it moved past *gen: 1 read into *a, 0 not */
static int read_addr(const uint64_t *lock, const uint64_t *words, uint64_t *gen,
                     struct rtudp_sockaddr *a)
{
    uint64_t w[3];
    if (!seq_read(lock, words, w, 3, gen))
        return 0;
    words_addr(w, a);
    return 1;
}

int rtudp_rtp_get_target(const void *area, uint64_t area_bytes, uint64_t *gen,
                         struct rtudp_sockaddr *a)
{
    const struct rtudp_rtp_area *r = area;
    return r && area_ok(area_bytes) ? read_addr(&r->target_gen, r->target_word, gen, a) : 0;
}

int rtudp_rtp_set_rtcp_peer(struct rtudp_rtp_area *r, const struct rtudp_sockaddr *a)
{
    uint64_t w[3];
    addr_words(a, w);
    return seq_write(&r->rtcp_peer_gen, r->rtcp_peer_word, w, 3);
}

int rtudp_rtp_get_rtcp_peer(const void *area, uint64_t area_bytes, uint64_t *gen,
                            struct rtudp_sockaddr *a)
{
    const struct rtudp_rtp_area *r = area;
    return r && area_ok(area_bytes) ? read_addr(&r->rtcp_peer_gen, r->rtcp_peer_word, gen, a)
                                    : 0;
}

int rtudp_rtp_set_remote_clock(struct rtudp_rtp_area *r, uint64_t ntp, uint32_t rtp_ts,
                               uint32_t ssrc)
{
    uint64_t v[2] = {ntp, (uint64_t)rtp_ts | (uint64_t)ssrc << 32};
    return seq_write(&r->rtcp_clock_gen, r->rtcp_clock, v, 2);
}

int rtudp_rtp_remote_clock(const void *area, uint64_t area_bytes, uint64_t *ntp,
                           uint32_t *rtp_ts, uint32_t *ssrc)
{
    if (!area || !area_ok(area_bytes))
        return 0;
    struct rtudp_rtp_area *r = (struct rtudp_rtp_area *)area;
    uint64_t v[2], seen = 0;
    if (!seq_read(&r->rtcp_clock_gen, r->rtcp_clock, v, 2, &seen))
        return 0;
    *ntp = v[0];
    *rtp_ts = (uint32_t)v[1];
    *ssrc = (uint32_t)(v[1] >> 32);
    return 1;
}
