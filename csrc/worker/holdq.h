/*
 * holdq.h - a bounded hold queue: datagrams copied in to leave later, each at its own
 * due time, earliest first (ties in the order they came).  The worker holds in one what
 * the impairment delays (docs/impairment.md): a kind's own sends on the TX thread, and
 * received datagrams on the RX side, per channel.
 *
 * Memory: one byte ring of `bytes`, allocated, zeroed (so resident: the worker's later
 * memory is locked as it faults in) and sized once by init; put and pop never allocate.
 * Each datagram takes one chunk (a header, the caller's fixed-size `meta`, `room`
 * writable bytes before the data, the data), 8-aligned, at the ring's tail; a chunk
 * released out of order is reclaimed once every chunk before it was, so the waste is
 * bounded by how far out of order datagrams leave (the jitter's worth).  A min-heap of
 * chunk offsets orders them by (due, arrival).  Full: put says so (the caller counts a
 * drop); nothing is overwritten.
 *
 * Not thread-safe: one queue belongs to one thread at a time.
 */
#ifndef RTUDP_HOLDQ_H
#define RTUDP_HOLDQ_H

#include <stdint.h>

#define RTUDP_HOLDQ_MIN_BYTES 4096u

struct rtudp_holdq {
    uint8_t *buf;               /* the byte ring (NULL: none, everything put is refused) */
    uint64_t bytes;             /* its size, a multiple of 8 */
    uint64_t head;              /* position of the oldest chunk not reclaimed */
    uint64_t tail;              /* position the next chunk goes at */
    uint32_t *heap;             /* chunk offsets in buf: a min-heap by (due, order) */
    uint32_t n;                 /* datagrams held */
    uint32_t max;               /* the heap's room */
    uint64_t order;             /* arrival counter: ties leave in arrival order */
};

/* One held datagram, as peek shows it (valid until it is popped). */
struct rtudp_hold_item {
    int64_t due_ns;
    void *meta;                 /* meta_len bytes, as put */
    uint32_t meta_len;
    uint32_t len;
    uint8_t *data;              /* len bytes; `room` writable bytes before it */
};

/* A queue of `bytes` (rounded up to 8, at least RTUDP_HOLDQ_MIN_BYTES, below 4 GiB):
 * RTUDP_OK, or RTUDP_EINVAL (no memory, or too big; q is then empty and refuses all). */
int rtudp_holdq_init(struct rtudp_holdq *q, uint64_t bytes);
void rtudp_holdq_free(struct rtudp_holdq *q);
/* Copy meta[0..meta_len) and data[0..len) in, due at due_ns, with `room` bytes before
 * the data: RTUDP_OK, or RTUDP_EFULL (no room now: nothing was taken). */
int rtudp_holdq_put(struct rtudp_holdq *q, int64_t due_ns, const void *meta, uint32_t meta_len,
                    uint32_t room, const void *data, uint32_t len);
/* The earliest due time held (INT64_MAX when empty). */
int64_t rtudp_holdq_next_due(const struct rtudp_holdq *q);
/* The earliest datagram if it is due at `now`: 1 and *out, else 0. */
int rtudp_holdq_peek_due(const struct rtudp_holdq *q, int64_t now, struct rtudp_hold_item *out);
/* Release the earliest datagram (the one peek showed); its memory may be reused. */
void rtudp_holdq_pop(struct rtudp_holdq *q);
/* Release everything held. */
void rtudp_holdq_clear(struct rtudp_holdq *q);

#endif /* RTUDP_HOLDQ_H */
