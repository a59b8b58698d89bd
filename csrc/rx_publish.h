/*
 * rx_publish.h - the one writer of a channel's RX side: who reads the channel socket,
 * and how what it reads becomes RX ring records.
 *
 * The worker's RX thread reads a udp channel's socket and publishes each datagram as
 * one RX record (struct rtudp_rx_meta, then the datagram).  A reader that waits on an
 * empty ring may do the same itself (direct_recv.h): one wake-up, its own, where the
 * worker's path has two (the worker's, then the reader's).  Both publish through
 * rtudp_rx_publish, so every attached reader gets every datagram, in order, counted in
 * rx_packets / rx_bytes and in the rx_delay histogram, with its kernel RX stamp.
 *
 * Only one party at a time may read the socket and write the ring, the counters and
 * the histogram: the holder of the token in the channel block's direct_rx line
 * (RTUDP_DRX_*).  Every hand-over is a compare-and-swap with acquire / release, so
 * the next holder sees everything the last one wrote, and the single-writer rules of
 * the ring and the counters hold across holders.
 *
 * The worker takes the token around each drain (FREE -> WORKER -> FREE).  A reader
 * takes it from FREE, or from a lease whatever its holder, and keeps it between calls
 * as a lease (LEASE until lease_until_ns); the worker takes it back from a lease that
 * has passed, from a WAIT whose holder stopped renewing it (a stopped process: a
 * reader in WAIT has read nothing, it only polls), and from a READING whose holder has
 * exited.  While a reader holds it, the worker keeps the socket out of its epoll
 * interest (rxloop.c), so a datagram wakes the reader alone.
 */
#ifndef RTUDP_RX_PUBLISH_H
#define RTUDP_RX_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"
#include "rtudp_shm.h"

struct rtudp_rx_pkt; /* netio.h */

/* A reader's lease: how long it keeps the socket after a call, and how often the
 * worker looks at a socket a reader holds.  Long enough for the reply to the reader's
 * next send, and for the worker's looks to be rare beside a request and its reply (each
 * look is a real-time wake-up that can preempt the reader).  What a reader that stops
 * reading leaves in the socket meanwhile stays there, kernel-stamped: the pool sizes
 * the socket buffer to hold what the RX ring holds. */
#define RTUDP_DRX_LEASE_NS 20000000LL
/* A reader in WAIT renews its hold every RTUDP_DRX_STALE_NS / 2 (its poll slices); one
 * that has not for RTUDP_DRX_STALE_NS (a stopped process) loses it to the worker. */
#define RTUDP_DRX_STALE_NS 200000000LL
#define RTUDP_DRX_SLICE_NS (RTUDP_DRX_STALE_NS / 2)

/*
 * Whether a reader may read the socket now: the worker allows it (a udp channel it
 * serves), the channel is neither paused nor closed, received datagrams
 * are not impaired, no tap is attached (the worker mirrors what it receives) and no
 * event loop waits for data (the worker wakes those).
 */
bool rtudp_drx_terms(const struct rtudp_channel_block *b);

/* worker: take the token to read the socket; true when it is the worker's (WORKER) */
bool rtudp_drx_worker_take(struct rtudp_channel_block *b, int64_t now);
/* worker: done reading (WORKER -> FREE) */
void rtudp_drx_worker_give(struct rtudp_channel_block *b);
/* worker, on (re)taking a channel: a token its last worker held is free again */
void rtudp_drx_worker_reset(struct rtudp_channel_block *b);
/* worker: when to look again at a socket a reader holds (CLOCK_MONOTONIC): at the end
 * of a lease, and within RTUDP_DRX_LEASE_NS in any case */
int64_t rtudp_drx_check_at(const struct rtudp_channel_block *b, int64_t now);
/* worker: a reader waits in a call (WAIT or READING) */
bool rtudp_drx_reader_waits(const struct rtudp_channel_block *b);

/* the bytes of a datagram one RX record keeps (meta + payload fit the ring's
 * max_payload; max_datagram 0: as much as a datagram can be) */
uint32_t rtudp_rx_cap_for(const struct rtudp_bcast *ring, uint32_t max_datagram);

/* the room before a received datagram's bytes for its RX record's meta, so a datagram
 * is published without a copy */
#define RTUDP_RX_META_ROOM ((uint32_t)sizeof(struct rtudp_rx_meta))
/* one receive slot of a buffer of several: meta room, then cap bytes, 8-aligned so the
 * next meta is */
#define RTUDP_RX_SLOT(cap) (((size_t)RTUDP_RX_META_ROOM + (cap) + 7u) & ~(size_t)7u)
/* the most one receive can carry: a datagram, or (UDP_GRO) several coalesced, which
 * the kernel keeps within one 64 KiB IP datagram */
#define RTUDP_RX_RECV_MAX 65536u
/* a coalesced receive is split into records of meta + datagram, at most this many at a
 * time (the kernel coalesces at most 64; more are handled in rounds), in a buffer of
 * RTUDP_RX_SEG_BUF bytes */
#define RTUDP_RX_SEG_MAX 128u
#define RTUDP_RX_SEG_BUF (RTUDP_RX_RECV_MAX + RTUDP_RX_SEG_MAX * ((uint32_t)sizeof(struct rtudp_rx_meta) + 8u))

/*
 * The next datagrams of a coalesced receive p (p->gso_size bytes each, the last maybe
 * shorter), from byte *off on: at most max (<= RTUDP_RX_SEG_MAX) of them into segs[],
 * each copied into seg_buf after room for its meta and kept to cap bytes (the rest
 * counted truncated, as for a single datagram).  Returns how many (0: none left) and
 * moves *off past them.
 */
unsigned rtudp_rx_split(const struct rtudp_rx_pkt *p, uint32_t cap, uint32_t *off,
                        uint8_t *seg_buf, struct rtudp_rx_pkt *segs, unsigned max);

/* the rx_seq the next published datagram gets (the token's holder only) */
uint64_t rtudp_rx_seq_next(struct rtudp_channel_block *b);

/*
 * Publish pkts[0..n) into `ring`: each one's meta is written in the RTUDP_RX_META_ROOM
 * bytes before its buf, then the record (meta + datagram) is written, counted in b's
 * rx_packets / rx_bytes / rx_truncated / rx_errors and timed into rx_delay.
 */
void rtudp_rx_publish(struct rtudp_channel_block *b, struct rtudp_bcast *ring,
                      struct rtudp_rx_pkt *pkts, int n);
/* the socket's running total of drops the kernel reported with p, if it did (every kind) */
void rtudp_rx_note_drops(struct rtudp_channel_block *b, const struct rtudp_rx_pkt *p);

/*
 * The datagrams of one receive, pkts[0..n) (n <= RTUDP_RX_SEG_MAX), handed to
 * sink(ctx, run, k) in order, in runs of at most RTUDP_RX_SEG_MAX: each kept to cap
 * bytes (the rest counted truncated), a coalesced one (UDP_GRO) split into its
 * datagrams in seg_buf (RTUDP_RX_SEG_BUF bytes; NULL: the socket coalesces nothing),
 * the kernel's drop count noted in b.  The worker's sink is the channel's kind, a
 * reader's rtudp_rx_publish.
 */
typedef void (*rtudp_rx_sink)(void *ctx, struct rtudp_rx_pkt *run, int k);
void rtudp_rx_in_order(struct rtudp_channel_block *b, struct rtudp_rx_pkt *pkts, int n,
                       uint32_t cap, uint8_t *seg_buf, rtudp_rx_sink sink, void *ctx);

#endif /* RTUDP_RX_PUBLISH_H */
