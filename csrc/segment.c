/*
 * segment.c - whole segments (see segment.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getpid() */
#endif
#include "segment.h"
#include "shm_access.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SEG_HDR ((uint64_t)sizeof(struct rtudp_segment_header))

int rtudp_segment_check_header(const void *base, uint64_t size, uint32_t kind,
                               struct rtudp_check *why)
{
    if (!base)
        return rtudp_check_set(why, RTUDP_EINVAL, "segment is not mapped");
    if (size < SEG_HDR)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "segment is %llu bytes, smaller than its %llu-byte header",
                               (unsigned long long)size, (unsigned long long)SEG_HDR);
    const struct rtudp_segment_header *h = base;
    uint64_t magic = load_acquire(&h->magic);
    if (magic != RTUDP_SEG_MAGIC)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "bad magic 0x%016llx (expected 0x%016llx): not an rtudp segment, "
                               "or not initialised yet",
                               (unsigned long long)magic, (unsigned long long)RTUDP_SEG_MAGIC);
    if (h->layout_version != RTUDP_LAYOUT_VERSION)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "layout version %u, this build reads version %d",
                               h->layout_version, RTUDP_LAYOUT_VERSION);
    if (h->total_size != size)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "header says %llu bytes but the segment has %llu (truncated or resized)",
                               (unsigned long long)h->total_size, (unsigned long long)size);
    if (h->header_size != SEG_HDR)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "header size %llu, expected %llu",
                               (unsigned long long)h->header_size, (unsigned long long)SEG_HDR);
    if (h->kind != kind)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "segment kind %u, expected %u", h->kind, kind);
    return RTUDP_OK;
}

/* the fields every creator fills the same way; the magic is published last */
static void header_fill(void *base, uint64_t size, uint32_t kind, uint32_t ring_count)
{
    struct rtudp_segment_header *h = base;
    memset(base, 0, SEG_HDR);
    h->layout_version = RTUDP_LAYOUT_VERSION;
    h->kind = kind;
    h->total_size = size;
    h->header_size = SEG_HDR;
    h->creator_pid = (uint32_t)getpid();
    h->ring_count = ring_count;
    h->created_ns = rtudp_now_ns();
}

static void header_publish(void *base)
{
    store_release(&((struct rtudp_segment_header *)base)->magic, (uint64_t)RTUDP_SEG_MAGIC);
}


void *rtudp_map(int fd, uint64_t size, int writable)
{
    void *p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *rtudp_map_populate(int fd, uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

int rtudp_unmap(void *base, uint64_t size)
{
    return munmap(base, size) == 0 ? RTUDP_OK : RTUDP_ESYS;
}

uint64_t rtudp_ring_segment_size(uint32_t ring_kind, uint64_t capacity)
{
    if (!rtudp_ring_capacity_ok(capacity))
        return 0;
    if (ring_kind == RTUDP_RING_MPSC)
        return SEG_HDR + rtudp_mpsc_footprint(capacity);
    if (ring_kind == RTUDP_RING_BROADCAST)
        return SEG_HDR + rtudp_bcast_footprint(capacity);
    return 0;
}

int rtudp_ring_segment_init(void *base, uint64_t size, uint32_t ring_kind, uint64_t capacity,
                            struct rtudp_check *why)
{
    if (!rtudp_ring_capacity_ok(capacity))
        return rtudp_check_set(why, RTUDP_EINVAL,
                    "capacity %llu is not a power of two between %llu and %llu bytes",
                    (unsigned long long)capacity, (unsigned long long)RTUDP_RING_MIN_CAPACITY,
                    (unsigned long long)RTUDP_RING_MAX_CAPACITY);
    uint64_t want = rtudp_ring_segment_size(ring_kind, capacity);
    if (want == 0)
        return rtudp_check_set(why, RTUDP_EINVAL, "unknown ring kind %u", ring_kind);
    if (size != want)
        return rtudp_check_set(why, RTUDP_EINVAL, "segment is %llu bytes, a ring of capacity %llu needs %llu",
                    (unsigned long long)size, (unsigned long long)capacity,
                    (unsigned long long)want);
    header_fill(base, size, RTUDP_SEG_RING, 1);
    ((struct rtudp_segment_header *)base)->ring_offset[0] = SEG_HDR;
    void *ring = (uint8_t *)base + SEG_HDR;
    int rc = ring_kind == RTUDP_RING_MPSC ? rtudp_mpsc_init_zeroed(ring, capacity)
                                          : rtudp_bcast_init_zeroed(ring, capacity);
    if (rc != RTUDP_OK)
        return rtudp_check_set(why, rc, "ring init failed");
    header_publish(base);
    return RTUDP_OK;
}

int rtudp_ring_segment_validate(void *base, uint64_t size, uint32_t *ring_kind, void **ring,
                                uint64_t *ring_avail, struct rtudp_check *why)
{
    int rc = rtudp_segment_check_header(base, size, RTUDP_SEG_RING, why);
    if (rc != RTUDP_OK)
        return rc;
    const struct rtudp_segment_header *h = base;
    if (h->ring_count != 1)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring segment lists %u rings, expected 1", h->ring_count);
    uint64_t off = h->ring_offset[0];
    if (off < SEG_HDR || off % RTUDP_CACHE_LINE != 0 || off > size - 8)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring offset %llu is outside the %llu-byte segment or misaligned",
                    (unsigned long long)off, (unsigned long long)size);
    void *mem = (uint8_t *)base + off;
    uint32_t kind = ((const struct rtudp_mpsc_ring *)mem)->kind;
    if (kind == RTUDP_RING_MPSC) {
        struct rtudp_mpsc m;
        rc = rtudp_mpsc_attach(&m, mem, size - off, why);
    } else if (kind == RTUDP_RING_BROADCAST) {
        struct rtudp_bcast b;
        rc = rtudp_bcast_attach(&b, mem, size - off, why);
    } else {
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring kind %u is neither MPSC (%d) nor broadcast (%d)",
                    kind, RTUDP_RING_MPSC, RTUDP_RING_BROADCAST);
    }
    if (rc != RTUDP_OK)
        return rc;
    if (ring_kind)
        *ring_kind = kind;
    if (ring)
        *ring = mem;
    if (ring_avail)
        *ring_avail = size - off;
    return RTUDP_OK;
}


bool rtudp_name_valid(const char *s)
{
    size_t n = strnlen(s, RTUDP_NAME_MAX + 1);
    if (n < 1 || n > RTUDP_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ rings in segments */

static inline uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* a ring's offset from the header: aligned, past `min_off`, inside the segment */
static int ring_at(void *base, uint64_t size, uint64_t min_off, uint64_t off, const char *which,
                   void **mem, uint64_t *avail, struct rtudp_check *why)
{
    if (off < min_off || off % RTUDP_CACHE_LINE || off >= size)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "%s ring offset %llu is misaligned or outside the %llu-byte segment",
                               which, (unsigned long long)off, (unsigned long long)size);
    *mem = (uint8_t *)base + off;
    *avail = size - off;
    return RTUDP_OK;
}

/*
 * ring_offset[0] (an MPSC ring) and ring_offset[1] (a broadcast ring), in that order,
 * each ending before the next thing starts; the MPSC ring's bytes end where the
 * broadcast ring begins.
 */
static int ring_pair(void *base, uint64_t size, uint64_t min_off, uint32_t rings,
                     const char *first, void **mpsc, uint64_t *mpsc_avail, const char *second,
                     void **bcast, uint64_t *bcast_avail, struct rtudp_check *why)
{
    const struct rtudp_segment_header *h = base;
    if (h->ring_count != rings)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "segment lists %u rings, expected %u",
                               h->ring_count, rings);
    uint64_t off0 = h->ring_offset[0], off1 = h->ring_offset[1];
    /* the broadcast ring ends where the next ring (if any) begins */
    uint64_t end = rings > 2 ? h->ring_offset[2] : size;
    if (end > size)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring offset %llu is outside the %llu-byte "
                               "segment", (unsigned long long)end, (unsigned long long)size);
    int rc;
    if ((rc = ring_at(base, size, min_off, off0, first, mpsc, mpsc_avail, why)) != RTUDP_OK ||
        (rc = ring_at(base, end, min_off, off1, second, bcast, bcast_avail, why)) != RTUDP_OK)
        return rc;
    if (off0 >= off1)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "%s ring at %llu is not before %s ring at %llu",
                               first, (unsigned long long)off0, second, (unsigned long long)off1);
    struct rtudp_mpsc m;
    struct rtudp_bcast b;
    if ((rc = rtudp_mpsc_attach(&m, *mpsc, off1 - off0, why)) != RTUDP_OK ||
        (rc = rtudp_bcast_attach(&b, *bcast, *bcast_avail, why)) != RTUDP_OK)
        return rc;
    *mpsc_avail = off1 - off0;
    return RTUDP_OK;
}

/* lays out ring_offset[0] (MPSC) and [1] (broadcast) from `off`, and inits both rings */
static int ring_pair_init(void *base, uint64_t off, uint64_t mpsc_capacity, uint64_t bcast_capacity,
                          struct rtudp_check *why)
{
    struct rtudp_segment_header *h = base;
    uint64_t off1 = off + align64(rtudp_mpsc_footprint(mpsc_capacity));
    h->ring_offset[0] = off;
    h->ring_offset[1] = off1;
    int rc = rtudp_mpsc_init_zeroed((void *)((uint8_t *)base + off), mpsc_capacity);
    if (rc == RTUDP_OK)
        rc = rtudp_bcast_init_zeroed((void *)((uint8_t *)base + off1), bcast_capacity);
    if (rc != RTUDP_OK)
        return rtudp_check_set(why, rc, "ring init failed");
    return RTUDP_OK;
}

/* ------------------------------------------------------------------ control */

#define CONTROL_RINGS_OFF align64(sizeof(struct rtudp_control))

uint64_t rtudp_control_segment_size(void)
{
    return CONTROL_RINGS_OFF + align64(rtudp_mpsc_footprint(RTUDP_CONTROL_RING_CAPACITY)) +
           align64(rtudp_bcast_footprint(RTUDP_CONTROL_RING_CAPACITY));
}

int rtudp_control_init(void *base, uint64_t size, struct rtudp_check *why)
{
    if (size != rtudp_control_segment_size())
        return rtudp_check_set(why, RTUDP_EINVAL, "control segment is %llu bytes, expected %llu",
                               (unsigned long long)size,
                               (unsigned long long)rtudp_control_segment_size());
    header_fill(base, size, RTUDP_SEG_CONTROL, 2);
    struct rtudp_control *c = base;
    if (c->pool.max_channels == 0)
        c->pool.max_channels = RTUDP_MAX_CHANNELS;
    if (c->pool.horizon_ns == 0)
        c->pool.horizon_ns = RTUDP_HORIZON_DEFAULT_NS;
    int rc = ring_pair_init(base, CONTROL_RINGS_OFF, RTUDP_CONTROL_RING_CAPACITY,
                            RTUDP_CONTROL_RING_CAPACITY, why);
    if (rc != RTUDP_OK)
        return rc;
    header_publish(base);
    return RTUDP_OK;
}

int rtudp_control_validate(void *base, uint64_t size, struct rtudp_check *why)
{
    int rc = rtudp_segment_check_header(base, size, RTUDP_SEG_CONTROL, why);
    if (rc != RTUDP_OK)
        return rc;
    if (size != rtudp_control_segment_size())
        return rtudp_check_set(why, RTUDP_ECORRUPT, "control segment is %llu bytes, expected %llu",
                               (unsigned long long)size,
                               (unsigned long long)rtudp_control_segment_size());
    const struct rtudp_control *c = base;
    if (c->pool.n_workers > RTUDP_MAX_WORKERS)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "pool lists %u workers, at most %d",
                               c->pool.n_workers, RTUDP_MAX_WORKERS);
    if (c->pool.max_channels == 0 || c->pool.max_channels > RTUDP_MAX_CHANNELS)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "pool allows %u channels, must be 1..%d",
                               c->pool.max_channels, RTUDP_MAX_CHANNELS);
    if (c->pool.horizon_ns <= 0 || c->pool.horizon_ns > RTUDP_HORIZON_MAX_NS)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "pool's deadline horizon is %lld ns, must be "
                               "1..%lld", (long long)c->pool.horizon_ns,
                               (long long)RTUDP_HORIZON_MAX_NS);
    return RTUDP_OK;
}

int rtudp_control_rings(void *base, uint64_t size, void **cmd, uint64_t *cmd_avail,
                        void **reply, uint64_t *reply_avail, struct rtudp_check *why)
{
    int rc = rtudp_control_validate(base, size, why);
    if (rc != RTUDP_OK)
        return rc;
    return ring_pair(base, size, CONTROL_RINGS_OFF, 2, "command", cmd, cmd_avail, "reply", reply,
                     reply_avail, why);
}

/* ------------------------------------------------------------------ channels */

#define CHANNEL_BLOCK_OFF SEG_HDR
#define CHANNEL_AREA_OFF align64(CHANNEL_BLOCK_OFF + sizeof(struct rtudp_channel_block))
#define CHANNEL_RINGS 4 /* TX, RX, TX tap, RX tap */

uint64_t rtudp_tap_capacity(uint64_t ring_capacity)
{
    uint64_t c = ring_capacity * 2;
    return c > RTUDP_TAP_RING_MAX ? RTUDP_TAP_RING_MAX : c;
}

/* where the TX tap ring begins: after the block, the kind's area and the two rings */
static uint64_t tap_offset(uint64_t tx_capacity, uint64_t rx_capacity, uint64_t area_bytes)
{
    if (!rtudp_ring_capacity_ok(tx_capacity) || !rtudp_ring_capacity_ok(rx_capacity) ||
        area_bytes > RTUDP_KIND_AREA_MAX)
        return 0;
    return CHANNEL_AREA_OFF + align64(area_bytes) + align64(rtudp_mpsc_footprint(tx_capacity)) +
           align64(rtudp_bcast_footprint(rx_capacity));
}

int rtudp_channel_tap_offsets(uint64_t tx_capacity, uint64_t rx_capacity, uint64_t area_bytes,
                              uint64_t *tx_tap, uint64_t *rx_tap)
{
    uint64_t tap = tap_offset(tx_capacity, rx_capacity, area_bytes);
    if (tap == 0)
        return RTUDP_EINVAL;
    *tx_tap = tap;
    *rx_tap = tap + align64(rtudp_bcast_footprint(rtudp_tap_capacity(tx_capacity)));
    return RTUDP_OK;
}

uint64_t rtudp_channel_segment_size(uint64_t tx_capacity, uint64_t rx_capacity,
                                    uint64_t area_bytes)
{
    uint64_t tap = tap_offset(tx_capacity, rx_capacity, area_bytes);
    if (tap == 0)
        return 0;
    return tap + align64(rtudp_bcast_footprint(rtudp_tap_capacity(tx_capacity))) +
           align64(rtudp_bcast_footprint(rtudp_tap_capacity(rx_capacity)));
}

int rtudp_channel_segment_init(void *base, uint64_t size, uint64_t tx_capacity,
                               uint64_t rx_capacity, uint64_t area_bytes, struct rtudp_check *why)
{
    uint64_t want = rtudp_channel_segment_size(tx_capacity, rx_capacity, area_bytes);
    if (want == 0)
        return rtudp_check_set(why, RTUDP_EINVAL,
                               "ring capacities %llu / %llu must be powers of two between %llu "
                               "and %llu bytes, the kind area (%llu bytes) at most %llu",
                               (unsigned long long)tx_capacity, (unsigned long long)rx_capacity,
                               (unsigned long long)RTUDP_RING_MIN_CAPACITY,
                               (unsigned long long)RTUDP_RING_MAX_CAPACITY,
                               (unsigned long long)area_bytes,
                               (unsigned long long)RTUDP_KIND_AREA_MAX);
    if (size != want)
        return rtudp_check_set(why, RTUDP_EINVAL, "channel segment is %llu bytes, needs %llu",
                               (unsigned long long)size, (unsigned long long)want);
    header_fill(base, size, RTUDP_SEG_CHANNEL, CHANNEL_RINGS);
    int rc = ring_pair_init(base, CHANNEL_AREA_OFF + align64(area_bytes), tx_capacity,
                            rx_capacity, why);
    if (rc != RTUDP_OK)
        return rc;
    struct rtudp_segment_header *h = base;
    uint64_t tap_tx = rtudp_tap_capacity(tx_capacity), tap_rx = rtudp_tap_capacity(rx_capacity);
    rtudp_channel_tap_offsets(tx_capacity, rx_capacity, area_bytes, &h->ring_offset[2],
                              &h->ring_offset[3]);
    if ((rc = rtudp_bcast_init_zeroed((void *)((uint8_t *)base + h->ring_offset[2]), tap_tx)) !=
            RTUDP_OK ||
        (rc = rtudp_bcast_init_zeroed((void *)((uint8_t *)base + h->ring_offset[3]), tap_rx)) !=
            RTUDP_OK)
        return rtudp_check_set(why, rc, "tap ring init failed");
    header_publish(base);
    return RTUDP_OK;
}

int rtudp_channel_segment_validate(void *base, uint64_t size, struct rtudp_channel_block **block,
                                   void **tx, uint64_t *tx_avail, void **rx, uint64_t *rx_avail,
                                   struct rtudp_check *why)
{
    int rc = rtudp_segment_check_header(base, size, RTUDP_SEG_CHANNEL, why);
    if (rc != RTUDP_OK)
        return rc;
    if (size < CHANNEL_AREA_OFF)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "channel segment of %llu bytes has no room "
                               "for its block", (unsigned long long)size);
    if ((rc = ring_pair(base, size, CHANNEL_AREA_OFF, CHANNEL_RINGS, "TX", tx, tx_avail, "RX",
                        rx, rx_avail, why)) != RTUDP_OK)
        return rc;
    *block = (struct rtudp_channel_block *)((uint8_t *)base + CHANNEL_BLOCK_OFF);
    return RTUDP_OK;
}

/* the whole channel segment is valid (for what only needs to know that) */
static int channel_valid(void *base, uint64_t size, struct rtudp_check *why)
{
    struct rtudp_channel_block *block;
    void *tx, *rx;
    uint64_t ta, ra;
    return rtudp_channel_segment_validate(base, size, &block, &tx, &ta, &rx, &ra, why);
}

int rtudp_channel_tap_rings(void *base, uint64_t size, void **tx_tap, uint64_t *tx_avail,
                            void **rx_tap, uint64_t *rx_avail, struct rtudp_check *why)
{
    int rc = channel_valid(base, size, why);
    if (rc != RTUDP_OK)
        return rc;
    const struct rtudp_segment_header *h = base;
    uint64_t off2 = h->ring_offset[2], off3 = h->ring_offset[3];
    /* after the RX ring (validate checked that it ends at ring_offset[2]), in order */
    if ((rc = ring_at(base, off3, h->ring_offset[1] + 1, off2, "TX tap", tx_tap, tx_avail,
                      why)) != RTUDP_OK ||
        (rc = ring_at(base, size, off2 + 1, off3, "RX tap", rx_tap, rx_avail, why)) != RTUDP_OK)
        return rc;
    struct rtudp_bcast b;
    if ((rc = rtudp_bcast_attach(&b, *tx_tap, *tx_avail, why)) != RTUDP_OK ||
        (rc = rtudp_bcast_attach(&b, *rx_tap, *rx_avail, why)) != RTUDP_OK)
        return rc;
    return RTUDP_OK;
}

int rtudp_channel_area(void *base, uint64_t size, void **area, uint64_t *area_bytes,
                       struct rtudp_check *why)
{
    int rc = channel_valid(base, size, why);
    if (rc != RTUDP_OK)
        return rc;
    /* the TX ring starts at or after the area (ring_pair checked it, 64-aligned) */
    uint64_t end = ((const struct rtudp_segment_header *)base)->ring_offset[0];
    if (end - CHANNEL_AREA_OFF > RTUDP_KIND_AREA_MAX)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "kind area of %llu bytes, at most %llu",
                               (unsigned long long)(end - CHANNEL_AREA_OFF),
                               (unsigned long long)RTUDP_KIND_AREA_MAX);
    *area = (uint8_t *)base + CHANNEL_AREA_OFF;
    *area_bytes = end - CHANNEL_AREA_OFF;
    return RTUDP_OK;
}

int rtudp_kind_area_head(const char *kind, const void *area, uint64_t area_bytes,
                         uint64_t need, size_t magic_off, uint64_t magic,
                         struct rtudp_check *why)
{
    if (!area || area_bytes < need)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "%s kind area of %llu bytes: needs %llu",
                               kind, (unsigned long long)area_bytes, (unsigned long long)need);
    const uint64_t *m = (const uint64_t *)((const char *)area + magic_off);
    if (load_acquire(m) != magic)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "%s config magic %#llx is not %#llx", kind,
                               (unsigned long long)load_relaxed(m), (unsigned long long)magic);
    return RTUDP_OK;
}

void rtudp_channel_set_worker(struct rtudp_channel_block *b, int32_t worker)
{
    /* seq_cst, then a full fence: a producer whose commit's fence came after this reads
     * the new index; one that read the old index committed before the new worker is
     * handed the ring, which then sees the commit */
    atomic_store_explicit(SHARED(&b->worker), worker, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
}

void rtudp_channel_expect_handoff(struct rtudp_channel_block *b, int32_t to)
{
    atomic_store_explicit(SHARED(&b->handoff_to), to, memory_order_relaxed);
    atomic_store_explicit(SHARED(&b->handoff), RTUDP_HANDOFF_AWAITED, memory_order_seq_cst);
}

int32_t rtudp_channel_hand_over(struct rtudp_channel_block *b, uint32_t n_workers)
{
    if (atomic_load_explicit(SHARED(&b->handoff), memory_order_acquire) != RTUDP_HANDOFF_AWAITED)
        return -1;
    int32_t to = atomic_load_explicit(SHARED(&b->handoff_to), memory_order_relaxed);
    if (to < 0 || (uint32_t)to >= n_workers)
        return -1;
    /* the route first: the new worker, which reads the ring once it sees RELEASED,
     * then sees every commit whose producer read the old route */
    rtudp_channel_set_worker(b, to);
    atomic_store_explicit(SHARED(&b->handoff), RTUDP_HANDOFF_RELEASED, memory_order_release);
    return to;
}

int rtudp_channel_released(const struct rtudp_channel_block *b)
{
    return atomic_load_explicit(SHARED(&b->handoff), memory_order_acquire) ==
           RTUDP_HANDOFF_RELEASED;
}
