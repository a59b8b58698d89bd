/* rx_publish.c - the RX side's one writer: the token, and publishing (rx_publish.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "rx_publish.h"

#include <string.h>
#include <sys/types.h>

#include "hist.h"
#include "procstat.h"
#include "shm_access.h"
#include "worker/netio.h"

static bool async_waiters(const struct rtudp_channel_block *b)
{
    for (int i = 0; i < RTUDP_ASYNC_SLOTS; i++)
        if (load_relaxed(&b->async_wait.slot[i].pid) != 0)
            return true;
    return false;
}

bool rtudp_drx_terms(const struct rtudp_channel_block *b)
{
    uint32_t paused = load_relaxed(&b->direct.state);
    return load_acquire(&b->direct_rx.allowed) == 1 && load_relaxed(&b->direct_rx.impaired) == 0 &&
           load_relaxed(&b->tap.attached) == 0 && paused != RTUDP_DIRECT_NOT_NOW &&
           paused != RTUDP_DIRECT_REVOKED && !async_waiters(b);
}

static bool cas(struct rtudp_channel_block *b, uint32_t from, uint32_t to)
{
    return atomic_compare_exchange_strong_explicit(SHARED(&b->direct_rx.state), &from, to,
                                                   memory_order_acq_rel, memory_order_acquire);
}

/* a reader whose process is gone (its lease no longer says anything) */
static bool holder_gone(const struct rtudp_channel_block *b)
{
    return rtudp_pid_exited((int32_t)load_relaxed(&b->direct_rx.holder_pid));
}

bool rtudp_drx_worker_take(struct rtudp_channel_block *b, int64_t now)
{
    uint32_t state = load_acquire(&b->direct_rx.state);
    switch (state) {
    case RTUDP_DRX_FREE:
        return cas(b, state, RTUDP_DRX_WORKER);
    case RTUDP_DRX_WORKER:
        return true; /* ours already (a drain that did not give it back: same thread) */
    case RTUDP_DRX_WAIT:
    case RTUDP_DRX_LEASE:
        if (now <= load_relaxed(&b->direct_rx.lease_until_ns) && !holder_gone(b))
            return false;
        break;
    case RTUDP_DRX_READING:
        if (!holder_gone(b))
            return false;
        break;
    default: /* a value no party writes: the worker's, repaired */
        break;
    }
    if (!cas(b, state, RTUDP_DRX_WORKER))
        return false;
    bump(&b->direct_rx.reclaims, 1);
    return true;
}

void rtudp_drx_worker_give(struct rtudp_channel_block *b)
{
    store_release(&b->direct_rx.state, RTUDP_DRX_FREE);
}

void rtudp_drx_worker_reset(struct rtudp_channel_block *b)
{
    uint32_t state = load_acquire(&b->direct_rx.state);
    if (state == RTUDP_DRX_WORKER || state > RTUDP_DRX_LEASE)
        cas(b, state, RTUDP_DRX_FREE);
}

int64_t rtudp_drx_check_at(const struct rtudp_channel_block *b, int64_t now)
{
    int64_t until = load_relaxed(&b->direct_rx.lease_until_ns);
    /* at the lease's end, but never in a loop (a lease renewed just now) nor later than
     * a lease from now (a reader in a call, or one that exited) */
    int64_t soonest = now + RTUDP_DRX_LEASE_NS / 20, latest = now + RTUDP_DRX_LEASE_NS;
    return until < soonest ? soonest : until > latest ? latest : until + 1;
}

bool rtudp_drx_reader_waits(const struct rtudp_channel_block *b)
{
    uint32_t state = load_relaxed(&b->direct_rx.state);
    return state == RTUDP_DRX_WAIT || state == RTUDP_DRX_READING;
}

uint32_t rtudp_rx_cap_for(const struct rtudp_bcast *ring, uint32_t max_datagram)
{
    uint64_t room = ring->max_payload > RTUDP_RX_META_ROOM ? ring->max_payload - RTUDP_RX_META_ROOM : 0;
    uint64_t cap = max_datagram ? max_datagram : RTUDP_MAX_PAYLOAD;
    if (cap > RTUDP_MAX_PAYLOAD)
        cap = RTUDP_MAX_PAYLOAD;
    return (uint32_t)(cap < room ? cap : room);
}

uint64_t rtudp_rx_seq_next(struct rtudp_channel_block *b)
{
    uint64_t seq = load_relaxed(&b->direct_rx.next_seq);
    store_relaxed(&b->direct_rx.next_seq, seq + 1);
    return seq;
}

void rtudp_rx_publish(struct rtudp_channel_block *b, struct rtudp_bcast *ring,
                      struct rtudp_rx_pkt *pkts, int n)
{
    uint64_t bytes = 0, trunc = 0, errs = 0;
    /* counted before they are published: a reader that has a datagram sees it
     * counted (rx_packets is what the socket gave, published or not) */
    for (int i = 0; i < n; i++)
        bytes += pkts[i].len;
    bump(&b->rx_packets, (uint64_t)n);
    bump(&b->rx_bytes, bytes);
    for (int i = 0; i < n; i++) {
        struct rtudp_rx_pkt *p = &pkts[i];
        struct rtudp_rx_meta *m = (struct rtudp_rx_meta *)((uint8_t *)p->buf - RTUDP_RX_META_ROOM);
        rtudp_rx_source(p, &m->source);
        m->rx_ns = p->rx_ns;
        m->hw_ns = p->hw_raw_ns;
        m->rx_seq = rtudp_rx_seq_next(b);
        m->flags = ((p->flags & RTUDP_RX_TRUNC) ? RTUDP_RX_TRUNCATED : 0) |
                   ((p->flags & RTUDP_RX_KERNEL_TS) ? RTUDP_RX_SOFTWARE_STAMP : 0);
        m->pad = 0;
        if (rtudp_bcast_write(ring, m, RTUDP_RX_META_ROOM + p->len, 0, p->rx_ns) != RTUDP_OK) {
            errs++; /* cannot happen while cap fits the ring; counted, never a crash */
            continue;
        }
        rtudp_hist_record(&b->rx_delay, rtudp_now_ns() - p->rx_ns);
        trunc += (p->flags & RTUDP_RX_TRUNC) != 0;
    }
    if (trunc)
        bump(&b->rx_truncated, trunc);
    if (errs)
        bump(&b->rx_errors, errs);
}

void rtudp_rx_note_drops(struct rtudp_channel_block *b, const struct rtudp_rx_pkt *p)
{
    if (p->flags & RTUDP_RX_DROPS)
        store_relaxed(&b->rx_kernel_drops, (uint64_t)p->drops);
}

unsigned rtudp_rx_split(const struct rtudp_rx_pkt *p, uint32_t cap, uint32_t *off,
                        uint8_t *seg_buf, struct rtudp_rx_pkt *segs, unsigned max)
{
    const uint8_t *src = p->buf;
    uint32_t total = p->len; /* <= RTUDP_RX_RECV_MAX: the receive's cap */
    unsigned n = 0;
    size_t at = 0;
    if (max > RTUDP_RX_SEG_MAX)
        max = RTUDP_RX_SEG_MAX;
    while (*off < total && n < max && p->gso_size) {
        uint32_t wire = total - *off < p->gso_size ? total - *off : p->gso_size;
        uint32_t keep = wire < cap ? wire : cap;
        struct rtudp_rx_pkt *s = &segs[n++];
        *s = *p;
        s->gso_size = 0;
        s->buf = seg_buf + at + RTUDP_RX_META_ROOM;
        s->cap = keep;
        s->len = keep;
        s->wire_len = wire;
        s->flags = (p->flags & ~(uint32_t)RTUDP_RX_TRUNC) | (keep < wire ? RTUDP_RX_TRUNC : 0);
        memcpy(s->buf, src + *off, keep);
        at += RTUDP_RX_SLOT(keep);
        *off += wire;
    }
    return n;
}

void rtudp_rx_in_order(struct rtudp_channel_block *b, struct rtudp_rx_pkt *pkts, int n,
                       uint32_t cap, uint8_t *seg_buf, rtudp_rx_sink sink, void *ctx)
{
    int from = 0;
    for (int i = 0; i < n; i++) {
        struct rtudp_rx_pkt *p = &pkts[i];
        rtudp_rx_note_drops(b, p);
        if (!p->gso_size || !seg_buf) {
            if (p->len > cap) {
                p->len = cap;
                p->flags |= RTUDP_RX_TRUNC;
            }
            continue;
        }
        if (i > from)
            sink(ctx, pkts + from, i - from);
        struct rtudp_rx_pkt segs[RTUDP_RX_SEG_MAX];
        uint32_t off = 0;
        unsigned k;
        while ((k = rtudp_rx_split(p, cap, &off, seg_buf, segs, RTUDP_RX_SEG_MAX)) > 0)
            sink(ctx, segs, (int)k);
        from = i + 1;
    }
    if (n > from)
        sink(ctx, pkts + from, n - from);
}
