/*
 * direct_recv.h - a reader's wait on an empty RX ring, made on the channel socket itself.
 *
 * Why: through the worker a datagram costs two wake-ups before recv() returns: the
 * worker's RX thread's, then the reader's on the ring's doorbell.  On a virtual machine
 * a wake-up is several µs, most of a loopback hop.  A reader that waits on an empty
 * ring can instead wait on its own duplicate of the channel socket (pidfd_getfd, as
 * direct_send.h) and publish what comes into the ring itself: one wake-up, its own.
 *
 * Kept exactly as the worker's path behaves (rx_publish.h says how):
 *  - every attached reader gets every datagram, in order: the reader publishes into the
 *    RX ring with rtudp_rx_publish, as the worker does, then reads it from there;
 *  - counters, rx_seq, the rx_delay histogram and the kernel RX stamps are the same;
 *  - one party at a time reads the socket: the token of the channel's direct_rx line;
 *  - taps, received-datagram impairment, event-loop waiters, a paused channel, kinds
 *    other than udp: the reader leaves the socket to the worker (rtudp_drx_terms), and a
 *    reader that holds it lets go at its next look (at most RTUDP_DRX_LEASE_NS / 2);
 *  - the reader's own lease keeps the socket across a request and its reply, so the
 *    worker stays asleep; a lease that passes goes back to the worker, which reads what
 *    waits (kernel-stamped when it came, so rx_delay shows the wait);
 *  - one reader process at a time: what a reader has taken from the socket and not yet
 *    published dies with it, so while another process is attached as a reader (a live
 *    pid in reader_pid[]) the worker reads the socket, and a reader that attaches waits
 *    for a read in progress to be published (rtudp_drx_reader_joined);
 *  - failure: anything unexpected leaves the socket to the worker and the reader waits
 *    on the ring as before.  Nothing is read that is not published.
 */
#ifndef RTUDP_DIRECT_RECV_H
#define RTUDP_DIRECT_RECV_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"
#include "rtudp_shm.h"

/* datagrams one receive takes at most, and receives one read of the socket makes at
 * most (it stops at the first that finds fewer) */
#define RTUDP_DRX_BATCH 16
#define RTUDP_DRX_ROUNDS 64

/* All zero = off (as a fresh Python object is); rtudp_drx_init makes it so. */
struct rtudp_drx_reader {
    struct rtudp_channel_block *block; /* NULL: off */
    int fd;                            /* our duplicate of the channel socket */
    uint32_t pid;                      /* ours, as holder_pid */
    uint32_t cap;                      /* bytes kept of a datagram (the worker's cap) */
    uint32_t recv_cap;                 /* bytes one receive takes: cap, or with UDP_GRO on
                                          the socket all of a coalesced one */
    uint8_t *buf;                      /* RTUDP_DRX_BATCH slots: meta room, then recv_cap */
    uint8_t *seg_buf;                  /* RTUDP_RX_SEG_BUF bytes with UDP_GRO, else NULL */
    int epfd;                          /* an epoll set of its own holding fd, to sleep on */
    int64_t spin_ns;                   /* the longest spin before a wait sleeps (0: none) */
    uint32_t hits;                     /* waits in a row a spin would have caught */
    uint32_t need;                     /* hits before a wait spins */
};

/* a wait spins only after this many in a row that a spin would have caught, doubled
 * after each spin that caught nothing, up to the maximum */
#define RTUDP_DRX_SPIN_HITS 8u
#define RTUDP_DRX_SPIN_HITS_MAX 1024u

void rtudp_drx_init(struct rtudp_drx_reader *r);

/* how often rtudp_drx_reader_joined looks again at a read in progress */
#define RTUDP_DRX_JOIN_POLL_NS 50000L

/*
 * Call once this process's reader slot is claimed and before its cursor is placed: if
 * a reader of another process is reading the socket now, wait (up to
 * RTUDP_DRX_STALE_NS) until what it read is published, so that the new cursor starts
 * after it.  Every read after this one leaves the socket to the worker.
 */
void rtudp_drx_reader_joined(struct rtudp_channel_block *b);

/* tests: a reader stops itself (SIGSTOP) after each receive from the socket, before it
 * publishes what it received (non-zero: on) */
void rtudp_drx_stop_after_receive(int on);

/*
 * Duplicate fd `their_fd` of process `pid`, check that it is a UDP socket bound to
 * `local_port` of `family`, and read into records of `ring` for channel block `block`;
 * a wait spins up to spin_ns before it sleeps, when spinning pays (rtudp_drx_wait).
 * RTUDP_OK, else an RTUDP_* code with why filled (r left off).
 */
int rtudp_drx_open(struct rtudp_drx_reader *r, int pid, int their_fd, int family,
                   uint16_t local_port, struct rtudp_channel_block *block,
                   const struct rtudp_bcast *ring, int64_t spin_ns, struct rtudp_check *why);

/* Let go of the socket if we hold it between calls, and close our duplicate. */
void rtudp_drx_close(struct rtudp_drx_reader *r);
/* Whether direct receive is on; a channel the pool closed turns it off here (our
 * duplicate must not keep its port bound). */
bool rtudp_drx_on(struct rtudp_drx_reader *r);

/*
 * Wait until `ring` has a record for `rd`, reading the socket meanwhile if the terms
 * allow and the token can be had: spinning up to r->spin_ns when recent waits say a
 * spin catches the datagram (RTUDP_DRX_SPIN_HITS), then sleeping until the absolute
 * CLOCK_MONOTONIC deadline (INT64_MAX: forever).  A reader that spins saves its own
 * wake-up when the answer comes from another CPU; beside the peer on one CPU it would
 * only hold the peer off, which the doubling count keeps rare.  Deadline 0 looks once,
 * and reads the socket only if this reader holds it between calls.
 * RTUDP_OK (a record waits), RTUDP_ETIMEDOUT, RTUDP_EINTR (a signal: the caller runs
 * its handlers and calls again), or RTUDP_EMPTY: the socket is not ours to read now,
 * wait on the ring (the worker, or another reader, publishes).
 */
int rtudp_drx_wait(struct rtudp_drx_reader *r, struct rtudp_bcast *ring,
                   const struct rtudp_bcast_reader *rd, int64_t deadline_ns);

#endif /* RTUDP_DIRECT_RECV_H */
