/* tap.c - mirroring into the channel's tap rings (tap.h). */
#include "tap.h"

#include <string.h>

#include "shm_access.h"

int rtudp_tap_init(struct rtudp_tap *t, struct rtudp_channel_block *b, void *mem, uint64_t avail,
                   int out, struct rtudp_check *why)
{
    memset(t, 0, sizeof *t);
    int rc = rtudp_bcast_attach(&t->ring, mem, avail, why);
    if (rc != RTUDP_OK)
        return rc;
    rtudp_bcast_stage_init(&t->ring, &t->stage);
    if (out) {
        t->meta.peer = b->remote;
        t->meta.flags = RTUDP_TAP_OUT;
    }
    t->block = b;
    return RTUDP_OK;
}

void rtudp_tap_tx_stage(struct rtudp_tap *t, const struct rtudp_tx_pkt *pkts, uint64_t n,
                        struct rtudp_tap_mark *mark)
{
    mark->end = 0;
    if (!rtudp_tap_on(t))
        return;
    uint64_t staged = 0;
    for (uint64_t i = 0; i < n; i++) {
        t->meta.wire_len = pkts[i].len;
        /* time: the send call's until the stamp is known */
        if (rtudp_bcast_stage(&t->ring, &t->stage, &t->meta, sizeof t->meta, pkts[i].data,
                              pkts[i].len, 0, pkts[i].sent_ns) == RTUDP_OK)
            staged++;
    }
    struct rtudp_tap_counters *k = &t->block->tap_count;
    bump(&k->tx_packets, staged);
    if (staged < n)
        bump(&k->unmirrored, n - staged);
    if (staged) {
        mark->end = t->stage.tail;
        mark->seq = t->stage.seq;
    }
}

void rtudp_tap_tx_publish(struct rtudp_tap *t, const struct rtudp_tap_mark *mark,
                          int64_t departed_ns, int kernel)
{
    if (!t || !t->block || !mark->end)
        return;
    rtudp_bcast_stage_publish(&t->ring, &t->stage, mark->end, mark->seq, departed_ns,
                              kernel ? RTUDP_TAP_KERNEL_TS : 0);
}

void rtudp_tap_rx_mirror(struct rtudp_tap *t, const struct rtudp_rx_pkt *pkts, int n)
{
    uint64_t staged = 0;
    for (int i = 0; i < n; i++) {
        const struct rtudp_rx_pkt *p = &pkts[i];
        rtudp_rx_source(p, &t->meta.peer);
        t->meta.wire_len = p->wire_len;
        uint16_t flags = (p->flags & RTUDP_RX_KERNEL_TS) ? RTUDP_TAP_KERNEL_TS : 0;
        int rc = rtudp_bcast_stage(&t->ring, &t->stage, &t->meta, sizeof t->meta, p->buf, p->len,
                                   flags, p->rx_ns);
        if (rc == RTUDP_EFULL) { /* a big batch: publish what is staged, go on */
            rtudp_bcast_stage_publish(&t->ring, &t->stage, t->stage.tail, t->stage.seq, 0, 0);
            rc = rtudp_bcast_stage(&t->ring, &t->stage, &t->meta, sizeof t->meta, p->buf, p->len,
                                   flags, p->rx_ns);
        }
        staged += rc == RTUDP_OK;
    }
    rtudp_bcast_stage_publish(&t->ring, &t->stage, t->stage.tail, t->stage.seq, 0, 0);
    bump(&t->block->tap_count.rx_packets, staged);
}
