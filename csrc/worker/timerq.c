/*
 * timerq.c - the timer queue: a FIFO of in-order timers and a binary min-heap of
 * the rest (see timerq.h).
 *
 * Sifts move a hole instead of swapping: one 56-byte copy per level instead of
 * three.  Keys are compared as (send_at_ns, order); order is unique per queue, so
 * the order of the queue is total and pops are deterministic.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap */
#endif
#include "timerq.h"
#include "prefault.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* the lines of t's key (send_at_ns, order: what `before` compares), which a 56-byte
 * timer may have across two */
static void prefetch_key(const struct rtudp_timer *t)
{
    __builtin_prefetch(&t->send_at_ns, 0, 3);
    __builtin_prefetch(&t->order, 0, 3);
}

/* put t at hole i or below it, moving smaller children up (len = heap size) */
static void sift_down(struct rtudp_timer *h, uint32_t len, uint32_t i, const struct rtudp_timer *t)
{
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= len)
            break;
        /* the next level's four keys (both children's children), asked for before
         * this level is compared: a deep heap's levels then miss side by side, not
         * one after another */
        uint32_t grand = 2 * child + 1;
        if (grand + 3 < len)
            for (uint32_t k = grand; k < grand + 4; k++)
                prefetch_key(&h[k]);
        if (child + 1 < len && before(&h[child + 1], &h[child]))
            child++;
        if (!before(&h[child], t))
            break;
        h[i] = h[child];
        i = child;
    }
    h[i] = *t;
}

/*
 * The two arrays are anonymous mappings of their own, so that a queue grows without a
 * copy: a larger mapping is made and the old pages are moved to its front (mremap), so
 * no entry is copied and no page the queue never reached becomes resident.  The new
 * tail is mapped as any new mapping of the process is (in the worker, locked as it
 * faults in); growing the old mapping in place would give it the old one's lock, which
 * faults the whole tail in (or fails past RLIMIT_MEMLOCK).  Both arrays keep their
 * indices: the heap stays a heap, and the FIFO's ring keeps its length (fifo_size)
 * and its entries.
 */
static size_t entries_bytes(uint32_t capacity)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t bytes = (size_t)capacity * sizeof(struct rtudp_timer);
    return (bytes + page - 1) / page * page;
}

static struct rtudp_timer *map_entries(uint32_t capacity)
{
    void *p = mmap(NULL, entries_bytes(capacity), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap_entries(struct rtudp_timer *a, uint32_t capacity)
{
    if (a)
        munmap(a, entries_bytes(capacity));
}

/* *a grown from `from` entries to `to`: 0, or -1 (*a unchanged) */
static int remap_entries(struct rtudp_timer **a, uint32_t from, uint32_t to)
{
    struct rtudp_timer *room = map_entries(to);
    if (!room)
        return -1;
    size_t kept = entries_bytes(from);
    void *p = mremap(*a, kept, kept, MREMAP_MAYMOVE | MREMAP_FIXED, room);
    if (p == MAP_FAILED) {
        unmap_entries(room, to);
        return -1;
    }
    *a = p;
    return 0;
}

/* the heap's first entries, up to RTUDP_TIMERQ_PREFAULT, resident: those from `from` */
static void prefault_heap(struct rtudp_timerq *q, uint32_t from, uint32_t to)
{
    if (to > RTUDP_TIMERQ_PREFAULT)
        to = RTUDP_TIMERQ_PREFAULT;
    if (from < to)
        rtudp_prefault(q->heap + from, (size_t)(to - from) * sizeof *q->heap);
}

int rtudp_timerq_init(struct rtudp_timerq *q, uint32_t capacity)
{
    if (!q)
        return RTUDP_EINVAL;
    memset(q, 0, sizeof *q);
    if (capacity == 0 || capacity > TIMERQ_MAX_CAPACITY)
        return RTUDP_EINVAL;
    uint32_t fifo_size = capacity < RTUDP_TIMERQ_FIFO_START ? capacity : RTUDP_TIMERQ_FIFO_START;
    q->heap = map_entries(capacity);
    q->fifo = map_entries(capacity);
    if (!q->heap || !q->fifo) {
        unmap_entries(q->heap, capacity);
        unmap_entries(q->fifo, capacity);
        memset(q, 0, sizeof *q);
        return RTUDP_ESYS;
    }
    /* a heap uses a prefix as deep as what is queued: the common depths resident now,
     * deeper pages on first use (the worker's memory is locked on fault).  The FIFO's
     * ring goes round all of its length: that resident now, more when it grows */
    prefault_heap(q, 0, capacity);
    rtudp_prefault(q->fifo, (size_t)fifo_size * sizeof *q->fifo);
    q->capacity = capacity;
    q->fifo_size = fifo_size;
    return RTUDP_OK;
}

int rtudp_timerq_grow(struct rtudp_timerq *q, uint32_t capacity)
{
    if (!q || !q->heap || capacity > TIMERQ_MAX_CAPACITY)
        return RTUDP_EINVAL;
    if (capacity <= q->capacity)
        return RTUDP_OK;
    /* the heap first: if the FIFO's move fails, the heap is only roomier than the
     * capacity says, and the queue goes on as it was */
    if (remap_entries(&q->heap, q->capacity, capacity) != 0)
        return RTUDP_ESYS;
    if (remap_entries(&q->fifo, q->capacity, capacity) != 0) {
        /* the heap's new tail goes again, so that free unmaps all of it */
        size_t kept = entries_bytes(q->capacity);
        munmap((uint8_t *)q->heap + kept, entries_bytes(capacity) - kept);
        return RTUDP_ESYS;
    }
    prefault_heap(q, q->capacity, capacity);
    q->capacity = capacity;
    return RTUDP_OK;
}

void rtudp_timerq_free(struct rtudp_timerq *q)
{
    if (!q)
        return;
    unmap_entries(q->heap, q->capacity);
    unmap_entries(q->fifo, q->capacity);
    /* a second free, or a push after free, sees a queue of capacity 0 */
    memset(q, 0, sizeof *q);
}

static struct rtudp_timer *fifo_at(const struct rtudp_timerq *q, uint32_t k)
{
    uint32_t i = q->fifo_head + k; /* both < fifo_size <= UINT32_MAX / 4: no wrap */
    return &q->fifo[i < q->fifo_size ? i : i - q->fifo_size];
}

int rtudp_timerq_push(struct rtudp_timerq *q, const struct rtudp_timer *t)
{
    if (q->len + q->fifo_len >= q->capacity)
        return RTUDP_EFULL;
    struct rtudp_timer x = *t;
    x.order = q->next_order++;
    /* a later order: not before the FIFO's last unless its deadline is earlier */
    if (q->fifo_len == 0 || x.send_at_ns >= fifo_at(q, q->fifo_len - 1)->send_at_ns) {
        if (q->fifo_len == q->fifo_size && q->fifo_head == 0 && q->fifo_size < q->capacity)
            q->fifo_size = q->fifo_size <= q->capacity / 2 ? 2 * q->fifo_size : q->capacity;
        if (q->fifo_len < q->fifo_size) {
            *fifo_at(q, q->fifo_len++) = x;
            return RTUDP_OK;
        }
    }
    sift_up(q->heap, q->len++, &x);
    return RTUDP_OK;
}

const struct rtudp_timer *rtudp_timerq_peek(const struct rtudp_timerq *q)
{
    if (!q->fifo_len)
        return q->len ? &q->heap[0] : NULL;
    const struct rtudp_timer *f = &q->fifo[q->fifo_head];
    return q->len && before(&q->heap[0], f) ? &q->heap[0] : f;
}

/* copy out first (what peek returned) and take it off its part */
static void take(struct rtudp_timerq *q, const struct rtudp_timer *first, struct rtudp_timer *out)
{
    *out = *first;
    if (first != q->heap) {
        q->fifo_len--;
        q->fifo_head = q->fifo_len && q->fifo_head + 1 < q->fifo_size ? q->fifo_head + 1 : 0;
        return;
    }
    uint32_t n = --q->len;
    if (n)
        sift_down(q->heap, n, 0, &q->heap[n]); /* heap[n] is outside the heap now: safe to read */
}

int rtudp_timerq_pop(struct rtudp_timerq *q, struct rtudp_timer *out)
{
    const struct rtudp_timer *first = rtudp_timerq_peek(q);
    if (!first)
        return RTUDP_EMPTY;
    take(q, first, out);
    return RTUDP_OK;
}

uint32_t rtudp_timerq_pop_due(struct rtudp_timerq *q, int64_t now_ns, struct rtudp_timer *out,
                              uint32_t max)
{
    uint32_t n = 0;
    const struct rtudp_timer *p;
    while (n < max && (p = rtudp_timerq_peek(q)) && p->send_at_ns <= now_ns)
        take(q, p, &out[n++]);
    return n;
}

int64_t rtudp_timerq_next_deadline(const struct rtudp_timerq *q)
{
    const struct rtudp_timer *p = rtudp_timerq_peek(q);
    return p ? p->send_at_ns : INT64_MAX;
}

uint32_t rtudp_timerq_len(const struct rtudp_timerq *q)
{
    return q->len + q->fifo_len;
}

static void reverse(struct rtudp_timer *a, uint32_t from, uint32_t to)
{
    while (from + 1 < to) {
        struct rtudp_timer t = a[from];
        a[from++] = a[--to];
        a[to] = t;
    }
}

/* the FIFO without channel's timers, still in order, from index 0; how many went */
static int gone(const uint64_t *channels, uint32_t n_channels, uint32_t channel)
{
    return channel < n_channels && (channels[channel >> 6] >> (channel & 63)) & 1u;
}

static uint32_t fifo_remove_channels(struct rtudp_timerq *q, const uint64_t *channels,
                                     uint32_t n_channels)
{
    uint32_t kept = 0, n = q->fifo_len;
    /* its head moved to index 0: in one piece, a move; wrapped round (every entry of
     * the ring has been used), turned by three reversals (no scratch memory) */
    if (q->fifo_head + n <= q->fifo_size) {
        memmove(q->fifo, q->fifo + q->fifo_head, (size_t)n * sizeof *q->fifo);
    } else {
        reverse(q->fifo, 0, q->fifo_head);
        reverse(q->fifo, q->fifo_head, q->fifo_size);
        reverse(q->fifo, 0, q->fifo_size);
    }
    q->fifo_head = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!gone(channels, n_channels, q->fifo[i].channel))
            q->fifo[kept++] = q->fifo[i];
    q->fifo_len = kept;
    return n - kept;
}

uint32_t rtudp_timerq_remove_channels(struct rtudp_timerq *q, const uint64_t *channels,
                                      uint32_t n_channels)
{
    uint32_t from_fifo = fifo_remove_channels(q, channels, n_channels);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < q->len; i++)
        if (!gone(channels, n_channels, q->heap[i].channel))
            q->heap[kept++] = q->heap[i];
    uint32_t removed = q->len - kept;
    q->len = kept;
    if (removed == 0 || kept < 2)
        return from_fifo + removed;
    /* Floyd's heapify: O(n).  Keys (with their order) are kept, so ties still
     * leave in push order. */
    for (uint32_t i = kept / 2; i-- > 0;) {
        struct rtudp_timer t = q->heap[i];
        sift_down(q->heap, kept, i, &t);
    }
    return from_fifo + removed;
}
