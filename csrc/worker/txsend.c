/*
 * txsend.c - what the TX thread does to send: the due packets of one channel with one
 * sendmmsg (or GSO sends of same-size runs), a kind's datagram sent at once (or, held
 * by the impairment, from the channel's TX hold when due), and what
 * follows a send: TX stamps and lateness, the journal a successor reads if we die in
 * the send, freeing ring space once a packet has left.
 *
 * The loop (txloop.c) decides when; this file only sends.  It calls nothing of the
 * loop, the commands or the channel table (worker.h's file map), so a kind may send
 * from its timer hook (rtudp_tx_send_now) without a cycle between the files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "txfault.h"
#include "txjournal.h"
#include "worker.h"

#define EAGAIN_BACKOFF_NS 50000LL   /* socket buffer full: retry after this */
/* TX stamps are read in batches, each read being a system call: once this many wait
 * (the loop reads them too: before a long park, and every STAMP_HOLD_NS of txloop.c) */
#define STAMP_BATCH 32

void rtudp_tx_release(struct rtudp_chan *c)
{
    uint64_t upto = rtudp_inflight_release_point(&c->inflight);
    if (rtudp_inflight_empty(&c->inflight))
        upto = c->cursor; /* padding the tracker never saw */
    if (upto == load_relaxed(&c->tx.ring->head))
        return;
    if (rtudp_mpsc_release(&c->tx, upto) != RTUDP_OK)
        rtudp_tx_fault(c, "head moved under us", upto);
    else /* event loops waiting for room (asyncwake.h) */
        rtudp_async_wake(&c->block->async_wait, RTUDP_ASYNC_TX, &c->tx_waiters);
}

static void on_stamp(void *ctx, uint32_t key, int64_t mono_ns)
{
    struct rtudp_chan *c = ctx;
    rtudp_txstamps_stamp(&c->stamps, c->block, key, mono_ns);
}

void rtudp_tx_read_stamps(struct rtudp_chan *c, int64_t now)
{
    if (!c->caps.sw_tx)
        return;
    /* as many as are awaited: one receive for a channel that sent one packet */
    rtudp_net_read_tx_stamps_n(c->tx_fd, c->stamps.len ? c->stamps.len : UINT32_MAX, on_stamp, c);
    rtudp_txstamps_expire(&c->stamps, c->block, now);
    c->stamps_read_ns = now;
}

/* packets p[0..packets) that left under one key (one, or a GSO send's): their
 * lateness, and their tap copies' time (tap.h), come with the kernel's TX stamp, else
 * from the send */
static void departed(struct rtudp_chan *c, const struct rtudp_tx_pkt *p, int64_t asked_ns,
                     int arrived_late, uint64_t packets)
{
    struct rtudp_tap_mark tap = {0, 0};
    if (rtudp_tap_on(&c->tap))
        rtudp_tap_tx_stage(&c->tap, p, packets, &tap);
    if (c->caps.sw_tx && p->stamped) {
        rtudp_txstamps_sent(&c->stamps, c->block, p->tskey, asked_ns, p->sent_ns, packets,
                            arrived_late, &tap);
    } else {
        rtudp_txstamps_record(&c->stamps, c->block, asked_ns, p->sent_ns, 0, packets,
                              arrived_late);
        rtudp_tap_tx_publish(&c->tap, &tap, p->sent_ns, 0);
    }
}

/* the records about to go, with their TX-stamp keys, for a successor if we die in
 * the send (txjournal.h); only where the kernel's stamps can prove a departure.  A
 * lone packet, which asks for no stamp (netio.h, rtudp_net_send_batch), is journalled
 * too: the successor then counts it as sent again (tx_restart_resent).  Its key is
 * one no stamp carries: the socket's next, which it does not use */
static void journal_begin(struct rtudp_chan *c, const struct rtudp_timer *due,
                          const uint32_t *idx, uint32_t n, int one_key)
{
    uint32_t key0;
    if (!c->caps.sw_tx || rtudp_net_next_key(c->tx_fd, &key0) != RTUDP_OK)
        return;
    uint64_t pos[RTUDP_TX_JOURNAL_MAX];
    if (n > RTUDP_TX_JOURNAL_MAX)
        n = RTUDP_TX_JOURNAL_MAX;
    for (uint32_t k = 0; k < n; k++)
        pos[k] = due[idx[k]].ring_pos;
    rtudp_txj_begin(&c->block->tx_journal, key0, one_key, pos, n);
}

/*
 * GSO runs: due timers that can leave as one GSO send have the same length (not 0),
 * the same deadline (one TX stamp then times them all) and came alike, in time or
 * late (their lateness has one cause), within the kernel's limits.  Immediate sends
 * taken in one pass share their deadline (the time they were taken), so a send_many
 * batch goes as a few GSO sends.
 */
static bool joins_run(const struct rtudp_timer *first, const struct rtudp_timer *t,
                      uint64_t bytes_before)
{
    return t->len == first->len && t->asked_ns == first->asked_ns &&
           t->arrived_late == first->arrived_late &&
           bytes_before + t->len <= RTUDP_NET_GSO_BYTES;
}

/* how many of idx[0..n) form the GSO run starting at idx[0] (1: none) */
static uint32_t gso_run(const struct rtudp_timer *due, const uint32_t *idx, uint32_t n)
{
    const struct rtudp_timer *t0 = &due[idx[0]];
    if (t0->len == 0)
        return 1;
    uint32_t k = 1;
    while (k < n && k < RTUDP_NET_GSO_MAX && joins_run(t0, &due[idx[k]], (uint64_t)k * t0->len))
        k++;
    return k;
}

/* whether a GSO run of two or more starts at idx[0] */
static bool gso_starts(const struct rtudp_timer *due, const uint32_t *idx, uint32_t n)
{
    return n >= 2 && due[idx[0]].len != 0 && joins_run(&due[idx[0]], &due[idx[1]], due[idx[0]].len);
}

struct tally {
    uint64_t sent, bytes, dropped;
};

/* the timer's packet is gone (sent, or dropped for good): free its ring record */
static void finish(struct rtudp_chan *c, const struct rtudp_timer *t)
{
    rtudp_mpsc_mark_sent(&c->tx, t->ring_pos);
    rtudp_inflight_done_at(&c->inflight, t->slot, t->ring_pos);
}

/* One GSO send of idx[0..k).  1: sent; 0: the socket is full (nothing went);
 * -1: the kernel refused to segment (nothing went: send them one by one). */
static int send_gso(struct rtudp_chan *c, struct rtudp_timer *due, const uint32_t *idx,
                    struct rtudp_tx_pkt *pkts, uint32_t k, const struct sockaddr *dst,
                    struct tally *y)
{
    journal_begin(c, due, idx, k, 1);
    int r = rtudp_net_send_gso(c->tx_fd, pkts, k, dst, c->dst_len);
    int e = errno;
    if (r == (int)k) {
        for (uint32_t q = 0; q < k; q++) {
            finish(c, &due[idx[q]]);
            y->bytes += due[idx[q]].len;
        }
        y->sent += k;
        departed(c, &pkts[0], due[idx[0]].asked_ns, due[idx[0]].arrived_late, k);
    }
    rtudp_txj_end(&c->block->tx_journal);
    if (r == (int)k)
        return 1;
    return e == EAGAIN || e == EWOULDBLOCK ? 0 : -1;
}

/*
 * A channel's state is spread over its own pages: the worker's struct, the channel
 * block, the ring's header and record, the in-flight and TX-stamp entries.  With
 * thousands of channels all of it is cold by a channel's next packet, and a send
 * that meets each miss in turn waits out one memory latency (and, on a VM, one
 * two-level page walk) after another.  Asked for together, ahead of the send, they
 * overlap.  Only what the send path itself reads or writes is asked for: the
 * struct's lines as the send and the rekey after it touch them, dst only where the
 * socket is not connected, the block's late counts (written for a packet that left
 * late, as most do under a lateness budget).
 */
void rtudp_tx_prefetch(const struct rtudp_chan *c, const struct rtudp_timer *t)
{
    __builtin_prefetch(&c->tx_fd, 0, 3);
    __builtin_prefetch(&c->standby, 0, 3);      /* and the kind's timer: the rekey */
    __builtin_prefetch(&c->timer_node, 1, 3);
    __builtin_prefetch(&c->tx_group, 1, 3);
    __builtin_prefetch(&c->tx, 0, 3);
    __builtin_prefetch(&c->inflight, 1, 3);
    __builtin_prefetch(&c->stamps, 1, 3);
    __builtin_prefetch(&c->tap, 0, 3);
    __builtin_prefetch(&c->stamp_room, 0, 3);   /* and stamps_read_ns: the rekey's */
    __builtin_prefetch(&c->tx_hold, 0, 3);
    if (c->dst_len)
        __builtin_prefetch(&c->dst, 0, 3);
    const struct rtudp_channel_block *b = c->block;
    if (b) {
        __builtin_prefetch(&b->tx_packets, 1, 3);
        __builtin_prefetch(&b->tx_journal, 1, 3);
        __builtin_prefetch(&b->late, 1, 3); /* tx_lateness: the batch's, at its end */
        __builtin_prefetch(&b->async_wait, 0, 3);
        __builtin_prefetch(&b->tap, 0, 3);
    }
    const struct rtudp_mpsc_ring *r = c->tx.ring;
    if (r) {
        __builtin_prefetch(&r->head, 1, 3);
        __builtin_prefetch(&r->space_bell, 0, 3);
        __builtin_prefetch(&r->records_consumed, 1, 3);
    }
    if (t->payload)
        __builtin_prefetch(t->payload - sizeof(struct rtudp_tx_record), 1, 3);
    if (c->inflight.e && t->slot < c->inflight.capacity)
        __builtin_prefetch(&c->inflight.e[t->slot], 1, 3);
    if (c->stamps.e && c->stamps.capacity)
        __builtin_prefetch(&c->stamps.e[(c->stamps.first + c->stamps.len) &
                                        (c->stamps.capacity - 1)], 1, 3);
}

void rtudp_tx_send_group(struct rtudp_worker *w, struct rtudp_chan *c, struct rtudp_timer *due,
                         const uint32_t *idx, uint32_t n, int64_t now)
{
    struct rtudp_tx_pkt pkts[RTUDP_W_POP_MAX];
    /* the kernel drops stamps past its error queue's room, and a send the journal names
     * without its stamp goes again after a kill: read the waiting ones first */
    if (c->caps.sw_tx && c->stamps.len && c->stamps.len + n > c->stamp_room)
        rtudp_tx_read_stamps(c, now);
    for (uint32_t k = 0; k < n; k++)
        pkts[k] = (struct rtudp_tx_pkt){.data = due[idx[k]].payload, .len = due[idx[k]].len};
    const struct sockaddr *dst = c->dst_len ? (const struct sockaddr *)&c->dst : NULL;
    struct tally y = {0, 0, 0};
    int full = 0;
    uint32_t off = 0;
    while (off < n && !full) {
        if (c->gso_ok && gso_starts(due, idx + off, n - off)) {
            uint32_t run = gso_run(due, idx + off, n - off);
            int g = send_gso(c, due, idx + off, pkts + off, run, dst, &y);
            if (g > 0) {
                off += run;
                continue;
            }
            if (g == 0) {
                full = 1;
                break;
            }
            /* the kernel or the device cannot segment (e.g. a segment beyond the
             * path MTU): this channel sends one datagram per packet from now on */
            c->gso_ok = 0;
        }
        /* one by one (sendmmsg) up to where the next GSO run starts */
        uint32_t end = off + 1;
        while (end < n && !(c->gso_ok && gso_starts(due, idx + end, n - end)))
            end++;
        journal_begin(c, due, idx + off, end - off, 0);
        int r = rtudp_net_send_batch(c->tx_fd, pkts + off, end - off, dst, c->dst_len);
        int e = errno;
        for (int q = 0; q < r; q++) {
            const struct rtudp_timer *t = &due[idx[off + (uint32_t)q]];
            finish(c, t);
            departed(c, &pkts[off + (uint32_t)q], t->asked_ns, t->arrived_late, 1);
            y.bytes += t->len;
        }
        rtudp_txj_end(&c->block->tx_journal);
        if (r > 0) {
            y.sent += (uint32_t)r;
            off += (uint32_t)r;
            if (off == end)
                continue;
        }
        if (r >= 0 && (e == EAGAIN || e == EWOULDBLOCK)) {
            full = 1;
            break;
        }
        /* packet `off` failed on its own (EMSGSIZE, ECONNREFUSED, no route...): drop
         * it, never retry it forever */
        finish(c, &due[idx[off]]);
        y.dropped++;
        off++;
    }
    if (full) {
        /* buffer full: the rest waits (same deadlines) and the loop backs off */
        for (uint32_t k = off; k < n; k++)
            rtudp_timerq_push(&w->tq, &due[idx[k]]);
        w->backoff_until = now + EAGAIN_BACKOFF_NS;
    }
    struct rtudp_channel_block *b = c->block;
    if (y.sent) {
        bump(&b->tx_packets, y.sent);
        bump(&b->tx_bytes, y.bytes);
    }
    if (y.dropped)
        bump(&b->tx_errors, y.dropped);
    rtudp_mpsc_account(&c->tx, y.sent + y.dropped, y.bytes);
    rtudp_tx_release(c);
    /* loopback and most drivers stamp during the send call: read them in batches */
    if (y.sent && c->stamps.len >= STAMP_BATCH)
        rtudp_tx_read_stamps(c, now);
}

/* one datagram to dst, now, as it is (the impairment already applied) */
static int send_raw(struct rtudp_chan *c, const void *data, uint32_t len, int64_t asked_ns,
                    const struct sockaddr *dst, socklen_t dst_len)
{
    struct rtudp_tx_pkt pkt = {.data = data, .len = len};
    int r = rtudp_net_send_batch(c->tx_fd, &pkt, 1, dst, dst_len);
    struct rtudp_channel_block *b = c->block;
    if (r != 1) {
        int e = errno;
        if (e != EAGAIN && e != EWOULDBLOCK)
            bump(&b->tx_errors, 1);
        errno = e;
        return -1;
    }
    bump(&b->tx_packets, 1);
    bump(&b->tx_bytes, len);
    departed(c, &pkt, asked_ns, 0, 1); /* a kind's own send: the worker's */
    if (c->stamps.len >= STAMP_BATCH)
        rtudp_tx_read_stamps(c, pkt.sent_ns);
    return 0;
}

int rtudp_tx_send_to(struct rtudp_chan *c, const void *data, uint32_t len, int64_t asked_ns,
                     const struct sockaddr *dst, socklen_t dst_len)
{
    /* a kind's own sends are impaired like the ring's: lost (0 copies) and held ones
     * (in c->tx_hold, sent by rtudp_tx_send_held) count as sent */
    int rc = 0;
    for (uint32_t n = rtudp_impair_tx_now(c, &data, len, asked_ns, dst, dst_len, 0);
         n > 0 && rc == 0; n--)
        rc = send_raw(c, data, len, asked_ns, dst, dst_len);
    return rc;
}

void rtudp_tx_send_held(struct rtudp_worker *w, struct rtudp_chan *c, int64_t now)
{
    struct rtudp_hold_item it;
    while (w->backoff_until <= now && rtudp_holdq_peek_due(&c->tx_hold, now, &it)) {
        struct rtudp_held_send m = {.dst_len = 0};
        memcpy(&m, it.meta, it.meta_len < sizeof m ? it.meta_len : sizeof m);
        const struct sockaddr *dst = m.dst_len ? (const struct sockaddr *)&m.dst : NULL;
        /* lateness counts from when the impairment let it go */
        if (send_raw(c, it.data, it.len, it.due_ns, dst, m.dst_len) != 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK)) {
            w->backoff_until = now + EAGAIN_BACKOFF_NS; /* it waits, due as it was */
            return;
        }
        rtudp_holdq_pop(&c->tx_hold); /* sent, or failed for good (tx_errors) */
    }
}

int rtudp_tx_send_now(struct rtudp_chan *c, const void *data, uint32_t len, int64_t asked_ns)
{
    const struct sockaddr *dst = c->dst_len ? (const struct sockaddr *)&c->dst : NULL;
    return rtudp_tx_send_to(c, data, len, asked_ns, dst, c->dst_len);
}
