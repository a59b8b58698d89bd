/*
 * impair_apply.c - the worker applies a channel's impairment (impair.h decides): on
 * the way out as the TX thread queues a record (lost: freed at once; duplicated: queued
 * twice; corrupted: a bit flipped in place; delayed, held back or rate-limited: queued
 * for later in the timer queue), on a kind's send of its own (rtudp_tx_send_now: lost,
 * duplicated, corrupted; no holding), and on the way in as the RX thread hands a batch
 * to the kind (lost, duplicated, corrupted).  docs/impairment.md has the whole story.
 *
 * Calls only what is below it in worker.h's file map (timerq, inflight, the ring):
 * the TX loop, txsend.c and rxloop.c call it.
 *
 * Bounded: a held record keeps its TX-ring space until it leaves, so what the
 * impairment holds is bounded by the ring (producers get back-pressure, nothing is
 * dropped unseen), and a record has at most two timers (channels.c reserves room for
 * both).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>

#include "impair.h"
#include "worker.h"

/* the TX thread's copy of a datagram a kind sends itself, when corrupted */
static uint8_t corrupted_copy[RTUDP_MAX_PAYLOAD];

static void count(const struct rtudp_impair_verdict *v, struct rtudp_impair_counters *k)
{
    if (!v->copies)
        bump(&k->lost, 1);
    if (v->copies > 1)
        bump(&k->duplicated, 1);
    if (v->corrupt)
        bump(&k->corrupted, 1);
}

int rtudp_impair_tx_queue(struct rtudp_worker *w, struct rtudp_chan *c, struct rtudp_timer *t)
{
    struct rtudp_impair *s = &c->impair;
    if (!rtudp_impair_refresh(s, &c->block->impair, RTUDP_IMPAIR_TX))
        return rtudp_timerq_push(&w->tq, t);
    struct rtudp_impair_verdict v;
    rtudp_impair_decide(s, t->len, &v);
    struct rtudp_impair_counters *k = &c->block->impair_tx;
    count(&v, k);
    if (!v.copies) {
        /* lost: gone as if sent (the caller frees the ring up to it) */
        rtudp_mpsc_mark_sent(&c->tx, t->ring_pos);
        rtudp_inflight_done_at(&c->inflight, t->slot, t->ring_pos);
        rtudp_mpsc_account(&c->tx, 1, 0);
        return RTUDP_OK;
    }
    if (v.corrupt) /* the record is the worker's until it is released (proto.h) */
        ((uint8_t *)t->payload)[v.byte] ^= (uint8_t)(1u << v.bit);
    if (v.delayed)
        bump(&k->delayed, 1);
    if (v.reordered)
        bump(&k->reordered, 1);
    int64_t ready = t->send_at_ns + v.hold_ns;
    for (uint32_t i = 0; i < v.copies; i++) {
        struct rtudp_timer x = *t;
        x.send_at_ns = rtudp_impair_rate(s, ready, t->len);
        if (x.send_at_ns > ready)
            bump(&k->rate_held, 1);
        /* lateness counts from when the impairment let it go */
        if (x.send_at_ns != t->send_at_ns)
            x.asked_ns = x.send_at_ns;
        int rc = rtudp_timerq_push(&w->tq, &x); /* room for two a record: channels.c */
        if (rc != RTUDP_OK)
            return i ? RTUDP_OK : rc;
        if (i > 0) /* the record is freed after its last copy left */
            rtudp_inflight_again(&c->inflight, t->slot, t->ring_pos);
    }
    return RTUDP_OK;
}

uint32_t rtudp_impair_tx_now(struct rtudp_chan *c, const void **data, uint32_t len)
{
    struct rtudp_impair *s = &c->impair;
    if (!rtudp_impair_refresh(s, &c->block->impair, RTUDP_IMPAIR_TX))
        return 1;
    struct rtudp_impair_verdict v;
    rtudp_impair_decide(s, len, &v);
    count(&v, &c->block->impair_tx);
    if (v.corrupt && len <= sizeof corrupted_copy) {
        memcpy(corrupted_copy, *data, len);
        corrupted_copy[v.byte] ^= (uint8_t)(1u << v.bit);
        *data = corrupted_copy;
    }
    return v.copies;
}

int rtudp_impair_rx(struct rtudp_rx_chan *c, struct rtudp_rx_pkt *pkts, int n,
                    struct rtudp_rx_pkt *out, int max)
{
    struct rtudp_impair *s = &c->impair;
    struct rtudp_impair_counters *k = &c->block->impair_rx;
    int m = 0;
    for (int i = 0; i < n && m < max; i++) {
        struct rtudp_impair_verdict v;
        rtudp_impair_decide(s, pkts[i].len, &v);
        count(&v, k);
        if (v.corrupt)
            ((uint8_t *)pkts[i].buf)[v.byte] ^= (uint8_t)(1u << v.bit);
        for (uint32_t j = 0; j < v.copies && m < max; j++)
            out[m++] = pkts[i];
    }
    return m;
}
