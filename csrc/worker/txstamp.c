/*
 * txstamp.c - TX departures waiting for kernel stamps (see txstamp.h).
 */
#include "txstamp.h"
#include "prefault.h"
#include "shm_access.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "hist.h"
#include "ring.h"


int rtudp_txstamps_init(struct rtudp_txstamps *s, uint32_t capacity, int64_t wait_ns)
{
    *s = (struct rtudp_txstamps){0};
    if (capacity == 0 || capacity > (1u << 24) || wait_ns < 0)
        return RTUDP_EINVAL;
    uint32_t c = 1;
    while (c < capacity)
        c <<= 1;
    s->e = calloc(c, sizeof *s->e);
    if (!s->e)
        return RTUDP_ESYS;
    rtudp_prefault(s->e, (size_t)c * sizeof *s->e); /* used round and round */
    s->capacity = c;
    s->wait_ns = wait_ns;
    return RTUDP_OK;
}

void rtudp_txstamps_free(struct rtudp_txstamps *s)
{
    free(s->e);
    *s = (struct rtudp_txstamps){0};
}

int rtudp_tx_late_count(struct rtudp_tx_late *l, int64_t late_ns, int arrived_late,
                        uint64_t packets)
{
    if (late_ns <= RTUDP_TX_LATE_NS)
        return 0;
    uint64_t *n = arrived_late ? &l->arrival : &l->sent;
    uint64_t *sum = arrived_late ? &l->arrival_ns : &l->sent_ns;
    uint64_t *max = arrived_late ? &l->arrival_max_ns : &l->sent_max_ns;
    bump(n, packets);
    bump(sum, (uint64_t)late_ns * packets);
    if ((uint64_t)late_ns > load_relaxed(max))
        store_relaxed(max, (uint64_t)late_ns);
    return !arrived_late;
}

void rtudp_txstamps_record(const struct rtudp_txstamps *s, struct rtudp_channel_block *b,
                           int64_t send_at_ns, int64_t departed_ns, int kernel,
                           uint64_t packets, int arrived_late)
{
    int64_t late_ns = departed_ns - send_at_ns;
    rtudp_histbatch_add(s->late_batch, &b->tx_lateness, late_ns, packets);
    int late_sent = rtudp_tx_late_count(&b->late, late_ns, arrived_late, packets);
    if (s->worker) {
        bump(&s->worker->tx_sent, packets);
        if (late_sent)
            bump(&s->worker->tx_late_sent, packets);
    }
    if (kernel)
        bump(&b->tx_kernel_stamped, packets);
}

static inline struct rtudp_txstamp_entry *at(struct rtudp_txstamps *s, uint32_t i)
{
    return &s->e[(s->first + i) & (s->capacity - 1)];
}

/* the front entry is resolved: its tap copies go out with its departure, in order */
static void pop_front(struct rtudp_txstamps *s)
{
    struct rtudp_txstamp_entry *e = at(s, 0);
    if (e->tap.end)
        rtudp_tap_tx_publish(s->tap, &e->tap, e->departed_ns ? e->departed_ns : e->sent_ns,
                             e->departed_ns != 0);
    s->first = (s->first + 1) & (s->capacity - 1);
    s->first_key++;
    s->len--;
}

/* drop the front entries whose stamp already came (recorded then) */
static void pop_done(struct rtudp_txstamps *s)
{
    while (s->len && at(s, 0)->departed_ns)
        pop_front(s);
}

/* resolve the front entry with whatever it has */
static void resolve_front(struct rtudp_txstamps *s, struct rtudp_channel_block *b)
{
    struct rtudp_txstamp_entry *e = at(s, 0);
    if (!e->departed_ns) {
        rtudp_txstamps_record(s, b, e->send_at_ns, e->sent_ns, 0, e->packets, e->arrived_late);
        s->timed_out++;
    }
    pop_front(s);
}

void rtudp_txstamps_flush(struct rtudp_txstamps *s, struct rtudp_channel_block *b)
{
    while (s->len)
        resolve_front(s, b);
}

void rtudp_txstamps_sent(struct rtudp_txstamps *s, struct rtudp_channel_block *b, uint32_t key,
                         int64_t send_at_ns, int64_t sent_ns, uint64_t packets, int arrived_late,
                         const struct rtudp_tap_mark *tap)
{
    if (!s->capacity) {
        rtudp_txstamps_record(s, b, send_at_ns, sent_ns, 0, packets, arrived_late);
        if (tap->end)
            rtudp_tap_tx_publish(s->tap, tap, sent_ns, 0);
        return;
    }
    if (s->len && key != s->first_key + s->len)
        rtudp_txstamps_flush(s, b); /* keys restarted: older stamps will not match */
    if (s->len == s->capacity)
        resolve_front(s, b);        /* full: the oldest stops waiting */
    if (!s->len)
        s->first_key = key;
    struct rtudp_txstamp_entry *e = at(s, s->len);
    e->send_at_ns = send_at_ns;
    e->sent_ns = sent_ns;
    e->departed_ns = 0;
    e->packets = packets;
    e->arrived_late = arrived_late;
    e->tap = *tap;
    s->len++;
}

void rtudp_txstamps_stamp(struct rtudp_txstamps *s, struct rtudp_channel_block *b, uint32_t key,
                          int64_t mono_ns)
{
    uint32_t i = key - s->first_key; /* unsigned: keys wrap at 2^32 like the kernel's */
    if (i >= s->len) {
        s->unmatched++;             /* already timed out, or not ours */
        return;
    }
    struct rtudp_txstamp_entry *e = at(s, i);
    if (e->departed_ns) {
        s->unmatched++;
        return;
    }
    /* a stamp of 0 would read as "waiting": 1 ns off is below the clock map's error */
    e->departed_ns = mono_ns ? mono_ns : 1;
    rtudp_txstamps_record(s, b, e->send_at_ns, mono_ns, 1, e->packets, e->arrived_late);
    s->stamped++;
    pop_done(s);
}

void rtudp_txstamps_expire(struct rtudp_txstamps *s, struct rtudp_channel_block *b, int64_t now)
{
    pop_done(s);
    while (s->len && now - at(s, 0)->sent_ns >= s->wait_ns) {
        resolve_front(s, b);
        pop_done(s);
    }
}

int64_t rtudp_txstamps_deadline(const struct rtudp_txstamps *s)
{
    if (!s->len)
        return INT64_MAX;
    const struct rtudp_txstamp_entry *e = &s->e[s->first];
    return e->sent_ns + s->wait_ns;
}
