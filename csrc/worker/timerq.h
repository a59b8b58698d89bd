/*
 * timerq.h - the worker's timer queue: packets waiting for their send time.
 *
 * Ordered by (send_at_ns, order).  `order` comes from a per-queue counter at push,
 * so packets with equal deadlines leave in the order the worker queued them (a heap
 * alone is not stable).  Producers' submission order across channels does not
 * matter (DESIGN.md, Time); within one channel the worker pushes in ring order, so
 * equal deadlines keep ring order.
 *
 * Two parts: a FIFO of timers pushed in deadline order, and a binary min-heap of the
 * rest; a pop takes the earlier of their heads.  A stream queued ahead (deadlines
 * that only grow, the usual case) goes through the FIFO at O(1) a timer, where a heap
 * that deep costs a cache-missing sift of one level per doubling a pop
 * (docs/measurements.md at d3e5a6a, "a FIFO for deadlines in order").  A push
 * earlier than the FIFO's last timer, or one that finds the FIFO full, goes to the
 * heap.
 *
 * Memory is allocated by init and grow only; push/pop never allocate (hot path).  Init
 * makes the first RTUDP_TIMERQ_PREFAULT entries resident; in the worker, whose
 * later memory is locked on fault (sched.c), a queue deeper than that faults in
 * each further page of the heap once, the first time it gets that deep: a queue
 * sized for every record the TX rings could hold costs what is actually queued.
 * Not thread-safe: one queue belongs to one worker thread.
 *
 * send_at_ns is used as given: the worker should turn 0 ("now") into its drain
 * time before pushing, so a "now" packet neither jumps ahead of packets already
 * late nor reports a lateness measured from 1970 of CLOCK_MONOTONIC.
 */
#ifndef RTUDP_TIMERQ_H
#define RTUDP_TIMERQ_H

#include <stdint.h>

#include "ring.h"

/* entries init makes resident (3.5 MiB of timers): more than the benchmarks keep
 * queued ahead (rtudp demo queues its whole schedule, 100,000 packets a channel:
 * the rest faults in while it is being queued, before the first deadline) */
#define RTUDP_TIMERQ_PREFAULT 65536u
/* the FIFO's ring starts this long (1.8 MiB, made resident by init: 0.65 s queued
 * ahead at 50 kpps).  It doubles, up to the capacity, when it is full and starts at
 * its first entry (as when a whole schedule is queued at once: deeper pages fault in
 * then, once); full and wrapped round, a push spills into the heap.  So its memory
 * follows the longest queue, as the heap's does, not the capacity. */
#define RTUDP_TIMERQ_FIFO_START 32768u

struct rtudp_timer {
    int64_t send_at_ns;         /* CLOCK_MONOTONIC deadline: the queue's order */
    int64_t asked_ns;           /* the deadline the user asked for (lateness counts from it) */
    uint64_t order;             /* assigned by push: ties leave in push order */
    uint32_t channel;           /* worker's channel index */
    uint32_t slot;              /* the channel's inflight slot (rtudp_inflight_push) */
    uint64_t ring_pos;          /* the record's position in the channel's TX ring */
    const uint8_t *payload;     /* in the TX ring: valid until the ring is released past it */
    uint32_t len;               /* payload bytes, as validated by rtudp_mpsc_next */
    uint16_t flags;
    uint8_t arrived_late;       /* it came with its deadline past or within the spin margin:
                                   its lateness is the submitter's (rtudp_tx_in_time_by) */
};

struct rtudp_timerq {
    struct rtudp_timer *heap;   /* heap[0] is the heap's earliest */
    uint32_t len;               /* in the heap */
    uint32_t capacity;          /* in all: heap and FIFO */
    uint64_t next_order;
    struct rtudp_timer *fifo;   /* room for capacity; a ring of fifo_size of it, in
                                   (send_at_ns, order) order */
    uint32_t fifo_size;         /* the ring's length now (RTUDP_TIMERQ_FIFO_START) */
    uint32_t fifo_head;         /* index of the earliest */
    uint32_t fifo_len;
};

/* capacity >= 1; two mappings.  RTUDP_EINVAL for a bad capacity, RTUDP_ESYS when out
 * of memory. */
int rtudp_timerq_init(struct rtudp_timerq *q, uint32_t capacity);
/* Room for `capacity` timers in all, every queued timer kept where it is (no copy):
 * RTUDP_OK (also when it has that room already), RTUDP_EINVAL for a bad capacity or
 * a queue not made, RTUDP_ESYS when out of memory (the queue is then as it was). */
int rtudp_timerq_grow(struct rtudp_timerq *q, uint32_t capacity);
void rtudp_timerq_free(struct rtudp_timerq *q);
/* copies *t, overwriting its `order`; RTUDP_EFULL when full */
int rtudp_timerq_push(struct rtudp_timerq *q, const struct rtudp_timer *t);
/* the earliest timer (stays queued), NULL when empty */
const struct rtudp_timer *rtudp_timerq_peek(const struct rtudp_timerq *q);
/* RTUDP_OK, or RTUDP_EMPTY */
int rtudp_timerq_pop(struct rtudp_timerq *q, struct rtudp_timer *out);
/* pops every timer with send_at_ns <= now_ns, earliest first, up to max; returns
 * how many it wrote to out[] */
uint32_t rtudp_timerq_pop_due(struct rtudp_timerq *q, int64_t now_ns, struct rtudp_timer *out,
                              uint32_t max);
/* earliest deadline, INT64_MAX when empty */
int64_t rtudp_timerq_next_deadline(const struct rtudp_timerq *q);
uint32_t rtudp_timerq_len(const struct rtudp_timerq *q);
/* drops every timer of the channels whose bits are set in `channels` (a bitmap of
 * n_channels channels: they are closing); returns how many.  O(len), once for all of
 * them: a worker that lets go of many channels at once pays one pass. */
uint32_t rtudp_timerq_remove_channels(struct rtudp_timerq *q, const uint64_t *channels,
                                      uint32_t n_channels);

#endif /* RTUDP_TIMERQ_H */
