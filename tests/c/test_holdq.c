/*
 * test_holdq.c - unit tests for the impairment's bounded hold queue
 * (csrc/worker/holdq.c): due order, ties in arrival order, bounded memory with counted
 * refusals, wrap-around with out-of-order releases, and a seeded random run checked
 * against a model; and how impair_apply.c uses it: a kind's sends held (bytes and
 * destination kept) or paced by the rate, received datagrams held from their kernel
 * stamp, a full hold counted.  Run under ASan/UBSan too (make SAN=1): every byte is checked.
 *
 * All randomness comes from fixed seeds: a failure reproduces.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holdq.h"
#include "impair.h"
#include "ring.h"
#include "worker.h"

#define align8 harness_align8 /* shm_access.h (worker.h) has its own */
#include "harness.h"
#undef align8

/* payload byte i of datagram `id` */
static uint8_t byte_of(uint32_t id, uint32_t i)
{
    return (uint8_t)(id * 31u + i * 7u + 1u);
}

static void fill_id(uint8_t *p, uint32_t id, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = byte_of(id, i);
}

static int intact(const struct rtudp_hold_item *it, uint32_t id, uint32_t len)
{
    if (it->len != len || it->meta_len != sizeof id || memcmp(it->meta, &id, sizeof id) != 0)
        return 0;
    for (uint32_t i = 0; i < len; i++)
        if (it->data[i] != byte_of(id, i))
            return 0;
    return 1;
}

static void test_due_order_and_ties(void)
{
    struct rtudp_holdq q;
    CHECK(rtudp_holdq_init(&q, 1 << 16) == RTUDP_OK);
    CHECK(rtudp_holdq_next_due(&q) == INT64_MAX);
    int64_t due[] = {50, 10, 30, 10, 40, 10};
    uint8_t buf[100];
    for (uint32_t id = 0; id < 6; id++) {
        fill_id(buf, id, 20 + id);
        CHECK(rtudp_holdq_put(&q, due[id], &id, sizeof id, 0, buf, 20 + id) == RTUDP_OK);
    }
    CHECK(q.n == 6);
    CHECK(rtudp_holdq_next_due(&q) == 10);
    struct rtudp_hold_item it;
    CHECK(!rtudp_holdq_peek_due(&q, 9, &it)); /* nothing due before 10 */
    /* 10, 10, 10 in arrival order (1, 3, 5), then 30, 40, 50 */
    uint32_t want[] = {1, 3, 5, 2, 4, 0};
    for (int k = 0; k < 6; k++) {
        CHECK(rtudp_holdq_peek_due(&q, 100, &it));
        CHECK(it.due_ns == due[want[k]]);
        CHECK(intact(&it, want[k], 20 + want[k]));
        rtudp_holdq_pop(&q);
    }
    CHECK(q.n == 0 && !rtudp_holdq_peek_due(&q, INT64_MAX, &it));
    rtudp_holdq_pop(&q); /* empty: nothing happens */
    rtudp_holdq_free(&q);
}

static void test_room_before_data(void)
{
    struct rtudp_holdq q;
    CHECK(rtudp_holdq_init(&q, 8192) == RTUDP_OK);
    uint8_t buf[64];
    uint32_t id = 9;
    fill_id(buf, id, 64);
    CHECK(rtudp_holdq_put(&q, 1, &id, sizeof id, 56, buf, 64) == RTUDP_OK);
    struct rtudp_hold_item it;
    CHECK(rtudp_holdq_peek_due(&q, 1, &it));
    CHECK(((uintptr_t)it.data & 7) == 0);
    memset(it.data - 56, 0xEE, 56); /* the room is ours to write (a record's meta) */
    CHECK(intact(&it, id, 64));
    rtudp_holdq_free(&q);
}

static void test_full_is_refused_not_overwritten(void)
{
    struct rtudp_holdq q;
    CHECK(rtudp_holdq_init(&q, 4096) == RTUDP_OK);
    uint8_t buf[1000];
    uint32_t in = 0, refused = 0;
    for (uint32_t id = 0; id < 20; id++) {
        fill_id(buf, id, sizeof buf);
        if (rtudp_holdq_put(&q, 100 + id, &id, sizeof id, 0, buf, sizeof buf) == RTUDP_OK)
            in++;
        else
            refused++;
    }
    CHECK(in >= 3 && in <= 4 && refused == 20 - in);
    /* bigger than the whole queue: refused */
    uint8_t big[5000] = {0};
    CHECK(rtudp_holdq_put(&q, 1, NULL, 0, 0, big, sizeof big) == RTUDP_EFULL);
    struct rtudp_hold_item it;
    for (uint32_t id = 0; id < in; id++) {
        CHECK(rtudp_holdq_peek_due(&q, INT64_MAX, &it));
        CHECK(intact(&it, id, sizeof buf));
        rtudp_holdq_pop(&q);
    }
    /* all room back once emptied */
    uint32_t id = 77;
    fill_id(buf, id, sizeof buf);
    for (uint32_t k = 0; k < in; k++)
        CHECK(rtudp_holdq_put(&q, 5, &id, sizeof id, 0, buf, sizeof buf) == RTUDP_OK);
    rtudp_holdq_free(&q);
    /* a queue with no memory refuses everything, and says nothing is due */
    struct rtudp_holdq none;
    memset(&none, 0, sizeof none);
    CHECK(rtudp_holdq_put(&none, 1, NULL, 0, 0, buf, 10) == RTUDP_EFULL);
    CHECK(rtudp_holdq_next_due(&none) == INT64_MAX);
    CHECK(rtudp_holdq_init(&none, 1ull << 40) == RTUDP_EINVAL);
    CHECK(rtudp_holdq_put(&none, 1, NULL, 0, 0, buf, 10) == RTUDP_EFULL);
    rtudp_holdq_free(&none);
}

/* A seeded run against a model: puts with jittered due times (so releases come out of
 * order and the ring wraps with chunks still held), pops of what is due; every datagram
 * put comes out once, intact, in (due, arrival) order, and every refusal is because
 * the bytes held really were near the size. */
static void test_random_against_model(void)
{
    enum { MAXN = 4096 };
    struct rtudp_holdq q;
    CHECK(rtudp_holdq_init(&q, 65536) == RTUDP_OK);
    static int64_t due_of[200000];
    static uint8_t out[200000];
    uint64_t rng = 12345;
    uint8_t buf[1500];
    int64_t now = 0, last_due = INT64_MIN;
    uint32_t last_id = 0, next_id = 0, puts = 0, refusals = 0, pops = 0;
    uint64_t held_bytes = 0;
    for (int step = 0; step < 100000; step++) {
        now += 1 + (int64_t)(rtudp_splitmix64(&rng) % 20);
        uint32_t burst = (uint32_t)(rtudp_splitmix64(&rng) % 4);
        for (uint32_t b = 0; b < burst; b++) {
            uint32_t id = next_id++;
            uint32_t len = (uint32_t)(rtudp_splitmix64(&rng) % 1400);
            int64_t d = now + 200 + (int64_t)(rtudp_splitmix64(&rng) % 300); /* jitter */
            due_of[id] = d;
            fill_id(buf, id, len);
            if (rtudp_holdq_put(&q, d, &id, sizeof id, 56, buf, len) == RTUDP_OK) {
                puts++;
                held_bytes += len;
            } else {
                refusals++;
                out[id] = 2; /* never put: must never come out */
                /* refused only when full: what is in use (held, or released out of
                 * order behind a held one), this chunk, and the end's padding (less
                 * than the largest chunk) exceed the size */
                CHECK(held_bytes <= q.tail - q.head);
                CHECK(q.tail - q.head + (len + 200) + 1600 > q.bytes);
            }
        }
        struct rtudp_hold_item it;
        int64_t prev_due = INT64_MIN;
        while (rtudp_holdq_peek_due(&q, now, &it)) {
            uint32_t id;
            CHECK(it.meta_len == sizeof id);
            memcpy(&id, it.meta, sizeof id);
            CHECK(id < next_id && out[id] == 0);
            CHECK(it.due_ns == due_of[id] && it.due_ns <= now && it.due_ns >= prev_due);
            if (it.due_ns == last_due)
                CHECK(id > last_id); /* ties in arrival order */
            CHECK(intact(&it, id, it.len));
            out[id] = 1;
            prev_due = last_due = it.due_ns;
            last_id = id;
            held_bytes -= it.len;
            rtudp_holdq_pop(&q);
            pops++;
        }
        CHECK(q.n <= MAXN);
    }
    /* the rest */
    struct rtudp_hold_item it;
    while (rtudp_holdq_peek_due(&q, INT64_MAX, &it)) {
        uint32_t id;
        memcpy(&id, it.meta, sizeof id);
        CHECK(out[id] == 0 && intact(&it, id, it.len));
        out[id] = 1;
        rtudp_holdq_pop(&q);
        pops++;
    }
    CHECK(pops == puts && puts + refusals == next_id);
    printf("  %u put, %u refused\n", puts, refusals);
    CHECK(refusals > 0 && puts > 10 * refusals); /* the run did fill it, now and then */
    for (uint32_t id = 0; id < next_id; id++)
        CHECK(out[id] == 1 || out[id] == 2);
    rtudp_holdq_clear(&q);
    CHECK(q.n == 0 && rtudp_holdq_next_due(&q) == INT64_MAX);
    rtudp_holdq_free(&q);
}

/* ---------------------------------------------------- the impairment's use of it */

static int64_t no_timer(struct rtudp_worker *w, struct rtudp_chan *c, int64_t now)
{
    (void)w;
    (void)c;
    (void)now;
    return RTUDP_PROTO_NEVER;
}

static const struct rtudp_proto fake_kind = {.name = "fake", .tx_timer = no_timer};

/* a channel as impair_apply.c sees it: a block with `cfg` published, its holds made */
static struct rtudp_chan *impaired_chan(const struct rtudp_impair_cfg *cfg)
{
    struct rtudp_chan *c = calloc(1, sizeof *c);
    CHECK(c != NULL);
    c->block = calloc(1, sizeof *c->block);
    CHECK(c->block != NULL);
    c->proto = &fake_kind;
    c->recvs = 1;
    c->rx.block = c->block;
    rtudp_impair_init(&c->impair);
    rtudp_impair_init(&c->rx.impair);
    CHECK(rtudp_impair_publish(c->block, cfg, 0) == RTUDP_OK);
    CHECK(rtudp_impair_holds_init(c) == RTUDP_OK);
    return c;
}

static void drop_chan(struct rtudp_chan *c)
{
    rtudp_impair_holds_free(c);
    free(c->block);
    free(c);
}

static void test_kind_sends_are_held_and_keep_their_bytes(void)
{
    struct rtudp_impair_cfg cfg = {.where = RTUDP_IMPAIR_TX, .delay_ns = 30000000,
                                   .duplicate = RTUDP_IMPAIR_ONE, .seed = 7};
    struct rtudp_chan *c = impaired_chan(&cfg);
    CHECK(c->tx_hold.bytes >= (4u << 20)); /* a delay: the fixed cap at least */
    uint8_t pkt[300];
    fill_id(pkt, 5, sizeof pkt);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(9)};
    const void *data = pkt;
    int64_t now = 1000000000;
    /* duplicated and delayed: both copies held, none to send now */
    CHECK(rtudp_impair_tx_now(c, &data, sizeof pkt, now, (struct sockaddr *)&dst, sizeof dst,
                              now) == 0);
    CHECK(c->tx_hold.n == 2 && c->block->impair_tx.delayed == 1);
    CHECK(c->block->impair_tx.duplicated == 1 && c->block->impair_tx.hold_dropped == 0);
    struct rtudp_hold_item it;
    CHECK(!rtudp_holdq_peek_due(&c->tx_hold, now + 30000000 - 1, &it));
    for (int k = 0; k < 2; k++) {
        CHECK(rtudp_holdq_peek_due(&c->tx_hold, now + 30000000, &it));
        struct rtudp_held_send m;
        CHECK(it.meta_len == RTUDP_HELD_SEND_META(sizeof dst) && it.meta_len <= sizeof m);
        memcpy(&m, it.meta, it.meta_len);
        CHECK(m.dst_len == sizeof dst && memcmp(&m.dst, &dst, sizeof dst) == 0);
        CHECK(it.len == sizeof pkt && memcmp(it.data, pkt, sizeof pkt) == 0);
        rtudp_holdq_pop(&c->tx_hold);
    }
    drop_chan(c);
}

static void test_kind_sends_wait_for_the_rate(void)
{
    /* 8 Mbit/s: a 1000-byte datagram takes 1 ms; no delay, so the first goes at once */
    struct rtudp_impair_cfg cfg = {.where = RTUDP_IMPAIR_TX, .rate_bps = 8000000, .seed = 1};
    struct rtudp_chan *c = impaired_chan(&cfg);
    uint8_t pkt[1000] = {0};
    int64_t now = 5000000000;
    uint32_t go = 0;
    for (int k = 0; k < 5; k++) {
        const void *data = pkt;
        go += rtudp_impair_tx_now(c, &data, sizeof pkt, now, NULL, 0, now);
    }
    CHECK(go == 1 && c->tx_hold.n == 4 && c->block->impair_tx.rate_held == 4);
    struct rtudp_hold_item it;
    for (int k = 1; k < 5; k++) {
        CHECK(rtudp_holdq_peek_due(&c->tx_hold, INT64_MAX, &it));
        CHECK(it.due_ns == now + k * 1000000LL);
        CHECK(it.meta_len == RTUDP_HELD_SEND_META(0));
        rtudp_holdq_pop(&c->tx_hold);
    }
    drop_chan(c);
}

static void test_received_datagrams_are_held_from_their_stamp(void)
{
    struct rtudp_impair_cfg cfg = {.where = RTUDP_IMPAIR_RX, .delay_ns = 20000000, .seed = 3};
    struct rtudp_chan *c = impaired_chan(&cfg);
    CHECK(rtudp_impair_refresh(&c->rx.impair, &c->block->impair, RTUDP_IMPAIR_RX));
    CHECK(c->tx_hold.bytes < (1u << 20)); /* nothing held on the way out: the small one */
    uint8_t bufs[3][64];
    struct rtudp_rx_pkt pkts[3], out[6];
    for (int i = 0; i < 3; i++) {
        fill_id(bufs[i], (uint32_t)i, 64);
        memset(&pkts[i], 0, sizeof pkts[i]);
        pkts[i].buf = bufs[i];
        pkts[i].len = pkts[i].wire_len = 64;
        pkts[i].rx_ns = 7000 + i;
    }
    int64_t now = 7100;
    CHECK(rtudp_impair_rx(&c->rx, pkts, 3, out, 6, now) == 0);
    CHECK(c->rx.hold.n == 3 && c->block->impair_rx.delayed == 3);
    struct rtudp_hold_item it;
    for (uint32_t i = 0; i < 3; i++) {
        CHECK(rtudp_holdq_peek_due(&c->rx.hold, INT64_MAX, &it));
        CHECK(it.due_ns == 7000 + (int64_t)i + 20000000);
        struct rtudp_rx_pkt p;
        CHECK(it.meta_len == sizeof p);
        memcpy(&p, it.meta, sizeof p);
        CHECK(p.rx_ns == 7000 + (int64_t)i && p.len == 64);
        CHECK(intact(&(struct rtudp_hold_item){.meta = &i, .meta_len = sizeof i, .len = it.len,
                                               .data = it.data},
                     i, 64));
        memset(it.data - RTUDP_RX_META_ROOM, 0, RTUDP_RX_META_ROOM); /* the kind's meta */
        rtudp_holdq_pop(&c->rx.hold);
    }
    /* a hold too small for what is held: the rest dropped and counted, never more */
    rtudp_holdq_free(&c->rx.hold);
    CHECK(rtudp_holdq_init(&c->rx.hold, 4096) == RTUDP_OK);
    uint8_t big[1000] = {0};
    uint32_t held = 0;
    for (int k = 0; k < 20; k++) {
        struct rtudp_rx_pkt p = {.buf = big, .len = sizeof big, .rx_ns = now};
        CHECK(rtudp_impair_rx(&c->rx, &p, 1, out, 6, now) == 0);
    }
    held = c->rx.hold.n;
    CHECK(held >= 2 && held < 20);
    CHECK(c->block->impair_rx.hold_dropped == 20 - held);
    drop_chan(c);
}

static const struct test tests[] = {
    T(test_due_order_and_ties),
    T(test_room_before_data),
    T(test_full_is_refused_not_overwritten),
    T(test_random_against_model),
    T(test_kind_sends_are_held_and_keep_their_bytes),
    T(test_kind_sends_wait_for_the_rate),
    T(test_received_datagrams_are_held_from_their_stamp),
};

HARNESS_MAIN(tests)
