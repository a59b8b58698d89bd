/*
 * direct_send.h - a client's immediate send made on the channel socket itself.
 *
 * Why: an immediate send through the TX ring wakes the worker, which then sends.  On
 * a virtual machine that wake-up is most of a loopback round trip (3-5 us of ~7 per
 * direction), and the client pays a system call for it anyway (the futex wake).  So
 * when nothing is queued and the worker is parked, the client sends the datagram
 * itself, on its own duplicate of the socket the supervisor holds for the channel
 * (pidfd_getfd), and the worker stays asleep.
 *
 * Kept exactly as the ring path would behave:
 *  - order: only when the TX ring is empty, i.e. everything this handle (or anyone)
 *    queued before has left (ring space is freed only after the send), so a direct
 *    send never overtakes a queued one;
 *  - bursts: only when this handle has not found the worker idle within the last
 *    quiet_ns; a sender in a loop goes through the ring, where one wake-up serves a
 *    whole batch, instead of paying a system call for every packet;
 *  - TX stamps: the send carries an SO_TIMESTAMPING control message with no flags, so
 *    it makes no error-queue stamp; the worker allows direct sends only while its own
 *    stamps carry explicit keys (direct.state ON), which such a send cannot shift;
 *  - pause: a paused channel (no worker has it: RtUDP's stop()) sends nothing, so the
 *    supervisor sets NOT_NOW before it takes the channel off its worker, and the
 *    worker sets ON again when it takes it back;
 *  - counting: packets and bytes go into the channel block's direct line, which
 *    stats() adds to the worker's tx_packets / tx_bytes / tx_immediate;
 *  - closing: the supervisor sets REVOKED when it closes the channel; a handle that
 *    sees it closes its duplicate, so no handle left open on a
 *    closed channel keeps the port bound once it tries to send;
 *  - taps: while a tap is attached (rtudp tap) nothing is sent directly: the worker
 *    sends it and mirrors it to the tap with its kernel TX stamp;
 *  - failure: any error (a full socket buffer, a pending ICMP error) leaves the packet
 *    to the ring, which handles it as it always has; nothing is lost.
 */
#ifndef RTUDP_DIRECT_SEND_H
#define RTUDP_DIRECT_SEND_H

#include <stdbool.h>
#include <stdint.h>

#include <stdatomic.h>

#include "ring.h"
#include "rtudp_shm.h"

/*
 * The terms of any send made beside the channel's worker, on its socket (a client's
 * direct send; a netflux standby's, proto/netflux.c): the worker's TX stamps carry keys
 * of their own (state ON: not paused, closed, or keyed by the kernel's count), no
 * impairment is set (the worker's to apply), no tap is attached (the TX tap ring has one
 * writer, the worker's TX thread, and a tap must see every packet that left).
 */
static inline bool rtudp_direct_terms(const struct rtudp_channel_block *b)
{
    /* (shm_access.h's load_relaxed, spelled out: this header is included by tests that
     * define their own helpers of those names) */
#define RTUDP_DIRECT_LOAD(p)                                                                 \
    atomic_load_explicit((const _Atomic uint32_t *)(p), memory_order_relaxed)
    return RTUDP_DIRECT_LOAD(&b->direct.state) == RTUDP_DIRECT_ON &&
           RTUDP_DIRECT_LOAD(&b->direct.impaired) == 0 && RTUDP_DIRECT_LOAD(&b->tap.attached) == 0;
#undef RTUDP_DIRECT_LOAD
}

/* All zero (as a fresh Python object is) = off, like rtudp_direct_init's. */
struct rtudp_direct {
    struct rtudp_direct_tx *shared;  /* the direct line of a channel block (whose tap line
                                        is read too); NULL = off */
    int fd;                          /* our duplicate of the channel socket, when on */
    int64_t quiet_ns;                /* see above */
    int64_t idle_seen_ns;            /* when this handle last found the worker idle */
};

/* Direct sends off; safe to close. */
void rtudp_direct_init(struct rtudp_direct *d);

/*
 * Duplicate fd `their_fd` of process `pid` (pidfd_getfd: needs ptrace access to it)
 * and check that it is a connected UDP socket bound to port `local_port` of family
 * `family`.  `shared` is the `direct` line of the channel's block (the block's tap line
 * is read through it).  RTUDP_OK, else an RTUDP_* code with why filled (d left off).
 */
int rtudp_direct_open(struct rtudp_direct *d, int pid, int their_fd, int family,
                      uint16_t local_port, struct rtudp_direct_tx *shared, int64_t quiet_ns,
                      struct rtudp_check *why);

/*
 * Our duplicate (*fd_out) of fd `their_fd` of process `pid` (pidfd_getfd: needs ptrace
 * access to it), checked to be a UDP socket bound to port `local_port` of `family`, and
 * connected when `connected`.  RTUDP_OK, else an RTUDP_* code with why filled.  Direct
 * receive (direct_recv.h) takes its socket this way too.
 */
int rtudp_channel_socket_dup(int pid, int their_fd, int family, uint16_t local_port,
                             bool connected, int *fd_out, struct rtudp_check *why);

/* Close our duplicate (direct sends off). */
void rtudp_direct_close(struct rtudp_direct *d);

/* Whether direct sends are on (a revoked channel turns them off at the next try). */
bool rtudp_direct_on(const struct rtudp_direct *d);

/*
 * Send `data` now on the socket if every condition above holds: true when it left,
 * false when the caller must queue it in the ring `m` instead.
 */
bool rtudp_direct_try(struct rtudp_direct *d, const struct rtudp_mpsc *m, const void *data,
                     uint32_t len);

#endif
