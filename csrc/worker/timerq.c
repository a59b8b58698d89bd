/*
 * timerq.c - binary min-heap of timed packets (see timerq.h).
 *
 * Sifts move a hole instead of swapping: one 48-byte copy per level instead of
 * three.  Keys are compared as (send_at_ns, order); order is unique per queue, so
 * the order of the heap is total and pops are deterministic.
 */
#include "timerq.h"
#include "prefault.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* keeps index arithmetic (2i + 2) inside uint32_t and the array inside size_t */
#define TIMERQ_MAX_CAPACITY (UINT32_MAX / 4)

static inline bool before(const struct rtudp_timer *a, const struct rtudp_timer *b)
{
    if (a->send_at_ns != b->send_at_ns)
        return a->send_at_ns < b->send_at_ns;
    return a->order < b->order;
}

/* put t at hole i or above it, moving larger parents down */
static void sift_up(struct rtudp_timer *h, uint32_t i, const struct rtudp_timer *t)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(t, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = *t;
}

/* put t at hole i or below it, moving smaller children up (len = heap size) */
static void sift_down(struct rtudp_timer *h, uint32_t len, uint32_t i, const struct rtudp_timer *t)
{
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= len)
            break;
        if (child + 1 < len && before(&h[child + 1], &h[child]))
            child++;
        if (!before(&h[child], t))
            break;
        h[i] = h[child];
        i = child;
    }
    h[i] = *t;
}

int rtudp_timerq_init(struct rtudp_timerq *q, uint32_t capacity)
{
    if (!q)
        return RTUDP_EINVAL;
    memset(q, 0, sizeof *q);
    if (capacity == 0 || capacity > TIMERQ_MAX_CAPACITY)
        return RTUDP_EINVAL;
    q->heap = calloc(capacity, sizeof *q->heap);
    if (!q->heap)
        return RTUDP_ESYS;
    /* a heap uses a prefix as deep as what is queued: the common depths resident now,
     * deeper pages on first use (the worker's memory is locked on fault) */
    rtudp_prefault(q->heap, (size_t)(capacity < RTUDP_TIMERQ_PREFAULT ? capacity
                                                                    : RTUDP_TIMERQ_PREFAULT) *
                                sizeof *q->heap);
    q->capacity = capacity;
    return RTUDP_OK;
}

void rtudp_timerq_free(struct rtudp_timerq *q)
{
    if (!q)
        return;
    free(q->heap);
    /* a second free, or a push after free, sees a queue of capacity 0 */
    memset(q, 0, sizeof *q);
}

int rtudp_timerq_push(struct rtudp_timerq *q, const struct rtudp_timer *t)
{
    if (q->len >= q->capacity)
        return RTUDP_EFULL;
    struct rtudp_timer x = *t;
    x.order = q->next_order++;
    sift_up(q->heap, q->len++, &x);
    return RTUDP_OK;
}

const struct rtudp_timer *rtudp_timerq_peek(const struct rtudp_timerq *q)
{
    return q->len ? &q->heap[0] : NULL;
}

int rtudp_timerq_pop(struct rtudp_timerq *q, struct rtudp_timer *out)
{
    if (q->len == 0)
        return RTUDP_EMPTY;
    *out = q->heap[0];
    uint32_t n = --q->len;
    if (n)
        sift_down(q->heap, n, 0, &q->heap[n]); /* heap[n] is outside the heap now: safe to read */
    return RTUDP_OK;
}

uint32_t rtudp_timerq_pop_due(struct rtudp_timerq *q, int64_t now_ns, struct rtudp_timer *out,
                              uint32_t max)
{
    uint32_t n = 0;
    while (n < max && q->len && q->heap[0].send_at_ns <= now_ns)
        rtudp_timerq_pop(q, &out[n++]);
    return n;
}

int64_t rtudp_timerq_next_deadline(const struct rtudp_timerq *q)
{
    return q->len ? q->heap[0].send_at_ns : INT64_MAX;
}

uint32_t rtudp_timerq_len(const struct rtudp_timerq *q)
{
    return q->len;
}

uint32_t rtudp_timerq_remove_channel(struct rtudp_timerq *q, uint32_t channel)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < q->len; i++)
        if (q->heap[i].channel != channel)
            q->heap[kept++] = q->heap[i];
    uint32_t removed = q->len - kept;
    q->len = kept;
    if (removed == 0 || kept < 2)
        return removed;
    /* Floyd's heapify: O(n).  Keys (with their order) are kept, so ties still
     * leave in push order. */
    for (uint32_t i = kept / 2; i-- > 0;) {
        struct rtudp_timer t = q->heap[i];
        sift_down(q->heap, kept, i, &t);
    }
    return removed;
}
