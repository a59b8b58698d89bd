/*
 * echo.c - the echo channel kind, test-only (kinds.def, under RTUDP_TEST_KINDS): every
 * datagram received is published to readers as udp does, and queued on the channel's
 * own TX ring (as any client would: the worker sends it to the remote, timed and
 * counted like any send), and counted in the area's one counter.  It proves a kind is
 * its own files plus its kinds.def line (docs/adding-a-kind.md).
 */
#include <stdio.h>
#include <stdlib.h>

#include "echo_area.h"
#include "kinds.h"
#include "worker.h"

/* the echo kind area, for kinds.c (what Python reads of it) */
RTUDP_KIND_AREA(echo, struct rtudp_echo_area, RTUDP_ECHO_AREA_COUNTERS, NULL);

struct echo_state {
    struct rtudp_mpsc tx;                          /* the TX ring, seen as a producer */
};

static int echo_open(struct rtudp_worker *w, struct rtudp_chan *c, char *msg, size_t len)
{
    if (!c->sends || !c->recvs) {
        snprintf(msg, len, "an echo channel sends and receives (direction both)");
        return RTUDP_EINVAL;
    }
    struct echo_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, len, "out of memory");
        return RTUDP_ESYS;
    }
    rtudp_chan_tx_producer(w, c, &s->tx);          /* marks c ready, rings the bell */
    c->state = s;
    return RTUDP_OK;
}

static void echo_rx_batch(struct rtudp_chan *c, struct rtudp_rx_pkt *pkts, int n)
{
    struct echo_state *s = c->state;
    struct rtudp_echo_area *a = c->area;
    uint64_t echoed = 0;
    for (int i = 0; i < n; i++)
        echoed += rtudp_mpsc_try_put(&s->tx, pkts[i].buf, pkts[i].len, 0, 0) == RTUDP_OK;
    if (echoed)
        bump(&a->echoed, echoed);
    rtudp_udp_publish(c, pkts, n);
}

RTUDP_PROTO_DEFINE(ECHO, echo, struct rtudp_echo_area, .open = echo_open,
                   .rx_batch = echo_rx_batch, .close = rtudp_proto_free_state);
