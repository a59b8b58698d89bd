/*
 * impair.c - the impairment's configuration seqlock, its seeded draws and the verdict
 * for one datagram (impair.h).  Compiled into the worker and the cffi extension.
 */
#include "impair.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "ring.h"
#include "shm_access.h"

#define CFG_WORDS (sizeof(struct rtudp_impair_cfg) / sizeof(uint64_t))
#define READ_TRIES 64

uint64_t rtudp_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t at_most(uint64_t v, uint64_t max)
{
    return v < max ? v : max;
}

/* what any reader may rely on, whatever a writer put there */
static void clamp(struct rtudp_impair_cfg *c)
{
    c->where &= RTUDP_IMPAIR_TX | RTUDP_IMPAIR_RX;
    c->loss = at_most(c->loss, RTUDP_IMPAIR_ONE);
    c->duplicate = at_most(c->duplicate, RTUDP_IMPAIR_ONE);
    c->corrupt = at_most(c->corrupt, RTUDP_IMPAIR_ONE);
    c->reorder = at_most(c->reorder, RTUDP_IMPAIR_ONE);
    c->delay_ns = at_most(c->delay_ns, RTUDP_IMPAIR_MAX_DELAY_NS);
    c->jitter_ns = at_most(c->jitter_ns, RTUDP_IMPAIR_MAX_DELAY_NS - c->delay_ns);
    c->reorder_ns = at_most(c->reorder_ns, RTUDP_IMPAIR_MAX_DELAY_NS - c->delay_ns - c->jitter_ns);
    c->burst_bytes = at_most(c->burst_bytes, RTUDP_IMPAIR_MAX_BURST);
}

int rtudp_impair_publish(struct rtudp_channel_block *b, const struct rtudp_impair_cfg *cfg,
                         int64_t wait_ns)
{
    if (!b || !cfg)
        return RTUDP_EINVAL;
    struct rtudp_impair_cfg c = *cfg;
    clamp(&c);
    struct rtudp_impair_shm *shm = &b->impair;
    int64_t give_up = rtudp_now_ns() + (wait_ns > 0 ? wait_ns : 0);
    uint64_t seq = load_relaxed(&shm->seq), held;
    for (;;) {
        /* even: free, take it; odd past the wait: its writer died in it, take it over
         * (still odd, so readers keep away) */
        held = (seq & 1) ? seq + 2 : seq + 1;
        if (((seq & 1) == 0 || rtudp_now_ns() >= give_up) &&
            atomic_compare_exchange_weak_explicit(SHARED(&shm->seq), &seq, held,
                                                  memory_order_acquire, memory_order_relaxed))
            break;
        if (seq & 1) {
            cpu_relax();
            seq = load_relaxed(&shm->seq);
        }
    }
    /* the odd seq is visible before any word of cfg changes */
    atomic_thread_fence(memory_order_release);
    const uint64_t *src = (const uint64_t *)&c;
    uint64_t *dst = (uint64_t *)&shm->cfg;
    for (size_t i = 0; i < CFG_WORDS; i++)
        store_relaxed(&dst[i], src[i]);
    store_relaxed(&b->direct.impaired, (c.where & RTUDP_IMPAIR_TX) ? 1u : 0u);
    store_relaxed(&b->direct_rx.impaired, (c.where & RTUDP_IMPAIR_RX) ? 1u : 0u);
    store_release(&shm->seq, held + 1);
    return RTUDP_OK;
}

/* a consistent copy and the seq it goes with */
static int read_at(const struct rtudp_impair_shm *shm, struct rtudp_impair_cfg *out,
                   uint64_t *seq_out)
{
    const uint64_t *src = (const uint64_t *)&shm->cfg;
    uint64_t *dst = (uint64_t *)out;
    for (int t = 0; t < READ_TRIES; t++) {
        uint64_t s1 = load_acquire(&shm->seq);
        if (s1 & 1) {
            cpu_relax();
            continue;
        }
        for (size_t i = 0; i < CFG_WORDS; i++)
            dst[i] = load_relaxed(&src[i]);
        atomic_thread_fence(memory_order_acquire);
        if (load_relaxed(&shm->seq) == s1) {
            *seq_out = s1;
            clamp(out);
            return RTUDP_OK;
        }
    }
    return RTUDP_EFULL;
}

int rtudp_impair_read(const struct rtudp_impair_shm *shm, struct rtudp_impair_cfg *out)
{
    uint64_t seq;
    return read_at(shm, out, &seq);
}

void rtudp_impair_init(struct rtudp_impair *s)
{
    memset(s, 0, sizeof *s);
    s->seen_seq = UINT64_MAX;
}

int rtudp_impair_refresh(struct rtudp_impair *s, const struct rtudp_impair_shm *shm,
                         uint32_t side)
{
    if (load_relaxed(&shm->seq) == s->seen_seq)
        return s->on;
    struct rtudp_impair_cfg c;
    uint64_t seq;
    if (read_at(shm, &c, &seq) != RTUDP_OK)
        return s->on; /* a writer is busy: keep the old one, look again next time */
    s->cfg = c;
    s->seen_seq = seq;
    s->on = (c.where & side) != 0;
    s->rng = side == RTUDP_IMPAIR_RX ? c.seed ^ RTUDP_IMPAIR_RX_STREAM : c.seed;
    s->rate_next_ns = 0;
    return s->on;
}

/* a draw's top 32 bits below a probability x 2^32 (ONE: always, 0: never) */
static int happens(uint64_t draw, uint64_t p)
{
    return (draw >> 32) < p;
}

void rtudp_impair_decide(struct rtudp_impair *s, uint32_t len, struct rtudp_impair_verdict *v)
{
    uint64_t r[RTUDP_IMPAIR_DRAWS];
    for (int i = 0; i < RTUDP_IMPAIR_DRAWS; i++)
        r[i] = rtudp_splitmix64(&s->rng);
    const struct rtudp_impair_cfg *c = &s->cfg;
    memset(v, 0, sizeof *v);
    v->copies = happens(r[0], c->loss) ? 0 : happens(r[1], c->duplicate) ? 2 : 1;
    if (v->copies && len && happens(r[2], c->corrupt)) {
        v->corrupt = 1;
        v->byte = (uint32_t)(((r[3] >> 32) * len) >> 32); /* uniform in 0 .. len-1 */
        v->bit = (uint32_t)(r[3] & 7);
    }
    uint64_t hold = c->delay_ns;
    if (c->jitter_ns)
        hold += r[5] % (c->jitter_ns + 1);
    v->delayed = hold > 0;
    if (c->reorder_ns && happens(r[4], c->reorder)) {
        hold += c->reorder_ns;
        v->reordered = 1;
    }
    v->hold_ns = (int64_t)hold; /* <= RTUDP_IMPAIR_MAX_DELAY_NS (clamp) */
}

/* ns the link takes for `bytes` at `rate` bits/s (bytes <= 64 MiB: bytes * 8e9 fits in
 * 64 bits), at most 10 s */
static int64_t link_ns(uint64_t bytes, uint64_t rate)
{
    return (int64_t)at_most(bytes * 8u * 1000000000u / rate, RTUDP_IMPAIR_MAX_DELAY_NS);
}

/*
 * A token bucket of burst_bytes + one datagram, filled at rate_bps, as the generic cell
 * rate algorithm says it (ITU-T I.371): rate_next_ns is the theoretical arrival time, when
 * the bucket would be full again; a datagram may leave once that is no more than the
 * burst's worth of link time ahead of it.
 */
int64_t rtudp_impair_rate(struct rtudp_impair *s, int64_t at, uint32_t len)
{
    uint64_t rate = s->cfg.rate_bps;
    if (!rate)
        return at;
    int64_t tolerance = link_ns(s->cfg.burst_bytes, rate);
    int64_t t = s->rate_next_ns - tolerance > at ? s->rate_next_ns - tolerance : at;
    int64_t tat = s->rate_next_ns > t ? s->rate_next_ns : t;
    s->rate_next_ns = tat + link_ns(at_most(len, RTUDP_MAX_PAYLOAD), rate);
    return t;
}
