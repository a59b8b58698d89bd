/*
 * impair_apply.c - the worker applies a channel's impairment (impair.h decides): on
 * the way out as the TX thread queues a record (lost: freed at once; duplicated: queued
 * twice; corrupted: a bit flipped in place; delayed, held back or rate-limited: queued
 * for later in the timer queue), on a kind's send of its own (rtudp_tx_send_now: lost,
 * duplicated, corrupted; delayed, held back or rate-limited: copied into the channel's
 * TX hold queue, which the TX loop sends from when due), and on the way in as the RX
 * thread hands a batch to the kind (the same, held ones in the channel's RX hold
 * queue, which the RX turn hands on when due).  docs/impairment.md has the whole story.
 *
 * Calls only what is below it in worker.h's file map (timerq, inflight, holdq, the
 * ring): the TX loop, txsend.c, rxloop.c and channels.c call it.
 *
 * Bounded: a held record keeps its TX-ring space until it leaves, so what the
 * impairment holds is bounded by the ring (producers get back-pressure, nothing is
 * dropped unseen), and a record has at most two timers (channels.c reserves room for
 * both).  A kind's sends and received datagrams have no ring to wait in: their hold
 * queues are allocated when the channel is added, sized for the impairment published
 * then, and a datagram that does not fit is dropped and counted (hold_dropped).
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

/* when each of v's copies (at most 2) may go, for a datagram ready at `ready` before
 * the impairment: held by delay + jitter + reorder, then each copy through the rate
 * limit; what held it counted */
static void copy_times(struct rtudp_impair *s, struct rtudp_impair_counters *k,
                       const struct rtudp_impair_verdict *v, int64_t ready, uint32_t len,
                       int64_t at[2])
{
    if (v->delayed)
        bump(&k->delayed, 1);
    if (v->reordered)
        bump(&k->reordered, 1);
    ready += v->hold_ns;
    for (uint32_t i = 0; i < v->copies && i < 2; i++) {
        at[i] = rtudp_impair_rate(s, ready, len);
        if (at[i] > ready)
            bump(&k->rate_held, 1);
    }
}

int rtudp_impair_tx_queue(struct rtudp_worker *w, struct rtudp_chan *c, struct rtudp_timer *t,
                          int64_t now)
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
    int64_t at[2], ready = t->send_at_ns > now ? t->send_at_ns : now;
    copy_times(s, k, &v, ready, t->len, at);
    for (uint32_t i = 0; i < v.copies; i++) {
        struct rtudp_timer x = *t;
        /* lateness counts from when the impairment let it go; a copy it did not hold
         * keeps its key (a late one's deadline: deadline order) */
        if (at[i] != ready)
            x.send_at_ns = x.asked_ns = at[i];
        int rc = rtudp_timerq_push(&w->tq, &x); /* room for two a record: channels.c */
        if (rc != RTUDP_OK)
            return i ? RTUDP_OK : rc;
        if (i > 0) /* the record is freed after its last copy left */
            rtudp_inflight_again(&c->inflight, t->slot, t->ring_pos);
    }
    return RTUDP_OK;
}

/* the hold of a side whose impairment held nothing when the channel came (none is
 * made then: most channels are never impaired), made at its first datagram held */
#define HOLD_SMALL_BYTES (64ull << 10)

/* rtudp_holdq_put, the hold made first if there is none; RTUDP_EFULL when it cannot be */
static int hold_put(struct rtudp_holdq *q, int64_t due_ns, const void *meta, uint32_t meta_len,
                    uint32_t room, const void *data, uint32_t len)
{
    if (!q->buf && rtudp_holdq_init(q, HOLD_SMALL_BYTES) != RTUDP_OK)
        return RTUDP_EFULL;
    return rtudp_holdq_put(q, due_ns, meta, meta_len, room, data, len);
}

uint32_t rtudp_impair_tx_now(struct rtudp_chan *c, const void **data, uint32_t len,
                             int64_t asked_ns, const struct sockaddr *dst, socklen_t dst_len,
                             int64_t now)
{
    struct rtudp_impair *s = &c->impair;
    if (!rtudp_impair_refresh(s, &c->block->impair, RTUDP_IMPAIR_TX))
        return 1;
    if (!now)
        now = rtudp_now_ns(); /* an unimpaired send never reads the clock */
    struct rtudp_impair_verdict v;
    rtudp_impair_decide(s, len, &v);
    struct rtudp_impair_counters *k = &c->block->impair_tx;
    count(&v, k);
    if (!v.copies)
        return 0;
    if (v.corrupt && len <= sizeof corrupted_copy) {
        memcpy(corrupted_copy, *data, len);
        corrupted_copy[v.byte] ^= (uint8_t)(1u << v.bit);
        *data = corrupted_copy;
    }
    int64_t at[2];
    copy_times(s, k, &v, asked_ns > 0 ? asked_ns : now, len, at);
    struct rtudp_held_send m = {.dst_len = 0};
    if (dst && dst_len > 0 && dst_len <= sizeof m.dst) {
        m.dst_len = dst_len;
        memcpy(&m.dst, dst, dst_len);
    }
    uint32_t go = 0;
    for (uint32_t i = 0; i < v.copies; i++) {
        if (at[i] <= now)
            go++;
        else if (hold_put(&c->tx_hold, at[i], &m, RTUDP_HELD_SEND_META(m.dst_len), 0,
                          *data, len) != RTUDP_OK)
            bump(&k->hold_dropped, 1);
    }
    return go;
}

int rtudp_impair_rx(struct rtudp_rx_chan *c, struct rtudp_rx_pkt *pkts, int n,
                    struct rtudp_rx_pkt *out, int max, int64_t now)
{
    struct rtudp_impair *s = &c->impair;
    struct rtudp_impair_counters *k = &c->block->impair_rx;
    int m = 0;
    for (int i = 0; i < n && m < max; i++) {
        struct rtudp_rx_pkt *p = &pkts[i];
        struct rtudp_impair_verdict v;
        rtudp_impair_decide(s, p->len, &v);
        count(&v, k);
        if (!v.copies)
            continue;
        if (v.corrupt)
            ((uint8_t *)p->buf)[v.byte] ^= (uint8_t)(1u << v.bit);
        /* held from when the kernel stamped it: it reaches readers that much later */
        int64_t at[2];
        copy_times(s, k, &v, p->rx_ns > 0 ? p->rx_ns : now, p->len, at);
        for (uint32_t j = 0; j < v.copies && m < max; j++) {
            if (at[j] <= now)
                out[m++] = *p;
            else if (hold_put(&c->hold, at[j], p, (uint32_t)sizeof *p, RTUDP_RX_META_ROOM,
                              p->buf, p->len) != RTUDP_OK)
                bump(&k->hold_dropped, 1);
        }
    }
    return m;
}

/* a hold at least: what waits for a rate limit, or for a delay without one, depends on
 * how fast datagrams come, which nothing bounds (netem's queue has a limit too) */
#define HOLD_CAP_BYTES (4ull << 20)
#define HOLD_MAX_BYTES (64ull << 20)

/* One side's hold: none (0) when the impairment holds nothing there; else at least the
 * fixed cap; with a rate limit, what the rate lets through while a datagram is held its
 * longest, plus the burst, twice (each held datagram takes a header and its metadata
 * too), if that is more */
static uint64_t hold_bytes_for(const struct rtudp_impair_cfg *cfg, uint32_t side)
{
    uint64_t longest = cfg->delay_ns + cfg->jitter_ns + (cfg->reorder ? cfg->reorder_ns : 0);
    if (!(cfg->where & side) || (!longest && !cfg->rate_bps))
        return 0;
    /* rate <= 1e12 and longest <= 1e10 (clamped): (rate/8) x (longest/1e3) fits */
    uint64_t worth = cfg->rate_bps / 8 * (longest / 1000) / 1000000 + cfg->burst_bytes;
    uint64_t bytes = 2 * worth + HOLD_SMALL_BYTES;
    bytes = bytes > HOLD_CAP_BYTES ? bytes : HOLD_CAP_BYTES;
    return bytes < HOLD_MAX_BYTES ? bytes : HOLD_MAX_BYTES;
}

int rtudp_impair_holds_init(struct rtudp_chan *c)
{
    struct rtudp_impair_cfg cfg;
    if (rtudp_impair_read(&c->block->impair, &cfg) != RTUDP_OK)
        memset(&cfg, 0, sizeof cfg); /* a writer busy all along: made when one holds */
    int rc = RTUDP_OK;
    uint64_t tx = hold_bytes_for(&cfg, RTUDP_IMPAIR_TX);
    uint64_t rx = hold_bytes_for(&cfg, RTUDP_IMPAIR_RX);
    /* a kind that sends datagrams of its own (its TX timer does) */
    if (c->proto->tx_timer && tx)
        rc = rtudp_holdq_init(&c->tx_hold, tx);
    if (rc == RTUDP_OK && c->recvs && rx)
        rc = rtudp_holdq_init(&c->rx.hold, rx);
    return rc;
}

void rtudp_impair_holds_free(struct rtudp_chan *c)
{
    rtudp_holdq_free(&c->tx_hold);
    rtudp_holdq_free(&c->rx.hold);
}
