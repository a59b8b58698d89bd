/*
 * netflux_image.c - the netflux seqlock images and the area check, shared by the
 * worker (proto/netflux.c) and Python (cffi, csrc/build_ffi.py): so a Python client
 * never writes half an image, and both sides agree on what a valid area is.
 *
 * The seqlock follows Boehm, "Can seqlocks get along with programming language
 * memory models?" (2012): the data are read and written with relaxed atomics (a
 * race on them is then defined and detected, never undefined behaviour), the
 * writer's release fence orders its odd seq before the data, the reader's acquire
 * fence orders the data before its second look at seq.
 */
#include <string.h>

#include "kinds.h"
#include "segment.h"
#include "netflux_shm.h"
#include "shm_access.h"

#define WRITE_SPIN_NS 1000LL /* between looks at a busy slot: another writer is copying */

/* copy len bytes in as whole words (the tail word zero-padded) */
static void store_words(struct rtudp_nf_image *img, const uint8_t *data, uint32_t len)
{
    uint32_t words = (len + 7) / 8;
    for (uint32_t i = 0; i < words; i++) {
        uint64_t w = 0;
        uint32_t n = len - i * 8 < 8 ? len - i * 8 : 8;
        memcpy(&w, data + (size_t)i * 8, n);
        store_relaxed(&img->data[i], w);
    }
    for (uint32_t i = words; i < RTUDP_NF_IMAGE_WORDS; i++)
        if (load_relaxed(&img->data[i]) != 0)
            store_relaxed(&img->data[i], 0); /* a shorter image leaves no stale tail */
}

/* take the slot: CAS seq from even to odd.  A slot odd for longer than takeover_ns
 * belongs to a writer that died mid-write: take it over (its seq stays odd) */
static int lock_slot(struct rtudp_nf_image *img, int64_t takeover_ns, uint32_t *seq)
{
    int64_t start = 0;
    uint32_t last = 0;
    for (;;) {
        uint32_t s = load_relaxed(&img->seq);
        if (!(s & 1)) {
            if (atomic_compare_exchange_weak_explicit(SHARED(&img->seq), &s, s + 1,
                                                      memory_order_acquire,
                                                      memory_order_relaxed)) {
                *seq = s + 1;
                return RTUDP_OK;
            }
            continue;
        }
        int64_t now = rtudp_now_ns();
        if (!start || s != last) { /* a new writer holds it: its own grace period */
            start = now;
            last = s;
        } else if (now - start >= takeover_ns) {
            if (atomic_compare_exchange_strong_explicit(SHARED(&img->seq), &s, s + 2,
                                                        memory_order_acquire,
                                                        memory_order_relaxed)) {
                *seq = s + 2; /* still odd: ours now */
                return RTUDP_OK;
            }
            continue;
        }
        if (takeover_ns <= 0)
            return RTUDP_NF_BUSY;
        int64_t until = now + WRITE_SPIN_NS;
        while (rtudp_now_ns() < until)
            cpu_relax();
    }
}

int rtudp_nf_image_write(struct rtudp_nf_image *img, const uint8_t *data, uint32_t len,
                         int64_t stamp_ns, uint64_t tag, int64_t takeover_ns)
{
    if (!img || (len && !data) || len > RTUDP_NF_MAX_PAYLOAD)
        return RTUDP_EINVAL;
    uint32_t s;
    int rc = lock_slot(img, takeover_ns, &s);
    if (rc != RTUDP_OK)
        return rc;
    atomic_thread_fence(memory_order_release); /* the odd seq before any data */
    store_words(img, data, len);
    store_relaxed(&img->len, len);
    store_relaxed(&img->stamp_ns, stamp_ns);
    store_relaxed(&img->tag, tag);
    store_relaxed(&img->updates, load_relaxed(&img->updates) + 1);
    store_release(&img->seq, s + 1); /* even again: everything above is visible */
    return RTUDP_OK;
}

int rtudp_nf_image_read(const struct rtudp_nf_image *img, uint8_t *out, uint32_t cap,
                        struct rtudp_nf_image_meta *meta, uint32_t tries)
{
    if (!img || !meta || (cap && !out))
        return RTUDP_EINVAL;
    uint64_t words[RTUDP_NF_IMAGE_WORDS];
    for (uint32_t t = 0; t < (tries ? tries : 1); t++) {
        uint32_t s1 = load_acquire(&img->seq);
        if (s1 & 1) {
            cpu_relax();
            continue;
        }
        uint32_t len = load_relaxed(&img->len);
        struct rtudp_nf_image_meta m = {.stamp_ns = load_relaxed(&img->stamp_ns),
                                        .updates = load_relaxed(&img->updates),
                                        .tag = load_relaxed(&img->tag)};
        if (len > RTUDP_NF_MAX_PAYLOAD)
            len = RTUDP_NF_MAX_PAYLOAD; /* a torn or hostile length: the seq check decides */
        uint32_t nwords = (len + 7) / 8;
        for (uint32_t i = 0; i < nwords; i++)
            words[i] = load_relaxed(&img->data[i]);
        atomic_thread_fence(memory_order_acquire); /* the data before the second look */
        if (load_relaxed(&img->seq) != s1)
            continue;
        m.len = len;
        *meta = m;
        uint32_t n = len < cap ? len : cap;
        memcpy(out, words, n);
        return (int)len;
    }
    return RTUDP_NF_BUSY;
}

void rtudp_nf_image_publish(struct rtudp_nf_image *img, const uint8_t *data, uint32_t len,
                            int64_t stamp_ns, uint64_t tag)
{
    if (len > RTUDP_NF_MAX_PAYLOAD)
        len = RTUDP_NF_MAX_PAYLOAD;
    uint32_t s = load_relaxed(&img->seq) | 1; /* odd, whatever a client left there */
    store_relaxed(&img->seq, s);
    atomic_thread_fence(memory_order_release);
    if (data) {
        store_words(img, data, len);
    } else {
        for (uint32_t i = 0; i < RTUDP_NF_IMAGE_WORDS; i++)
            store_relaxed(&img->data[i], 0);
    }
    store_relaxed(&img->len, len);
    store_relaxed(&img->stamp_ns, stamp_ns);
    store_relaxed(&img->tag, tag);
    store_relaxed(&img->updates, load_relaxed(&img->updates) + 1);
    store_release(&img->seq, s + 1);
}

struct events_wait {
    const struct rtudp_nf_area *a;
    uint64_t seen;
};

static bool events_moved(const void *ctx)
{
    const struct events_wait *e = ctx;
    return load_acquire(&e->a->rx.events) != e->seen;
}

uint64_t rtudp_nf_wait_events(struct rtudp_nf_area *a, uint64_t seen, int64_t deadline_ns)
{
    struct events_wait e = {a, seen};
    rtudp_bell_wait(&a->bell, events_moved, &e, deadline_ns, 0);
    return load_acquire(&a->rx.events);
}

int rtudp_nf_check_area(const struct rtudp_nf_area *a, uint64_t area_bytes,
                        struct rtudp_check *why)
{
    int rc = RTUDP_KIND_AREA_HEAD("netflux", a, area_bytes, RTUDP_NF_MAGIC, why);
    if (rc != RTUDP_OK)
        return rc;
    const struct rtudp_nf_config *c = &a->config;
    if (c->send_size > RTUDP_NF_MAX_PAYLOAD || c->recv_size > RTUDP_NF_MAX_PAYLOAD)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "netflux image sizes %u/%u: at most %d",
                               c->send_size, c->recv_size, RTUDP_NF_MAX_PAYLOAD);
    if (c->send_interval_ns < 0 || c->send_interval_ns > 3600LL * 1000000000LL ||
        c->watch_interval_ns <= 0 || c->watch_interval_ns > 3600LL * 1000000000LL)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "netflux intervals send %lld ns / watch %lld ns out of range",
                               (long long)c->send_interval_ns, (long long)c->watch_interval_ns);
    return RTUDP_OK;
}

static int check_area(const void *area, uint64_t area_bytes, struct rtudp_check *why)
{
    return rtudp_nf_check_area(area, area_bytes, why);
}

/* a hold that stands: taken by a live claimer, not yet done */
static int hold_stands(const struct rtudp_nf_tx *tx, int64_t now)
{
    return now - load_relaxed(&tx->claim_ns) < RTUDP_NF_HOLD_MAX_NS;
}

int rtudp_nf_claim(struct rtudp_nf_tx *tx, uint64_t n, uint64_t upto, int role, int64_t now,
                   uint64_t *held)
{
    uint64_t old = load_acquire(&tx->claim);
    for (;;) {
        int sane = (old >> RTUDP_NF_CLAIM_SHIFT) <= upto;
        *held = old;
        if (sane && (old >> RTUDP_NF_CLAIM_SHIFT) > n)
            return RTUDP_NF_TAKEN;
        if (sane && (old & RTUDP_NF_CLAIM_HELD)) {
            if (hold_stands(tx, now))
                return RTUDP_NF_WAIT;
            fetch_add(&tx->claim_breaks, 1);
        }
        /* n < 2^54: a cycle number is (now - start) / interval, under 2^63 / 50 us */
        uint64_t want = (n + 1) << RTUDP_NF_CLAIM_SHIFT | RTUDP_NF_CLAIM_HELD |
                        (role == RTUDP_NF_ROLE_STANDBY ? RTUDP_NF_CLAIM_STANDBY : 0) |
                        (uint8_t)(old + 1);
        /* stamped before the word: whoever sees the hold sees its time (a losing
         * claimer's stamp, written just before, is as recent) */
        store_relaxed(&tx->claim_ns, now);
        if (atomic_compare_exchange_weak_explicit(SHARED(&tx->claim), &old, want,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            *held = want;
            return RTUDP_NF_MINE;
        }
    }
}

void rtudp_nf_claim_done(struct rtudp_nf_tx *tx, uint64_t held)
{
    /* the word as this claim left it, or a hold broken and taken over since, which is
     * not ours to clear */
    atomic_compare_exchange_strong_explicit(SHARED(&tx->claim), &held,
                                            held & ~RTUDP_NF_CLAIM_HELD,
                                            memory_order_release, memory_order_relaxed);
}

int rtudp_nf_claim_recover(struct rtudp_nf_tx *tx, int role)
{
    uint64_t old = load_acquire(&tx->claim);
    uint64_t mine = role == RTUDP_NF_ROLE_STANDBY ? RTUDP_NF_CLAIM_STANDBY : 0;
    while ((old & RTUDP_NF_CLAIM_HELD) && (old & RTUDP_NF_CLAIM_STANDBY) == mine)
        if (atomic_compare_exchange_weak_explicit(SHARED(&tx->claim), &old,
                                                  old & ~RTUDP_NF_CLAIM_HELD,
                                                  memory_order_acq_rel, memory_order_acquire))
            return 1;
    return 0;
}

/* the netflux kind area, for kinds.c (what Python reads of it) */
RTUDP_KIND_AREA(netflux, struct rtudp_nf_area, RTUDP_NF_AREA_COUNTERS, check_area);
