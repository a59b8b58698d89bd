/*
 * udp.c - the udp channel kind: timed datagrams.  A TX-ring record is sent as it
 * is at its send_at_ns (the loop's timer queue does the timing); every datagram
 * received is published to the RX ring as it is, after a struct rtudp_rx_meta.
 * Its rx_batch and a close for kinds with one block of state serve other kinds too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "worker.h"

void rtudp_udp_publish(struct rtudp_chan *ch, struct rtudp_rx_pkt *pkts, int n)
{
    struct rtudp_rx_chan *c = &ch->rx;
    struct rtudp_channel_block *b = c->block;
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
        m->rx_seq = c->seq++;
        m->flags = ((p->flags & RTUDP_RX_TRUNC) ? RTUDP_RX_TRUNCATED : 0) |
                   ((p->flags & RTUDP_RX_KERNEL_TS) ? RTUDP_RX_SOFTWARE_STAMP : 0);
        m->pad = 0;
        if (rtudp_bcast_write(&c->ring, m, RTUDP_RX_META_ROOM + p->len, 0, p->rx_ns) !=
            RTUDP_OK) {
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

void rtudp_proto_free_state(struct rtudp_worker *w, struct rtudp_chan *c)
{
    (void)w;
    free(c->state);
    c->state = NULL;
}

const struct rtudp_proto rtudp_proto_udp = {
    .kind = RTUDP_KIND_UDP,
    .name = "udp",
    /* tx_record NULL: a record is the datagram, and the loop's timer is already right */
    .rx_batch = rtudp_udp_publish,
};
