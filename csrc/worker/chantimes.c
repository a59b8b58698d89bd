/*
 * chantimes.c - a channel's places in the TX thread's timer heaps (worker.h): its
 * kind's timer and its held sends in w->timers (a standby's timer in
 * w->standby_timers: a plain timeout, never spun for), the read-by time of its waiting
 * TX stamps in w->stamp_reads.  The loop finds what is due at the heaps' tops, so no
 * turn walks the channels.
 */
#include "worker.h"

int64_t rtudp_chan_stamps_read_by(const struct rtudp_chan *c)
{
    if (!c->sends || !c->stamps.len)
        return INT64_MAX;
    /* read within RTUDP_W_STAMP_HOLD_NS of the oldest send (or of the last read), and
     * before the oldest stamp's wait expires: one read then takes them all */
    int64_t expire = rtudp_txstamps_deadline(&c->stamps);
    int64_t oldest_sent = expire - c->stamps.wait_ns;
    int64_t by = (oldest_sent > c->stamps_read_ns ? oldest_sent : c->stamps_read_ns) +
                 RTUDP_W_STAMP_HOLD_NS;
    return by < expire ? by : expire;
}

void rtudp_chan_rekey(struct rtudp_worker *w, struct rtudp_chan *c)
{
    int64_t held = rtudp_holdq_next_due(&c->tx_hold);
    int64_t timer = c->tx_timer_ns == RTUDP_PROTO_NEVER ? RTUDP_CHANHEAP_NONE : c->tx_timer_ns;
    int64_t spun = c->standby || timer > held ? held : timer;
    rtudp_chanheap_set(&w->timers, &c->timer_node, spun);
    rtudp_chanheap_set(&w->standby_timers, &c->standby_node,
                       c->standby ? timer : RTUDP_CHANHEAP_NONE);
    rtudp_chanheap_set(&w->stamp_reads, &c->stamp_node, rtudp_chan_stamps_read_by(c));
}

int rtudp_chan_times_reserve(struct rtudp_worker *w, uint32_t n)
{
    if (rtudp_chanheap_reserve(&w->timers, n) != RTUDP_OK ||
        rtudp_chanheap_reserve(&w->standby_timers, n) != RTUDP_OK ||
        rtudp_chanheap_reserve(&w->stamp_reads, n) != RTUDP_OK)
        return RTUDP_ESYS;
    return RTUDP_OK;
}

void rtudp_chan_times_clear(struct rtudp_worker *w, struct rtudp_chan *c)
{
    rtudp_chanheap_set(&w->timers, &c->timer_node, RTUDP_CHANHEAP_NONE);
    rtudp_chanheap_set(&w->standby_timers, &c->standby_node, RTUDP_CHANHEAP_NONE);
    rtudp_chanheap_set(&w->stamp_reads, &c->stamp_node, RTUDP_CHANHEAP_NONE);
}

void rtudp_chan_tx_producer(struct rtudp_worker *w, struct rtudp_chan *c, struct rtudp_mpsc *view)
{
    *view = c->tx;
    rtudp_mpsc_set_ready(view, w->ready, c->slot);
    rtudp_mpsc_set_wake(view, &w->me->bell);
}
