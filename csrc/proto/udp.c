/*
 * udp.c - the udp channel kind: timed datagrams.  A TX-ring record is sent as it
 * is at its send_at_ns (the loop's timer queue does the timing); every datagram
 * received is published to the RX ring as it is, after a struct rtudp_rx_meta
 * (rx_publish.h: the way a reader that reads the socket itself publishes too).
 * Its rx_batch and a close for kinds with one block of state serve other kinds too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>

#include "worker.h"

void rtudp_udp_publish(struct rtudp_chan *ch, struct rtudp_rx_pkt *pkts, int n)
{
    rtudp_rx_publish(ch->rx.block, &ch->rx.ring, pkts, n);
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
