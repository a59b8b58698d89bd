/*
 * test_segment.c - control and channel segments (csrc/segment.c): create,
 * validate, and reject every damaged field without reading out of bounds.
 * Segments live in malloc'd memory of exactly their size, so AddressSanitizer
 * reports any access past the end.
 */
#include "harness.h"
#include "segment.h"

static uint64_t rng_state = 0x5eed5eed;

static uint64_t next_random(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void *zeroed(uint64_t size)
{
    void *p = aligned_alloc(64, (size + 63) & ~(uint64_t)63);
    CHECK(p != NULL);
    memset(p, 0, size);
    return p;
}

static void test_control_roundtrip(void)
{
    uint64_t size = rtudp_control_segment_size();
    CHECK(size > sizeof(struct rtudp_control) + 2 * RTUDP_CONTROL_RING_CAPACITY);
    struct rtudp_control *c = zeroed(size);
    struct rtudp_check why;
    CHECK_EQ(rtudp_control_validate(c, size, &why), RTUDP_ECORRUPT); /* no magic yet */
    c->pool.n_workers = 2;
    CHECK_EQ(rtudp_control_init(c, size - 8, &why), RTUDP_EINVAL);
    CHECK_EQ(rtudp_control_init(c, size, &why), RTUDP_OK);
    CHECK_EQ(c->pool.max_channels, RTUDP_MAX_CHANNELS);
    CHECK_EQ(c->pool.horizon_ns, RTUDP_HORIZON_DEFAULT_NS); /* left 0: the default */
    CHECK_EQ(rtudp_control_validate(c, size, &why), RTUDP_OK);
    /* a deadline horizon outside 1 ns .. RTUDP_HORIZON_MAX_NS is a corrupt segment */
    int64_t bad_horizons[] = {0, -1, RTUDP_HORIZON_MAX_NS + 1, INT64_MAX};
    for (size_t i = 0; i < sizeof bad_horizons / sizeof bad_horizons[0]; i++) {
        c->pool.horizon_ns = bad_horizons[i];
        CHECK_EQ(rtudp_control_validate(c, size, &why), RTUDP_ECORRUPT);
        CHECK(strstr(why.msg, "deadline horizon") != NULL);
    }
    c->pool.horizon_ns = RTUDP_HORIZON_MAX_NS;
    CHECK_EQ(rtudp_control_validate(c, size, &why), RTUDP_OK);
    /* the command and reply rings: in order, aligned, inside, usable */
    void *cmd, *reply;
    uint64_t cmd_avail, reply_avail;
    CHECK_EQ(rtudp_control_rings(c, size, &cmd, &cmd_avail, &reply, &reply_avail, &why), RTUDP_OK);
    CHECK((uint8_t *)cmd >= (uint8_t *)(c + 1) && (uint8_t *)cmd + cmd_avail == (uint8_t *)reply);
    CHECK((uint8_t *)reply + reply_avail == (uint8_t *)c + size);
    struct rtudp_mpsc m;
    CHECK_EQ(rtudp_mpsc_attach(&m, cmd, cmd_avail, &why), RTUDP_OK);
    CHECK_EQ(m.capacity, RTUDP_CONTROL_RING_CAPACITY);
    CHECK_EQ(rtudp_mpsc_try_put(&m, "open", 4, 0, 0), RTUDP_OK);
    uint64_t saved = c->header.ring_offset[1];
    c->header.ring_offset[1] = c->header.ring_offset[0]; /* overlapping rings */
    CHECK_EQ(rtudp_control_rings(c, size, &cmd, &cmd_avail, &reply, &reply_avail, &why),
             RTUDP_ECORRUPT);
    CHECK(strstr(why.msg, "not before") != NULL);
    c->header.ring_offset[1] = size; /* outside */
    CHECK_EQ(rtudp_control_rings(c, size, &cmd, &cmd_avail, &reply, &reply_avail, &why),
             RTUDP_ECORRUPT);
    CHECK(strstr(why.msg, "reply ring offset") != NULL);
    c->header.ring_offset[1] = saved;
    c->pool.n_workers = RTUDP_MAX_WORKERS + 1;
    CHECK_EQ(rtudp_control_validate(c, size, &why), RTUDP_ECORRUPT);
    CHECK(strstr(why.msg, "65 workers") != NULL);
    c->pool.n_workers = 1;
    c->header.kind = RTUDP_SEG_CHANNEL;
    CHECK_EQ(rtudp_control_validate(c, size, &why), RTUDP_ECORRUPT);
    CHECK(strstr(why.msg, "segment kind 3") != NULL);
    free(c);
}

static void *new_channel(uint64_t tx, uint64_t rx, uint64_t *size)
{
    *size = rtudp_channel_segment_size(tx, rx, 0);
    CHECK(*size > 0);
    void *base = zeroed(*size);
    struct rtudp_check why;
    CHECK_EQ(rtudp_channel_segment_init(base, *size, tx, rx, 0, &why), RTUDP_OK);
    return base;
}

static void test_channel_roundtrip(void)
{
    CHECK_EQ(rtudp_channel_segment_size(1000, 4096, 0), 0);
    CHECK_EQ(rtudp_channel_segment_size(4096, 512, 0), 0);
    uint64_t size;
    void *base = new_channel(1 << 16, 1 << 17, &size);
    struct rtudp_channel_block *blk;
    void *tx, *rx;
    uint64_t tx_avail, rx_avail;
    struct rtudp_check why;
    CHECK_EQ(rtudp_channel_segment_validate(base, size, &blk, &tx, &tx_avail, &rx, &rx_avail, &why),
             RTUDP_OK);
    CHECK((uint8_t *)blk == (uint8_t *)base + sizeof(struct rtudp_segment_header));
    CHECK((uint8_t *)tx > (uint8_t *)blk && (uint8_t *)rx > (uint8_t *)tx);
    /* the RX ring ends where the tap rings begin; they end the segment */
    void *ttx, *trx;
    uint64_t tta, tra;
    CHECK_EQ(rtudp_channel_tap_rings(base, size, &ttx, &tta, &trx, &tra, &why), RTUDP_OK);
    CHECK((uint8_t *)rx + rx_avail == (uint8_t *)ttx && (uint8_t *)ttx + tta == (uint8_t *)trx);
    CHECK((uint8_t *)trx + tra == (uint8_t *)base + size);
    CHECK_EQ(rtudp_tap_capacity(1 << 16), 1 << 17);
    CHECK_EQ(rtudp_tap_capacity(1 << 22), RTUDP_TAP_RING_MAX);
    /* the rings work where validate says they are */
    struct rtudp_mpsc m;
    struct rtudp_bcast b;
    CHECK_EQ(rtudp_mpsc_attach(&m, tx, tx_avail, &why), RTUDP_OK);
    CHECK_EQ(rtudp_bcast_attach(&b, rx, rx_avail, &why), RTUDP_OK);
    CHECK_EQ(m.capacity, 1 << 16);
    CHECK_EQ(b.capacity, 1 << 17);
    CHECK_EQ(rtudp_mpsc_try_put(&m, "hello", 5, 0, 0), RTUDP_OK);
    CHECK_EQ(rtudp_bcast_write(&b, "world", 5, 0, 0), RTUDP_OK);
    /* a wrong size is refused */
    CHECK_EQ(rtudp_channel_segment_validate(base, size - 64, &blk, &tx, &tx_avail, &rx, &rx_avail,
                                            &why),
             RTUDP_ECORRUPT);
    free(base);
}

static void test_channel_damaged_fields(void)
{
    uint64_t size;
    void *base = new_channel(4096, 8192, &size);
    struct rtudp_segment_header *h = base;
    struct rtudp_channel_block *blk;
    void *tx, *rx;
    uint64_t ta, ra;
    struct rtudp_check why;
    const uint64_t good0 = h->ring_offset[0], good1 = h->ring_offset[1];
    const uint64_t bad[] = {0, 8, 64, good0 + 8, size, size - 64, UINT64_MAX - 63, good1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h->ring_offset[0] = bad[i];
        CHECK_EQ(rtudp_channel_segment_validate(base, size, &blk, &tx, &ta, &rx, &ra, &why),
                 RTUDP_ECORRUPT);
    }
    h->ring_offset[0] = good0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h->ring_offset[1] = bad[i] == good1 ? good0 : bad[i];
        CHECK_EQ(rtudp_channel_segment_validate(base, size, &blk, &tx, &ta, &rx, &ra, &why),
                 RTUDP_ECORRUPT);
    }
    h->ring_offset[1] = good1;
    h->ring_count = 1;
    CHECK_EQ(rtudp_channel_segment_validate(base, size, &blk, &tx, &ta, &rx, &ra, &why),
             RTUDP_ECORRUPT);
    CHECK(strstr(why.msg, "1 rings") != NULL);
    h->ring_count = 4;
    CHECK_EQ(rtudp_channel_segment_validate(base, size, &blk, &tx, &ta, &rx, &ra, &why), RTUDP_OK);
    /* the tap rings: after the RX ring, in order, inside the segment */
    void *ttx, *trx;
    uint64_t tta, tra;
    CHECK_EQ(rtudp_channel_tap_rings(base, size, &ttx, &tta, &trx, &tra, &why), RTUDP_OK);
    CHECK(ttx == (uint8_t *)base + h->ring_offset[2] && trx == (uint8_t *)base + h->ring_offset[3]);
    CHECK_EQ(tra, size - h->ring_offset[3]);
    const uint64_t good2 = h->ring_offset[2], good3 = h->ring_offset[3];
    const uint64_t bad_tap[] = {0, good1, good0, good3, size, size - 64, UINT64_MAX - 63, good2 + 8};
    for (size_t i = 0; i < sizeof bad_tap / sizeof bad_tap[0]; i++) {
        h->ring_offset[3] = bad_tap[i] == good3 ? good2 : bad_tap[i];
        CHECK_EQ(rtudp_channel_tap_rings(base, size, &ttx, &tta, &trx, &tra, &why),
                 RTUDP_ECORRUPT);
    }
    h->ring_offset[3] = good3;
    for (size_t i = 0; i < sizeof bad_tap / sizeof bad_tap[0]; i++) {
        h->ring_offset[2] = bad_tap[i];
        int rc = rtudp_channel_tap_rings(base, size, &ttx, &tta, &trx, &tra, &why);
        CHECK(rc == RTUDP_ECORRUPT);
    }
    h->ring_offset[2] = good2;
    CHECK_EQ(rtudp_channel_tap_rings(base, size, &ttx, &tta, &trx, &tra, &why), RTUDP_OK);
    free(base);
}

/* random bytes over the header and ring descriptors: an error, never a crash */
static void test_channel_fuzz(void)
{
    uint64_t size;
    void *good = new_channel(4096, 4096, &size);
    void *base = zeroed(size);
    const struct rtudp_segment_header *h = good;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(base, good, size);
        int flips = 1 + (int)(next_random() % 8);
        for (int f = 0; f < flips; f++) {
            /* aim at the header and the two ring descriptors, where the geometry is */
            uint64_t region = next_random() % 3;
            uint64_t start = region == 0 ? 0 : h->ring_offset[region - 1];
            uint64_t span = region == 0 ? sizeof *h : 64;
            ((uint8_t *)base)[start + next_random() % span] = (uint8_t)next_random();
        }
        struct rtudp_channel_block *blk;
        void *tx, *rx;
        uint64_t ta, ra;
        struct rtudp_check why;
        int rc = rtudp_channel_segment_validate(base, size, &blk, &tx, &ta, &rx, &ra, &why);
        CHECK(rc == RTUDP_OK || rc == RTUDP_ECORRUPT);
        if (rc == RTUDP_OK) { /* whatever passed must be usable within the mapping */
            CHECK((uint8_t *)rx + ra <= (uint8_t *)base + size);
            CHECK((uint8_t *)tx + ta <= (uint8_t *)rx);
        }
    }
    free(base);
    free(good);
}

/* a kind area sits between the block and the TX ring, whole lines, and is bounded */
static void test_channel_kind_area(void)
{
    CHECK_EQ(rtudp_channel_segment_size(4096, 4096, RTUDP_KIND_AREA_MAX + 1), 0);
    uint64_t plain = rtudp_channel_segment_size(4096, 4096, 0);
    uint64_t size = rtudp_channel_segment_size(4096, 4096, 100);
    CHECK_EQ(size, plain + 128);
    void *base = zeroed(size);
    struct rtudp_check why;
    CHECK_EQ(rtudp_channel_segment_init(base, size, 4096, 4096, 100, &why), RTUDP_OK);
    void *area, *tx, *rx;
    uint64_t area_bytes, ta, ra;
    struct rtudp_channel_block *blk;
    CHECK_EQ(rtudp_channel_area(base, size, &area, &area_bytes, &why), RTUDP_OK);
    CHECK_EQ(area_bytes, 128);
    CHECK((uint8_t *)area >= (uint8_t *)base + sizeof(struct rtudp_segment_header) +
                                 sizeof(struct rtudp_channel_block));
    CHECK_EQ(((uintptr_t)area - (uintptr_t)base) % 64, 0);
    CHECK_EQ(rtudp_channel_segment_validate(base, size, &blk, &tx, &ta, &rx, &ra, &why), RTUDP_OK);
    CHECK((uint8_t *)area + area_bytes == (uint8_t *)tx);
    /* a TX ring moved into the block is refused, not read as an area */
    struct rtudp_segment_header *h = base;
    h->ring_offset[0] = 64;
    CHECK_EQ(rtudp_channel_area(base, size, &area, &area_bytes, &why), RTUDP_ECORRUPT);
    free(base);
    /* a kind without an area gets an empty one */
    base = zeroed(plain);
    CHECK_EQ(rtudp_channel_segment_init(base, plain, 4096, 4096, 0, &why), RTUDP_OK);
    CHECK_EQ(rtudp_channel_area(base, plain, &area, &area_bytes, &why), RTUDP_OK);
    CHECK_EQ(area_bytes, 0);
    free(base);
}

/* the rings' data of a new (zero-filled) channel segment is left unwritten by the
 * init, so opening a channel touches no page of it: a pattern put there first
 * survives, and the rings still work (a record through the TX ring) */
static void test_channel_init_leaves_ring_data_unwritten(void)
{
    uint64_t tx_cap = 8192, rx_cap = 4096;
    uint64_t size = rtudp_channel_segment_size(tx_cap, rx_cap, 0);
    uint8_t *base = zeroed(size);
    struct rtudp_check why;
    CHECK_EQ(rtudp_channel_segment_init(base, size, tx_cap, rx_cap, 0, &why), RTUDP_OK);
    const struct rtudp_segment_header *h = (const void *)base;
    uint64_t caps[4] = {tx_cap, rx_cap, rtudp_tap_capacity(tx_cap), rtudp_tap_capacity(rx_cap)};
    uint64_t feet[4] = {rtudp_mpsc_footprint(caps[0]), rtudp_bcast_footprint(caps[1]),
                        rtudp_bcast_footprint(caps[2]), rtudp_bcast_footprint(caps[3])};
    for (int i = 0; i < 4; i++) /* a pattern in each ring's data ... */
        memset(base + h->ring_offset[i] + feet[i] - caps[i], 0xAB, caps[i]);
    CHECK_EQ(rtudp_channel_segment_init(base, size, tx_cap, rx_cap, 0, &why), RTUDP_OK);
    for (int i = 0; i < 4; i++) { /* ... is still there after a second init */
        const uint8_t *data = base + h->ring_offset[i] + feet[i] - caps[i];
        int intact = 1;
        for (uint64_t k = 0; k < caps[i]; k++)
            intact &= data[k] == 0xAB;
        CHECK(intact);
    }
    free(base);
    /* on zero-filled memory the rings carry records */
    base = zeroed(size);
    CHECK_EQ(rtudp_channel_segment_init(base, size, tx_cap, rx_cap, 0, &why), RTUDP_OK);
    struct rtudp_channel_block *blk;
    void *tx, *rx;
    uint64_t ta, ra;
    CHECK_EQ(rtudp_channel_segment_validate(base, size, &blk, &tx, &ta, &rx, &ra, &why), RTUDP_OK);
    struct rtudp_mpsc m;
    CHECK_EQ(rtudp_mpsc_attach(&m, tx, ta, &why), RTUDP_OK);
    uint64_t pos;
    CHECK_EQ(rtudp_mpsc_claim(&m, 100, &pos), RTUDP_OK);
    CHECK(rtudp_mpsc_claim_payload(&m, pos) != NULL);
    free(base);
}

/* the tap rings' offsets, which a segment's creator leaves unallocated until a tap
 * attaches, are where the init puts them, the RX one running to the segment's end */
static void test_channel_tap_offsets(void)
{
    uint64_t caps[][3] = {{4096, 4096, 0}, {65536, 4096, 100}, {4096, 1u << 20, 64}};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        uint64_t size = rtudp_channel_segment_size(caps[i][0], caps[i][1], caps[i][2]);
        uint8_t *base = zeroed(size);
        struct rtudp_check why;
        CHECK_EQ(rtudp_channel_segment_init(base, size, caps[i][0], caps[i][1], caps[i][2], &why),
                 RTUDP_OK);
        const struct rtudp_segment_header *h = (const void *)base;
        uint64_t tx_tap = 0, rx_tap = 0;
        CHECK_EQ(rtudp_channel_tap_offsets(caps[i][0], caps[i][1], caps[i][2], &tx_tap, &rx_tap),
                 RTUDP_OK);
        CHECK_EQ(tx_tap, h->ring_offset[2]);
        CHECK_EQ(rx_tap, h->ring_offset[3]);
        CHECK_EQ(size - rx_tap, (rtudp_bcast_footprint(rtudp_tap_capacity(caps[i][1])) + 63) / 64 * 64);
        free(base);
    }
    uint64_t a = 7, b = 7;
    CHECK_EQ(rtudp_channel_tap_offsets(1000, 4096, 0, &a, &b), RTUDP_EINVAL);
    CHECK_EQ(rtudp_channel_tap_offsets(4096, 4096, RTUDP_KIND_AREA_MAX + 1, &a, &b), RTUDP_EINVAL);
    CHECK_EQ(a, 7);
    CHECK_EQ(b, 7);
}

static const struct test tests[] = {
    T(test_control_roundtrip),
    T(test_channel_kind_area),
    T(test_channel_roundtrip),
    T(test_channel_damaged_fields),
    T(test_channel_fuzz),
    T(test_channel_init_leaves_ring_data_unwritten),
    T(test_channel_tap_offsets),
};

HARNESS_MAIN(tests)
