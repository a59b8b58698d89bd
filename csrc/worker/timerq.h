/*
 * timerq.h - the worker's timer queue: packets waiting for their send time.
 *
 * A binary min-heap ordered by (send_at_ns, order).  `order` comes from a
 * per-queue counter at push, so packets with equal deadlines leave in the order
 * the worker queued them (a heap alone is not stable).  Producers' submission
 * order across channels does not matter (DESIGN.md, Time); within one channel the
 * worker pushes in ring order, so equal deadlines keep ring order.
 *
 * All memory is allocated once by init; push/pop never allocate (hot path).  Init
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
};

struct rtudp_timerq {
    struct rtudp_timer *heap;   /* heap[0] is the earliest */
    uint32_t len;
    uint32_t capacity;
    uint64_t next_order;
};

/* capacity >= 1; one calloc.  RTUDP_EINVAL for a bad capacity, RTUDP_ESYS when out
 * of memory. */
int rtudp_timerq_init(struct rtudp_timerq *q, uint32_t capacity);
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
/* drops every timer of `channel` (it is closing); returns how many.  O(len). */
uint32_t rtudp_timerq_remove_channel(struct rtudp_timerq *q, uint32_t channel);

#endif /* RTUDP_TIMERQ_H */
