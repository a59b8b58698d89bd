/*
 * ring.c - the MPSC and broadcast rings laid out in rtudp_shm.h.
 *
 * Shared words are plain integers in the layout (so cffi can read it); every
 * access to a word another process may write goes through <stdatomic.h> by
 * casting to an _Atomic pointer, as liburing does.  Every length or position read
 * from shared memory is checked against the process-local geometry in the view
 * (struct rtudp_mpsc / rtudp_bcast), never against the shared copy.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall(), clock_gettime() */
#endif
#include "ring.h"
#include "shm_access.h"
#include "readyset.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>


#define TX_HDR ((uint64_t)sizeof(struct rtudp_tx_record))
#define BC_HDR ((uint64_t)sizeof(struct rtudp_bcast_record))
#define PAD_MIN ((uint64_t)RTUDP_RECORD_ALIGN) /* a padding record needs only length+type+flags */
/* the longest run a dead claim can leave: a wrap pad plus the largest record */

static inline bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }


int64_t rtudp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rtudp_check_set(struct rtudp_check *why, int code, const char *fmt, ...)
{
    if (why) {
        va_list ap;
        va_start(ap, fmt);
        why->code = code;
        vsnprintf(why->msg, sizeof why->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static uint64_t max_payload_for(uint64_t capacity, uint64_t hdr)
{
    uint64_t quarter = capacity / 4;
    uint64_t m = quarter > hdr ? quarter - hdr : 0;
    return m < RTUDP_MAX_PAYLOAD ? m : RTUDP_MAX_PAYLOAD;
}

bool rtudp_ring_capacity_ok(uint64_t c)
{
    return is_pow2(c) && c >= RTUDP_RING_MIN_CAPACITY && c <= RTUDP_RING_MAX_CAPACITY;
}

/* ------------------------------------------------------------------ doorbells */

/*
 * Sleep until `word` changes or the absolute CLOCK_MONOTONIC deadline passes.
 * Not FUTEX_PRIVATE: the word is in memory shared between processes.
 */
static int futex_wait_until(uint32_t *word, uint32_t expected, int64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns != INT64_MAX) {
        ts.tv_sec = deadline_ns / 1000000000;
        ts.tv_nsec = deadline_ns % 1000000000;
        tsp = &ts;
    }
    long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, tsp, NULL,
                      FUTEX_BITSET_MATCH_ANY);
    if (rc == 0 || errno == EAGAIN)
        return RTUDP_OK;
    if (errno == ETIMEDOUT)
        return RTUDP_ETIMEDOUT;
    if (errno == EINTR)
        return RTUDP_EINTR;
    return RTUDP_ESYS;
}

_Thread_local void (*rtudp_before_sleep)(void);

void rtudp_set_before_sleep(uintptr_t fn)
{
    rtudp_before_sleep = (void (*)(void))fn;
}

/* Wake sleepers, and only make the system call if someone sleeps. */
void rtudp_bell_ring(struct rtudp_doorbell *bell)
{
    /* pairs with the fence in bell_wait: either the waiter sees our data, or we
     * see its waiters count */
    atomic_thread_fence(memory_order_seq_cst);
    if (load_relaxed(&bell->waiters) != 0) {
        fetch_add(&bell->seq, 1);
        syscall(SYS_futex, &bell->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
}

void rtudp_worker_post_command(struct rtudp_worker_slot *slot)
{
    /* release: pairs with the worker's acquire; the message is in the socket already */
    atomic_fetch_add_explicit(SHARED(&slot->commands_posted), 1, memory_order_release);
    rtudp_bell_ring(&slot->bell);
}

/* Wake the consumer of m for a record due at send_at_ns (0 = now): the ring's own
 * bell and the view's extra bell, under one fence (see rtudp_bell_ring).  A sleeper
 * that published a deadline no later than send_at_ns is left asleep: it drains the
 * rings when it wakes for that deadline, before anything in them is due.  On 2 CPUs
 * this keeps a SCHED_FIFO worker from preempting the sender at every queued packet. */
/* The worker's bell and ready set a commit goes to: the route's, looked up now (after
 * the commit's fence: a mover that stores the new index, fences, then hands the ring
 * to the new worker makes it see every commit whose producer read the old index), or
 * the fixed ones. */
void rtudp_mpsc_consumer(const struct rtudp_mpsc *m, struct rtudp_doorbell **wake,
                         struct rtudp_ready_set **ready)
{
    const struct rtudp_mpsc_route *r = &m->route;
    if (!r->worker) {
        *wake = m->wake;
        *ready = m->ready;
        return;
    }
    int32_t w = load_acquire(r->worker);
    if (w < 0 || (uint32_t)w >= r->n) {
        *wake = NULL;
        *ready = NULL;
        return;
    }
    *wake = (struct rtudp_doorbell *)(r->bells + (uint64_t)w * r->bell_stride);
    *ready = (struct rtudp_ready_set *)(r->ready_sets + (uint64_t)w * r->ready_stride);
}

static void notify_consumer(struct rtudp_mpsc *m, int64_t send_at_ns)
{
    atomic_thread_fence(memory_order_seq_cst);
    struct rtudp_doorbell *wake;
    struct rtudp_ready_set *ready;
    rtudp_mpsc_consumer(m, &wake, &ready);
    if (ready) {
        /* the mark first: a worker woken by the bell finds the ring in its set */
        rtudp_ready_mark(ready, m->ready_bit);
        atomic_thread_fence(memory_order_seq_cst);
    }
    struct rtudp_doorbell *bells[2] = {&m->ring->data_bell, wake};
    for (int i = 0; i < 2; i++) {
        struct rtudp_doorbell *bell = bells[i];
        if (bell && load_acquire(&bell->waiters) != 0) {
            int64_t wakes_at = load_relaxed(&bell->sleeper_deadline_ns);
            if (send_at_ns > 0 && wakes_at > 0 && send_at_ns >= wakes_at)
                continue;
            if (bell == wake) {
                /* when the worker was first called: what it then takes came by this,
                 * however late it wakes (txstamp.h, rtudp_tx_in_time_by) */
                int64_t none = 0;
                atomic_compare_exchange_strong_explicit(SHARED(&bell->rung_ns), &none,
                                                        rtudp_now_ns(), memory_order_relaxed,
                                                        memory_order_relaxed);
            }
            fetch_add(&bell->seq, 1);
            syscall(SYS_futex, &bell->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        }
    }
}

/* notify_consumer for records just committed with deadline send_at_ns (the earliest
 * of a batch; 0 = now): they leave no earlier than the view's not_before either */
static void notify_committed(struct rtudp_mpsc *m, int64_t send_at_ns)
{
    if (m->not_before) {
        /* it only grows, so a stale read is an earlier time: at worst a needless wake */
        int64_t not_before = load_relaxed(m->not_before);
        if (not_before > send_at_ns)
            send_at_ns = not_before;
    }
    notify_consumer(m, send_at_ns);
}

/* Spin up to spin_ns (never past the deadline), then park on the futex. */
int rtudp_bell_wait(struct rtudp_doorbell *bell, rtudp_ready_fn ready, const void *ctx,
                    int64_t deadline_ns, int64_t spin_ns)
{
    if (ready(ctx))
        return RTUDP_OK;
    int64_t now = rtudp_now_ns();
    int64_t spin_end = now + rtudp_wait_spin_ns(spin_ns);
    if (spin_end > deadline_ns)
        spin_end = deadline_ns;
    while (now < spin_end) {
        for (int i = 0; i < 32; i++) {
            cpu_relax();
            if (ready(ctx))
                return RTUDP_OK;
        }
        now = rtudp_now_ns();
    }
    for (;;) {
        if (now >= deadline_ns)
            return ready(ctx) ? RTUDP_OK : RTUDP_ETIMEDOUT;
        atomic_fetch_add_explicit(SHARED(&bell->waiters), 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        uint32_t seq = load_acquire(&bell->seq);
        int rc = RTUDP_OK;
        if (!ready(ctx)) {
            if (rtudp_before_sleep)
                rtudp_before_sleep();
            rc = futex_wait_until(&bell->seq, seq, deadline_ns);
        }
        atomic_fetch_sub_explicit(SHARED(&bell->waiters), 1, memory_order_relaxed);
        if (ready(ctx))
            return RTUDP_OK;
        if (rc == RTUDP_EINTR || rc == RTUDP_ESYS)
            return rc;
        now = rtudp_now_ns();
    }
}

/* What tells the two ring kinds apart to the code that creates and attaches them. Both
 * descriptors lead with the same geometry fields (magic, kind, capacity, max_payload), read
 * here through the MPSC descriptor's names. */
struct ring_shape {
    uint64_t desc_size;  /* the descriptor before the data */
    uint32_t kind;       /* RTUDP_RING_MPSC or RTUDP_RING_BROADCAST */
    uint64_t hdr;        /* record header size */
    size_t head_off;     /* where head and tail sit in the descriptor */
    size_t tail_off;
};

static const struct ring_shape MPSC_SHAPE = {
    sizeof(struct rtudp_mpsc_ring), RTUDP_RING_MPSC, TX_HDR,
    offsetof(struct rtudp_mpsc_ring, head), offsetof(struct rtudp_mpsc_ring, tail),
};

static const struct ring_shape BCAST_SHAPE = {
    sizeof(struct rtudp_bcast_ring), RTUDP_RING_BROADCAST, BC_HDR,
    offsetof(struct rtudp_bcast_ring, head), offsetof(struct rtudp_bcast_ring, tail),
};

/* Geometry checks shared by both ring kinds; returns RTUDP_OK or fills why. */
static int check_geometry(const void *mem, uint64_t avail, const struct ring_shape *shape,
                          struct rtudp_check *why)
{
    uint64_t desc_size = shape->desc_size, hdr = shape->hdr;
    uint32_t want_kind = shape->kind;
    if (!mem || ((uintptr_t)mem % RTUDP_CACHE_LINE) != 0)
        return rtudp_check_set(why, RTUDP_EINVAL, "ring address is null or not 64-byte aligned");
    if (avail < desc_size)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring descriptor needs %llu bytes, only %llu mapped",
                    (unsigned long long)desc_size, (unsigned long long)avail);
    /* magic, kind, capacity, max_payload are the first fields of both descriptors */
    const struct rtudp_mpsc_ring *g = mem;
    if (g->magic != RTUDP_RING_MAGIC)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring magic 0x%08x, expected 0x%08x", g->magic,
                    RTUDP_RING_MAGIC);
    if (g->kind != want_kind)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring kind %u, expected %u", g->kind, want_kind);
    uint64_t cap = g->capacity;
    if (!rtudp_ring_capacity_ok(cap))
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                    "ring capacity %llu is not a power of two between %llu and %llu",
                    (unsigned long long)cap, (unsigned long long)RTUDP_RING_MIN_CAPACITY,
                    (unsigned long long)RTUDP_RING_MAX_CAPACITY);
    if (cap > avail - desc_size)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring capacity %llu needs %llu bytes, only %llu mapped",
                    (unsigned long long)cap, (unsigned long long)(cap + desc_size),
                    (unsigned long long)avail);
    if (g->max_payload != max_payload_for(cap, hdr))
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring max_payload %llu, expected %llu for capacity %llu",
                    (unsigned long long)g->max_payload,
                    (unsigned long long)max_payload_for(cap, hdr), (unsigned long long)cap);
    return RTUDP_OK;
}

/* Zero the descriptor and (unless it is known to be zero) the data, write the
 * geometry, publish the magic last. */
static int init_ring(void *mem, uint64_t capacity, const struct ring_shape *shape,
                     bool data_zero)
{
    if (!mem || !rtudp_ring_capacity_ok(capacity))
        return RTUDP_EINVAL;
    memset(mem, 0, shape->desc_size + (data_zero ? 0 : capacity));
    struct rtudp_mpsc_ring *g = mem;
    g->kind = shape->kind;
    g->capacity = capacity;
    g->max_payload = max_payload_for(capacity, shape->hdr);
    store_release(&g->magic, (uint32_t)RTUDP_RING_MAGIC);
    return RTUDP_OK;
}

/* Attach steps shared by both ring kinds: the geometry, then head and tail checked
 * against the capacity; fills the handle's view of the data and the tail it saw. */
static int attach_ring(void *mem, uint64_t avail, const struct ring_shape *shape, uint8_t **data,
                       uint64_t *capacity, uint64_t *mask, uint64_t *max_payload, uint64_t *tail_seen,
                       struct rtudp_check *why)
{
    int rc = check_geometry(mem, avail, shape, why);
    if (rc != RTUDP_OK)
        return rc;
    const struct rtudp_mpsc_ring *g = mem;
    uint64_t cap = g->capacity;
    uint64_t head = load_acquire((uint64_t *)((uint8_t *)mem + shape->head_off));
    uint64_t tail = load_acquire((uint64_t *)((uint8_t *)mem + shape->tail_off));
    if (head % RTUDP_RECORD_ALIGN || tail % RTUDP_RECORD_ALIGN || tail - head > cap)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring positions head %llu tail %llu do not fit capacity %llu",
                    (unsigned long long)head, (unsigned long long)tail, (unsigned long long)cap);
    *data = (uint8_t *)mem + shape->desc_size;
    *capacity = cap;
    *mask = cap - 1;
    *max_payload = max_payload_for(cap, shape->hdr);
    *tail_seen = tail;
    return RTUDP_OK;
}

/* ------------------------------------------------------------------ MPSC: setup */

uint64_t rtudp_mpsc_footprint(uint64_t capacity)
{
    return sizeof(struct rtudp_mpsc_ring) + capacity;
}

uint64_t rtudp_bcast_footprint(uint64_t capacity)
{
    return sizeof(struct rtudp_bcast_ring) + capacity;
}


int rtudp_mpsc_init(struct rtudp_mpsc_ring *r, uint64_t capacity)
{
    return init_ring(r, capacity, &MPSC_SHAPE, false);
}

int rtudp_mpsc_init_zeroed(struct rtudp_mpsc_ring *r, uint64_t capacity)
{
    return init_ring(r, capacity, &MPSC_SHAPE, true);
}

int rtudp_mpsc_attach(struct rtudp_mpsc *m, void *mem, uint64_t avail, struct rtudp_check *why)
{
    memset(m, 0, sizeof *m);
    int rc = attach_ring(mem, avail, &MPSC_SHAPE, &m->data, &m->capacity, &m->mask, &m->max_payload,
                         &m->tail_seen, why);
    if (rc == RTUDP_OK)
        m->ring = mem;
    return rc;
}

/* ------------------------------------------------------------------ MPSC: produce */

/*
 * Where producers may reuse space up to (+ capacity): head rounded down to a cache
 * line.  The consumer zeroes consumed space only in whole lines below head, so it
 * never writes into the line a producer is filling right now (records are not line
 * sized; zeroing each record as it is consumed made the two CPUs trade that line
 * back and forth at every message).  Up to a line less than capacity is usable.
 */
static inline uint64_t reusable_from(uint64_t head)
{
    return head & ~(uint64_t)(RTUDP_CACHE_LINE - 1);
}

/* Bytes a record of `need` aligned bytes takes at `tail`, with the pad to the end. */
static inline uint64_t span_at(const struct rtudp_mpsc *m, uint64_t tail, uint64_t need)
{
    uint64_t to_end = m->capacity - (tail & m->mask);
    return need <= to_end ? need : to_end + need;
}

uint64_t rtudp_mpsc_record_bytes(uint64_t len)
{
    return align8(TX_HDR + len);
}

/*
 * Claim by a conditional atomic add on the tail (compare-and-swap): a plain
 * fetch_add could not give space back when the ring turns out to be full, so
 * try_put could not answer False without waiting for the consumer.
 */
static int mpsc_claim(struct rtudp_mpsc *m, uint32_t len, uint64_t *pos_out)
{
    if (len > m->max_payload)
        return RTUDP_ETOOBIG;
    struct rtudp_mpsc_ring *r = m->ring;
    const uint64_t cap = m->capacity;
    const uint64_t need = rtudp_mpsc_record_bytes(len);
    /* acquire/release: the producer that refreshed the cache had seen the consumer's
     * zeroing of that space (it happens before head moves); we write there next */
    uint64_t head = load_acquire(&r->head_cache); /* already rounded: reusable_from */
    uint64_t tail = load_relaxed(&r->tail);
    uint64_t span;
    for (;;) {
        span = span_at(m, tail, need);
        if (tail % RTUDP_RECORD_ALIGN)
            return RTUDP_ECORRUPT;
        if (tail - head > cap || span > cap - (tail - head)) {
            head = reusable_from(load_acquire(&r->head));
            if (tail - head > cap) {
                /* either our tail is stale (we were preempted while others claimed and
                 * the consumer freed more than a lap) or head is garbage */
                uint64_t fresh = load_relaxed(&r->tail);
                if (fresh != tail) {
                    tail = fresh;
                    continue;
                }
                return RTUDP_ECORRUPT;
            }
            if (span > cap - (tail - head))
                return RTUDP_EFULL;
            store_release(&r->head_cache, head);
        }
        if (atomic_compare_exchange_weak_explicit(SHARED(&r->tail), &tail, tail + span,
                                                  memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    if (span != need) { /* the record does not fit before the end: pad to it */
        uint64_t to_end = span - need;
        struct rtudp_tx_record *pad = (void *)(m->data + (tail & m->mask));
        pad->type = RTUDP_REC_PAD;
        pad->flags = 0;
        store_release(&pad->length, (int32_t)to_end);
        tail += to_end;
    }
    struct rtudp_tx_record *rec = (void *)(m->data + (tail & m->mask));
    store_relaxed(&rec->length, -(int32_t)(TX_HDR + len));
    /* the negative length must be visible before any payload byte (unblock scans
     * for the first non-zero word) */
    atomic_thread_fence(memory_order_release);
    *pos_out = tail;
    return RTUDP_OK;
}

int rtudp_mpsc_claim(struct rtudp_mpsc *m, uint32_t len, uint64_t *pos)
{
    return mpsc_claim(m, len, pos);
}

void *rtudp_mpsc_claim_payload(struct rtudp_mpsc *m, uint64_t pos)
{
    return m->data + (pos & m->mask) + TX_HDR;
}

/* Publish a claimed record without ringing the doorbell (batches ring once). */
static int commit_quiet(struct rtudp_mpsc *m, uint64_t pos, int64_t send_at_ns, uint16_t flags)
{
    struct rtudp_tx_record *rec = (void *)(m->data + (pos & m->mask));
    int32_t open = load_relaxed(&rec->length);
    if (open >= 0 || (uint64_t)-(int64_t)open < TX_HDR || (uint64_t)-(int64_t)open > TX_HDR + m->max_payload)
        return RTUDP_ETIMEDOUT; /* unblocked (or scribbled) while we were writing */
    rec->type = RTUDP_REC_DATA;
    rec->flags = flags;
    rec->send_at_ns = send_at_ns;
    /* a CAS, not a store: if the consumer turned the claim into padding meanwhile,
     * the record is gone and the producer must hear of it */
    if (!atomic_compare_exchange_strong_explicit(SHARED(&rec->length), &open, -open,
                                                 memory_order_release, memory_order_relaxed))
        return RTUDP_ETIMEDOUT;
    return RTUDP_OK;
}

int rtudp_mpsc_commit(struct rtudp_mpsc *m, uint64_t pos, int64_t send_at_ns, uint16_t flags)
{
    int rc = commit_quiet(m, pos, send_at_ns, flags);
    if (rc == RTUDP_OK)
        notify_committed(m, send_at_ns);
    return rc;
}

int rtudp_mpsc_try_put_room_quiet(struct rtudp_mpsc *m, uint32_t room, const void *data,
                                  uint32_t len, int64_t send_at_ns, uint16_t flags)
{
    if (room > m->max_payload || len > m->max_payload - room)
        return RTUDP_ETOOBIG;
    uint64_t pos;
    int rc = mpsc_claim(m, room + len, &pos);
    if (rc == RTUDP_EFULL)
        fetch_add(&m->ring->full_events, 1);
    if (rc != RTUDP_OK)
        return rc;
    uint8_t *payload = rtudp_mpsc_claim_payload(m, pos);
    if (room)
        memset(payload, 0, room);
    if (len)
        memcpy(payload + room, data, len);
    return commit_quiet(m, pos, send_at_ns, flags);
}

int rtudp_mpsc_try_put_quiet(struct rtudp_mpsc *m, const void *data, uint32_t len,
                             int64_t send_at_ns, uint16_t flags)
{
    return rtudp_mpsc_try_put_room_quiet(m, 0, data, len, send_at_ns, flags);
}

/*
 * The consumer zeroes what it frees, so the lines a producer writes next are in the
 * consumer's cache, and each record's publish (a locked CAS) waits until its own lines
 * have come over.  Asked for together before the first record is written, a batch's
 * lines come over at once.
 */
void rtudp_mpsc_prefetch_put(const struct rtudp_mpsc *m, uint64_t bytes)
{
    uint64_t tail = load_relaxed(&m->ring->tail);
    if (bytes > m->capacity)
        bytes = m->capacity;
    for (uint64_t off = 0; off < bytes; off += RTUDP_CACHE_LINE)
        __builtin_prefetch(m->data + ((tail + off) & m->mask), 1, 3);
}

void rtudp_mpsc_wake(struct rtudp_mpsc *m)
{
    notify_committed(m, 0);
}

void rtudp_mpsc_wake_at(struct rtudp_mpsc *m, int64_t send_at_ns)
{
    notify_committed(m, send_at_ns);
}

void rtudp_mpsc_set_wake(struct rtudp_mpsc *m, struct rtudp_doorbell *bell)
{
    m->wake = bell;
}

void rtudp_mpsc_set_not_before(struct rtudp_mpsc *m, const int64_t *not_before)
{
    m->not_before = not_before;
}

void rtudp_mpsc_set_ready(struct rtudp_mpsc *m, struct rtudp_ready_set *set, uint32_t bit)
{
    m->ready = set;
    m->ready_bit = bit;
}

void rtudp_mpsc_set_route(struct rtudp_mpsc *m, const struct rtudp_mpsc_route *route,
                          uint32_t bit)
{
    m->route = *route;
    m->ready_bit = bit;
}

int rtudp_mpsc_try_put(struct rtudp_mpsc *m, const void *data, uint32_t len,
                       int64_t send_at_ns, uint16_t flags)
{
    int rc = rtudp_mpsc_try_put_quiet(m, data, len, send_at_ns, flags);
    if (rc == RTUDP_OK)
        notify_committed(m, send_at_ns);
    return rc;
}

struct space_ctx {
    const struct rtudp_mpsc *m;
    uint64_t need;
};

static bool mpsc_has_space(const void *ctx)
{
    const struct space_ctx *c = ctx;
    uint64_t tail = load_relaxed(&c->m->ring->tail);
    uint64_t head = reusable_from(load_acquire(&c->m->ring->head));
    uint64_t used = tail - head;
    return used > c->m->capacity /* corrupt: let the claim report it */
        || span_at(c->m, tail, c->need) <= c->m->capacity - used;
}

/* Claim, copy, commit; while full, wait for room until the deadline.  `ring_now`
 * false leaves the doorbell to the caller, except before sleeping: the consumer
 * must hear of what is already queued, or it could sleep while we wait for it. */
static int put_one(struct rtudp_mpsc *m, const void *data, uint32_t len, int64_t send_at_ns,
                   uint16_t flags, int64_t deadline_ns, int64_t spin_ns, bool ring_now)
{
    bool counted = false;
    for (;;) {
        uint64_t pos;
        int rc = mpsc_claim(m, len, &pos);
        if (rc == RTUDP_OK) {
            if (len)
                memcpy(rtudp_mpsc_claim_payload(m, pos), data, len);
            rc = commit_quiet(m, pos, send_at_ns, flags);
            if (rc == RTUDP_OK && ring_now)
                notify_committed(m, send_at_ns);
            return rc;
        }
        if (rc != RTUDP_EFULL)
            return rc;
        if (!counted) {
            fetch_add(&m->ring->full_events, 1);
            counted = true;
        }
        /* the deadline is checked here too, not only in bell_wait: a space check
         * that says "room" while the claim says "full" must not spin forever */
        if (rtudp_now_ns() >= deadline_ns)
            return RTUDP_ETIMEDOUT;
        notify_consumer(m, 0);
        struct space_ctx ctx = {m, rtudp_mpsc_record_bytes(len)};
        rc = rtudp_bell_wait(&m->ring->space_bell, mpsc_has_space, &ctx, deadline_ns, spin_ns);
        if (rc != RTUDP_OK)
            return rc;
    }
}

int rtudp_mpsc_put(struct rtudp_mpsc *m, const void *data, uint32_t len, int64_t send_at_ns,
                   uint16_t flags, int64_t deadline_ns, int64_t spin_ns)
{
    return put_one(m, data, len, send_at_ns, flags, deadline_ns, spin_ns, true);
}

int64_t rtudp_mpsc_put_many(struct rtudp_mpsc *m, const uint8_t *data, const uint64_t *offs,
                            const uint32_t *lens, uint64_t n, int64_t send_at_ns, uint16_t flags,
                            int64_t deadline_ns, int64_t spin_ns)
{
    uint64_t packed = 0; /* where payload i starts when offs is NULL */
    uint64_t i = 0;
    int rc = RTUDP_OK;
    for (; i < n; i++) {
        const uint8_t *p = data + (offs ? offs[i] : packed);
        rc = put_one(m, p, lens[i], send_at_ns, flags, deadline_ns, spin_ns, false);
        if (rc != RTUDP_OK)
            break;
        packed += lens[i];
    }
    if (i)
        notify_committed(m, send_at_ns);
    return i ? (int64_t)i : rc;
}

/* ------------------------------------------------------------------ MPSC: consume */

static int corrupt(struct rtudp_mpsc *m)
{
    bump(&m->ring->corrupt_records, 1);
    return RTUDP_ECORRUPT;
}

/*
 * A committed record is told by its own header (length > 0): consumed space is
 * zeroed, so the consumer need not read the producers' tail, whose cache line they
 * rewrite on every claim.  The tail is read only to bounds-check a header, and only
 * when the last value seen is not enough.
 */
static bool within_tail(struct rtudp_mpsc *m, uint64_t pos, uint64_t span)
{
    if (m->tail_seen - pos <= m->capacity && span <= m->tail_seen - pos)
        return true;
    m->tail_seen = load_acquire(&m->ring->tail);
    return m->tail_seen - pos <= m->capacity && span <= m->tail_seen - pos;
}

/*
 * Where a consumer cursor stands against head (our own line): RTUDP_EMPTY a lap past
 * the space producers may reuse, where the header would be one of this lap's not
 * yet zeroed (producers claim nothing there before the next release).
 */
static int lap_check(const struct rtudp_mpsc *m, uint64_t head, uint64_t pos)
{
    uint64_t reusable = reusable_from(head);
    if (pos % RTUDP_RECORD_ALIGN || pos - head > m->capacity || pos - reusable > m->capacity)
        return RTUDP_ECORRUPT;
    return pos - reusable == m->capacity ? RTUDP_EMPTY : RTUDP_OK;
}

int rtudp_mpsc_next(struct rtudp_mpsc *m, uint64_t *cursor, struct rtudp_tx_record **out,
                    uint32_t *len_out)
{
    uint64_t pos = *cursor;
    uint64_t head = load_relaxed(&m->ring->head);
    for (;;) {
        int at = lap_check(m, head, pos);
        if (at == RTUDP_ECORRUPT)
            return corrupt(m);
        if (at != RTUDP_OK)
            return at;
        uint64_t idx = pos & m->mask;
        struct rtudp_tx_record *rec = (void *)(m->data + idx);
        int32_t len = load_acquire(&rec->length);
        if (len <= 0)
            return RTUDP_EMPTY; /* nothing there yet, or claimed and not committed */
        if (len & RTUDP_TX_LEN_UNBLOCKED) { /* a dead claim: skip it, header unread */
            uint64_t pad = (uint64_t)(len & ~RTUDP_TX_LEN_UNBLOCKED);
            if (pad < PAD_MIN || pad % RTUDP_RECORD_ALIGN || pad > m->capacity - idx ||
                !within_tail(m, pos, pad))
                return corrupt(m);
            pos += pad;
            *cursor = pos;
            continue;
        }
        uint64_t span = align8((uint64_t)len);
        if (span > m->capacity - idx || !within_tail(m, pos, span))
            return corrupt(m);
        uint16_t type = load_relaxed(&rec->type);
        if (type == RTUDP_REC_PAD || type == RTUDP_REC_SENT) {
            /* skipped: padding (whole words), or data a previous consumer already sent */
            bool bad = type == RTUDP_REC_PAD
                           ? (uint64_t)len < PAD_MIN || (uint64_t)len % RTUDP_RECORD_ALIGN
                           : (uint64_t)len < TX_HDR;
            if (bad)
                return corrupt(m);
            pos += span;
            *cursor = pos;
            continue;
        }
        if (type != RTUDP_REC_DATA || (uint64_t)len < TX_HDR ||
            (uint64_t)len - TX_HDR > m->max_payload)
            return corrupt(m);
        *out = rec;
        *len_out = (uint32_t)((uint64_t)len - TX_HDR);
        *cursor = pos + span;
        return RTUDP_OK;
    }
}

int rtudp_mpsc_release(struct rtudp_mpsc *m, uint64_t upto)
{
    struct rtudp_mpsc_ring *r = m->ring;
    uint64_t head = load_relaxed(&r->head);
    uint64_t n = upto - head;
    if (n > m->capacity || n % RTUDP_RECORD_ALIGN)
        return RTUDP_EINVAL;
    if (n == 0)
        return RTUDP_OK;
    /* zero the lines that are now wholly consumed (see reusable_from): a claim's
     * header must start out as 0 ("not written") */
    uint64_t from = reusable_from(head), to = reusable_from(upto);
    if (to != from) {
        uint64_t idx = from & m->mask, len = to - from;
        uint64_t first = len < m->capacity - idx ? len : m->capacity - idx;
        memset(m->data + idx, 0, first);
        if (len > first)
            memset(m->data, 0, len - first);
    }
    store_release(&r->head, upto);
    rtudp_bell_ring(&r->space_bell);
    return RTUDP_OK;
}

void rtudp_mpsc_mark_sent(struct rtudp_mpsc *m, uint64_t pos)
{
    struct rtudp_tx_record *rec = (void *)(m->data + (pos & m->mask));
    store_release(&rec->type, (uint16_t)RTUDP_REC_SENT);
}

void rtudp_mpsc_account(struct rtudp_mpsc *m, uint64_t records, uint64_t bytes)
{
    bump(&m->ring->records_consumed, records);
    bump(&m->ring->bytes_consumed, bytes);
}

int rtudp_mpsc_get(struct rtudp_mpsc *m, uint8_t *buf, uint32_t buflen, uint32_t *len,
                   int64_t *send_at_ns, uint16_t *flags)
{
    struct rtudp_mpsc_ring *r = m->ring;
    uint64_t cursor = load_relaxed(&r->head);
    struct rtudp_tx_record *rec;
    uint32_t plen;
    int rc = rtudp_mpsc_next(m, &cursor, &rec, &plen);
    if (rc == RTUDP_OK && plen > buflen) {
        cursor -= rtudp_mpsc_record_bytes(plen); /* keep the record, free the padding before it */
        *len = plen;
        rc = RTUDP_EBUFSMALL;
    } else if (rc == RTUDP_OK) {
        memcpy(buf, rec + 1, plen);
        *len = plen;
        if (send_at_ns)
            *send_at_ns = rec->send_at_ns;
        if (flags)
            *flags = rec->flags;
        rtudp_mpsc_account(m, 1, plen);
    }
    rtudp_mpsc_release(m, cursor);
    return rc;
}

int64_t rtudp_mpsc_drain(struct rtudp_mpsc *m, uint64_t max_n, rtudp_mpsc_sink sink, void *ctx)
{
    struct rtudp_mpsc_ring *r = m->ring;
    uint64_t cursor = load_relaxed(&r->head), n = 0, bytes = 0;
    int rc = RTUDP_EMPTY;
    while (n < max_n) {
        uint64_t before = cursor;
        struct rtudp_tx_record *rec;
        uint32_t len;
        rc = rtudp_mpsc_next(m, &cursor, &rec, &len);
        if (rc != RTUDP_OK)
            break;
        if (!sink(ctx, rec, (const uint8_t *)(rec + 1), len)) {
            cursor = before; /* it (and any padding before it) stays for next time */
            rc = RTUDP_EBUFSMALL;
            break;
        }
        bytes += len;
        n++;
    }
    if (n)
        rtudp_mpsc_account(m, n, bytes);
    rtudp_mpsc_release(m, cursor);
    return n ? (int64_t)n : rc;
}

struct copy_sink {
    uint8_t *buf;
    uint64_t room;
    uint32_t *lens;
    int64_t *send_at;
    uint64_t n;
};

static int copy_record(void *ctx, const struct rtudp_tx_record *rec, const uint8_t *payload,
                       uint32_t len)
{
    struct copy_sink *c = ctx;
    if (len > c->room)
        return 0;
    memcpy(c->buf, payload, len);
    c->buf += len;
    c->room -= len;
    c->lens[c->n] = len;
    if (c->send_at)
        c->send_at[c->n] = rec->send_at_ns;
    c->n++;
    return 1;
}

int64_t rtudp_mpsc_get_many(struct rtudp_mpsc *m, uint8_t *buf, uint64_t buflen, uint32_t *lens,
                            int64_t *send_at, uint64_t max_n)
{
    struct copy_sink c = {buf, buflen, lens, send_at, 0};
    return rtudp_mpsc_drain(m, max_n, copy_record, &c);
}

uint64_t rtudp_mpsc_pending_bytes(const struct rtudp_mpsc *m)
{
    uint64_t used = load_acquire(&m->ring->tail) - load_acquire(&m->ring->head);
    return used > m->capacity ? m->capacity : used;
}

bool rtudp_mpsc_readable_at(const struct rtudp_mpsc *m, uint64_t cursor)
{
    uint64_t head = load_relaxed(&m->ring->head);
    int at = lap_check(m, head, cursor);
    if (at != RTUDP_OK)
        return at == RTUDP_ECORRUPT; /* corrupt: wake the consumer so next() reports it */
    /* the header at the cursor, not the tail: see rtudp_mpsc_next */
    const struct rtudp_tx_record *rec = (const void *)(m->data + (cursor & m->mask));
    return load_acquire(&rec->length) > 0;
}

struct readable_ctx {
    const struct rtudp_mpsc *m;
    uint64_t cursor;
};

static bool mpsc_readable(const void *ctx)
{
    const struct readable_ctx *c = ctx;
    return rtudp_mpsc_readable_at(c->m, c->cursor);
}

int rtudp_mpsc_wait_at(struct rtudp_mpsc *m, uint64_t cursor, int64_t deadline_ns, int64_t spin_ns)
{
    struct readable_ctx ctx = {m, cursor};
    return rtudp_bell_wait(&m->ring->data_bell, mpsc_readable, &ctx, deadline_ns, spin_ns);
}

int rtudp_mpsc_wait(struct rtudp_mpsc *m, int64_t deadline_ns, int64_t spin_ns)
{
    return rtudp_mpsc_wait_at(m, load_relaxed(&m->ring->head), deadline_ns, spin_ns);
}

/*
 * The extent of a claim at idx whose producer stopped before writing its header:
 * the run of zero words up to the next header (payload is written only after the
 * header), within `limit` and at most one record (a pad to the end is a record of
 * its own).  The run can also take in the claim that follows, if that producer is
 * itself between its tail CAS and its header store at this moment: hence
 * rtudp_mpsc_unblock acts only on an extent seen the same at both ends of its wait.
 */
static uint64_t unwritten_span(const struct rtudp_mpsc *m, uint64_t idx, uint64_t limit)
{
    if (limit > rtudp_mpsc_record_bytes(m->max_payload))
        limit = rtudp_mpsc_record_bytes(m->max_payload);
    uint64_t span = PAD_MIN;
    while (span < limit) {
        const int32_t *word = (const int32_t *)(m->data + idx + span);
        if (load_relaxed(word) != 0)
            break;
        span += PAD_MIN;
    }
    return span;
}

int rtudp_mpsc_unblock(struct rtudp_mpsc *m, uint64_t pos, int64_t timeout_ns)
{
    struct rtudp_mpsc_ring *r = m->ring;
    uint64_t tail = load_acquire(&r->tail);
    uint64_t idx = pos & m->mask;
    struct rtudp_tx_record *rec = (void *)(m->data + idx);
    bool open_claim_possible = pos % RTUDP_RECORD_ALIGN == 0 && pos != tail &&
                               tail - pos <= m->capacity;
    int32_t len = open_claim_possible ? load_acquire(&rec->length) : 1;
    if (len > 0) { /* nothing blocks pos */
        store_relaxed(&r->stuck_since_ns, (int64_t)0);
        return 0;
    }
    /* how far the dead claim reaches */
    uint64_t limit = m->capacity - idx;
    if (tail - pos < limit)
        limit = tail - pos;
    uint64_t span;
    if (len < 0) {
        span = align8((uint64_t)-(int64_t)len);
        if (span > limit)
            return corrupt(m);
    } else {
        span = unwritten_span(m, idx, limit);
    }
    int64_t now = rtudp_now_ns();
    int64_t since = load_relaxed(&r->stuck_since_ns);
    /* the clock (re)starts when pos is first seen blocked, and when a header-less
     * claim's extent changed meanwhile: a later producer wrote its header inside the
     * run seen before, or was inside its own claim window at one of the two looks.
     * Only an extent that stayed the same for the whole timeout is trusted; the stuck
     * clock's place is shared, the extent seen is this consumer's (a new consumer
     * starts the clock again) */
    if (since <= 0 || since > now || load_relaxed(&r->stuck_pos) != pos ||
        (len == 0 && span != m->stuck_span)) {
        store_relaxed(&r->stuck_pos, pos);
        store_relaxed(&r->stuck_since_ns, now);
        m->stuck_span = len == 0 ? span : 0;
        return 0;
    }
    if (now - since < timeout_ns)
        return 0;
    /* only the length word: the producer, if merely stalled, writes the rest of the
     * header before its own compare-and-swap on the length, which then fails */
    if (!atomic_compare_exchange_strong_explicit(SHARED(&rec->length), &len,
                                                 (int32_t)(span | RTUDP_TX_LEN_UNBLOCKED),
                                                 memory_order_release, memory_order_relaxed))
        return 0; /* the producer committed after all */
    bump(&r->unblocked_claims, 1);
    store_relaxed(&r->stuck_since_ns, (int64_t)0);
    m->stuck_span = 0;
    rtudp_bell_ring(&r->data_bell);
    return 1;
}

/* ------------------------------------------------------------------ broadcast */

int rtudp_bcast_init(struct rtudp_bcast_ring *r, uint64_t capacity)
{
    return init_ring(r, capacity, &BCAST_SHAPE, false);
}

int rtudp_bcast_init_zeroed(struct rtudp_bcast_ring *r, uint64_t capacity)
{
    return init_ring(r, capacity, &BCAST_SHAPE, true);
}

int rtudp_bcast_attach(struct rtudp_bcast *b, void *mem, uint64_t avail, struct rtudp_check *why)
{
    memset(b, 0, sizeof *b);
    uint64_t tail;
    int rc = attach_ring(mem, avail, &BCAST_SHAPE, &b->data, &b->capacity, &b->mask, &b->max_payload,
                         &tail, why);
    if (rc == RTUDP_OK)
        b->ring = mem;
    return rc;
}

/* Move head past every record the write ending at new_end overwrites. */
static uint64_t bcast_advance_head(struct rtudp_bcast *b, uint64_t head, uint64_t tail,
                                   uint64_t new_end)
{
    if (new_end <= b->capacity)
        return head;
    uint64_t limit = new_end - b->capacity;
    if (tail - head > b->capacity) /* damaged: everything old is gone */
        return tail;
    while (head < limit && head < tail) {
        uint64_t idx = head & b->mask;
        const struct rtudp_bcast_record *rec = (const void *)(b->data + idx);
        uint64_t span = align8((uint64_t)(uint32_t)rec->length);
        if (rec->length < (int32_t)PAD_MIN || span > b->capacity - idx || span > tail - head) {
            bump(&b->ring->corrupt_records, 1);
            return tail;
        }
        head += span;
    }
    return head;
}

/* one record whose payload is `a` (alen bytes) then `d` (dlen bytes) */
static void bcast_put2(struct rtudp_bcast *b, uint64_t *tail, uint64_t *seq, const void *a,
                       uint32_t alen, const void *d, uint32_t dlen, uint16_t flags,
                       int64_t time_ns)
{
    struct rtudp_bcast_ring *r = b->ring;
    uint32_t len = alen + dlen;
    uint64_t need = align8(BC_HDR + len);
    uint64_t idx = *tail & b->mask;
    uint64_t to_end = b->capacity - idx;
    uint64_t span = need <= to_end ? need : to_end + need;
    uint64_t new_end = *tail + span;
    uint64_t head = bcast_advance_head(b, load_relaxed(&r->head), *tail, new_end);
    store_relaxed(&r->head, head);
    store_release(&r->tail_intent, new_end);
    /* readers must see tail_intent before any byte we overwrite */
    atomic_thread_fence(memory_order_release);
    /* relaxed atomic stores: a lapped reader may be copying what we overwrite
     * (see load_bytes_relaxed in shm_access.h) */
    if (need > to_end) {
        struct rtudp_bcast_record *pad = (void *)(b->data + idx);
        store_relaxed(&pad->length, (int32_t)to_end);
        store_relaxed(&pad->type, (uint16_t)RTUDP_REC_PAD);
        store_relaxed(&pad->flags, (uint16_t)0);
        idx = 0;
    }
    struct rtudp_bcast_record *rec = (void *)(b->data + idx);
    store_relaxed(&rec->length, (int32_t)(BC_HDR + len));
    store_relaxed(&rec->type, (uint16_t)RTUDP_REC_DATA);
    store_relaxed(&rec->flags, flags);
    store_relaxed(&rec->seq, *seq);
    store_relaxed(&rec->time_ns, time_ns);
    store_bytes_relaxed(rec + 1, a, alen);
    if (dlen)
        store_bytes_relaxed((uint8_t *)(rec + 1) + alen, d, dlen);
    *seq += 1;
    *tail = new_end;
}

static void bcast_put(struct rtudp_bcast *b, uint64_t *tail, uint64_t *seq, const void *data,
                      uint32_t len, uint16_t flags, int64_t time_ns)
{
    bcast_put2(b, tail, seq, data, len, NULL, 0, flags, time_ns);
}

/* The writer's tail, trusted only if it is sane (a writer restarts from it). */
static uint64_t bcast_tail(struct rtudp_bcast *b)
{
    uint64_t tail = load_relaxed(&b->ring->tail);
    return tail % RTUDP_RECORD_ALIGN ? align8(tail) : tail;
}

static void bcast_publish(struct rtudp_bcast *b, uint64_t tail, uint64_t seq, uint64_t n,
                          uint64_t bytes)
{
    struct rtudp_bcast_ring *r = b->ring;
    store_release(&r->next_seq, seq);
    store_release(&r->tail, tail);
    bump(&r->records_written, n);
    bump(&r->bytes_written, bytes);
    rtudp_bell_ring(&r->bell);
}

int rtudp_bcast_write(struct rtudp_bcast *b, const void *data, uint32_t len, uint16_t flags,
                      int64_t time_ns)
{
    if (len > b->max_payload)
        return RTUDP_ETOOBIG;
    uint64_t tail = bcast_tail(b);
    uint64_t seq = load_relaxed(&b->ring->next_seq);
    bcast_put(b, &tail, &seq, data, len, flags, time_ns);
    bcast_publish(b, tail, seq, 1, len);
    return RTUDP_OK;
}

int64_t rtudp_bcast_write_many(struct rtudp_bcast *b, const uint8_t *data, const uint64_t *offs,
                               const uint32_t *lens, uint64_t n, uint16_t flags, int64_t time_ns)
{
    for (uint64_t i = 0; i < n; i++)
        if (lens[i] > b->max_payload)
            return RTUDP_ETOOBIG;
    uint64_t tail = bcast_tail(b);
    uint64_t seq = load_relaxed(&b->ring->next_seq);
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        bcast_put(b, &tail, &seq, data + (offs ? offs[i] : bytes), lens[i], flags, time_ns);
        bytes += lens[i];
        /* publish as we go so readers are not starved by a huge batch, and so a
         * batch larger than the ring stays readable record by record */
        store_release(&b->ring->next_seq, seq);
        store_release(&b->ring->tail, tail);
    }
    bcast_publish(b, tail, seq, n, bytes);
    return (int64_t)n;
}

/* ---- staged writes (ring.h: struct rtudp_bcast_stage) ---- */

void rtudp_bcast_stage_init(struct rtudp_bcast *b, struct rtudp_bcast_stage *s)
{
    s->tail = s->published = bcast_tail(b);
    s->seq = load_relaxed(&b->ring->next_seq);
}

int rtudp_bcast_stage(struct rtudp_bcast *b, struct rtudp_bcast_stage *s, const void *a,
                      uint32_t alen, const void *d, uint32_t dlen, uint16_t flags,
                      int64_t time_ns)
{
    if ((uint64_t)alen + dlen > b->max_payload)
        return RTUDP_ETOOBIG;
    /* the most a record can span (padding to the end, then itself): staged bytes stay
     * within half the ring, so no write overtakes a record not yet published */
    uint64_t worst = 2 * align8(BC_HDR + (uint64_t)alen + dlen);
    if (s->tail - s->published + worst > b->capacity / 2)
        return RTUDP_EFULL;
    bcast_put2(b, &s->tail, &s->seq, a, alen, d, dlen, flags, time_ns);
    return RTUDP_OK;
}

void rtudp_bcast_stage_publish(struct rtudp_bcast *b, struct rtudp_bcast_stage *s, uint64_t upto,
                               uint64_t seq, int64_t time_ns, uint16_t flags)
{
    if (upto - s->published - 1 >= s->tail - s->published)
        return; /* nothing staged up to there (or already published) */
    uint64_t n = 0, bytes = 0;
    for (uint64_t pos = s->published; pos < upto;) {
        /* our own records, unpublished: still checked, a client may have scribbled */
        uint64_t idx = pos & b->mask;
        struct rtudp_bcast_record *rec = (void *)(b->data + idx);
        int32_t length = load_relaxed(&rec->length);
        uint64_t span = align8((uint64_t)(uint32_t)length);
        if (length < (int32_t)PAD_MIN || span > b->capacity - idx || span > upto - pos)
            break;
        if (load_relaxed(&rec->type) == RTUDP_REC_DATA && span >= BC_HDR) {
            if (time_ns) {
                store_relaxed(&rec->time_ns, time_ns);
                store_relaxed(&rec->flags, flags);
            }
            n++;
            bytes += (uint64_t)length - BC_HDR;
        }
        pos += span;
    }
    s->published = upto;
    bcast_publish(b, upto, seq, n, bytes);
}

/* The header of the record at idx, read with relaxed atomic loads: the writer may
 * be overwriting it (see load_bytes_relaxed in shm_access.h).  A padding record may
 * be only 8 bytes long, at the very end: seq and time_ns are read only if they fit. */
static struct rtudp_bcast_record bcast_header(const struct rtudp_bcast *b, uint64_t idx)
{
    const struct rtudp_bcast_record *rec = (const void *)(b->data + idx);
    struct rtudp_bcast_record h = {.length = load_relaxed(&rec->length),
                                   .type = load_relaxed(&rec->type),
                                   .flags = load_relaxed(&rec->flags)};
    if (b->capacity - idx >= BC_HDR) {
        h.seq = load_relaxed(&rec->seq);
        h.time_ns = load_relaxed(&rec->time_ns);
    }
    return h;
}

/* seq of the first data record at or after pos (next_seq if there is none); the
 * caller checks afterwards that no write happened meanwhile */
static uint64_t bcast_seq_at(struct rtudp_bcast *b, uint64_t pos, uint64_t tail, uint64_t next_seq)
{
    for (int hops = 0; hops < 2 && pos != tail && tail - pos <= b->capacity; hops++) {
        uint64_t idx = pos & b->mask;
        struct rtudp_bcast_record h = bcast_header(b, idx);
        uint64_t span = align8((uint64_t)(uint32_t)h.length);
        if (h.length < (int32_t)PAD_MIN || span > b->capacity - idx)
            break;
        if (h.type != RTUDP_REC_PAD)
            return h.seq;
        pos += span;
    }
    return next_seq;
}

void rtudp_bcast_reader_init(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd, int from_oldest)
{
    struct rtudp_bcast_ring *r = b->ring;
    memset(rd, 0, sizeof *rd);
    /* read the positions and the seq at our start as one snapshot: only valid when
     * no write was in progress (tail_intent == tail before and after) */
    for (int tries = 0; tries < 10000; tries++) {
        uint64_t intent1 = load_acquire(&r->tail_intent);
        uint64_t tail = load_acquire(&r->tail);
        uint64_t seq = load_acquire(&r->next_seq);
        uint64_t head = load_acquire(&r->head);
        uint64_t start_seq = from_oldest ? bcast_seq_at(b, head, tail, seq) : seq;
        atomic_thread_fence(memory_order_acquire);
        uint64_t intent2 = load_acquire(&r->tail_intent);
        if (intent1 == intent2 && intent1 == tail) {
            rd->cursor = from_oldest ? head : tail;
            rd->expected_seq = start_seq;
            return;
        }
        cpu_relax();
    }
    /* the writer never paused (or died mid-record): start at the tail.  It publishes
     * next_seq before tail, so next_seq read after tail is >= the seq found there:
     * no loss is ever invented, at worst one lap's loss goes unreported. */
    rd->cursor = load_acquire(&r->tail);
    rd->expected_seq = load_acquire(&r->next_seq);
}

/* The writer's positions make sense: head <= tail <= tail_intent, within a lap.
 * Read against the writer's order (it moves head, then tail_intent, then tail): a
 * writer moving between our loads then only makes the later values larger.  Read the
 * other way round, one record written between the loads of tail_intent and tail made
 * a live ring look corrupt to a lapped reader.  A snapshot torn by more than a lap of
 * writing is taken again. */
static bool bcast_positions_sane(struct rtudp_bcast *b)
{
    for (int tries = 0; tries < 4; tries++) {
        uint64_t head = load_acquire(&b->ring->head);
        uint64_t tail = load_acquire(&b->ring->tail);
        uint64_t intent = load_acquire(&b->ring->tail_intent);
        if (head % RTUDP_RECORD_ALIGN || tail % RTUDP_RECORD_ALIGN)
            return false;
        if (intent - tail <= b->capacity && tail - head <= b->capacity)
            return true;
    }
    return false;
}

/* Resume at the oldest intact record; RTUDP_ECORRUPT if the writer's positions are
 * nonsense (else a reader could chase them forever). */
static int bcast_lapped(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd)
{
    if (!bcast_positions_sane(b))
        return RTUDP_ECORRUPT;
    rd->lapped++;
    fetch_add(&b->ring->lapped_events, 1);
    rd->cursor = load_acquire(&b->ring->head);
    return RTUDP_OK;
}

/* true when the record at cursor may have been overwritten */
static inline bool bcast_overrun(struct rtudp_bcast *b, uint64_t cursor)
{
    /* what we read of the record must be ordered before this check */
    atomic_thread_fence(memory_order_acquire);
    return load_acquire(&b->ring->tail_intent) - cursor > b->capacity;
}

int rtudp_bcast_read(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd, uint8_t *buf,
                     uint32_t buflen, uint32_t *len, uint64_t *seq, int64_t *time_ns,
                     uint16_t *flags, uint64_t *lost)
{
    struct rtudp_bcast_ring *r = b->ring;
    for (;;) {
        uint64_t tail = load_acquire(&r->tail);
        uint64_t cursor = rd->cursor;
        if (cursor == tail)
            return RTUDP_EMPTY;
        if (tail - cursor > b->capacity || bcast_overrun(b, cursor)) {
            if (bcast_lapped(b, rd) != RTUDP_OK)
                return RTUDP_ECORRUPT;
            continue;
        }
        uint64_t idx = cursor & b->mask;
        struct rtudp_bcast_record h = bcast_header(b, idx);
        uint64_t span = align8((uint64_t)(uint32_t)h.length);
        bool sane = h.length >= (int32_t)PAD_MIN && span <= b->capacity - idx && span <= tail - cursor;
        if (sane && h.type == RTUDP_REC_PAD) {
            if (bcast_overrun(b, cursor)) {
                if (bcast_lapped(b, rd) != RTUDP_OK)
                    return RTUDP_ECORRUPT;
                continue;
            }
            rd->cursor = cursor + span;
            continue;
        }
        uint64_t plen = (uint64_t)(uint32_t)h.length - BC_HDR;
        sane = sane && h.type == RTUDP_REC_DATA && (uint64_t)h.length >= BC_HDR &&
               plen <= b->max_payload;
        if (!sane) {
            if (bcast_overrun(b, cursor)) { /* torn by the writer, not damaged */
                if (bcast_lapped(b, rd) != RTUDP_OK)
                    return RTUDP_ECORRUPT;
                continue;
            }
            return RTUDP_ECORRUPT;
        }
        if (plen > buflen) {
            if (bcast_overrun(b, cursor)) {
                if (bcast_lapped(b, rd) != RTUDP_OK)
                    return RTUDP_ECORRUPT;
                continue;
            }
            *len = (uint32_t)plen;
            return RTUDP_EBUFSMALL;
        }
        load_bytes_relaxed(buf, b->data + idx + BC_HDR, plen);
        if (bcast_overrun(b, cursor)) { /* overwritten while we copied */
            if (bcast_lapped(b, rd) != RTUDP_OK)
                return RTUDP_ECORRUPT;
            continue;
        }
        uint64_t gap = 0;
        if (h.seq > rd->expected_seq)
            gap = h.seq - rd->expected_seq;
        rd->expected_seq = h.seq + 1;
        rd->cursor = cursor + span;
        if (gap) {
            rd->lost += gap;
            fetch_add(&r->records_lost, gap);
        }
        *len = (uint32_t)plen;
        if (seq)
            *seq = h.seq;
        if (time_ns)
            *time_ns = h.time_ns;
        if (flags)
            *flags = h.flags;
        if (lost)
            *lost = gap;
        return RTUDP_OK;
    }
}

int64_t rtudp_bcast_read_many(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd, uint8_t *buf,
                              uint64_t buflen, uint32_t *lens, uint64_t *seqs, uint64_t max_n)
{
    uint64_t used = 0, n = 0;
    int rc = RTUDP_EMPTY;
    while (n < max_n) {
        uint64_t room = buflen - used;
        uint32_t len;
        uint64_t seq;
        rc = rtudp_bcast_read(b, rd, buf + used, room > UINT32_MAX ? UINT32_MAX : (uint32_t)room,
                              &len, &seq, NULL, NULL, NULL);
        if (rc != RTUDP_OK)
            break;
        lens[n] = len;
        if (seqs)
            seqs[n] = seq;
        used += len;
        n++;
    }
    return n ? (int64_t)n : rc;
}

struct bcast_ctx {
    const struct rtudp_bcast *b;
    const struct rtudp_bcast_reader *rd;
};

static bool bcast_readable(const void *ctx)
{
    const struct bcast_ctx *c = ctx;
    return load_acquire(&c->b->ring->tail) != c->rd->cursor;
}

int rtudp_bcast_wait(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd, int64_t deadline_ns,
                     int64_t spin_ns)
{
    struct bcast_ctx ctx = {b, rd};
    return rtudp_bell_wait(&b->ring->bell, bcast_readable, &ctx, deadline_ns, spin_ns);
}
