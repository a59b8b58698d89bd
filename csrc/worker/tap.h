/*
 * tap.h - per channel: mirror what the worker sends and receives into the channel's
 * tap rings while a tap is attached (rtudp_shm.h, struct rtudp_tap_line).
 *
 * With no tap attached each hook is one relaxed load and a branch that does not
 * change for as long as nobody taps.  A tap reads at its own pace; the worker never
 * waits for it (the tap rings are broadcast rings: a slow tap is lapped and counts
 * what it lost).
 *
 * Sent datagrams are stamped with their departure: the kernel's TX stamp, which comes
 * after the send call (or, if none comes, the time of the send call, as txstamp.h
 * decides).  The payload exists only during the send (its TX ring record is freed
 * once it has left), so it is copied into the TX tap ring then, staged where no tap
 * reads yet (ring.h, struct rtudp_bcast_stage); txstamp.c publishes it with its
 * departure time when it resolves that packet's stamp, in the order the packets
 * left.  A sent datagram is therefore in the tap ring whether its stamp ever comes or
 * not, and taps see sent datagrams in order.
 *
 * One writer per ring: the TX thread writes the TX tap ring (c->tap), whoever has the
 * RX work the RX tap ring (c->rx.tap).
 */
#ifndef RTUDP_TAP_H
#define RTUDP_TAP_H

#include <stdatomic.h>
#include <stdint.h>

#include "netio.h"
#include "ring.h"
#include "rtudp_shm.h"

struct rtudp_tap {
    struct rtudp_channel_block *block;  /* NULL: not set up (every hook does nothing) */
    struct rtudp_bcast ring;
    struct rtudp_bcast_stage stage;
    struct rtudp_tap_meta meta;         /* TX: the destination (the channel's remote), prefilled */
};

/* What one departure staged in the TX tap ring: publish up to `end` (0: nothing). */
struct rtudp_tap_mark {
    uint64_t end;
    uint64_t seq;
};

/* the tap ring at mem (validated by rtudp_channel_tap_rings); out: the TX one */
int rtudp_tap_init(struct rtudp_tap *t, struct rtudp_channel_block *b, void *mem, uint64_t avail,
                   int out, struct rtudp_check *why);

/* whether a tap is attached (the one branch the hot paths pay) */
static inline int rtudp_tap_on(const struct rtudp_tap *t)
{
    if (!t->block)
        return 0;
    /* (shm_access.h's load_relaxed, spelled out: this header is included widely) */
    const _Atomic uint32_t *attached = (const _Atomic uint32_t *)&t->block->tap.attached;
    return __builtin_expect(atomic_load_explicit(attached, memory_order_relaxed) != 0, 0);
}

/* TX: pkts[0..n) left in one send, under one TX stamp key: copy them, unpublished;
 * *mark says what to publish once their departure is known (end 0: nothing) */
void rtudp_tap_tx_stage(struct rtudp_tap *t, const struct rtudp_tx_pkt *pkts, uint64_t n,
                        struct rtudp_tap_mark *mark);
/* TX: the departure of what `mark` staged: publish it (kernel: a kernel stamp) */
void rtudp_tap_tx_publish(struct rtudp_tap *t, const struct rtudp_tap_mark *mark,
                          int64_t departed_ns, int kernel);

void rtudp_tap_rx_mirror(struct rtudp_tap *t, const struct rtudp_rx_pkt *pkts, int n);
/* RX: the datagrams pkts[0..n) as received (before the kind sees them) */
static inline void rtudp_tap_rx(struct rtudp_tap *t, const struct rtudp_rx_pkt *pkts, int n)
{
    if (rtudp_tap_on(t))
        rtudp_tap_rx_mirror(t, pkts, n);
}

#endif /* RTUDP_TAP_H */
