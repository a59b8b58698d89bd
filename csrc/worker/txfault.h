/*
 * txfault.h - a channel whose TX ring fails validation (a client scribbled over it,
 * or the ring's words moved in ways no producer makes): the worker stops reading
 * it, says why on stderr and counts it in the channel block (tx_ring_faults), so
 * stats() and rtstat show the channel as bad.  Other channels carry on.  The
 * channel is read again only when it is added anew (a worker restart, or the
 * supervisor re-adding it), which validates the ring again and counts again if it
 * is still bad.
 */
#ifndef RTUDP_WORKER_TXFAULT_H
#define RTUDP_WORKER_TXFAULT_H

#include <stdio.h>

#include "worker.h"

static inline void rtudp_tx_fault(struct rtudp_chan *c, const char *what, uint64_t pos)
{
    if (c->tx_broken)
        return;
    fprintf(stderr, "rtudp-worker: channel %s: TX ring %s at %llu; no longer reading it\n",
            c->name, what, (unsigned long long)pos);
    c->tx_broken = 1;
    bump(&c->block->tx_ring_faults, 1);
}

#endif /* RTUDP_WORKER_TXFAULT_H */
