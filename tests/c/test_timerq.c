/*
 * test_timerq.c - unit tests for the worker's timer queue and in-flight tracker
 * (csrc/worker/timerq.c, csrc/worker/inflight.c), and an end-to-end run of both
 * with the real MPSC ring (csrc/ring.c) the way the worker uses them.
 *
 * Same harness as test_ring.c: CHECK() prints file:line and the failing
 * expression and exits non-zero; each test runs in its own forked child (a crash
 * or a hang caught by the watchdog names its test, the others still run); the
 * last line is "N passed, M failed, K skipped" and the exit status is non-zero unless M is 0.
 *
 *   test_timerq                 run every test
 *   test_timerq NAME...         run only the tests whose names contain a NAME
 *   test_timerq --no-fork ...   run in-process (for a debugger)
 *
 * All randomness comes from fixed seeds: a failure reproduces.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inflight.h"
#include "ring.h"
#include "timerq.h"

#include "harness.h"
#include "ring_fixture.h"

/* ------------------------------------------------------------------ helpers */






/* every timer of one channel (< 256) dropped: the worker's batch of one */
static uint32_t remove_channel(struct rtudp_timerq *q, uint32_t channel)
{
    uint64_t bits[4] = {0};
    bits[channel / 64] = 1ull << (channel % 64);
    return rtudp_timerq_remove_channels(q, bits, 256);
}

/* a timer whose every field derives from id, so a popped timer is checked whole */
static struct rtudp_timer timer_of(uint64_t id, int64_t at, uint32_t channel)
{
    struct rtudp_timer t;
    memset(&t, 0, sizeof t);
    t.send_at_ns = at;
    t.order = 0xdeadbeef; /* push must overwrite it */
    t.channel = channel;
    t.slot = (uint32_t)(id * 7);
    t.ring_pos = id * 8;
    t.payload = (const uint8_t *)(uintptr_t)(0x1000 + id * 16);
    t.len = (uint32_t)(id % 1500);
    t.flags = (uint16_t)(id * 3);
    return t;
}

#define check_timer(...) AT_LINE(check_timer_(__VA_ARGS__))
static void check_timer_(const struct rtudp_timer *got, uint64_t id, int64_t at, uint32_t channel)
{
    struct rtudp_timer want = timer_of(id, at, channel);
    CHECK_EQ(got->send_at_ns, want.send_at_ns);
    CHECK_EQ(got->channel, want.channel);
    CHECK_EQ(got->slot, want.slot);
    CHECK_EQ(got->ring_pos, want.ring_pos);
    CHECK(got->payload == want.payload);
    CHECK_EQ(got->len, want.len);
    CHECK_EQ(got->flags, want.flags);
}

/* ------------------------------------------------------------------ timer queue */

static void test_timerq_basic(void)
{
    struct rtudp_timerq q;
    CHECK_EQ(rtudp_timerq_init(&q, 0), RTUDP_EINVAL);
    CHECK_EQ(rtudp_timerq_init(&q, UINT32_MAX), RTUDP_EINVAL);
    CHECK_EQ(rtudp_timerq_init(NULL, 4), RTUDP_EINVAL);
    CHECK_EQ(rtudp_timerq_init(&q, 4), RTUDP_OK);

    struct rtudp_timer out, many[8];
    CHECK(rtudp_timerq_peek(&q) == NULL);
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_EMPTY);
    CHECK_EQ(rtudp_timerq_next_deadline(&q), INT64_MAX);
    CHECK_EQ(rtudp_timerq_len(&q), 0);
    CHECK_EQ(rtudp_timerq_pop_due(&q, INT64_MAX, many, 8), 0);
    CHECK_EQ(remove_channel(&q, 1), 0);

    /* fill, one more is refused and changes nothing */
    static const int64_t at[4] = {300, 100, 200, 100};
    for (uint64_t i = 0; i < 4; i++) {
        struct rtudp_timer t = timer_of(i, at[i], 1);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
        CHECK_EQ(rtudp_timerq_len(&q), i + 1);
    }
    struct rtudp_timer extra = timer_of(9, 1, 1);
    CHECK_EQ(rtudp_timerq_push(&q, &extra), RTUDP_EFULL);
    CHECK_EQ(rtudp_timerq_len(&q), 4);
    CHECK_EQ(rtudp_timerq_next_deadline(&q), 100);
    const struct rtudp_timer *p = rtudp_timerq_peek(&q);
    CHECK(p != NULL);
    check_timer(p, 1, 100, 1);
    CHECK_EQ(p->order, 1); /* orders are 0, 1, 2, ... in push order */

    /* 100 (pushed 2nd), 100 (pushed 4th), 200, 300; room again after a pop */
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
    check_timer(&out, 1, 100, 1);
    CHECK_EQ(rtudp_timerq_push(&q, &extra), RTUDP_OK);
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
    check_timer(&out, 9, 1, 1);
    CHECK_EQ(out.order, 4);
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
    check_timer(&out, 3, 100, 1);
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
    check_timer(&out, 2, 200, 1);
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
    check_timer(&out, 0, 300, 1);
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_EMPTY);
    CHECK_EQ(rtudp_timerq_len(&q), 0);

    /* capacity 1 */
    rtudp_timerq_free(&q);
    CHECK_EQ(rtudp_timerq_init(&q, 1), RTUDP_OK);
    CHECK_EQ(rtudp_timerq_push(&q, &extra), RTUDP_OK);
    CHECK_EQ(rtudp_timerq_push(&q, &extra), RTUDP_EFULL);
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_EMPTY);
    rtudp_timerq_free(&q);
    rtudp_timerq_free(&q); /* a second free is harmless */
    CHECK_EQ(rtudp_timerq_push(&q, &extra), RTUDP_EFULL); /* so is a push after free */
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_EMPTY);
}

/* the reference: entries kept sorted by (at, push number) */
struct ref_timer {
    int64_t at;
    uint64_t n;    /* push number: what order must be */
    uint64_t id;
    uint32_t channel;
};

static void ref_insert(struct ref_timer *r, uint32_t *len, struct ref_timer x)
{
    uint32_t i = *len;
    while (i > 0 && (r[i - 1].at > x.at || (r[i - 1].at == x.at && r[i - 1].n > x.n))) {
        r[i] = r[i - 1];
        i--;
    }
    r[i] = x;
    (*len)++;
}

#define check_pop_ref(...) AT_LINE(check_pop_ref_(__VA_ARGS__))
static void check_pop_ref_(const struct rtudp_timer *got, const struct ref_timer *want)
{
    check_timer_(got, want->id, want->at, want->channel);
    CHECK_EQ(got->order, want->n);
}

/* What a model run went through (it must have exercised what its test claims to). */
struct model_seen {
    uint64_t ties, fulls, removed;
    uint32_t fifo_wrapped;      /* times a push found the FIFO's ring wrapped */
    uint32_t heap_max;          /* the most timers the heap held */
};

/* OPS random operations on a queue of cap, checked against the sorted reference.
 * stream_pct of the pushes come in deadline order, a stream queued ahead (through
 * the FIFO); the rest are near the clock, with lots of ties (through the heap). */
static struct model_seen model_run(uint32_t cap, uint64_t seed, uint32_t stream_pct)
{
    enum { OPS = 100000 };
    struct model_seen seen = {0};
    struct ref_timer *ref = calloc(cap, sizeof *ref);
    static struct rtudp_timer out[64];
    CHECK(ref != NULL);
    uint32_t rlen = 0;
    struct rtudp_timerq q;
    CHECK_EQ(rtudp_timerq_init(&q, cap), RTUDP_OK);
    uint64_t pushes = 0, id = 0;
    int64_t now = 0, stream_at = 0;
    /* the push share drifts so the queue goes through empty, full and between */
    uint64_t push_pct = 60;
    for (int op = 0; op < OPS; op++) {
        if (op % 5000 == 0)
            push_pct = 30 + rnd(&seed, 50);
        uint64_t what = rnd(&seed, 100);
        if (what < push_pct) {
            /* few distinct deadlines near now: lots of ties */
            int64_t at = now + (int64_t)rnd(&seed, 40) - 10;
            if (rnd(&seed, 100) < stream_pct) {
                stream_at = (stream_at > now ? stream_at : now) + (int64_t)rnd(&seed, 3);
                at = stream_at;
            } else if (rnd(&seed, 50) == 0) {
                at = rnd(&seed, 2) ? INT64_MAX : INT64_MIN;
            }
            uint32_t ch = (uint32_t)rnd(&seed, 5);
            struct rtudp_timer t = timer_of(id, at, ch);
            if (q.fifo_head + q.fifo_len > q.fifo_size)
                seen.fifo_wrapped++;
            int rc = rtudp_timerq_push(&q, &t);
            if (rlen == cap) {
                CHECK_EQ(rc, RTUDP_EFULL);
                seen.fulls++;
                continue;
            }
            CHECK_EQ(rc, RTUDP_OK);
            if (q.len > seen.heap_max)
                seen.heap_max = q.len;
            for (uint32_t i = 0; i < rlen; i++)
                if (ref[i].at == at) {
                    seen.ties++;
                    break;
                }
            ref_insert(ref, &rlen, (struct ref_timer){at, pushes++, id++, ch});
        } else if (what < push_pct + 15) { /* pop */
            struct rtudp_timer t;
            int rc = rtudp_timerq_pop(&q, &t);
            if (rlen == 0) {
                CHECK_EQ(rc, RTUDP_EMPTY);
                continue;
            }
            CHECK_EQ(rc, RTUDP_OK);
            check_pop_ref(&t, &ref[0]);
            memmove(ref, ref + 1, (rlen - 1) * sizeof ref[0]);
            rlen--;
        } else if (what < push_pct + 22) { /* peek and next_deadline */
            const struct rtudp_timer *p = rtudp_timerq_peek(&q);
            if (rlen == 0) {
                CHECK(p == NULL);
                CHECK_EQ(rtudp_timerq_next_deadline(&q), INT64_MAX);
            } else {
                CHECK(p != NULL);
                check_pop_ref(p, &ref[0]);
                CHECK_EQ(rtudp_timerq_next_deadline(&q), ref[0].at);
            }
        } else if (what < push_pct + 24) { /* remove a channel */
            uint32_t ch = (uint32_t)rnd(&seed, 6); /* 5 is never used: removes nothing */
            uint32_t kept = 0, gone = 0;
            for (uint32_t i = 0; i < rlen; i++) {
                if (ref[i].channel == ch)
                    gone++;
                else
                    ref[kept++] = ref[i];
            }
            rlen = kept;
            CHECK_EQ(remove_channel(&q, ch), gone);
            seen.removed += gone;
        } else { /* pop_due at a clock that moves forward, sometimes with a small max */
            now += (int64_t)rnd(&seed, 8);
            uint32_t max = rnd(&seed, 4) ? 64 : (uint32_t)rnd(&seed, 4);
            uint32_t n = rtudp_timerq_pop_due(&q, now, out, max);
            uint32_t due = 0;
            while (due < rlen && ref[due].at <= now)
                due++;
            CHECK_EQ(n, due < max ? due : max);
            for (uint32_t i = 0; i < n; i++)
                check_pop_ref(&out[i], &ref[i]);
            memmove(ref, ref + n, (rlen - n) * sizeof ref[0]);
            rlen -= n;
        }
        CHECK_EQ(rtudp_timerq_len(&q), rlen);
    }
    /* drain what is left, in order */
    for (uint32_t i = 0; i < rlen; i++) {
        struct rtudp_timer t;
        CHECK_EQ(rtudp_timerq_pop(&q, &t), RTUDP_OK);
        check_pop_ref(&t, &ref[i]);
    }
    CHECK_EQ(rtudp_timerq_len(&q), 0);
    rtudp_timerq_free(&q);
    free(ref);
    return seen;
}

static void test_timerq_model_random(void)
{
    struct model_seen seen = model_run(256, 4242, 0);
    CHECK(seen.ties > 10000);
    CHECK(seen.fulls > 0);
    CHECK(seen.removed > 100);
}

/* mostly a stream in deadline order, now and then one out of it: the FIFO and the
 * heap both hold timers, the FIFO's ring wraps, a channel's removal turns it */
static void test_timerq_model_stream(void)
{
    for (uint32_t pct = 80; pct <= 98; pct += 18) {
        struct model_seen seen = model_run(256, 99 + pct, pct);
        CHECK(seen.fifo_wrapped > 100);
        CHECK(seen.heap_max > 10);
        CHECK(seen.fulls > 0);
        CHECK(seen.removed > 100);
    }
}

/* a whole schedule queued at once: the FIFO grows to hold it.  A stream that finds
 * the FIFO full and wrapped round goes on in the heap.  Either way all leave in order. */
static void test_timerq_stream_longer_than_the_fifo(void)
{
    enum { START = RTUDP_TIMERQ_FIFO_START, N = START + 3000 };
    struct rtudp_timerq q;
    CHECK_EQ(rtudp_timerq_init(&q, 4 * START), RTUDP_OK);
    CHECK_EQ(q.fifo_size, START);
    uint64_t id = 0, next = 0;
    for (; id < N; id++) {
        struct rtudp_timer t = timer_of(id, (int64_t)id * 10, 0);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    }
    CHECK_EQ(q.fifo_size, 2 * START);
    CHECK_EQ(q.fifo_len, N);
    CHECK_EQ(q.len, 0);
    struct rtudp_timer out;
    /* wrapped round and full: the rest of the stream goes to the heap */
    for (; next < 5; next++) {
        CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
        check_timer(&out, next, (int64_t)next * 10, 0);
    }
    for (; id < 2 * START + 1000; id++) {
        struct rtudp_timer t = timer_of(id, (int64_t)id * 10, 0);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    }
    CHECK_EQ(q.fifo_size, 2 * START);
    CHECK_EQ(q.fifo_len, 2 * START);
    CHECK_EQ(q.len, 1000 - 5);
    for (; next < id; next++) {
        CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
        check_timer(&out, next, (int64_t)next * 10, 0);
    }
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_EMPTY);
    /* a queue smaller than the FIFO's start: its ring is the whole queue */
    rtudp_timerq_free(&q);
    CHECK_EQ(rtudp_timerq_init(&q, 10), RTUDP_OK);
    CHECK_EQ(q.fifo_size, 10);
    rtudp_timerq_free(&q);
}

/* a queue grown while it holds timers, in its FIFO wrapped round and in its heap: every
 * timer stays, and all leave in (deadline, push) order, those pushed after the growth
 * among them */
static void test_timerq_grow_keeps_every_timer(void)
{
    enum { CAP = 8, BIG = 5000 };
    struct rtudp_timerq q;
    CHECK_EQ(rtudp_timerq_grow(NULL, 16), RTUDP_EINVAL);
    CHECK_EQ(rtudp_timerq_init(&q, CAP), RTUDP_OK);
    struct rtudp_timer out;
    uint64_t id = 0;
    for (; id < 6; id++) { /* ids 0..5 at 10..60: the FIFO */
        struct rtudp_timer t = timer_of(id, (int64_t)(id + 1) * 10, 0);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    }
    for (uint64_t k = 0; k < 3; k++) { /* 0, 1, 2 leave: the ring's head moves on */
        CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
        check_timer(&out, k, (int64_t)(k + 1) * 10, 0);
    }
    for (; id < 9; id++) { /* ids 6..8 at 70..90: the ring wraps round */
        struct rtudp_timer t = timer_of(id, (int64_t)(id + 1) * 10, 0);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    }
    struct rtudp_timer early = timer_of(id++, 35, 1); /* id 9, before the FIFO's last: heap */
    CHECK_EQ(rtudp_timerq_push(&q, &early), RTUDP_OK);
    struct rtudp_timer tie = timer_of(id++, 50, 1); /* id 10: ties id 4, pushed after it */
    CHECK_EQ(rtudp_timerq_push(&q, &tie), RTUDP_OK);
    CHECK_EQ(rtudp_timerq_len(&q), CAP);
    CHECK_EQ(rtudp_timerq_push(&q, &tie), RTUDP_EFULL);
    CHECK_EQ(q.fifo_head + q.fifo_len > q.fifo_size, 1); /* wrapped round */
    CHECK(q.len > 0);

    CHECK_EQ(rtudp_timerq_grow(&q, UINT32_MAX), RTUDP_EINVAL);
    CHECK_EQ(rtudp_timerq_grow(&q, CAP / 2), RTUDP_OK); /* has the room: unchanged */
    CHECK_EQ(q.capacity, CAP);
    CHECK_EQ(rtudp_timerq_grow(&q, BIG), RTUDP_OK);
    CHECK_EQ(q.capacity, BIG);
    CHECK_EQ(rtudp_timerq_len(&q), CAP);
    /* more than the old capacity, deadlines in and out of order (ids 11...) */
    for (uint64_t k = 0; k < BIG - CAP; k++, id++) {
        struct rtudp_timer t = timer_of(id, (int64_t)(k * 7919 % 1000) + 1, 2);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    }
    static uint8_t seen[BIG + 3];
    memset(seen, 0, sizeof seen);
    struct rtudp_timer last = {.send_at_ns = INT64_MIN};
    uint64_t popped = 0;
    while (rtudp_timerq_pop(&q, &out) == RTUDP_OK) {
        uint64_t got = out.ring_pos / 8; /* the id: timer_of's fields derive from it */
        CHECK(got < id && !seen[got]);
        seen[got] = 1;
        check_timer(&out, got, out.send_at_ns, out.channel);
        /* ties in push order: ids grow with pushes */
        CHECK(out.send_at_ns > last.send_at_ns ||
              (out.send_at_ns == last.send_at_ns && got > last.ring_pos / 8));
        last = out;
        popped++;
    }
    CHECK_EQ(popped, BIG);
    rtudp_timerq_free(&q);
}

static void test_timerq_pop_due_bounds(void)
{
    struct rtudp_timerq q;
    struct rtudp_timer out[8];
    CHECK_EQ(rtudp_timerq_init(&q, 16), RTUDP_OK);
    static const int64_t at[] = {200, 100, 100, -5, 101, 100, INT64_MAX};
    for (uint64_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        struct rtudp_timer t = timer_of(i, at[i], 0);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    }
    CHECK_EQ(rtudp_timerq_pop_due(&q, -6, out, 8), 0);
    CHECK_EQ(rtudp_timerq_pop_due(&q, 1000, out, 0), 0); /* max 0 takes nothing */
    CHECK_EQ(rtudp_timerq_len(&q), 7);
    CHECK_EQ(rtudp_timerq_pop_due(&q, -5, out, 8), 1); /* == now is due */
    check_timer(&out[0], 3, -5, 0);
    CHECK_EQ(rtudp_timerq_pop_due(&q, 99, out, 8), 0);
    /* three at 100: in push order, and max stops in the middle of the tie */
    CHECK_EQ(rtudp_timerq_pop_due(&q, 100, out, 2), 2);
    check_timer(&out[0], 1, 100, 0);
    check_timer(&out[1], 2, 100, 0);
    CHECK_EQ(rtudp_timerq_next_deadline(&q), 100);
    CHECK_EQ(rtudp_timerq_pop_due(&q, 100, out, 8), 1);
    check_timer(&out[0], 5, 100, 0);
    CHECK_EQ(rtudp_timerq_next_deadline(&q), 101);
    CHECK_EQ(rtudp_timerq_pop_due(&q, 200, out, 8), 2);
    check_timer(&out[0], 4, 101, 0);
    check_timer(&out[1], 0, 200, 0);
    CHECK_EQ(rtudp_timerq_pop_due(&q, INT64_MAX - 1, out, 8), 0);
    CHECK_EQ(rtudp_timerq_pop_due(&q, INT64_MAX, out, 8), 1);
    check_timer(&out[0], 6, INT64_MAX, 0);
    CHECK_EQ(rtudp_timerq_len(&q), 0);
    CHECK_EQ(rtudp_timerq_pop_due(&q, INT64_MAX, out, 8), 0);
    rtudp_timerq_free(&q);
}

static void test_timerq_remove_channel(void)
{
    enum { N = 300 };
    struct rtudp_timerq q;
    CHECK_EQ(rtudp_timerq_init(&q, N), RTUDP_OK);
    uint64_t seed = 77;
    int64_t at[N];
    uint32_t ch[N];
    for (uint64_t i = 0; i < N; i++) {
        at[i] = (int64_t)rnd(&seed, 20);
        ch[i] = (uint32_t)rnd(&seed, 4);
        struct rtudp_timer t = timer_of(i, at[i], ch[i]);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    }
    /* pop a few first so the heap is not in push layout */
    struct rtudp_timer out;
    for (int i = 0; i < 10; i++)
        CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
    int64_t last_at = out.send_at_ns;
    uint64_t last_order = out.order;
    uint32_t want = 0;
    for (uint64_t i = 0; i < N; i++)
        want += ch[i] == 2;
    /* the 10 popped were the earliest; count channel-2 timers still queued */
    uint32_t got = remove_channel(&q, 2);
    CHECK(got <= want && got + 10 >= want);
    CHECK_EQ(rtudp_timerq_len(&q), N - 10 - got);
    CHECK_EQ(remove_channel(&q, 2), 0);
    CHECK_EQ(remove_channel(&q, 99), 0);
    /* the rest still leaves in (deadline, push) order, and none of channel 2 */
    uint32_t left = rtudp_timerq_len(&q);
    for (uint32_t i = 0; i < left; i++) {
        CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
        CHECK(out.channel != 2);
        CHECK(out.send_at_ns > last_at || (out.send_at_ns == last_at && out.order > last_order));
        check_timer(&out, out.order, at[out.order], ch[out.order]);
        last_at = out.send_at_ns;
        last_order = out.order;
    }
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_EMPTY);

    /* removing every timer; removing from a queue of one */
    for (uint64_t i = 0; i < 5; i++) {
        struct rtudp_timer t = timer_of(i, 5, 7);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    }
    CHECK_EQ(remove_channel(&q, 7), 5);
    CHECK_EQ(rtudp_timerq_len(&q), 0);
    CHECK(rtudp_timerq_peek(&q) == NULL);
    struct rtudp_timer t = timer_of(1, 5, 8);
    CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    CHECK_EQ(remove_channel(&q, 7), 0);
    CHECK_EQ(rtudp_timerq_len(&q), 1);
    CHECK_EQ(remove_channel(&q, 8), 1);
    CHECK_EQ(rtudp_timerq_len(&q), 0);
    rtudp_timerq_free(&q);
}

/* many channels let go of at once (a worker giving channels to another) leave in one
 * pass: exactly their timers go, from the FIFO and the heap, and the rest keep their
 * order; channels past the bitmap's end are never taken for ones in it */
static void test_timerq_remove_channels_at_once(void)
{
    enum { N = 4000, CHANNELS = 200 };
    struct rtudp_timerq q;
    CHECK_EQ(rtudp_timerq_init(&q, N), RTUDP_OK);
    uint64_t seed = 91;
    static int64_t at[N];
    static uint32_t ch[N];
    for (uint64_t i = 0; i < N; i++) {
        /* mostly growing deadlines (the FIFO), some earlier ones (the heap) */
        at[i] = (int64_t)(i * 10) - (rnd(&seed, 8) == 0 ? (int64_t)rnd(&seed, 5000) : 0);
        ch[i] = (uint32_t)rnd(&seed, CHANNELS);
        struct rtudp_timer t = timer_of(i, at[i], ch[i]);
        CHECK_EQ(rtudp_timerq_push(&q, &t), RTUDP_OK);
    }
    CHECK(q.fifo_len > 0 && q.len > 0);
    uint64_t bits[(CHANNELS + 63) / 64] = {0};
    const uint32_t gone[] = {0, 3, 63, 64, 65, 127, 128, 199};
    uint32_t want = 0;
    for (size_t k = 0; k < sizeof gone / sizeof gone[0]; k++)
        bits[gone[k] / 64] |= 1ull << (gone[k] % 64);
    for (uint64_t i = 0; i < N; i++)
        want += (bits[ch[i] / 64] >> (ch[i] % 64)) & 1u;
    /* a bitmap of 150 channels: 199 is past its end, so stays */
    uint32_t past = 0;
    for (uint64_t i = 0; i < N; i++)
        past += ch[i] == 199;
    CHECK_EQ(rtudp_timerq_remove_channels(&q, bits, 150), want - past);
    CHECK_EQ(rtudp_timerq_len(&q), N - (want - past));
    int64_t last_at = INT64_MIN;
    uint64_t last_order = 0;
    struct rtudp_timer out;
    for (uint32_t i = 0, left = rtudp_timerq_len(&q); i < left; i++) {
        CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_OK);
        CHECK(out.channel == 199 || !((bits[out.channel / 64] >> (out.channel % 64)) & 1u));
        CHECK(out.send_at_ns > last_at || (out.send_at_ns == last_at && out.order > last_order));
        check_timer(&out, out.order, at[out.order], ch[out.order]);
        last_at = out.send_at_ns;
        last_order = out.order;
    }
    CHECK_EQ(rtudp_timerq_pop(&q, &out), RTUDP_EMPTY);
    rtudp_timerq_free(&q);
}

/* ------------------------------------------------------------------ in flight */

/* a spare is taken by the next tracker of its capacity only, whole and zeroed, once */
static void test_inflight_spare_taken_once_by_its_capacity(void)
{
    struct rtudp_inflight a, b, c;
    uint32_t slot;
    CHECK_EQ(rtudp_inflight_spare(), 0);
    rtudp_inflight_keep_spare(8);
    rtudp_inflight_keep_spare(8); /* kept as it is */
    CHECK_EQ(rtudp_inflight_spare(), 8);
    CHECK_EQ(rtudp_inflight_init(&a, 4), RTUDP_OK); /* another capacity: its own */
    CHECK_EQ(rtudp_inflight_spare(), 8);
    CHECK_EQ(rtudp_inflight_init(&b, 8), RTUDP_OK); /* the spare */
    CHECK_EQ(rtudp_inflight_spare(), 0);
    CHECK_EQ(rtudp_inflight_init(&c, 8), RTUDP_OK); /* taken already: its own */
    CHECK(b.e != c.e && a.e != b.e);
    for (uint32_t i = 0; i < 8; i++)
        CHECK(b.e[i].pos == 0 && b.e[i].end == 0 && b.e[i].done == 0 && b.e[i].more == 0);
    /* it works as any tracker: all of it fills, empties, and releases */
    rtudp_inflight_reset(&b, 0);
    for (uint64_t i = 0; i < 8; i++)
        CHECK_EQ(rtudp_inflight_push(&b, i * 16, i * 16 + 16, &slot), RTUDP_OK);
    CHECK_EQ(rtudp_inflight_push(&b, 128, 144, &slot), RTUDP_EFULL);
    for (uint32_t i = 0; i < 8; i++)
        rtudp_inflight_done(&b, i);
    CHECK_EQ(rtudp_inflight_release_point(&b), 128);
    CHECK(rtudp_inflight_empty(&b) && b.misuse == 0);
    /* one of another capacity replaces it; dropped, none is left */
    rtudp_inflight_keep_spare(8);
    rtudp_inflight_keep_spare(16);
    CHECK_EQ(rtudp_inflight_spare(), 16);
    rtudp_inflight_drop_spare();
    CHECK_EQ(rtudp_inflight_spare(), 0);
    struct rtudp_inflight d;
    CHECK_EQ(rtudp_inflight_init(&d, 16), RTUDP_OK);
    rtudp_inflight_keep_spare(0); /* no capacity: no spare, nothing to free */
    CHECK_EQ(rtudp_inflight_spare(), 0);
    /* a big tracker's memory is not held twice */
    uint32_t most = RTUDP_INFLIGHT_SPARE_MAX / sizeof(struct rtudp_inflight_entry);
    rtudp_inflight_keep_spare(most + 1);
    CHECK_EQ(rtudp_inflight_spare(), 0);
    rtudp_inflight_keep_spare(most);
    CHECK_EQ(rtudp_inflight_spare(), most);
    rtudp_inflight_drop_spare();
    rtudp_inflight_free(&a);
    rtudp_inflight_free(&b);
    rtudp_inflight_free(&c);
    rtudp_inflight_free(&d);
}

static void test_inflight_basic(void)
{
    struct rtudp_inflight f;
    uint32_t s0, s1, s2, s3;
    CHECK_EQ(rtudp_inflight_init(&f, 0), RTUDP_EINVAL);
    CHECK_EQ(rtudp_inflight_init(NULL, 4), RTUDP_EINVAL);
    CHECK_EQ(rtudp_inflight_init(&f, 3), RTUDP_OK);
    CHECK(rtudp_inflight_empty(&f));
    CHECK_EQ(rtudp_inflight_len(&f), 0);
    CHECK_EQ(rtudp_inflight_release_point(&f), 0);
    rtudp_inflight_reset(&f, 1000);
    CHECK_EQ(rtudp_inflight_release_point(&f), 1000);

    /* out of order and empty records are refused */
    CHECK_EQ(rtudp_inflight_push(&f, 992, 1008, &s0), RTUDP_EINVAL);
    CHECK_EQ(rtudp_inflight_push(&f, 1000, 1000, &s0), RTUDP_EINVAL);
    CHECK_EQ(f.misuse, 2);
    CHECK(rtudp_inflight_empty(&f));

    CHECK_EQ(rtudp_inflight_push(&f, 1000, 1024, &s0), RTUDP_OK);
    CHECK_EQ(rtudp_inflight_push(&f, 1040, 1056, &s1), RTUDP_OK); /* padding before it */
    CHECK_EQ(rtudp_inflight_push(&f, 1040, 1064, &s2), RTUDP_EINVAL); /* overlaps */
    CHECK_EQ(rtudp_inflight_push(&f, 1056, 1088, &s2), RTUDP_OK);
    CHECK_EQ(rtudp_inflight_push(&f, 1088, 1100, &s3), RTUDP_EFULL);
    CHECK_EQ(rtudp_inflight_len(&f), 3);
    CHECK(!rtudp_inflight_empty(&f));
    CHECK(s0 != s1 && s1 != s2 && s0 != s2);
    CHECK_EQ(rtudp_inflight_release_point(&f), 1000);

    /* the last one first: nothing can be freed yet */
    rtudp_inflight_done(&f, s2);
    CHECK_EQ(rtudp_inflight_release_point(&f), 1000);
    CHECK_EQ(rtudp_inflight_len(&f), 3);
    uint64_t misuse = f.misuse;
    rtudp_inflight_done(&f, s2); /* twice: counted, no effect */
    CHECK_EQ(f.misuse, misuse + 1);
    rtudp_inflight_done(&f, 3); /* out of range */
    rtudp_inflight_done(&f, UINT32_MAX);
    CHECK_EQ(f.misuse, misuse + 3);
    /* the first: up to the second's start, padding included */
    rtudp_inflight_done(&f, s0);
    CHECK_EQ(rtudp_inflight_release_point(&f), 1040);
    CHECK_EQ(rtudp_inflight_len(&f), 2);
    CHECK_EQ(rtudp_inflight_release_point(&f), 1040); /* asking again changes nothing */
    /* s0 is free now: a done on it is a stale handle */
    rtudp_inflight_done(&f, s0);
    CHECK_EQ(f.misuse, misuse + 4);
    CHECK_EQ(rtudp_inflight_push(&f, 1088, 1100, &s3), RTUDP_OK);
    CHECK_EQ(s3, s0); /* reuses the freed slot... */
    /* ...and a stale done_at on it is caught by the position check */
    CHECK_EQ(rtudp_inflight_done_at(&f, s3, 1000), RTUDP_EINVAL);
    CHECK_EQ(f.misuse, misuse + 5);
    CHECK_EQ(rtudp_inflight_done_at(&f, s1, 1040), RTUDP_OK);
    CHECK_EQ(rtudp_inflight_done_at(&f, s1, 1040), RTUDP_EINVAL); /* twice */
    CHECK_EQ(rtudp_inflight_release_point(&f), 1088);
    CHECK_EQ(rtudp_inflight_len(&f), 1);
    CHECK_EQ(rtudp_inflight_done_at(&f, s3, 1088), RTUDP_OK);
    CHECK_EQ(rtudp_inflight_release_point(&f), 1100);
    CHECK(rtudp_inflight_empty(&f));
    CHECK_EQ(rtudp_inflight_release_point(&f), 1100);

    /* reset forgets pending entries; their slots are stale afterwards */
    CHECK_EQ(rtudp_inflight_push(&f, 1104, 1120, &s0), RTUDP_OK);
    rtudp_inflight_reset(&f, 1104);
    CHECK(rtudp_inflight_empty(&f));
    misuse = f.misuse;
    rtudp_inflight_done(&f, s0);
    CHECK_EQ(f.misuse, misuse + 1);
    CHECK_EQ(rtudp_inflight_release_point(&f), 1104);
    rtudp_inflight_free(&f);
    rtudp_inflight_free(&f);
    CHECK_EQ(rtudp_inflight_push(&f, 1200, 1216, &s0), RTUDP_EFULL); /* after free */
}

/*
 * Random pushes (with padding gaps) and completions in random order against a
 * model: the release point is the pos of the oldest pending record, or the end
 * of the newest when none is pending.  A small capacity wraps the array
 * thousands of times; positions start just below 2^64 so they wrap too.
 */
static void test_inflight_model_random(void)
{
    static const uint32_t caps[] = {1, 2, 7, 64, 1000};
    for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
        const uint32_t cap = caps[ci];
        struct rtudp_inflight f;
        CHECK_EQ(rtudp_inflight_init(&f, cap), RTUDP_OK);
        const uint64_t start = UINT64_MAX - 5000 * 8;
        rtudp_inflight_reset(&f, start);
        /* the model: every record ever pushed, by push number */
        enum { OPS = 200000 };
        static uint64_t mpos[OPS], mend[OPS];
        static uint32_t mslot[OPS];
        static bool mdone[OPS];
        memset(mdone, 0, sizeof mdone);
        uint64_t n = 0, oldest = 0; /* records [oldest, n) may be pending */
        uint64_t next_pos = start, seed = 99 + ci, fulls = 0, wraps = 0;
        uint32_t pending = 0;
        for (int op = 0; op < OPS && n < OPS; op++) {
            uint64_t what = rnd(&seed, 100);
            if (what < 45) {
                uint64_t pos = next_pos + 8 * rnd(&seed, 3); /* sometimes padding first */
                uint64_t end = pos + align8(16 + rnd(&seed, 100));
                uint32_t slot = UINT32_MAX;
                int rc = rtudp_inflight_push(&f, pos, end, &slot);
                /* full counts done-but-not-dropped entries too: they hold their slot
                 * until release_point drops them */
                if (rtudp_inflight_len(&f) == cap && rc == RTUDP_EFULL) {
                    fulls++;
                    continue;
                }
                CHECK_EQ(rc, RTUDP_OK);
                CHECK(slot < cap);
                if (slot == 0 && n > 0)
                    wraps++;
                mpos[n] = pos;
                mend[n] = end;
                mslot[n] = slot;
                n++;
                pending++;
                next_pos = end;
            } else if (what < 90) {
                if (pending == 0)
                    continue;
                /* complete a random pending record, not in ring order */
                uint64_t k = oldest + rnd(&seed, n - oldest);
                while (mdone[k])
                    k = k + 1 == n ? oldest : k + 1;
                mdone[k] = true;
                pending--;
                if (rnd(&seed, 2))
                    rtudp_inflight_done(&f, mslot[k]);
                else
                    CHECK_EQ(rtudp_inflight_done_at(&f, mslot[k], mpos[k]), RTUDP_OK);
            } else {
                uint64_t rp = rtudp_inflight_release_point(&f);
                while (oldest < n && mdone[oldest])
                    oldest++;
                uint64_t want = oldest < n ? mpos[oldest] : (n ? mend[n - 1] : start);
                CHECK_EQ(rp, want);
                /* everything dropped; everything from the oldest pending held */
                CHECK_EQ(rtudp_inflight_len(&f), n - oldest);
                CHECK_EQ(rtudp_inflight_empty(&f), oldest == n);
            }
        }
        CHECK_EQ(f.misuse, 0);
        CHECK(next_pos < start); /* positions wrapped past 2^64 */
        if (cap < 100) {
            CHECK(fulls > 0);
            CHECK(wraps > 1000 / cap);
        }
        /* finish: complete the rest in reverse order, then everything is free */
        for (uint64_t k = n; k-- > oldest;)
            if (!mdone[k])
                rtudp_inflight_done(&f, mslot[k]);
        CHECK_EQ(rtudp_inflight_release_point(&f), n ? mend[n - 1] : start);
        CHECK(rtudp_inflight_empty(&f));
        CHECK_EQ(f.misuse, 0);
        rtudp_inflight_free(&f);
    }
}

/* Slots stay put while others come and go: one entry stays pending while the
 * array wraps around it over and over (it is the oldest, so nothing is dropped
 * past it and the array fills; then it completes and the release jumps). */
static void test_inflight_wrap_pinned(void)
{
    enum { CAP = 5 };
    struct rtudp_inflight f;
    CHECK_EQ(rtudp_inflight_init(&f, CAP), RTUDP_OK);
    uint64_t pos = 0;
    uint32_t slots[CAP];
    for (int round = 0; round < 20000; round++) {
        /* fill: the first stays pending, the others complete at once (reverse) */
        uint64_t first_pos = pos;
        for (int i = 0; i < CAP; i++) {
            CHECK_EQ(rtudp_inflight_push(&f, pos, pos + 24, &slots[i]), RTUDP_OK);
            pos += 24;
        }
        uint32_t s;
        CHECK_EQ(rtudp_inflight_push(&f, pos, pos + 24, &s), RTUDP_EFULL);
        for (int i = CAP - 1; i >= 1; i--)
            rtudp_inflight_done(&f, slots[i]);
        CHECK_EQ(rtudp_inflight_release_point(&f), first_pos);
        CHECK_EQ(rtudp_inflight_len(&f), CAP);
        CHECK_EQ(rtudp_inflight_done_at(&f, slots[0], first_pos), RTUDP_OK);
        CHECK_EQ(rtudp_inflight_release_point(&f), pos);
        CHECK(rtudp_inflight_empty(&f));
        /* shift the array's start so every slot gets to be the pinned one */
        CHECK_EQ(rtudp_inflight_push(&f, pos, pos + 16, &s), RTUDP_OK);
        rtudp_inflight_done(&f, s);
        pos += 16;
        CHECK_EQ(rtudp_inflight_release_point(&f), pos);
    }
    CHECK_EQ(f.misuse, 0);
    rtudp_inflight_free(&f);
}

/* ------------------------------------------------------------------ end to end */

/*
 * The worker's TX path, as the worker will run it, on the real MPSC ring with a
 * fake clock:
 *
 *   drain:   rtudp_mpsc_next from the worker's own cursor (ahead of head, which
 *            moves only on release) -> rtudp_inflight_push + rtudp_timerq_push
 *   send:    rtudp_timerq_pop_due(now) -> "send" -> rtudp_inflight_done_at
 *   release: rtudp_mpsc_release(ring, rtudp_inflight_release_point()), or up to
 *            the cursor when nothing is in flight (frees trailing padding)
 *
 * Every payload starts with its key (producer << 32 | seq) and is fill(key)
 * after that; the rest of the record must match what the key says.  Checked:
 * each record leaves exactly once; what leaves is always the earliest (deadline,
 * ring order) of what the worker has taken in; the payload is intact when it
 * leaves (its ring space was not freed and reused); head never passes an unsent
 * record and pending_bytes never drops below the bytes of the unsent ones.
 */

#define E2E_CAP 4096
#define E2E_MAX_LEN 200

struct e2e_ref { /* a taken, unsent record */
    int64_t at;
    uint64_t n; /* ring order: the worker's take count */
    uint64_t key;
    uint64_t pos;
    uint64_t span;
};

struct e2e_worker {
    struct rtudp_mpsc *m;
    struct rtudp_timerq q;
    struct rtudp_inflight f;
    uint64_t cursor;                  /* the worker's own: ahead of head */
    uint64_t taken, sent, total;
    struct e2e_ref ref[E2E_CAP / 16]; /* sorted by (at, n) */
    uint32_t rlen;
    uint64_t unsent_bytes;            /* ring bytes of taken, unsent records */
    uint8_t *sent_map;                /* per record: times sent */
    uint32_t per_producer;
    const int64_t *asked_at;          /* per record: the send_at_ns it was put with */
    const uint64_t *put_order;        /* keys in put order (single thread only), or NULL */
    uint64_t late_zero;               /* send_at 0 records seen */
};

static uint64_t e2e_key(uint32_t producer, uint32_t seq) { return (uint64_t)producer << 32 | seq; }

static uint64_t e2e_index(const struct e2e_worker *w, uint64_t key)
{
    return (key >> 32) * w->per_producer + (uint32_t)key;
}

static uint32_t e2e_len(uint64_t key)
{
    return 8 + (uint32_t)(splitmix64(&key) % (E2E_MAX_LEN - 8));
}

/* returns the payload length */
static uint32_t e2e_payload(uint8_t *buf, uint64_t key)
{
    uint32_t len = e2e_len(key);
    memcpy(buf, &key, 8);
    fill(buf + 8, len - 8, key);
    return len;
}

static bool e2e_payload_ok(const uint8_t *p, uint32_t len, uint64_t *key)
{
    if (len < 8)
        return false;
    memcpy(key, p, 8);
    return len == e2e_len(*key) && verify(p + 8, len - 8, *key);
}

static void e2e_init(struct e2e_worker *w, struct rtudp_mpsc *m, uint32_t producers,
                     uint32_t per_producer, const int64_t *asked_at, const uint64_t *put_order)
{
    memset(w, 0, sizeof *w);
    w->m = m;
    /* a record takes at least 16 ring bytes: capacity / 16 entries never fill */
    CHECK_EQ(rtudp_timerq_init(&w->q, (uint32_t)(m->capacity / 16)), RTUDP_OK);
    CHECK_EQ(rtudp_inflight_init(&w->f, (uint32_t)(m->capacity / 16)), RTUDP_OK);
    /* the worker starts at the ring's head (a restarted one re-reads what was not
     * released) */
    w->cursor = m->ring->head;
    rtudp_inflight_reset(&w->f, w->cursor);
    w->per_producer = per_producer;
    w->total = (uint64_t)producers * per_producer;
    w->sent_map = calloc(w->total, 1);
    CHECK(w->sent_map != NULL);
    w->asked_at = asked_at;
    w->put_order = put_order;
}

static void e2e_free(struct e2e_worker *w)
{
    rtudp_timerq_free(&w->q);
    rtudp_inflight_free(&w->f);
    free(w->sent_map);
}

/* take every committed record into the timer queue; returns how many */
static uint64_t e2e_drain(struct e2e_worker *w, int64_t now)
{
    uint64_t n = 0;
    for (;;) {
        struct rtudp_tx_record *rec;
        uint32_t len;
        int rc = rtudp_mpsc_next(w->m, &w->cursor, &rec, &len);
        if (rc == RTUDP_EMPTY)
            return n;
        CHECK_EQ(rc, RTUDP_OK);
        uint64_t span = align8(sizeof *rec + len);
        uint64_t pos = w->cursor - span;
        CHECK((uint8_t *)rec == w->m->data + (pos & w->m->mask));
        const uint8_t *payload = (const uint8_t *)(rec + 1);
        uint64_t key;
        CHECK(e2e_payload_ok(payload, len, &key));
        uint64_t idx = e2e_index(w, key);
        CHECK(idx < w->total);
        CHECK_EQ(rec->send_at_ns, w->asked_at[idx]);
        CHECK_EQ(rec->flags, (uint16_t)key);
        if (w->put_order)
            CHECK_EQ(key, w->put_order[w->taken]);
        uint32_t slot;
        CHECK_EQ(rtudp_inflight_push(&w->f, pos, w->cursor, &slot), RTUDP_OK);
        /* 0 means now: the worker stamps its own now, so lateness and the order
         * among late packets mean something */
        int64_t at = rec->send_at_ns;
        if (at == 0) {
            at = now;
            w->late_zero++;
        }
        struct rtudp_timer t = {.send_at_ns = at, .asked_ns = at, .slot = slot, .ring_pos = pos,
                                .payload = payload, .len = len, .flags = rec->flags};
        CHECK_EQ(rtudp_timerq_push(&w->q, &t), RTUDP_OK);
        /* the reference, sorted by (at, ring order) */
        CHECK(w->rlen < sizeof w->ref / sizeof w->ref[0]);
        uint32_t i = w->rlen++;
        while (i > 0 && w->ref[i - 1].at > at) { /* n only grows: ties stay behind */
            w->ref[i] = w->ref[i - 1];
            i--;
        }
        w->ref[i] = (struct e2e_ref){at, w->taken, key, pos, span};
        w->taken++;
        w->unsent_bytes += span;
        n++;
    }
}

/* send what is due at now, up to max; returns how many */
static uint32_t e2e_send(struct e2e_worker *w, int64_t now, uint32_t max)
{
    struct rtudp_timer out[32];
    if (max > 32)
        max = 32;
    uint32_t n = rtudp_timerq_pop_due(&w->q, now, out, max);
    for (uint32_t i = 0; i < n; i++) {
        const struct e2e_ref *r = &w->ref[i];
        CHECK_EQ(out[i].send_at_ns, r->at);
        CHECK_EQ(out[i].ring_pos, r->pos);
        CHECK(out[i].send_at_ns <= now);
        /* the payload is still intact in the ring: its space was not freed */
        uint64_t key;
        CHECK(e2e_payload_ok(out[i].payload, out[i].len, &key));
        CHECK_EQ(key, r->key);
        CHECK_EQ(out[i].flags, (uint16_t)key);
        uint8_t *times = &w->sent_map[e2e_index(w, key)];
        CHECK_EQ(*times, 0);
        *times = 1;
        CHECK_EQ(rtudp_inflight_done_at(&w->f, out[i].slot, out[i].ring_pos), RTUDP_OK);
        w->unsent_bytes -= r->span;
    }
    memmove(w->ref, w->ref + n, (w->rlen - n) * sizeof w->ref[0]);
    w->rlen -= n;
    w->sent += n;
    if (n < max) /* nothing due is left behind */
        CHECK(rtudp_timerq_next_deadline(&w->q) > now);
    CHECK_EQ(rtudp_timerq_len(&w->q), w->rlen);
    return n;
}

/* free the ring up to the first unsent record */
static void e2e_release(struct e2e_worker *w)
{
    uint64_t rp = rtudp_inflight_release_point(&w->f);
    if (rtudp_inflight_empty(&w->f)) {
        /* everything taken is sent: also free padding the cursor skipped */
        CHECK((int64_t)(w->cursor - rp) >= 0);
        rp = w->cursor;
    }
    for (uint32_t i = 0; i < w->rlen; i++)
        CHECK((int64_t)(w->ref[i].pos - rp) >= 0); /* never past an unsent record */
    uint64_t head = w->m->ring->head;
    CHECK((int64_t)(rp - head) >= 0);
    rtudp_mpsc_release(w->m, rp);
    CHECK_EQ(w->m->ring->head, rp);
    CHECK(rtudp_mpsc_pending_bytes(w->m) >= w->unsent_bytes);
    /* inflight holds exactly the records from the oldest unsent one on */
    uint64_t oldest = w->taken;
    for (uint32_t i = 0; i < w->rlen; i++)
        if (w->ref[i].n < oldest)
            oldest = w->ref[i].n;
    CHECK_EQ(rtudp_inflight_len(&w->f), w->taken - oldest);
}

static void e2e_check_all_sent(struct e2e_worker *w)
{
    CHECK_EQ(w->sent, w->total);
    CHECK_EQ(w->taken, w->total);
    for (uint64_t i = 0; i < w->total; i++)
        CHECK_EQ(w->sent_map[i], 1);
    e2e_release(w);
    CHECK(rtudp_inflight_empty(&w->f));
    CHECK_EQ(rtudp_timerq_len(&w->q), 0);
    CHECK_EQ(w->m->ring->head, w->m->ring->tail);
    CHECK_EQ(rtudp_mpsc_pending_bytes(w->m), 0);
    CHECK_EQ(w->f.misuse, 0);
}

/* a send time around now: mostly ahead, some late, some 0 ("now") */
static int64_t e2e_pick_at(uint64_t *seed, int64_t now)
{
    if (rnd(seed, 10) == 0)
        return 0;
    return now - 500 + (int64_t)rnd(seed, 4500);
}

/* One thread: producers interleave at random, so ring order is known exactly. */
static void test_e2e_ring_model(void)
{
    enum { P = 3, PER = 30000 };
    struct rtudp_mpsc m = mpsc_new(E2E_CAP);
    static int64_t asked_at[P * PER];
    static uint64_t put_order[P * PER];
    static struct e2e_worker w;
    e2e_init(&w, &m, P, PER, asked_at, put_order);
    uint32_t seq[P] = {0};
    uint64_t seed = 2024, puts = 0, fulls = 0, wrapped_pads = 0;
    int64_t now = 1000000000;
    uint8_t buf[E2E_MAX_LEN];
    uint64_t max_inflight = 0;
    while (w.sent < w.total) {
        /* producers */
        uint64_t k = rnd(&seed, 7);
        for (uint64_t j = 0; j < k && puts < w.total; j++) {
            uint32_t p = (uint32_t)rnd(&seed, P);
            while (seq[p] == PER)
                p = (p + 1) % P;
            uint64_t key = e2e_key(p, seq[p]);
            uint64_t idx = (uint64_t)p * PER + seq[p];
            asked_at[idx] = e2e_pick_at(&seed, now);
            uint32_t len = e2e_payload(buf, key);
            uint64_t tail = m.ring->tail;
            int rc = rtudp_mpsc_try_put(&m, buf, len, asked_at[idx], (uint16_t)key);
            if (rc == RTUDP_EFULL) {
                fulls++;
                /* back-pressure only when unsent records really fill the ring (the
                 * claim's own rule: the record, plus padding if it would wrap, against
                 * the space freed in whole lines) */
                uint64_t reusable = m.ring->head & ~(uint64_t)(RTUDP_CACHE_LINE - 1);
                uint64_t used = tail - reusable, need = align8(16 + len);
                uint64_t to_end = E2E_CAP - (tail & (E2E_CAP - 1));
                uint64_t span = need <= to_end ? need : to_end + need;
                CHECK(span > E2E_CAP - used);
                break;
            }
            CHECK_EQ(rc, RTUDP_OK);
            if (m.ring->tail - tail != align8(16 + len))
                wrapped_pads++;
            put_order[puts++] = key;
            seq[p]++;
        }
        /* the worker */
        if (rnd(&seed, 3))
            e2e_drain(&w, now);
        if (rtudp_inflight_len(&w.f) > max_inflight)
            max_inflight = rtudp_inflight_len(&w.f);
        now += (int64_t)rnd(&seed, 300);
        if (puts == w.total)
            now += 1000;
        if (rnd(&seed, 4))
            e2e_send(&w, now, 1 + (uint32_t)rnd(&seed, 24));
        if (rnd(&seed, 2))
            e2e_release(&w);
    }
    e2e_check_all_sent(&w);
    CHECK(fulls > 100);         /* back-pressure happened... */
    CHECK(wrapped_pads > 100);  /* ...and the ring wrapped with padding */
    CHECK(w.late_zero > 1000);
    CHECK(max_inflight > 20);
    e2e_free(&w);
    free(m.ring);
}

/* Real producer threads (blocking puts), the worker on this thread. */
struct e2e_producer {
    struct rtudp_mpsc *m;
    uint32_t id, per;
    int64_t *asked_at;
    _Atomic int64_t *now;
    int failed_rc;
};

static void *e2e_producer_main(void *arg)
{
    struct e2e_producer *p = arg;
    uint64_t seed = 555 + p->id;
    uint8_t buf[E2E_MAX_LEN];
    for (uint32_t s = 0; s < p->per; s++) {
        uint64_t key = e2e_key(p->id, s);
        int64_t at = e2e_pick_at(&seed, atomic_load(p->now));
        /* written before the commit, which publishes it to the worker */
        p->asked_at[(uint64_t)p->id * p->per + s] = at;
        uint32_t len = e2e_payload(buf, key);
        int rc = rtudp_mpsc_put(p->m, buf, len, at, (uint16_t)key, rtudp_now_ns() + 20000 * NS_PER_MS,
                                1000);
        if (rc != RTUDP_OK) {
            p->failed_rc = rc;
            return NULL;
        }
    }
    return NULL;
}

static void test_e2e_ring_threaded(void)
{
    enum { P = 3, PER = 20000 };
    struct rtudp_mpsc m = mpsc_new(E2E_CAP);
    static int64_t asked_at[P * PER];
    static struct e2e_worker w;
    static _Atomic int64_t now = 1000000000;
    e2e_init(&w, &m, P, PER, asked_at, NULL);
    struct e2e_producer prod[P];
    pthread_t th[P];
    for (uint32_t i = 0; i < P; i++) {
        prod[i] = (struct e2e_producer){&m, i, PER, asked_at, &now, 0};
        CHECK_EQ(pthread_create(&th[i], NULL, e2e_producer_main, &prod[i]), 0);
    }
    uint64_t seed = 31337, idle = 0;
    while (w.sent < w.total) {
        uint64_t got = e2e_drain(&w, atomic_load(&now));
        atomic_fetch_add(&now, (int64_t)rnd(&seed, 300));
        uint32_t sent = e2e_send(&w, atomic_load(&now), 1 + (uint32_t)rnd(&seed, 32));
        e2e_release(&w);
        if (got == 0 && sent == 0 && ++idle % 64 == 0)
            sched_yield();
        for (uint32_t i = 0; i < P; i++)
            CHECK_EQ(prod[i].failed_rc, 0);
    }
    for (uint32_t i = 0; i < P; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
        CHECK_EQ(prod[i].failed_rc, 0);
    }
    e2e_check_all_sent(&w);
    e2e_free(&w);
    free(m.ring);
}

/* ------------------------------------------------------------------ main */


static const struct test tests[] = {
    T(test_timerq_basic),
    T(test_timerq_model_random),
    T(test_timerq_model_stream),
    T(test_timerq_stream_longer_than_the_fifo),
    T(test_timerq_grow_keeps_every_timer),
    T(test_timerq_pop_due_bounds),
    T(test_timerq_remove_channel),
    T(test_timerq_remove_channels_at_once),
    T(test_inflight_basic),
    T(test_inflight_spare_taken_once_by_its_capacity),
    T(test_inflight_model_random),
    T(test_inflight_wrap_pinned),
    T(test_e2e_ring_model),
    T(test_e2e_ring_threaded),
};

HARNESS_MAIN(tests)
